// Unit tests: strategy choice from mocked kernel features.
#include <doctest/doctest.h>

#include "probes/strategy.hpp"

using namespace connscope;

namespace {

KernelFeatures full_kernel() {
  KernelFeatures k;
  k.btf = k.tracing = k.kprobes = k.raw_tp = k.tracefs = k.cgroup2 = k.cgroup_progs = k.ringbuf = true;
  k.cgroup2_path = "/sys/fs/cgroup";
  for (const char* f : {"tcp_v4_connect", "tcp_v6_connect", "inet_hash_connect", "inet6_hash_connect",
                        "tcp_conn_request", "tcp_v4_syn_recv_sock", "tcp_v6_syn_recv_sock"}) {
    k.btf_functions.insert(f);
    k.kallsyms.insert(f);
  }
  for (const char* t : {"inet_sock_set_state", "tcp_retransmit_skb", "tcp_retransmit_synack"})
    k.btf_tracepoints.insert(t);
  for (const char* t :
       {"sock/inet_sock_set_state", "tcp/tcp_retransmit_skb", "tcp/tcp_retransmit_synack", "syscalls/sys_exit_connect"})
    k.tracepoints.insert(t);
  return k;
}

// The 6.18 build machine: no kprobes, tracing programs refused.
KernelFeatures restricted_kernel() {
  KernelFeatures k = full_kernel();
  k.tracing = false;
  k.tracing_error = "fentry refused: EPERM";
  k.kprobes = false;
  k.kprobes_error = "no kprobes";
  return k;
}

const FamilyChoice& choice(const std::vector<FamilyChoice>& cs, Family f) {
  for (const auto& c : cs)
    if (c.family == f) return c;
  FAIL("family missing");
  return cs.front();
}

}  // namespace

TEST_CASE("a full kernel gets the preferred tier everywhere") {
  auto cs = choose_strategies(full_kernel(), {});
  REQUIRE(cs.size() == 5);
  for (const auto& c : cs) {
    REQUIRE(c.tier);
    CHECK(*c.tier == Tier::preferred);
    CHECK(c.rejected.empty());
  }
}

TEST_CASE("the restricted kernel falls back and says why") {
  auto cs = choose_strategies(restricted_kernel(), {});
  auto& conn = choice(cs, Family::connect);
  REQUIRE(conn.tier);
  CHECK(*conn.tier == Tier::fallback);
  REQUIRE(conn.rejected.size() == 2);
  CHECK(conn.rejected[0].tier == Tier::preferred);
  CHECK(conn.rejected[0].reason == "fentry refused: EPERM");
  CHECK(conn.rejected[1].reason == "no kprobes");
  auto& state = choice(cs, Family::state);
  CHECK(*state.tier == Tier::second);  // raw_tp works without kprobes
  CHECK(strategy_name(Family::state, *state.tier) == "raw_tp");
}

TEST_CASE("a function missing from BTF rejects fentry for that family only") {
  KernelFeatures k = full_kernel();
  k.btf_functions.erase("inet6_hash_connect");
  auto cs = choose_strategies(k, {});
  CHECK(*choice(cs, Family::port_alloc).tier == Tier::second);
  CHECK(choice(cs, Family::port_alloc).rejected[0].reason.find("inet6_hash_connect") != std::string::npos);
  CHECK(*choice(cs, Family::connect).tier == Tier::preferred);
}

TEST_CASE("fallback needs cgroup v2 for connect and port_alloc, not for state") {
  KernelFeatures k = restricted_kernel();
  k.cgroup2 = false;
  k.cgroup2_error = "no cgroup v2";
  auto cs = choose_strategies(k, {});
  CHECK_FALSE(choice(cs, Family::connect).tier);
  CHECK(choice(cs, Family::connect).rejected.back().reason == "no cgroup v2");
  CHECK(choice(cs, Family::accept_queue).tier);
}

TEST_CASE("forcing a strategy") {
  auto cs = choose_strategies(full_kernel(), {{Family::connect, Tier::fallback}});
  auto& conn = choice(cs, Family::connect);
  CHECK(*conn.tier == Tier::fallback);
  CHECK(conn.rejected.size() == 2);
  CHECK(conn.rejected[0].reason.find("not requested") != std::string::npos);

  auto forced = choose_strategies(restricted_kernel(), {{Family::connect, Tier::preferred}});
  CHECK_FALSE(choice(forced, Family::connect).tier);
  CHECK(choice(forced, Family::connect).rejected.back().reason == "fentry refused: EPERM");
}

TEST_CASE("no BTF rejects every strategy with the BTF reason") {
  KernelFeatures k = full_kernel();
  k.btf = false;
  k.btf_error = "no BTF: pass --btf";
  for (const auto& c : choose_strategies(k, {})) {
    CHECK_FALSE(c.tier);
    CHECK(c.rejected.back().reason == "no BTF: pass --btf");
  }
}

TEST_CASE("strategy names and aliases") {
  CHECK(parse_strategy(Family::state, "tp_btf") == Tier::preferred);
  CHECK(parse_strategy(Family::state, "tracepoint") == Tier::fallback);
  CHECK(parse_strategy(Family::connect, "kprobe") == Tier::second);
  CHECK(parse_strategy(Family::connect, "second") == Tier::second);
  CHECK_FALSE(parse_strategy(Family::connect, "raw_tp"));
  CHECK(attach_points(Family::port_alloc, Tier::preferred) ==
        std::vector<std::string>{"fentry/inet_hash_connect", "fexit/inet_hash_connect", "fentry/inet6_hash_connect",
                                 "fexit/inet6_hash_connect"});
}
