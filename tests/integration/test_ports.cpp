// Scenario 5: ephemeral-port exhaustion towards one destination. A range of
// ten ports, tcp_tw_reuse=0, and a client that closes first (its ports stay
// in TIME_WAIT, for 60 s with tcp_rfc1337=1) runs out of ports: connect()
// fails with EADDRNOTAVAIL.
#include <doctest/doctest.h>
#include <netinet/in.h>

#include <cerrno>
#include <set>

#include "agent_process.hpp"
#include "events.hpp"
#include "netns.hpp"
#include "scenario.hpp"
#include "traffic.hpp"

using namespace itest;

namespace {

void port_exhaustion(int af) {
  constexpr uint16_t kPort = 8084;
  constexpr int kLo = 42000, kHi = 42009, kMaxAttempts = 30;
  Topology t;
  t.client.write_sysctl("net/ipv4/ip_local_port_range", std::to_string(kLo) + " " + std::to_string(kHi));
  t.client.write_sysctl("net/ipv4/tcp_tw_reuse", "0");
  keep_time_wait(t.client);
  const uint64_t C = t.client.inode();
  const std::string caddr = t.client_addr(af), saddr = t.server_addr(af);
  AgentRun agent({"--netns", std::to_string(C)});
  INFO(t.describe());
  INFO(agent.describe());
  INFO("records of the client namespace:\n" << agent.records().dump_netns({C}));

  ExhaustionFacts f = drive_port_exhaustion(t, af, kPort, kMaxAttempts);
  INFO("client ports: " << [&] {
    std::string s;
    for (auto p : f.ports) s += std::to_string(p) + " ";
    return s;
  }());
  // Kernel side: the range is used up, then EADDRNOTAVAIL, within the bound.
  REQUIRE_MESSAGE(f.final_err == EADDRNOTAVAIL, "after " << f.attempts << " attempts connect() returned "
                                                         << (f.final_err ? errno_str(f.final_err) : "success")
                                                         << ", expected EADDRNOTAVAIL");
  std::set<uint16_t> distinct(f.ports.begin(), f.ports.end());
  // tcp_rfc1337=1: every closed port stays in TIME_WAIT, RSTs from the
  // server side or not, so the client saw each one there and none was
  // used twice.
  CHECK_MESSAGE(f.no_tw_ports.empty(), f.no_tw_ports.size() << " closed ports not seen in TIME_WAIT");
  CHECK(distinct.size() == f.ports.size());
  if (f.server_resets > 0)
    MESSAGE("the server namespace sent " << f.server_resets << " RSTs; the client's TIME_WAIT ignored them");
  for (auto p : f.ports) CHECK((p >= kLo && p <= kHi));
  CHECK_MESSAGE(f.ports.size() == static_cast<std::size_t>(kHi - kLo + 1),
                "every port of the range should have been used before EADDRNOTAVAIL");

  const Match m_fail_alloc{{"type", "port_alloc"}, {"netns", C}, {"errno", EADDRNOTAVAIL}};
  const Match m_fail_connect{{"type", "connect"}, {"netns", C}, {"errno", EADDRNOTAVAIL}};
  agent.wait_for(
      [&](const Records& r) {
        return r.any(m_fail_alloc) && r.any(m_fail_connect) &&
               r.where(Match{{"type", "state"}, {"event", "time_wait"}, {"netns", C}}).size() >= f.ports.size();
      },
      ms(10000));
  finish_run(agent, SIGINT, C);
  const Records& R = agent.records();

  // One successful port search per connection, each inside the range.
  for (uint16_t p : f.ports) {
    CAPTURE(p);
    if (auto r = exactly_one(R, Match{{"type", "port_alloc"}, {"netns", C}, {"port", p}}, "port_alloc success")) {
      check_flow(*r, FlowExpect{af, caddr, saddr, p, kPort, C});
      check_task(*r, f.pid, f.pid, kClientComm);
      CHECK_FIELD(*r, "errno", 0);
      CHECK_FIELD(*r, "range_lo", kLo);
      CHECK_FIELD(*r, "range_hi", kHi);
      check_approximate_by_tier(*r);
    }
    if (auto r = exactly_one(R, Match{{"type", "connect"}, {"netns", C}, {"sport", p}}, "connect success")) {
      CHECK_FIELD(*r, "errno", 0);
      check_task(*r, f.pid, f.pid, kClientComm);
    }
    // The client closed first: each of its ports went to TIME_WAIT.
    exactly_one(R, Match{{"type", "state"}, {"event", "time_wait"}, {"netns", C}, {"sport", p}}, "state time_wait");
  }
  auto ok_allocs = R.where(Match{{"type", "port_alloc"}, {"netns", C}, {"errno", 0}});
  for (const auto& r : ok_allocs) {
    const auto port = r.value("port", 0);
    CHECK_MESSAGE((port >= kLo && port <= kHi), "port_alloc port outside the range: " << r.dump());
  }

  // The failed search: EADDRNOTAVAIL, no port, the destination and the process.
  if (auto r = exactly_one(R, m_fail_alloc, "port_alloc EADDRNOTAVAIL")) {
    CHECK_FIELD(*r, "error", "EADDRNOTAVAIL");
    CHECK_FIELD(*r, "port", 0);
    CHECK_FIELD(*r, "family", family_name(af));
    CHECK_FIELD(*r, "daddr", saddr);
    CHECK_FIELD(*r, "dport", kPort);
    CHECK_FIELD(*r, "range_lo", kLo);
    CHECK_FIELD(*r, "range_hi", kHi);
    check_task(*r, f.pid, f.pid, kClientComm);
  }
  if (auto r = exactly_one(R, m_fail_connect, "connect EADDRNOTAVAIL")) {
    CHECK_FIELD(*r, "error", "EADDRNOTAVAIL");
    CHECK_FIELD(*r, "family", family_name(af));
    CHECK_FIELD(*r, "daddr", saddr);
    CHECK_FIELD(*r, "dport", kPort);
    check_task(*r, f.pid, f.pid, kClientComm);
  }
}

}  // namespace

TEST_SUITE("ports") {
  TEST_CASE("ephemeral port exhaustion, ipv4: port_alloc and connect EADDRNOTAVAIL") { port_exhaustion(AF_INET); }
  TEST_CASE("ephemeral port exhaustion, ipv6: port_alloc and connect EADDRNOTAVAIL") { port_exhaustion(AF_INET6); }
}
