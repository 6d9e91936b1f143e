// Running the agent under test, the one spawn helper: a connscope process
// with stdout/stderr in files, bounded waits for its ready line and its exit;
// `trace --json` runs and the records they wrote.
//
// Environment:
//   CONNSCOPE_AGENT     path of the agent binary (required)
//   CONNSCOPE_STRATEGY  preferred | second | fallback | auto (unset = auto);
//                       when not auto every trace gets --strategy all=VALUE
//   CONNSCOPE_ITEST_TIMEOUT_SCALE  multiplies every bound (slow emulators)
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "events.hpp"
#include "util.hpp"

namespace itest {

// CONNSCOPE_AGENT; throws with a clear message when unset or not executable.
std::string agent_path();
// CONNSCOPE_STRATEGY when it forces a tier (nullopt for unset/auto).
std::optional<std::string> forced_strategy();
// The tier records of a family must carry: CONNSCOPE_STRATEGY, except for a
// family whose `connscope probe` rejected that tier on this kernel (the
// agent would refuse to start; test_cli checks that refusal and its reason).
// nullopt = no expectation.
std::optional<std::string> expected_tier(const std::string& family);
// {"--strategy", "FAMILY=VALUE", ...} for every family expected_tier forces, or {}.
std::vector<std::string> strategy_args();

// Run the agent with arbitrary arguments to completion (bounded).
CmdResult run_agent(const std::vector<std::string>& args, ms timeout);

struct AgentExit {
  int status = 0;  // wait status
  bool exited_zero() const;
  std::string describe() const { return describe_status(status); }
};

// A connscope process: `connscope ARGS...` with stdin /dev/null and
// stdout/stderr in files of its own temporary directory. The constructor
// waits (bounded, scaled) until `ready_text` appears on stderr ("{dir}" in an
// argument is replaced by the temporary directory's path); it throws
// with the stderr when the process exits first or never prints it.
class AgentProcess {
 public:
  AgentProcess(std::vector<std::string> args, const std::string& ready_text, ms ready_timeout = ms(30000));
  virtual ~AgentProcess();  // SIGKILL if still running
  AgentProcess(const AgentProcess&) = delete;
  AgentProcess& operator=(const AgentProcess&) = delete;

  pid_t pid() const { return pid_; }
  // CLOCK_MONOTONIC just before the fork.
  uint64_t started_ns() const { return started_ns_; }
  const std::vector<std::string>& argv() const { return argv_; }
  const TempDir& dir() const { return dir_; }
  std::string stderr_text() const;
  std::vector<std::string> stderr_lines() const { return split_lines(stderr_text()); }
  // Whether the process is still running (reaps it if it exited).
  bool running();
  // Send `sig` and wait (bounded, scaled) for the exit; SIGKILL and throw
  // with stderr if it hangs.
  AgentExit stop(int sig = SIGINT);
  // Command line, exit status (if known), stderr and stdout.
  std::string describe() const;

 private:
  TempDir dir_;
  std::vector<std::string> argv_;
  pid_t pid_ = -1;
  bool reaped_ = false;
  std::optional<AgentExit> exit_;
  uint64_t started_ns_ = 0;
};

// `connscope trace --json --output <tmp>/events.jsonl [--strategy ...]
// <extra...>`, ready at "connscope: tracing" (every program attached).
class AgentRun : public AgentProcess {
 public:
  explicit AgentRun(const std::vector<std::string>& extra_args = {});

  // Records written so far (complete lines only).
  Records records_so_far() const;
  // Poll the output file until pred(records) holds or the (scaled) bound
  // passes; returns whether it held. Never fails the test by itself.
  bool wait_for(const std::function<bool(const Records&)>& pred, ms timeout) const;
  // AgentProcess::stop, then loads the final records.
  AgentExit stop(int sig = SIGINT);
  // After stop(): every record, and the monotonic window the run covered.
  const Records& records() const { return final_; }
  uint64_t stopped_ns() const { return stopped_ns_; }

 private:
  Records final_;
  uint64_t stopped_ns_ = 0;
};

}  // namespace itest
