// Prometheus text exposition format 0.0.4 of a Snapshot, as specified in
// docs/metrics.md: HELP and TYPE once per family, families never interleaved,
// classic histograms with cumulative `le` buckets ending in +Inf == _count
// and _sum in base units (seconds, ratio). No NaN is ever written: a gauge
// whose value is not finite is left out.
#pragma once

#include <string>
#include <vector>

#include "aggregate/snapshot.hpp"

namespace connscope {

struct BuildInfo {
  std::string version, kernel;
};

// Every family of docs/metrics.md for the snapshot.
std::string render_prometheus(const Snapshot& s, const BuildInfo& build);

// What /metrics serves before the first interval closes: connscope_build_info
// and connscope_strategy_info only.
std::string render_prometheus_info(const BuildInfo& build, const std::vector<StrategyInUse>& strategies);

// Appends a label value with \\, \" and \n escaped.
void append_label_value(std::string& out, std::string_view value);

// Recorded-unit per base-unit of a heatmap metric: 1e9 (nanoseconds per
// second) for the latencies, 1000 (per-mille per ratio) for the queue fill.
double heatmap_value_scale(HeatmapMetric m);

}  // namespace connscope
