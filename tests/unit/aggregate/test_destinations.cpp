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

TEST_CASE("cardinality: destinations beyond the limit fold into other, counted") {
  AggregatorConfig cfg;
  cfg.top_destinations = 2;
  Aggregator a(cfg);
  a.start(kSec);
  for (int i = 0; i < 5; ++i) {
    std::string dst = "10.0.1." + std::to_string(i + 1);
    cs_flow f = flow("10.0.0.1", static_cast<uint16_t>(40000 + i), dst.c_str(), 443);
    a.on_event(connect_ev(kSec + i, f));
    a.on_event(connect_ev(kSec + 100 + i, flow("10.0.0.1", static_cast<uint16_t>(41000 + i), dst.c_str(), 443)));
  }
  Snapshot s = a.close_interval(2 * kSec, 1.0);
  REQUIRE(s.destinations.size() == 3);
  CHECK(s.destinations.back().other);
  CHECK(s.destinations.back().dst == "other");
  CHECK(s.destinations.back().attempts == 6);
  CHECK(s.destinations.back().connecting == 6);
  CHECK(s.health.destinations_folded_total == 3);  // each folded destination counted once
  CHECK(s.health.destinations_tracked == 2);
}
