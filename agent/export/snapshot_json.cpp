// A snapshot as JSON (docs/run-json.md).
#include "export/snapshot_json.hpp"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <cmath>

#include "util/address.hpp"

namespace connscope {

using Json = nlohmann::ordered_json;

std::string dump_json(const Json& j, int indent) {
  return j.dump(indent, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

Json json_number(double v) { return std::isfinite(v) ? Json(v) : Json(nullptr); }

const char* family_name(uint16_t family) {
  switch (family) {
    case AF_INET:
      return "ipv4";
    case AF_INET6:
      return "ipv6";
    default:
      return "";
  }
}

int64_t unix_ms(double unix_seconds) {
  if (!std::isfinite(unix_seconds)) return 0;
  return std::llround(unix_seconds * 1000.0);
}

namespace {

template <typename Map>
Json map_object(const Map& m) {
  Json o = Json::object();
  for (const auto& [k, v] : m) o[k] = v;
  return o;
}

Json family_json(uint16_t family) {
  const char* name = family_name(family);
  return *name != '\0' ? Json(name) : Json(nullptr);
}

Json summary_json(const LatencySummary& s) {
  Json o = Json::object();
  o["count"] = s.count;
  o["p50"] = json_number(s.p50);
  o["p90"] = json_number(s.p90);
  o["p99"] = json_number(s.p99);
  o["max"] = json_number(s.max);
  return o;
}

Json model_json(const PortModel& m) {
  Json o = Json::object();
  o["range"] = Json::array({m.range_lo, m.range_hi});
  o["usable_ports"] = m.usable_ports;
  o["tw_reuse"] = m.tw_reuse;
  o["timestamps"] = m.timestamps;
  o["reuse_effective"] = m.reuse_effective;
  o["connect_rate"] = json_number(m.connect_rate);
  o["sustainable_rate"] = json_number(m.sustainable_rate);
  o["sustainable_rate_without_reuse"] = json_number(m.sustainable_rate_without_reuse);
  o["sustainable_rate_with_reuse"] = json_number(m.sustainable_rate_with_reuse);
  o["time_to_exhaustion_s"] = m.time_to_exhaustion_s ? json_number(*m.time_to_exhaustion_s) : Json(nullptr);
  o["settings_known"] = m.settings_known;
  return o;
}

Json destination_json(const DestinationStats& d) {
  Json o = Json::object();
  const bool addressed = d.key.family == AF_INET || d.key.family == AF_INET6;
  o["netns"] = d.key.netns;
  o["family"] = family_json(d.key.family);
  o["src"] = d.src;
  o["dst"] = d.dst;
  o["daddr"] = addressed ? Json(format_address(d.key.family, d.key.daddr)) : Json(nullptr);
  o["dport"] = addressed ? Json(d.key.dport) : Json(nullptr);
  o["other"] = d.other;
  o["attempts"] = d.attempts;
  o["attempts_total"] = d.attempts_total;
  o["established"] = d.established;
  o["established_total"] = d.established_total;
  o["errors"] = map_object(d.errors);
  o["errors_total"] = map_object(d.errors_total);
  o["retransmits"] = map_object(d.retransmits);
  o["retransmits_total"] = map_object(d.retransmits_total);

  Json ports = Json::object();
  ports["connecting"] = d.connecting;
  ports["open"] = d.open;
  ports["time_wait"] = d.time_wait;
  ports["in_use"] = d.model.in_use;
  ports["usable"] = d.model.usable_ports;
  ports["utilization"] = json_number(d.model.utilization);
  o["ports"] = std::move(ports);
  o["model"] = model_json(d.model);

  Json reconcile = Json::object();
  reconcile["connecting"] = d.corrected_connecting;
  reconcile["open"] = d.corrected_open;
  reconcile["time_wait"] = d.corrected_time_wait;
  o["reconcile"] = std::move(reconcile);

  Json processes = Json::array();
  for (const auto& p : d.processes) {
    Json po = Json::object();
    po["pid"] = p.pid;
    po["comm"] = p.comm;
    po["attempts"] = p.attempts;
    processes.push_back(std::move(po));
  }
  o["processes"] = std::move(processes);

  Json latency = Json::object();
  latency["handshake"] = summary_json(d.handshake.summary);
  latency["port_search"] = summary_json(d.port_search.summary);
  latency["connect_syscall"] = summary_json(d.connect_syscall.summary);
  o["latency"] = std::move(latency);
  return o;
}

Json listener_json(const ListenerStats& l) {
  Json o = Json::object();
  const bool addressed = l.key.family == AF_INET || l.key.family == AF_INET6;
  o["netns"] = l.key.netns;
  o["family"] = family_json(l.key.family);
  o["listen"] = l.listen;
  o["process"] = l.process.empty() ? Json(nullptr) : Json(l.process);
  o["addr"] = addressed ? Json(format_address(l.key.family, l.key.addr)) : Json(nullptr);
  o["port"] = addressed ? Json(l.key.port) : Json(nullptr);
  o["other"] = l.other;
  o["queue_len"] = l.queue_len;
  o["queue_peak"] = l.queue_peak;
  o["max_backlog"] = l.max_backlog;
  o["overflows"] = l.overflows;
  o["overflows_total"] = l.overflows_total;
  o["drops"] = l.drops;
  o["drops_total"] = l.drops_total;
  o["synack_retransmits"] = l.synack_retransmits;
  o["synack_retransmits_total"] = l.synack_retransmits_total;
  o["retransmits"] = l.data_retransmits;
  o["retransmits_total"] = l.data_retransmits_total;
  o["accepts"] = l.accepts;
  o["accepts_total"] = l.accepts_total;
  o["accept_rate"] = json_number(l.accept_rate);
  o["fill_samples"] = l.fill.interval.count();
  return o;
}

Json buckets_json(const BucketCounts& c) {
  Json o = Json::object();
  const BucketLayout& layout = c.layout();
  const auto& counts = c.counts();
  for (size_t i = 0; i < layout.size(); ++i) o[layout.label(i)] = i < counts.size() ? counts[i] : 0;
  return o;
}

// A heatmap frame header; the caller adds the scope fields, then count and buckets.
Json frame_head(HeatmapMetric m, const char* scope) {
  Json o = Json::object();
  o["metric"] = heatmap_metric_name(m);
  o["scope"] = scope;
  return o;
}

void finish_frame(Json& frame, const Distribution& d) {
  frame["count"] = d.interval.count();
  frame["buckets"] = buckets_json(d.interval);
}

Json heatmaps_json(const Snapshot& s) {
  Json frames = Json::array();
  for (const Distribution* d : {&s.handshake, &s.port_search, &s.connect_syscall, &s.accept_queue_fill}) {
    Json f = frame_head(d->metric, "all");
    finish_frame(f, *d);
    frames.push_back(std::move(f));
  }
  for (const auto& dest : s.destinations) {
    for (const Distribution* d : {&dest.handshake, &dest.port_search, &dest.connect_syscall}) {
      if (d->interval.count() == 0) continue;
      Json f = frame_head(d->metric, "destination");
      f["netns"] = dest.key.netns;
      f["src"] = dest.src;
      f["dst"] = dest.dst;
      finish_frame(f, *d);
      frames.push_back(std::move(f));
    }
  }
  for (const auto& l : s.listeners) {
    if (l.fill.interval.count() == 0) continue;
    Json f = frame_head(l.fill.metric, "listener");
    f["netns"] = l.key.netns;
    f["listen"] = l.listen;
    finish_frame(f, l.fill);
    frames.push_back(std::move(f));
  }
  return frames;
}

Json health_json(const AgentHealth& h) {
  Json o = Json::object();
  o["events_total"] = map_object(h.events_total);
  o["lost_total"] = map_object(h.lost_total);
  o["lost_interval"] = h.lost_interval;
  o["map_full_total"] = h.map_full_total;
  o["decode_errors_total"] = h.decode_errors_total;
  o["self_events_total"] = h.self_events_total;
  o["destinations_tracked"] = h.destinations_tracked;
  o["destinations_own_rows"] = h.destinations_own_rows;
  o["destinations_folded"] = h.destinations_folded;
  o["destinations_at_risk"] = h.destinations_at_risk;
  o["destinations_at_risk_folded"] = h.destinations_at_risk_folded;
  o["destinations_untracked_total"] = h.destinations_untracked_total;
  if (h.folding_since > 0) o["folding_since"] = h.folding_since;
  o["listeners_folded_total"] = h.listeners_folded_total;
  o["sockets_untracked_total"] = h.sockets_untracked_total;
  Json reconcile = Json::object();
  reconcile["runs_total"] = h.reconcile_runs_total;
  reconcile["corrections_total"] = map_object(h.reconcile_corrections_total);
  o["reconcile"] = std::move(reconcile);
  Json strategies = Json::object();
  for (const auto& st : h.strategies) strategies[st.family] = st.strategy;
  o["strategies"] = std::move(strategies);
  o["replay"] = h.replay;
  return o;
}

}  // namespace

Json alert_to_json(const Alert& a) {
  Json o = Json::object();
  o["rule"] = a.rule;
  o["severity"] = severity_name(a.severity);
  o["state"] = alert_state_name(a.state);
  o["target_kind"] = target_kind_name(a.target_kind);
  o["target"] = a.target;
  o["src"] = a.src.empty() ? Json(nullptr) : Json(a.src);
  o["netns"] = a.netns;
  o["netns_name"] = a.netns_name.empty() ? Json(nullptr) : Json(a.netns_name);
  o["process"] = a.process.empty() ? Json(nullptr) : Json(a.process);
  o["summary"] = a.summary;
  o["remedy"] = a.remedy;
  o["remedy_commands"] = a.remedy_commands;
  Json evidence = Json::object();
  for (const auto& [name, value] : a.evidence) evidence[name] = json_number(value);
  o["evidence"] = std::move(evidence);
  o["since"] = json_number(a.since);
  o["resolved_at"] = a.state == AlertState::resolved ? json_number(a.resolved_at) : Json(nullptr);
  return o;
}

Json alerts_to_json(const std::vector<Alert>& alerts) {
  Json arr = Json::array();
  for (const auto& a : alerts) arr.push_back(alert_to_json(a));
  return arr;
}

Json snapshot_to_json(const Snapshot& s) {
  Json o = Json::object();
  o["timestamp"] = json_number(s.timestamp);
  o["interval_s"] = json_number(s.interval_s);
  o["seq"] = s.seq;
  Json destinations = Json::array();
  for (const auto& d : s.destinations) destinations.push_back(destination_json(d));
  o["destinations"] = std::move(destinations);
  Json listeners = Json::array();
  for (const auto& l : s.listeners) listeners.push_back(listener_json(l));
  o["listeners"] = std::move(listeners);
  o["heatmaps"] = heatmaps_json(s);
  o["alerts"] = alerts_to_json(s.alerts);
  o["alerts_fired_total"] = map_object(s.alerts_fired_total);
  o["health"] = health_json(s.health);
  return o;
}

}  // namespace connscope
