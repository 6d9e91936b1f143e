// Small process, time and file helpers for the privileged integration tests.
// Everything here is bounded in time: a command that does not finish within its
// timeout is killed and reported.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace itest {

using Clock = std::chrono::steady_clock;
using ms = std::chrono::milliseconds;

// CONNSCOPE_ITEST_TIMEOUT_SCALE (default 1): multiplies every bound, for slow
// machines (qemu TCG). Bounds are upper limits of polls, not fixed sleeps.
double timeout_scale();
ms scaled(ms base);

// CLOCK_MONOTONIC in ns: the clock of the records' ts_ns.
uint64_t monotonic_ns();

// CONNSCOPE_ITEST_VERBOSE=1: print timestamped progress lines to stderr
// (where the time of a slow test goes).
void progress(const std::string& what);

std::string random_hex(std::size_t nchars);
std::optional<std::string> getenv_str(const char* name);

// Whole-file read; nullopt when the file cannot be opened.
std::optional<std::string> read_file(const std::string& path);
// Write (truncate) a file; throws std::runtime_error with errno text on failure.
void write_file(const std::string& path, const std::string& data);

std::string errno_str(int err);
std::string join(const std::vector<std::string>& v, const std::string& sep);
std::string shell_words(const std::vector<std::string>& argv);
std::string trim(const std::string& s);
std::vector<std::string> split_lines(const std::string& s);
bool contains(const std::string& haystack, const std::string& needle);

// Poll cond() every `interval` until it is true or `timeout` passed.
bool wait_until(const std::function<bool()>& cond, ms timeout, ms interval = ms(20));

struct CmdResult {
  std::vector<std::string> argv;
  bool timed_out = false;
  bool exited = false;  // WIFEXITED
  int exit_code = -1;
  int term_signal = 0;  // WIFSIGNALED
  std::string out;
  std::string err;
  double seconds = 0;

  bool ok() const { return exited && exit_code == 0; }
  std::string describe() const;  // command, status, stdout, stderr
};

// fork/exec argv (PATH lookup), optionally inside the network namespace given
// by netns_fd (setns in the child before exec), feeding `input` on stdin and
// capturing stdout/stderr. Killed (SIGKILL) after `timeout`.
CmdResult run_cmd(const std::vector<std::string>& argv, ms timeout, int netns_fd = -1, const std::string& input = {});

// Child-side preparation common to every fork: default signal dispositions,
// empty signal mask, die with the parent.
void child_reset_signals();

// Wait for `pid` at most `timeout`; returns the wait status, or nullopt on
// timeout (the process is left running).
std::optional<int> wait_pid_for(pid_t pid, ms timeout);
std::string describe_status(int status);

// A temporary directory removed (recursively) on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Cleanup of kernel-global state (network namespaces) and children if the test
// binary is interrupted (SIGINT/SIGTERM): registered paths are unmounted and
// unlinked, registered pids killed. Async-signal-safe.
void register_netns_path(const std::string& path);
void unregister_netns_path(const std::string& path);
void register_child_pid(pid_t pid);
void unregister_child_pid(pid_t pid);

}  // namespace itest
