// The other-network-namespace rules.
#include <arpa/inet.h>
#include <doctest/doctest.h>

#include "doctor/rules.hpp"
#include "doctor_fixtures.hpp"

using namespace connscope;
using namespace connscope::test;

TEST_CASE("evaluate_host: other network namespaces only when they differ or are busy") {
  HostFacts f = host_facts();
  f.other_netns_read = true;
  OtherNetns same;
  same.netns = 4026532001u;
  same.path = "/proc/77/ns/net";
  same.label = "pid 77 (envoy)";
  same.settings = f.settings;
  OtherNetns narrow = same;
  narrow.netns = 4026532002u;
  narrow.path = "/run/netns/blue";
  narrow.label = "/run/netns/blue";
  narrow.settings = settings_fixture("tuned_6.18");
  OtherNetns busy = same;
  busy.netns = 4026532003u;
  busy.has_busiest = true;
  busy.busiest.family = AF_INET;
  busy.busiest.saddr = ip(AF_INET, "10.1.0.2");
  busy.busiest.daddr = ip(AF_INET, "10.1.0.9");
  busy.busiest.dport = 5432;
  busy.busiest.sockets = 20000;
  busy.busiest.time_wait = 19000;
  f.other_netns = {same, narrow, busy};
  auto fs = evaluate_host(f);
  check_well_formed(fs);
  CHECK(find(fs, "netns.4026532001") == nullptr);
  const Finding* n = find(fs, "netns.4026532002");
  REQUIRE(n != nullptr);
  CHECK(n->severity == FindingLevel::info);
  CHECK(has(n->meaning, "port range 20000-20999 (899 usable)"));
  CHECK(has(n->fix, "ip netns exec blue sysctl -w net.ipv4.ip_local_port_range='32768 60999'"));
  CHECK(has(n->fix, "net.ipv4.tcp_timestamps=1"));
  const Finding* b = find(fs, "netns.4026532003");
  REQUIRE(b != nullptr);
  CHECK(b->severity == FindingLevel::warning);  // 20000 of 28232
  CHECK(has(b->meaning, "10.1.0.2 -> 10.1.0.9:5432 holds 20000 of 28232 ports"));
  CHECK(has(b->fix, "nsenter --net=/proc/77/ns/net sysctl -w net.ipv4.tcp_tw_reuse=1"));
}
