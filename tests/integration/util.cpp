// Process, time and file helpers for the integration tests.
#include "util.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace itest {

// ---------------------------------------------------------------- cleanup on signals

namespace {

constexpr int kMaxSlots = 64;
char g_ns_paths[kMaxSlots][256];
std::atomic<bool> g_ns_used[kMaxSlots];
std::atomic<pid_t> g_pids[kMaxSlots];

extern "C" void on_fatal_signal(int sig) {
  for (int i = 0; i < kMaxSlots; i++) {
    pid_t p = g_pids[i].load();
    if (p > 0) kill(p, SIGKILL);
  }
  for (int i = 0; i < kMaxSlots; i++) {
    if (g_ns_used[i].load()) {
      umount2(g_ns_paths[i], MNT_DETACH);
      unlink(g_ns_paths[i]);
    }
  }
  signal(sig, SIG_DFL);
  raise(sig);
}

const bool g_installed = [] {
  // Writing to a pipe of a child that died must not kill the test binary.
  signal(SIGPIPE, SIG_IGN);
  struct sigaction sa {};
  sa.sa_handler = on_fatal_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGHUP, &sa, nullptr);
  return true;
}();

}  // namespace

void register_netns_path(const std::string& path) {
  (void)g_installed;
  for (int i = 0; i < kMaxSlots; i++) {
    if (!g_ns_used[i].load()) {
      std::snprintf(g_ns_paths[i], sizeof g_ns_paths[i], "%s", path.c_str());
      g_ns_used[i].store(true);
      return;
    }
  }
}

void unregister_netns_path(const std::string& path) {
  for (int i = 0; i < kMaxSlots; i++)
    if (g_ns_used[i].load() && path == g_ns_paths[i]) g_ns_used[i].store(false);
}

void register_child_pid(pid_t pid) {
  for (int i = 0; i < kMaxSlots; i++) {
    pid_t expected = 0;
    if (g_pids[i].compare_exchange_strong(expected, pid)) return;
  }
}

void unregister_child_pid(pid_t pid) {
  for (int i = 0; i < kMaxSlots; i++) {
    pid_t expected = pid;
    g_pids[i].compare_exchange_strong(expected, 0);
  }
}

// ---------------------------------------------------------------- time, env, strings

double timeout_scale() {
  static const double scale = [] {
    auto v = getenv_str("CONNSCOPE_ITEST_TIMEOUT_SCALE");
    if (!v) return 1.0;
    char* end = nullptr;
    double d = std::strtod(v->c_str(), &end);
    if (end == v->c_str() || d < 1.0) return 1.0;
    return d;
  }();
  return scale;
}

ms scaled(ms base) { return ms(static_cast<int64_t>(static_cast<double>(base.count()) * timeout_scale())); }

uint64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

void progress(const std::string& what) {
  static const bool on = getenv_str("CONNSCOPE_ITEST_VERBOSE").has_value();
  static const uint64_t t0 = monotonic_ns();
  if (on) std::fprintf(stderr, "[itest %9.3f] %s\n", static_cast<double>(monotonic_ns() - t0) / 1e9, what.c_str());
}

std::string random_hex(std::size_t nchars) {
  static std::mt19937_64 rng{std::random_device{}() ^ (static_cast<uint64_t>(getpid()) << 32) ^ monotonic_ns()};
  static const char* digits = "0123456789abcdef";
  std::string s;
  for (std::size_t i = 0; i < nchars; i++) s += digits[rng() & 15];
  return s;
}

std::optional<std::string> getenv_str(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v) return std::nullopt;
  return std::string(v);
}

std::optional<std::string> read_file(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      close(fd);
      return std::nullopt;
    }
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  close(fd);
  return out;
}

void write_file(const std::string& path, const std::string& data) {
  int fd = open(path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error("open " + path + ": " + errno_str(errno));
  ssize_t n = write(fd, data.data(), data.size());
  int err = errno;
  close(fd);
  if (n != static_cast<ssize_t>(data.size()))
    throw std::runtime_error("write '" + data + "' to " + path + ": " + (n < 0 ? errno_str(err) : "short write"));
}

std::string errno_str(int err) {
  const char* name = strerrorname_np(err);
  return std::string(name ? name : "E?") + " (" + std::strerror(err) + ")";
}

std::string join(const std::vector<std::string>& v, const std::string& sep) {
  std::string out;
  for (std::size_t i = 0; i < v.size(); i++) {
    if (i) out += sep;
    out += v[i];
  }
  return out;
}

std::string shell_words(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& a : argv) {
    if (!out.empty()) out += ' ';
    bool plain =
        !a.empty() && a.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_=./:,") ==
                          std::string::npos;
    if (plain) {
      out += a;
    } else {
      out += '\'';
      for (char c : a) {
        if (c == '\'')
          out += "'\\''";
        else
          out += c;
      }
      out += '\'';
    }
  }
  return out;
}

std::string trim(const std::string& s) {
  auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return {};
  auto e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

std::vector<std::string> split_lines(const std::string& s) {
  std::vector<std::string> out;
  std::string cur;
  std::istringstream in(s);
  while (std::getline(in, cur)) out.push_back(cur);
  return out;
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

bool wait_until(const std::function<bool()>& cond, ms timeout, ms interval) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    if (cond()) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(interval);
  }
}

// ---------------------------------------------------------------- processes

void child_reset_signals() {
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  for (int s : {SIGPIPE, SIGINT, SIGTERM, SIGHUP}) signal(s, SIG_DFL);
  prctl(PR_SET_PDEATHSIG, SIGKILL);
}

