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

TEST_CASE("the remedy is built from the destination's settings and numbers") {
  NetnsSettings s = settings(0, 1);
  PortModelInput in;
  in.settings = &s;
  in.connect_rate = 900;
  std::string r = exhaustion_remedy(compute_port_model(in));
  CHECK(r.find("tcp_tw_reuse=0: enabling it (sysctl -w net.ipv4.tcp_tw_reuse=1) raises the sustainable rate to this "
               "upstream from 470/s to about 28232/s; the current rate is 900/s.") != std::string::npos);
  CHECK(r.find("keep-alive") != std::string::npos);
  CHECK(r.find("ip_local_port_range") == std::string::npos);  // the default range is not narrow

  NetnsSettings narrow = settings(1, 0, 40000, 40199);
  in.settings = &narrow;
  in.connect_rate = 20;
  r = exhaustion_remedy(compute_port_model(in));
  CHECK(r.find("tcp_timestamps=0 turns TIME_WAIT reuse off") != std::string::npos);
  CHECK(r.find("now 40000-40199, 200 usable ports") != std::string::npos);

  NetnsSettings reuse = settings(1, 1);
  in.settings = &reuse;
  r = exhaustion_remedy(compute_port_model(in));
  CHECK(r.find("already on (tcp_tw_reuse=1)") != std::string::npos);
}

TEST_CASE("format_rate") {
  CHECK(format_rate(470.53) == "470/s");  // a sustainable rate rounds down
  CHECK(format_rate(3) == "3/s");
  CHECK(format_rate(1.666) == "1.7/s");
}
