// The doctor's facts: netstat counters and the sockets summary, on captured 6.18 dumps.
#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/tcp.h>

#include <algorithm>

#include "doctor/facts.hpp"
#include "doctor_fixtures.hpp"
#include "host/netstat.hpp"
#include "snapshot_fixture.hpp"
#include "util/address.hpp"

using namespace connscope;
using namespace connscope::test;

TEST_CASE("tcp_counters picks the doctor's counters out of real /proc/net/netstat text of 6.18") {
  auto host = parse_netstat_counters(read_fixture("netstat_host_6.18.txt"));
  REQUIRE(host.has_value());
  TcpCounters c = tcp_counters(*host);
  CHECK(c.listen_overflows == 0);
  CHECK(c.time_wait_overflow == 0);

  // A netns with a backlog-1 listener that never accepts and 5 clients.
  c = tcp_counters(*parse_netstat_counters(read_fixture("netstat_netns_overflow_6.18.txt")));
  CHECK(c.listen_overflows == 8);
  CHECK(c.listen_drops == 8);

  // A netns with tcp_max_tw_buckets=5 after 10 connections closed client-first.
  auto tw = parse_netstat_counters(read_fixture("netstat_tw_overflow_6.18.txt"));
  REQUIRE(tw.has_value());
  c = tcp_counters(*tw);
  CHECK(c.time_wait_overflow == 5);
  CHECK(c.req_q_full_drop == 0);
}

TEST_CASE("is_loopback follows tcp_tw_reuse=2: 127/8, ::1, IPv4-mapped 127/8") {
  CHECK(is_loopback(AF_INET, ip(AF_INET, "127.0.0.1")));
  CHECK(is_loopback(AF_INET, ip(AF_INET, "127.255.0.9")));
  CHECK_FALSE(is_loopback(AF_INET, ip(AF_INET, "10.0.0.1")));
  CHECK_FALSE(is_loopback(AF_INET, ip(AF_INET, "128.0.0.1")));
  CHECK(is_loopback(AF_INET6, ip(AF_INET6, "::1")));
  CHECK(is_loopback(AF_INET6, ip(AF_INET6, "::ffff:127.0.0.1")));
  CHECK_FALSE(is_loopback(AF_INET6, ip(AF_INET6, "::ffff:10.0.0.1")));
  CHECK_FALSE(is_loopback(AF_INET6, ip(AF_INET6, "::")));
  CHECK_FALSE(is_loopback(AF_INET6, ip(AF_INET6, "::127.0.0.1")));  // IPv4-compatible, not mapped
  CHECK_FALSE(is_loopback(0, ip(AF_INET, "127.0.0.1")));
}

TEST_CASE("summarize_sockets groups a real IPv4 dump by destination, with TIME_WAIT reuse by age") {
  const std::vector<SocketRecord> recs = dump_fixture("dump_v4_6.18.bin");
  NetnsSettings s;  // the capture netns: 40000-40999, tcp_tw_reuse=2 (loopback)
  s.port_lo = 40000;
  s.port_hi = 40999;
  s.usable_ports = 1000;

  SocketSummary sum = summarize_sockets(recs, s);
  CHECK(sum.listeners.size() == 2);
  CHECK(sum.sockets == 64);  // 60 TIME_WAIT, 2 clients, 2 accept-queue children
  CHECK(sum.time_wait == 60);
  CHECK(sum.time_wait_inbound == 0);
  // 60 TIME_WAIT + 2 client ports, but connect() gave client port 40178 to a connection toward :5000 while
  // an earlier one toward :5003 still held it in TIME_WAIT: ports are shared across destinations.
  CHECK(sum.ephemeral_in_use == 61);
  REQUIRE(sum.destinations.size() == 2);
  const DestinationUse& d = sum.destinations[0];
  CHECK(format_address(d.family, d.saddr) == "127.0.0.1");
  CHECK(format_endpoint(d.family, d.daddr, d.dport) == "127.0.0.1:5003");
  CHECK(d.sockets == 60);
  CHECK(d.time_wait == 60);
  CHECK(d.reusable == 0);  // captured 0.7 s into TIME_WAIT: younger than tcp_tw_reuse_delay 1 s
  CHECK(sum.destinations[1].dport == 5000);
  CHECK(sum.destinations[1].sockets == 2);  // the clients; the server side is inbound

  auto reusable_5003 = [&] {
    for (const DestinationUse& x : summarize_sockets(recs, s).destinations)
      if (x.dport == 5003) return x.reusable;
    FAIL("no destination :5003");
    return 0u;
  };
  s.tw_reuse_delay_ms = 250;  // old enough now: reusable over loopback
  CHECK(reusable_5003() == 60);
  s.timestamps = 0;  // no timestamps, no reuse
  CHECK(reusable_5003() == 0);
  s.timestamps = 1;
  s.tw_reuse = 0;
  CHECK(reusable_5003() == 0);
  s.tw_reuse = 1;
  CHECK(reusable_5003() == 60);

  // Ordered by ports held: reuse pushed :5003 (60 sockets, all reusable) below :5000 (2 held).
  sum = summarize_sockets(recs, s);
  CHECK(sum.destinations[0].dport == 5000);
  CHECK(summarize_sockets(recs, s, 1).destinations.size() == 1);
}

