// The ephemeral-port rules: port range, reserved ports, tcp_tw_reuse, tcp_timestamps.
#include <doctest/doctest.h>

#include "doctor/rules.hpp"
#include "doctor_fixtures.hpp"

using namespace connscope;
using namespace connscope::test;

TEST_CASE("evaluate_host: tcp_tw_reuse 0, 1 and 2 and the rates they allow") {
  HostFacts f = host_facts();
  f.settings.tw_reuse = 0;
  std::vector<Finding> fs = evaluate_host(f);
  const Finding* r = find(fs, "ports.tw_reuse");
  REQUIRE(r != nullptr);
  CHECK(r->severity == FindingLevel::warning);
  CHECK(r->value == "0 (off)");
  CHECK(has(r->meaning, "28232/60 s = 470/s"));
  CHECK(has(r->meaning, "28232/1 s = 28232/s"));
  CHECK(has(r->fix, "sysctl -w net.ipv4.tcp_tw_reuse=1"));
  CHECK(has(r->fix, "keep-alive"));

  // A remote destination already holding 60 % of the ports makes it critical.
  add_outgoing(&f, "10.0.0.1", "10.0.0.5", 443, 17000, 16000);
  fs = evaluate_host(f);
  check_well_formed(fs);
  CHECK(find(fs, "ports.tw_reuse")->severity == FindingLevel::critical);
  const Finding* d = find(fs, "timewait.dest.1");
  REQUIRE(d != nullptr);
  CHECK(d->severity == FindingLevel::warning);
  CHECK(d->subject == "10.0.0.1 -> 10.0.0.5:443");
  CHECK(d->value == "17000 of 28232 ports (60 %)");
  CHECK(has(d->meaning, "16000 in TIME_WAIT"));
  CHECK(has(d->fix, "tcp_tw_reuse=1"));
  CHECK(has(d->fix, "add source addresses"));
  CHECK(find(fs, "timewait.destinations") == nullptr);

  // tw_reuse=2 with the same busy remote destination: loopback-only reuse does not help it.
  f.settings.tw_reuse = 2;
  fs = evaluate_host(f);
  CHECK(find(fs, "ports.tw_reuse")->severity == FindingLevel::warning);
  CHECK(find(fs, "timewait.dest.1")->severity == FindingLevel::warning);

  // tw_reuse=1: the TIME_WAIT older than 1 s are reusable, the destination is no longer flagged.
  f.settings.tw_reuse = 1;
  add_outgoing(&f, "10.0.0.1", "10.0.0.5", 443, 17000, 16000);
  fs = evaluate_host(f);
  r = find(fs, "ports.tw_reuse");
  CHECK(r->severity == FindingLevel::ok);
  CHECK(has(r->meaning, "28232/1 s = 28232/s"));
  CHECK(find(fs, "timewait.dest.1") == nullptr);
  CHECK(find(fs, "timewait.destinations")->value == "1000 of 28232 ports (3.5 %)");
  CHECK(has(find(fs, "timewait.destinations")->meaning, "16000 reusable now"));

  // A shorter tcp_tw_reuse_delay (6.13+) raises the rate and is reported.
  f.settings.tw_reuse_delay_ms = 250;
  fs = evaluate_host(f);
  CHECK(has(find(fs, "ports.tw_reuse")->meaning, "28232/0.25 s = 112928/s"));
  REQUIRE(find(fs, "ports.tw_reuse_delay") != nullptr);
  CHECK(find(fs, "ports.tw_reuse_delay")->severity == FindingLevel::info);

  // Destinations 80 % full are critical.
  f.settings.tw_reuse = 0;
  add_outgoing(&f, "10.0.0.1", "10.0.0.5", 443, 25000, 24000);
  CHECK(find(evaluate_host(f), "timewait.dest.1")->severity == FindingLevel::critical);
}

TEST_CASE("evaluate_host: tcp_timestamps=0 disables reuse") {
  HostFacts f = host_facts();
  f.settings.timestamps = 0;
  f.settings.tw_reuse = 1;
  auto fs = evaluate_host(f);
  check_well_formed(fs);
  const Finding* ts = find(fs, "ports.timestamps");
  REQUIRE(ts != nullptr);
  CHECK(ts->severity == FindingLevel::warning);
  CHECK(has(ts->meaning, "tcp_tw_reuse never applies"));
  CHECK(has(ts->fix, "sysctl -w net.ipv4.tcp_timestamps=1"));
  const Finding* r = find(fs, "ports.tw_reuse");
  CHECK(r->severity == FindingLevel::warning);
  CHECK(has(r->meaning, "cannot work"));
  CHECK(has(r->meaning, "470/s"));
}

TEST_CASE("evaluate_host: narrowed and reserved port ranges (a tuned netns captured on 6.18)") {
  HostFacts f = tuned_facts();
  auto fs = evaluate_host(f);
  check_well_formed(fs);
  const Finding* range = find(fs, "ports.range");
  CHECK(range->severity == FindingLevel::critical);  // 899 usable ports
  CHECK(range->value == "20000-20999 (899 usable ports)");
  CHECK(has(range->meaning, "899/60 s = 14/s"));
  CHECK(has(range->fix, "ip_local_port_range"));
  const Finding* res = find(fs, "ports.reserved");
  REQUIRE(res != nullptr);
  CHECK(res->severity == FindingLevel::info);
  CHECK(res->value == "8080,20100-20199,20500,30000-30010");
  CHECK(has(res->meaning, "101 reserved ports"));
  CHECK(has(res->meaning, "899 of its 1000"));

  // Reserved ranges all outside the port range change nothing.
  f.settings = settings_fixture("host_6.18");
  f.settings.reserved = {{8080, 8080}};
  CHECK(find(evaluate_host(f), "ports.reserved")->severity == FindingLevel::ok);
}
