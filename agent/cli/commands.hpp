// The `probe` and `trace` subcommands. Each returns the process exit code;
// fatal setup errors are thrown as std::runtime_error and reported by main.
#pragma once

#include <memory>

#include "cli/cli.hpp"
#include "probes/loader.hpp"

namespace connscope {

int run_probe(const CommonOptions& common, bool json);
int run_trace(const CommonOptions& common, const TraceOptions& opts);
int run_run(const CommonOptions& common, const RunOptions& opts);
int run_record(const CommonOptions& common, const RecordOptions& opts);

struct BuildInfo;
BuildInfo build_info();  // version and `uname -r`

// Probes the kernel and picks strategies; throws if a family has none or a
// forced strategy cannot run here (message names the strategy and reason).
struct Plan {
  KernelFeatures features;
  std::vector<FamilyChoice> choices;
};
Plan plan_strategies(const CommonOptions& common, bool require_all);

// Loads and attaches the plan. A family whose programs fail to load or
// attach moves to its next available tier, and the failure is recorded in
// plan.choices as a rejection; a forced strategy that fails is fatal.
std::unique_ptr<BpfProbes> load_plan(Plan& plan, LoaderConfig cfg, const CommonOptions& common);

}  // namespace connscope
