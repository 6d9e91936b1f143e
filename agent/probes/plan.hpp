// The strategy plan: which tier each hook family uses on this kernel, and
// loading it with a fall-back to the next tier when a program is refused.
#pragma once

#include <memory>
#include <vector>

#include "probes/capture_config.hpp"
#include "probes/loader.hpp"
#include "probes/strategy.hpp"

namespace connscope {

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
