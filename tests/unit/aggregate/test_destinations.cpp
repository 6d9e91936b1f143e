// The destination table through the Aggregator: failures by errno, folding into `other`.
#include <doctest/doctest.h>

#include "aggregate_events.hpp"

using namespace connscope;
using namespace connscope::test;

TEST_CASE("failures: errno names, a failed connect without a source address") {
  Aggregator a(AggregatorConfig{});
  a.start(kSec);
  connection(a, kSec, 40000);
  cs_flow failed = flow("0.0.0.0", 0, "10.0.0.2", 80);
  a.on_event(alloc_ev(kSec + 100, failed, 900000, 99));
  a.on_event(connect_ev(kSec + 200, failed, 99 /*EADDRNOTAVAIL*/));
  cs_flow refused = flow("10.0.0.1", 40001, "10.0.0.2", 80);
  a.on_event(connect_ev(kSec + 300, refused));
  a.on_event(state_ev(kSec + 400, refused, 2, 7, 0, 0, 111 /*ECONNREFUSED*/));
  Snapshot s = a.close_interval(2 * kSec, 1.0);
  REQUIRE(s.destinations.size() == 1);  // the failed connect joined the real row
  const DestinationStats& d = s.destinations[0];
  CHECK(d.errors.at("EADDRNOTAVAIL") == 1);
  CHECK(d.errors.at("ECONNREFUSED") == 1);
  CHECK(d.errors_total.at("EADDRNOTAVAIL") == 1);
  CHECK(d.connecting == 0);  // the refused socket is gone
  CHECK(d.port_search.summary.max == doctest::Approx(900e-6));
}

TEST_CASE("cardinality: the busiest keep their own rows, the rest are summed into other, counted") {
  AggregatorConfig cfg;
  cfg.top_destinations = 2;
  cfg.max_destinations = 4;
  Aggregator a(cfg);
  a.start(kSec);
  // Destination i gets i + 1 connections: 5 and 4 are the busiest.
  uint16_t port = 40000;
  for (int i = 0; i < 5; ++i) {
    std::string dst = "10.0.1." + std::to_string(i + 1);
    for (int c = 0; c <= i; ++c) a.on_event(connect_ev(kSec + 10 * i + c, flow("10.0.0.1", port++, dst.c_str(), 443)));
  }
  Snapshot s = a.close_interval(2 * kSec, 1.0);
  REQUIRE(s.destinations.size() == 3);
  // Rows 1 and 2 took the free slots first; at the close a clearly busier
  // row (4 against 1) takes a slot, one about as busy (3 against 2) does not.
  CHECK(s.destinations[0].dst == "10.0.1.4:443");
  CHECK(s.destinations[0].attempts == 4);
  CHECK(s.destinations[1].dst == "10.0.1.2:443");
  const DestinationStats& o = s.destinations.back();
  CHECK(o.other);
  CHECK(o.dst == "other");
  CHECK(o.attempts == 1 + 3 + 5);  // 10.0.1.5 came after the table (4) was full
  CHECK(o.attempts_total == 9);
  CHECK(o.connecting == 9);
  CHECK(o.processes.empty());  // `other` names no process
  CHECK(s.health.destinations_tracked == 4);
  CHECK(s.health.destinations_own_rows == 2);
  CHECK(s.health.destinations_folded == 2);
  CHECK(s.health.destinations_untracked_total == 1);  // 10.0.1.5: counted once, only in `other`
  REQUIRE(s.notices.size() == 2);
  CHECK(s.notices[0] ==
        "4 destinations, more than --top-destinations 2: 2 keep their own rows (those at risk first, then the "
        "busiest) and 2 are summed into dst=\"other\"; every destination still counts toward its own exhaustion "
        "model and alerts, and one at risk gets its own row (counts: health.destinations_folded in the JSON, "
        "connscope_destinations_folded in /metrics)");
  CHECK(s.notices[1] ==
        "more than --max-destinations 4 destinations: new ones are counted only in dst=\"other\", without a model "
        "or alerts of their own (counts: connscope_destinations_untracked_total); raise --max-destinations");

  // The notices come once; other's totals only grow as rows move out of it.
  for (int c = 0; c < 9; ++c) a.on_event(connect_ev(2 * kSec + c, flow("10.0.0.1", port++, "10.0.1.1", 443)));
  Snapshot s2 = a.close_interval(3 * kSec, 2.0);
  CHECK(s2.notices.empty());
  CHECK(s2.destinations[0].dst == "10.0.1.1:443");  // now the busiest
  CHECK(s2.destinations[0].attempts_total == 10);   // its whole history, folded or not
  CHECK(s2.destinations.back().attempts_total >= o.attempts_total);
}