std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exited with code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status))
    return std::string("killed by signal ") + std::to_string(WTERMSIG(status)) + " (" + strsignal(WTERMSIG(status)) +
           ")" + (WCOREDUMP(status) ? ", core dumped" : "");
  return "status " + std::to_string(status);
}

std::optional<int> wait_pid_for(pid_t pid, ms timeout) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    int status = 0;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return status;
    if (r < 0 && errno != EINTR) return std::nullopt;
    if (Clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(ms(5));
  }
}

std::string CmdResult::describe() const {
  std::ostringstream o;
  o << "command: " << shell_words(argv) << "\n";
  if (timed_out)
    o << "status: TIMED OUT after " << seconds << " s (killed)\n";
  else if (exited)
    o << "status: exited with code " << exit_code << " after " << seconds << " s\n";
  else
    o << "status: killed by signal " << term_signal << " (" << strsignal(term_signal) << ")\n";
  o << "stdout:\n" << (out.empty() ? "  <empty>\n" : out) << (out.empty() || out.back() == '\n' ? "" : "\n");
  o << "stderr:\n" << (err.empty() ? "  <empty>\n" : err) << (err.empty() || err.back() == '\n' ? "" : "\n");
  return o.str();
}

CmdResult run_cmd(const std::vector<std::string>& argv, ms timeout, int netns_fd, const std::string& input) {
  CmdResult res;
  res.argv = argv;
  int in_p[2], out_p[2], err_p[2], exec_p[2];
  if (pipe2(in_p, O_CLOEXEC) || pipe2(out_p, O_CLOEXEC) || pipe2(err_p, O_CLOEXEC) || pipe2(exec_p, O_CLOEXEC))
    throw std::runtime_error("pipe: " + errno_str(errno));
  auto start = Clock::now();
  std::fflush(nullptr);
  pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork: " + errno_str(errno));
  if (pid == 0) {
    child_reset_signals();
    dup2(in_p[0], 0);
    dup2(out_p[1], 1);
    dup2(err_p[1], 2);
    int fail_errno = 0;
    const char* fail_what = "";
    if (netns_fd >= 0 && setns(netns_fd, CLONE_NEWNET) != 0) {
      fail_errno = errno;
      fail_what = "setns";
    } else {
      std::vector<char*> args;
      for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      execvp(args[0], args.data());
      fail_errno = errno;
      fail_what = "execvp";
    }
    char msg[256];
    int n = std::snprintf(msg, sizeof msg, "%s %s: %s", fail_what, argv[0].c_str(), std::strerror(fail_errno));
    if (write(exec_p[1], msg, static_cast<std::size_t>(n)) < 0) {
    }
    _exit(127);
  }
  register_child_pid(pid);
  close(in_p[0]);
  close(out_p[1]);
  close(err_p[1]);
  close(exec_p[1]);

  // stdin: small inputs only (ip -batch scripts); write then close.
  if (!input.empty()) {
    std::size_t off = 0;
    while (off < input.size()) {
      ssize_t n = write(in_p[1], input.data() + off, input.size() - off);
      if (n <= 0) break;
      off += static_cast<std::size_t>(n);
    }
  }
  close(in_p[1]);

  std::string exec_err;
  {
    char buf[256];
    ssize_t n = read(exec_p[0], buf, sizeof buf);  // EOF at exec (CLOEXEC) or message
    if (n > 0) exec_err.assign(buf, static_cast<std::size_t>(n));
    close(exec_p[0]);
  }

  auto deadline = start + timeout;
  pollfd fds[2] = {{out_p[0], POLLIN, 0}, {err_p[0], POLLIN, 0}};
  int open_fds = 2;
  while (open_fds > 0) {
    auto left = std::chrono::duration_cast<ms>(deadline - Clock::now()).count();
    if (left <= 0) {
      res.timed_out = true;
      break;
    }
    int r = poll(fds, 2, static_cast<int>(std::min<int64_t>(left, 100)));
    if (r < 0 && errno != EINTR) break;
    for (int i = 0; i < 2; i++) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char buf[8192];
      ssize_t n = read(fds[i].fd, buf, sizeof buf);
      if (n > 0) {
        (i == 0 ? res.out : res.err).append(buf, static_cast<std::size_t>(n));
      } else {
        close(fds[i].fd);
        fds[i].fd = -1;
        open_fds--;
      }
    }
  }
  for (auto& f : fds)
    if (f.fd >= 0) close(f.fd);

  std::optional<int> st;
  if (!res.timed_out) {
    auto left = std::chrono::duration_cast<ms>(deadline - Clock::now());
    st = wait_pid_for(pid, std::max(left, ms(0)));
    if (!st) res.timed_out = true;
  }
  if (!st) {
    kill(pid, SIGKILL);
    st = wait_pid_for(pid, ms(5000));
  }
  unregister_child_pid(pid);
  res.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  if (st) {
    res.exited = WIFEXITED(*st);
    res.exit_code = res.exited ? WEXITSTATUS(*st) : -1;
    res.term_signal = WIFSIGNALED(*st) ? WTERMSIG(*st) : 0;
  }
  if (!exec_err.empty()) res.err = exec_err + "\n" + res.err;
  return res;
}

// ---------------------------------------------------------------- TempDir

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/connscope-itest.XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (!mkdtemp(buf.data())) throw std::runtime_error("mkdtemp " + tmpl + ": " + errno_str(errno));
  path_ = buf.data();
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

}  // namespace itest
