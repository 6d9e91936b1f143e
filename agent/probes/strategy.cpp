#include "probes/strategy.hpp"

#include <algorithm>

namespace connscope {
namespace {

constexpr std::array<std::string_view, CS_FAM_MAX> family_names = {"connect", "port_alloc", "state", "retransmit",
                                                                   "accept_queue"};

bool uses_tracepoint_names(Family f) { return f == Family::state || f == Family::retransmit; }

// Kernel functions each function-hook family attaches to (fentry and kprobe tiers).
std::vector<std::string> hooked_functions(Family f) {
  switch (f) {
    case Family::connect:
      return {"tcp_v4_connect", "tcp_v6_connect"};
    case Family::port_alloc:
      return {"inet_hash_connect", "inet6_hash_connect"};
    case Family::accept_queue:
      return {"tcp_conn_request", "tcp_v4_syn_recv_sock", "tcp_v6_syn_recv_sock"};
    default:
      return {};
  }
}

std::vector<std::string> hooked_tracepoints(Family f) {
  switch (f) {
    case Family::state:
      return {"sock/inet_sock_set_state"};
    case Family::retransmit:
      return {"tcp/tcp_retransmit_skb", "tcp/tcp_retransmit_synack"};
    case Family::connect:
    case Family::port_alloc:
      return {"syscalls/sys_exit_connect", "sock/inet_sock_set_state"};
    case Family::accept_queue:
      return {"sock/inet_sock_set_state"};
  }
  return {};
}

std::string tp_name(const std::string& category_and_name) {
  return category_and_name.substr(category_and_name.find('/') + 1);
}

}  // namespace

std::string_view family_name(Family f) { return family_names.at(static_cast<size_t>(f)); }

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
  if (uses_tracepoint_names(f)) {
    switch (t) {
      case Tier::preferred:
        return "tp_btf";
      case Tier::second:
        return "raw_tp";
      case Tier::fallback:
        return "tracepoint";
    }
  }
  switch (t) {
    case Tier::preferred:
      return "fentry";
    case Tier::second:
      return "kprobe";
    case Tier::fallback:
      return "fallback";
  }
  return "?";
}

std::optional<Tier> parse_strategy(Family f, std::string_view name) {
  for (Tier t : all_tiers)
    if (strategy_name(f, t) == name || tier_name(t) == name) return t;
  return std::nullopt;
}

std::set<std::string> hooked_kernel_functions() {
  std::set<std::string> out;
  for (Family f : all_families)
    for (auto& fn : hooked_functions(f)) out.insert(std::move(fn));
  return out;
}

std::vector<std::string> attach_points(Family f, Tier t) {
  std::vector<std::string> out;
  if (t == Tier::fallback) {
    switch (f) {
      case Family::connect:
      case Family::port_alloc:
        out = {"cgroup/connect4", "cgroup/connect6", "sockops (TCP_CONNECT_CB)"};
        for (const auto& tp : hooked_tracepoints(f)) out.push_back("tracepoint/" + tp);
        return out;
      case Family::accept_queue:
        return {"tracepoint/sock/inet_sock_set_state (LISTEN->SYN_RECV)", "netlink sock_diag listeners",
                "/proc/net/netstat ListenOverflows, ListenDrops"};
      default:
        for (const auto& tp : hooked_tracepoints(f)) out.push_back("tracepoint/" + tp);
        return out;
    }
  }
  if (uses_tracepoint_names(f)) {
    for (const auto& tp : hooked_tracepoints(f)) out.push_back(std::string(strategy_name(f, t)) + "/" + tp_name(tp));
    return out;
  }
  for (const auto& fn : hooked_functions(f)) {
    if (t == Tier::preferred) {
      out.push_back("fentry/" + fn);
      if (f != Family::accept_queue) out.push_back("fexit/" + fn);
    } else {
      out.push_back("kprobe/" + fn);
      if (f != Family::accept_queue) out.push_back("kretprobe/" + fn);
    }
  }
  return out;
}

std::optional<std::string> strategy_unavailable(Family f, Tier t, const KernelFeatures& k) {
  if (!k.btf) return k.btf_error;
  if (!k.ringbuf) return k.ringbuf_error;
  if (t == Tier::preferred) {
    if (!k.tracing) return k.tracing_error;
    if (uses_tracepoint_names(f)) {
      for (const auto& tp : hooked_tracepoints(f))
        if (!k.btf_tracepoints.contains(tp_name(tp))) return "no BTF tracepoint " + tp_name(tp) + " in this kernel";
    }
    for (const auto& fn : hooked_functions(f))
      if (!k.btf_functions.contains(fn)) return "function " + fn + " not in kernel BTF (inlined or renamed)";
    return std::nullopt;
  }
  if (t == Tier::second) {
    if (uses_tracepoint_names(f)) return k.raw_tp ? std::nullopt : std::optional(k.raw_tp_error);
    if (!k.kprobes) return k.kprobes_error;
    for (const auto& fn : hooked_functions(f))
      if (!k.kallsyms.contains(fn)) return "function " + fn + " not in /proc/kallsyms";
    return std::nullopt;
  }
  if (!k.tracefs) return k.tracefs_error;
  for (const auto& tp : hooked_tracepoints(f))
    if (!k.tracepoints.contains(tp)) return "tracepoint " + tp + " not found in tracefs";
  if (f == Family::connect || f == Family::port_alloc) {
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
