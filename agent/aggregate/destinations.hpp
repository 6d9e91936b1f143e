// The per-destination table: one row per (netns, source address,
// destination address, destination port) with connect attempts, failures by
// errno, retransmits by TCP state, latencies, the busiest processes and the
// ports it holds (kept by the port table). Rows by risk: every destination
// seen (up to --max-destinations) keeps what risk needs (ports held, rate,
// errors, the exhaustion model); at each close the --top-destinations at
// most risk, then the busiest, get their own row in the snapshot (with
// fine latency summaries), and the rest are summed into one `other` row. A
// destination at risk (errors, utilization at the warning level, a connect
// rate above sustainable, exhaustion within the horizon) always gets its
// own row while slots last. Rows idle for --destination-idle with no ports
// held are dropped. Also the latency distributions over all destinations.
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

// The fine latency histograms behind a row's p50/p90/p99: only rows with
// their own row in the snapshot carry them (4.5 KiB each).
struct DestinationDetail {
  LogLinearHistogram handshake, port_search, connect;
};

struct Destination {
  DestinationStats stats;
  std::unique_ptr<DestinationDetail> detail;  // set while the row has its own row
  std::map<uint32_t, ProcessShare> procs;
  uint64_t last_activity_ns = 0;
  uint16_t range_lo = 0, range_hi = 0;  // from port_alloc records
  bool loopback = false;
  uint32_t tw_recent = 0;  // TIME_WAIT entered within the reuse delay: counted by the port table at close
  uint32_t risk_hold = 0;  // closes left in which the row still counts as at risk
  bool own_row() const { return detail != nullptr; }
};

// What makes a destination "at risk" (the alert thresholds' levels) and the
// table's bounds.
struct DestinationLimits {
  size_t own_rows = 64;     // --top-destinations
  size_t max_rows = 16384;  // --max-destinations: tracked at all
  double idle_s = 300;      // --destination-idle
  double warn_utilization = 0.70;
  double horizon_s = 120;    // exhaustion within this many seconds
  uint32_t hold_closes = 7;  // a row stays at risk this many closes after its risk ends
};

// Rows and folding at the last close, for the agent's health.
struct DestinationCounts {
  uint64_t tracked = 0;          // rows in the table
  uint64_t own_rows = 0;         // rows with their own row in the snapshot
  uint64_t folded = 0;           // rows summed into `other`
  uint64_t at_risk = 0;          // rows at risk
  uint64_t at_risk_folded = 0;   // rows at risk beyond --top-destinations: summed into `other`
  uint64_t untracked_total = 0;  // destinations first seen while the table was full
};

class DestinationTable {
 public:
  explicit DestinationTable(const DestinationLimits& limits);

  // The row of a destination, created when new (or `other` when every slot
  // is taken); nullptr for one not tracked when !create.
  Destination* resolve(uint32_t netns, uint16_t family, const Addr& saddr, const Addr& daddr, uint16_t dport,
                       uint64_t ts, bool create = true);
  Destination* resolve(const cs_flow& f, uint64_t ts, bool create = true);

  void note_process(Destination& d, const cs_task& t);
  // A failed connect; `t` (may be null) is the process it failed in.
  void note_error(Destination& d, int err, const cs_task* t = nullptr);
  void note_retransmit(Destination& d, uint8_t tcp_state);
  void record_connect_syscall(Destination& d, uint64_t ns);
  void record_port_search(Destination& d, uint64_t ns);
  void record_handshake(Destination& d, uint64_t ns);

  // Chooses the rows of their own (at risk first, then the busiest, sticky
  // while active), puts them into `out` (at risk first, then by activity),
  // then `other` (the sum of the rest, if it has ever held anything) and the
  // all-destination latencies; restarts the interval counters.
  void close(double interval_s, uint64_t now, const std::map<uint32_t, NetnsSettings>& settings, Snapshot& out);
  // Drops rows idle for the idle time that hold no ports, and untracked keys as old.
  void prune(uint64_t now);

  size_t size() const { return rows_.size(); }
  const DestinationCounts& counts() const { return counts_; }
  // Namespaces with rows.
  std::vector<uint32_t> netns() const;
  // Namespaces any lookup has named.
  const std::set<uint32_t>& netns_seen() const { return netns_seen_; }

 private:
  void model(Destination& d, double interval_s, const std::map<uint32_t, NetnsSettings>& settings) const;
  bool at_risk(const Destination& d) const;
  void choose_own_rows(uint64_t now, std::vector<Destination*>& own);
  DestinationStats finish(Destination& d);
  void restart_interval(Destination& d);

  DestinationLimits lim_;
  std::map<DestinationKey, std::unique_ptr<Destination>> rows_;
  std::map<std::tuple<uint32_t, uint16_t, Addr, uint16_t>, Destination*> by_partial_;  // (netns, family, daddr, dport)
  FoldedKeys<DestinationKey> untracked_;  // seen while the table was full: counted in overflow_
  Destination overflow_;                  // the events of untracked destinations
  DestinationStats other_;                // the `other` row: cumulative totals of everything summed into it
  size_t own_count_ = 0;
  DestinationCounts counts_;
  std::set<uint32_t> netns_seen_;

  Distribution handshake_{HeatmapMetric::handshake};
  Distribution port_search_{HeatmapMetric::port_search};
  Distribution connect_syscall_{HeatmapMetric::connect_syscall};
  LogLinearHistogram fine_handshake_, fine_port_search_, fine_connect_;
};

}  // namespace connscope
