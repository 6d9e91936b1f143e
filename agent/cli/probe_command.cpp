#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "cli/commands.hpp"
#include "probes/kernel_features.hpp"
#include "probes/loader.hpp"
#include "probes/privileges.hpp"

namespace connscope {

int run_probe(const CommonOptions& common, bool json) {
  Plan plan = plan_strategies(common, false);
  // Probe for real: load and attach what was chosen, demoting what fails.
  bool all_chosen = std::all_of(plan.choices.begin(), plan.choices.end(), [](const auto& c) { return c.tier; });
  if (all_chosen) {
    LoaderConfig cfg;
    cfg.btf_path = common.btf_path;
    cfg.cgroup2_path = plan.features.cgroup2_path;
    cfg.ringbuf_bytes = 1u << 16;
    load_plan(plan, cfg, common);
  }
  bool all_ok = true;
  if (json) {
    nlohmann::json families = nlohmann::json::array();
    for (const auto& c : plan.choices) {
      nlohmann::json rejected = nlohmann::json::array();
      for (const auto& r : c.rejected)
        rejected.push_back(
            {{"strategy", strategy_name(c.family, r.tier)}, {"tier", tier_name(r.tier)}, {"reason", r.reason}});
      nlohmann::json fam = {{"family", family_name(c.family)}, {"ok", c.tier.has_value()}, {"rejected", rejected}};
      fam["strategy"] = c.tier ? nlohmann::json(strategy_name(c.family, *c.tier)) : nlohmann::json(nullptr);
      fam["tier"] = c.tier ? nlohmann::json(tier_name(*c.tier)) : nlohmann::json(nullptr);
      fam["attach"] = c.tier ? attach_points(c.family, *c.tier) : std::vector<std::string>{};
      all_ok = all_ok && c.tier.has_value();
      families.push_back(fam);
    }
    nlohmann::json out = {{"families", families}, {"cgroup2", plan.features.cgroup2_path}};
    std::printf("%s\n", out.dump(2).c_str());
    return all_ok ? 0 : 1;
  }
  for (const auto& c : plan.choices) {
    std::string attach;
    if (c.tier)
      for (const auto& a : attach_points(c.family, *c.tier)) attach += (attach.empty() ? "" : ", ") + a;
    std::printf("%-13s %-11s %s\n", std::string(family_name(c.family)).c_str(),
                c.tier ? std::string(strategy_name(c.family, *c.tier)).c_str() : "NONE", attach.c_str());
    for (const auto& r : c.rejected)
      std::printf("%-13s   rejected %s: %s\n", "", std::string(strategy_name(c.family, r.tier)).c_str(),
                  r.reason.c_str());
    all_ok = all_ok && c.tier.has_value();
  }
  return all_ok ? 0 : 1;
}

}  // namespace connscope
