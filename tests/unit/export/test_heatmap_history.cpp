// Unit tests: heatmap history retention and rows.
#include <doctest/doctest.h>

#include "export/heatmap_history.hpp"
#include "snapshot_fixture.hpp"

using namespace connscope;
using namespace connscope::test;

namespace {

constexpr double kT0 = 1732222000;

std::vector<uint64_t> counts_of(const BucketCounts& c) { return c.counts(); }

std::vector<uint64_t> row(const HeatmapRows& r, size_t i) {
  const size_t w = r.labels.size();
  return {r.counts.begin() + static_cast<std::ptrdiff_t>(i * w),
          r.counts.begin() + static_cast<std::ptrdiff_t>((i + 1) * w)};
}

std::vector<uint64_t> zeros(HeatmapMetric m) { return std::vector<uint64_t>(heatmap_layout(m).size(), 0); }

}  // namespace

TEST_CASE("heatmap history keeps frames for the retention and drops older ones") {
  HeatmapHistory h(10);
  for (int i = 0; i < 30; ++i) h.add(make_fixture_snapshot(i + 1, kT0 + i));
  CHECK(h.frame_count() == 10);
  const HeatmapRows r = h.collect(HeatmapMetric::handshake, 3600, HeatmapScope::overall());
  REQUIRE(r.times_ms.size() == 10);
  CHECK(r.times_ms.front() == static_cast<int64_t>((kT0 + 20) * 1000));
  CHECK(r.times_ms.back() == static_cast<int64_t>((kT0 + 29) * 1000));
  // Interned scope names go with the frames that used them.
  CHECK(h.scope_count() == 5);  // 3 destination rows + 2 listener rows
}

TEST_CASE("heatmap rows: window, oldest first, unix ms, all buckets present") {
  HeatmapHistory h(3600);
  std::vector<Snapshot> snaps;
  for (int i = 0; i < 8; ++i) {
    snaps.push_back(make_fixture_snapshot(i + 1, kT0 + i + 0.25));
    h.add(snaps.back());
  }
  const HeatmapRows r = h.collect(HeatmapMetric::port_search, 5, HeatmapScope::overall());
  REQUIRE(r.times_ms.size() == 5);
  for (size_t i = 0; i < 5; ++i) {
    CHECK(r.times_ms[i] == static_cast<int64_t>((kT0 + 3 + i) * 1000) + 250);
    CHECK(row(r, i) == counts_of(snaps[3 + i].port_search.interval));
  }
  CHECK(r.labels.front() == "1e-06");
  CHECK(r.labels.back() == "+Inf");

  const auto j = h.rows(HeatmapMetric::accept_queue_fill, 2, HeatmapScope::overall());
  REQUIRE(j.size() == 2);
  std::vector<std::string> keys;
  for (const auto& [k, v] : j[0].items()) keys.push_back(k);
  CHECK(keys ==
        std::vector<std::string>{"time", "0.1", "0.2", "0.3", "0.4", "0.5", "0.6", "0.7", "0.8", "0.9", "1", "+Inf"});
  CHECK(j[0]["time"].is_number_integer());
  CHECK(j[1]["time"].get<int64_t>() == static_cast<int64_t>((kT0 + 7) * 1000) + 250);
  CHECK(j[1]["+Inf"] == 1);
  CHECK(h.rows(HeatmapMetric::handshake, 0.5, HeatmapScope::overall()).size() == 1);
  CHECK(HeatmapHistory(60).rows(HeatmapMetric::handshake, 300, HeatmapScope::overall()).empty());
}

