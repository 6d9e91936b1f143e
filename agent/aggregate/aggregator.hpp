// Turns the decoded event stream into per-interval snapshots: destination
// and listener tables with bounded cardinality (an `other` row), ports in
// use per destination by state (TIME_WAIT expiring after 60 s, as the
// kernel's), latency distributions and heatmap frames, the port-exhaustion
// model. Single-threaded and clock-free: time is what callers pass in
// (event timestamps, CLOCK_MONOTONIC), so a replay gives the same result at
// any speed.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <unordered_map>
#include <vector>

#include "aggregate/engine_config.hpp"
#include "aggregate/histogram.hpp"
#include "aggregate/snapshot.hpp"
#include "events/event_decoder.hpp"
#include "events/losses.hpp"
#include "host/host_settings.hpp"
#include "host/listener_poller.hpp"
#include "host/socket_census.hpp"

namespace connscope {

// What a reconciliation changed.
struct ReconcileResult {
  uint64_t added = 0, removed = 0, restated = 0;
};

class Aggregator {
 public:
  explicit Aggregator(AggregatorConfig cfg);
  ~Aggregator();
  Aggregator(const Aggregator&) = delete;
  Aggregator& operator=(const Aggregator&) = delete;

  // The first interval starts here (monotonic ns).
  void start(uint64_t start_ns);
  void set_strategies(std::vector<StrategyInUse> s);
  void set_replay(bool replay);
  void set_netns_settings(const NetnsSettings& s);
  // Namespaces seen in events whose settings were never supplied.
  std::vector<uint32_t> netns_without_settings() const;
  // Namespaces with destinations tracked (to reconcile).
  std::vector<uint32_t> netns_with_destinations() const;

  void on_event(const Event& e);
  void on_decode_error();
  void on_losses(const LossCounters& totals);  // cumulative counters from the BPF side
  // One poll of a netns's listeners: accept-queue length samples.
  void on_listener_sample(uint32_t netns, const std::vector<ListenerInfo>& listeners, uint64_t ts_ns);
  // Compares the tracked sockets of every destination in `netns` with a
  // sock_diag dump taken at `dump_ts_ns` and corrects the table (sockets
  // touched by events after the dump are left alone). Sockets to untracked
  // destinations start being tracked when their local port is in the
  // netns's ephemeral range, their remote port is not, and the local port is
  // not a listening port.
  ReconcileResult reconcile(uint32_t netns, const std::vector<SocketRecord>& sockets, uint64_t dump_ts_ns);

  // Closes the interval ending at `end_ns` (monotonic) / `end_unix_s`.
  Snapshot close_interval(uint64_t end_ns, double end_unix_s);

  // Expires TIME_WAIT entries up to `now_ns` (close_interval does it too).
  void advance(uint64_t now_ns);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace connscope
