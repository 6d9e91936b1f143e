#include "aggregate/aggregator.hpp"

#include <netinet/in.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <string_view>
#include <unordered_set>

#include "aggregate/port_model.hpp"
#include "events/event_format.hpp"
#include "util/address.hpp"

namespace connscope {
namespace {

constexpr uint64_t kNsPerSec = 1000000000ull;
constexpr uint64_t kTimeWaitNs = 60 * kNsPerSec;
constexpr size_t kMaxProcessesPerDestination = 16;
constexpr size_t kMaxFoldedKeys = 65536;
// TCP states (include/net/tcp_states.h).
constexpr uint8_t kEstablished = 1, kSynSent = 2, kSynRecv = 3, kTimeWait = 6, kClose = 7, kListen = 10;

using Addr = std::array<uint8_t, 16>;

Addr to_addr(const uint8_t* p) {
  Addr a{};
  std::memcpy(a.data(), p, 16);
  return a;
}

bool is_zero(const Addr& a) {
  return std::all_of(a.begin(), a.end(), [](uint8_t b) { return b == 0; });
}

std::string state_label(int state) {
  std::string s = tcp_state_name(state);
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

struct SockKey {
  uint32_t netns = 0;
  uint16_t family = 0;
  uint16_t sport = 0;
  uint16_t dport = 0;
  Addr saddr{};
  Addr daddr{};
  bool operator==(const SockKey&) const = default;
};

struct SockKeyHash {
  size_t operator()(const SockKey& k) const {
    uint64_t h = 1469598103934665603ull;
    auto mix = [&h](const void* p, size_t n) {
      const auto* b = static_cast<const uint8_t*>(p);
      for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 1099511628211ull;
    };
    mix(&k.netns, sizeof k.netns);
    mix(&k.sport, sizeof k.sport);
    mix(&k.dport, sizeof k.dport);
    mix(k.saddr.data(), 16);
    mix(k.daddr.data(), 16);
    return static_cast<size_t>(h);
  }
};

SockKey sock_key(const cs_flow& f) {
  return SockKey{f.netns, f.family, f.sport, f.dport, to_addr(f.saddr), to_addr(f.daddr)};
}

enum class PortState : uint8_t { connecting, open, time_wait };

void record_latency(Distribution& d, LogLinearHistogram& fine, uint64_t ns) {
  d.interval.record(ns);
  d.total.record(ns);
  fine.record(ns);
}

LatencySummary summarize(const LogLinearHistogram& h) {
  LatencySummary s;
  s.count = h.count();
  if (s.count == 0) return s;
  s.p50 = static_cast<double>(h.quantile(0.5)) / 1e9;
  s.p90 = static_cast<double>(h.quantile(0.9)) / 1e9;
  s.p99 = static_cast<double>(h.quantile(0.99)) / 1e9;
  s.max = static_cast<double>(h.max()) / 1e9;
  return s;
}

}  // namespace

struct Dest {
  DestinationStats stats;
  LogLinearHistogram fine_handshake, fine_port_search, fine_connect;
  std::map<uint32_t, ProcessShare> procs;
  uint64_t last_activity_ns = 0;
  uint16_t range_lo = 0, range_hi = 0;  // from port_alloc records
  bool loopback = false;
  uint32_t tw_recent = 0;  // computed at close
};

struct Listener {
  ListenerStats stats;
  uint64_t last_activity_ns = 0;
  uint64_t last_sample_ns = 0;
};

struct SockEntry {
  Dest* dest;
  PortState state;
  uint64_t updated_ns;
  uint64_t tw_expires;  // TIME_WAIT ends (monotonic ns)
};

struct Aggregator::Impl {
  explicit Impl(AggregatorConfig c) : cfg(c) {
    other.stats.other = true;
    other.stats.dst = "other";
    other_listener.stats.other = true;
    other_listener.stats.listen = "other";
    unattributed.stats.other = true;
    unattributed.stats.listen = "unattributed";
  }

