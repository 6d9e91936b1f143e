// Strategy names and the per-tier availability checks, derived from the family table.
#include "probes/strategy.hpp"

namespace connscope {
namespace {

bool is_function_kind(AttachKind k) {
  return k == AttachKind::fentry || k == AttachKind::fexit || k == AttachKind::kprobe || k == AttachKind::kretprobe;
}

template <typename Fn>
void for_each_hook(Family f, Tier t, Fn&& fn) {
  for (const Hook& h : hook_table())
    if (h.family == f && h.tier == t) fn(h);
}

bool any_hook(Family f, Tier t, bool (*pred)(AttachKind)) {
  bool found = false;
  for_each_hook(f, t, [&](const Hook& h) { found = found || pred(h.kind); });
  return found;
}

}  // namespace

std::string_view family_name(Family f) { return family_table[static_cast<size_t>(f)].name; }

std::optional<Family> parse_family(std::string_view name) {
  for (Family f : all_families)
    if (family_name(f) == name) return f;
  return std::nullopt;
}

std::string_view tier_name(Tier t) {
  switch (t) {
    case Tier::preferred:
      return "preferred";
    case Tier::second:
      return "second";
    case Tier::fallback:
      return "fallback";
  }
  return "?";
}

std::string_view strategy_name(Family f, Tier t) {
  return family_table[static_cast<size_t>(f)].strategies.at(static_cast<size_t>(t));
}

std::optional<Tier> parse_strategy(Family f, std::string_view name) {
  for (Tier t : all_tiers)
    if (strategy_name(f, t) == name || tier_name(t) == name) return t;
  return std::nullopt;
}

std::set<std::string> hooked_kernel_functions() {
  std::set<std::string> out;
  for (const Hook& h : hook_table())
    if (is_function_kind(h.kind)) out.emplace(h.target);
  return out;
}

std::set<std::string> hooked_tracepoints() {
  std::set<std::string> out;
  for (const Hook& h : hook_table())
    if (h.kind == AttachKind::tracepoint) out.emplace(h.target);
  return out;
}

std::vector<std::string> attach_points(Family f, Tier t) {
  std::vector<std::string> out;
  for_each_hook(f, t, [&](const Hook& h) { out.push_back(attach_point(h)); });
  return out;
}

// The kernel's capabilities are checked before the hooks' targets, and the
// cgroup v2 root last, so a kernel lacking several things names the most
// basic one.
std::optional<std::string> strategy_unavailable(Family f, Tier t, const KernelFeatures& k) {
  if (!k.btf) return k.btf_error;
  if (!k.ringbuf) return k.ringbuf_error;
  using enum AttachKind;
  if (any_hook(f, t, [](AttachKind a) { return a == fentry || a == fexit || a == tp_btf; }) && !k.tracing)
    return k.tracing_error;
  if (any_hook(f, t, [](AttachKind a) { return a == raw_tp; }) && !k.raw_tp) return k.raw_tp_error;
  if (any_hook(f, t, [](AttachKind a) { return a == kprobe || a == kretprobe; }) && !k.kprobes) return k.kprobes_error;
  if (any_hook(f, t, [](AttachKind a) { return a == tracepoint; }) && !k.tracefs) return k.tracefs_error;
  std::optional<std::string> missing;
  for_each_hook(f, t, [&](const Hook& h) {
    if (missing) return;
    const std::string target(h.target);
    switch (h.kind) {
      case tp_btf:
        if (!k.btf_tracepoints.contains(std::string(tracepoint_name(h.target))))
          missing = "no BTF tracepoint " + std::string(tracepoint_name(h.target)) + " in this kernel";
        break;
      case fentry:
      case fexit:
        if (!k.btf_functions.contains(target))
          missing = "function " + target + " not in kernel BTF (inlined or renamed)";
        break;
      case kprobe:
      case kretprobe:
        if (!k.kallsyms.contains(target)) missing = "function " + target + " not in /proc/kallsyms";
        break;
      case tracepoint:
        if (!k.tracepoints.contains(target)) missing = "tracepoint " + target + " not found in tracefs";
        break;
      case raw_tp:  // the raw tracepoint probe attached one; each is checked at attach
      case cgroup_sock_addr:
      case sock_ops:
      case user_space:
        break;
    }
  });
  if (missing) return missing;
  if (any_hook(f, t, [](AttachKind a) { return attaches_to_cgroup(a); })) {
    if (!k.cgroup2) return k.cgroup2_error;
    if (!k.cgroup_progs) return k.cgroup_progs_error;
  }
  return std::nullopt;
}

std::vector<FamilyChoice> choose_strategies(const KernelFeatures& k, const std::map<Family, Tier>& forced) {
  std::vector<FamilyChoice> out;
  for (Family f : all_families) {
    FamilyChoice choice{f, std::nullopt, {}};
    auto it = forced.find(f);
    for (Tier t : all_tiers) {
      if (it != forced.end() && t != it->second) {
        if (t < it->second)
          choice.rejected.push_back({t, "not requested (--strategy " + std::string(family_name(f)) + "=" +
                                            std::string(strategy_name(f, it->second)) + ")"});
        continue;
      }
      if (auto why = strategy_unavailable(f, t, k)) {
        choice.rejected.push_back({t, *why});
        continue;
      }
      choice.tier = t;
      break;
    }
    out.push_back(std::move(choice));
  }
  return out;
}

}  // namespace connscope
