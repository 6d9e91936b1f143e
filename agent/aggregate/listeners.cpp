// The per-listener table (listeners.hpp).
#include "aggregate/listeners.hpp"

#include <algorithm>
#include <iterator>

#include "util/address.hpp"

namespace connscope {

ListenerTable::ListenerTable(size_t top_listeners, double idle_s) : top_(top_listeners), idle_s_(idle_s) {
  other_.stats.other = true;
  other_.stats.listen = "other";
  unattributed_.stats.other = true;
  unattributed_.stats.listen = "unattributed";
}

Listener* ListenerTable::resolve(uint32_t netns, uint16_t family, const Addr& addr, uint16_t port, uint64_t ts) {
  if (family == 0) return &unattributed_;
  add_listen_port(netns, port);
  ListenerKey key{netns, family, {}, port};
  if (auto it = rows_.find(key); it != rows_.end()) return it->second.get();
  // Unlike a destination's, a folded listener's last-seen time stays that of
  // its first fold.
  if (folded_.contains(key)) return &other_;
  if (rows_.size() >= top_) {
    folded_.add(key, ts);
    return &other_;
  }
  auto l = std::make_unique<Listener>();
  l->stats.key = key;
  l->stats.key.addr = addr;
  l->stats.listen = format_endpoint(family, addr, port);
  l->last_activity_ns = ts;
  return rows_.emplace(key, std::move(l)).first->second.get();
}

void ListenerTable::queue_sample(Listener& l, uint32_t len, uint32_t max_backlog) {
  ListenerStats& s = l.stats;
  s.queue_len = len;
  s.max_backlog = max_backlog;
  s.queue_peak = std::max(s.queue_peak, len);
  const uint64_t permille = max_backlog ? static_cast<uint64_t>(len) * 1000 / max_backlog : (len ? UINT64_MAX : 0);
  s.fill.interval.record(permille);
  s.fill.total.record(permille);
  fill_.interval.record(permille);
  fill_.total.record(permille);
}

void ListenerTable::on_sample(uint32_t netns, const std::vector<ListenerInfo>& ls, uint64_t ts_ns) {
  auto& ports = listen_ports_[netns];
  for (const ListenerInfo& info : ls) {
    ports.insert(info.port);
    Listener* l = resolve(netns, info.family, info.addr, info.port, ts_ns);
    if (!l->stats.other && l->stats.key.addr != info.addr) {
      // Rows first seen in events know only the port: take the bound address.
      l->stats.key.addr = info.addr;
      l->stats.listen = format_endpoint(info.family, info.addr, info.port);
    }
    // An owner not (yet) found does not erase the one known: a lookup in
    // progress, or a process whose fds became unreadable, keeps the name.
    if (!l->stats.other && !info.owner.empty()) l->stats.process = info.owner;
    l->last_sample_ns = ts_ns;
    queue_sample(*l, info.queue_len, info.max_backlog);
  }
}

bool ListenerTable::is_listen_port(uint32_t netns, uint16_t port) const {
  auto it = listen_ports_.find(netns);
  return it != listen_ports_.end() && it->second.count(port);
}

ListenerStats ListenerTable::finish(Listener& l, double interval_s) {
  ListenerStats& s = l.stats;
  s.accept_rate = interval_s > 0 ? static_cast<double>(s.accepts) / interval_s : 0;
  ListenerStats out = s;
  s.overflows = s.drops = s.synack_retransmits = s.accepts = s.data_retransmits = 0;
  s.queue_peak = s.queue_len;
  s.fill.interval.clear();
  return out;
}

void ListenerTable::close(double interval_s, Snapshot& out) {
  for (auto& [k, l] : rows_) out.listeners.push_back(finish(*l, interval_s));
  for (Listener* l : {&other_, &unattributed_}) {
    const ListenerStats& ls = l->stats;
    if (ls.overflows_total || ls.drops_total || ls.synack_retransmits_total || ls.accepts_total ||
        ls.fill.total.count() || ls.data_retransmits_total)
      out.listeners.push_back(finish(*l, interval_s));
  }
  out.accept_queue_fill = fill_;
  fill_.interval.clear();
  fill_.summary = {};
}

void ListenerTable::prune(uint64_t now) {
  const uint64_t idle = static_cast<uint64_t>(idle_s_ * 1e9);
  if (now < idle) return;
  for (auto it = rows_.begin(); it != rows_.end();) {
    Listener* l = it->second.get();
    const uint64_t last = std::max(l->last_activity_ns, l->last_sample_ns);
    it = last + idle < now ? rows_.erase(it) : std::next(it);
  }
  folded_.prune(now, idle);
}

}  // namespace connscope