TEST_CASE("heatmap scopes: destination by dst / netns / src, listener, zero-filled where absent") {
  HeatmapHistory h(3600);
  Snapshot a = make_fixture_snapshot(1, kT0);
  Snapshot b = make_fixture_snapshot(2, kT0 + 1);
  b.destinations.erase(b.destinations.begin());  // 10.0.0.2:443 idle in the second interval
  b.listeners[0].fill.interval.clear();
  // A second row with the same dst label from another netns and source.
  Snapshot c = make_fixture_snapshot(3, kT0 + 2);
  DestinationStats twin = c.destinations[0];
  twin.key.netns = kAppNetns;
  twin.src = "10.0.0.9";
  twin.key.saddr[3] = 9;
  c.destinations.push_back(twin);
  for (const auto* s : {&a, &b, &c}) h.add(*s);

  const auto web = [](std::optional<uint32_t> netns = std::nullopt, std::optional<std::string> src = std::nullopt) {
    return HeatmapScope::destination("10.0.0.2:443", netns, std::move(src));
  };
  HeatmapRows r = h.collect(HeatmapMetric::handshake, 60, web(kHostNetns));
  REQUIRE(r.times_ms.size() == 3);
  CHECK(row(r, 0) == counts_of(a.destinations[0].handshake.interval));
  CHECK(row(r, 1) == zeros(HeatmapMetric::handshake));
  CHECK(row(r, 2) == counts_of(c.destinations[0].handshake.interval));

  // Without netns both rows of the third interval are summed.
  r = h.collect(HeatmapMetric::handshake, 60, web());
  std::vector<uint64_t> both = counts_of(c.destinations[0].handshake.interval);
  for (size_t i = 0; i < both.size(); ++i) both[i] += twin.handshake.interval.counts()[i];
  CHECK(row(r, 2) == both);
  r = h.collect(HeatmapMetric::handshake, 60, web(std::nullopt, "10.0.0.9"));
  CHECK(row(r, 0) == zeros(HeatmapMetric::handshake));
  CHECK(row(r, 2) == counts_of(twin.handshake.interval));
  r = h.collect(HeatmapMetric::handshake, 60, web(12345));
  CHECK(r.times_ms.size() == 3);
  for (size_t i = 0; i < 3; ++i) CHECK(row(r, i) == zeros(HeatmapMetric::handshake));

  r = h.collect(HeatmapMetric::connect_syscall, 60, HeatmapScope::destination("[fd00::2]:8443", kAppNetns, "fd00::1"));
  CHECK(row(r, 1) == counts_of(b.destinations[0].connect_syscall.interval));
  r = h.collect(HeatmapMetric::handshake, 60, HeatmapScope::destination("other"));
  CHECK(row(r, 0) == counts_of(a.destinations[2].handshake.interval));

  r = h.collect(HeatmapMetric::accept_queue_fill, 60, HeatmapScope::listener("0.0.0.0:8080", kHostNetns));
  CHECK(row(r, 0) == counts_of(a.listeners[0].fill.interval));
  CHECK(row(r, 1) == zeros(HeatmapMetric::accept_queue_fill));
  // A listener has no latency frames, a destination no fill frames: zeros.
  r = h.collect(HeatmapMetric::handshake, 60, HeatmapScope::listener("0.0.0.0:8080"));
  CHECK(row(r, 0) == zeros(HeatmapMetric::handshake));
  r = h.collect(HeatmapMetric::accept_queue_fill, 60, web());
  CHECK(row(r, 0) == zeros(HeatmapMetric::accept_queue_fill));
  // A destination label does not match a listener of the same text.
  r = h.collect(HeatmapMetric::accept_queue_fill, 60, HeatmapScope::listener("10.0.0.2:443"));
  CHECK(row(r, 0) == zeros(HeatmapMetric::accept_queue_fill));
  CHECK_FALSE(r.seen);
}

TEST_CASE("heatmap rows say whether the scope's row was in a snapshot in the window, idle or not") {
  HeatmapHistory h(3600);
  Snapshot a = make_fixture_snapshot(1, kT0);
  a.destinations[0].dst = "10.9.9.9:80";  // only in the first snapshot
  Snapshot b = make_fixture_snapshot(2, kT0 + 10);
  b.destinations[1].handshake.interval.clear();  // [fd00::2]:8443 idle
  b.destinations[1].port_search.interval.clear();
  b.destinations[1].connect_syscall.interval.clear();
  h.add(a);
  h.add(b);

  const auto seen = [&](double window, const HeatmapScope& scope) {
    return h.collect(HeatmapMetric::handshake, window, scope).seen;
  };
  CHECK(seen(60, HeatmapScope::overall()));
  CHECK(seen(60, HeatmapScope::destination("10.9.9.9:80")));
  CHECK_FALSE(seen(5, HeatmapScope::destination("10.9.9.9:80")));                     // before the window
  CHECK(seen(5, HeatmapScope::destination("[fd00::2]:8443", kAppNetns, "fd00::1")));  // idle: known, zero rows
  CHECK(h.collect(HeatmapMetric::handshake, 5, HeatmapScope::destination("[fd00::2]:8443")).counts ==
        zeros(HeatmapMetric::handshake));
  CHECK_FALSE(seen(5, HeatmapScope::destination("[fd00::2]:8443", kHostNetns)));
  CHECK_FALSE(seen(5, HeatmapScope::destination("[fd00::2]:8443", std::nullopt, "fd00::9")));
  CHECK(seen(5, HeatmapScope::destination("other")));
  CHECK_FALSE(seen(60, HeatmapScope::destination("10.0.0.3:443")));
  // The unattributed listener's fill is empty: still a known row.
  CHECK(h.collect(HeatmapMetric::accept_queue_fill, 5, HeatmapScope::listener("unattributed")).seen);
  CHECK(h.collect(HeatmapMetric::accept_queue_fill, 5, HeatmapScope::listener("0.0.0.0:8080", kHostNetns)).seen);
  CHECK_FALSE(h.collect(HeatmapMetric::accept_queue_fill, 5, HeatmapScope::listener("0.0.0.0:9999")).seen);
  CHECK_FALSE(HeatmapHistory(60).collect(HeatmapMetric::handshake, 60, HeatmapScope::destination("other")).seen);

  // A replay restarting before every frame forgets the rows of the old run;
  // a partial step back keeps them known as of the newest frame left.
  HeatmapHistory r(3600);
  Snapshot old = make_fixture_snapshot(1, kT0);
  old.destinations[0].dst = "10.9.9.9:80";
  r.add(old);
  r.add(make_fixture_snapshot(2, kT0 + 10));
  r.add(make_fixture_snapshot(3, kT0 + 5));
  CHECK(r.collect(HeatmapMetric::handshake, 60, HeatmapScope::destination("10.9.9.9:80")).seen);
  r.add(make_fixture_snapshot(4, kT0 - 100));
  CHECK_FALSE(r.collect(HeatmapMetric::handshake, 60, HeatmapScope::destination("10.9.9.9:80")).seen);
  CHECK(r.scope_count() == 5);
}

