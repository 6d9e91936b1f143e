// Recent heatmap frames for /api/v1/heatmap: one frame per closed interval,
// kept for a retention period, served as rows Grafana's Infinity data source
// turns into a heatmap:
//   [{"time": <unix ms>, "1e-06": n, ..., "10": n, "+Inf": n}, ...]
//
// Storage per interval: the overall frame of every metric (dense, ~640 bytes)
// and, sparsely, the non-zero buckets of each destination's latency frames and
// each listener's fill frame (12 bytes per non-zero bucket). Scope names are
// interned and kept while a retained frame holds a bucket of theirs or their
// row was in a snapshot within the retention (idle rows are known, not
// stored per frame), so memory is bounded by the retention. Dropping old
// frames is O(1) amortized (deque pop_front), plus one pass over the names.
// Not thread-safe: Publication serializes access.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "aggregate/snapshot.hpp"

namespace connscope {

// Which frames a heatmap query reads: the overall frame, one destination (by
// its dst label, optionally narrowed by netns and src; several matching rows
// are summed), or one listener (by its listen label, optionally by netns).
struct HeatmapScope {
  enum class Kind { overall, destination, listener };
  Kind kind = Kind::overall;
  std::string label;  // dst or listen label
  std::optional<uint32_t> netns;
  std::optional<std::string> src;  // destinations only

  static HeatmapScope overall() { return {}; }
  static HeatmapScope destination(std::string dst, std::optional<uint32_t> netns = std::nullopt,
                                  std::optional<std::string> src = std::nullopt) {
    return {Kind::destination, std::move(dst), netns, std::move(src)};
  }
  static HeatmapScope listener(std::string listen, std::optional<uint32_t> netns = std::nullopt) {
    return {Kind::listener, std::move(listen), netns, std::nullopt};
  }
};

// Per-destination frames exist for the latencies, per-listener frames for
// accept_queue_fill; every metric has an overall frame.
bool heatmap_scope_has_metric(HeatmapScope::Kind kind, HeatmapMetric m);

// The numbers behind rows(): one row per retained interval in the window,
// oldest first; counts is row-major, labels.size() per row.
struct HeatmapRows {
  std::vector<std::string> labels;  // the layout's bucket labels, "+Inf" last
  std::vector<int64_t> times_ms;
  std::vector<uint64_t> counts;
  // The scope's row was in a snapshot within the window (the newest one
  // included), idle or not. Always true for the overall scope.
  bool seen = true;
};
nlohmann::ordered_json heatmap_rows_json(const HeatmapRows& rows);

class HeatmapHistory {
 public:
  explicit HeatmapHistory(double retention_s);

  // Appends the snapshot's frames and drops those older than the retention
  // (relative to this snapshot's timestamp). A snapshot not newer than the
  // last one (clock stepped back, replay restarted) first drops the frames
  // at or after its timestamp.
  void add(const Snapshot& s);

  // Rows for the frames with timestamp > newest - window_s. A scope that has
  // no frame in an interval, or no frames for the metric at all, gives zero
  // rows; rows.seen says whether it existed in the window at all.
  HeatmapRows collect(HeatmapMetric m, double window_s, const HeatmapScope& scope) const;
  nlohmann::ordered_json rows(HeatmapMetric m, double window_s, const HeatmapScope& scope) const {
    return heatmap_rows_json(collect(m, window_s, scope));
  }

  double retention_s() const { return retention_s_; }
  size_t frame_count() const { return frames_.size(); }
  size_t scope_count() const { return scope_index_.size(); }  // interned names in use

 private:
  struct Cell {
    uint32_t scope;
    uint8_t metric;
    uint8_t bucket;
    uint32_t count;  // saturating
  };
  struct Frame {
    double timestamp = 0;
    std::vector<uint64_t> overall;  // every metric's buckets, concatenated in kHeatmapMetrics order
    std::vector<Cell> cells;
  };
  // (listener?, netns, src, label)
  using ScopeKey = std::tuple<bool, uint32_t, std::string, std::string>;
  struct ScopeEntry {
    ScopeKey key;
    uint64_t refs = 0;     // cells in retained frames
    double last_seen = 0;  // timestamp of the newest snapshot that had the row
  };

  uint32_t intern(bool listener, uint32_t netns, const std::string& src, const std::string& label);
  void add_cells(Frame& f, uint32_t scope, const Distribution& d);
  void drop(const Frame& f);
  void release_unseen(double horizon);

  double retention_s_;
  std::deque<Frame> frames_;
  std::vector<ScopeEntry> scopes_;
  std::vector<uint32_t> free_scopes_;
  std::map<ScopeKey, uint32_t> scope_index_;
};

// Durations for query parameters and flags: a non-negative number of seconds
// with an optional unit: "300", "300s", "5m", "1h", "1.5s", "500ms", "2d".
// nullopt for anything else (empty, negative, unknown unit, not finite).
std::optional<double> parse_duration(std::string_view text);

}  // namespace connscope
