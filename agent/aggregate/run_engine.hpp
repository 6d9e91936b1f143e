// The heart of `connscope run`, shared by the live agent and `--replay`:
// decodes raw records into the aggregator, closes an interval every
// --interval of event time, evaluates alerts and hands each snapshot to the
// exporters. Time comes only from its callers (CLOCK_MONOTONIC ns), so a
// replay at maximum speed produces the same snapshots as the live run.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "aggregate/aggregator.hpp"
#include "aggregate/alerts.hpp"
#include "aggregate/engine_config.hpp"
#include "aggregate/snapshot.hpp"
#include "host/host_survey.hpp"

namespace connscope {

class RunEngine {
 public:
  using SnapshotFn = std::function<void(const Snapshot&, const std::vector<Alert>& changed)>;

  RunEngine(const EngineConfig& cfg, SnapshotFn on_snapshot);

  void set_strategies(std::vector<StrategyInUse> s) { agg_.set_strategies(std::move(s)); }
  void set_replay(bool r) { agg_.set_replay(r); }

  // The clock: interval ends are start + k * interval; unix time of an end
  // is start_unix + (end - start).
  void start(uint64_t mono_ns, double unix_s);
  bool started() const { return start_mono_ns_ != 0; }

  void raw_event(std::span<const uint8_t> bytes);
  void settings(const NetnsSettings& s) { agg_.set_netns_settings(s); }
  void listeners(uint64_t ts_ns, uint32_t netns, const std::vector<ListenerInfo>& l) {
    agg_.on_listener_sample(netns, l, ts_ns);
  }
  void census(uint64_t ts_ns, uint32_t netns, const std::vector<SocketRecord>& sockets, CensusScope scope = {});
  void losses(const LossCounters& totals) { agg_.on_losses(totals); }
  void survey(const SurveyBatch& b);

  // Closes every interval that ended at or before now_ns.
  void advance_to(uint64_t now_ns);
  // Closes the last, partial interval at now_ns.
  void finish(uint64_t now_ns);

  uint64_t snapshots() const { return snapshots_; }
  uint64_t alert_changes() const { return alert_changes_; }  // alerts fired or resolved, printed or not (-q)
  uint64_t decode_errors() const { return decode_errors_; }

 private:
  void close(uint64_t end_ns);

  EngineConfig cfg_;
  SnapshotFn on_snapshot_;
  Aggregator agg_;
  AlertEngine alerts_;
  uint64_t interval_ns_;
  uint64_t start_mono_ns_ = 0;
  double start_unix_s_ = 0;
  uint64_t next_end_ns_ = 0;
  uint64_t last_close_ns_ = 0;
  uint64_t snapshots_ = 0;
  uint64_t alert_changes_ = 0;
  uint64_t decode_errors_ = 0;
};

struct RecordingMeta;
// Feeds a recording (connscope record) through the engine: at maximum speed,
// or at the recorded pace when `realtime`. Returns the number of events.
// Throws std::runtime_error for a file that is not a recording or is corrupt.
uint64_t replay_recording(const std::string& path, bool realtime, RunEngine& engine, const std::atomic<bool>& stop,
                          const std::function<void(const RecordingMeta&)>& on_meta = {});

}  // namespace connscope
