// Unit tests: alert rules, hysteresis and the alert line.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <set>

#include "aggregate/alerts.hpp"
#include "aggregate/port_model.hpp"

using namespace connscope;

namespace {

DestinationStats destination(double utilization, std::map<std::string, uint64_t> errors = {}) {
  DestinationStats d;
  d.key.netns = 4026532000;
  d.key.family = 2;
  d.src = "10.0.0.1";
  d.dst = "10.0.0.2:80";
  d.model.settings_known = true;
  d.model.usable_ports = 100;
  d.model.utilization = utilization;
  d.model.in_use = static_cast<uint32_t>(utilization * 100);
  d.model.connect_rate = 1;
  d.model.timestamps = 1;
  d.model.sustainable_rate = 100.0 / 60;
  d.model.sustainable_rate_without_reuse = 100.0 / 60;
  d.model.sustainable_rate_with_reuse = 100;
  d.errors = std::move(errors);
  d.processes.push_back({1234, "curl", 50});
  return d;
}

Snapshot snap(double t, std::vector<DestinationStats> dests) {
  Snapshot s;
  s.timestamp = t;
  s.interval_s = 1;
  s.destinations = std::move(dests);
  return s;
}

const Alert* find(const Snapshot& s, const std::string& rule) {
  for (const Alert& a : s.alerts)
    if (a.rule == rule) return &a;
  return nullptr;
}

}  // namespace

TEST_CASE("threshold alerts fire after N intervals and resolve after M") {
  AlertThresholds t;
  t.fire_after = 2;
  t.resolve_after = 3;
  AlertEngine e(t);
  Snapshot s1 = snap(1, {destination(0.75)});
  CHECK(e.evaluate(s1).empty());
  CHECK(find(s1, "ephemeral_ports_warning") == nullptr);  // pending

  Snapshot s2 = snap(2, {destination(0.80)});
  auto changed = e.evaluate(s2);
  REQUIRE(changed.size() == 1);
  CHECK(changed[0].rule == "ephemeral_ports_warning");
  const Alert* a = find(s2, "ephemeral_ports_warning");
  REQUIRE(a);
  CHECK(a->state == AlertState::firing);
  CHECK(a->severity == Severity::warning);
  CHECK(a->target == "10.0.0.2:80");
  CHECK(a->src == "10.0.0.1");
  CHECK(format_alert_line(*a).find("ephemeral_ports_warning 10.0.0.1 -> 10.0.0.2:80") != std::string::npos);
  CHECK(a->process == "curl (pid 1234)");
  CHECK(a->since == 2);
  CHECK(a->remedy_commands ==
        std::vector<std::string>{"nsenter --net=/proc/1234/ns/net sysctl -w net.ipv4.tcp_tw_reuse=1",
                                 "nsenter --net=/proc/1234/ns/net sysctl -w "
                                 "net.ipv4.ip_local_port_range=\"1024 65535\""});
  CHECK(s2.alerts_fired_total.at("ephemeral_ports_warning") == 1);

  // A dip for fewer than M intervals does not resolve it.
  for (double t2 : {3.0, 4.0}) {
    Snapshot s = snap(t2, {destination(0.5)});
    CHECK(e.evaluate(s).empty());
    CHECK(find(s, "ephemeral_ports_warning"));
  }
  Snapshot s5 = snap(5, {destination(0.72)});
  CHECK(e.evaluate(s5).empty());
  for (double t2 : {6.0, 7.0}) {
    Snapshot s = snap(t2, {destination(0.1)});
    CHECK(e.evaluate(s).empty());
  }
  Snapshot s8 = snap(8, {destination(0.1)});
  changed = e.evaluate(s8);
  REQUIRE(changed.size() == 1);
  CHECK(changed[0].state == AlertState::resolved);
  a = find(s8, "ephemeral_ports_warning");
  REQUIRE(a);
  CHECK(a->state == AlertState::resolved);
  CHECK(a->resolved_at == 8);
  Snapshot s9 = snap(9, {destination(0.1)});
  e.evaluate(s9);
  CHECK(find(s9, "ephemeral_ports_warning") == nullptr);  // reported resolved once
  CHECK(s9.alerts_fired_total.at("ephemeral_ports_warning") == 1);
}

