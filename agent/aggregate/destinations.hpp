// The per-destination table: one row per (netns, source address,
// destination address, destination port) with connect attempts, failures by
// errno, retransmits by TCP state, latencies, the busiest processes and the
// ports it holds (kept by the port table); destinations beyond
// --top-destinations fold into one `other` row, and rows idle for
// --destination-idle with no ports held are dropped. Also the latency
// distributions over all destinations.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <tuple>
#include <vector>

#include "aggregate/flow_key.hpp"
#include "aggregate/folded_keys.hpp"
#include "aggregate/histogram.hpp"
#include "aggregate/snapshot.hpp"
#include "host/host_settings.hpp"

namespace connscope {

struct Destination {
  DestinationStats stats;
  LogLinearHistogram fine_handshake, fine_port_search, fine_connect;
  std::map<uint32_t, ProcessShare> procs;
  uint64_t last_activity_ns = 0;
  uint16_t range_lo = 0, range_hi = 0;  // from port_alloc records
  bool loopback = false;
  uint32_t tw_recent = 0;  // TIME_WAIT entered within the reuse delay: counted by the port table at close
};

class DestinationTable {
 public:
  DestinationTable(size_t top_destinations, double idle_s);

  // The row of a destination, created when new (or `other` when every slot
  // is taken); nullptr for one not tracked when !create.
  Destination* resolve(uint32_t netns, uint16_t family, const Addr& saddr, const Addr& daddr, uint16_t dport,
                       uint64_t ts, bool create = true);
  Destination* resolve(const cs_flow& f, uint64_t ts, bool create = true);

  void note_process(Destination& d, const cs_task& t);
  void note_error(Destination& d, int err);
  void note_retransmit(Destination& d, uint8_t tcp_state);
  void record_connect_syscall(Destination& d, uint64_t ns);
  void record_port_search(Destination& d, uint64_t ns);
  void record_handshake(Destination& d, uint64_t ns);

  // The interval's rows (slot rows by activity, then `other` if it has ever
  // been used) and the all-destination latencies into `out`; restarts the
  // interval counters.
  void close(double interval_s, const std::map<uint32_t, NetnsSettings>& settings, Snapshot& out);
  // Drops rows idle for the idle time that hold no ports, and folded keys as old.
  void prune(uint64_t now);

  size_t size() const { return rows_.size(); }
  uint64_t folded_total() const { return folded_.total(); }
  // Namespaces with rows.
  std::vector<uint32_t> netns() const;
  // Namespaces any lookup has named.
  const std::set<uint32_t>& netns_seen() const { return netns_seen_; }

 private:
  DestinationStats finish(Destination& d, double interval_s, const std::map<uint32_t, NetnsSettings>& settings);

  size_t top_;
  double idle_s_;
  std::map<DestinationKey, std::unique_ptr<Destination>> rows_;
  std::map<std::tuple<uint32_t, uint16_t, Addr, uint16_t>, Destination*> by_partial_;  // (netns, family, daddr, dport)
  FoldedKeys<DestinationKey> folded_;
  Destination other_;
  std::set<uint32_t> netns_seen_;

  Distribution handshake_{HeatmapMetric::handshake};
  Distribution port_search_{HeatmapMetric::port_search};
  Distribution connect_syscall_{HeatmapMetric::connect_syscall};
  LogLinearHistogram fine_handshake_, fine_port_search_, fine_connect_;
};

}  // namespace connscope
