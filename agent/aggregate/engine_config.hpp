// What aggregation and alerting are configured with: the Aggregator's table
// bounds and the RunEngine's interval, reconciliation and alert thresholds.
// The CLI maps `run`'s flags onto these; nothing here knows about flags.
#pragma once

#include <cstddef>

#include "aggregate/alerts.hpp"

namespace connscope {

struct AggregatorConfig {
  size_t top_destinations = 256;  // rows of their own; the rest fold into `other`
  size_t top_listeners = 256;
  size_t max_sockets = 1u << 20;    // tracked sockets (ports in use); beyond: counted, not tracked
  double destination_idle_s = 300;  // a row with no activity and no ports held for this long is dropped
};

struct EngineConfig {
  double interval_s = 1.0;          // one snapshot, heatmap frame and alert evaluation per interval of event time
  double reconcile_interval_s = 5;  // sock_diag census corrections of the ports in use; 0 = off
  AggregatorConfig aggregator;
  AlertThresholds alerts;
};

}  // namespace connscope
