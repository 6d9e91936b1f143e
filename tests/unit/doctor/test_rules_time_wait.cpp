// The TIME_WAIT rules: tcp_fin_timeout, tcp_max_tw_buckets and its overflow counter.
#include <doctest/doctest.h>

#include "doctor/rules.hpp"
#include "doctor_fixtures.hpp"
#include "host/netstat.hpp"
#include "snapshot_fixture.hpp"

using namespace connscope;
using namespace connscope::test;

TEST_CASE("evaluate_host: tcp_fin_timeout and tcp_max_tw_buckets of a tuned netns captured on 6.18") {
  HostFacts f = tuned_facts();
  auto fs = evaluate_host(f);
  check_well_formed(fs);
  CHECK(find(fs, "timewait.fin_timeout")->severity == FindingLevel::info);  // 15 s: still explains TIME_WAIT stays 60 s
  CHECK(has(find(fs, "timewait.fin_timeout")->meaning, "fixed at 60 s"));
  CHECK(find(fs, "timewait.buckets")->severity == FindingLevel::ok);  // 5000 > 899 usable, no TIME_WAIT
}

TEST_CASE("evaluate_host: tcp_max_tw_buckets reached or below the port range") {
  HostFacts f = host_facts();
  f.settings.max_tw_buckets = 5000;
  add_outgoing(&f, "10.0.0.1", "10.0.0.5", 443, 5000, 5000);
  std::vector<Finding> fs = evaluate_host(f);
  const Finding* b = find(fs, "timewait.buckets");
  REQUIRE(b != nullptr);
  CHECK(b->severity == FindingLevel::critical);
  CHECK(b->value == "5000 of 5000 (100 %)");
  CHECK(has(b->meaning, "time wait bucket table overflow"));
  CHECK(has(b->fix, "sysctl -w net.ipv4.tcp_max_tw_buckets=262144"));

  add_outgoing(&f, "10.0.0.1", "10.0.0.5", 443, 100, 100);
  fs = evaluate_host(f);
  b = find(fs, "timewait.buckets");
  CHECK(b->severity == FindingLevel::info);  // not full, but smaller than the 28232 usable ports
  CHECK(has(b->meaning, "below one destination's 28232 usable ports"));

  // The counter shows it already happened (captured after 10 closes with tcp_max_tw_buckets=5).
  f.counters = tcp_counters(*parse_netstat_counters(read_fixture("netstat_tw_overflow_6.18.txt")));
  fs = evaluate_host(f);
  b = find(fs, "timewait.buckets");
  CHECK(b->severity == FindingLevel::warning);
  CHECK(has(b->meaning, "TcpExtTCPTimeWaitOverflow = 5"));
  CHECK_FALSE(b->fix.empty());
}
