// Network namespaces, the veth topology, sysctls and nftables for the tests.
#include "netns.hpp"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <random>
#include <sstream>
#include <stdexcept>

namespace itest {

namespace {

// Namespaces left behind by an earlier run of this binary that was killed
// hard (SIGKILL): csi-<pid>-... whose pid is gone.
void remove_stale_namespaces() {
  static bool done = false;
  if (done) return;
  done = true;
  DIR* d = opendir("/run/netns");
  if (!d) return;
  std::vector<std::string> stale;
  while (dirent* e = readdir(d)) {
    int pid = 0;
    if (std::sscanf(e->d_name, "csi-%d-", &pid) == 1 && pid > 0 && kill(pid, 0) != 0 && errno == ESRCH)
      stale.emplace_back(e->d_name);
  }
  closedir(d);
  for (const auto& n : stale) run_cmd({"ip", "netns", "del", n}, ms(10000));
}

}  // namespace

// ---------------------------------------------------------------- Netns

Netns::Netns(const std::string& role) {
  remove_stale_namespaces();
  name_ = "csi-" + std::to_string(getpid()) + "-" + random_hex(6) + "-" + role;
  register_netns_path(path());
  CmdResult r = run_cmd({"ip", "netns", "add", name_}, scaled(ms(10000)));
  if (!r.ok()) {
    unregister_netns_path(path());
    throw std::runtime_error("cannot create network namespace " + name_ + ":\n" + r.describe());
  }
  fd_ = open(path().c_str(), O_RDONLY | O_CLOEXEC);
  struct stat st {};
  if (fd_ < 0 || fstat(fd_, &st) != 0) {
    int err = errno;
    run_cmd({"ip", "netns", "del", name_}, scaled(ms(10000)));
    unregister_netns_path(path());
    throw std::runtime_error("cannot open " + path() + ": " + errno_str(err));
  }
  inode_ = st.st_ino;
}

Netns::~Netns() {
  progress("deleting netns " + name_);
  if (fd_ >= 0) close(fd_);
  CmdResult r = run_cmd({"ip", "netns", "del", name_}, scaled(ms(10000)));
  if (!r.ok()) {
    std::fprintf(stderr, "connscope-itest: warning: could not delete network namespace %s:\n%s", name_.c_str(),
                 r.describe().c_str());
  }
  unregister_netns_path(path());
}

CmdResult Netns::try_run(const std::vector<std::string>& argv, ms timeout, const std::string& input) const {
  return run_cmd(argv, scaled(timeout), fd_, input);
}

CmdResult Netns::run(const std::vector<std::string>& argv, ms timeout, const std::string& input) const {
  CmdResult r = try_run(argv, timeout, input);
  if (!r.ok())
    throw std::runtime_error("command failed in network namespace " + name_ + ":\n" + r.describe() +
                             (input.empty() ? "" : "stdin:\n" + input));
  return r;
}

void Netns::write_sysctl(const std::string& key, const std::string& value) const {
  NetnsEnter in(fd_);
  write_file("/proc/sys/" + key, value);
  auto back = read_file("/proc/sys/" + key);
  // ip_local_port_range reads back tab-separated.
  std::string norm_back = back ? *back : "";
  for (auto& c : norm_back)
    if (c == '\t') c = ' ';
  if (trim(norm_back) != trim(value))
    throw std::runtime_error("sysctl " + key + " in " + name_ + ": wrote '" + value + "', reads back '" +
                             trim(norm_back) + "'");
}

std::string Netns::read_sysctl(const std::string& key) const {
  NetnsEnter in(fd_);
  auto v = read_file("/proc/sys/" + key);
  if (!v) throw std::runtime_error("cannot read /proc/sys/" + key + " in " + name_ + ": " + errno_str(errno));
  return trim(*v);
}

int64_t Netns::netstat_counter(const std::string& group, const std::string& field) const {
  std::string text;
  {
    NetnsEnter in(fd_);
    for (const char* f : {"/proc/thread-self/net/netstat", "/proc/thread-self/net/snmp"}) {
      auto t = read_file(f);
      if (t) text += *t;
    }
  }
  auto lines = split_lines(text);
  const std::string prefix = group + ":";
  for (std::size_t i = 0; i + 1 < lines.size(); i++) {
    if (lines[i].rfind(prefix, 0) != 0 || lines[i + 1].rfind(prefix, 0) != 0) continue;
    std::istringstream names(lines[i].substr(prefix.size())), values(lines[i + 1].substr(prefix.size()));
    std::string n;
    int64_t v = 0;
    while (names >> n && values >> v)
      if (n == field) return v;
  }
  return -1;
}

// ---------------------------------------------------------------- NetnsEnter

NetnsEnter::NetnsEnter(int netns_fd) {
  orig_ = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (orig_ < 0) throw std::runtime_error("open /proc/thread-self/ns/net: " + errno_str(errno));
  if (setns(netns_fd, CLONE_NEWNET) != 0) {
    int err = errno;
    close(orig_);
    throw std::runtime_error("setns(CLONE_NEWNET): " + errno_str(err));
  }
}

NetnsEnter::~NetnsEnter() {
  if (setns(orig_, CLONE_NEWNET) != 0) {
    // Continuing in the wrong namespace would make every later result
    // meaningless (the agent would be started inside a test namespace).
    std::fprintf(stderr, "connscope-itest: fatal: cannot return to the original network namespace: %s\n",
                 errno_str(errno).c_str());
    std::abort();
  }
  close(orig_);
}

uint64_t current_netns_inode() {
  struct stat st {};
  if (stat("/proc/thread-self/ns/net", &st) != 0) return 0;
  return st.st_ino;
}

// ---------------------------------------------------------------- Topology

std::string canonical_ip(int af, const std::string& text) {
  unsigned char buf[16];
  char out[INET6_ADDRSTRLEN];
  if (inet_pton(af, text.c_str(), buf) != 1) throw std::runtime_error("bad address '" + text + "'");
  if (!inet_ntop(af, buf, out, sizeof out)) throw std::runtime_error("inet_ntop failed");
  return out;
}

const char* family_name(int af) { return af == AF_INET6 ? "ipv6" : "ipv4"; }

namespace {

int udp_bound(int af, const std::string& addr) {
  int s = socket(af, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (s < 0) return -1;
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (af == AF_INET) {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    inet_pton(AF_INET, addr.c_str(), &a->sin_addr);
    len = sizeof *a;
  } else {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    inet_pton(AF_INET6, addr.c_str(), &a->sin6_addr);
    len = sizeof *a;
  }
  // bind() fails with EADDRNOTAVAIL while an IPv6 address is still tentative.
  if (bind(s, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    close(s);
    return -1;
  }
  return s;
}

// One UDP datagram each way between bound sockets `a` and `b` (in different
// namespaces): proves addresses, links and qdiscs are up and resolves the
// neighbour entries, so the first TCP SYN of a test is neither dropped nor
// delayed. UDP produces no TCP events.
bool udp_round_trip(int a, int b) {
  for (auto [from, to] : {std::pair{a, b}, std::pair{b, a}}) {
    sockaddr_storage dst{};
    socklen_t len = sizeof dst;
    getsockname(to, reinterpret_cast<sockaddr*>(&dst), &len);
    if (sendto(from, "p", 1, 0, reinterpret_cast<sockaddr*>(&dst), len) != 1) return false;
    pollfd p{to, POLLIN, 0};
    if (poll(&p, 1, 50) <= 0) return false;
    char buf[8];
    while (recv(to, buf, sizeof buf, MSG_DONTWAIT) > 0) {
    }
  }
  return true;
}

}  // namespace

Topology::Topology() {
  std::mt19937 rng{std::random_device{}()};
  a_ = 100 + static_cast<int>(rng() % 150);
  b_ = static_cast<int>(rng() % 256);

  // Distinct ifindexes on the two ends: with equal ones (2 and 2, each the
  // first device after lo) linkwatch treats the carrier events as
  // non-urgent and delays the second end's operstate by up to 1 s, during
  // which IPv6 cannot send.
  client.run({"ip", "-batch", "-"}, ms(10000),
             "link set lo up\n"
             "link add veth0 index 10 type veth peer name veth1 index 20 netns " +
                 server.name() +
                 "\n"
                 "addr add " +
                 client_addr(AF_INET) + "/24 dev veth0\n" + "addr add " + client_addr(AF_INET6) +
                 "/64 dev veth0 nodad\n"
                 "link set veth0 up\n");
  server.run({"ip", "-batch", "-"}, ms(10000),
             "link set lo up\n"
             "addr add " +
                 server_addr(AF_INET) + "/24 dev veth1\n" + "addr add " + server_addr(AF_INET6) +
                 "/64 dev veth1 nodad\n"
                 "link set veth1 up\n");

  bool ok = false;
  for (int af : {AF_INET, AF_INET6}) {
    ok = wait_until(
        [&] {
          int c = -1, sv = -1;
          {
            NetnsEnter in(client.fd());
            c = udp_bound(af, client_addr(af));
          }
          {
            NetnsEnter in(server.fd());
            sv = udp_bound(af, server_addr(af));
          }
          bool r = c >= 0 && sv >= 0 && udp_round_trip(c, sv);
          if (c >= 0) close(c);
          if (sv >= 0) close(sv);
          return r;
        },
        scaled(ms(5000)), ms(10));
    if (!ok) break;
  }
  progress(std::string("topology ") + (ok ? "up" : "NOT up"));
  if (!ok) {
    std::string diag;
    for (const Netns* ns : {&client, &server}) diag += ns->try_run({"ip", "addr"}).describe();
    throw std::runtime_error("veth topology did not come up within the bound:\n" + diag);
  }
}

std::string Topology::client_addr(int af) const {
  char buf[64];
  if (af == AF_INET)
    std::snprintf(buf, sizeof buf, "10.%d.%d.1", a_, b_);
  else
    std::snprintf(buf, sizeof buf, "fd00:c5:%x:%x::1", a_, b_);
  return canonical_ip(af, buf);
}

std::string Topology::server_addr(int af) const {
  char buf[64];
  if (af == AF_INET)
    std::snprintf(buf, sizeof buf, "10.%d.%d.2", a_, b_);
  else
    std::snprintf(buf, sizeof buf, "fd00:c5:%x:%x::2", a_, b_);
  return canonical_ip(af, buf);
}

std::string Topology::describe() const {
  std::ostringstream o;
  o << "client netns " << client.name() << " (inode " << client.inode() << ") " << client_addr(AF_INET) << " "
    << client_addr(AF_INET6) << "; server netns " << server.name() << " (inode " << server.inode() << ") "
    << server_addr(AF_INET) << " " << server_addr(AF_INET6);
  return o.str();
}

// ---------------------------------------------------------------- NftDrop

NftDrop::NftDrop(const Netns& ns, uint16_t dport) : ns_(ns) {
  ns_.run({"nft", "add", "table", "inet", "cst"});
  active_ = true;
  ns_.run({"nft", "add", "chain", "inet", "cst", "input", "{ type filter hook input priority 0 ; }"});
  ns_.run({"nft", "add", "rule", "inet", "cst", "input", "tcp", "dport", std::to_string(dport), "counter", "drop"});
}

NftDrop::~NftDrop() {
  try {
    remove();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "connscope-itest: warning: %s\n", e.what());
  }
}

void NftDrop::remove() {
  if (!active_) return;
  active_ = false;
  ns_.run({"nft", "delete", "table", "inet", "cst"});
}

int64_t NftDrop::dropped_packets() const {
  if (!active_) return -1;
  CmdResult r = ns_.try_run({"nft", "list", "table", "inet", "cst"});
  auto pos = r.out.find("counter packets ");
  if (!r.ok() || pos == std::string::npos) return -1;
  return std::strtoll(r.out.c_str() + pos + 16, nullptr, 10);
}

}  // namespace itest
