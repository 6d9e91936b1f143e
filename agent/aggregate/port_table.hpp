// The port/socket table: every outgoing socket holding an ephemeral port, by
// 4-tuple in its netns, with its state (connecting, open, TIME_WAIT) and the
// destination whose ports-in-use counts it adds to. TIME_WAIT entries expire
// 60 s after they entered it, as the kernel's; beyond --max-sockets entries
// new sockets are counted as untracked instead.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <unordered_map>

#include "aggregate/destinations.hpp"
#include "aggregate/flow_key.hpp"
#include "host/host_settings.hpp"

namespace connscope {

// Indexes the per-state arrays (ReconcileResult corrections).
enum class PortState : uint8_t { connecting, open, time_wait };
inline constexpr size_t kPortStates = 3;
// "connecting", "open", "time_wait"
const char* port_state_name(PortState s);

struct SockEntry {
  Destination* dest;
  PortState state;
  // The last reconciliation whose dump held it (in the padding): bookkeeping
  // of the reconciler, no counter depends on it, hence mutable.
  mutable uint32_t census_mark = 0;
  uint64_t updated_ns;
  uint64_t tw_expires;  // TIME_WAIT ends (monotonic ns)
};

class PortTable {
 public:
  explicit PortTable(size_t max_sockets) : max_sockets_(max_sockets) {}

  const SockEntry* find(const SockKey& key) const;
  // Marks an entry as held by reconciliation `mark`; false if not tracked.
  bool set_census_mark(const SockKey& key, uint32_t mark);
  bool contains(const SockKey& key) const { return socks_.count(key) != 0; }
  // Tracks `key` in `state` towards `d` (inserting it when new); a TIME_WAIT
  // entry expires at `tw_expires`, or 60 s from `ts` when 0. Returns false
  // if the table is full.
  bool set(const SockKey& key, Destination* d, PortState state, uint64_t ts, uint64_t tw_expires = 0);
  void erase(const SockKey& key);
  // Erases every entry for which pred(key, entry) is true.
  template <class Pred>
  void erase_if(Pred pred) {
    for (auto it = socks_.begin(); it != socks_.end();)
      if (pred(it->first, it->second))
        erase(it++);
      else
        ++it;
  }

  // Ends TIME_WAIT entries up to `now`.
  void expire_time_wait(uint64_t now);
  // Counts into each destination's tw_recent (which closing its interval
  // resets) its sockets that entered TIME_WAIT less than the netns's
  // tcp_tw_reuse_delay (1 s when unknown) before `now`.
  void count_recent_time_wait(uint64_t now, const std::map<uint32_t, NetnsSettings>& settings);

  uint64_t untracked_total() const { return untracked_total_; }

 private:
  using Map = std::unordered_map<SockKey, SockEntry, SockKeyHash>;
  void erase(Map::iterator it);

  size_t max_sockets_;
  Map socks_;
  // (tw_expires, key): ordered, since a reconciliation inserts entries that
  // expire before the newest ones.
  std::multimap<uint64_t, SockKey> tw_queue_;
  uint64_t untracked_total_ = 0;
};

}  // namespace connscope
