// Scenario 5: ephemeral-port exhaustion towards one destination. A range of
// ten ports, tcp_tw_reuse=0, and a client that closes first (its ports stay
// in TIME_WAIT) runs out of ports: connect() fails with EADDRNOTAVAIL.
#include <doctest/doctest.h>
#include <netinet/in.h>

#include <algorithm>
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
  // A port is used twice only if its first connection was not seen in TIME_WAIT.
  CHECK(f.ports.size() - distinct.size() <= f.no_tw_ports.size());
  if (!f.no_tw_ports.empty())
    MESSAGE("ports not seen in TIME_WAIT after close (kernel/TCG, not the agent): " << f.no_tw_ports.size());
  for (auto p : f.ports) CHECK((p >= kLo && p <= kHi));
  CHECK_MESSAGE(distinct.size() == static_cast<std::size_t>(kHi - kLo + 1),
                "every port of the range should have been used before EADDRNOTAVAIL");

  const Match m_fail_alloc{{"type", "port_alloc"}, {"netns", C}, {"errno", EADDRNOTAVAIL}};
  const Match m_fail_connect{{"type", "connect"}, {"netns", C}, {"errno", EADDRNOTAVAIL}};
  agent.wait_for(
      [&](const Records& r) {
        return r.any(m_fail_alloc) && r.any(m_fail_connect) &&
               r.where(Match{{"type", "state"}, {"event", "time_wait"}, {"netns", C}}).size() >= f.tw_ports.size();
      },
      ms(10000));
  finish_run(agent, SIGINT, C);
  const Records& R = agent.records();

  // One successful port search per connection, each inside the range.
  for (uint16_t p : distinct) {
    CAPTURE(p);
    const auto uses = static_cast<std::size_t>(std::count(f.ports.begin(), f.ports.end(), p));
    const Match m_alloc{{"type", "port_alloc"}, {"netns", C}, {"port", p}};
    CHECK_MESSAGE(R.where(m_alloc).size() == uses,
                  "port_alloc records for port " << p << ": " << R.where(m_alloc).size() << ", connections: " << uses);
    for (const auto& alloc : R.where(m_alloc)) {
      const auto* r = &alloc;
      check_flow(*r, FlowExpect{af, caddr, saddr, p, kPort, C});
      check_task(*r, f.pid, f.pid, kClientComm);
      CHECK_FIELD(*r, "errno", 0);
      CHECK_FIELD(*r, "range_lo", kLo);
      CHECK_FIELD(*r, "range_hi", kHi);
      check_approximate_by_tier(*r);
    }
    const Match m_connect{{"type", "connect"}, {"netns", C}, {"sport", p}};
    CHECK(R.where(m_connect).size() == uses);
    for (const auto& r : R.where(m_connect)) {
      CHECK_FIELD(r, "errno", 0);
      check_task(r, f.pid, f.pid, kClientComm);
    }
    // The client closed first: each port it saw in TIME_WAIT has the record.
    if (f.tw_ports.count(p))
      at_least_one(R, Match{{"type", "state"}, {"event", "time_wait"}, {"netns", C}, {"sport", p}}, "state time_wait");
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
