// The alert rules and their evaluation with hysteresis, and the stderr alert line.
#include "aggregate/alerts.hpp"

#include <cstdio>

#include "aggregate/port_model.hpp"

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

std::string process_of(const DestinationStats& d) {
  if (d.processes.empty()) return "";
  const ProcessShare& p = d.processes.front();
  return p.comm + " (pid " + std::to_string(p.pid) + ")";
}

Alert destination_alert(const char* id, const DestinationStats& d) {
  Alert a;
  a.rule = id;
  a.severity = rule(id).severity;
  a.target_kind = TargetKind::destination;
  a.target = d.dst;
  a.src = d.src;
  a.netns = d.key.netns;
  a.process = process_of(d);
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

std::string exhaustion_summary(const DestinationStats& d, const PortModel& m) {
  char buf[320];
  snprintf(buf, sizeof buf,
           "%s of the ephemeral ports to %s are busy (%u in use of %u: %u connecting, %u open, %u in "
           "TIME_WAIT)",
           percent(m.utilization).c_str(), d.dst.c_str(), m.in_use, m.usable_ports, d.connecting, d.open, d.time_wait);
  std::string s = buf;
  if (m.time_to_exhaustion_s && *m.time_to_exhaustion_s < 0.001)
    s += "; no free port left at this rate";
  else if (m.time_to_exhaustion_s)
    s += "; exhausted in about " + seconds_text(*m.time_to_exhaustion_s) + " at this rate";
  return s;
}

}  // namespace

