// `connscope run`: the agent's aggregation, port-exhaustion model and alerts
// against real traffic in namespaces, checked over its three outputs (HTTP
// /metrics and /api/v1/*, the JSON lines of --json-out, the stderr alert
// lines); `connscope record` + `run --replay`; and run's input errors.
// Every test case name starts with "run: " (the VM harness selects them).
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <signal.h>

#include <cmath>
#include <cstdio>
#include <future>
#include <set>
#include <sstream>
#include <thread>

#include "agent_process.hpp"
#include "netns.hpp"
#include "run_agent.hpp"
#include "sockets.hpp"
#include "traffic.hpp"
#include "traffic_run.hpp"

using namespace itest;

namespace {

constexpr int kLo = 40000, kHi = 40199, kPorts = kHi - kLo + 1;  // 200 ephemeral ports
constexpr double kInterval = 0.5;

// What one ~300 ms poll of the agent's HTTP endpoint saw for one destination.
struct Poll {
  double at = 0;  // unix time the poll started
  int metrics_status = 0, snapshot_status = 0, alerts_status = 0;
  std::optional<double> m_util, m_ts, m_sustainable;  // /metrics: utilization, last interval timestamp
  std::optional<double> s_util, s_ts;                 // /api/v1/snapshot: ports.utilization, timestamp
  json alerts = json::array();                        // /api/v1/alerts
  std::string problem;                                // what did not parse
};

Poll poll_once(const RunAgent& agent, uint64_t netns, const std::string& src, const std::string& dst) {
  Poll p;
  p.at = unix_now();
  try {
    const std::map<std::string, std::string> labels{{"netns", std::to_string(netns)}, {"src", src}, {"dst", dst}};
    HttpResult m = agent.get("/metrics");
    p.metrics_status = m.status;
    if (m.status == 200) {
      PromText prom = parse_prometheus(m.body);
      p.m_util = prom.value("connscope_port_utilization_ratio", labels);
      p.m_sustainable = prom.value("connscope_sustainable_connect_rate", labels);
      p.m_ts = prom.value("connscope_last_interval_timestamp_seconds");
      if (!prom.errors.empty()) p.problem += "/metrics: " + prom.errors.front() + "; ";
    }
    HttpResult s = agent.get("/api/v1/snapshot");
    p.snapshot_status = s.status;
    if (s.status == 200) {
      json snap = json::parse(s.body);
      p.s_ts = snap.at("timestamp").get<double>();
      if (const json* d = find_destination(snap, netns, src, dst)) p.s_util = d->at("ports").at("utilization");
    }
    HttpResult a = agent.get("/api/v1/alerts");
    p.alerts_status = a.status;
    if (a.status == 200) p.alerts = json::parse(a.body);
  } catch (const std::exception& e) {
    p.problem += e.what();
  }
  return p;
}

// Poll every ~300 ms while the connect loop runs (bounded), then collect it.
std::pair<std::vector<Poll>, PacedLoopFacts> poll_during(const RunAgent& agent, PacedConnectLoop& loop, uint64_t netns,
                                                         const std::string& src, const std::string& dst) {
  auto done = std::async(std::launch::async, [&loop] { return loop.wait(); });
  std::vector<Poll> polls;
  const std::size_t max_polls = static_cast<std::size_t>(200 * timeout_scale());  // 60 s at 300 ms
  while (done.wait_for(ms(0)) != std::future_status::ready && polls.size() < max_polls) {
    const auto next = Clock::now() + ms(300);
    polls.push_back(poll_once(agent, netns, src, dst));
    std::this_thread::sleep_until(next);
  }
  PacedLoopFacts f = done.get();
  return {std::move(polls), std::move(f)};
}

std::string describe_polls(const std::vector<Poll>& polls) {
  std::ostringstream o;
  o.precision(6);
  o << std::fixed;
  for (const auto& p : polls) {
    o << "  at " << p.at << ": /metrics " << p.metrics_status << " util "
      << (p.m_util ? std::to_string(*p.m_util) : "-") << " (interval " << (p.m_ts ? std::to_string(*p.m_ts) : "-")
      << "), snapshot " << p.snapshot_status << " util " << (p.s_util ? std::to_string(*p.s_util) : "-")
      << " (interval " << (p.s_ts ? std::to_string(*p.s_ts) : "-") << "), alerts " << p.alerts_status << " "
      << p.alerts.size();
    if (!p.problem.empty()) o << " PROBLEM: " << p.problem;
    o << "\n";
  }
  return o.str();
}

// Each line's destination row as "seq timestamp utilization in_use alerts...".
std::string describe_lines(const std::vector<json>& lines, uint64_t netns, const std::string& src,
                           const std::string& dst) {
  std::ostringstream o;
  o.precision(3);
  o << std::fixed;
  for (const auto& l : lines) {
    o << "  seq " << l.value("seq", 0) << " t " << l.value("timestamp", 0.0);
    if (const json* d = find_destination(l, netns, src, dst))
      o << " util " << d->at("ports").value("utilization", -1.0) << " in_use " << d->at("ports").value("in_use", -1)
        << " tw " << d->at("ports").value("time_wait", -1) << " attempts " << d->value("attempts", -1) << " errors "
        << d->at("errors").dump();
    for (const auto& a : l.value("alerts", json::array()))
      o << " [" << a.value("state", "") << " " << a.value("rule", "") << " " << a.value("target", "") << "]";
    o << "\n";
  }
  return o.str();
}

// The values in order with consecutive repeats removed.
std::vector<double> changes(const std::vector<double>& v) {
  std::vector<double> out;
  for (double x : v)
    if (out.empty() || x != out.back()) out.push_back(x);
  return out;
}

bool non_decreasing(const std::vector<double>& v) {
  for (std::size_t i = 1; i < v.size(); i++)
    if (v[i] < v[i - 1]) return false;
  return true;
}

std::string list(const std::vector<double>& v) {
  std::ostringstream o;
  for (double x : v) o << x << " ";
  return o.str();
}

double util_of(const json& line, uint64_t netns, const std::string& src, const std::string& dst) {
  const json* d = find_destination(line, netns, src, dst);
  return d ? d->at("ports").value("utilization", -1.0) : -1.0;
}

// The last JSON line that has the destination, or nullptr.
const json* last_destination(const std::vector<json>& lines, uint64_t netns, const std::string& src,
                             const std::string& dst) {
  for (auto it = lines.rbegin(); it != lines.rend(); ++it)
    if (const json* d = find_destination(*it, netns, src, dst)) return d;
  return nullptr;
}

bool near(double a, double b, double tol = 0.01) { return std::fabs(a - b) <= tol; }

// tcp_tw_reuse_delay (ms) of a namespace; 1000 on kernels without the sysctl.
double tw_reuse_delay_s(const Netns& ns) {
  try {
    return std::stod(trim(ns.read_sysctl("net/ipv4/tcp_tw_reuse_delay"))) / 1000.0;
  } catch (const std::exception&) {
    return 1.0;
  }
}

// The client's port range and reuse settings; TIME_WAIT lasts its full 60 s
// (tcp_rfc1337=1, see keep_time_wait in traffic.hpp).
void set_client_ports(const Topology& t, int tw_reuse) {
  t.client.write_sysctl("net/ipv4/ip_local_port_range", std::to_string(kLo) + " " + std::to_string(kHi));
  t.client.write_sysctl("net/ipv4/tcp_tw_reuse", std::to_string(tw_reuse));
  t.client.write_sysctl("net/ipv4/tcp_timestamps", "1");
  keep_time_wait(t.client);
}

// Waits (bounded) until the agent has run `n` more sock_diag
// reconciliations (--reconcile-interval 1), so the final port counts are the
// reconciled ones (the events show a socket entering TIME_WAIT, never one
// that the kernel ends early; the reconciliation removes those).
void wait_for_reconciliations(const RunAgent& agent, int64_t n) {
  auto runs = [&] {
    try {
      const auto l = agent.snapshots();
      return l.empty() ? int64_t{0} : l.back().at("health").at("reconcile").value("runs_total", int64_t{0});
    } catch (const std::exception&) {
      return int64_t{0};
    }
  };
  const int64_t start = runs();
  wait_until([&] { return runs() >= start + n; }, scaled(ms(5000)), ms(100));
}

// Test 1: tcp_tw_reuse=0, 20 connections/s into a range of 200 ports.
void ports_running_out(int af) {
  constexpr uint16_t kPort = 8090;
  Topology t;
  set_client_ports(t, 0);
  const uint64_t C = t.client.inode();
  const std::string caddr = t.client_addr(af), saddr = t.server_addr(af);
  // Alerts name the destination by its dst label (as the metrics do) and
  // carry the source apart; the stderr line shows "src -> dst".
  const std::string dst = endpoint_label(af, saddr, kPort), target = dst, line_target = caddr + " -> " + dst;
  const double delay_s = tw_reuse_delay_s(t.client);
  auto server = start_closing_server(t, af, kPort);
  RunAgent agent({"--interval", "0.5", "--reconcile-interval", "1", "--netns", t.client.path()});
  INFO(t.describe());
  INFO(agent.describe());

  PacedLoopOptions o;
  o.rate = 20;
  o.max_attempts = 3 * kPorts;
  o.max_time = ms(30000);
  PacedConnectLoop loop(t, af, kPort, o);
  auto [polls, f] = poll_during(agent, loop, C, caddr, dst);
  INFO("client: " << f.describe());
  INFO("polls:\n" << describe_polls(polls));

  // Kernel side first: every port of the range, then EADDRNOTAVAIL.
  REQUIRE_MESSAGE(f.other_errors.empty(), "unexpected connect errors");
  REQUIRE_MESSAGE(f.eaddrnotavail == o.attempts_after_first_failure + 1, "the client never ran out of ports");
  REQUIRE(f.first_eaddrnotavail_unix > 0);
  const std::size_t distinct = std::set<uint16_t>(f.ports.begin(), f.ports.end()).size();
  REQUIRE_MESSAGE(distinct == static_cast<std::size_t>(kPorts),
                  "tcp_tw_reuse=0: every port of the range is used before EADDRNOTAVAIL");
  // tcp_rfc1337=1: each closed port stays in TIME_WAIT for 60 s, RSTs from
  // the server side (f.server_resets) or not, so the client saw every one
  // there and none was used twice.
  CHECK_MESSAGE(f.not_seen_in_time_wait == 0, "closed ports not seen in TIME_WAIT");
  REQUIRE_MESSAGE(f.ports.size() == distinct, "a port was used twice: its TIME_WAIT ended early");
  if (f.server_resets > 0)
    MESSAGE("the server namespace sent " << f.server_resets << " RSTs; the client's TIME_WAIT ignored them");

  // The failure reaches the agent: connect_port_errors fires (bounded wait).
  wait_until(
      [&] {
        try {
          return first_firing(agent.snapshots(), "connect_port_errors", C, target) >= 0;
        } catch (const std::exception&) {
          return false;
        }
      },
      scaled(ms(5000)), ms(100));
  // One more poll after the failure for the endpoint's view of it.
  polls.push_back(poll_once(agent, C, caddr, dst));
  wait_for_reconciliations(agent, 2);
  const int kernel_tw = kernel_time_wait_count(t.client, af, kPort);
  AgentExit ex = agent.stop(SIGINT);
  CHECK_MESSAGE(ex.exited_zero(), "SIGINT: the agent must exit 0, got " << ex.describe());
  const std::vector<json> lines = read_json_lines(agent.json_path());
  INFO("JSON lines (destination " << target << "):\n" << describe_lines(lines, C, caddr, dst));
  REQUIRE(!lines.empty());
  CHECK_MESSAGE(kernel_tw == kPorts, "the kernel lists " << kernel_tw << " TIME_WAIT sockets");
  if (const json* d = find_destination(lines.back(), C, caddr, dst))
    CHECK(d->at("ports").value("time_wait", -1) == kernel_tw);
  else
    FAIL_CHECK("the final interval has no row for " << target);

  // Every poll answered.
  for (const auto& p : polls) {
    CHECK_MESSAGE(p.problem.empty(), p.problem);
    CHECK(p.metrics_status == 200);
    CHECK(p.alerts_status == 200);
    CHECK_MESSAGE((p.snapshot_status == 200 || p.snapshot_status == 503), "snapshot status " << p.snapshot_status);
  }

  // Utilization rises on /metrics and in the snapshot while the ports run out.
  std::vector<double> m_series, s_series;
  int same_interval = 0;
  for (const auto& p : polls) {
    if (p.at >= f.first_eaddrnotavail_unix) continue;
    if (p.m_util) m_series.push_back(*p.m_util);
    if (p.s_util) s_series.push_back(*p.s_util);
    // Both read from the same closed interval: the values must be equal.
    if (p.m_util && p.s_util && p.m_ts && p.s_ts && near(*p.m_ts, *p.s_ts, 1e-6)) {
      same_interval++;
      CHECK_MESSAGE(near(*p.m_util, *p.s_util, 1e-9), "interval " << *p.s_ts << ": /metrics utilization " << *p.m_util
                                                                  << " but the snapshot's " << *p.s_util);
    }
  }
  const auto m_steps = changes(m_series), s_steps = changes(s_series);
  CHECK_MESSAGE(m_steps.size() >= 3,
                "connscope_port_utilization_ratio took fewer than 3 distinct values while the "
                "ports ran out: "
                    << list(m_steps));
  CHECK_MESSAGE(non_decreasing(m_steps),
                "connscope_port_utilization_ratio fell while ports only filled up (no "
                "TIME_WAIT can expire within 60 s): "
                    << list(m_steps));
  CHECK_MESSAGE(s_steps.size() >= 3, "snapshot ports.utilization took fewer than 3 distinct values: " << list(s_steps));
  CHECK_MESSAGE(non_decreasing(s_steps),
                "snapshot ports.utilization fell while ports only filled up: " << list(s_steps));
  CHECK_MESSAGE(same_interval >= 3, "too few polls saw /metrics and the snapshot from the same interval");
  double max_util = 0;
  for (const auto& l : lines) max_util = std::max(max_util, util_of(l, C, caddr, dst));
  CHECK_MESSAGE(max_util >= 0.99, "all " << kPorts << " ports were in TIME_WAIT; max utilization " << max_util);

  // ephemeral_ports_warning: at the second interval at >= 0.70 (fire-after
  // 2), before the client's first EADDRNOTAVAIL.
  const int w = first_firing(lines, "ephemeral_ports_warning", C, target);
  REQUIRE_MESSAGE(w >= 0, "ephemeral_ports_warning never fired for " << target);
  const json warn = find_alerts(lines[w], "ephemeral_ports_warning", C, target).front();
  INFO("warning alert: " << warn.dump());
  CHECK(warn.value("severity", "") == "warning");
  CHECK(warn.value("target_kind", "") == "destination");
  CHECK(warn.value("src", "") == caddr);
  CHECK(warn.value("process", "") == f.comm + " (pid " + std::to_string(f.pid) + ")");
  CHECK_MESSAGE(contains(warn.value("remedy", ""), "tcp_tw_reuse"), "the remedy must name tcp_tw_reuse");
  const double since = warn.value("since", 0.0);
  CHECK_MESSAGE(since < f.first_eaddrnotavail_unix,
                "the warning (since " << unix_text(since) << ") must fire before the first EADDRNOTAVAIL (at "
                                      << unix_text(f.first_eaddrnotavail_unix) << ")");
  CHECK(near(since, lines[w].value("timestamp", 0.0), 1e-6));
  CHECK(warn.at("evidence").value("utilization", 0.0) >= 0.70);
  CHECK_MESSAGE((w >= 1 && util_of(lines[w], C, caddr, dst) >= 0.70 && util_of(lines[w - 1], C, caddr, dst) >= 0.70),
                "fire-after 2: the warning needs two intervals at >= 0.70");
  CHECK_MESSAGE((w < 2 || util_of(lines[w - 2], C, caddr, dst) < 0.70),
                "the warning fired later than the second interval at >= 0.70");
  // The endpoint showed the same alert while the client still ran.
  bool seen_http = false;
  for (const auto& p : polls)
    for (const auto& a : find_alerts(p.alerts, "ephemeral_ports_warning", C, target)) {
      seen_http = true;
      CHECK(near(a.value("since", 0.0), since, 1e-6));
    }
  CHECK_MESSAGE(seen_http, "/api/v1/alerts never showed ephemeral_ports_warning for " << target);

  // connect_port_errors: critical, at once, after the failure.
  const int e = first_firing(lines, "connect_port_errors", C, target);
  REQUIRE_MESSAGE(e >= 0, "connect_port_errors never fired for " << target);
  const json err = find_alerts(lines[e], "connect_port_errors", C, target).front();
  INFO("connect_port_errors alert: " << err.dump());
  CHECK(err.value("severity", "") == "critical");
  CHECK(err.value("process", "") == f.comm + " (pid " + std::to_string(f.pid) + ")");
  CHECK(err.at("evidence").value("eaddrnotavail", 0.0) >= 1);
  const json* row = find_destination(lines[e], C, caddr, dst);
  REQUIRE(row);
  CHECK_MESSAGE(row->at("errors").value("EADDRNOTAVAIL", 0) >= 1, "fires at once: in the interval of the failure");
  // An interval counts what happened before its end: the interval with the
  // first EADDRNOTAVAIL, and so the alert's `since`, cannot end before the
  // failing connect() was called (1 ms for the agent's unix-time mapping).
  CHECK_MESSAGE(lines[e].value("timestamp", 0.0) >= f.first_eaddrnotavail_unix - 0.001,
                "the interval that closed at " << unix_text(lines[e].value("timestamp", 0.0))
                                               << " counts the EADDRNOTAVAIL of a connect() called at "
                                               << unix_text(f.first_eaddrnotavail_unix)
                                               << ", after the interval's end");
  CHECK_MESSAGE(err.value("since", 0.0) >= f.first_eaddrnotavail_unix - 0.001,
                "connect_port_errors fired (since " << unix_text(err.value("since", 0.0))
                                                    << ") before the failing connect() was called at "
                                                    << unix_text(f.first_eaddrnotavail_unix));

  // The stderr alert lines.
  const std::string proc = " [" + f.comm + " (pid " + std::to_string(f.pid) + ")]: ";
  // Lines read "connscope: HH:MM:SS ALERT ..." and name the netns by its
  // /run/netns name.
  const std::string ns = " netns " + t.client.name();
  const std::string err_text = agent.stderr_text();
  CHECK_MESSAGE(contains(err_text, " ALERT warning ephemeral_ports_warning " + line_target + ns + proc),
                "no stderr alert line for ephemeral_ports_warning");
  CHECK_MESSAGE(contains(err_text, " ALERT critical connect_port_errors " + line_target + ns + proc),
                "no stderr alert line for connect_port_errors");

  // The model and the totals.
  const json* d = last_destination(lines, C, caddr, dst);
  REQUIRE(d);
  INFO("last destination row: " << d->dump());
  const json& m = d->at("model");
  CHECK(m.value("settings_known", false) == true);
  CHECK(m.value("reuse_effective", true) == false);
  CHECK(m.value("tw_reuse", -1) == 0);
  CHECK(m.value("timestamps", -1) == 1);
  CHECK(m.at("range") == json::array({kLo, kHi}));
  CHECK(m.value("usable_ports", 0) == kPorts);
  CHECK(d->at("ports").value("usable", 0) == kPorts);
  CHECK_MESSAGE(near(m.value("sustainable_rate", 0.0), kPorts / 60.0), "sustainable_rate should be 200/60 s");
  CHECK(near(m.value("sustainable_rate_without_reuse", 0.0), kPorts / 60.0));
  CHECK(near(m.value("sustainable_rate_with_reuse", 0.0), kPorts / delay_s));
  CHECK(d->value("attempts_total", -1) == f.attempts);
  CHECK(d->value("established_total", -1) == f.connected);
  CHECK(d->at("errors_total").value("EADDRNOTAVAIL", 0) == f.eaddrnotavail);
  const auto& procs = d->at("processes");
  REQUIRE(!procs.empty());
  CHECK(procs[0].value("pid", 0) == f.pid);
  CHECK(procs[0].value("comm", "") == f.comm);
  bool gauge_seen = false;
  for (const auto& p : polls)
    if (p.m_sustainable) {
      gauge_seen = true;
      CHECK(near(*p.m_sustainable, kPorts / 60.0));
    }
  CHECK_MESSAGE(gauge_seen, "connscope_sustainable_connect_rate never appeared for the destination");
}

// Test 2: the same loop with tcp_tw_reuse=1: more connections than ports,
// all of them succeed, no critical alert, the model says reuse is on.
void ports_reused(int af) {
  constexpr uint16_t kPort = 8091;
  constexpr int kConnections = 300;
  Topology t;
  set_client_ports(t, 1);
  const uint64_t C = t.client.inode();
  const std::string caddr = t.client_addr(af), saddr = t.server_addr(af);
  const std::string dst = endpoint_label(af, saddr, kPort), target = dst;
  const double delay_s = tw_reuse_delay_s(t.client);
  auto server = start_closing_server(t, af, kPort);
  RunAgent agent({"--interval", "0.5", "--reconcile-interval", "1", "--netns", t.client.path()});
  INFO(t.describe());
  INFO(agent.describe());

  PacedLoopOptions o;
  o.rate = 25;
  o.max_attempts = kConnections;
  o.max_time = ms(30000);
  o.stop_on_eaddrnotavail = false;
  PacedConnectLoop loop(t, af, kPort, o);
  auto [polls, f] = poll_during(agent, loop, C, caddr, dst);
  INFO("client: " << f.describe());
  INFO("polls:\n" << describe_polls(polls));
  REQUIRE_MESSAGE(f.other_errors.empty(), "unexpected connect errors");
  CHECK_MESSAGE(f.eaddrnotavail == 0, "tcp_tw_reuse=1: no connect may fail with EADDRNOTAVAIL");
  REQUIRE_MESSAGE(f.connected == kConnections, "every connection must succeed");
  CHECK(std::set<uint16_t>(f.ports.begin(), f.ports.end()).size() <= static_cast<std::size_t>(kPorts));

  // Let the last interval with the loop's connections close.
  wait_until(
      [&] {
        try {
          const auto l = agent.snapshots();
          const json* d = last_destination(l, C, caddr, dst);
          return d && d->value("established_total", 0) >= kConnections;
        } catch (const std::exception&) {
          return false;
        }
      },
      scaled(ms(3000)), ms(100));
  wait_for_reconciliations(agent, 2);
  // Nothing changes from here to the agent's final interval: no more
  // connections, and TIME_WAIT lasts 60 s.
  const int kernel_tw = kernel_time_wait_count(t.client, af, kPort);
  AgentExit ex = agent.stop(SIGINT);
  CHECK_MESSAGE(ex.exited_zero(), "SIGINT: the agent must exit 0, got " << ex.describe());
  const std::vector<json> lines = read_json_lines(agent.json_path());
  INFO("JSON lines (destination " << target << "):\n" << describe_lines(lines, C, caddr, dst));
  REQUIRE(lines.size() >= 10);
  if (const json* d = find_destination(lines.back(), C, caddr, dst))
    CHECK_MESSAGE(d->at("ports").value("time_wait", -1) == kernel_tw,
                  "ports.time_wait at the end: the kernel lists " << kernel_tw << " TIME_WAIT sockets to " << dst
                                                                  << " (reuse replaces TIME_WAIT sockets)");
  else
    FAIL_CHECK("the final interval has no row for " << target);

  // No critical alert and no port errors, in any interval, for anyone.
  for (const auto& l : lines) {
    CAPTURE(l.value("seq", 0));
    CHECK(find_alerts(l, "ephemeral_ports_critical").empty());
    CHECK(find_alerts(l, "connect_port_errors").empty());
    const json fired = l.value("alerts_fired_total", json::object());
    CHECK(fired.value("ephemeral_ports_critical", 0) == 0);
    CHECK(fired.value("connect_port_errors", 0) == 0);
    // A port holds one connection to the destination at a time.
    if (const json* d = find_destination(l, C, caddr, dst))
      CHECK_MESSAGE(d->at("ports").value("in_use", 0) <= kPorts,
                    "more ports in use than the range has: " << d->at("ports").dump());
  }
  for (const auto& p : polls) {
    CHECK_MESSAGE(p.problem.empty(), p.problem);
    CHECK(find_alerts(p.alerts, "ephemeral_ports_critical").empty());
    CHECK(find_alerts(p.alerts, "connect_port_errors").empty());
  }
  CHECK_FALSE(contains(agent.stderr_text(), "ephemeral_ports_critical"));
  CHECK_FALSE(contains(agent.stderr_text(), "connect_port_errors"));

  const json* d = last_destination(lines, C, caddr, dst);
  REQUIRE(d);
  INFO("last destination row: " << d->dump());
  const json& m = d->at("model");
  CHECK(m.value("reuse_effective", false) == true);
  CHECK(m.value("tw_reuse", -1) == 1);
  CHECK(m.value("timestamps", -1) == 1);
  CHECK(m.value("usable_ports", 0) == kPorts);
  CHECK_MESSAGE(near(m.value("sustainable_rate", 0.0), kPorts / delay_s),
                "with reuse the sustainable rate is ports / tcp_tw_reuse_delay = " << kPorts / delay_s);
  CHECK(near(m.value("sustainable_rate_with_reuse", 0.0), kPorts / delay_s));
  CHECK(near(m.value("sustainable_rate_without_reuse", 0.0), kPorts / 60.0));
  CHECK(d->value("attempts_total", -1) == f.attempts);
  CHECK(d->value("established_total", -1) == f.connected);
  CHECK(d->at("errors_total").empty());
  bool gauge_seen = false;
  for (const auto& p : polls)
    if (p.m_sustainable) {
      gauge_seen = true;
      CHECK(near(*p.m_sustainable, kPorts / delay_s));
    }
  CHECK_MESSAGE(gauge_seen, "connscope_sustainable_connect_rate never appeared for the destination");
}

// Test 2b: a TIME_WAIT the kernel ends early, and the agent following it. A
// stale segment from the server side (the bare ACK of send_stale_ack) makes
// a client TIME_WAIT socket answer with an ACK; the server has closed, so
// its listener answers that with a RST. With tcp_rfc1337=0 the RST kills the
// TIME_WAIT socket: no event (inet_sock_set_state does not fire for
// TIME_WAIT sockets), and the next sock_diag reconciliation takes the port
// off ports.time_wait. With tcp_rfc1337=1 the socket ignores the RST.
void time_wait_reset() {
  constexpr uint16_t kPort = 8094;
  constexpr int kConnections = 3;
  const int af = AF_INET;
  Topology t;
  set_client_ports(t, 0);  // tcp_rfc1337=1 until the connections are in TIME_WAIT
  const uint64_t C = t.client.inode();
  const std::string caddr = t.client_addr(af), saddr = t.server_addr(af), dst = endpoint_label(af, saddr, kPort);
  auto server = start_closing_server(t, af, kPort);
  RunAgent agent({"--interval", "0.5", "--reconcile-interval", "1", "--netns", t.client.path()});
  INFO(t.describe());
  INFO(agent.describe());

  PacedLoopOptions o;
  o.max_attempts = kConnections;
  o.max_time = ms(10000);
  PacedConnectLoop loop(t, af, kPort, o);
  const PacedLoopFacts f = loop.wait();
  INFO("client: " << f.describe());
  REQUIRE(f.connected == kConnections);
  REQUIRE(f.not_seen_in_time_wait == 0);
  REQUIRE(kernel_time_wait_count(t.client, af, kPort) == kConnections);

  // The agent's last interval: ports.time_wait and the time_wait corrections.
  auto agent_tw = [&] {
    try {
      const auto l = agent.snapshots();
      const json* d = l.empty() ? nullptr : find_destination(l.back(), C, caddr, dst);
      return d ? d->at("ports").value("time_wait", -1) : -1;
    } catch (const std::exception&) {
      return -1;
    }
  };
  auto tw_corrections = [&] {
    const auto l = agent.snapshots();
    if (l.empty()) return int64_t{-1};
    const json& c = l.back().at("health").at("reconcile").at("corrections_total");
    return c.value("time_wait", int64_t{0});
  };
  auto client_states = [&](uint16_t p) {
    NetnsEnter in(t.client.fd());
    return tcp_states_of_local_port(af, p);
  };
  auto server_resets = [&] { return t.server.netstat_counter("Tcp", "OutRsts"); };
  wait_for_reconciliations(agent, 1);
  REQUIRE_MESSAGE(wait_until([&] { return agent_tw() == kConnections; }, scaled(ms(5000)), ms(100)),
                  "the agent never counted " << kConnections << " ports in TIME_WAIT: " << agent_tw());
  const int64_t corrections_before = tw_corrections();

  // tcp_rfc1337=0: the RST kills the first port's TIME_WAIT.
  t.client.write_sysctl("net/ipv4/tcp_rfc1337", "0");
  const uint16_t killed = f.ports.at(0), kept = f.ports.at(1);
  int64_t resets = server_resets();
  send_stale_ack(t.server, saddr, kPort, caddr, killed);
  CHECK_MESSAGE(wait_until([&] { return client_states(killed).empty(); }, scaled(ms(5000)), ms(10)),
                "port " << killed << " is still held after the RST");
  CHECK_MESSAGE(server_resets() - resets == 1, "the server's listener should have answered with one RST");
  CHECK(kernel_time_wait_count(t.client, af, kPort) == kConnections - 1);
  wait_for_reconciliations(agent, 2);
  CHECK_MESSAGE(agent_tw() == kConnections - 1, "the reconciliation must take the killed TIME_WAIT off the count");
  CHECK(tw_corrections() - corrections_before == 1);

  // tcp_rfc1337=1: the same RST, and TIME_WAIT stays.
  keep_time_wait(t.client);
  resets = server_resets();
  send_stale_ack(t.server, saddr, kPort, caddr, kept);
  CHECK(wait_until([&] { return server_resets() - resets == 1; }, scaled(ms(5000)), ms(10)));
  wait_for_reconciliations(agent, 1);
  CHECK(client_states(kept) == std::vector<int>{6});
  CHECK(kernel_time_wait_count(t.client, af, kPort) == kConnections - 1);
  CHECK(agent_tw() == kConnections - 1);

  AgentExit ex = agent.stop(SIGINT);
  CHECK_MESSAGE(ex.exited_zero(), "SIGINT: the agent must exit 0, got " << ex.describe());
}

// Test 3: an accept queue that overflows raises listen_overflow.
void accept_overflow_alert(int af) {
  constexpr uint16_t kPort = 8092;
  constexpr int kBacklog = 1, kClients = 6;
  Topology t;
  const uint64_t S = t.server.inode();
  const std::string saddr = t.server_addr(af), listen = endpoint_label(af, saddr, kPort);
  RunAgent agent({"--interval", "0.5", "--netns", t.server.path()});
  INFO(t.describe());
  INFO(agent.describe());
  HttpResult metrics;
  OverflowFacts f = drive_accept_overflow(t, af, kPort, kBacklog, kClients, [&](const OverflowFacts& of) {
    const std::string owner = of.server_comm + " (pid " + std::to_string(of.server_pid) + ")";
    wait_until(
        [&] {
          try {
            for (const auto& l : agent.snapshots())
              for (const auto& a : find_alerts(l, "listen_overflow", S))
                if (a.value("state", "") == "firing") return true;
          } catch (const std::exception&) {
          }
          return false;
        },
        scaled(ms(10000)), ms(100));
    // The owner comes from a /proc scan on the survey thread: an in-kernel
    // tier can fire the alert before that scan has named it; it joins the
    // firing alert then (bounded wait while the listener still exists).
    wait_until(
        [&] {
          try {
            for (const auto& l : agent.snapshots())
              for (const auto& a : find_alerts(l, "listen_overflow", S))
                if (a.value("state", "") == "firing" && a.value("process", json()) == owner) return true;
          } catch (const std::exception&) {
          }
          return false;
        },
        scaled(ms(10000)), ms(100));
    metrics = agent.get("/metrics");
  });
  REQUIRE_MESSAGE(f.listen_overflows_after > f.listen_overflows_before,
                  "TcpExtListenOverflows did not grow in the server namespace");
  const int64_t kernel_overflows = f.listen_overflows_after - f.listen_overflows_before;
  AgentExit ex = agent.stop(SIGINT);
  CHECK_MESSAGE(ex.exited_zero(), "SIGINT: the agent must exit 0, got " << ex.describe());
  const std::vector<json> lines = read_json_lines(agent.json_path());
  INFO("kernel ListenOverflows delta: " << kernel_overflows);

  std::optional<json> alert;
  for (const auto& l : lines)
    for (const auto& a : find_alerts(l, "listen_overflow", S))
      if (!alert && a.value("state", "") == "firing") alert = a;
  REQUIRE_MESSAGE(alert, "listen_overflow never fired in netns " << S);
  INFO("alert: " << alert->dump());
  const std::string target = alert->value("target", "");
  const std::string suffix = ":" + std::to_string(kPort);
  CHECK_MESSAGE(
      (target.size() > suffix.size() && target.compare(target.size() - suffix.size(), suffix.size(), suffix) == 0),
      "the target must name the port");
  CHECK_MESSAGE(target == listen, "the listener is bound to " << listen);
  CHECK(alert->value("severity", "") == "warning");
  CHECK(alert->value("target_kind", "") == "listener");
  const auto n = static_cast<int64_t>(alert->at("evidence").value("overflows", 0.0));
  CHECK(n > 0);
  CHECK(n <= kernel_overflows);
  CHECK_MESSAGE(contains(alert->value("summary", ""), std::to_string(n) + " connections dropped"),
                "the summary must carry the count");
  // The process holding the listener: the server child, named by the
  // firing alert (from the first interval, or once the scan found it).
  const std::string owner = f.server_comm + " (pid " + std::to_string(f.server_pid) + ")";
  const bool named_at_once = alert->value("process", json()) == owner;
  bool named = false;
  for (const auto& l : lines)
    for (const auto& a : find_alerts(l, "listen_overflow", S))
      if (a.value("state", "") == "firing" && a.value("process", json()) == owner) named = true;
  CHECK_MESSAGE(named, "no firing listen_overflow alert named " << owner);
  CHECK_MESSAGE((named_at_once || alert->value("process", json()).is_null()),
                "the alert named another process: " << alert->dump());
  CHECK(contains(agent.stderr_text(), " ALERT warning listen_overflow " + target + " netns " + t.server.name() +
                                          (named_at_once ? " [" + owner + "]" : std::string()) + ": " +
                                          std::to_string(n) + " connections dropped: accept queue full"));
  // The listener closed at the end: what it dropped before closing is still
  // its own, never `unattributed`.
  CHECK_FALSE(contains(agent.stderr_text(), "listen_overflow unattributed"));

  INFO("/metrics: " << metrics.describe().substr(0, 300));
  REQUIRE(metrics.status == 200);
  PromText prom = parse_prometheus(metrics.body);
  auto total = prom.value("connscope_listen_overflows_total", {{"netns", std::to_string(S)}, {"listen", target}});
  REQUIRE_MESSAGE(total, "no connscope_listen_overflows_total{netns=\"" << S << "\",listen=\"" << target << "\"}");
  CHECK(*total > 0);
  CHECK(*total <= static_cast<double>(kernel_overflows));
}

std::string one_line_problem(const CmdResult& r) {
  const auto lines = split_lines(trim(r.err));
  if (!r.exited) return "the agent did not exit normally: " + r.describe();
  if (r.exit_code == 0) return "the agent exited 0";
  if (lines.size() != 1) return "expected one line on stderr, got " + std::to_string(lines.size());
  return {};
}

}  // namespace

