// Scenarios 1-3: a successful connect (client and server side records), a
// refused connect (RST) and a connect that times out (SYNs dropped).
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

// 1. connect + accept, the client closes first.
void connect_success(int af) {
  constexpr uint16_t kPort = 8080;
  constexpr int kBacklog = 7;
  Topology t;
  t.client.write_sysctl("net/ipv4/ip_local_port_range", "41000 41999");
  const uint64_t C = t.client.inode(), S = t.server.inode();
  const std::string fam = family_name(af), caddr = t.client_addr(af), saddr = t.server_addr(af);

  AgentRun agent;  // no --netns: both namespaces are of interest
  INFO(t.describe());
  INFO(agent.describe());
  INFO("records of the test namespaces:\n" << agent.records().dump_netns({C, S}));

  ConnectFacts f = drive_connect_close(t, af, kPort, kBacklog);
  const uint16_t sport = f.client.sport;
  // Kernel side, before looking at the agent.
  REQUIRE_MESSAGE((sport >= 41000 && sport <= 41999), "the client port " << sport << " is outside ip_local_port_range");
  REQUIRE(f.accepted_peer_port == sport);
  REQUIRE(f.client.comm == kClientComm);
  REQUIRE(f.client.tid != f.client.pid);

  const Match m_connect{{"type", "connect"}, {"netns", C}, {"dport", kPort}};
  const Match m_alloc{{"type", "port_alloc"}, {"netns", C}, {"dport", kPort}};
  const Match m_handshake{{"type", "state"}, {"event", "handshake"}, {"netns", C}, {"sport", sport}};
  const Match m_tw{{"type", "state"}, {"event", "time_wait"}, {"netns", C}, {"sport", sport}};
  const Match m_passive{{"type", "state"}, {"event", "passive_open"}, {"netns", S}, {"sport", kPort}};
  const Match m_queued{{"type", "accept_queue"}, {"kind", "queued"}, {"netns", S}, {"sport", kPort}};
  agent.wait_for(
      [&](const Records& r) {
        return r.any(m_connect) && r.any(m_alloc) && r.any(m_handshake) && r.any(m_tw) && r.any(m_passive) &&
               r.any(m_queued);
      },
      ms(10000));
  finish_run(agent);
  const Records& R = agent.records();
  const FlowExpect client_flow{af, caddr, saddr, sport, kPort, C};

  if (auto r = exactly_one(R, m_connect, "connect")) {
    check_flow(*r, client_flow);
    check_task(*r, f.client.pid, f.client.tid, kClientComm);
    CHECK_FIELD(*r, "errno", 0);
    CHECK_NO_FIELD(*r, "error");
    CHECK_FIELD_POSITIVE(*r, "latency_ns");
  }
  if (auto r = exactly_one(R, m_alloc, "port_alloc")) {
    check_flow(*r, client_flow);
    check_task(*r, f.client.pid, f.client.tid, kClientComm);
    CHECK_FIELD(*r, "port", sport);
    CHECK_FIELD(*r, "errno", 0);
    CHECK_NO_FIELD(*r, "error");
    CHECK_FIELD(*r, "range_lo", 41000);
    CHECK_FIELD(*r, "range_hi", 41999);
    CHECK_FIELD_POSITIVE(*r, "duration_ns");
    check_approximate_by_tier(*r);
  }
  if (auto r = exactly_one(R, m_handshake, "state handshake")) {
    check_flow(*r, client_flow);
    check_task(*r, f.client.pid, f.client.tid, kClientComm);
    CHECK_FIELD(*r, "oldstate", "SYN_SENT");
    CHECK_FIELD(*r, "newstate", "ESTABLISHED");
    CHECK_FIELD(*r, "state", "ESTABLISHED");
    CHECK_FIELD_POSITIVE(*r, "latency_ns");
    CHECK_FIELD(*r, "errno", 0);
  }
  if (auto r = exactly_one(R, m_tw, "state time_wait")) {
    check_flow(*r, client_flow);
    check_task(*r, f.client.pid, f.client.tid, kClientComm);
    CHECK_MESSAGE((r->value("oldstate", "") == "FIN_WAIT2" || r->value("oldstate", "") == "CLOSING"),
                  "time_wait oldstate should be FIN_WAIT2 or CLOSING: " << r->dump());
    CHECK_FIELD(*r, "newstate", "CLOSE");
    CHECK_FIELD_POSITIVE(*r, "duration_ns");
  }
  // No failure records for a connection that worked.
  auto failed = R.where(Match{{"type", "state"}, {"event", "connect_failed"}, {"netns", C}});
  CHECK_MESSAGE(failed.empty(), "unexpected connect_failed records:\n" << dump_list(failed));

  // Server side: the listener is saddr/sport.
  if (auto r = exactly_one(R, m_passive, "state passive_open")) {
    check_flow(*r, FlowExpect{af, saddr, caddr, kPort, sport, S});
    CHECK_FIELD(*r, "oldstate", "SYN_RECV");
    CHECK_FIELD(*r, "newstate", "ESTABLISHED");
  }
  if (auto r = exactly_one(R, m_queued, "accept_queue queued")) {
    CHECK_FIELD(*r, "family", fam);
    CHECK_FIELD(*r, "saddr", saddr);
    CHECK_FIELD(*r, "max_backlog", kBacklog);
    CHECK_FIELD(*r, "backlog", 1);  // this connection included, nothing else queued
    CHECK_FIELD_POSITIVE(*r, "count");
    // The peer, when known, is the client.
    if (r->value("dport", 0) != 0) {
      CHECK_FIELD(*r, "dport", sport);
      CHECK_FIELD(*r, "daddr", caddr);
    }
  }
}

