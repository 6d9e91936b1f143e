// The listener table through the Aggregator: accepts, queue samples, overflows, retransmits.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "aggregate/alerts.hpp"
#include "aggregate_events.hpp"

using namespace connscope;
using namespace connscope::test;

TEST_CASE("listeners: accepts, queue samples, overflows, SYN-ACK retransmits") {
  Aggregator a(AggregatorConfig{});
  a.start(kSec);
  ListenerInfo l{};
  l.family = AF_INET;
  l.port = 8080;
  l.queue_len = 3;
  l.max_backlog = 4;
  a.on_listener_sample(kNs, {l}, kSec + 1);
  cs_flow in = flow("10.0.0.2", 8080, "10.0.0.1", 50000);
  a.on_event(state_ev(kSec + 10, in, 3, 1, CS_STATE_F_PASSIVE, 30000));
  cs_accept_queue_event ov = overflow_ev(kSec + 20, flow("0.0.0.0", 8080, "0.0.0.0", 0), 5, 5, 4);
  a.on_event(ov);
  cs_accept_queue_event un = ov;
  un.flow = cs_flow{};
  un.flow.netns = kNs;
  un.count = 2;
  a.on_event(un);
  cs_retransmit_event rt{};
  rt.h.type = CS_EV_RETRANSMIT;
  rt.h.ts_ns = kSec + 30;
  rt.flow = in;
  rt.kind = CS_RETRANS_SYNACK;
  rt.state = 3;
  a.on_event(rt);
  Snapshot s = a.close_interval(2 * kSec, 1.0);
  REQUIRE(s.listeners.size() == 2);
  const ListenerStats& ls = s.listeners[0];
  CHECK(ls.listen == "0.0.0.0:8080");
  CHECK(ls.accepts == 1);
  CHECK(ls.overflows == 5);
  CHECK(ls.synack_retransmits == 1);
  CHECK(ls.queue_len == 3);
  CHECK(ls.queue_peak == 5);
  CHECK(ls.max_backlog == 4);
  CHECK(ls.fill.interval.count() == 1);
  CHECK(s.listeners[1].listen == "unattributed");
  CHECK(s.listeners[1].overflows == 2);
  CHECK(s.accept_queue_fill.interval.count() == 1);
}

TEST_CASE("listeners: the owner a live sample names reaches the row and listen_overflow") {
  Aggregator a(AggregatorConfig{});
  a.start(kSec);
  ListenerInfo l{};
  l.family = AF_INET;
  l.port = 8080;
  l.max_backlog = 4;
  l.owner = "nginx (pid 812 and 4 more)";
  a.on_listener_sample(kNs, {l}, kSec + 1);
  l.owner.clear();  // a lookup under way (or a replay) does not erase the name
  a.on_listener_sample(kNs, {l}, kSec + 2);
  cs_accept_queue_event ov = overflow_ev(kSec + 20, flow("0.0.0.0", 8080, "0.0.0.0", 0), 4, 5, 4);
  a.on_event(ov);
  Snapshot s = a.close_interval(2 * kSec, 1000);
  REQUIRE(s.listeners.size() == 1);
  CHECK(s.listeners[0].process == "nginx (pid 812 and 4 more)");
  AlertEngine alerts(AlertThresholds{});
  std::vector<Alert> changed = alerts.evaluate(s);
  REQUIRE(changed.size() == 1);
  CHECK(changed[0].process == "nginx (pid 812 and 4 more)");
  CHECK(format_alert_line(changed[0]).find(" [nginx (pid 812 and 4 more)]: 4 connections dropped") !=
        std::string::npos);
}
