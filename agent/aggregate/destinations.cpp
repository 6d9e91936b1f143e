// The per-destination table (destinations.hpp).
#include "aggregate/destinations.hpp"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <iterator>
#include <string>

#include "aggregate/port_model.hpp"
#include "events/event_format.hpp"
#include "util/address.hpp"

namespace connscope {
namespace {

constexpr size_t kMaxProcessesPerDestination = 16;

bool is_zero(const Addr& a) {
  return std::all_of(a.begin(), a.end(), [](uint8_t b) { return b == 0; });
}

std::string state_label(int state) {
  std::string s = tcp_state_name(state);
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

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

DestinationTable::DestinationTable(size_t top_destinations, double idle_s) : top_(top_destinations), idle_s_(idle_s) {
  other_.stats.other = true;
  other_.stats.dst = "other";
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
  if (folded_.touch(key, ts)) return &other_;
  if (rows_.size() >= top_) {
    folded_.add(key, ts);
    return &other_;
  }
  auto d = std::make_unique<Destination>();
  d->stats.key = key;
  d->stats.src = format_address(family, saddr.data());
  d->stats.dst = format_endpoint(family, daddr, dport);
  d->loopback = is_loopback(family, saddr) || is_loopback(family, daddr);
  d->last_activity_ns = ts;
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

void DestinationTable::note_error(Destination& d, int err) {
  std::string name = errno_name(err);
  d.stats.errors[name]++;
  d.stats.errors_total[name]++;
}

void DestinationTable::note_retransmit(Destination& d, uint8_t tcp_state) {
  std::string state = state_label(tcp_state);
  d.stats.retransmits[state]++;
  d.stats.retransmits_total[state]++;
}

void DestinationTable::record_connect_syscall(Destination& d, uint64_t ns) {
  record_latency(d.stats.connect_syscall, d.fine_connect, ns);
  record_latency(connect_syscall_, fine_connect_, ns);
}

void DestinationTable::record_port_search(Destination& d, uint64_t ns) {
  record_latency(d.stats.port_search, d.fine_port_search, ns);
  record_latency(port_search_, fine_port_search_, ns);
}

void DestinationTable::record_handshake(Destination& d, uint64_t ns) {
  record_latency(d.stats.handshake, d.fine_handshake, ns);
  record_latency(handshake_, fine_handshake_, ns);
}

DestinationStats DestinationTable::finish(Destination& d, double interval_s,
                                          const std::map<uint32_t, NetnsSettings>& settings) {
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
  d.tw_recent = 0;
  return out;
}

void DestinationTable::close(double interval_s, const std::map<uint32_t, NetnsSettings>& settings, Snapshot& out) {
  std::vector<Destination*> rows;
  for (auto& [k, d] : rows_) rows.push_back(d.get());
  std::sort(rows.begin(), rows.end(), [](const Destination* a, const Destination* b) {
    if (a->stats.attempts != b->stats.attempts) return a->stats.attempts > b->stats.attempts;
    uint32_t ua = a->stats.connecting + a->stats.open + a->stats.time_wait;
    uint32_t ub = b->stats.connecting + b->stats.open + b->stats.time_wait;
    if (ua != ub) return ua > ub;
    return a->stats.key < b->stats.key;
  });
  for (Destination* d : rows) out.destinations.push_back(finish(*d, interval_s, settings));
  const DestinationStats& o = other_.stats;
  const bool other_active = o.attempts_total || o.connecting || o.open || o.time_wait || !o.retransmits_total.empty();
  if (other_active) out.destinations.push_back(finish(other_, interval_s, settings));
  other_.tw_recent = 0;

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
  const uint64_t idle = static_cast<uint64_t>(idle_s_ * 1e9);
  if (now < idle) return;
  for (auto it = rows_.begin(); it != rows_.end();) {
    Destination* d = it->second.get();
    if (d->last_activity_ns + idle < now && d->stats.connecting + d->stats.open + d->stats.time_wait == 0) {
      for (auto p = by_partial_.begin(); p != by_partial_.end();)
        p = p->second == d ? by_partial_.erase(p) : std::next(p);
      it = rows_.erase(it);
    } else {
      ++it;
    }
  }
  folded_.prune(now, idle);
}

std::vector<uint32_t> DestinationTable::netns() const {
  std::set<uint32_t> out;
  for (const auto& [k, d] : rows_) out.insert(k.netns);
  return {out.begin(), out.end()};
}

}  // namespace connscope