TEST_CASE("summarize_sockets on a real IPv6 dump: IPv4-mapped peers are loopback, server side is inbound") {
  const std::vector<SocketRecord> recs = dump_fixture("dump_v6_6.18.bin");
  NetnsSettings s;
  s.port_lo = 40000;
  s.port_hi = 40999;
  s.usable_ports = 1000;
  s.tw_reuse_delay_ms = 100;
  SocketSummary sum = summarize_sockets(recs, s);
  CHECK(sum.listeners.size() == 3);
  CHECK(sum.time_wait == 5);
  REQUIRE(sum.destinations.size() == 3);  // ::1 -> 5004 (TIME_WAIT), ::1 -> 5001, mapped -> 5002
  for (const DestinationUse& d : sum.destinations) {
    CHECK(d.family == AF_INET6);
    if (d.dport == 5004) {
      CHECK(d.time_wait == 5);
      CHECK(d.reusable == 5);
    } else {
      CHECK(d.sockets == 1);
    }
  }
  CHECK(std::any_of(sum.destinations.begin(), sum.destinations.end(), [](const DestinationUse& d) {
    return format_endpoint(d.family, d.daddr, d.dport) == "[::ffff:127.0.0.1]:5002";
  }));
}

TEST_CASE("summarize_sockets: TIME_WAIT on a listening port is inbound, unconnected sockets are not destinations") {
  NetnsSettings s;
  std::vector<SocketRecord> recs = {
      sock(TCP_LISTEN, "0.0.0.0", 443, "0.0.0.0", 0),
      sock(TCP_TIME_WAIT, "10.0.0.1", 443, "192.0.2.7", 51000, 30000),  // we closed first as the server
      sock(TCP_TIME_WAIT, "10.0.0.1", 33000, "10.0.0.5", 8080, 30000),
      sock(TCP_ESTABLISHED, "10.0.0.1", 33001, "10.0.0.5", 8080),
      sock(TCP_ESTABLISHED, "10.0.0.2", 33000, "10.0.0.5", 8080),  // another source address: its own ports
      sock(TCP_SYN_SENT, "10.0.0.1", 33002, "10.0.0.6", 80),
      sock(TCP_CLOSE, "10.0.0.1", 33003, "0.0.0.0", 0),
  };
  SocketSummary sum = summarize_sockets(recs, s);
  CHECK(sum.sockets == 6);
  CHECK(sum.time_wait == 2);
  CHECK(sum.time_wait_inbound == 1);
  CHECK(sum.ephemeral_in_use == 4);  // 33000 (twice), 33001, 33002, 33003
  REQUIRE(sum.destinations.size() == 3);
  CHECK(format_address(AF_INET, sum.destinations[0].saddr) == "10.0.0.1");
  CHECK(sum.destinations[0].dport == 8080);
  CHECK(sum.destinations[0].sockets == 2);
  CHECK(sum.destinations[0].time_wait == 1);
  CHECK(sum.destinations[0].reusable == 0);  // tcp_tw_reuse=2 and not loopback

  s.reserved = {{33000, 33001}};  // reserved ports are not counted as usable ports in use
  CHECK(summarize_sockets(recs, s).ephemeral_in_use == 2);
}
