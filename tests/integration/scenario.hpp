// Assertions shared by the scenario tests: flows, task fields, "exactly one
// record like this", stopping the agent and the checks every run gets.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "agent_process.hpp"
#include "events.hpp"
#include "netns.hpp"

namespace itest {

struct FlowExpect {
  int af = 0;
  std::string saddr, daddr;
  uint16_t sport = 0;  // 0: not checked
  uint16_t dport = 0;
  uint64_t netns = 0;
};

// family/saddr/daddr/[sport]/dport/netns of a record.
void check_flow(const json& r, const FlowExpect& e);
// pid (tgid), tid and comm of a record, and cgroup_id when this process
// can tell its cgroup v2 id (helpers inherit the test's cgroup).
void check_task(const json& r, pid_t pid, pid_t tid, const std::string& comm);
// `approximate` is a bool, true exactly on the fallback tier.
void check_approximate_by_tier(const json& r);

// Stop the agent with `sig` and check: exit status 0, the common record
// checks (check_common), and, when `only_netns` != 0 (a --netns run), that
// every flow record belongs to that namespace.
void finish_run(AgentRun& agent, int sig = SIGINT, uint64_t only_netns = 0);

// CHECK that exactly one record matches; returns it (nullopt otherwise).
std::optional<json> exactly_one(const Records& recs, const Match& m, const std::string& what);
// CHECK that at least one record matches; returns them.
std::vector<json> at_least_one(const Records& recs, const Match& m, const std::string& what);

}  // namespace itest
