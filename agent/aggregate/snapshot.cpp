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

const BucketLayout& heatmap_layout(HeatmapMetric m) {
  return m == HeatmapMetric::accept_queue_fill ? fill_layout() : latency_layout();
}

}  // namespace connscope
