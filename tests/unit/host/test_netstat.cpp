// The /proc/net/netstat parser on real 6.18 text and on broken text.
#include <doctest/doctest.h>

#include "host/netstat.hpp"
#include "snapshot_fixture.hpp"

using namespace connscope;
using connscope::test::read_fixture;

TEST_CASE("parse_netstat_counters reads real /proc/net/netstat text of 6.18") {
  auto host = parse_netstat_counters(read_fixture("netstat_host_6.18.txt"));
  REQUIRE(host.has_value());
  CHECK(host->count("TcpExtListenOverflows") == 1);
  CHECK(host->count("IpExtInOctets") == 1);

  // A netns with tcp_max_tw_buckets=5 after 10 connections closed client-first.
  auto tw = parse_netstat_counters(read_fixture("netstat_tw_overflow_6.18.txt"));
  REQUIRE(tw.has_value());
  CHECK(tw->at("TcpExtTW") == 5);

  CHECK_FALSE(parse_netstat_counters(read_fixture("netstat_truncated.txt")).has_value());
  CHECK_FALSE(parse_netstat_counters(read_fixture("netstat_garbled.txt")).has_value());
  CHECK_FALSE(parse_netstat_counters("TcpExt: A B\nTcpExt: 1\n").has_value());
  CHECK_FALSE(parse_netstat_counters("TcpExt: A B\nIpExt: 1 2\n").has_value());
  CHECK_FALSE(parse_netstat_counters("TcpExt: A B\n").has_value());
  CHECK(parse_netstat_counters("")->empty());
  // /proc/net/snmp has a signed field (MaxConn -1): skipped, not fatal.
  auto snmp = parse_netstat_counters("Tcp: RtoMin MaxConn ActiveOpens\nTcp: 200 -1 17\n");
  REQUIRE(snmp.has_value());
  CHECK(snmp->at("TcpActiveOpens") == 17);
  CHECK(snmp->count("TcpMaxConn") == 0);
}

TEST_CASE("netstat_value: a counter by its nstat name, nullopt when the kernel lacks it") {
  auto full = parse_netstat_counters(read_fixture("netstat_netns_overflow_6.18.txt"));
  REQUIRE(full.has_value());
  CHECK(netstat_value(*full, "TcpExtListenOverflows") == 8);
  CHECK(netstat_value(*full, "TcpExtListenDrops") == 8);
  CHECK_FALSE(netstat_value(*full, "TcpExtNoSuchCounter").has_value());
  CHECK_FALSE(netstat_value(*full, "ListenOverflows").has_value());  // the prefix is part of the name
}
