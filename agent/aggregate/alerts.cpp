// The alert rules and their evaluation with hysteresis, and the stderr alert lines.
#include "aggregate/alerts.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <iterator>

#include "aggregate/port_model.hpp"
#include "host/netns.hpp"

namespace connscope {
namespace {

const AlertRule& rule(const char* id) {
  for (const AlertRule& r : alert_rules())
    if (std::string_view(r.id) == id) return r;
  static const AlertRule unknown{"unknown", Severity::warning, false, ""};
  return unknown;
}

std::string percent(double ratio) {
  char buf[32];
  snprintf(buf, sizeof buf, "%.0f %%", ratio * 100);
  return buf;
}

std::string seconds_text(double s) {
  char buf[32];
  if (s < 1e-3)
    snprintf(buf, sizeof buf, "%.0f us", s * 1e6);
  else if (s < 1)
    snprintf(buf, sizeof buf, "%.1f ms", s * 1e3);
  else
    snprintf(buf, sizeof buf, "%.1f s", s);
  return buf;
}

std::string process_text(const ProcessShare& p) { return p.comm + " (pid " + std::to_string(p.pid) + ")"; }

// Where the destination's namespace is and how to run a command in it.
struct Place {
  std::string name;    // `ip netns` name, or ""
  bool own = false;    // the agent's own netns
  std::string prefix;  // netns_exec_prefix()
};

Place place_of(const Snapshot& s, uint32_t netns, const DestinationStats* d) {
  Place p;
  auto it = s.netns_settings.find(netns);
  if (it != s.netns_settings.end() && (it->second.agent_netns || !it->second.enter_path.empty())) {
    p.own = it->second.agent_netns;
    p.name = netns_name(it->second.enter_path);
    p.prefix = netns_exec_prefix(it->second.enter_path, p.own);
  } else if (d && !d->processes.empty()) {
    // Not surveyed (an older recording): the connecting process is in it.
    p.prefix = netns_exec_prefix("/proc/" + std::to_string(d->processes.front().pid) + "/ns/net", false);
  } else {
    p.prefix = netns_exec_prefix("", false);
  }
  return p;
}

Alert destination_alert(const char* id, const DestinationStats& d, const Place& where) {
  Alert a;
  a.rule = id;
  a.severity = rule(id).severity;
  a.target_kind = TargetKind::destination;
  a.target = d.dst;
  a.src = d.src;
  a.netns = d.key.netns;
  a.netns_name = where.name;
  a.in_agent_netns = where.own;
  // The busiest connecting process (failing ones first: DestinationTable
  // sorts them so); the port-error rule names only one that failed.
  if (!d.processes.empty()) a.process = process_text(d.processes.front());
  return a;
}

void add_model_evidence(Alert& a, const PortModel& m) {
  a.evidence = {{"utilization", m.utilization},
                {"ports_in_use", m.in_use},
                {"ports_usable", m.usable_ports},
                {"connect_rate", m.connect_rate},
                {"sustainable_rate", m.sustainable_rate}};
  if (m.time_to_exhaustion_s) a.evidence.emplace_back("time_to_exhaustion_s", *m.time_to_exhaustion_s);
}

std::string in_use_text(const DestinationStats& d, const PortModel& m) {
  char buf[200];
  snprintf(buf, sizeof buf, "%s of the ports in use (%u of %u: %u connecting, %u open, %u TIME_WAIT)",
           percent(m.utilization).c_str(), m.in_use, m.usable_ports, d.connecting, d.open, d.time_wait);
  return buf;
}

std::string exhaustion_eta(const PortModel& m) {
  if (!m.time_to_exhaustion_s) return "";
  if (*m.time_to_exhaustion_s < 0.001) return "no free port left at " + format_rate(m.connect_rate);
  return "full in about " + seconds_text(*m.time_to_exhaustion_s) + " at " + format_rate(m.connect_rate);
}

std::string exhaustion_summary(const DestinationStats& d, const PortModel& m) {
  std::string s = in_use_text(d, m);
  if (std::string eta = exhaustion_eta(m); !eta.empty()) s += "; " + eta;
  return s;
}

// "EADDRNOTAVAIL (Cannot assign requested address)": the errno's name and
// the text applications log for it.
std::string errno_with_text(const char* name, int err) { return std::string(name) + " (" + strerror(err) + ")"; }

}  // namespace

const std::vector<AlertRule>& alert_rules() {
  static const std::vector<AlertRule> rules = {
      {"ephemeral_ports_warning", Severity::warning, false,
       "ephemeral-port utilization to a destination at or above the warning threshold"},
      {"ephemeral_ports_critical", Severity::critical, false,
       "ephemeral-port utilization to a destination at or above the critical threshold, or ports running out "
       "within the critical horizon"},
      {"ephemeral_ports_exhaustion_soon", Severity::warning, true,
       "ephemeral ports to a destination run out within the horizon at the current connect rate"},
      {"connect_rate_unsustainable", Severity::warning, false,
       "new-connection rate to a destination above what its port range sustains"},
      {"connect_port_errors", Severity::critical, true,
       "connect() failed with EADDRNOTAVAIL or EADDRINUSE: no free local port"},
      {"port_search_slow", Severity::warning, false, "p99 of the kernel's ephemeral-port search above the threshold"},
      {"listen_overflow", Severity::warning, true, "a listener's accept queue overflowed: connections dropped"},
      {"retransmit_spike", Severity::warning, false, "retransmit rate to a destination far above its recent baseline"},
      {"events_lost", Severity::warning, true, "the agent lost events (ring buffer or map full): numbers undercount"},
  };
  return rules;
}

void AlertEngine::observe(bool condition, Alert candidate, double now) {
  const AlertRule& r = rule(candidate.rule.c_str());
  Key key{r.id, candidate.netns, candidate.target};
  auto [it, inserted] = states_.try_emplace(key);
  State& st = it->second;
  st.seen = true;
  st.now = candidate;
  if (condition) {
    st.true_streak++;
    st.false_streak = 0;
    const double since = st.firing ? st.alert.since : now;
    st.alert = std::move(candidate);
    st.alert.since = since;
    if (!st.firing && st.true_streak >= (r.immediate ? 1u : t_.fire_after)) {
      st.firing = true;
      st.alert.since = now;
      fired_total_[r.id]++;
      st.alert.state = AlertState::firing;
      changed_.push_back(st.alert);
    }
  } else {
    st.false_streak++;
    st.true_streak = 0;
    // A process found after the alert fired (a listener's owner comes from
    // a /proc scan that may finish later) joins the firing alert.
    if (st.firing && st.alert.process.empty()) st.alert.process = st.now.process;
  }
}

std::vector<Alert> AlertEngine::evaluate(Snapshot& s) {
  changed_.clear();
  const double now = s.timestamp;
  for (auto& [key, st] : states_) st.seen = false;

  for (const DestinationStats& d : s.destinations) {
    // `other` sums many destinations: no rule of one upstream applies, and
    // no process there did what an alert would say.
    if (d.other) continue;
    const PortModel& m = d.model;
    const bool modelled = m.usable_ports > 0;
    const Place where = place_of(s, d.key.netns, &d);
    const Remedy remedy = exhaustion_remedy(m, where.prefix);
    auto alert = [&](const char* id) {
      Alert a = destination_alert(id, d, where);
      a.remedy = remedy.text;
      a.remedy_commands = remedy.commands;
      add_model_evidence(a, m);
      return a;
    };
    const bool soon = modelled && m.time_to_exhaustion_s && *m.time_to_exhaustion_s <= t_.exhaustion_horizon_s;
    {
      Alert a = alert("ephemeral_ports_warning");
      a.summary = exhaustion_summary(d, m);
      observe(modelled && m.utilization >= t_.warn_utilization, a, now);
      a.rule = "ephemeral_ports_critical";
      a.severity = rule(a.rule.c_str()).severity;
      const bool critical = m.utilization >= t_.crit_utilization ||
                            (m.time_to_exhaustion_s && *m.time_to_exhaustion_s <= t_.critical_horizon_s);
      observe(modelled && critical, std::move(a), now);
    }
    {
      Alert a = alert("ephemeral_ports_exhaustion_soon");
      a.summary = soon ? "ports run out in about " + seconds_text(*m.time_to_exhaustion_s) + " at " +
                             format_rate(m.connect_rate) + " (sustainable " + format_rate(m.sustainable_rate) + "; " +
                             std::to_string(m.in_use) + " of " + std::to_string(m.usable_ports) + " in use)"
                       : in_use_text(d, m) + " at " + format_rate(m.connect_rate) + ": no exhaustion ahead";
      observe(soon, std::move(a), now);
    }
    {
      Alert a = alert("connect_rate_unsustainable");
      a.summary = format_rate(m.connect_rate) + " new connections, " +
                  (m.connect_rate > m.sustainable_rate ? "above" : "within") + " the sustainable " +
                  format_rate(m.sustainable_rate) + " for " + std::to_string(m.usable_ports) + " ports";
      observe(modelled && m.sustainable_rate > 0 && m.connect_rate > m.sustainable_rate, std::move(a), now);
    }
    {
      uint64_t n_addr = 0, n_inuse = 0;
      if (auto it = d.errors.find("EADDRNOTAVAIL"); it != d.errors.end()) n_addr = it->second;
      if (auto it = d.errors.find("EADDRINUSE"); it != d.errors.end()) n_inuse = it->second;
      Alert a = alert("connect_port_errors");
      // Name a process only if it is one whose connect() failed.
      if (d.processes.empty() || d.processes.front().port_errors == 0) a.process.clear();
      if (n_addr + n_inuse == 0) {
        a.summary = "no connect() failed for want of a port; " + in_use_text(d, m);
      } else {
        a.summary = std::to_string(n_addr + n_inuse) + " connect() failed: ";
        if (n_addr) a.summary += std::to_string(n_addr) + " " + errno_with_text("EADDRNOTAVAIL", EADDRNOTAVAIL);
        if (n_addr && n_inuse) a.summary += ", ";
        if (n_inuse) a.summary += std::to_string(n_inuse) + " " + errno_with_text("EADDRINUSE", EADDRINUSE);
        if (modelled) a.summary += "; " + in_use_text(d, m);
      }
      a.evidence = {{"eaddrnotavail", static_cast<double>(n_addr)},
                    {"eaddrinuse", static_cast<double>(n_inuse)},
                    {"utilization", m.utilization},
                    {"ports_in_use", m.in_use},
                    {"ports_usable", m.usable_ports}};
      observe(n_addr + n_inuse > 0, std::move(a), now);
    }
    {
      const LatencySummary& ps = d.port_search.summary;
      Alert a = alert("port_search_slow");
      a.summary = "port search p99 " + seconds_text(ps.p99) + " (" + std::to_string(ps.count) + " searches, max " +
                  seconds_text(ps.max) + ")" + (ps.p99 > t_.port_search_p99_s ? ": most of the range is taken" : "");
      a.evidence = {{"p99_s", ps.p99},
                    {"max_s", ps.max},
                    {"searches", static_cast<double>(ps.count)},
                    {"threshold_s", t_.port_search_p99_s},
                    {"utilization", m.utilization}};
      observe(ps.count > 0 && ps.p99 > t_.port_search_p99_s, std::move(a), now);
    }
    {
      uint64_t n = 0;
      for (const auto& [state, c] : d.retransmits) n += c;
      const double rate = s.interval_s > 0 ? static_cast<double>(n) / s.interval_s : 0;
      auto bkey = std::make_tuple(d.key.netns, d.src, d.dst);
      auto [bit, fresh] = retransmit_baseline_.try_emplace(bkey, 0.0);
      const double baseline = bit->second;
      Alert a = destination_alert("retransmit_spike", d, where);
      char buf[200];
      snprintf(buf, sizeof buf, "%.1f retransmits/s, %.1fx the recent baseline of %.1f/s", rate,
               baseline > 0 ? rate / baseline : 0.0, baseline);
      a.summary = buf;
      std::string states;
      for (const auto& [state, c] : d.retransmits)
        states += (states.empty() ? "" : ", ") + state + " " + std::to_string(c);
      if (!states.empty()) a.summary += " (" + states + ")";
      a.remedy =
          "syn_sent retransmits mean SYNs unanswered (upstream down, SYN queue or firewall drops); established ones "
          "mean packet loss or a congested path: check the upstream and the links to it";
      a.evidence = {{"retransmit_rate", rate}, {"baseline_rate", baseline}, {"threshold_rate", t_.retransmit_rate}};
      observe(rate >= t_.retransmit_rate && rate >= t_.retransmit_factor * baseline, std::move(a), now);
      bit->second = fresh ? rate : 0.8 * baseline + 0.2 * rate;
    }
  }

  for (const ListenerStats& l : s.listeners) {
    Alert a;
    a.rule = "listen_overflow";
    a.severity = rule("listen_overflow").severity;
    a.target_kind = TargetKind::listener;
    a.target = l.listen;
    a.netns = l.key.netns;
    a.process = l.process;
    const Place where = place_of(s, l.key.netns, nullptr);
    a.netns_name = where.name;
    a.in_agent_netns = where.own;
    char buf[256];
    if (l.other || l.max_backlog == 0)
      snprintf(buf, sizeof buf, "%llu connections dropped: accept queue full on a listener connscope could not name",
               static_cast<unsigned long long>(l.overflows));
    else
      snprintf(buf, sizeof buf, "%llu connections dropped: accept queue full (peak %u of max %u)",
               static_cast<unsigned long long>(l.overflows), l.queue_peak, l.max_backlog);
    a.summary = buf;
    a.remedy =
        "the application accepts more slowly than connections arrive: add accept workers or make accept() prompt; "
        "raise the listen() backlog (capped by net.core.somaxconn) only to absorb bursts";
    a.evidence = {{"overflows", static_cast<double>(l.overflows)},
                  {"queue_peak", l.queue_peak},
                  {"max_backlog", l.max_backlog},
                  {"accept_rate", l.accept_rate}};
    observe(l.overflows > 0, std::move(a), now);
  }

  {
    Alert a;
    a.rule = "events_lost";
    a.severity = rule("events_lost").severity;
    a.target_kind = TargetKind::agent;
    a.target = "agent";
    a.in_agent_netns = true;
    uint64_t lost = 0;
    for (const auto& [type, n] : s.health.lost_total) lost += n;
    a.summary = std::to_string(s.health.lost_interval) + " events lost this interval (" + std::to_string(lost) +
                " since start): the numbers undercount";
    a.remedy = "raise --ringbuf-size (ring buffer full) or narrow the capture with --cgroup/--netns/--rport";
    a.evidence = {{"lost_interval", static_cast<double>(s.health.lost_interval)},
                  {"lost_total", static_cast<double>(lost)},
                  {"map_full_total", static_cast<double>(s.health.map_full_total)}};
    observe(s.health.lost_interval > 0, std::move(a), now);
  }

  // Resolve, publish.
  s.alerts.clear();
  for (auto it = states_.begin(); it != states_.end();) {
    State& st = it->second;
    if (!st.seen) {
      st.false_streak++;
      st.true_streak = 0;
    }
    const AlertRule& r = rule(it->first.rule.c_str());
    if (st.firing && st.false_streak >= t_.resolve_after) {
      st.firing = false;
      st.alert.state = AlertState::resolved;
      st.alert.resolved_at = now;
      // What it is now, not what it was when it fired.
      if (st.seen) {
        st.alert.summary = st.now.summary;
        st.alert.evidence = st.now.evidence;
      } else {
        st.alert.summary = "no longer seen";
        st.alert.evidence.clear();
      }
      s.alerts.push_back(st.alert);
      changed_.push_back(st.alert);
    } else if (st.firing) {
      st.alert.state = AlertState::firing;
      s.alerts.push_back(st.alert);
    }
    // Forget quiet rules of vanished targets.
    if (!st.firing && st.true_streak == 0 && st.false_streak > t_.resolve_after + (r.immediate ? 0 : t_.fire_after))
      it = states_.erase(it);
    else
      ++it;
  }
  s.alerts_fired_total = fired_total_;
  return changed_;
}

namespace {

std::string clock_text(double unix_s) {
  const auto t = static_cast<time_t>(unix_s);
  struct tm tm {};
  localtime_r(&t, &tm);
  char buf[16];
  strftime(buf, sizeof buf, "%H:%M:%S", &tm);
  return buf;
}

// " netns NAME" (or its inode) for a target outside the agent's netns.
std::string netns_text(const Alert& a) {
  if (!a.netns_name.empty()) return " netns " + a.netns_name;
  if (!a.in_agent_netns && a.netns) return " netns " + std::to_string(a.netns);
  return "";
}

}  // namespace

std::string format_alert_line(const Alert& a) {
  const bool resolved = a.state == AlertState::resolved;
  std::string line = "connscope: " + clock_text(resolved ? a.resolved_at : a.since) + " " +
                     (resolved ? "RESOLVED" : "ALERT") + " " + severity_name(a.severity) + " " + a.rule + " " +
                     (a.src.empty() ? a.target : a.src + " -> " + a.target) + netns_text(a);
  if (!resolved && !a.process.empty()) line += " [" + a.process + "]";
  if (resolved) line += " after " + seconds_text(a.resolved_at - a.since) + ", now";
  line += ": " + a.summary;
  return line;
}

std::vector<std::string> AlertLog::lines(const std::vector<Alert>& changed, const std::vector<Alert>& active) {
  std::vector<std::string> out;
  for (const Alert& a : changed) {
    out.push_back(format_alert_line(a));
    if (a.state != AlertState::firing || a.remedy.empty()) continue;
    // The commands say what the fix is; the text also carries the current
    // rate, which must not print the same fix again a second later.
    std::string key;
    for (const std::string& c : a.remedy_commands) key += c + "\n";
    if (key.empty()) key = a.remedy;
    if (remedied_.insert({a.netns, a.target, key}).second)
      out.push_back("connscope: " + clock_text(a.since) + " FIX " + a.target + netns_text(a) + ": " + a.remedy);
  }
  // A target with nothing firing any more gets its remedy again next time.
  std::set<std::pair<uint32_t, std::string>> firing;
  for (const Alert& a : active)
    if (a.state == AlertState::firing) firing.insert({a.netns, a.target});
  for (auto it = remedied_.begin(); it != remedied_.end();)
    it = firing.count({std::get<0>(*it), std::get<1>(*it)}) ? std::next(it) : remedied_.erase(it);
  return out;
}

}  // namespace connscope