TEST_CASE("rows by risk: an exhausting destination gets its own row and alerts among many busier ones") {
  AggregatorConfig cfg;
  cfg.top_destinations = 4;
  AlertThresholds t;
  Aggregator a(cfg, t);
  NetnsSettings narrow;
  narrow.netns = 7;
  narrow.port_lo = 40000;
  narrow.port_hi = 40099;
  narrow.usable_ports = 100;
  narrow.tw_reuse = 0;
  narrow.enter_path = "/run/netns/blue";
  a.set_netns_settings(narrow);
  NetnsSettings host;
  host.netns = kNs;
  host.agent_netns = true;
  a.set_netns_settings(host);
  a.start(kSec);
  AlertEngine alerts(t);
  uint16_t port = 20000;
  uint16_t risky_port = 40000;
  std::vector<Alert> fired;
  for (int sec = 1; sec <= 4; ++sec) {
    const uint64_t t0 = static_cast<uint64_t>(sec) * kSec;
    // 50 noisy destinations, 20 connections/s each, in the host netns (plenty of ports).
    for (int i = 0; i < 50; ++i) {
      std::string dst = "10.1.0." + std::to_string(i + 1);
      for (int c = 0; c < 20; ++c) {
        cs_flow f = flow("10.0.0.1", port++, dst.c_str(), 80);
        a.on_event(connect_ev(t0 + static_cast<uint64_t>(i * 20 + c), f));
      }
    }
    // One upstream in netns 7 at 10/s against 100 ports: each stays in TIME_WAIT.
    for (int c = 0; c < 10; ++c) {
      cs_flow f = flow("10.2.0.1", risky_port++, "10.2.0.2", 8080);
      f.netns = 7;
      const uint64_t ts = t0 + 5000 + static_cast<uint64_t>(c) * 1000;
      cs_connect_event ev = connect_ev(ts, f);
      ev.task = task(4242, "python3");
      a.on_event(ev);
      a.on_event(state_ev(ts + 10, f, 2, 1, 0, 100));                // SYN_SENT -> ESTABLISHED
      a.on_event(state_ev(ts + 20, f, 5, 7, CS_STATE_F_TIME_WAIT));  // FIN_WAIT2 -> CLOSE: TIME_WAIT
    }
    Snapshot s = a.close_interval(t0 + kSec, 1000.0 + sec);
    for (const Alert& x : alerts.evaluate(s)) fired.push_back(x);
    REQUIRE(s.destinations.size() == 5);
    CHECK(s.destinations[0].dst == "10.2.0.2:8080");  // at risk: first, whatever the others' rates
    CHECK(s.health.destinations_at_risk == 1);
    CHECK(s.destinations.back().other);
  }
  bool soon = false;
  for (const Alert& x : fired) {
    CHECK(x.target == "10.2.0.2:8080");  // nothing blamed on `other` or the noise
    CHECK(x.process == "python3 (pid 4242)");
    CHECK(x.netns_name == "blue");
    soon = soon || x.rule == "ephemeral_ports_exhaustion_soon";
    CHECK(x.remedy_commands.front() == "ip netns exec blue sysctl -w net.ipv4.tcp_tw_reuse=1");
  }
  CHECK(soon);
}