  AggregatorConfig cfg;
  std::map<DestinationKey, std::unique_ptr<Dest>> dests;
  std::map<std::tuple<uint32_t, uint16_t, Addr, uint16_t>, Dest*> by_partial;  // (netns, family, daddr, dport)
  std::map<DestinationKey, uint64_t> folded_keys;                              // -> last seen
  Dest other;
  std::map<ListenerKey, std::unique_ptr<Listener>> listeners;
  std::map<ListenerKey, uint64_t> folded_listeners;
  Listener other_listener, unattributed;
  std::map<uint32_t, std::set<uint16_t>> listen_ports;  // per netns
  std::unordered_map<SockKey, SockEntry, SockKeyHash> socks;
  // (tw_expires, key): ordered, since a reconciliation inserts entries that
  // expire before the newest ones.
  std::multimap<uint64_t, SockKey> tw_queue;
  std::map<uint32_t, NetnsSettings> settings;
  std::set<uint32_t> netns_seen;

  Distribution handshake{HeatmapMetric::handshake};
  Distribution port_search{HeatmapMetric::port_search};
  Distribution connect_syscall{HeatmapMetric::connect_syscall};
  Distribution fill{HeatmapMetric::accept_queue_fill};
  LogLinearHistogram fine_handshake, fine_port_search, fine_connect;

  AgentHealth health;
  uint64_t lost_reported = 0;
  uint64_t seq = 0;
  uint64_t last_end_ns = 0;
  uint64_t last_event_ns = 0;

  // --- destinations -------------------------------------------------------

  Dest* resolve_dest(uint32_t netns, uint16_t family, const Addr& saddr, const Addr& daddr, uint16_t dport, uint64_t ts,
                     bool create = true) {
    netns_seen.insert(netns);
    auto partial = std::make_tuple(netns, family, daddr, dport);
    if (is_zero(saddr)) {
      // A failed connect() has its source address reset (tcp_v4_connect's
      // failure path): take the destination's row with a real one.
      if (auto it = by_partial.find(partial); it != by_partial.end()) return it->second;
    }
    DestinationKey key{netns, family, saddr, daddr, dport};
    if (auto it = dests.find(key); it != dests.end()) return it->second.get();
    if (!create) return nullptr;
    if (auto it = folded_keys.find(key); it != folded_keys.end()) {
      it->second = ts;
      return &other;
    }
    if (dests.size() >= cfg.top_destinations) {
      health.destinations_folded_total++;
      if (folded_keys.size() < kMaxFoldedKeys) folded_keys.emplace(key, ts);
      return &other;
    }
    auto d = std::make_unique<Dest>();
    d->stats.key = key;
    d->stats.src = format_address(family, saddr.data());
    d->stats.dst = format_endpoint(family, daddr, dport);
    d->loopback = is_loopback(family, saddr) || is_loopback(family, daddr);
    d->last_activity_ns = ts;
    Dest* raw = d.get();
    dests.emplace(key, std::move(d));
    if (!is_zero(saddr) || !by_partial.count(partial)) by_partial[partial] = raw;
    return raw;
  }

  Dest* resolve_dest(const cs_flow& f, uint64_t ts, bool create = true) {
    return resolve_dest(f.netns, f.family, to_addr(f.saddr), to_addr(f.daddr), f.dport, ts, create);
  }

  void note_process(Dest* d, const cs_task& t) {
    if (t.tgid == 0) return;
    auto it = d->procs.find(t.tgid);
    if (it == d->procs.end()) {
      if (d->procs.size() >= kMaxProcessesPerDestination) {
        // Keep the busiest: replace the quietest entry.
        auto quietest = std::min_element(d->procs.begin(), d->procs.end(), [](const auto& a, const auto& b) {
          return a.second.attempts < b.second.attempts;
        });
        d->procs.erase(quietest);
      }
      it = d->procs.emplace(t.tgid, ProcessShare{t.tgid, std::string(t.comm, strnlen(t.comm, CS_COMM_LEN)), 0}).first;
    }
    it->second.attempts++;
  }

