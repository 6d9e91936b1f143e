// The subcommands. Each returns the process exit code;
// fatal setup errors are thrown as std::runtime_error and reported by main.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "aggregate/snapshot.hpp"
#include "cli/cli.hpp"
#include "probes/plan.hpp"

namespace connscope {

int run_probe(const CommonOptions& common, bool json);
int run_trace(const CommonOptions& common, const TraceOptions& opts);
int run_run(const CommonOptions& common, const RunOptions& opts);
int run_record(const CommonOptions& common, const RecordOptions& opts);
// The report on stdout; 1 when the network sysctls could not be read, or
// when fail_on is set and a finding is at or above it.
int run_doctor(bool json, std::optional<FindingLevel> fail_on);

struct BuildInfo;
BuildInfo build_info();  // version and `uname -r`
// The note a --netns inode that no namespace has (yet) gets, or "" when one
// has it or there is no --netns filter.
std::string unknown_netns_note(uint32_t netns);
void print_unknown_netns_note(uint32_t netns);  // on stderr, when there is one
// The agent's HTTP endpoint (--listen's host and port) in the agent's netns,
// as the tables leave it out.
SelfEndpoint self_endpoint(const std::string& host, uint16_t port);
// The strategies in use, as the snapshot's health and a recording's meta name them.
std::vector<StrategyInUse> strategies_in_use(const std::vector<FamilyChoice>& choices);

}  // namespace connscope
