// The family table against the BPF object: every program has a row, every
// row's program exists with the section and name its row implies.
#include <bpf/libbpf.h>
#include <doctest/doctest.h>

#include <memory>
#include <set>
#include <string>

#include "probes/families.hpp"
#include "probes/strategy.hpp"

// clang-format off: the skeleton's rodata holds a cs_filter, declared first.
#include "connscope.skel.h"
#include "connscope/events.h"
// clang-format on

using namespace connscope;

namespace {

struct SkelCloser {
  void operator()(connscope_bpf* s) const { connscope_bpf__destroy(s); }
};

}  // namespace

TEST_CASE("every BPF program has a row in the family table, with its section and name") {
  std::unique_ptr<connscope_bpf, SkelCloser> skel(connscope_bpf__open());
  REQUIRE(skel);
  std::set<const bpf_program*> in_table;
  for (const Hook& h : hook_table()) {
    if (!h.program) {
      CHECK((h.kind == AttachKind::tracepoint || h.kind == AttachKind::user_space));
      continue;
    }
    const bpf_program* prog = h.program(skel.get());
    REQUIRE(prog);
    INFO(attach_point(h));
    // The section is the attach point (sockops has one section for every op).
    std::string section = bpf_program__section_name(prog);
    CHECK(section == (h.kind == AttachKind::sock_ops ? "sockops" : attach_point(h)));
    // cs_<family>_<hook>_<kind>, the family being the first row's (a shared
    // fallback program is named for the family listed first).
    if (in_table.insert(prog).second) {
      std::string name = bpf_program__name(prog);
      CHECK(name.starts_with("cs_" + std::string(family_name(h.family)) + "_"));
      CHECK(name.ends_with(program_name_suffix(h.kind)));
    }
  }
  bpf_program* prog;
  bpf_object__for_each_program(prog, skel->obj) {
    INFO(bpf_program__name(prog));
    CHECK(in_table.contains(prog));
  }
}

TEST_CASE("every family has hooks on every tier") {
  for (Family f : all_families)
    for (Tier t : all_tiers) {
      INFO(family_name(f), " ", tier_name(t));
      CHECK_FALSE(attach_points(f, t).empty());
    }
}

TEST_CASE("attach points as probe prints them") {
  CHECK(attach_points(Family::connect, Tier::fallback) ==
        std::vector<std::string>{"cgroup/connect4", "cgroup/connect6", "sockops (TCP_CONNECT_CB)",
                                 "tracepoint/syscalls/sys_exit_connect", "tracepoint/sock/inet_sock_set_state"});
  CHECK(attach_points(Family::retransmit, Tier::second) ==
        std::vector<std::string>{"raw_tp/tcp_retransmit_skb", "raw_tp/tcp_retransmit_synack"});
  CHECK(attach_points(Family::accept_queue, Tier::fallback) ==
        std::vector<std::string>{"tracepoint/sock/inet_sock_set_state (LISTEN->SYN_RECV)",
                                 "netlink sock_diag listeners", "/proc/net/netstat ListenOverflows, ListenDrops"});
  CHECK(hooked_kernel_functions() == std::set<std::string>{"tcp_v4_connect", "tcp_v6_connect", "inet_hash_connect",
                                                           "inet6_hash_connect", "tcp_conn_request",
                                                           "tcp_v4_syn_recv_sock", "tcp_v6_syn_recv_sock"});
  CHECK(hooked_tracepoints() == std::set<std::string>{"sock/inet_sock_set_state", "tcp/tcp_retransmit_skb",
                                                      "tcp/tcp_retransmit_synack", "syscalls/sys_exit_connect"});
}
