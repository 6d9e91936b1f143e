// Finding a socket's owner on a fake /proc tree (real files and symlinks in a temp dir), and the listener owner cache.
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "host/procfs.hpp"
#include "host/socket_owners.hpp"

using namespace connscope;
namespace fs = std::filesystem;

namespace {

constexpr uint32_t kNetns = 4026531840, kOtherNetns = 4026532500;
constexpr uint64_t kListener = 5001;

// A /proc look-alike: <root>/<pid>/{comm, ns/net, fd/N}, removed at the end.
class FakeProc {
 public:
  FakeProc() {
    std::string tmpl = (fs::temp_directory_path() / "connscope-proc-XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    root_ = tmpl;
  }
  ~FakeProc() {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
  FakeProc(const FakeProc&) = delete;
  FakeProc& operator=(const FakeProc&) = delete;

  const std::string& root() const { return root_; }
  std::string dir(uint32_t pid) const { return root_ + "/" + std::to_string(pid); }

  // A process in netns with a name; fds get added by fd().
  void process(uint32_t pid, const std::string& comm, uint32_t netns) {
    fs::create_directories(dir(pid) + "/fd");
    fs::create_directories(dir(pid) + "/ns");
    fs::create_symlink("net:[" + std::to_string(netns) + "]", dir(pid) + "/ns/net");
    set_comm(pid, comm);
  }
  void set_comm(uint32_t pid, const std::string& comm) { std::ofstream(dir(pid) + "/comm") << comm << "\n"; }
  // fd N of pid links to target ("socket:[5001]", "/dev/null", "pipe:[7]").
  void fd(uint32_t pid, int n, const std::string& target) {
    fs::create_symlink(target, dir(pid) + "/fd/" + std::to_string(n));
  }
  void socket(uint32_t pid, int n, uint64_t inode) { fd(pid, n, "socket:[" + std::to_string(inode) + "]"); }

 private:
  std::string root_;
};

ListenerInfo listener(uint16_t port, uint32_t inode) {
  ListenerInfo l{};
  l.family = AF_INET;
  l.port = port;
  l.inode = inode;
  return l;
}

}  // namespace

TEST_CASE("socket and namespace link targets") {
  CHECK(parse_socket_link("socket:[5001]") == 5001u);
  CHECK_FALSE(parse_socket_link("socket:[]").has_value());
  CHECK_FALSE(parse_socket_link("socket:[12x]").has_value());
  CHECK_FALSE(parse_socket_link("pipe:[5001]").has_value());
  CHECK_FALSE(parse_socket_link("/dev/null").has_value());
  CHECK_FALSE(parse_socket_link("anon_inode:[eventpoll]").has_value());
  CHECK(parse_ns_link("net:[4026531840]", "net") == 4026531840u);
  CHECK_FALSE(parse_ns_link("mnt:[4026531840]", "net").has_value());
}

TEST_CASE("owner labels") {
  CHECK(owner_label({812, "nginx", 0}) == "nginx (pid 812)");
  CHECK(owner_label({812, "nginx", 4}) == "nginx (pid 812 and 4 more)");
}

TEST_CASE("list_pids, read_comm and read_symlink on a fake tree") {
  FakeProc proc;
  proc.process(1000, "c", kNetns);
  proc.process(90, "a", kNetns);
  proc.process(812, "b", kNetns);
  fs::create_directories(proc.root() + "/self");
  CHECK(list_pids(proc.root()) == std::vector<uint32_t>{90, 812, 1000});  // numeric order, not names'
  CHECK(list_pids(proc.root() + "/none").empty());
  CHECK(read_comm(proc.root(), "812") == "b");
  CHECK_FALSE(read_comm(proc.root(), "7").has_value());
  CHECK(read_symlink(proc.dir(90) + "/ns/net") == "net:[4026531840]");
  int err = 0;
  CHECK_FALSE(read_symlink(proc.dir(7) + "/ns/net", &err).has_value());
  CHECK(err == ENOENT);
}

TEST_CASE("the process holding a listener is found") {
  FakeProc proc;
  proc.process(1, "systemd", kNetns);
  proc.fd(1, 0, "/dev/null");
  proc.socket(1, 3, 4242);
  proc.process(812, "nginx", kNetns);
  proc.fd(812, 0, "/dev/null");
  proc.fd(812, 1, "pipe:[77]");
  proc.socket(812, 6, kListener);
  auto owners = find_socket_owners(proc.root(), {{kListener, kNetns}});
  REQUIRE(owners.count(kListener) == 1);
  CHECK(owners.at(kListener).pid == 812);
  CHECK(owners.at(kListener).comm == "nginx");
  CHECK(owners.at(kListener).others == 0);
  CHECK(owners.size() == 1);  // 4242 was not asked for
}

TEST_CASE("a socket shared by a master and its workers names the lowest pid and counts the rest") {
  FakeProc proc;
  for (uint32_t pid : {1000u, 90u, 812u, 813u, 3000u}) {
    proc.process(pid, pid == 90 ? "nginx" : "nginx-worker", kNetns);
    proc.socket(pid, 6, kListener);
  }
  proc.socket(812, 7, kListener);  // a second fd of the same socket: still one process
  auto owners = find_socket_owners(proc.root(), {{kListener, kNetns}});
  REQUIRE(owners.count(kListener) == 1);
  CHECK(owner_label(owners.at(kListener)) == "nginx (pid 90 and 4 more)");
}

TEST_CASE("processes of another netns are not owners") {
  FakeProc proc;
  proc.process(50, "sidecar", kOtherNetns);  // holds the socket (passed over a unix socket, say)
  proc.socket(50, 3, kListener);
  proc.process(812, "nginx", kNetns);
  proc.socket(812, 3, kListener);
  auto owners = find_socket_owners(proc.root(), {{kListener, kNetns}});
  REQUIRE(owners.count(kListener) == 1);
  CHECK(owner_label(owners.at(kListener)) == "nginx (pid 812)");
  // Only in the other netns: no owner.
  CHECK(find_socket_owners(proc.root(), {{kListener, 4026539999}}).empty());
  // netns 0: any process.
  CHECK(owner_label(find_socket_owners(proc.root(), {{kListener, 0}}).at(kListener)) == "sidecar (pid 50 and 1 more)");
}

TEST_CASE("processes that exit mid-scan are passed over") {
  FakeProc proc;
  proc.process(10, "gone", kNetns);  // its fds were read, then it exited: no comm any more
  proc.socket(10, 3, kListener);
  fs::remove(proc.dir(10) + "/comm");
  proc.process(20, "listed", kNetns);  // listed, then gone before its fds were read
  proc.socket(20, 3, kListener);
  proc.process(30, "nginx", kNetns);
  proc.socket(30, 3, kListener);
  fs::create_directories(proc.dir(40));  // a process without an fd directory (another user's, say)

  SocketOwnerScan scan(proc.root(), {{kListener, kNetns}});
  CHECK_FALSE(scan.step(1, UINT64_MAX));  // pid 10 only: one fd read
  CHECK(scan.fds_read() == 1);
  fs::remove_all(proc.dir(20));
  CHECK(scan.step(UINT64_MAX, UINT64_MAX));
  CHECK(scan.done());
  CHECK(scan.processes_read() == 2);  // 10 and 30
  REQUIRE(scan.owners().count(kListener) == 1);
  CHECK(owner_label(scan.owners().at(kListener)) == "nginx (pid 30)");
}

TEST_CASE("a socket nobody holds has no owner") {
  FakeProc proc;
  proc.process(812, "nginx", kNetns);
  proc.socket(812, 3, 9999);
  CHECK(find_socket_owners(proc.root(), {{kListener, kNetns}}).empty());
  CHECK(find_socket_owners(proc.root(), {}).empty());
  CHECK(find_socket_owners(proc.root() + "/no-proc", {{kListener, kNetns}}).empty());
}

TEST_CASE("the listener owner cache: labels, ttl, budget, closed listeners") {
  FakeProc proc;
  proc.process(812, "nginx", kNetns);
  proc.socket(812, 3, kListener);
  proc.process(900, "sshd", kNetns);
  proc.socket(900, 3, 6001);
  constexpr uint64_t kSec = 1'000'000'000;

  OwnerCacheConfig cfg;
  cfg.ttl_s = 10;
  ListenerOwnerCache cache(proc.root(), cfg);
  std::vector<ListenerDump> dumps = {{kSec, kNetns, {listener(8080, kListener), listener(22, 6001), listener(9, 0)}}};
  cache.update(dumps, kSec);
  CHECK(dumps[0].listeners[0].owner == "nginx (pid 812)");
  CHECK(dumps[0].listeners[1].owner == "sshd (pid 900)");
  CHECK(dumps[0].listeners[2].owner.empty());  // no inode: nothing to look for
  CHECK(cache.scans_completed() == 1);
  const uint64_t fds = cache.fds_read_total();
  CHECK(fds == 2);

  // Within the ttl: from the cache, no scan.
  proc.set_comm(812, "nginx-new");
  cache.update(dumps, 5 * kSec);
  CHECK(dumps[0].listeners[0].owner == "nginx (pid 812)");
  CHECK(cache.fds_read_total() == fds);
  // After it: looked up again.
  cache.update(dumps, 12 * kSec);
  CHECK(dumps[0].listeners[0].owner == "nginx-new (pid 812)");
  CHECK(cache.scans_completed() == 2);

  // A new socket on the same port is another key; with a budget of one fd
  // per poll its scan spans polls: the lowest pid holding it names it as
  // soon as the scan passes it, the count of the others comes at the end.
  OwnerCacheConfig slow = cfg;
  slow.fds_per_poll = 1;
  ListenerOwnerCache budgeted(proc.root(), slow);
  for (uint32_t pid : {1000u, 1001u}) {
    proc.process(pid, "envoy", kNetns);
    proc.socket(pid, 3, 7001);
  }
  std::vector<ListenerDump> later = {{kSec, kNetns, {listener(8080, 7001)}}};
  budgeted.update(later, kSec);  // pid 812
  CHECK(later[0].listeners[0].owner.empty());
  budgeted.update(later, 2 * kSec);  // pid 900
  CHECK(later[0].listeners[0].owner.empty());
  budgeted.update(later, 3 * kSec);  // pid 1000
  CHECK(later[0].listeners[0].owner == "envoy (pid 1000)");
  CHECK(budgeted.scans_completed() == 0);
  budgeted.update(later, 4 * kSec);  // pid 1001: done
  CHECK(later[0].listeners[0].owner == "envoy (pid 1000 and 1 more)");
  CHECK(budgeted.scans_completed() == 1);
  CHECK(budgeted.fds_read_total() == 4);

  // A closed listener is forgotten: a new socket reusing its inode is looked up afresh.
  std::vector<ListenerDump> none = {{kSec, kNetns, {}}};
  budgeted.update(none, 5 * kSec);
  fs::remove(proc.dir(1000) + "/fd/3");
  fs::remove(proc.dir(1001) + "/fd/3");
  for (uint64_t t = 6; t <= 9; ++t) budgeted.update(later, t * kSec);
  CHECK(later[0].listeners[0].owner.empty());
  CHECK(budgeted.scans_completed() == 2);
}
