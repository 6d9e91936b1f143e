// The family table: the hook families, their strategy names, and per tier
// every program and attach point (families.cpp). The loader, the strategy
// checks, the kernel-feature probe and `probe` all derive from it.
#pragma once

#include <array>
#include <span>
#include <string>
#include <string_view>

#include "connscope/events.h"

struct connscope_bpf;
struct bpf_program;

namespace connscope {

enum class Family { connect, port_alloc, state, retransmit, accept_queue };
enum class Tier { preferred = CS_TIER_PREFERRED, second = CS_TIER_SECOND, fallback = CS_TIER_FALLBACK };

struct FamilyInfo {
  Family family;
  std::string_view name;                       // in `probe`, --strategy, metrics
  std::array<std::string_view, 3> strategies;  // the strategy's name per tier
};

// In Family order.
inline constexpr FamilyInfo family_table[] = {
    {Family::connect, "connect", {"fentry", "kprobe", "fallback"}},
    {Family::port_alloc, "port_alloc", {"fentry", "kprobe", "fallback"}},
    {Family::state, "state", {"tp_btf", "raw_tp", "tracepoint"}},
    {Family::retransmit, "retransmit", {"tp_btf", "raw_tp", "tracepoint"}},
    {Family::accept_queue, "accept_queue", {"fentry", "kprobe", "fallback"}},
};

static_assert(
    [] {
      for (size_t i = 0; i < std::size(family_table); i++)
        if (static_cast<size_t>(family_table[i].family) != i) return false;
      return true;
    }(),
    "family_table is indexed by Family");

inline constexpr auto all_families = [] {
  std::array<Family, std::size(family_table)> out{};
  for (size_t i = 0; i < out.size(); i++) out[i] = family_table[i].family;
  return out;
}();
inline constexpr std::array<Tier, 3> all_tiers = {Tier::preferred, Tier::second, Tier::fallback};

// How a hook attaches, which fixes what the kernel must offer for it.
enum class AttachKind {
  fentry,            // BTF function (BPF_PROG_TYPE_TRACING)
  fexit,             // BTF function (BPF_PROG_TYPE_TRACING)
  kprobe,            // kallsyms function
  kretprobe,         // kallsyms function
  tp_btf,            // BTF tracepoint (BPF_PROG_TYPE_TRACING)
  raw_tp,            // raw tracepoint
  tracepoint,        // tracefs tracepoint "category/name"
  cgroup_sock_addr,  // cgroup v2 root, target = the hook (connect4)
  sock_ops,          // cgroup v2 root
  user_space,        // no program: the agent polls (target says what)
};

// The skeleton's member for a program: a renamed program breaks the build.
using ProgramRef = bpf_program* (*)(connscope_bpf*);

// One attach point of one family on one tier.
struct Hook {
  Family family;
  Tier tier;
  AttachKind kind;
  std::string_view target;  // function, tracepoint "category/name", cgroup hook; "" for sock_ops
  ProgramRef program;       // nullptr: served by another family's program or by user space
  std::string_view note;    // shown after the attach point in `probe`
};

// Every hook, in attach order.
std::span<const Hook> hook_table();

bool attaches_to_cgroup(AttachKind kind);
// "sock/inet_sock_set_state" -> "inet_sock_set_state" (how tp_btf and raw_tp name it).
std::string_view tracepoint_name(std::string_view category_and_name);
// How the names of this kind's programs end: cs_<family>_<hook>_<kind>.
std::string_view program_name_suffix(AttachKind kind);
// The attach point as `probe` prints it: "fentry/tcp_v4_connect", "cgroup/connect4", ...
std::string attach_point(const Hook& h);

}  // namespace connscope