// The one SYN_SENT -> CLOSE record of a failed connect, with its socket error.
void check_connect_failed(const Records& R, const Match& m_failed, const FlowExpect& flow, const ClientFacts& f,
                          int err, const char* err_name) {
  if (auto r = exactly_one(R, m_failed, "state connect_failed")) {
    check_flow(*r, flow);
    check_task(*r, f.pid, f.tid, kClientComm);
    CHECK_FIELD(*r, "oldstate", "SYN_SENT");
    CHECK_FIELD(*r, "newstate", "CLOSE");
    CHECK_FIELD(*r, "errno", err);
    CHECK_FIELD(*r, "error", err_name);
  }
}

// 2. Nobody listens: the server answers the SYN with a RST.
void connect_refused(int af) {
  constexpr uint16_t kPort = 8081;
  Topology t;
  const uint64_t C = t.client.inode();
  AgentRun agent({"--netns", std::to_string(C)});
  INFO(t.describe());
  INFO(agent.describe());
  INFO("records of the client namespace:\n" << agent.records().dump_netns({C}));

  ClientFacts f = drive_failing_connect(t, af, kPort, ms(5000));
  REQUIRE_MESSAGE(f.err == ECONNREFUSED, "connect() should fail with ECONNREFUSED, got " << errno_str(f.err));
  REQUIRE(f.sport != 0);

  const Match m_failed{{"type", "state"}, {"event", "connect_failed"}, {"netns", C}, {"sport", f.sport}};
  const Match m_connect{{"type", "connect"}, {"netns", C}, {"dport", kPort}};
  agent.wait_for([&](const Records& r) { return r.any(m_failed) && r.any(m_connect); }, ms(10000));
  finish_run(agent, SIGTERM, C);  // SIGTERM ends a run as cleanly as SIGINT
  const Records& R = agent.records();
  const FlowExpect flow{af, t.client_addr(af), t.server_addr(af), f.sport, kPort, C};

  check_connect_failed(R, m_failed, flow, f, ECONNREFUSED, "ECONNREFUSED");
  // The SYN was sent: the synchronous part of connect succeeded, whatever
  // connect() later returned.
  if (auto r = exactly_one(R, m_connect, "connect")) {
    check_flow(*r, flow);
    check_task(*r, f.pid, f.tid, kClientComm);
    CHECK_FIELD(*r, "errno", 0);
  }
  auto hs = R.where(Match{{"type", "state"}, {"event", "handshake"}});
  CHECK_MESSAGE(hs.empty(), "a refused connection must not report a handshake:\n" << dump_list(hs));
}

