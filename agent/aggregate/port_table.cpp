// The port/socket table (port_table.hpp).
#include "aggregate/port_table.hpp"

#include <algorithm>

#include "aggregate/port_model.hpp"

namespace connscope {
namespace {

constexpr uint64_t kNsPerSec = 1000000000ull;

uint32_t& counter(Destination* d, PortState s) {
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

}  // namespace

const char* port_state_name(PortState s) {
  static constexpr const char* kNames[kPortStates] = {"connecting", "open", "time_wait"};
  return kNames[static_cast<size_t>(s)];
}

const SockEntry* PortTable::find(const SockKey& key) const {
  auto it = socks_.find(key);
  return it == socks_.end() ? nullptr : &it->second;
}

bool PortTable::set_census_mark(const SockKey& key, uint32_t mark) {
  auto it = socks_.find(key);
  if (it == socks_.end()) return false;
  it->second.census_mark = mark;
  return true;
}

bool PortTable::set(const SockKey& key, Destination* d, PortState state, uint64_t ts, uint64_t tw_expires) {
  auto it = socks_.find(key);
  if (it == socks_.end()) {
    if (socks_.size() >= max_sockets_) {
      untracked_total_++;
      return false;
    }
    it = socks_.emplace(key, SockEntry{d, state, 0, ts, 0}).first;
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
    tw_queue_.emplace(it->second.tw_expires, key);
  }
  return true;
}

void PortTable::erase(const SockKey& key) {
  if (auto it = socks_.find(key); it != socks_.end()) erase(it);
}

void PortTable::erase(Map::iterator it) {
  counter(it->second.dest, it->second.state)--;
  socks_.erase(it);
}

void PortTable::expire_time_wait(uint64_t now) {
  while (!tw_queue_.empty() && tw_queue_.begin()->first <= now) {
    auto [expires, key] = *tw_queue_.begin();
    tw_queue_.erase(tw_queue_.begin());
    auto it = socks_.find(key);
    if (it != socks_.end() && it->second.state == PortState::time_wait && it->second.tw_expires == expires) erase(it);
  }
}

void PortTable::count_recent_time_wait(uint64_t now, const std::map<uint32_t, NetnsSettings>& settings) {
  // The reuse delay is at most a few seconds: walk back from the newest.
  for (auto it = tw_queue_.rbegin(); it != tw_queue_.rend(); ++it) {
    // Entered TIME_WAIT at expires - 60 s.
    if (it->first + 10 * kNsPerSec < now + kTimeWaitNs) break;
    auto s = socks_.find(it->second);
    if (s == socks_.end() || s->second.state != PortState::time_wait || s->second.tw_expires != it->first) continue;
    uint64_t delay_ns = kNsPerSec;
    if (auto st = settings.find(it->second.netns); st != settings.end())
      delay_ns = static_cast<uint64_t>(std::max(1u, st->second.tw_reuse_delay_ms)) * 1000000ull;
    if (it->first + delay_ns > now + kTimeWaitNs) s->second.dest->tw_recent++;
  }
}

}  // namespace connscope
