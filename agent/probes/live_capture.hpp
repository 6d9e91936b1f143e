// The one live capture loop, shared by `trace`, `run` and `record` (each a
// sink over it): plans and loads the BPF programs, drains the ring buffer,
// runs the namespace survey, reads the loss counters, and hands everything to
// a sink on the calling thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

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
  // Called once when the capture stops, after the last records and the final
  // survey poll, with the final loss counters.
  virtual void finish(uint64_t now_ns, const LossCounters& totals) {
    losses(now_ns, totals);
    tick(now_ns);
  }
};

class LiveCapture {
 public:
  // Plans and attaches; throws std::runtime_error with a one-line reason.
  LiveCapture(const CommonOptions& common, const CaptureOptions& capture, SurveyConfig survey, bool all_states = false);
  ~LiveCapture();
  LiveCapture(const LiveCapture&) = delete;
  LiveCapture& operator=(const LiveCapture&) = delete;

  // The strategy each family uses, after any fall-back at load time.
  const std::vector<FamilyChoice>& choices() const;
  std::string strategies_line() const;  // "connect=fallback port_alloc=fallback ..."
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
