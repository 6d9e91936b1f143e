// Scenario 6: accept-queue overflow. A listener with backlog 1 that never
// accepts; two connections fill its queue, the SYNs of four more are
// dropped by the listener (TcpExtListenOverflows) and retransmitted.
#include <doctest/doctest.h>
#include <netinet/in.h>

#include <set>

#include "agent_process.hpp"
#include "events.hpp"
#include "netns.hpp"
#include "scenario.hpp"
#include "traffic.hpp"

using namespace itest;

namespace {

void accept_overflow(int af) {
  constexpr uint16_t kPort = 8085;
  constexpr int kBacklog = 1, kClients = 6;
  Topology t;
  const uint64_t C = t.client.inode(), S = t.server.inode();
  const std::string caddr = t.client_addr(af), saddr = t.server_addr(af);
  AgentRun agent;  // both namespaces
  INFO(t.describe());
  INFO(agent.describe());
  INFO("records of the test namespaces:\n" << agent.records().dump_netns({C, S}));

  const Match m_overflow{{"type", "accept_queue"}, {"kind", "overflow"}, {"netns", S}, {"sport", kPort}};
  const Match m_syn{{"type", "retransmit"}, {"kind", "syn"}, {"netns", C}, {"dport", kPort}};
  OverflowFacts f = drive_accept_overflow(t, af, kPort, kBacklog, kClients, [&](const OverflowFacts&) {
    // The fallback tier polls sock_diag and /proc/net/netstat (about 1 s):
    // wait for both kinds of record, bounded.
    agent.wait_for([&](const Records& r) { return r.any(m_overflow) && r.any(m_syn); }, ms(10000));
  });
  REQUIRE(f.queued_ports.size() == kBacklog + 1);
  REQUIRE(f.dropped_ports.size() == kClients - kBacklog - 1);
  // Kernel side: the listener did overflow, the clients did retransmit.
  REQUIRE_MESSAGE(f.listen_overflows_after > f.listen_overflows_before,
                  "TcpExtListenOverflows did not grow in the server namespace: " << f.listen_overflows_before << " -> "
                                                                                 << f.listen_overflows_after);
  REQUIRE_MESSAGE(f.client_syn_retrans > 0, "TcpExtTCPSynRetrans is 0 in the client namespace");
  finish_run(agent);
  const Records& R = agent.records();
  // After the run (the clients are gone): the kernel's final count.
  const int64_t overflows = t.server.netstat_counter("TcpExt", "ListenOverflows") - f.listen_overflows_before;

  auto over = at_least_one(R, m_overflow, "accept_queue overflow");
  int64_t counted = 0;
  for (const auto& r : over) {
    CHECK_FIELD(r, "family", family_name(af));
    CHECK_FIELD(r, "saddr", saddr);
    CHECK_FIELD(r, "max_backlog", kBacklog);
    CHECK_FIELD_POSITIVE(r, "count");
    CHECK_MESSAGE(r.value("backlog", 0) > kBacklog, "an overflowing queue holds more than max_backlog: " << r.dump());
    CHECK_MESSAGE((r.contains("approximate") && r["approximate"].is_boolean()), r.dump());
    // Attribution from a poll is approximate; the in-kernel tiers are exact.
    if (r.value("strategy", "") == "poll") CHECK_FIELD(r, "approximate", true);
    if (r.value("tier", "") != "fallback") CHECK_FIELD(r, "approximate", false);
    if (r.value("dport", 0) != 0) {
      CHECK_MESSAGE(std::set<uint16_t>(f.dropped_ports.begin(), f.dropped_ports.end()).count(r.value("dport", 0)),
                    "overflow peer port is not one of the dropped clients: " << r.dump());
      CHECK_FIELD(r, "daddr", caddr);
    }
    counted += r.value("count", int64_t{0});
  }
  CHECK_MESSAGE(counted <= overflows, "overflow records count " << counted << " drops, the kernel counted " << overflows
                                                                << " (TcpExtListenOverflows delta)");

  // Client side: the dropped SYNs were retransmitted in SYN_SENT.
  auto syn = at_least_one(R, m_syn, "retransmit (SYN)");
  std::set<uint16_t> dropped(f.dropped_ports.begin(), f.dropped_ports.end());
  for (const auto& r : syn) {
    CHECK_FIELD(r, "family", family_name(af));
    CHECK_FIELD(r, "saddr", caddr);
    CHECK_FIELD(r, "daddr", saddr);
    CHECK_FIELD(r, "state", "SYN_SENT");
    CHECK_MESSAGE(dropped.count(r.value("sport", 0)),
                  "SYN retransmit of a client whose SYN was not dropped: " << r.dump());
  }

  // The two connections that fit: queued with max_backlog 1, lengths 1 and 2.
  auto queued = R.where(Match{{"type", "accept_queue"}, {"kind", "queued"}, {"netns", S}, {"sport", kPort}});
  CHECK_MESSAGE(queued.size() == f.queued_ports.size(), "expected " << f.queued_ports.size()
                                                                    << " accept_queue queued records:\n"
                                                                    << dump_list(queued));
  std::multiset<int> lengths;
  for (const auto& r : queued) {
    CHECK_FIELD(r, "max_backlog", kBacklog);
    lengths.insert(r.value("backlog", -1));
  }
  CHECK_MESSAGE((lengths == std::multiset<int>{1, 2}), "queued backlog lengths should be 1 then 2:\n"
                                                           << dump_list(queued));
}

}  // namespace

TEST_SUITE("accept_queue") {
  TEST_CASE("accept queue overflow, ipv4: overflow on the listener, SYN retransmits") { accept_overflow(AF_INET); }
  TEST_CASE("accept queue overflow, ipv6: overflow on the listener, SYN retransmits") { accept_overflow(AF_INET6); }
}
