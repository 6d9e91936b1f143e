// Plans one strategy per family from the kernel's features and loads it,
// moving a family whose programs fail to load or attach to its next tier.
#include "probes/plan.hpp"

#include <algorithm>
#include <cstdio>
#include <stdexcept>

#include "probes/kernel_features.hpp"
#include "probes/privileges.hpp"

namespace connscope {

Plan plan_strategies(const CommonOptions& common, bool require_all) {
  if (auto missing = missing_bpf_privileges(); !missing.empty()) throw std::runtime_error(missing);
  install_libbpf_logger(common.verbose);
  Plan plan;
  plan.features = probe_kernel(common.btf_path);
  if (!plan.features.btf) throw std::runtime_error(plan.features.btf_error);
  plan.choices = choose_strategies(plan.features, common.forced);
  if (!require_all) return plan;
  for (const auto& c : plan.choices) {
    if (c.tier) continue;
    auto forced = common.forced.find(c.family);
    std::string why = c.rejected.empty() ? "no strategy" : c.rejected.back().reason;
    if (forced != common.forced.end())
      throw std::runtime_error("--strategy " + std::string(family_name(c.family)) + "=" +
                               std::string(strategy_name(c.family, forced->second)) +
                               " cannot run on this kernel: " + why);
    throw std::runtime_error("no working strategy for the " + std::string(family_name(c.family)) +
                             " family on this kernel: " + why);
  }
  return plan;
}

std::unique_ptr<BpfProbes> load_plan(Plan& plan, LoaderConfig cfg, const CommonOptions& common) {
  for (;;) {
    for (const auto& c : plan.choices) cfg.tiers[c.family] = *c.tier;
    try {
      return std::make_unique<BpfProbes>(cfg);
    } catch (const StrategyFailure& failure) {
      auto& choice = *std::find_if(plan.choices.begin(), plan.choices.end(),
                                   [&](const FamilyChoice& c) { return c.family == failure.family; });
      std::string name =
          std::string(family_name(failure.family)) + "=" + std::string(strategy_name(failure.family, failure.tier));
      if (common.forced.contains(failure.family))
        throw std::runtime_error("--strategy " + name + " cannot run on this kernel: " + failure.what());
      choice.rejected.push_back({failure.tier, failure.what()});
      choice.tier.reset();
      for (Tier t : all_tiers) {
        if (t <= failure.tier || strategy_unavailable(failure.family, t, plan.features)) continue;
        choice.tier = t;
        break;
      }
      if (!choice.tier) throw std::runtime_error("no working strategy for " + name + ": " + failure.what());
      std::fprintf(stderr, "connscope: %s failed (%s); using %s\n", name.c_str(), failure.what(),
                   std::string(strategy_name(failure.family, *choice.tier)).c_str());
    }
  }
}

}  // namespace connscope
