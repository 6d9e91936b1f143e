// The per-listener table: one row per (netns, family, port) with accepts,
// accept-queue samples, overflows, drops and SYN-ACK / data retransmits;
// listeners beyond --top-listeners fold into `other`, counts no listener can
// be named for go to `unattributed`. Also the listening ports per netns
// (sockets on them are accepted, not outgoing) and the accept-queue fill
// distribution over all listeners.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <vector>

#include "aggregate/flow_key.hpp"
#include "aggregate/folded_keys.hpp"
#include "aggregate/snapshot.hpp"
#include "host/listener_poller.hpp"

namespace connscope {

struct Listener {
  ListenerStats stats;
  uint64_t last_activity_ns = 0;
  uint64_t last_sample_ns = 0;
};

class ListenerTable {
 public:
  ListenerTable(size_t top_listeners, double idle_s);

  // The row of the listener on `port` (family 0: `unattributed`), created
  // when new (or `other` when every slot is taken); marks the port listening.
  Listener* resolve(uint32_t netns, uint16_t family, const Addr& addr, uint16_t port, uint64_t ts);
  // An accept-queue length sample.
  void queue_sample(Listener& l, uint32_t len, uint32_t max_backlog);
  // One poll of a netns's listeners.
  void on_sample(uint32_t netns, const std::vector<ListenerInfo>& listeners, uint64_t ts_ns);

  void add_listen_port(uint32_t netns, uint16_t port) { listen_ports_[netns].insert(port); }
  bool is_listen_port(uint32_t netns, uint16_t port) const;

  // The interval's rows (slot rows, then `other` and `unattributed` if ever
  // used) and the all-listener fill into `out`; restarts the interval counters.
  void close(double interval_s, Snapshot& out);
  // Drops rows neither active nor sampled for the idle time, and folded keys as old.
  void prune(uint64_t now);

  uint64_t folded_total() const { return folded_.total(); }

 private:
  static ListenerStats finish(Listener& l, double interval_s);

  size_t top_;
  double idle_s_;
  std::map<ListenerKey, std::unique_ptr<Listener>> rows_;
  FoldedKeys<ListenerKey> folded_;
  Listener other_, unattributed_;
  std::map<uint32_t, std::set<uint16_t>> listen_ports_;  // per netns
  Distribution fill_{HeatmapMetric::accept_queue_fill};
};

}  // namespace connscope