  // --- ports held ---------------------------------------------------------

  static uint32_t& counter(Dest* d, PortState s) {
    switch (s) {
      case PortState::connecting:
        return d->stats.connecting;
      case PortState::open:
        return d->stats.open;
      case PortState::time_wait:
        break;
    }
    return d->stats.time_wait;
  }

  // Tracks `key` in `state` (inserting it when new). Returns false if the
  // table is full.
  bool set_sock(const SockKey& key, Dest* d, PortState state, uint64_t ts, uint64_t tw_expires = 0) {
    auto it = socks.find(key);
    if (it == socks.end()) {
      if (socks.size() >= cfg.max_sockets) {
        health.sockets_untracked_total++;
        return false;
      }
      it = socks.emplace(key, SockEntry{d, state, ts, 0}).first;
      counter(d, state)++;
    } else {
      SockEntry& e = it->second;
      counter(e.dest, e.state)--;
      e.dest = d;
      e.state = state;
      e.updated_ns = ts;
      counter(d, state)++;
    }
    if (state == PortState::time_wait) {
      it->second.tw_expires = tw_expires ? tw_expires : ts + kTimeWaitNs;
      tw_queue.emplace(it->second.tw_expires, key);
    }
    return true;
  }

  void erase_sock(std::unordered_map<SockKey, SockEntry, SockKeyHash>::iterator it) {
    counter(it->second.dest, it->second.state)--;
    socks.erase(it);
  }

  void expire_time_wait(uint64_t now) {
    while (!tw_queue.empty() && tw_queue.begin()->first <= now) {
      auto [expires, key] = *tw_queue.begin();
      tw_queue.erase(tw_queue.begin());
      auto it = socks.find(key);
      if (it != socks.end() && it->second.state == PortState::time_wait && it->second.tw_expires == expires)
        erase_sock(it);
    }
  }

  bool is_listen_port(uint32_t netns, uint16_t port) const {
    auto it = listen_ports.find(netns);
    return it != listen_ports.end() && it->second.count(port);
  }

  // --- listeners ----------------------------------------------------------

  Listener* resolve_listener(uint32_t netns, uint16_t family, const Addr& addr, uint16_t port, uint64_t ts) {
    if (family == 0) return &unattributed;
    listen_ports[netns].insert(port);
    ListenerKey key{netns, family, {}, port};
    if (auto it = listeners.find(key); it != listeners.end()) return it->second.get();
    if (folded_listeners.count(key)) return &other_listener;
    if (listeners.size() >= cfg.top_listeners) {
      health.listeners_folded_total++;
      if (folded_listeners.size() < kMaxFoldedKeys) folded_listeners.emplace(key, ts);
      return &other_listener;
    }
    auto l = std::make_unique<Listener>();
    l->stats.key = key;
    l->stats.key.addr = addr;
    l->stats.listen = format_endpoint(family, addr, port);
    l->last_activity_ns = ts;
    return listeners.emplace(key, std::move(l)).first->second.get();
  }

  void queue_sample(Listener* l, uint32_t len, uint32_t max_backlog) {
    ListenerStats& s = l->stats;
    s.queue_len = len;
    s.max_backlog = max_backlog;
    s.queue_peak = std::max(s.queue_peak, len);
    const uint64_t permille = max_backlog ? static_cast<uint64_t>(len) * 1000 / max_backlog : (len ? UINT64_MAX : 0);
    s.fill.interval.record(permille);
    s.fill.total.record(permille);
    fill.interval.record(permille);
    fill.total.record(permille);
  }

  // --- events -------------------------------------------------------------

