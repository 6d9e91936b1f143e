// Running the agent under test: `connscope trace --json --output FILE ...`
// with stderr captured to a file, bounded waits for attachment and exit,
// and loading of the records it wrote.
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

class AgentRun {
 public:
  // Starts `connscope trace --json --output <tmp>/events.jsonl
  // [--strategy all=X] <extra...>` and waits (bounded) for
  // "connscope: tracing" on stderr; throws with stderr if the agent exits or
  // does not attach in time.
  explicit AgentRun(std::vector<std::string> extra_args = {});
  ~AgentRun();  // SIGKILL if still running
  AgentRun(const AgentRun&) = delete;
  AgentRun& operator=(const AgentRun&) = delete;

  const std::vector<std::string>& argv() const { return argv_; }
  pid_t pid() const { return pid_; }
  std::string stderr_text() const;
  // Records written so far (complete lines only).
  Records records_so_far() const;
  // Poll the output file until pred(records) holds or the (scaled) bound
  // passes; returns whether it held. Never fails the test by itself.
  bool wait_for(const std::function<bool(const Records&)>& pred, ms timeout) const;
  // Send `sig` (SIGINT or SIGTERM) and wait (bounded) for exit; SIGKILL and
  // throw with stderr if the agent hangs. Loads the final records.
  AgentExit stop(int sig = SIGINT);
  // After stop(): every record, and the monotonic window the run covered.
  const Records& records() const { return final_; }
  uint64_t started_ns() const { return started_ns_; }
  uint64_t stopped_ns() const { return stopped_ns_; }
  // One paragraph for failure messages: command line, exit, stderr.
  std::string describe() const;

 private:
  TempDir dir_;
  std::vector<std::string> argv_;
  pid_t pid_ = -1;
  bool reaped_ = false;
  std::optional<AgentExit> exit_;
  Records final_;
  uint64_t started_ns_ = 0, stopped_ns_ = 0;
};

}  // namespace itest
