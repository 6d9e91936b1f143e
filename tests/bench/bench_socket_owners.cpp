// Google Benchmark: an uncached listener-owner lookup over this host's /proc, idle and with many fds open.
// make build/bench_socket_owners && build/bench_socket_owners   (as root to see every process's fds)
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdint>
#include <map>
#include <stdexcept>
#include <vector>

#include "host/netns.hpp"
#include "host/socket_owners.hpp"

using namespace connscope;

namespace {

// A listener of this process, and its socket inode.
struct Listener {
  int fd = -1;
  uint64_t inode = 0;
  Listener() {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 16) != 0)
      throw std::runtime_error("cannot listen on 127.0.0.1");
    struct stat st {};
    ::fstat(fd, &st);
    inode = st.st_ino;
  }
  ~Listener() { ::close(fd); }
};

// `n` more open fds on the host (dups of /dev/null), held by forked
// children (one process may not raise RLIMIT_NOFILE past its hard limit),
// which are killed at the end.
class ExtraFds {
 public:
  explicit ExtraFds(int64_t n) {
    rlimit r{};
    ::getrlimit(RLIMIT_NOFILE, &r);
    const int64_t per_child = static_cast<int64_t>(r.rlim_cur) - 64;
    while (n > 0) {
      const int64_t share = std::min(n, per_child);
      int ready[2];
      if (::pipe(ready) != 0) break;
      const pid_t pid = ::fork();
      if (pid == 0) {
        ::close(ready[0]);
        const int null = ::open("/dev/null", O_RDONLY);
        int64_t got = 0;
        while (got < share && ::dup(null) >= 0) ++got;
        (void)!::write(ready[1], &got, sizeof got);
        for (;;) ::pause();
      }
      ::close(ready[1]);
      int64_t got = 0;
      if (pid > 0 && ::read(ready[0], &got, sizeof got) == sizeof got) {
        children_.push_back(pid);
        held_ += got;
      }
      ::close(ready[0]);
      n -= share;
    }
  }
  ~ExtraFds() {
    for (pid_t pid : children_) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }
  int64_t size() const { return held_; }

 private:
  std::vector<pid_t> children_;
  int64_t held_ = 0;
};

void BM_uncached_owner_lookup(benchmark::State& state) {
  Listener l;
  ExtraFds extra(state.range(0));
  const std::map<uint64_t, uint32_t> wanted = {{l.inode, current_netns_inode()}};
  uint64_t fds = 0, processes = 0;
  for (auto _ : state) {
    SocketOwnerScan scan("/proc", wanted);
    scan.step(UINT64_MAX, UINT64_MAX);
    if (scan.owners().count(l.inode) != 1) state.SkipWithError("own listener not found");
    fds = scan.fds_read();
    processes = scan.processes_read();
  }
  state.counters["extra_fds"] = static_cast<double>(extra.size());
  state.counters["fds_read"] = static_cast<double>(fds);
  state.counters["processes"] = static_cast<double>(processes);
  state.counters["ns_per_fd"] = benchmark::Counter(
      static_cast<double>(fds), benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}

}  // namespace

BENCHMARK(BM_uncached_owner_lookup)->Arg(0)->Arg(10000)->Arg(100000)->Arg(200000)->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
