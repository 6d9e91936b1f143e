// Unit tests: alert rules, hysteresis and the alert line.
#include <doctest/doctest.h>

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
  CHECK(a->remedy.find("tcp_tw_reuse=0") != std::string::npos);
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
  CHECK(o->summary.find("dropped 7 connections") != std::string::npos);
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
  CHECK(summaries[0].find("100 % of the ephemeral ports to 10.0.0.2:80 are busy (100 in use of 100: 0 connecting, 0 "
                          "open, 100 in TIME_WAIT); no free port left at this rate") != std::string::npos);
  CHECK(summaries[1].find("80 % of the ephemeral ports to 10.0.0.3:80") != std::string::npos);
  CHECK(summaries[1].find("exhausted in about 2.3 s at this rate") != std::string::npos);
}
