// Scenario 4: data retransmissions of an established connection whose
// packets the server namespace drops (nft, installed after the handshake).
#include <doctest/doctest.h>
#include <netinet/in.h>

#include "agent_process.hpp"
#include "events.hpp"
#include "netns.hpp"
#include "scenario.hpp"
#include "traffic.hpp"

using namespace itest;

namespace {

void data_retransmit(int af) {
  constexpr uint16_t kPort = 8083;
  Topology t;
  const uint64_t C = t.client.inode();
  AgentRun agent({"--netns", std::to_string(C)});
  INFO(t.describe());
  INFO(agent.describe());
  INFO("records of the client namespace:\n" << agent.records().dump_netns({C}));

  auto m_data = [&](uint16_t sport) {
    return Match{{"type", "retransmit"}, {"kind", "data"}, {"netns", C}, {"sport", sport}};
  };
  RetransmitFacts f = drive_data_retransmit(t, af, kPort, [&](const RetransmitFacts& now) {
    // The first retransmission comes after the minimum RTO (200 ms); wait
    // for its record with a bounded poll instead of a fixed sleep.
    agent.wait_for([&](const Records& r) { return r.any(m_data(now.client.sport)); }, ms(10000));
    // Stop while the rule is still in place: the teardown (the client
    // closing with unacknowledged data) retransmits in FIN_WAIT1, which is
    // not this scenario.
    finish_run(agent, SIGINT, C);
  });
  const uint16_t sport = f.client.sport;
  REQUIRE(sport != 0);
  REQUIRE_MESSAGE(f.dropped_packets >= 2,
                  "nft should have dropped the data and at least one retransmission, dropped " << f.dropped_packets);
  const Records& R = agent.records();

  auto recs = at_least_one(R, m_data(sport), "retransmit (data)");
  for (const auto& r : recs) {
    check_flow(r, FlowExpect{af, t.client_addr(af), t.server_addr(af), sport, kPort, C});
    CHECK_FIELD(r, "kind", "data");
    CHECK_FIELD(r, "state", "ESTABLISHED");
    CHECK_FIELD(r, "errno", 0);
  }
  // Every retransmission the agent saw was dropped by nft (read after the
  // agent stopped), as was the original segment: no duplicate records.
  CHECK_MESSAGE(static_cast<int64_t>(recs.size()) <= f.dropped_packets - 1,
                recs.size() << " data retransmit records, but nft dropped only " << f.dropped_packets
                            << " packets (original included):\n"
                            << dump_list(recs));
  // No SYN retransmissions: the handshake went through before the drop.
  auto syn = R.where(Match{{"type", "retransmit"}, {"kind", "syn"}, {"netns", C}});
  CHECK_MESSAGE(syn.empty(), "unexpected SYN retransmissions:\n" << dump_list(syn));
  CHECK(R.any(Match{{"type", "state"}, {"event", "handshake"}, {"netns", C}, {"sport", sport}}));
}

}  // namespace

TEST_SUITE("retransmit") {
  TEST_CASE("data retransmit, ipv4: kind data in ESTABLISHED") { data_retransmit(AF_INET); }
  TEST_CASE("data retransmit, ipv6: kind data in ESTABLISHED") { data_retransmit(AF_INET6); }
}
