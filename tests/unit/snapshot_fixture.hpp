// A realistic Snapshot built by hand for the exporter tests: two destinations
// (IPv4 near exhaustion, IPv6 healthy), the `other` row, a listener with
// accept-queue samples and the unattributed listener row, histograms filled
// with record() calls, a firing and a resolved alert, agent health.
#pragma once

#include <string>

#include "aggregate/snapshot.hpp"

namespace connscope::test {

constexpr uint32_t kHostNetns = 4026531840u;
constexpr uint32_t kAppNetns = 4026532177u;
constexpr double kFixtureTimestamp = 1732222222.5;

// seq, timestamp: the interval; the samples derive from seq, so consecutive
// fixtures differ (history tests).
Snapshot make_fixture_snapshot(uint64_t seq = 42, double timestamp = kFixtureTimestamp);

// The path of a file in the source tree (repo_path("docs/metrics.md")).
std::string repo_path(const std::string& relative);
// The path of a file in the one fixtures tree (tests/fixtures/<relative>).
std::string fixture_path(const std::string& relative);
// The whole text of a fixture file; fails the calling test when it is missing.
std::string read_fixture(const std::string& relative);
// Compares `actual` with tests/fixtures/golden/<name>; UPDATE_GOLDEN=1 rewrites it.
// Returns "" when equal, else a message naming the first differing line.
std::string compare_golden(const std::string& name, const std::string& actual);

}  // namespace connscope::test