// 3. SYNs dropped in the server namespace, tcp_syn_retries=1: ETIMEDOUT.
void connect_timeout(int af) {
  constexpr uint16_t kPort = 8082;
  Topology t;
  t.client.write_sysctl("net/ipv4/tcp_syn_retries", "1");
  NftDrop drop(t.server, kPort);
  const uint64_t C = t.client.inode();
  AgentRun agent({"--netns", std::to_string(C)});
  INFO(t.describe());
  INFO(agent.describe());
  INFO("records of the client namespace:\n" << agent.records().dump_netns({C}));

  ClientFacts f = drive_failing_connect(t, af, kPort, ms(10000));
  REQUIRE_MESSAGE(f.err == ETIMEDOUT, "connect() should fail with ETIMEDOUT, got " << errno_str(f.err));
  REQUIRE(f.sport != 0);
  const int64_t dropped_syns = drop.dropped_packets();
  REQUIRE_MESSAGE(dropped_syns >= 2,
                  "nft should have dropped the SYN and its retransmission(s), dropped " << dropped_syns);

  const Match m_failed{{"type", "state"}, {"event", "connect_failed"}, {"netns", C}, {"sport", f.sport}};
  const Match m_retrans{{"type", "retransmit"}, {"netns", C}, {"sport", f.sport}};
  agent.wait_for(
      [&](const Records& r) {
        return r.any(m_failed) && r.where(m_retrans).size() >= static_cast<std::size_t>(dropped_syns - 1);
      },
      ms(10000));
  finish_run(agent, SIGINT, C);
  const Records& R = agent.records();
  const FlowExpect flow{af, t.client_addr(af), t.server_addr(af), f.sport, kPort, C};

  check_connect_failed(R, m_failed, flow, f, ETIMEDOUT, "ETIMEDOUT");
  auto retrans = at_least_one(R, m_retrans, "retransmit (SYN)");
  for (const auto& r : retrans) {
    check_flow(r, flow);
    CHECK_FIELD(r, "kind", "syn");
    CHECK_FIELD(r, "state", "SYN_SENT");
  }
  // Every SYN nft dropped but the first was a retransmission.
  CHECK_MESSAGE(static_cast<int64_t>(retrans.size()) == dropped_syns - 1,
                "nft dropped " << dropped_syns << " SYNs, so " << dropped_syns - 1
                               << " SYN retransmissions are expected; got " << retrans.size() << " records:\n"
                               << dump_list(retrans));
}

}  // namespace

TEST_SUITE("connect") {
  TEST_CASE("successful connect, ipv4: connect, port_alloc, handshake, time_wait, passive_open, queued") {
    connect_success(AF_INET);
  }
  TEST_CASE("successful connect, ipv6: connect, port_alloc, handshake, time_wait, passive_open, queued") {
    connect_success(AF_INET6);
  }
  TEST_CASE("refused connect, ipv4: connect_failed ECONNREFUSED") { connect_refused(AF_INET); }
  TEST_CASE("refused connect, ipv6: connect_failed ECONNREFUSED") { connect_refused(AF_INET6); }
  TEST_CASE("connect timeout, ipv4: connect_failed ETIMEDOUT and SYN retransmits") { connect_timeout(AF_INET); }
  TEST_CASE("connect timeout, ipv6: connect_failed ETIMEDOUT and SYN retransmits") { connect_timeout(AF_INET6); }
}