TEST_CASE("failures fire at once: EADDRNOTAVAIL, overflow, lost events") {
  AlertEngine e(AlertThresholds{});
  Snapshot s = snap(1, {destination(0.95, {{"EADDRNOTAVAIL", 3}})});
  ListenerStats l;
  l.listen = "0.0.0.0:8080";
  l.overflows = 7;
  l.max_backlog = 4;
  l.queue_peak = 5;
  s.listeners.push_back(l);
  s.health.lost_interval = 12;
  s.health.lost_total["state"] = 12;
  auto changed = e.evaluate(s);
  std::set<std::string> rules;
  for (const Alert& a : changed) rules.insert(a.rule);
  CHECK(rules.count("connect_port_errors"));
  CHECK(rules.count("listen_overflow"));
  CHECK(rules.count("events_lost"));
  CHECK_FALSE(rules.count("ephemeral_ports_critical"));  // threshold rule: pending one interval
  const Alert* c = find(s, "connect_port_errors");
  REQUIRE(c);
  CHECK(c->severity == Severity::critical);
  CHECK(c->summary.find("3 EADDRNOTAVAIL") != std::string::npos);
  const Alert* o = find(s, "listen_overflow");
  REQUIRE(o);
  CHECK(o->target == "0.0.0.0:8080");
  CHECK(o->summary == "7 connections dropped: accept queue full (peak 5 of max 4)");
  CHECK(format_alert_line(*o).find("ALERT warning listen_overflow 0.0.0.0:8080") != std::string::npos);
}

TEST_CASE("connect rate above the sustainable rate, slow port search, retransmit spike") {
  AlertThresholds t;
  t.fire_after = 1;
  AlertEngine e(t);
  DestinationStats d = destination(0.2);
  d.model.connect_rate = 20;
  d.port_search.summary.count = 10;
  d.port_search.summary.p99 = 0.004;
  d.retransmits["syn_sent"] = 30;
  Snapshot s = snap(1, {d});
  e.evaluate(s);
  CHECK(find(s, "connect_rate_unsustainable"));
  CHECK(find(s, "port_search_slow"));
  CHECK(find(s, "retransmit_spike"));
  // Same retransmit rate again: still 30/s but now above a baseline of 30.
  DestinationStats calm = destination(0.2);
  calm.model.connect_rate = 1;
  calm.retransmits["syn_sent"] = 30;
  for (int i = 2; i < 12; ++i) {
    Snapshot x = snap(i, {calm});
    e.evaluate(x);
  }
  Snapshot last = snap(12, {calm});
  e.evaluate(last);
  CHECK(find(last, "connect_rate_unsustainable") == nullptr);
  CHECK(find(last, "port_search_slow") == nullptr);
  CHECK(find(last, "retransmit_spike") == nullptr);  // 30/s is the baseline now
}

TEST_CASE("the exhaustion summary says when and how full") {
  AlertThresholds t;
  t.fire_after = 1;
  AlertEngine e(t);
  DestinationStats full = destination(1.0);
  full.time_wait = 100;
  full.model.time_to_exhaustion_s = 0.0;
  DestinationStats filling = destination(0.8);
  filling.dst = "10.0.0.3:80";
  filling.model.time_to_exhaustion_s = 2.34;
  Snapshot s = snap(1, {full, filling});
  e.evaluate(s);
  std::vector<std::string> summaries;
  for (const Alert& a : s.alerts)
    if (a.rule == "ephemeral_ports_warning") summaries.push_back(a.summary);
  REQUIRE(summaries.size() == 2);
  CHECK(summaries[0] ==
        "100 % of the ports in use (100 of 100: 0 connecting, 0 open, 100 TIME_WAIT); no free port left at 1/s");
  CHECK(summaries[1] ==
        "80 % of the ports in use (80 of 100: 0 connecting, 0 open, 0 TIME_WAIT); full in about 2.3 s at 1/s");
}

namespace {

// Alert lines print local time: pin the zone.
struct UtcZone {
  UtcZone() {
    setenv("TZ", "UTC", 1);
    tzset();
  }
};

NetnsSettings named_netns(uint32_t netns, const char* path) {
  NetnsSettings n;
  n.netns = netns;
  n.enter_path = path;
  return n;
}

}  // namespace

