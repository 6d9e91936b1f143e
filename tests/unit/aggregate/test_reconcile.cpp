// Reconciliation through the Aggregator: the port table follows a sock_diag dump.
#include <doctest/doctest.h>

#include "aggregate_events.hpp"

using namespace connscope;
using namespace connscope::test;

TEST_CASE("reconcile: the socket table follows sock_diag, corrections counted") {
  Aggregator a(AggregatorConfig{});
  a.start(kSec);
  a.set_netns_settings(narrow_settings());
  connection(a, kSec, 40000);                                                  // TIME_WAIT per events
  a.on_event(connect_ev(kSec + 10, flow("10.0.0.1", 40001, "10.0.0.2", 80)));  // connecting per events
  auto rec = [](uint16_t sport, uint8_t state, uint32_t expires_ms = 0) {
    SocketRecord r{};
    r.family = AF_INET;
    inet_pton(AF_INET, "10.0.0.1", r.saddr.data());
    inet_pton(AF_INET, "10.0.0.2", r.daddr.data());
    r.sport = sport;
    r.dport = 80;
    r.state = state;
    r.expires_ms = expires_ms;
    return r;
  };
  // The dump: 40000 in TIME_WAIT, 40001 gone (its close was lost), two
  // TIME_WAIT sockets from before the agent started, a passive socket
  // (local port 8080, a listener) that is not ours.
  SocketRecord passive = rec(8080, 1);
  passive.dport = 50000;
  SocketRecord listener = rec(8080, 10);
  // Both ports ephemeral: could be the server side of a connection to a
  // port-0 listener that has gone; not taken for an upstream.
  SocketRecord ambiguous = rec(40005, 6, 30000);
  ambiguous.dport = 40090;
  std::vector<SocketRecord> dump = {
      rec(40000, 6, 59000), rec(40002, 6, 30000), rec(40003, 6, 1000), passive, listener, ambiguous};
  ReconcileResult r = a.reconcile(kNs, dump, 2 * kSec);
  CHECK(r.added == 2);
  CHECK(r.removed == 1);
  Snapshot s = a.close_interval(2 * kSec + kSec / 2, 2.0);
  REQUIRE(s.destinations.size() == 1);
  const DestinationStats& d = s.destinations[0];
  CHECK(d.time_wait == 3);
  CHECK(d.connecting == 0);
  CHECK(d.corrected_time_wait == 2);
  CHECK(d.corrected_connecting == -1);
  CHECK(s.health.reconcile_runs_total == 1);
  CHECK(s.health.reconcile_corrections_total.at("time_wait") == 2);
  // 40003 had 1 s left at the dump: gone at 3 s; 40002 (30 s left) stays.
  Snapshot s2 = a.close_interval(4 * kSec, 3.0);
  CHECK(s2.destinations[0].time_wait == 2);
  Snapshot s3 = a.close_interval(33 * kSec, 32.0);
  CHECK(s3.destinations[0].time_wait == 1);
}

TEST_CASE("reconcile: a census of the ephemeral range leaves tracked sockets outside it alone") {
  Aggregator a(AggregatorConfig{});
  a.start(kSec);
  a.set_netns_settings(narrow_settings());
  // Both connecting per events: 40001 from the range, 3000 bound outside it.
  a.on_event(connect_ev(kSec + 10, flow("10.0.0.1", 40001, "10.0.0.2", 80)));
  a.on_event(connect_ev(kSec + 20, flow("10.0.0.1", 3000, "10.0.0.2", 80)));
  // A census of 40000-40099 that holds neither: 40001's close was lost,
  // 3000 was never looked at.
  ReconcileResult r = a.reconcile(kNs, {}, 2 * kSec, CensusScope{kCensusStates, PortSpan{40000, 40099}});
  CHECK(r.removed == 1);
  Snapshot s = a.close_interval(2 * kSec + kSec / 2, 2.0);
  REQUIRE(s.destinations.size() == 1);
  CHECK(s.destinations[0].connecting == 1);
  CHECK(s.destinations[0].corrected_connecting == -1);
  // A census of every port removes it too.
  CHECK(a.reconcile(kNs, {}, 3 * kSec).removed == 1);
}

TEST_CASE("reconcile: a TIME_WAIT-only census corrects TIME_WAIT and leaves open and connecting ports alone") {
  Aggregator a(AggregatorConfig{});
  a.start(kSec);
  a.set_netns_settings(narrow_settings());
  connection(a, kSec, 40000);  // TIME_WAIT per events, ended early by the kernel
  connection(a, kSec, 40001);  // TIME_WAIT per events, still there
  a.on_event(connect_ev(kSec + 10, flow("10.0.0.1", 40002, "10.0.0.2", 80)));  // connecting, not in a TW dump
  SocketRecord tw{};
  tw.family = AF_INET;
  inet_pton(AF_INET, "10.0.0.1", tw.saddr.data());
  inet_pton(AF_INET, "10.0.0.2", tw.daddr.data());
  tw.sport = 40001;
  tw.dport = 80;
  tw.state = 6;
  tw.expires_ms = 50000;
  const CensusScope tw_only{kTimeWaitStates, PortSpan{40000, 40099}};
  ReconcileResult r = a.reconcile(kNs, {tw}, 2 * kSec, tw_only);
  CHECK(r.removed == 1);
  CHECK(r.added == 0);
  Snapshot s = a.close_interval(2 * kSec + kSec / 2, 2.0);
  REQUIRE(s.destinations.size() == 1);
  CHECK(s.destinations[0].time_wait == 1);
  CHECK(s.destinations[0].connecting == 1);
  CHECK(s.destinations[0].corrected_time_wait == -1);
  // A socket tracked as open that the TW dump shows in TIME_WAIT is restated.
  a.on_event(connect_ev(3 * kSec, flow("10.0.0.1", 40003, "10.0.0.2", 80)));
  a.on_event(state_ev(3 * kSec + 1, flow("10.0.0.1", 40003, "10.0.0.2", 80), CS_TCP_SYN_SENT, CS_TCP_ESTABLISHED));
  SocketRecord later = tw;
  later.sport = 40003;
  CHECK(a.reconcile(kNs, {tw, later}, 4 * kSec, tw_only).restated == 1);
}