const std::vector<AlertRule>& alert_rules() {
  static const std::vector<AlertRule> rules = {
      {"ephemeral_ports_warning", Severity::warning, false,
       "ephemeral-port utilization to a destination at or above the warning threshold"},
      {"ephemeral_ports_critical", Severity::critical, false,
       "ephemeral-port utilization to a destination at or above the critical threshold"},
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

void AlertEngine::observe(const AlertRule& r, bool condition, Alert candidate, double now) {
  Key key{r.id, candidate.netns, candidate.target};
  auto [it, inserted] = states_.try_emplace(key);
  State& st = it->second;
  st.seen = true;
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
  }
}

std::vector<Alert> AlertEngine::evaluate(Snapshot& s) {
  changed_.clear();
  const double now = s.timestamp;
  for (auto& [key, st] : states_) st.seen = false;

  for (const DestinationStats& d : s.destinations) {
    const PortModel& m = d.model;
    const bool modelled = !d.other && m.usable_ports > 0;
    {
      Alert a = destination_alert("ephemeral_ports_critical", d);
      a.summary = exhaustion_summary(d, m);
      a.remedy = exhaustion_remedy(m);
      add_model_evidence(a, m);
      Alert w = a;
      w.rule = "ephemeral_ports_warning";
      w.severity = rule(w.rule.c_str()).severity;
      observe(rule("ephemeral_ports_warning"), modelled && m.utilization >= t_.warn_utilization, std::move(w), now);
      observe(rule("ephemeral_ports_critical"), modelled && m.utilization >= t_.crit_utilization, std::move(a), now);
    }
    {
      Alert a = destination_alert("connect_rate_unsustainable", d);
      a.summary = "connect rate to " + d.dst + " is " + format_rate(m.connect_rate) + ", above the sustainable " +
                  format_rate(m.sustainable_rate) + " for " + std::to_string(m.usable_ports) + " usable ports";
      a.remedy = exhaustion_remedy(m);
      add_model_evidence(a, m);
      observe(rule("connect_rate_unsustainable"),
              modelled && m.sustainable_rate > 0 && m.connect_rate > m.sustainable_rate, std::move(a), now);
    }
    {
      uint64_t n_addr = 0, n_inuse = 0;
      if (auto it = d.errors.find("EADDRNOTAVAIL"); it != d.errors.end()) n_addr = it->second;
      if (auto it = d.errors.find("EADDRINUSE"); it != d.errors.end()) n_inuse = it->second;
      Alert a = destination_alert("connect_port_errors", d);
      a.summary = std::to_string(n_addr + n_inuse) + " connect() to " + d.dst + " failed this interval (" +
                  std::to_string(n_addr) + " EADDRNOTAVAIL, " + std::to_string(n_inuse) +
                  " EADDRINUSE): no free local port";
      a.remedy = modelled ? exhaustion_remedy(m)
                          : "Reuse upstream connections (keep-alive, pooling), enable net.ipv4.tcp_tw_reuse=1, widen "
                            "net.ipv4.ip_local_port_range, or add source addresses.";
      a.evidence = {{"eaddrnotavail", static_cast<double>(n_addr)},
                    {"eaddrinuse", static_cast<double>(n_inuse)},
                    {"utilization", m.utilization},
                    {"ports_in_use", m.in_use},
                    {"ports_usable", m.usable_ports}};
      observe(rule("connect_port_errors"), n_addr + n_inuse > 0, std::move(a), now);
    }
    {
      const LatencySummary& ps = d.port_search.summary;
      Alert a = destination_alert("port_search_slow", d);
      a.summary = "connect() to " + d.dst + " spends " + seconds_text(ps.p99) + " (p99) searching for a free port (" +
                  std::to_string(ps.count) + " searches, max " + seconds_text(ps.max) + ")";
      a.remedy =
          "A slow port search means most ports of the range are taken: the kernel's __inet_hash_connect walks them "
          "one by one under a lock. " +
          (modelled ? exhaustion_remedy(m)
                    : std::string("Free ports: keep-alive pooling, tcp_tw_reuse, a wider range."));
      a.evidence = {{"p99_s", ps.p99},
                    {"max_s", ps.max},
                    {"searches", static_cast<double>(ps.count)},
                    {"threshold_s", t_.port_search_p99_s},
                    {"utilization", m.utilization}};
      observe(rule("port_search_slow"), ps.count > 0 && ps.p99 > t_.port_search_p99_s, std::move(a), now);
    }
    {
      uint64_t n = 0;
      for (const auto& [state, c] : d.retransmits) n += c;
      const double rate = s.interval_s > 0 ? static_cast<double>(n) / s.interval_s : 0;
      auto bkey = std::make_tuple(d.key.netns, d.src, d.dst);
      auto [bit, fresh] = retransmit_baseline_.try_emplace(bkey, 0.0);
      const double baseline = bit->second;
      Alert a = destination_alert("retransmit_spike", d);
      char buf[200];
      snprintf(buf, sizeof buf, "%.1f retransmits/s to %s, %.1fx the recent baseline of %.1f/s", rate, d.dst.c_str(),
               baseline > 0 ? rate / baseline : 0.0, baseline);
      a.summary = buf;
      std::string states;
      for (const auto& [state, c] : d.retransmits)
        states += (states.empty() ? "" : ", ") + state + " " + std::to_string(c);
      a.remedy = "Retransmits by state this interval: " + states +
                 ". syn_sent retransmits mean SYNs unanswered (upstream down, SYN queue or firewall drops); "
                 "established ones mean packet loss or a congested path: check the upstream and the links to it.";
      a.evidence = {{"retransmit_rate", rate}, {"baseline_rate", baseline}, {"threshold_rate", t_.retransmit_rate}};
      observe(rule("retransmit_spike"), rate >= t_.retransmit_rate && rate >= t_.retransmit_factor * baseline,
              std::move(a), now);
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
    char buf[256];
    snprintf(buf, sizeof buf, "listener %s dropped %llu connections this interval: accept queue full (%u of max %u)",
             l.listen.c_str(), static_cast<unsigned long long>(l.overflows), l.queue_peak, l.max_backlog);
    a.summary = buf;
    a.remedy =
        "The application accepts more slowly than connections arrive: add accept workers or make accept() "
        "non-blocking and prompt; raise the listen() backlog (capped by net.core.somaxconn) only to absorb bursts.";
    a.evidence = {{"overflows", static_cast<double>(l.overflows)},
                  {"queue_peak", l.queue_peak},
                  {"max_backlog", l.max_backlog},
                  {"accept_rate", l.accept_rate}};
    observe(rule("listen_overflow"), l.overflows > 0, std::move(a), now);
  }

  {
    Alert a;
    a.rule = "events_lost";
    a.severity = rule("events_lost").severity;
    a.target_kind = TargetKind::agent;
    a.target = "agent";
    uint64_t lost = 0;
    for (const auto& [type, n] : s.health.lost_total) lost += n;
    a.summary = std::to_string(s.health.lost_interval) + " events lost this interval (" + std::to_string(lost) +
                " since start): the numbers undercount";
    a.remedy = "Raise --ringbuf-size (ring buffer full) or narrow the capture with --pid/--netns/--rport.";
    a.evidence = {{"lost_interval", static_cast<double>(s.health.lost_interval)},
                  {"lost_total", static_cast<double>(lost)},
                  {"map_full_total", static_cast<double>(s.health.map_full_total)}};
    observe(rule("events_lost"), s.health.lost_interval > 0, std::move(a), now);
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

std::string format_alert_line(const Alert& a) {
  std::string line = "connscope: " + std::string(a.state == AlertState::resolved ? "RESOLVED" : "ALERT") + " " +
                     severity_name(a.severity) + " " + a.rule + " " +
                     (a.src.empty() ? a.target : a.src + " -> " + a.target);
  if (a.netns) line += " netns " + std::to_string(a.netns);
  if (!a.process.empty()) line += " [" + a.process + "]";
  line += ": " + a.summary;
  if (a.state != AlertState::resolved && !a.remedy.empty()) line += ". Remedy: " + a.remedy;
  return line;
}

}  // namespace connscope