TEST_CASE("time to exhaustion: a warning at once within the horizon, critical within the critical horizon") {
  AlertThresholds t;  // horizon 120 s, critical horizon 30 s, fire after 2
  AlertEngine e(t);
  DestinationStats d = destination(0.1);
  d.model.connect_rate = 20;
  d.model.time_to_exhaustion_s = 25.0;
  Snapshot s1 = snap(1, {d});
  std::set<std::string> fired;
  for (const Alert& a : e.evaluate(s1)) fired.insert(a.rule);
  CHECK(fired.count("ephemeral_ports_exhaustion_soon"));  // at once
  CHECK_FALSE(fired.count("ephemeral_ports_critical"));   // hysteresis: one more interval
  const Alert* soon = find(s1, "ephemeral_ports_exhaustion_soon");
  REQUIRE(soon);
  CHECK(soon->summary == "ports run out in about 25.0 s at 20/s (sustainable 1.7/s; 10 of 100 in use)");
  Snapshot s2 = snap(2, {d});
  fired.clear();
  for (const Alert& a : e.evaluate(s2)) fired.insert(a.rule);
  CHECK(fired.count("ephemeral_ports_critical"));  // 10 % in use, but full within 30 s
  // Beyond the horizon: nothing.
  AlertEngine e2(t);
  d.model.time_to_exhaustion_s = 200.0;
  Snapshot s3 = snap(1, {d});
  e2.evaluate(s3);
  CHECK(find(s3, "ephemeral_ports_exhaustion_soon") == nullptr);
}

TEST_CASE("alerts never name a process that did not fail, nor blame `other`") {
  AlertEngine e(AlertThresholds{});
  DestinationStats d = destination(0.5, {{"EADDRNOTAVAIL", 2}});
  d.processes = {{77, "noise", 500, 0}, {4242, "python3", 20, 2}};
  DestinationStats unknown = destination(0.5, {{"EADDRNOTAVAIL", 1}});
  unknown.dst = "10.0.0.9:80";
  unknown.processes = {{77, "noise", 500, 0}};  // the failure came without a task
  DestinationStats other = destination(1.0, {{"EADDRNOTAVAIL", 9}});
  other.other = true;
  other.dst = "other";
  other.model = PortModel{};
  Snapshot s = snap(1, {d, unknown, other});
  e.evaluate(s);
  for (const Alert& a : s.alerts) CHECK(a.target != "other");
  std::map<std::string, std::string> process;
  for (const Alert& a : s.alerts)
    if (a.rule == "connect_port_errors") process[a.target] = a.process;
  // DestinationTable puts failing processes first; the rule names the first
  // only when it failed.
  CHECK(process.at("10.0.0.9:80").empty());
  CHECK(process.size() == 2);
}

