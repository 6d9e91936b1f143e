// The port table on its own: counts by state on the owning destination,
// TIME_WAIT expiry (60 s, or the census timer's), the --max-sockets bound.
#include <doctest/doctest.h>

#include "aggregate/port_table.hpp"
#include "aggregate_events.hpp"

using namespace connscope;
using namespace connscope::test;

TEST_CASE("port table: states counted on the destination, TIME_WAIT expiry, the table bound") {
  DestinationTable dests(DestinationLimits{});
  PortTable ports(2);
  Destination* d = dests.resolve(flow("10.0.0.1", 40000, "10.0.0.2", 80), kSec);
  REQUIRE(d);
  const SockKey a = sock_key(flow("10.0.0.1", 40000, "10.0.0.2", 80));
  const SockKey b = sock_key(flow("10.0.0.1", 40001, "10.0.0.2", 80));
  const SockKey c = sock_key(flow("10.0.0.1", 40002, "10.0.0.2", 80));
  CHECK(ports.set(a, d, PortState::connecting, kSec));
  CHECK(ports.set(b, d, PortState::open, kSec));
  CHECK_FALSE(ports.set(c, d, PortState::connecting, kSec));  // full: counted, not tracked
  CHECK(ports.untracked_total() == 1);
  CHECK(d->stats.connecting == 1);
  CHECK(d->stats.open == 1);

  ports.set(a, d, PortState::time_wait, 2 * kSec);            // ends at 62 s
  ports.set(b, d, PortState::time_wait, 3 * kSec, 5 * kSec);  // a census timer: ends at 5 s
  CHECK(d->stats.connecting == 0);
  CHECK(d->stats.open == 0);
  CHECK(d->stats.time_wait == 2);
  ports.expire_time_wait(5 * kSec);
  CHECK(d->stats.time_wait == 1);
  CHECK_FALSE(ports.contains(b));
  ports.expire_time_wait(62 * kSec - 1);
  CHECK(d->stats.time_wait == 1);
  ports.expire_time_wait(62 * kSec);
  CHECK(d->stats.time_wait == 0);
  CHECK(ports.find(a) == nullptr);

  // A socket back in TIME_WAIT later (port reused) keeps only its latest end.
  ports.set(a, d, PortState::time_wait, 70 * kSec);
  ports.set(a, d, PortState::time_wait, 80 * kSec);
  ports.expire_time_wait(130 * kSec);
  CHECK(d->stats.time_wait == 1);
  ports.expire_time_wait(140 * kSec);
  CHECK(d->stats.time_wait == 0);
}