TEST_SUITE("run") {
  TEST_CASE("run: ports running out, tcp_tw_reuse=0") { ports_running_out(AF_INET); }
  TEST_CASE("run: ports running out, tcp_tw_reuse=0, ipv6") { ports_running_out(AF_INET6); }

  TEST_CASE("run: same loop with tcp_tw_reuse=1 and timestamps") { ports_reused(AF_INET); }

  TEST_CASE("run: a RST ends TIME_WAIT early with tcp_rfc1337=0 and the reconciliation follows") { time_wait_reset(); }

  TEST_CASE("run: accept queue overflow raises listen_overflow naming the port") { accept_overflow_alert(AF_INET); }

  TEST_CASE("run: defaults serve /metrics on 127.0.0.1:9464") {
    constexpr uint16_t kDefault = 9464;
    REQUIRE_MESSAGE(local_port_free(kDefault),
                    "127.0.0.1:9464 is busy, the default cannot be tested; held by: " << who_listens(kDefault));
    AgentProcess agent({"run"}, "metrics at http://127.0.0.1:9464/metrics");
    INFO(agent.describe());
    HttpResult m = http_get("127.0.0.1", kDefault, "/metrics");
    INFO("/metrics: " << m.describe().substr(0, 500));
    REQUIRE(m.status == 200);
    CHECK(contains(m.content_type, "text/plain"));
    PromText prom = parse_prometheus(m.body);
    const auto problems = prometheus_shape_problems(prom);
    CHECK_MESSAGE(problems.empty(), "shape problems: " << join(problems, "\n"));
    const auto build = prom.find("connscope_build_info");
    REQUIRE(build.size() == 1);
    CHECK(build[0].value == 1);
    CHECK(build[0].labels.count("version"));
    CHECK(build[0].labels.count("kernel"));
    const auto strategies = prom.find("connscope_strategy_info");
    std::set<std::string> families;
    for (const auto& s : strategies) {
      CHECK(s.value == 1);
      CHECK(s.labels.count("strategy") == 1);
      families.insert(s.labels.count("family") ? s.labels.at("family") : "");
    }
    CHECK(families == std::set<std::string>{"connect", "port_alloc", "state", "retransmit", "accept_queue"});
    CHECK(prom.types["connscope_build_info"] == "gauge");
    CHECK(prom.types["connscope_strategy_info"] == "gauge");

    HttpResult h = http_get("127.0.0.1", kDefault, "/healthz");
    INFO("/healthz: " << h.describe());
    // 200 "while intervals keep closing": the first closes after 1 s.
    HttpResult s;
    wait_until(
        [&] {
          s = http_get("127.0.0.1", kDefault, "/api/v1/snapshot");
          return s.status == 200;
        },
        scaled(ms(5000)), ms(200));
    INFO("/api/v1/snapshot: " << s.describe().substr(0, 500));
    REQUIRE(s.status == 200);
    CHECK(contains(s.content_type, "application/json"));
    json snap = json::parse(s.body);
    CHECK(snap.value("seq", 0) >= 1);
    CHECK(snap.value("interval_s", 0.0) == 1.0);
    h = http_get("127.0.0.1", kDefault, "/healthz");
    CHECK(h.status == 200);
    HttpResult hm = http_get("127.0.0.1", kDefault, "/api/v1/heatmap?metric=handshake&window=1m");
    INFO("/api/v1/heatmap: " << hm.describe().substr(0, 500));
    REQUIRE(hm.status == 200);
    json rows = json::parse(hm.body);
    REQUIRE(rows.is_array());
    CHECK(!rows.empty());
    for (const auto& r : rows) {
      CHECK(r.contains("time"));
      CHECK(r.contains("+Inf"));
      CHECK(r.size() == 24);  // time + 23 buckets
    }
    AgentExit ex = agent.stop(SIGTERM);
    CHECK_MESSAGE(ex.exited_zero(), "SIGTERM: the agent must exit 0, got " << ex.describe());
  }

  TEST_CASE("run: record then replay gives the same destination") {
    constexpr uint16_t kPort = 8093;
    constexpr int kConnections = 30;
    const int af = AF_INET;
    Topology t;
    const uint64_t C = t.client.inode();
    const std::string caddr = t.client_addr(af), dst = endpoint_label(af, t.server_addr(af), kPort);
    auto server = start_closing_server(t, af, kPort);
    TempDir dir;
    const std::string rec = dir.file("loop.csrec"), out = dir.file("replay.jsonl");
    AgentProcess recorder({"record", "--out", rec, "--netns", t.client.path()}, "connscope: recording to");
    INFO(t.describe());
    INFO(recorder.describe());
    PacedLoopOptions o;
    o.rate = 50;
    o.max_attempts = kConnections;
    o.max_time = ms(10000);
    PacedConnectLoop loop(t, af, kPort, o);
    PacedLoopFacts f = loop.wait();
    INFO("client: " << f.describe());
    REQUIRE(f.connected == kConnections);
    AgentExit ex = recorder.stop(SIGINT);
    CHECK_MESSAGE(ex.exited_zero(), "SIGINT: record must exit 0, got " << ex.describe());

    CmdResult r = run_agent({"run", "--replay", rec, "--json-out", out}, ms(30000));
    INFO(r.describe());
    REQUIRE(r.ok());
    const std::vector<json> lines = read_json_lines(out);
    REQUIRE(!lines.empty());
    for (const auto& l : lines) CHECK(l.at("health").value("replay", false) == true);
    const json* d = last_destination(lines, C, caddr, dst);
    REQUIRE_MESSAGE(d, "the replay has no destination " << caddr << " -> " << dst << " in netns " << C);
    INFO("replayed destination: " << d->dump());
    CHECK(d->value("attempts_total", -1) == f.attempts);
    CHECK(d->value("established_total", -1) == f.connected);
    CHECK(d->at("errors_total").empty());
    const auto& procs = d->at("processes");
    REQUIRE(procs.size() == 1);
    CHECK(procs[0].value("pid", 0) == f.pid);
    CHECK(procs[0].value("comm", "") == f.comm);
    CHECK(procs[0].value("attempts", 0) == f.attempts);
  }

  TEST_CASE("run: bad input") {
    TempDir dir;
    auto check_error = [](const std::vector<std::string>& args, const std::vector<std::string>& must_name) {
      CAPTURE(shell_words(args));
      CmdResult r = run_agent(args, ms(20000));
      INFO(r.describe());
      CHECK_FALSE(r.timed_out);
      const std::string problem = one_line_problem(r);
      CHECK_MESSAGE(problem.empty(), problem);
      for (const auto& s : must_name) CHECK_MESSAGE(contains(r.err, s), "stderr must name " << s);
      CHECK_FALSE(contains(r.err, "connscope: running"));
    };
    {
      // A port the test holds open.
      Fd held = tcp_listen(Endpoint{AF_INET, "127.0.0.1", 0}, 1);
      const std::string where = "127.0.0.1:" + std::to_string(local_port(held.get()));
      check_error({"run", "--listen", where},
                  {"cannot listen on " + where + ": Address already in use; pick another with --listen"});
    }
    check_error({"run", "--replay", "/nonexistent/connscope.csrec"}, {"/nonexistent/connscope.csrec"});
    create_file(dir.file("bad-value.toml"), "[run]\ninterval = -1\n");
    check_error({"run", "--config", dir.file("bad-value.toml"), "--listen", "off"},
                {dir.file("bad-value.toml") + ":2:12: [run] interval: -1 is not in [0.05, 3600]"});
    create_file(dir.file("bad-key.toml"), "[run]\nno_such_key = 1\n");
    check_error({"run", "--config", dir.file("bad-key.toml"), "--listen", "off"},
                {dir.file("bad-key.toml") + ":2:1: [run] no_such_key: unknown key"});
    check_error({"run", "--warn-utilization", "0.95", "--crit-utilization", "0.9", "--listen", "off"},
                {"--warn-utilization", "--crit-utilization"});
  }
}