TEST_CASE(
    "alert lines: timestamped, short, the kernel's error text, the remedy once per target, RESOLVED with "
    "current numbers") {
  UtcZone utc;
  AlertThresholds t;
  t.fire_after = 1;
  t.resolve_after = 1;
  AlertEngine e(t);
  AlertLog log;
  const double t0 = 1764662587;  // 2025-12-02 08:03:07 UTC
  DestinationStats d = destination(0.95, {{"EADDRNOTAVAIL", 3}});
  d.key.netns = 4026532300;
  d.processes.front().port_errors = 3;
  d.time_wait = 95;
  d.model.usable_ports = 100;
  d.model.range_lo = 40000;
  d.model.range_hi = 40099;
  d.model.connect_rate = 20;
  d.model.time_to_exhaustion_s = 0.25;
  Snapshot s1 = snap(t0, {d});
  s1.netns_settings[d.key.netns] = named_netns(d.key.netns, "/run/netns/blue");
  auto changed = e.evaluate(s1);
  std::vector<std::string> lines = log.lines(changed, s1.alerts);
  const std::string fix =
      "connscope: 08:03:07 FIX 10.0.0.2:80 netns blue: `ip netns exec blue sysctl -w net.ipv4.tcp_tw_reuse=1` lets "
      "connect() reuse TIME_WAIT ports: sustainable 1.7/s -> about 100/s (now 20/s); `ip netns exec blue sysctl -w "
      "net.ipv4.ip_local_port_range=\"1024 65535\"` widens the range from 40000-40099 (100 usable ports; keep "
      "server ports out with net.ipv4.ip_local_reserved_ports); for good: reuse upstream connections (HTTP "
      "keep-alive, pooling) or spread them over more source addresses";
  const std::vector<std::string> expected = {
      "connscope: 08:03:07 ALERT warning ephemeral_ports_warning 10.0.0.1 -> 10.0.0.2:80 netns blue [curl (pid "
      "1234)]: 95 % of the ports in use (95 of 100: 0 connecting, 0 open, 95 TIME_WAIT); full in about 250.0 ms at "
      "20/s",
      fix,
      "connscope: 08:03:07 ALERT critical ephemeral_ports_critical 10.0.0.1 -> 10.0.0.2:80 netns blue [curl (pid "
      "1234)]: 95 % of the ports in use (95 of 100: 0 connecting, 0 open, 95 TIME_WAIT); full in about 250.0 ms at "
      "20/s",
      "connscope: 08:03:07 ALERT warning ephemeral_ports_exhaustion_soon 10.0.0.1 -> 10.0.0.2:80 netns blue [curl "
      "(pid 1234)]: ports run out in about 250.0 ms at 20/s (sustainable 1.7/s; 95 of 100 in use)",
      "connscope: 08:03:07 ALERT warning connect_rate_unsustainable 10.0.0.1 -> 10.0.0.2:80 netns blue [curl (pid "
      "1234)]: 20/s new connections, above the sustainable 1.7/s for 100 ports",
      "connscope: 08:03:07 ALERT critical connect_port_errors 10.0.0.1 -> 10.0.0.2:80 netns blue [curl (pid 1234)]: "
      "3 connect() failed: 3 EADDRNOTAVAIL (Cannot assign requested address); 95 % of the ports in use (95 of 100: 0 "
      "connecting, 0 open, 95 TIME_WAIT)",
  };
  CHECK(lines == expected);
  for (const std::string& l : lines)
    if (l.find(" FIX ") == std::string::npos) CHECK(l.size() < 260);

  // The fix: reuse on, 5 ports in use, 200/s sustainable. RESOLVED says so.
  DestinationStats ok = destination(0.05);
  ok.key.netns = d.key.netns;
  ok.time_wait = 5;
  ok.model.connect_rate = 20;
  ok.model.sustainable_rate = 100;
  ok.model.reuse_effective = true;
  Snapshot s2 = snap(t0 + 23, {ok});
  s2.netns_settings = s1.netns_settings;
  lines = log.lines(e.evaluate(s2), s2.alerts);
  REQUIRE(lines.size() == 5);  // no FIX line for a resolution
  auto has = [&](const std::string& l) { return std::find(lines.begin(), lines.end(), l) != lines.end(); };
  CHECK(
      has("connscope: 08:03:30 RESOLVED warning ephemeral_ports_warning 10.0.0.1 -> 10.0.0.2:80 netns blue after "
          "23.0 s, now: 5 % of the ports in use (5 of 100: 0 connecting, 0 open, 5 TIME_WAIT)"));
  CHECK(
      has("connscope: 08:03:30 RESOLVED warning connect_rate_unsustainable 10.0.0.1 -> 10.0.0.2:80 netns blue "
          "after 23.0 s, now: 20/s new connections, within the sustainable 100/s for 100 ports"));
  CHECK(
      has("connscope: 08:03:30 RESOLVED critical connect_port_errors 10.0.0.1 -> 10.0.0.2:80 netns blue after "
          "23.0 s, now: no connect() failed for want of a port; 5 % of the ports in use (5 of 100: 0 connecting, 0 "
          "open, 5 TIME_WAIT)"));

  // Another rule of the same target a second later, at another rate (the
  // remedy's text changes with it, its commands do not): no second FIX.
  {
    AlertEngine e2(t);
    AlertLog log2;
    DestinationStats slow = d;
    slow.model.utilization = 0.5;
    slow.errors.clear();
    slow.processes.front().port_errors = 0;
    slow.model.time_to_exhaustion_s = 60;
    slow.model.connect_rate = 14;
    Snapshot a = snap(t0, {slow});
    a.netns_settings = s1.netns_settings;
    std::vector<std::string> first = log2.lines(e2.evaluate(a), a.alerts);
    Snapshot b = snap(t0 + 1, {d});
    b.netns_settings = s1.netns_settings;
    std::vector<std::string> second = log2.lines(e2.evaluate(b), b.alerts);
    auto fixes = [](const std::vector<std::string>& v) {
      return std::count_if(v.begin(), v.end(),
                           [](const std::string& l) { return l.find(" FIX ") != std::string::npos; });
    };
    CHECK(fixes(first) == 1);
    CHECK(second.size() >= 2);
    CHECK(fixes(second) == 0);
  }

  // Firing again later: the remedy is printed again, once.
  Snapshot s3 = snap(t0 + 60, {d});
  s3.netns_settings = s1.netns_settings;
  lines = log.lines(e.evaluate(s3), s3.alerts);
  CHECK(std::count_if(lines.begin(), lines.end(),
                      [](const std::string& l) { return l.find(" FIX ") != std::string::npos; }) == 1);
}
