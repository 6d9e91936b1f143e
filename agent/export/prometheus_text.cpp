// A snapshot as Prometheus text exposition format 0.0.4.
#include "export/prometheus_text.hpp"

#include <charconv>
#include <cmath>
#include <set>
#include <tuple>

namespace connscope {

namespace {

// Record types, port states and alert rules are fixed sets: their series are
// written from the start (zero) so rate()/increase() see the first increment.
constexpr std::array<const char*, 5> kEventTypes = {"connect", "port_alloc", "state", "retransmit", "accept_queue"};
constexpr std::array<const char*, 3> kPortStates = {"connecting", "open", "time_wait"};
constexpr std::array<const char*, 8> kAlertRules = {
    "ephemeral_ports_warning", "ephemeral_ports_critical", "connect_rate_unsustainable", "connect_port_errors",
    "port_search_slow",        "listen_overflow",          "retransmit_spike",           "events_lost"};

void append_uint(std::string& out, uint64_t v) {
  std::array<char, 24> buf{};
  auto [end, ec] = std::to_chars(buf.data(), buf.data() + buf.size(), v);
  out.append(buf.data(), end);
}

// Shortest round-trip form; the caller guarantees a finite value.
void append_double(std::string& out, double v) {
  if (v == 0) v = 0;  // no "-0"
  std::array<char, 32> buf{};
  auto [end, ec] = std::to_chars(buf.data(), buf.data() + buf.size(), v);
  out.append(buf.data(), end);
}

struct Family {
  const char* name;
  const char* type;
  const char* help;
};

void header(std::string& out, const Family& f) {
  out += "# HELP ";
  out += f.name;
  out += ' ';
  out += f.help;
  out += "\n# TYPE ";
  out += f.name;
  out += ' ';
  out += f.type;
  out += '\n';
}

// name{base,key="value"} — base is a preformatted, already escaped label list.
void series(std::string& out, std::string_view name, std::string_view suffix, std::string_view base,
            std::string_view key = {}, std::string_view value = {}) {
  out += name;
  out += suffix;
  if (base.empty() && key.empty()) {
    out += ' ';
    return;
  }
  out += '{';
  out += base;
  if (!key.empty()) {
    if (!base.empty()) out += ',';
    out += key;
    out += "=\"";
    append_label_value(out, value);
    out += '"';
  }
  out += "} ";
}

void sample_u(std::string& out, std::string_view name, std::string_view base, uint64_t v, std::string_view key = {},
              std::string_view value = {}) {
  series(out, name, {}, base, key, value);
  append_uint(out, v);
  out += '\n';
}

void sample_d(std::string& out, std::string_view name, std::string_view base, double v, std::string_view key = {},
              std::string_view value = {}) {
  if (!std::isfinite(v)) return;
  series(out, name, {}, base, key, value);
  append_double(out, v);
  out += '\n';
}

void label(std::string& out, std::string_view key, std::string_view value) {
  if (!out.empty()) out += ',';
  out += key;
  out += "=\"";
  append_label_value(out, value);
  out += '"';
}

void histogram(std::string& out, std::string_view name, std::string_view base, const BucketCounts& c, double scale) {
  const BucketLayout& layout = c.layout();
  const auto& counts = c.counts();
  uint64_t cumulative = 0;
  for (size_t i = 0; i < layout.size(); ++i) {
    if (i < counts.size()) cumulative += counts[i];
    series(out, name, "_bucket", base, "le", layout.label(i));
    append_uint(out, cumulative);
    out += '\n';
  }
  series(out, name, "_sum", base);
  append_double(out, static_cast<double>(c.sum()) / scale);
  out += '\n';
  series(out, name, "_count", base);
  append_uint(out, c.count());
  out += '\n';
}

constexpr std::array<const char*, 2> kPortErrnos = {"EADDRNOTAVAIL", "EADDRINUSE"};

template <size_t N>
std::map<std::string, uint64_t> with_zeros(const std::map<std::string, uint64_t>& m,
                                           const std::array<const char*, N>& keys) {
  std::map<std::string, uint64_t> out = m;
  for (const char* k : keys) out.emplace(k, 0);
  return out;
}

void labeled_counter(std::string& out, const Family& f, std::string_view key,
                     const std::map<std::string, uint64_t>& values) {
  header(out, f);
  for (const auto& [k, v] : values) sample_u(out, f.name, {}, v, key, k);
}

void info_lines(std::string& out, const BuildInfo& build, const std::vector<StrategyInUse>& strategies) {
  header(out, {"connscope_build_info", "gauge", "connscope version and the kernel it runs on; always 1"});
  std::string base;
  label(base, "version", build.version);
  label(base, "kernel", build.kernel);
  sample_u(out, "connscope_build_info", base, 1);

  header(out, {"connscope_strategy_info", "gauge", "1 per hook family: the attach tier in use"});
  std::set<std::pair<std::string, std::string>> seen;
  for (const auto& st : strategies) {
    if (!seen.emplace(st.family, st.strategy).second) continue;
    base.clear();
    label(base, "family", st.family);
    label(base, "strategy", st.strategy);
    sample_u(out, "connscope_strategy_info", base, 1);
  }
}

void agent_families(std::string& out, const Snapshot& s) {
  const AgentHealth& h = s.health;
  header(out, {"connscope_interval_seconds", "gauge", "Length of the last closed interval in seconds."});
  sample_d(out, "connscope_interval_seconds", {}, s.interval_s);
  header(out, {"connscope_last_interval_timestamp_seconds", "gauge", "Unix time the last interval closed."});
  sample_d(out, "connscope_last_interval_timestamp_seconds", {}, s.timestamp);
  labeled_counter(out, {"connscope_events_total", "counter", "Event records decoded, by record type."}, "type",
                  with_zeros(h.events_total, kEventTypes));
  labeled_counter(out,
                  {"connscope_events_lost_total", "counter", "Event records lost because the ring buffer was full."},
                  "type", with_zeros(h.lost_total, kEventTypes));

  const std::array<std::pair<Family, uint64_t>, 11> scalars = {{
      {{"connscope_map_full_total", "counter", "BPF per-socket state updates refused because the map was full."},
       h.map_full_total},
      {{"connscope_decode_errors_total", "counter", "Undecodable event records."}, h.decode_errors_total},
      {{"connscope_self_events_total", "counter",
        "Event records of the agent's own HTTP traffic, left out of the tables (--watch-self keeps them)."},
       h.self_events_total},
      {{"connscope_destinations_tracked", "gauge",
        "Destinations tracked (ports, rate, errors, exhaustion model), up to --max-destinations."},
       h.destinations_tracked},
      {{"connscope_destinations_own_rows", "gauge",
        "Destinations with their own dst label (--top-destinations: at risk first, then the busiest)."},
       h.destinations_own_rows},
      {{"connscope_destinations_folded", "gauge", "Tracked destinations summed into dst=\"other\"."},
       h.destinations_folded},
      {{"connscope_destinations_at_risk", "gauge",
        "Destinations at risk (errors, utilization at the warning level, rate above sustainable, exhaustion within "
        "the horizon)."},
       h.destinations_at_risk},
      {{"connscope_destinations_at_risk_folded", "gauge",
        "Destinations at risk beyond --top-destinations, summed into dst=\"other\"."},
       h.destinations_at_risk_folded},
      {{"connscope_destinations_untracked_total", "counter",
        "Destinations first seen while --max-destinations were tracked: counted only in dst=\"other\"."},
       h.destinations_untracked_total},
      {{"connscope_listeners_folded_total", "counter", "Listeners folded into listen=\"other\"."},
       h.listeners_folded_total},
      {{"connscope_sockets_untracked_total", "counter", "Sockets not tracked because the socket table was full."},
       h.sockets_untracked_total},
  }};
  for (const auto& [f, v] : scalars) {
    header(out, f);
    sample_u(out, f.name, {}, v);
  }
  header(out, {"connscope_reconcile_runs_total", "counter", "sock_diag reconciliations."});
  sample_u(out, "connscope_reconcile_runs_total", {}, h.reconcile_runs_total);
  labeled_counter(out,
                  {"connscope_reconcile_corrections_total", "counter", "Sockets the reconciliation added or removed."},
                  "state", with_zeros(h.reconcile_corrections_total, kPortStates));
  labeled_counter(out, {"connscope_alerts_fired_total", "counter", "Alerts that started firing, by rule."}, "rule",
                  with_zeros(s.alerts_fired_total, kAlertRules));

  header(out, {"connscope_alert_active", "gauge", "1 per firing alert."});
  std::set<std::tuple<std::string, Severity, std::string, uint32_t>> seen;
  std::string base;
  for (const auto& a : s.alerts) {
    if (a.state != AlertState::firing || !seen.emplace(a.rule, a.severity, a.target, a.netns).second) continue;
    base.clear();
    label(base, "rule", a.rule);
    label(base, "severity", severity_name(a.severity));
    label(base, "target", a.target);
    label(base, "netns", std::to_string(a.netns));
    sample_u(out, "connscope_alert_active", base, 1);
  }
}

void destination_families(std::string& out, const Snapshot& s) {
  std::vector<std::string> bases;
  bases.reserve(s.destinations.size());
  for (const auto& d : s.destinations) {
    std::string base;
    label(base, "netns", std::to_string(d.key.netns));
    label(base, "src", d.src);
    label(base, "dst", d.dst);
    bases.push_back(std::move(base));
  }
  const auto& ds = s.destinations;
  const size_t n = ds.size();

  auto counter = [&](const Family& f, auto value) {
    header(out, f);
    for (size_t i = 0; i < n; ++i) sample_u(out, f.name, bases[i], value(ds[i]));
  };
  auto by_label = [&](const Family& f, std::string_view key, auto map) {
    header(out, f);
    for (size_t i = 0; i < n; ++i)
      for (const auto& [k, v] : map(ds[i])) sample_u(out, f.name, bases[i], v, key, k);
  };
  // Model gauges need the destination's sysctls; without them there is no
  // honest value, and a 0 would read as "nothing sustainable".
  auto model_gauge = [&](const Family& f, auto value) {
    header(out, f);
    for (size_t i = 0; i < n; ++i)
      if (ds[i].model.settings_known) sample_d(out, f.name, bases[i], value(ds[i]));
  };

  counter({"connscope_connect_attempts_total", "counter", "connect() attempts."},
          [](const DestinationStats& d) { return d.attempts_total; });
  counter({"connscope_connections_established_total", "counter", "Handshakes completed."},
          [](const DestinationStats& d) { return d.established_total; });
  by_label({"connscope_connect_errors_total", "counter", "Failed connects (synchronous and asynchronous), by errno."},
           "errno", [](const DestinationStats& d) {
             // The two errnos of port exhaustion are always there (0 until they
             // happen), so increase() sees the first burst.
             return with_zeros(d.errors_total, kPortErrnos);
           });
  by_label(
      {"connscope_retransmits_total", "counter", "Retransmitted segments, by TCP state."}, "state",
      [](const DestinationStats& d) -> const auto& { return d.retransmits_total; });

  header(out, {"connscope_ports_in_use", "gauge", "Ephemeral ports held towards the destination, by port state."});
  for (size_t i = 0; i < n; ++i) {
    const std::array<uint32_t, 3> held = {ds[i].connecting, ds[i].open, ds[i].time_wait};
    for (size_t k = 0; k < kPortStates.size(); ++k)
      sample_u(out, "connscope_ports_in_use", bases[i], held[k], "state", kPortStates[k]);
  }
  model_gauge({"connscope_ports_usable", "gauge", "ip_local_port_range minus ip_local_reserved_ports."},
              [](const DestinationStats& d) { return static_cast<double>(d.model.usable_ports); });
  model_gauge({"connscope_port_utilization_ratio", "gauge", "Ephemeral ports in use / usable."},
              [](const DestinationStats& d) { return d.model.utilization; });
  header(out, {"connscope_connect_rate", "gauge", "New connections per second over the last interval."});
  for (size_t i = 0; i < n; ++i) sample_d(out, "connscope_connect_rate", bases[i], ds[i].model.connect_rate);
  model_gauge({"connscope_sustainable_connect_rate", "gauge",
               "Sustainable new connections per second under the current sysctls."},
              [](const DestinationStats& d) { return d.model.sustainable_rate; });

  bool any_exhaustion = false;
  for (const auto& d : ds)
    any_exhaustion = any_exhaustion || (d.model.time_to_exhaustion_s && std::isfinite(*d.model.time_to_exhaustion_s));
  if (any_exhaustion) {
    header(out, {"connscope_port_exhaustion_seconds", "gauge",
                 "Seconds until every usable port is busy at the current rate; absent when sustainable."});
    for (size_t i = 0; i < n; ++i)
      if (ds[i].model.time_to_exhaustion_s)
        sample_d(out, "connscope_port_exhaustion_seconds", bases[i], *ds[i].model.time_to_exhaustion_s);
  }

  auto hist = [&](const Family& f, const Distribution DestinationStats::*member) {
    header(out, f);
    for (size_t i = 0; i < n; ++i) {
      const Distribution& d = ds[i].*member;
      histogram(out, f.name, bases[i], d.total, heatmap_value_scale(d.metric));
    }
  };
  hist({"connscope_handshake_duration_seconds", "histogram", "Handshake duration: SYN sent to ESTABLISHED."},
       &DestinationStats::handshake);
  hist({"connscope_port_search_duration_seconds", "histogram", "Time in the kernel's ephemeral port search."},
       &DestinationStats::port_search);
  hist({"connscope_connect_syscall_duration_seconds", "histogram", "Time inside connect()'s synchronous part."},
       &DestinationStats::connect_syscall);
}

void listener_families(std::string& out, const Snapshot& s) {
  std::vector<std::string> bases;
  bases.reserve(s.listeners.size());
  for (const auto& l : s.listeners) {
    std::string base;
    label(base, "netns", std::to_string(l.key.netns));
    label(base, "listen", l.listen);
    bases.push_back(std::move(base));
  }
  auto each = [&](const Family& f, auto value) {
    header(out, f);
    for (size_t i = 0; i < s.listeners.size(); ++i) sample_u(out, f.name, bases[i], value(s.listeners[i]));
  };
  each({"connscope_listen_queue_length", "gauge", "Accept-queue length at the last sample."},
       [](const ListenerStats& l) { return l.queue_len; });
  each({"connscope_listen_queue_peak", "gauge", "Largest accept-queue length in the last interval."},
       [](const ListenerStats& l) { return l.queue_peak; });
  each({"connscope_listen_queue_max", "gauge", "The listener's max backlog: min(backlog, somaxconn)."},
       [](const ListenerStats& l) { return l.max_backlog; });
  each({"connscope_listen_overflows_total", "counter", "Connections dropped because the accept queue was full."},
       [](const ListenerStats& l) { return l.overflows_total; });
  each({"connscope_listen_drops_total", "counter", "Other listener drops."},
       [](const ListenerStats& l) { return l.drops_total; });
  each({"connscope_synack_retransmits_total", "counter", "SYN-ACK retransmits."},
       [](const ListenerStats& l) { return l.synack_retransmits_total; });
  each({"connscope_listener_retransmits_total", "counter", "Retransmits on connections accepted from the listener."},
       [](const ListenerStats& l) { return l.data_retransmits_total; });
  each({"connscope_accepts_total", "counter", "Connections that completed the handshake on this listener."},
       [](const ListenerStats& l) { return l.accepts_total; });

  header(out, {"connscope_accept_queue_fill_ratio", "histogram",
               "Accept-queue fill samples (length / max backlog), all listeners."});
  histogram(out, "connscope_accept_queue_fill_ratio", {}, s.accept_queue_fill.total,
            heatmap_value_scale(HeatmapMetric::accept_queue_fill));
}

}  // namespace

void append_label_value(std::string& out, std::string_view value) {
  for (char c : value) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
}

double heatmap_value_scale(HeatmapMetric m) { return m == HeatmapMetric::accept_queue_fill ? 1000.0 : 1e9; }

std::string render_prometheus_info(const BuildInfo& build, const std::vector<StrategyInUse>& strategies) {
  std::string out;
  out.reserve(1024);
  info_lines(out, build, strategies);
  return out;
}

std::string render_prometheus(const Snapshot& s, const BuildInfo& build) {
  std::string out;
  // ~3 histograms x 25 lines x ~110 bytes per destination dominate.
  out.reserve(16384 + s.destinations.size() * 10240 + s.listeners.size() * 1024);
  info_lines(out, build, s.health.strategies);
  agent_families(out, s);
  destination_families(out, s);
  listener_families(out, s);
  return out;
}

}  // namespace connscope
