// The run engine: records into the aggregator, intervals closed by event time, alerts, replay.
#include "aggregate/run_engine.hpp"

#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <thread>

#include "events/event_decoder.hpp"
#include "record/recording.hpp"

namespace connscope {

RunEngine::RunEngine(const EngineConfig& cfg, SnapshotFn on_snapshot)
    : cfg_(cfg),
      on_snapshot_(std::move(on_snapshot)),
      agg_(cfg.aggregator, cfg.alerts),
      alerts_(cfg.alerts),
      interval_ns_(static_cast<uint64_t>(cfg.interval_s * 1e9)) {}

void RunEngine::start(uint64_t mono_ns, double unix_s) {
  start_mono_ns_ = mono_ns ? mono_ns : 1;
  start_unix_s_ = unix_s;
  next_end_ns_ = start_mono_ns_ + interval_ns_;
  last_close_ns_ = start_mono_ns_;
  agg_.start(start_mono_ns_);
}

void RunEngine::raw_event(std::span<const uint8_t> bytes) {
  std::string error;
  if (auto ev = decode_event(bytes, &error)) {
    agg_.on_event(*ev);
  } else {
    agg_.on_decode_error();
    if (++decode_errors_ <= 5) fprintf(stderr, "connscope: undecodable record: %s\n", error.c_str());
  }
}

void RunEngine::census(uint64_t ts_ns, uint32_t netns, const std::vector<SocketRecord>& sockets, CensusScope scope) {
  if (cfg_.reconcile_interval_s > 0) agg_.reconcile(netns, sockets, ts_ns, scope);
}

void RunEngine::survey(const SurveyBatch& b) {
  for (const auto& [ts, s] : b.settings) settings(s);
  for (const auto& l : b.listeners) listeners(l.ts_ns, l.netns, l.listeners);
  for (const auto& c : b.census) census(c.ts_ns, c.netns, c.sockets, c.scope);
}

void RunEngine::close(uint64_t end_ns) {
  const double unix_s = start_unix_s_ + static_cast<double>(end_ns - start_mono_ns_) / 1e9;
  Snapshot s = agg_.close_interval(end_ns, unix_s);
  std::vector<Alert> changed = alerts_.evaluate(s);
  last_close_ns_ = end_ns;
  snapshots_++;
  alert_changes_ += changed.size();
  if (on_snapshot_) on_snapshot_(s, changed);
}

void RunEngine::advance_to(uint64_t now_ns) {
  if (!started()) return;
  while (now_ns >= next_end_ns_) {
    close(next_end_ns_);
    next_end_ns_ += interval_ns_;
  }
  agg_.advance(now_ns);
}

void RunEngine::finish(uint64_t now_ns) {
  if (!started()) return;
  advance_to(now_ns);
  if (now_ns > last_close_ns_) close(now_ns);
}

uint64_t replay_recording(const std::string& path, bool realtime, RunEngine& engine, const std::atomic<bool>& stop,
                          const std::function<void(const RecordingMeta&)>& on_meta) {
  RecordingReader reader(path);
  uint64_t events = 0, last_ts = 0;
  const auto wall_start = std::chrono::steady_clock::now();
  uint64_t rec_start = 0;
  bool ended = false;
  while (!stop) {
    std::optional<RecordingItem> item = reader.next();
    if (!item) break;
    if (auto* meta = std::get_if<RecordingMeta>(&*item)) {
      engine.set_strategies(meta->strategies);
      if (on_meta) on_meta(*meta);
      engine.start(meta->start_mono_ns, meta->start_unix_s);
      rec_start = meta->start_mono_ns;
      continue;
    }
    if (!engine.started()) throw std::runtime_error("recording " + path + " has no meta frame at its start");
    const uint64_t ts = recording_item_ts(*item);
    if (realtime && ts > rec_start) {
      auto due = wall_start + std::chrono::nanoseconds(ts - rec_start);
      while (!stop && std::chrono::steady_clock::now() < due)
        std::this_thread::sleep_until(std::min(due, std::chrono::steady_clock::now() + std::chrono::milliseconds(100)));
    }
    if (ts > last_ts) {
      engine.advance_to(ts);
      last_ts = ts;
    }
    std::visit(
        [&](auto& x) {
          using T = std::decay_t<decltype(x)>;
          if constexpr (std::is_same_v<T, RecordedEvent>) {
            engine.raw_event(x.bytes);
            events++;
          } else if constexpr (std::is_same_v<T, RecordedSettings>) {
            engine.settings(x.settings);
          } else if constexpr (std::is_same_v<T, RecordedListeners>) {
            engine.listeners(x.ts_ns, x.netns, x.listeners);
          } else if constexpr (std::is_same_v<T, RecordedCensus>) {
            engine.census(x.ts_ns, x.netns, x.sockets, x.scope);
          } else if constexpr (std::is_same_v<T, RecordedLosses>) {
            engine.losses(x.losses);
          } else if constexpr (std::is_same_v<T, RecordedEnd>) {
            ended = true;
          }
        },
        *item);
  }
  if (!engine.started()) throw std::runtime_error("recording " + path + " is empty");
  engine.finish(last_ts);
  if (!ended && !stop)
    fprintf(stderr, "connscope: %s ends without an end frame (the recorder was killed?): replayed what is there\n",
            path.c_str());
  return events;
}

}  // namespace connscope
