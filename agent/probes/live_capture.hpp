// The live event source shared by `run` and `record`: plans and loads the
// BPF programs, drains the ring buffer, runs the namespace survey, reads the
// loss counters, and hands everything to a sink on the calling thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "aggregate/snapshot.hpp"
#include "host/host_survey.hpp"
#include "probes/capture_config.hpp"
#include "probes/loader.hpp"
#include "probes/plan.hpp"

namespace connscope {

class CaptureSink {
 public:
  virtual ~CaptureSink() = default;
  virtual void raw_event(uint64_t ts_ns, std::span<const uint8_t> bytes) = 0;
  virtual void survey(SurveyBatch&& batch) = 0;
  virtual void losses(uint64_t ts_ns, const LossCounters& totals) = 0;
  // Called after every ring-buffer poll (at least every 100 ms).
  virtual void tick(uint64_t now_ns) = 0;
};

class LiveCapture {
 public:
  // Plans and attaches; throws std::runtime_error with a one-line reason.
  LiveCapture(const CommonOptions& common, const CaptureOptions& capture, SurveyConfig survey, bool all_states = false);
  ~LiveCapture();
  LiveCapture(const LiveCapture&) = delete;
  LiveCapture& operator=(const LiveCapture&) = delete;

  std::vector<StrategyInUse> strategies() const;
  std::string strategies_line() const;
  size_t attached_links() const;

  // Runs until `stop` is set or the capture's --duration passes.
  void run(CaptureSink& sink, const std::atomic<bool>& stop);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Installs SIGINT/SIGTERM handlers that set the returned flag.
const std::atomic<bool>& install_stop_signals();

}  // namespace connscope
