// Unit tests: the port-exhaustion model.
#include <doctest/doctest.h>

#include "aggregate/port_model.hpp"

using namespace connscope;

namespace {
NetnsSettings settings(int tw_reuse, int timestamps, uint16_t lo = 32768, uint16_t hi = 60999) {
  NetnsSettings s;
  s.port_lo = lo;
  s.port_hi = hi;
  s.usable_ports = static_cast<uint32_t>(hi - lo + 1);
  s.tw_reuse = tw_reuse;
  s.timestamps = timestamps;
  return s;
}
}  // namespace

TEST_CASE("default range without reuse sustains about 470 connections per second") {
  NetnsSettings s = settings(0, 1);
  PortModelInput in;
  in.settings = &s;
  PortModel m = compute_port_model(in);
  CHECK(m.usable_ports == 28232);
  CHECK(m.sustainable_rate == doctest::Approx(28232.0 / 60));
  CHECK(m.sustainable_rate == doctest::Approx(470.5).epsilon(0.001));
  CHECK_FALSE(m.reuse_effective);
  CHECK(m.sustainable_rate_with_reuse == doctest::Approx(28232.0));
  CHECK_FALSE(m.time_to_exhaustion_s.has_value());
}

TEST_CASE("TIME_WAIT reuse needs tcp_tw_reuse and timestamps; 2 means loopback only") {
  NetnsSettings on = settings(1, 1), off_ts = settings(1, 0), lo_only = settings(2, 1);
  CHECK(tw_reuse_effective(on, false));
  CHECK_FALSE(tw_reuse_effective(off_ts, false));
  CHECK_FALSE(tw_reuse_effective(lo_only, false));
  CHECK(tw_reuse_effective(lo_only, true));
  PortModelInput in;
  in.settings = &on;
  CHECK(compute_port_model(in).sustainable_rate == doctest::Approx(28232.0));
  on.tw_reuse_delay_ms = 2000;  // 6.13+ net.ipv4.tcp_tw_reuse_delay
  CHECK(compute_port_model(in).sustainable_rate == doctest::Approx(14116.0));
}

TEST_CASE("utilization counts the ports connect() cannot take") {
  NetnsSettings s = settings(0, 1, 40000, 40099);
  PortModelInput in;
  in.settings = &s;
  in.connecting = 5;
  in.open = 15;
  in.time_wait = 60;
  in.time_wait_recent = 10;
  PortModel m = compute_port_model(in);
  CHECK(m.in_use == 80);
  CHECK(m.utilization == doctest::Approx(0.80));
  // With reuse only TIME_WAIT younger than the reuse delay blocks.
  s.tw_reuse = 1;
  m = compute_port_model(in);
  CHECK(m.in_use == 80);
  CHECK(m.utilization == doctest::Approx(0.30));
}

TEST_CASE("time to exhaustion at the current rate") {
  NetnsSettings s = settings(0, 1, 40000, 40099);  // 100 ports: 1.67/s sustainable
  PortModelInput in;
  in.settings = &s;
  in.time_wait = 50;
  in.connect_rate = 10;
  PortModel m = compute_port_model(in);
  REQUIRE(m.time_to_exhaustion_s.has_value());
  // 50 free ports; TIME_WAIT releases 50/60 per second; growth 10 - 0.833.
  CHECK(*m.time_to_exhaustion_s == doctest::Approx(50.0 / (10.0 - 50.0 / 60)));
  in.connect_rate = 1.5;  // below 100/60: never exhausts
  CHECK_FALSE(compute_port_model(in).time_to_exhaustion_s.has_value());
  in.connect_rate = 10;
  in.time_wait = 100;  // already full
  CHECK(*compute_port_model(in).time_to_exhaustion_s == doctest::Approx(0.0));
}

TEST_CASE("without the namespace's sysctls the range of port_alloc records is used") {
  PortModelInput in;
  in.event_range_lo = 42000;
  in.event_range_hi = 42009;
  in.time_wait = 9;
  PortModel m = compute_port_model(in);
  CHECK_FALSE(m.settings_known);
  CHECK(m.usable_ports == 10);
  CHECK(m.utilization == doctest::Approx(0.9));
  CHECK(m.sustainable_rate == doctest::Approx(10.0 / 60));
}

TEST_CASE("the remedy is built from the destination's settings and numbers, for its own namespace") {
  NetnsSettings s = settings(0, 1);
  PortModelInput in;
  in.settings = &s;
  in.connect_rate = 900;
  Remedy r = exhaustion_remedy(compute_port_model(in), "");
  CHECK(r.commands == std::vector<std::string>{"sysctl -w net.ipv4.tcp_tw_reuse=1"});
  CHECK(r.text ==
        "`sysctl -w net.ipv4.tcp_tw_reuse=1` lets connect() reuse TIME_WAIT ports: sustainable 470/s -> about "
        "28232/s (now 900/s); for good: reuse upstream connections (HTTP keep-alive, pooling) or spread them over "
        "more source addresses");  // the default range is not narrow: no range command

  NetnsSettings narrow = settings(1, 0, 40000, 40199);
  in.settings = &narrow;
  in.connect_rate = 20;
  r = exhaustion_remedy(compute_port_model(in), "ip netns exec blue ");
  CHECK(r.commands ==
        std::vector<std::string>{"ip netns exec blue sysctl -w net.ipv4.tcp_timestamps=1 net.ipv4.tcp_tw_reuse=1",
                                 "ip netns exec blue sysctl -w net.ipv4.ip_local_port_range=\"1024 65535\""});
  CHECK(r.text ==
        "`ip netns exec blue sysctl -w net.ipv4.tcp_timestamps=1 net.ipv4.tcp_tw_reuse=1` lets connect() reuse "
        "TIME_WAIT ports: sustainable 3.3/s -> about 200/s (now 20/s); `ip netns exec blue sysctl -w "
        "net.ipv4.ip_local_port_range=\"1024 65535\"` widens the range from 40000-40199 (200 usable ports; keep "
        "server ports out with net.ipv4.ip_local_reserved_ports); for good: reuse upstream connections (HTTP "
        "keep-alive, pooling) or spread them over more source addresses");

  // Reuse already on: only the range is left to widen.
  NetnsSettings reuse = settings(1, 1);
  in.settings = &reuse;
  r = exhaustion_remedy(compute_port_model(in), "nsenter --net=/proc/42/ns/net ");
  CHECK(r.commands == std::vector<std::string>{
                          "nsenter --net=/proc/42/ns/net sysctl -w net.ipv4.ip_local_port_range=\"1024 65535\""});

  // Unknown settings: no command that could be wrong.
  in.settings = nullptr;
  in.event_range_lo = 40000;
  in.event_range_hi = 40009;
  r = exhaustion_remedy(compute_port_model(in), "");
  CHECK(r.commands.empty());
  CHECK(r.text.rfind("the namespace's sysctls could not be read: without TIME_WAIT reuse this range sustains about "
                     "0.2/s (now 20/s)",
                     0) == 0);
}

TEST_CASE("format_rate") {
  CHECK(format_rate(470.53) == "470/s");  // a sustainable rate rounds down
  CHECK(format_rate(3) == "3/s");
  CHECK(format_rate(1.666) == "1.7/s");
}
