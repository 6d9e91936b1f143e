// The Aggregator as a whole: a connection through every table, losses and decode errors in the health.
#include <doctest/doctest.h>

#include "aggregate_events.hpp"

using namespace connscope;
using namespace connscope::test;

TEST_CASE("connections: counts, ports by state, latency, the model") {
  Aggregator a(AggregatorConfig{});
  a.start(10 * kSec);
  a.set_netns_settings(narrow_settings());
  for (uint16_t i = 0; i < 20; ++i) connection(a, 10 * kSec + i * 10000000ull, static_cast<uint16_t>(40000 + i));
  // One still connecting, one open.
  cs_flow c = flow("10.0.0.1", 40050, "10.0.0.2", 80), o = flow("10.0.0.1", 40051, "10.0.0.2", 80);
  a.on_event(connect_ev(10 * kSec + 500000000, c));
  a.on_event(connect_ev(10 * kSec + 500000000, o));
  a.on_event(state_ev(10 * kSec + 500100000, o, 2, 1, 0, 100000));
  Snapshot s = a.close_interval(11 * kSec, 1000.0);
  CHECK(s.interval_s == doctest::Approx(1.0));
  const DestinationStats* d = find_dst(s, "10.0.0.2:80");
  REQUIRE(d);
  CHECK(d->src == "10.0.0.1");
  CHECK(d->attempts == 22);
  CHECK(d->established == 21);
  CHECK(d->time_wait == 20);
  CHECK(d->connecting == 1);
  CHECK(d->open == 1);
  CHECK(d->model.in_use == 22);
  CHECK(d->model.usable_ports == 100);
  CHECK(d->model.utilization == doctest::Approx(0.22));
  CHECK(d->model.connect_rate == doctest::Approx(22.0));
  CHECK(d->model.sustainable_rate == doctest::Approx(100.0 / 60));
  CHECK(d->model.time_to_exhaustion_s.has_value());
  CHECK(d->handshake.summary.count == 21);
  CHECK(d->handshake.summary.p50 == doctest::Approx(50e-6).epsilon(1.0 / 32));
  CHECK(d->handshake.summary.max == doctest::Approx(100e-6));
  CHECK(d->port_search.interval.count() == 20);
  CHECK(d->connect_syscall.interval.count() == 22);
  REQUIRE(d->processes.size() == 1);
  CHECK(d->processes[0].comm == "curl");
  CHECK(d->processes[0].attempts == 22);
  CHECK(s.handshake.interval.count() == 21);
  CHECK(s.health.events_total.at("connect") == 22);

  // The next interval: counters restart, ports stay; TIME_WAIT ends 60 s on.
  Snapshot s2 = a.close_interval(12 * kSec, 1001.0);
  d = find_dst(s2, "10.0.0.2:80");
  REQUIRE(d);
  CHECK(d->attempts == 0);
  CHECK(d->attempts_total == 22);
  CHECK(d->time_wait == 20);
  CHECK(d->handshake.interval.count() == 0);
  CHECK(d->handshake.total.count() == 21);
  Snapshot s3 = a.close_interval(70 * kSec + 100000000, 1059.1);
  d = find_dst(s3, "10.0.0.2:80");
  REQUIRE(d);
  CHECK(d->time_wait == 10);  // the first ten entered TIME_WAIT before 10.1 s
  Snapshot s4 = a.close_interval(72 * kSec, 1061.0);
  CHECK(find_dst(s4, "10.0.0.2:80")->time_wait == 0);
}

TEST_CASE("losses: cumulative counters become per-interval deltas") {
  Aggregator a(AggregatorConfig{});
  a.start(kSec);
  LossCounters l{};
  l.lost_by_type[CS_EV_STATE] = 4;
  l.lost_total = 4;
  a.on_losses(l);
  Snapshot s = a.close_interval(2 * kSec, 1.0);
  CHECK(s.health.lost_interval == 4);
  CHECK(s.health.lost_total.at("state") == 4);
  a.on_losses(l);
  Snapshot s2 = a.close_interval(3 * kSec, 2.0);
  CHECK(s2.health.lost_interval == 0);
  a.on_decode_error();
  CHECK(a.close_interval(4 * kSec, 3.0).health.decode_errors_total == 1);
}
