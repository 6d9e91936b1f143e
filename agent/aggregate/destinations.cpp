// The per-destination table (destinations.hpp).
#include "aggregate/destinations.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <iterator>
#include <string>

#include "aggregate/port_model.hpp"
#include "events/event_format.hpp"
#include "util/address.hpp"

namespace connscope {
namespace {

constexpr size_t kMaxProcessesPerDestination = 16;
// A row active within this long keeps its own row against newcomers.
constexpr uint64_t kStickyNs = 60'000'000'000ULL;

bool is_port_errno(int err) {
  err = err < 0 ? -err : err;
  return err == EADDRNOTAVAIL || err == EADDRINUSE;
}

bool is_zero(const Addr& a) {
  return std::all_of(a.begin(), a.end(), [](uint8_t b) { return b == 0; });
}

std::string state_label(int state) {
  std::string s = tcp_state_name(state);
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

void record_latency(Distribution& d, LogLinearHistogram* fine, uint64_t ns) {
  d.interval.record(ns);
  d.total.record(ns);
  if (fine) fine->record(ns);
}

uint32_t held(const DestinationStats& s) { return s.connecting + s.open + s.time_wait; }

uint64_t port_errors(const DestinationStats& s) {
  uint64_t n = 0;
  for (const auto& [name, count] : s.errors)
    if (name == "EADDRNOTAVAIL" || name == "EADDRINUSE") n += count;
  return n;
}

// `o` += the interval of `d` (counters, gauges, distributions); the totals of
// `o` grow by the same amounts, so `other`'s counters stay monotonic however
// rows move in and out of it.
void fold_into(DestinationStats& o, const DestinationStats& d) {
  o.attempts += d.attempts;
  o.attempts_total += d.attempts;
  o.established += d.established;
  o.established_total += d.established;
  for (const auto& [k, v] : d.errors) {
    o.errors[k] += v;
    o.errors_total[k] += v;
  }
  for (const auto& [k, v] : d.retransmits) {
    o.retransmits[k] += v;
    o.retransmits_total[k] += v;
  }
  o.connecting += d.connecting;
  o.open += d.open;
  o.time_wait += d.time_wait;
  o.corrected_connecting += d.corrected_connecting;
  o.corrected_open += d.corrected_open;
  o.corrected_time_wait += d.corrected_time_wait;
  for (auto [od, dd] : {std::pair{&o.handshake, &d.handshake}, std::pair{&o.port_search, &d.port_search},
                        std::pair{&o.connect_syscall, &d.connect_syscall}}) {
    od->interval.merge(dd->interval);
    od->total.merge(dd->interval);
  }
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

DestinationTable::DestinationTable(const DestinationLimits& limits) : lim_(limits) {
  overflow_.stats.other = true;
  other_.other = true;
  other_.dst = "other";
}

Destination* DestinationTable::resolve(uint32_t netns, uint16_t family, const Addr& saddr, const Addr& daddr,
                                       uint16_t dport, uint64_t ts, bool create) {
  netns_seen_.insert(netns);
  auto partial = std::make_tuple(netns, family, daddr, dport);
  if (is_zero(saddr)) {
    // A failed connect() has its source address reset (tcp_v4_connect's
    // failure path): take the destination's row with a real one.
    if (auto it = by_partial_.find(partial); it != by_partial_.end()) return it->second;
  }
  DestinationKey key{netns, family, saddr, daddr, dport};
  if (auto it = rows_.find(key); it != rows_.end()) return it->second.get();
  if (!create) return nullptr;
  if (untracked_.touch(key, ts)) return &overflow_;
  if (rows_.size() >= lim_.max_rows) {
    untracked_.add(key, ts);
    return &overflow_;
  }
  auto d = std::make_unique<Destination>();
  d->stats.key = key;
  d->stats.src = format_address(family, saddr.data());
  d->stats.dst = format_endpoint(family, daddr, dport);
  d->loopback = is_loopback(family, saddr) || is_loopback(family, daddr);
  d->last_activity_ns = ts;
  // While slots are free a new row has its own at once (a quiet host sees
  // every destination's summaries from its first connection).
  if (own_count_ < lim_.own_rows) {
    d->detail = std::make_unique<DestinationDetail>();
    own_count_++;
  }
  Destination* raw = d.get();
  rows_.emplace(key, std::move(d));
  if (!is_zero(saddr) || !by_partial_.count(partial)) by_partial_[partial] = raw;
  return raw;
}

Destination* DestinationTable::resolve(const cs_flow& f, uint64_t ts, bool create) {
  return resolve(f.netns, f.family, to_addr(f.saddr), to_addr(f.daddr), f.dport, ts, create);
}

void DestinationTable::note_process(Destination& d, const cs_task& t) {
  if (t.tgid == 0) return;
  auto it = d.procs.find(t.tgid);
  if (it == d.procs.end()) {
    if (d.procs.size() >= kMaxProcessesPerDestination) {
      // Keep the busiest: replace the quietest entry.
      auto quietest = std::min_element(d.procs.begin(), d.procs.end(), [](const auto& a, const auto& b) {
        return a.second.attempts < b.second.attempts;
      });
      d.procs.erase(quietest);
    }
    it = d.procs.emplace(t.tgid, ProcessShare{t.tgid, std::string(t.comm, strnlen(t.comm, CS_COMM_LEN)), 0}).first;
  }
  it->second.attempts++;
}

void DestinationTable::note_error(Destination& d, int err, const cs_task* t) {
  std::string name = errno_name(err);
  d.stats.errors[name]++;
  d.stats.errors_total[name]++;
  if (t && is_port_errno(err))
    if (auto it = d.procs.find(t->tgid); it != d.procs.end()) it->second.port_errors++;
}

void DestinationTable::note_retransmit(Destination& d, uint8_t tcp_state) {
  std::string state = state_label(tcp_state);
  d.stats.retransmits[state]++;
  d.stats.retransmits_total[state]++;
}

void DestinationTable::record_connect_syscall(Destination& d, uint64_t ns) {
  record_latency(d.stats.connect_syscall, d.detail ? &d.detail->connect : nullptr, ns);
  record_latency(connect_syscall_, &fine_connect_, ns);
}

void DestinationTable::record_port_search(Destination& d, uint64_t ns) {
  record_latency(d.stats.port_search, d.detail ? &d.detail->port_search : nullptr, ns);
  record_latency(port_search_, &fine_port_search_, ns);
}

void DestinationTable::record_handshake(Destination& d, uint64_t ns) {
  record_latency(d.stats.handshake, d.detail ? &d.detail->handshake : nullptr, ns);
  record_latency(handshake_, &fine_handshake_, ns);
}

void DestinationTable::model(Destination& d, double interval_s,
                             const std::map<uint32_t, NetnsSettings>& settings) const {
  PortModelInput in;
  if (auto it = settings.find(d.stats.key.netns); it != settings.end()) in.settings = &it->second;
  in.event_range_lo = d.range_lo;
  in.event_range_hi = d.range_hi;
  in.loopback = d.loopback;
  in.connecting = d.stats.connecting;
  in.open = d.stats.open;
  in.time_wait = d.stats.time_wait;
  in.time_wait_recent = d.tw_recent;
  in.connect_rate = interval_s > 0 ? static_cast<double>(d.stats.attempts) / interval_s : 0;
  d.stats.model = compute_port_model(in);
}

bool DestinationTable::at_risk(const Destination& d) const {
  const DestinationStats& s = d.stats;
  const PortModel& m = s.model;
  if (!s.errors.empty()) return true;
  if (m.usable_ports == 0) return false;
  return m.utilization >= lim_.warn_utilization || (m.sustainable_rate > 0 && m.connect_rate > m.sustainable_rate) ||
         (m.time_to_exhaustion_s && *m.time_to_exhaustion_s <= lim_.horizon_s);
}

void DestinationTable::choose_own_rows(uint64_t now, std::vector<Destination*>& own) {
  std::vector<Destination*> risky, rest;
  for (auto& [k, d] : rows_) (d->risk_hold > 0 ? risky : rest).push_back(d.get());
  // Most at risk first: failing now, then the fullest, then the fastest
  // against what its range sustains.
  auto pressure = [](const Destination* d) {
    const PortModel& m = d->stats.model;
    return m.sustainable_rate > 0 ? m.connect_rate / m.sustainable_rate : 0.0;
  };
  std::sort(risky.begin(), risky.end(), [&](const Destination* a, const Destination* b) {
    const uint64_t ea = port_errors(a->stats) + a->stats.errors.size(),
                   eb = port_errors(b->stats) + b->stats.errors.size();
    if (ea != eb) return ea > eb;
    if (a->stats.model.utilization != b->stats.model.utilization)
      return a->stats.model.utilization > b->stats.model.utilization;
    if (pressure(a) != pressure(b)) return pressure(a) > pressure(b);
    return a->stats.key < b->stats.key;
  });
  const size_t n_risky = std::min(risky.size(), lim_.own_rows);
  counts_.at_risk = risky.size();
  counts_.at_risk_folded = risky.size() - n_risky;
  own.assign(risky.begin(), risky.begin() + static_cast<std::ptrdiff_t>(n_risky));
  for (size_t i = n_risky; i < risky.size(); ++i) rest.push_back(risky[i]);
  // The remaining slots: the busiest of the rows active in the last minute.
  // A holder counts double, so a slot changes hands only for a clearly
  // busier row (no churn between two of about the same rate).
  const uint64_t recent = now > kStickyNs ? now - kStickyNs : 0;
  auto score = [&](const Destination* d) -> uint64_t {
    if (d->last_activity_ns < recent && !held(d->stats)) return 0;
    return d->stats.attempts * (d->own_row() ? 2 : 1);
  };
  std::sort(rest.begin(), rest.end(), [&](const Destination* a, const Destination* b) {
    const bool ra = a->last_activity_ns >= recent || held(a->stats),
               rb = b->last_activity_ns >= recent || held(b->stats);
    if (ra != rb) return ra;
    if (score(a) != score(b)) return score(a) > score(b);
    if (a->own_row() != b->own_row()) return a->own_row();
    if (held(a->stats) != held(b->stats)) return held(a->stats) > held(b->stats);
    return a->stats.key < b->stats.key;
  });
  const size_t n_rest = std::min(rest.size(), lim_.own_rows - n_risky);
  own.insert(own.end(), rest.begin(), rest.begin() + static_cast<std::ptrdiff_t>(n_rest));
}

DestinationStats DestinationTable::finish(Destination& d) {
  DestinationStats& s = d.stats;
  if (d.detail) {
    s.handshake.summary = summarize(d.detail->handshake);
    s.port_search.summary = summarize(d.detail->port_search);
    s.connect_syscall.summary = summarize(d.detail->connect);
  }
  std::vector<ProcessShare> procs;
  for (const auto& [pid, p] : d.procs) procs.push_back(p);
  // Failing processes first: the one an error alert names is one that failed.
  std::sort(procs.begin(), procs.end(), [](const ProcessShare& a, const ProcessShare& b) {
    if (a.port_errors != b.port_errors) return a.port_errors > b.port_errors;
    return a.attempts != b.attempts ? a.attempts > b.attempts : a.pid < b.pid;
  });
  if (procs.size() > 3) procs.resize(3);
  s.processes = std::move(procs);
  return s;
}

void DestinationTable::restart_interval(Destination& d) {
  DestinationStats& s = d.stats;
  s.attempts = s.established = 0;
  s.errors.clear();
  s.retransmits.clear();
  s.corrected_connecting = s.corrected_open = s.corrected_time_wait = 0;
  for (Distribution* dist : {&s.handshake, &s.port_search, &s.connect_syscall}) {
    dist->interval.clear();
    dist->summary = {};
  }
  if (d.detail) {
    d.detail->handshake.clear();
    d.detail->port_search.clear();
    d.detail->connect.clear();
  }
  for (auto& [pid, p] : d.procs) p.port_errors = 0;
  d.tw_recent = 0;
}

void DestinationTable::close(double interval_s, uint64_t now, const std::map<uint32_t, NetnsSettings>& settings,
                             Snapshot& out) {
  for (auto& [k, d] : rows_) {
    model(*d, interval_s, settings);
    if (at_risk(*d))
      d->risk_hold = lim_.hold_closes;
    else if (d->risk_hold > 0)
      d->risk_hold--;
  }
  std::vector<Destination*> own;
  choose_own_rows(now, own);
  std::set<const Destination*> chosen(own.begin(), own.end());
  // Slots change hands: a row leaving gives up its fine histograms, a row
  // arriving starts them (its summaries begin with the next interval).
  own_count_ = 0;
  for (auto& [k, d] : rows_) {
    if (!chosen.count(d.get()))
      d->detail.reset();
    else if (!d->detail)
      d->detail = std::make_unique<DestinationDetail>();
    own_count_ += d->own_row();
  }
  // At risk first (in risk order), then by activity.
  std::stable_sort(own.begin() + static_cast<std::ptrdiff_t>(counts_.at_risk - counts_.at_risk_folded), own.end(),
                   [](const Destination* a, const Destination* b) {
                     if (a->stats.attempts != b->stats.attempts) return a->stats.attempts > b->stats.attempts;
                     if (held(a->stats) != held(b->stats)) return held(a->stats) > held(b->stats);
                     return a->stats.key < b->stats.key;
                   });
  for (Destination* d : own) {
    out.destinations.push_back(finish(*d));
    restart_interval(*d);
  }

  // `other`: the rows without their own, and the untracked destinations.
  DestinationStats& o = other_;
  o.attempts = o.established = 0;
  o.errors.clear();
  o.retransmits.clear();
  o.connecting = o.open = o.time_wait = 0;
  o.corrected_connecting = o.corrected_open = o.corrected_time_wait = 0;
  for (Distribution* dist : {&o.handshake, &o.port_search, &o.connect_syscall}) dist->interval.clear();
  uint64_t folded = 0;
  for (auto& [k, d] : rows_) {
    if (d->own_row()) continue;
    fold_into(o, d->stats);
    restart_interval(*d);
    folded++;
  }
  fold_into(o, overflow_.stats);
  restart_interval(overflow_);
  o.model = PortModel{};
  o.model.in_use = held(o);
  o.model.connect_rate = interval_s > 0 ? static_cast<double>(o.attempts) / interval_s : 0;
  const bool other_active = o.attempts_total || held(o) || !o.retransmits_total.empty();
  if (other_active) out.destinations.push_back(o);

  counts_.tracked = rows_.size();
  counts_.own_rows = own.size();
  counts_.folded = folded;
  counts_.untracked_total = untracked_.total();

  handshake_.summary = summarize(fine_handshake_);
  port_search_.summary = summarize(fine_port_search_);
  connect_syscall_.summary = summarize(fine_connect_);
  out.handshake = handshake_;
  out.port_search = port_search_;
  out.connect_syscall = connect_syscall_;
  for (Distribution* d : {&handshake_, &port_search_, &connect_syscall_}) {
    d->interval.clear();
    d->summary = {};
  }
  fine_handshake_.clear();
  fine_port_search_.clear();
  fine_connect_.clear();
}

void DestinationTable::prune(uint64_t now) {
  const uint64_t idle = static_cast<uint64_t>(lim_.idle_s * 1e9);
  if (now < idle) return;
  for (auto it = rows_.begin(); it != rows_.end();) {
    Destination* d = it->second.get();
    if (d->last_activity_ns + idle < now && d->stats.connecting + d->stats.open + d->stats.time_wait == 0) {
      for (auto p = by_partial_.begin(); p != by_partial_.end();)
        p = p->second == d ? by_partial_.erase(p) : std::next(p);
      own_count_ -= d->own_row();
      it = rows_.erase(it);
    } else {
      ++it;
    }
  }
  untracked_.prune(now, idle);
}

std::vector<uint32_t> DestinationTable::netns() const {
  std::set<uint32_t> out;
  for (const auto& [k, d] : rows_) out.insert(k.netns);
  return {out.begin(), out.end()};
}

}  // namespace connscope