  void on_connect(const cs_connect_event& e) {
    Dest* d = resolve_dest(e.flow, e.h.ts_ns);
    d->last_activity_ns = e.h.ts_ns;
    d->stats.attempts++;
    d->stats.attempts_total++;
    note_process(d, e.task);
    record_latency(d->stats.connect_syscall, d->fine_connect, e.latency_ns);
    record_latency(connect_syscall, fine_connect, e.latency_ns);
    if (e.err) {
      std::string name = errno_name(e.err);
      d->stats.errors[name]++;
      d->stats.errors_total[name]++;
    } else if (e.flow.sport) {
      SockKey k = sock_key(e.flow);
      if (!socks.count(k)) set_sock(k, d, PortState::connecting, e.h.ts_ns);
    }
  }

  void on_port_alloc(const cs_port_alloc_event& e) {
    Dest* d = resolve_dest(e.flow, e.h.ts_ns);
    d->last_activity_ns = e.h.ts_ns;
    if (e.range_hi) {
      d->range_lo = e.range_lo;
      d->range_hi = e.range_hi;
    }
    record_latency(d->stats.port_search, d->fine_port_search, e.duration_ns);
    record_latency(port_search, fine_port_search, e.duration_ns);
    if (e.err == 0 && e.flow.sport) {
      SockKey k = sock_key(e.flow);
      if (!socks.count(k)) set_sock(k, d, PortState::connecting, e.h.ts_ns);
    }
  }

  void on_state(const cs_state_event& e) {
    const uint64_t ts = e.h.ts_ns;
    if ((e.h.flags & CS_STATE_F_PASSIVE) && e.newstate == kEstablished) {
      Listener* l = resolve_listener(e.flow.netns, e.flow.family, {}, e.flow.sport, ts);
      l->last_activity_ns = ts;
      l->stats.accepts++;
      l->stats.accepts_total++;
      return;
    }
    SockKey k = sock_key(e.flow);
    if (e.oldstate == kSynSent && e.newstate == kEstablished) {
      Dest* d = resolve_dest(e.flow, ts);
      d->last_activity_ns = ts;
      d->stats.established++;
      d->stats.established_total++;
      if (!(e.h.flags & CS_STATE_F_NO_START)) {
        record_latency(d->stats.handshake, d->fine_handshake, e.latency_ns);
        record_latency(handshake, fine_handshake, e.latency_ns);
      }
      set_sock(k, d, PortState::open, ts);
      return;
    }
    if (e.newstate != kClose) return;
    auto it = socks.find(k);
    if (e.oldstate == kSynSent) {
      // The handshake failed (refused, timed out, reset).
      Dest* d = it != socks.end() ? it->second.dest : resolve_dest(e.flow, ts);
      d->last_activity_ns = ts;
      if (e.err) {
        std::string name = errno_name(e.err);
        d->stats.errors[name]++;
        d->stats.errors_total[name]++;
      }
      if (it != socks.end()) erase_sock(it);
      return;
    }
    if (e.h.flags & CS_STATE_F_TIME_WAIT) {
      Dest* d = it != socks.end() ? it->second.dest : nullptr;
      // A connection the agent did not see open (older than the agent): it
      // holds a port only if it is outgoing to a destination we track.
      if (!d && !is_listen_port(e.flow.netns, e.flow.sport)) d = resolve_dest(e.flow, ts, false);
      if (d) set_sock(k, d, PortState::time_wait, ts);
      return;
    }
    if (it != socks.end()) erase_sock(it);
  }

