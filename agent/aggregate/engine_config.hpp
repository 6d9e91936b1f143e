// What aggregation and alerting are configured with: the Aggregator's table
// bounds and the RunEngine's interval, reconciliation and alert thresholds.
// The CLI maps `run`'s flags onto these; nothing here knows about flags.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "aggregate/alerts.hpp"

namespace connscope {

// The agent's own HTTP endpoint, left out of the tables (its scrapes are not
// the host's traffic): port 0 = nothing left out; an all-zero address = any.
struct SelfEndpoint {
  uint32_t netns = 0;  // the agent's netns inode; 0 = any
  uint16_t family = 0;
  std::array<uint8_t, 16> addr{};
  uint16_t port = 0;
};

struct AggregatorConfig {
  size_t top_destinations = 64;     // rows of their own, at risk first; the rest are summed into `other`
  size_t max_destinations = 16384;  // destinations tracked at all (ports, rate, errors, model)
  size_t top_listeners = 256;
  size_t max_sockets = 1u << 20;    // tracked sockets (ports in use); beyond: counted, not tracked
  double destination_idle_s = 300;  // a row with no activity and no ports held for this long is dropped
  SelfEndpoint self;                // --watch-self clears it
};

struct EngineConfig {
  double interval_s = 1.0;          // one snapshot, heatmap frame and alert evaluation per interval of event time
  double reconcile_interval_s = 5;  // sock_diag census corrections of the ports in use; 0 = off
  AggregatorConfig aggregator;
  AlertThresholds alerts;
};

}  // namespace connscope
