// Turns the decoded event stream into per-interval snapshots. A thin
// coordinator: each record goes to the tables it concerns, the destinations
// (destinations.hpp), the listeners (listeners.hpp) and the ports in use
// (port_table.hpp); sock_diag censuses correct them (reconcile.hpp); closing
// an interval collects their rows and the agent's health. Single-threaded
// and clock-free: time is what callers pass in (event timestamps,
// CLOCK_MONOTONIC), so a replay gives the same result at any speed.
#pragma once

#include <cstdint>
#include <map>
#include <vector>

#include "aggregate/destinations.hpp"
#include "aggregate/engine_config.hpp"
#include "aggregate/listeners.hpp"
#include "aggregate/port_table.hpp"
#include "aggregate/reconcile.hpp"
#include "aggregate/snapshot.hpp"
#include "events/event_decoder.hpp"
#include "events/losses.hpp"
#include "host/host_settings.hpp"
#include "host/listener_poller.hpp"
#include "host/socket_census.hpp"

namespace connscope {

class Aggregator {
 public:
  // `levels`: the alert thresholds that make a destination at risk (its own
  // row whatever the number of others).
  explicit Aggregator(AggregatorConfig cfg, const AlertThresholds& levels = {});
  Aggregator(const Aggregator&) = delete;
  Aggregator& operator=(const Aggregator&) = delete;

  // The first interval starts here (monotonic ns).
  void start(uint64_t start_ns) { last_end_ns_ = start_ns; }
  void set_strategies(std::vector<StrategyInUse> s) { health_.strategies = std::move(s); }
  void set_replay(bool replay) { health_.replay = replay; }
  void set_netns_settings(const NetnsSettings& s) { settings_[s.netns] = s; }
  // Namespaces seen in events whose settings were never supplied.
  std::vector<uint32_t> netns_without_settings() const;
  // Namespaces with destinations tracked (to reconcile).
  std::vector<uint32_t> netns_with_destinations() const { return destinations_.netns(); }

  void on_event(const Event& e);
  void on_decode_error() { health_.decode_errors_total++; }
  void on_losses(const LossCounters& totals);  // cumulative counters from the BPF side
  // One poll of a netns's listeners: accept-queue length samples.
  void on_listener_sample(uint32_t netns, const std::vector<ListenerInfo>& listeners, uint64_t ts_ns);
  // Corrects the ports in use towards `netns`'s destinations from a
  // sock_diag dump taken at `dump_ts_ns` that held the sockets of `scope`
  // (Reconciler::reconcile).
  ReconcileResult reconcile(uint32_t netns, const std::vector<SocketRecord>& sockets, uint64_t dump_ts_ns,
                            CensusScope scope = {});

  // Closes the interval ending at `end_ns` (monotonic) / `end_unix_s`.
  Snapshot close_interval(uint64_t end_ns, double end_unix_s);

  // Expires TIME_WAIT entries up to `now_ns` (close_interval does it too).
  void advance(uint64_t now_ns) { ports_.expire_time_wait(now_ns); }

 private:
  void on_connect(const cs_connect_event& e);
  void on_port_alloc(const cs_port_alloc_event& e);
  void on_state(const cs_state_event& e);
  void on_retransmit(const cs_retransmit_event& e);
  void on_accept_queue(const cs_accept_queue_event& e);
  const NetnsSettings* settings_of(uint32_t netns) const;
  // The agent's own HTTP traffic (cfg.self), at either end.
  bool is_self(uint32_t netns, uint16_t family, const uint8_t* addr, uint16_t port) const;
  bool is_self(const cs_flow& f) const {
    return is_self(f.netns, f.family, f.daddr, f.dport) || is_self(f.netns, f.family, f.saddr, f.sport);
  }

  DestinationTable destinations_;
  ListenerTable listeners_;
  PortTable ports_;
  Reconciler reconciler_{destinations_, listeners_, ports_};
  std::map<uint32_t, NetnsSettings> settings_;
  AgentHealth health_;
  uint64_t lost_reported_ = 0;
  bool folding_noticed_ = false, untracked_noticed_ = false;
  size_t top_destinations_, max_destinations_;
  SelfEndpoint self_;
  uint64_t seq_ = 0;
  uint64_t last_end_ns_ = 0;
};

}  // namespace connscope