  void on_retransmit(const cs_retransmit_event& e) {
    const uint64_t ts = e.h.ts_ns;
    if (e.kind == CS_RETRANS_SYNACK) {
      Listener* l = resolve_listener(e.flow.netns, e.flow.family, {}, e.flow.sport, ts);
      l->last_activity_ns = ts;
      l->stats.synack_retransmits++;
      l->stats.synack_retransmits_total++;
      return;
    }
    Dest* d = nullptr;
    if (auto it = socks.find(sock_key(e.flow)); it != socks.end()) d = it->second.dest;
    if (!d) {
      // Retransmits on accepted connections belong to the listener side, not
      // to an upstream: count them on the listener's row.
      if (e.kind != CS_RETRANS_SYN && is_listen_port(e.flow.netns, e.flow.sport)) {
        Listener* l = resolve_listener(e.flow.netns, e.flow.family, {}, e.flow.sport, ts);
        l->stats.data_retransmits++;
        l->stats.data_retransmits_total++;
        return;
      }
      d = resolve_dest(e.flow, ts);
    }
    std::string state = state_label(e.state);
    d->stats.retransmits[state]++;
    d->stats.retransmits_total[state]++;
    d->last_activity_ns = ts;
  }

  void on_accept_queue(const cs_accept_queue_event& e) {
    Listener* l = resolve_listener(e.flow.netns, e.flow.family, to_addr(e.flow.saddr), e.flow.sport, e.h.ts_ns);
    l->last_activity_ns = e.h.ts_ns;
    switch (e.kind) {
      case CS_AQ_QUEUED:
        queue_sample(l, e.backlog, e.max_backlog);
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

  // --- interval -----------------------------------------------------------

  void count_recent_time_wait(uint64_t now) {
    for (auto& [k, d] : dests) d->tw_recent = 0;
    other.tw_recent = 0;
    // The reuse delay is at most a few seconds: walk back from the newest.
    for (auto it = tw_queue.rbegin(); it != tw_queue.rend(); ++it) {
      // Entered TIME_WAIT at expires - 60 s.
      if (it->first + 10 * kNsPerSec < now + kTimeWaitNs) break;
      auto s = socks.find(it->second);
      if (s == socks.end() || s->second.state != PortState::time_wait || s->second.tw_expires != it->first) continue;
      uint64_t delay_ns = kNsPerSec;
      if (auto st = settings.find(it->second.netns); st != settings.end())
        delay_ns = static_cast<uint64_t>(std::max(1u, st->second.tw_reuse_delay_ms)) * 1000000ull;
      if (it->first + delay_ns > now + kTimeWaitNs) s->second.dest->tw_recent++;
    }
  }

  DestinationStats finish_dest(Dest& d, double interval_s) {
    DestinationStats& s = d.stats;
    s.handshake.summary = summarize(d.fine_handshake);
    s.port_search.summary = summarize(d.fine_port_search);
    s.connect_syscall.summary = summarize(d.fine_connect);
    if (!s.other) {
      PortModelInput in;
      if (auto it = settings.find(s.key.netns); it != settings.end()) in.settings = &it->second;
      in.event_range_lo = d.range_lo;
      in.event_range_hi = d.range_hi;
      in.loopback = d.loopback;
      in.connecting = s.connecting;
      in.open = s.open;
      in.time_wait = s.time_wait;
      in.time_wait_recent = d.tw_recent;
      in.connect_rate = interval_s > 0 ? static_cast<double>(s.attempts) / interval_s : 0;
      s.model = compute_port_model(in);
    } else {
      s.model = PortModel{};
      s.model.in_use = s.connecting + s.open + s.time_wait;
      s.model.connect_rate = interval_s > 0 ? static_cast<double>(s.attempts) / interval_s : 0;
    }
    std::vector<ProcessShare> procs;
    for (const auto& [pid, p] : d.procs) procs.push_back(p);
    std::sort(procs.begin(), procs.end(), [](const ProcessShare& a, const ProcessShare& b) {
      return a.attempts != b.attempts ? a.attempts > b.attempts : a.pid < b.pid;
    });
    if (procs.size() > 3) procs.resize(3);
    s.processes = std::move(procs);
    DestinationStats out = s;
    // Reset the interval part.
    s.attempts = s.established = 0;
    s.errors.clear();
    s.retransmits.clear();
    s.corrected_connecting = s.corrected_open = s.corrected_time_wait = 0;
    for (Distribution* dist : {&s.handshake, &s.port_search, &s.connect_syscall}) {
      dist->interval.clear();
      dist->summary = {};
    }
    d.fine_handshake.clear();
    d.fine_port_search.clear();
    d.fine_connect.clear();
    return out;
  }

  ListenerStats finish_listener(Listener& l, double interval_s) {
    ListenerStats& s = l.stats;
    s.accept_rate = interval_s > 0 ? static_cast<double>(s.accepts) / interval_s : 0;
    ListenerStats out = s;
    s.overflows = s.drops = s.synack_retransmits = s.accepts = s.data_retransmits = 0;
    s.queue_peak = s.queue_len;
    s.fill.interval.clear();
    return out;
  }

  void prune(uint64_t now) {
    const uint64_t idle = static_cast<uint64_t>(cfg.destination_idle_s * 1e9);
    if (now < idle) return;
    for (auto it = dests.begin(); it != dests.end();) {
      Dest* d = it->second.get();
      if (d->last_activity_ns + idle < now && d->stats.connecting + d->stats.open + d->stats.time_wait == 0) {
        for (auto p = by_partial.begin(); p != by_partial.end();)
          p = p->second == d ? by_partial.erase(p) : std::next(p);
        it = dests.erase(it);
      } else {
        ++it;
      }
    }
    for (auto it = folded_keys.begin(); it != folded_keys.end();)
      it = it->second + idle < now ? folded_keys.erase(it) : std::next(it);
    for (auto it = listeners.begin(); it != listeners.end();) {
      Listener* l = it->second.get();
      const uint64_t last = std::max(l->last_activity_ns, l->last_sample_ns);
      it = last + idle < now ? listeners.erase(it) : std::next(it);
    }
    for (auto it = folded_listeners.begin(); it != folded_listeners.end();)
      it = it->second + idle < now ? folded_listeners.erase(it) : std::next(it);
  }
};

Aggregator::Aggregator(AggregatorConfig cfg) : impl_(std::make_unique<Impl>(cfg)) {}
Aggregator::~Aggregator() = default;

void Aggregator::start(uint64_t start_ns) { impl_->last_end_ns = start_ns; }

void Aggregator::set_strategies(std::vector<StrategyInUse> s) { impl_->health.strategies = std::move(s); }
void Aggregator::set_replay(bool replay) { impl_->health.replay = replay; }

void Aggregator::set_netns_settings(const NetnsSettings& s) { impl_->settings[s.netns] = s; }

std::vector<uint32_t> Aggregator::netns_without_settings() const {
  std::vector<uint32_t> out;
  for (uint32_t ns : impl_->netns_seen)
    if (!impl_->settings.count(ns)) out.push_back(ns);
  return out;
}

std::vector<uint32_t> Aggregator::netns_with_destinations() const {
  std::set<uint32_t> out;
  for (const auto& [k, d] : impl_->dests) out.insert(k.netns);
  return {out.begin(), out.end()};
}

void Aggregator::on_event(const Event& e) {
  const cs_header& h = header_of(e);
  impl_->health.events_total[event_type_name(h.type)]++;
  impl_->last_event_ns = std::max<uint64_t>(impl_->last_event_ns, h.ts_ns);
  std::visit(
      [this](const auto& ev) {
        using T = std::decay_t<decltype(ev)>;
        if constexpr (std::is_same_v<T, cs_connect_event>)
          impl_->on_connect(ev);
        else if constexpr (std::is_same_v<T, cs_port_alloc_event>)
          impl_->on_port_alloc(ev);
        else if constexpr (std::is_same_v<T, cs_state_event>)
          impl_->on_state(ev);
        else if constexpr (std::is_same_v<T, cs_retransmit_event>)
          impl_->on_retransmit(ev);
        else
          impl_->on_accept_queue(ev);
      },
      e);
}

void Aggregator::on_decode_error() { impl_->health.decode_errors_total++; }

void Aggregator::on_losses(const LossCounters& totals) {
  for (int t = 0; t < CS_EV_TYPE_MAX; ++t)
    if (totals.lost_by_type[t])
      impl_->health.lost_total[event_type_name(static_cast<uint8_t>(t))] = totals.lost_by_type[t];
  impl_->health.map_full_total = totals.map_full;
  impl_->health.lost_interval += totals.lost_total - std::min(totals.lost_total, impl_->lost_reported);
  impl_->lost_reported = std::max(impl_->lost_reported, totals.lost_total);
}

void Aggregator::on_listener_sample(uint32_t netns, const std::vector<ListenerInfo>& ls, uint64_t ts_ns) {
  auto& ports = impl_->listen_ports[netns];
  for (const ListenerInfo& info : ls) {
    ports.insert(info.port);
    Listener* l = impl_->resolve_listener(netns, info.family, info.addr, info.port, ts_ns);
    if (!l->stats.other && l->stats.key.addr != info.addr) {
      // Rows first seen in events know only the port: take the bound address.
      l->stats.key.addr = info.addr;
      l->stats.listen = format_endpoint(info.family, info.addr, info.port);
    }
    l->last_sample_ns = ts_ns;
    impl_->queue_sample(l, info.queue_len, info.max_backlog);
  }
}

ReconcileResult Aggregator::reconcile(uint32_t netns, const std::vector<SocketRecord>& sockets, uint64_t dump_ts) {
  Impl& m = *impl_;
  ReconcileResult r;
  auto& ports = m.listen_ports[netns];
  for (const SocketRecord& s : sockets)
    if (s.state == kListen) ports.insert(s.sport);
  const NetnsSettings* st = nullptr;
  if (auto it = m.settings.find(netns); it != m.settings.end()) st = &it->second;

  std::unordered_set<SockKey, SockKeyHash> seen;
  std::map<Dest*, std::array<int64_t, 3>> corrections;
  auto correct = [&corrections](Dest* d, PortState s, int64_t delta) {
    corrections[d][static_cast<size_t>(s)] += delta;
  };
  for (const SocketRecord& s : sockets) {
    if (s.state == kListen || s.state == kSynRecv || s.state == kClose || s.state == 0 || s.state > 11) continue;
    const PortState ps = s.state == kSynSent    ? PortState::connecting
                         : s.state == kTimeWait ? PortState::time_wait
                                                : PortState::open;
    SockKey key{netns, s.family, s.sport, s.dport, s.saddr, s.daddr};
    auto it = m.socks.find(key);
    if (it == m.socks.end() && ports.count(s.sport)) continue;  // accepted from a local listener: not ours
    Dest* d = it != m.socks.end() ? it->second.dest
                                  : m.resolve_dest(netns, s.family, s.saddr, s.daddr, s.dport, dump_ts, false);
    if (!d) {
      // A socket the events never showed (older than the agent): outgoing
      // when its local port is ephemeral and its remote port is not. Both
      // ephemeral is ambiguous (a server on a port-0 listener that has gone,
      // TIME_WAIT on the server side), so it is left out.
      auto ephemeral = [st](uint16_t port) { return st && port >= st->port_lo && port <= st->port_hi; };
      if (!ephemeral(s.sport) || ephemeral(s.dport)) continue;
      d = m.resolve_dest(netns, s.family, s.saddr, s.daddr, s.dport, dump_ts, true);
    }
    seen.insert(key);
    // A TIME_WAIT socket's timer says how long it has left of its 60 s.
    const uint64_t tw_expires =
        ps == PortState::time_wait ? dump_ts + std::min<uint64_t>(s.expires_ms * 1000000ull, kTimeWaitNs) : 0;
    if (it == m.socks.end()) {
      if (m.set_sock(key, d, ps, dump_ts, tw_expires)) {
        r.added++;
        correct(d, ps, +1);
      }
    } else if (it->second.updated_ns <= dump_ts && it->second.state != ps) {
      correct(it->second.dest, it->second.state, -1);
      correct(d, ps, +1);
      m.set_sock(key, d, ps, dump_ts, tw_expires);
      r.restated++;
    }
  }
  for (auto it = m.socks.begin(); it != m.socks.end();) {
    if (it->first.netns == netns && it->second.updated_ns <= dump_ts && !seen.count(it->first)) {
      correct(it->second.dest, it->second.state, -1);
      m.erase_sock(it++);
      r.removed++;
    } else {
      ++it;
    }
  }
  for (auto& [d, c] : corrections) {
    d->stats.corrected_connecting += c[0];
    d->stats.corrected_open += c[1];
    d->stats.corrected_time_wait += c[2];
    const char* names[3] = {"connecting", "open", "time_wait"};
    for (size_t i = 0; i < 3; ++i)
      if (c[i]) m.health.reconcile_corrections_total[names[i]] += static_cast<uint64_t>(c[i] < 0 ? -c[i] : c[i]);
  }
  m.health.reconcile_runs_total++;
  return r;
}

void Aggregator::advance(uint64_t now_ns) { impl_->expire_time_wait(now_ns); }

Snapshot Aggregator::close_interval(uint64_t end_ns, double end_unix_s) {
  Impl& m = *impl_;
  m.expire_time_wait(end_ns);
  m.count_recent_time_wait(end_ns);
  Snapshot s;
  s.seq = ++m.seq;
  s.timestamp = end_unix_s;
  if (m.last_end_ns == 0 || end_ns <= m.last_end_ns)
    s.interval_s = 1.0;
  else
    s.interval_s = static_cast<double>(end_ns - m.last_end_ns) / 1e9;
  m.last_end_ns = end_ns;

  std::vector<Dest*> rows;
  for (auto& [k, d] : m.dests) rows.push_back(d.get());
  std::sort(rows.begin(), rows.end(), [](const Dest* a, const Dest* b) {
    if (a->stats.attempts != b->stats.attempts) return a->stats.attempts > b->stats.attempts;
    uint32_t ua = a->stats.connecting + a->stats.open + a->stats.time_wait;
    uint32_t ub = b->stats.connecting + b->stats.open + b->stats.time_wait;
    if (ua != ub) return ua > ub;
    return a->stats.key < b->stats.key;
  });
  for (Dest* d : rows) s.destinations.push_back(m.finish_dest(*d, s.interval_s));
  const DestinationStats& o = m.other.stats;
  const bool other_active = o.attempts_total || o.connecting || o.open || o.time_wait || !o.retransmits_total.empty();
  if (other_active) s.destinations.push_back(m.finish_dest(m.other, s.interval_s));

  for (auto& [k, l] : m.listeners) s.listeners.push_back(m.finish_listener(*l, s.interval_s));
  for (Listener* l : {&m.other_listener, &m.unattributed}) {
    const ListenerStats& ls = l->stats;
    if (ls.overflows_total || ls.drops_total || ls.synack_retransmits_total || ls.accepts_total ||
        ls.fill.total.count() || ls.data_retransmits_total)
      s.listeners.push_back(m.finish_listener(*l, s.interval_s));
  }

  m.handshake.summary = summarize(m.fine_handshake);
  m.port_search.summary = summarize(m.fine_port_search);
  m.connect_syscall.summary = summarize(m.fine_connect);
  s.handshake = m.handshake;
  s.port_search = m.port_search;
  s.connect_syscall = m.connect_syscall;
  s.accept_queue_fill = m.fill;
  for (Distribution* d : {&m.handshake, &m.port_search, &m.connect_syscall, &m.fill}) {
    d->interval.clear();
    d->summary = {};
  }
  m.fine_handshake.clear();
  m.fine_port_search.clear();
  m.fine_connect.clear();

  m.health.destinations_tracked = m.dests.size();
  s.health = m.health;
  m.health.lost_interval = 0;
  m.prune(end_ns);
  return s;
}

}  // namespace connscope
