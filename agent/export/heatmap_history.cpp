// The retained heatmap frames behind /api/v1/heatmap.
#include "export/heatmap_history.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <limits>

#include "export/snapshot_json.hpp"

namespace connscope {

namespace {

size_t metric_index(HeatmapMetric m) { return static_cast<size_t>(m); }

// Offset of each metric's buckets in Frame::overall, and the total size.
struct OverallOffsets {
  std::array<size_t, kHeatmapMetrics.size()> offset{};
  size_t total = 0;
  OverallOffsets() {
    for (HeatmapMetric m : kHeatmapMetrics) {
      offset[metric_index(m)] = total;
      total += heatmap_layout(m).size();
    }
  }
};

const OverallOffsets& overall_offsets() {
  static const OverallOffsets o;
  return o;
}

}  // namespace

bool heatmap_scope_has_metric(HeatmapScope::Kind kind, HeatmapMetric m) {
  switch (kind) {
    case HeatmapScope::Kind::overall:
      return true;
    case HeatmapScope::Kind::destination:
      return m != HeatmapMetric::accept_queue_fill;
    case HeatmapScope::Kind::listener:
      return m == HeatmapMetric::accept_queue_fill;
  }
  return false;
}

nlohmann::ordered_json heatmap_rows_json(const HeatmapRows& rows) {
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  const size_t width = rows.labels.size();
  for (size_t r = 0; r < rows.times_ms.size(); ++r) {
    nlohmann::ordered_json row = nlohmann::ordered_json::object();
    row["time"] = rows.times_ms[r];
    for (size_t b = 0; b < width; ++b) row[rows.labels[b]] = rows.counts[r * width + b];
    out.push_back(std::move(row));
  }
  return out;
}

HeatmapHistory::HeatmapHistory(double retention_s) : retention_s_(retention_s) {}

uint32_t HeatmapHistory::intern(bool listener, uint32_t netns, const std::string& src, const std::string& label) {
  ScopeKey key{listener, netns, src, label};
  auto it = scope_index_.find(key);
  if (it != scope_index_.end()) return it->second;
  uint32_t id = 0;
  if (!free_scopes_.empty()) {
    id = free_scopes_.back();
    free_scopes_.pop_back();
    scopes_[id] = ScopeEntry{key, 0};
  } else {
    id = static_cast<uint32_t>(scopes_.size());
    scopes_.push_back(ScopeEntry{key, 0});
  }
  scope_index_.emplace(std::move(key), id);
  return id;
}

void HeatmapHistory::add_cells(Frame& f, uint32_t scope, const Distribution& d) {
  const auto& counts = d.interval.counts();
  for (size_t b = 0; b < counts.size(); ++b) {
    if (counts[b] == 0) continue;
    const auto count = static_cast<uint32_t>(std::min<uint64_t>(counts[b], std::numeric_limits<uint32_t>::max()));
    f.cells.push_back(Cell{scope, static_cast<uint8_t>(metric_index(d.metric)), static_cast<uint8_t>(b), count});
    ++scopes_[scope].refs;
  }
}

// Cells only: a name outlives its last cell while its row stays recent
// (release_unseen decides).
void HeatmapHistory::drop(const Frame& f) {
  for (const Cell& c : f.cells) --scopes_[c.scope].refs;
}

void HeatmapHistory::release_unseen(double horizon) {
  for (auto it = scope_index_.begin(); it != scope_index_.end();) {
    ScopeEntry& e = scopes_[it->second];
    if (e.refs != 0 || e.last_seen > horizon) {
      ++it;
      continue;
    }
    free_scopes_.push_back(it->second);
    e = ScopeEntry{};
    it = scope_index_.erase(it);
  }
}

void HeatmapHistory::add(const Snapshot& s) {
  if (!frames_.empty() && frames_.back().timestamp >= s.timestamp) {
    while (!frames_.empty() && frames_.back().timestamp >= s.timestamp) {
      drop(frames_.back());
      frames_.pop_back();
    }
    // Rows last seen in a dropped frame count as seen in the newest frame
    // left (when they were seen before that is not kept): at worst such a
    // row stays known a little longer. With no frame left they go.
    const double newest = frames_.empty() ? -std::numeric_limits<double>::infinity() : frames_.back().timestamp;
    for (const auto& [key, id] : scope_index_) scopes_[id].last_seen = std::min(scopes_[id].last_seen, newest);
  }

  Frame f;
  f.timestamp = s.timestamp;
  const OverallOffsets& off = overall_offsets();
  f.overall.assign(off.total, 0);
  for (const Distribution* d : {&s.handshake, &s.port_search, &s.connect_syscall, &s.accept_queue_fill}) {
    const auto& counts = d->interval.counts();
    const size_t base = off.offset[metric_index(d->metric)];
    const size_t n = std::min(counts.size(), heatmap_layout(d->metric).size());
    std::copy_n(counts.begin(), n, f.overall.begin() + static_cast<std::ptrdiff_t>(base));
  }
  // Every row is interned, idle ones too, so a query can tell an idle
  // destination (zero rows) from one never seen (404).
  for (const auto& dest : s.destinations) {
    const uint32_t id = intern(false, dest.key.netns, dest.src, dest.dst);
    scopes_[id].last_seen = s.timestamp;
    for (const Distribution* d : {&dest.handshake, &dest.port_search, &dest.connect_syscall}) add_cells(f, id, *d);
  }
  for (const auto& l : s.listeners) {
    const uint32_t id = intern(true, l.key.netns, "", l.listen);
    scopes_[id].last_seen = s.timestamp;
    add_cells(f, id, l.fill);
  }
  f.cells.shrink_to_fit();
  frames_.push_back(std::move(f));

  const double horizon = s.timestamp - retention_s_;
  while (!frames_.empty() && frames_.front().timestamp <= horizon) {
    drop(frames_.front());
    frames_.pop_front();
  }
  release_unseen(horizon);
}

HeatmapRows HeatmapHistory::collect(HeatmapMetric m, double window_s, const HeatmapScope& scope) const {
  HeatmapRows rows;
  const BucketLayout& layout = heatmap_layout(m);
  const size_t width = layout.size();
  rows.labels.reserve(width);
  for (size_t b = 0; b < width; ++b) rows.labels.push_back(layout.label(b));
  const bool sparse = scope.kind != HeatmapScope::Kind::overall;
  rows.seen = !sparse;
  if (frames_.empty() || !(window_s > 0)) return rows;

  const double from = frames_.back().timestamp - window_s;
  auto first =
      std::upper_bound(frames_.begin(), frames_.end(), from, [](double t, const Frame& f) { return t < f.timestamp; });
  const auto n = static_cast<size_t>(frames_.end() - first);
  rows.times_ms.reserve(n);
  rows.counts.assign(n * width, 0);

  // Scope ids this query sums (sorted); an overall query reads the dense frames.
  std::vector<uint32_t> ids;
  if (sparse) {
    const bool listener = scope.kind == HeatmapScope::Kind::listener;
    for (const auto& [key, id] : scope_index_) {
      const auto& [is_listener, netns, src, label] = key;
      if (is_listener != listener || label != scope.label) continue;
      if (scope.netns && *scope.netns != netns) continue;
      if (!listener && scope.src && *scope.src != src) continue;
      if (scopes_[id].last_seen > from) rows.seen = true;
      ids.push_back(id);
    }
    if (!heatmap_scope_has_metric(scope.kind, m)) ids.clear();
    std::sort(ids.begin(), ids.end());
  }
  const auto metric = static_cast<uint8_t>(metric_index(m));
  const size_t offset = overall_offsets().offset[metric_index(m)];

  size_t r = 0;
  for (auto it = first; it != frames_.end(); ++it, ++r) {
    rows.times_ms.push_back(unix_ms(it->timestamp));
    uint64_t* row = rows.counts.data() + r * width;
    if (!sparse) {
      std::copy_n(it->overall.begin() + static_cast<std::ptrdiff_t>(offset), width, row);
      continue;
    }
    if (ids.empty()) continue;
    for (const Cell& c : it->cells)
      if (c.metric == metric && c.bucket < width && std::binary_search(ids.begin(), ids.end(), c.scope))
        row[c.bucket] += c.count;
  }
  return rows;
}

std::optional<double> parse_duration(std::string_view text) {
  if (text.empty() || !(std::isdigit(static_cast<unsigned char>(text.front())) || text.front() == '.'))
    return std::nullopt;
  double value = 0;
  const char* begin = text.data();
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(begin, end, value, std::chars_format::fixed);
  if (ec != std::errc() || !std::isfinite(value) || value < 0) return std::nullopt;
  const std::string_view unit(ptr, static_cast<size_t>(end - ptr));
  double scale = 0;
  if (unit.empty() || unit == "s")
    scale = 1;
  else if (unit == "ms")
    scale = 1e-3;
  else if (unit == "m")
    scale = 60;
  else if (unit == "h")
    scale = 3600;
  else if (unit == "d")
    scale = 86400;
  else
    return std::nullopt;
  const double seconds = value * scale;
  if (!std::isfinite(seconds)) return std::nullopt;
  return seconds;
}

}  // namespace connscope
