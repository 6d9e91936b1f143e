// Names of the snapshot model's enumerations (heatmap metrics, alert severity, state, target).
#include "aggregate/snapshot.hpp"

namespace connscope {

const char* heatmap_metric_name(HeatmapMetric m) {
  switch (m) {
    case HeatmapMetric::handshake:
      return "handshake";
    case HeatmapMetric::port_search:
      return "port_search";
    case HeatmapMetric::connect_syscall:
      return "connect_syscall";
    case HeatmapMetric::accept_queue_fill:
      return "accept_queue_fill";
  }
  return "?";
}

std::optional<HeatmapMetric> heatmap_metric_from_name(const std::string& name) {
  for (HeatmapMetric m : kHeatmapMetrics)
    if (name == heatmap_metric_name(m)) return m;
  return std::nullopt;
}

const char* severity_name(Severity s) { return s == Severity::critical ? "critical" : "warning"; }

const char* alert_state_name(AlertState s) { return s == AlertState::resolved ? "resolved" : "firing"; }

const char* target_kind_name(TargetKind k) {
  switch (k) {
    case TargetKind::destination:
      return "destination";
    case TargetKind::listener:
      return "listener";
    case TargetKind::agent:
      return "agent";
  }
  return "?";
}

const BucketLayout& heatmap_layout(HeatmapMetric m) {
  return m == HeatmapMetric::accept_queue_fill ? fill_layout() : latency_layout();
}

}  // namespace connscope
