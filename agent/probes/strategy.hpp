// The choice of one attach strategy per hook family from the running
// kernel's features, checked against the family table. Pure logic:
// unit-tested with mocked KernelFeatures.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "probes/families.hpp"

namespace connscope {

std::string_view family_name(Family f);
std::optional<Family> parse_family(std::string_view name);
std::string_view tier_name(Tier t);
// The strategy's user-facing name: fentry/kprobe/fallback or tp_btf/raw_tp/tracepoint.
std::string_view strategy_name(Family f, Tier t);
// Accepts a family's strategy name or a tier alias (preferred, second, fallback).
std::optional<Tier> parse_strategy(Family f, std::string_view name);
// Every kernel function a fentry or kprobe strategy of any family hooks.
std::set<std::string> hooked_kernel_functions();
// Every tracefs tracepoint ("category/name") a strategy of any family uses.
std::set<std::string> hooked_tracepoints();
// Kernel functions / tracepoints a strategy attaches to, for `probe` output.
std::vector<std::string> attach_points(Family f, Tier t);

// What the loader learned about the running kernel. Each capability carries
// the reason it is missing, phrased for the operator.
struct KernelFeatures {
  bool btf = false;
  std::string btf_error;
  bool tracing = false;  // BPF_PROG_TYPE_TRACING (fentry/fexit/tp_btf) loads and attaches
  std::string tracing_error;
  std::set<std::string> btf_functions;    // functions named in vmlinux BTF (fentry targets)
  std::set<std::string> btf_tracepoints;  // btf_trace_<name> typedefs (tp_btf targets)
  bool kprobes = false;
  std::string kprobes_error;
  std::set<std::string> kallsyms;  // kprobe-able function names, only those we need
  bool raw_tp = false;
  std::string raw_tp_error;
  bool tracefs = false;
  std::string tracefs_error;
  std::set<std::string> tracepoints;  // "category/name" present in tracefs
  bool cgroup2 = false;
  std::string cgroup2_error;
  std::string cgroup2_path;
  bool cgroup_progs = false;  // cgroup sock_addr and sock_ops program types load
  std::string cgroup_progs_error;
  bool ringbuf = false;
  std::string ringbuf_error;
};

struct Rejection {
  Tier tier;
  std::string reason;
};

struct FamilyChoice {
  Family family;
  std::optional<Tier> tier;         // empty: no strategy works on this kernel
  std::vector<Rejection> rejected;  // better strategies, and why they were not used
};

// Why a strategy cannot run here; empty when it can.
std::optional<std::string> strategy_unavailable(Family f, Tier t, const KernelFeatures& k);

// Chooses the best available strategy per family. A forced strategy is used
// only if available; otherwise the choice is empty and the rejection says why.
std::vector<FamilyChoice> choose_strategies(const KernelFeatures& k, const std::map<Family, Tier>& forced);

}  // namespace connscope
