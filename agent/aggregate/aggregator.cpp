// The aggregation coordinator (aggregator.hpp): routes each record to the
// tables it concerns and collects them once per interval.
#include "aggregate/aggregator.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <type_traits>
#include <variant>

#include "events/event_format.hpp"

namespace connscope {

namespace {

DestinationLimits destination_limits(const AggregatorConfig& cfg, const AlertThresholds& levels) {
  DestinationLimits l;
  l.own_rows = cfg.top_destinations;
  l.max_rows = std::max(cfg.max_destinations, cfg.top_destinations);
  l.idle_s = cfg.destination_idle_s;
  l.warn_utilization = levels.warn_utilization;
  l.horizon_s = levels.exhaustion_horizon_s;
  // Long enough for a row's alerts to resolve in its own row, with current numbers.
  l.hold_closes = levels.fire_after + levels.resolve_after;
  return l;
}

}  // namespace

Aggregator::Aggregator(AggregatorConfig cfg, const AlertThresholds& levels)
    : destinations_(destination_limits(cfg, levels)),
      listeners_(cfg.top_listeners, cfg.destination_idle_s),
      ports_(cfg.max_sockets),
      top_destinations_(cfg.top_destinations),
      max_destinations_(std::max(cfg.max_destinations, cfg.top_destinations)),
      self_(cfg.self) {}

bool Aggregator::is_self(uint32_t netns, uint16_t family, const uint8_t* addr, uint16_t port) const {
  if (self_.port == 0 || port != self_.port || (self_.netns && netns != self_.netns)) return false;
  const bool any = std::all_of(self_.addr.begin(), self_.addr.end(), [](uint8_t b) { return b == 0; });
  if (any) return true;
  const size_t n = family == AF_INET6 ? 16 : 4;
  return family == self_.family && std::equal(addr, addr + n, self_.addr.begin());
}

void Aggregator::on_listener_sample(uint32_t netns, const std::vector<ListenerInfo>& listeners, uint64_t ts_ns) {
  if (self_.port == 0) return listeners_.on_sample(netns, listeners, ts_ns);
  std::vector<ListenerInfo> kept;
  for (const ListenerInfo& l : listeners)
    if (!is_self(netns, l.family, l.addr.data(), l.port)) kept.push_back(l);
  listeners_.on_sample(netns, kept, ts_ns);
}

const NetnsSettings* Aggregator::settings_of(uint32_t netns) const {
  auto it = settings_.find(netns);
  return it == settings_.end() ? nullptr : &it->second;
}

std::vector<uint32_t> Aggregator::netns_without_settings() const {
  std::vector<uint32_t> out;
  for (uint32_t ns : destinations_.netns_seen())
    if (!settings_.count(ns)) out.push_back(ns);
  return out;
}

void Aggregator::on_event(const Event& e) {
  const cs_header& h = header_of(e);
  health_.events_total[event_type_name(h.type)]++;
  if (self_.port && std::visit([this](const auto& ev) { return is_self(ev.flow); }, e)) {
    health_.self_events_total++;
    return;
  }
  std::visit(
      [this](const auto& ev) {
        using T = std::decay_t<decltype(ev)>;
        if constexpr (std::is_same_v<T, cs_connect_event>)
          on_connect(ev);
        else if constexpr (std::is_same_v<T, cs_port_alloc_event>)
          on_port_alloc(ev);
        else if constexpr (std::is_same_v<T, cs_state_event>)
          on_state(ev);
        else if constexpr (std::is_same_v<T, cs_retransmit_event>)
          on_retransmit(ev);
        else
          on_accept_queue(ev);
      },
      e);
}

void Aggregator::on_connect(const cs_connect_event& e) {
  Destination* d = destinations_.resolve(e.flow, e.h.ts_ns);
  d->last_activity_ns = e.h.ts_ns;
  d->stats.attempts++;
  d->stats.attempts_total++;
  destinations_.note_process(*d, e.task);
  destinations_.record_connect_syscall(*d, e.latency_ns);
  if (e.err) {
    destinations_.note_error(*d, e.err, &e.task);
  } else if (e.flow.sport) {
    SockKey k = sock_key(e.flow);
    if (!ports_.contains(k)) ports_.set(k, d, PortState::connecting, e.h.ts_ns);
  }
}

void Aggregator::on_port_alloc(const cs_port_alloc_event& e) {
  Destination* d = destinations_.resolve(e.flow, e.h.ts_ns);
  d->last_activity_ns = e.h.ts_ns;
  if (e.range_hi) {
    d->range_lo = e.range_lo;
    d->range_hi = e.range_hi;
  }
  destinations_.record_port_search(*d, e.duration_ns);
  if (e.err == 0 && e.flow.sport) {
    SockKey k = sock_key(e.flow);
    if (!ports_.contains(k)) ports_.set(k, d, PortState::connecting, e.h.ts_ns);
  }
}

void Aggregator::on_state(const cs_state_event& e) {
  const uint64_t ts = e.h.ts_ns;
  if ((e.h.flags & CS_STATE_F_PASSIVE) && e.newstate == CS_TCP_ESTABLISHED) {
    Listener* l = listeners_.resolve(e.flow.netns, e.flow.family, {}, e.flow.sport, ts);
    l->last_activity_ns = ts;
    l->stats.accepts++;
    l->stats.accepts_total++;
    return;
  }
  SockKey k = sock_key(e.flow);
  if (e.oldstate == CS_TCP_SYN_SENT && e.newstate == CS_TCP_ESTABLISHED) {
    Destination* d = destinations_.resolve(e.flow, ts);
    d->last_activity_ns = ts;
    d->stats.established++;
    d->stats.established_total++;
    if (!(e.h.flags & CS_STATE_F_NO_START)) destinations_.record_handshake(*d, e.latency_ns);
    ports_.set(k, d, PortState::open, ts);
    return;
  }
  if (e.newstate != CS_TCP_CLOSE) return;
  if (e.oldstate == CS_TCP_SYN_SENT) {
    // The handshake failed (refused, timed out, reset).
    const SockEntry* tracked = ports_.find(k);
    Destination* d = tracked ? tracked->dest : destinations_.resolve(e.flow, ts);
    d->last_activity_ns = ts;
    if (e.err) destinations_.note_error(*d, e.err);
    if (tracked) ports_.erase(k);
    return;
  }
  if (e.h.flags & CS_STATE_F_TIME_WAIT) {
    const SockEntry* tracked = ports_.find(k);
    Destination* d = tracked ? tracked->dest : nullptr;
    // A connection the agent did not see open (older than the agent): it
    // holds a port only if it is outgoing to a destination we track.
    if (!d && !listeners_.is_listen_port(e.flow.netns, e.flow.sport)) d = destinations_.resolve(e.flow, ts, false);
    if (d) ports_.set(k, d, PortState::time_wait, ts);
    return;
  }
  ports_.erase(k);
}

void Aggregator::on_retransmit(const cs_retransmit_event& e) {
  const uint64_t ts = e.h.ts_ns;
  if (e.kind == CS_RETRANS_SYNACK) {
    Listener* l = listeners_.resolve(e.flow.netns, e.flow.family, {}, e.flow.sport, ts);
    l->last_activity_ns = ts;
    l->stats.synack_retransmits++;
    l->stats.synack_retransmits_total++;
    return;
  }
  Destination* d = nullptr;
  if (const SockEntry* tracked = ports_.find(sock_key(e.flow))) d = tracked->dest;
  if (!d) {
    // Retransmits on accepted connections belong to the listener side, not
    // to an upstream: count them on the listener's row.
    if (e.kind != CS_RETRANS_SYN && listeners_.is_listen_port(e.flow.netns, e.flow.sport)) {
      Listener* l = listeners_.resolve(e.flow.netns, e.flow.family, {}, e.flow.sport, ts);
      l->stats.data_retransmits++;
      l->stats.data_retransmits_total++;
      return;
    }
    d = destinations_.resolve(e.flow, ts);
  }
  destinations_.note_retransmit(*d, e.state);
  d->last_activity_ns = ts;
}

void Aggregator::on_accept_queue(const cs_accept_queue_event& e) {
  Listener* l = listeners_.resolve(e.flow.netns, e.flow.family, to_addr(e.flow.saddr), e.flow.sport, e.h.ts_ns);
  l->last_activity_ns = e.h.ts_ns;
  switch (e.kind) {
    case CS_AQ_QUEUED:
      listeners_.queue_sample(*l, e.backlog, e.max_backlog);
      break;
    case CS_AQ_OVERFLOW:
      l->stats.overflows += e.count;
      l->stats.overflows_total += e.count;
      if (e.max_backlog) l->stats.max_backlog = e.max_backlog;
      l->stats.queue_peak = std::max(l->stats.queue_peak, e.backlog);
      break;
    case CS_AQ_DROP:
      l->stats.drops += e.count;
      l->stats.drops_total += e.count;
      break;
    default:
      break;
  }
}

void Aggregator::on_losses(const LossCounters& totals) {
  for (int t = 0; t < CS_EV_TYPE_MAX; ++t)
    if (totals.lost_by_type[t]) health_.lost_total[event_type_name(static_cast<uint8_t>(t))] = totals.lost_by_type[t];
  health_.map_full_total = totals.map_full;
  health_.lost_interval += totals.lost_total - std::min(totals.lost_total, lost_reported_);
  lost_reported_ = std::max(lost_reported_, totals.lost_total);
}

ReconcileResult Aggregator::reconcile(uint32_t netns, const std::vector<SocketRecord>& sockets, uint64_t dump_ts_ns,
                                      CensusScope scope) {
  if (self_.port == 0) return reconciler_.reconcile(netns, settings_of(netns), sockets, dump_ts_ns, scope);
  auto skip = [&](const SocketRecord& r) {
    return is_self(netns, r.family, r.daddr.data(), r.dport) || is_self(netns, r.family, r.saddr.data(), r.sport);
  };
  return reconciler_.reconcile(netns, settings_of(netns), sockets, dump_ts_ns, scope, skip);
}

Snapshot Aggregator::close_interval(uint64_t end_ns, double end_unix_s) {
  ports_.expire_time_wait(end_ns);
  ports_.count_recent_time_wait(end_ns, settings_);
  Snapshot s;
  s.seq = ++seq_;
  s.timestamp = end_unix_s;
  if (last_end_ns_ == 0 || end_ns <= last_end_ns_)
    s.interval_s = 1.0;
  else
    s.interval_s = static_cast<double>(end_ns - last_end_ns_) / 1e9;
  last_end_ns_ = end_ns;

  destinations_.close(s.interval_s, end_ns, settings_, s);
  listeners_.close(s.interval_s, s);

  const DestinationCounts& dc = destinations_.counts();
  health_.destinations_tracked = dc.tracked;
  health_.destinations_own_rows = dc.own_rows;
  health_.destinations_folded = dc.folded;
  health_.destinations_at_risk = dc.at_risk;
  health_.destinations_at_risk_folded = dc.at_risk_folded;
  health_.destinations_untracked_total = dc.untracked_total;
  if (dc.folded > 0 && !folding_noticed_) {
    folding_noticed_ = true;
    health_.folding_since = end_unix_s;
    s.notices.push_back(
        std::to_string(dc.tracked) + " destinations, more than --top-destinations " +
        std::to_string(top_destinations_) + ": " + std::to_string(dc.own_rows) +
        " keep their own rows (those at risk first, then the busiest) and " + std::to_string(dc.folded) +
        " are summed into dst=\"other\"; every destination still counts toward its own exhaustion model and "
        "alerts, and one at risk gets its own row (counts: health.destinations_folded in the JSON, "
        "connscope_destinations_folded in /metrics)");
  }
  if (dc.untracked_total > 0 && !untracked_noticed_) {
    untracked_noticed_ = true;
    s.notices.push_back("more than --max-destinations " + std::to_string(max_destinations_) +
                        " destinations: new ones are counted only in dst=\"other\", without a model or alerts of "
                        "their own (counts: connscope_destinations_untracked_total); raise --max-destinations");
  }
  health_.listeners_folded_total = listeners_.folded_total();
  health_.sockets_untracked_total = ports_.untracked_total();
  health_.reconcile_runs_total = reconciler_.runs_total();
  health_.reconcile_corrections_total = reconciler_.corrections_total();
  s.health = health_;
  s.netns_settings = settings_;
  health_.lost_interval = 0;
  destinations_.prune(end_ns);
  listeners_.prune(end_ns);
  return s;
}

}  // namespace connscope