TEST_CASE("heatmap history frees scope names with their last frame and handles a clock step back") {
  HeatmapHistory h(5);
  Snapshot first = make_fixture_snapshot(1, kT0);
  first.destinations[0].dst = "10.9.9.9:80";  // only in the first frame
  h.add(first);
  CHECK(h.scope_count() == 5);
  for (int i = 1; i <= 5; ++i) h.add(make_fixture_snapshot(i + 1, kT0 + i));
  CHECK(h.frame_count() == 5);
  CHECK(h.scope_count() == 5);  // 10.9.9.9:80 gone, 10.0.0.2:443 in
  CHECK(h.collect(HeatmapMetric::handshake, 60, HeatmapScope::destination("10.9.9.9:80")).counts ==
        std::vector<uint64_t>(5 * heatmap_layout(HeatmapMetric::handshake).size(), 0));

  // The clock steps back 2 s: frames at or after the new time are replaced.
  h.add(make_fixture_snapshot(9, kT0 + 3));
  const HeatmapRows r = h.collect(HeatmapMetric::handshake, 60, HeatmapScope::overall());
  REQUIRE(r.times_ms.size() == 3);
  CHECK(r.times_ms.back() == static_cast<int64_t>((kT0 + 3) * 1000));
  CHECK(row(r, 2) == counts_of(make_fixture_snapshot(9, kT0 + 3).handshake.interval));

  // Empty snapshots leave only the dense overall frames.
  HeatmapHistory e(60);
  Snapshot empty;
  empty.timestamp = kT0;
  e.add(empty);
  CHECK(e.scope_count() == 0);
  CHECK(e.collect(HeatmapMetric::handshake, 60, HeatmapScope::overall()).times_ms.size() == 1);
}

TEST_CASE("heatmap_scope_has_metric") {
  CHECK(heatmap_scope_has_metric(HeatmapScope::Kind::overall, HeatmapMetric::accept_queue_fill));
  CHECK(heatmap_scope_has_metric(HeatmapScope::Kind::destination, HeatmapMetric::port_search));
  CHECK_FALSE(heatmap_scope_has_metric(HeatmapScope::Kind::destination, HeatmapMetric::accept_queue_fill));
  CHECK(heatmap_scope_has_metric(HeatmapScope::Kind::listener, HeatmapMetric::accept_queue_fill));
  CHECK_FALSE(heatmap_scope_has_metric(HeatmapScope::Kind::listener, HeatmapMetric::handshake));
}

TEST_CASE("parse_duration") {
  CHECK(parse_duration("300") == 300.0);
  CHECK(parse_duration("300s") == 300.0);
  CHECK(parse_duration("5m") == 300.0);
  CHECK(parse_duration("1h") == 3600.0);
  CHECK(parse_duration("2d") == 172800.0);
  CHECK(parse_duration("1.5s") == 1.5);
  CHECK(parse_duration("500ms") == 0.5);
  CHECK(parse_duration(".5s") == 0.5);
  CHECK(parse_duration("0") == 0.0);
  for (const char* bad : {"",    "s",   "ms",  "-5m", "+5m",   "5 m",  " 5m",   "5m ",   "5x", "5mm",
                          "5sm", "1e3", "inf", "nan", "5m30s", "0x10", "1..5s", "1.5.s", "5M", "5H"}) {
    CHECK_MESSAGE(!parse_duration(bad).has_value(), "accepted \"" << bad << "\"");
  }
}
