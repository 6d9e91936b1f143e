// `connscope record`: the raw event stream, with what the model needs to
// replay it (namespace sysctls, listener samples, socket census, losses).
#include <time.h>

#include <cstdio>

#include "cli/commands.hpp"
#include "export/prometheus_text.hpp"
#include "probes/live_capture.hpp"
#include "record/recording.hpp"
#include "util/clock.hpp"

namespace connscope {
namespace {

class RecordSink : public CaptureSink {
 public:
  explicit RecordSink(RecordingWriter& w) : w_(w) {}
  void raw_event(uint64_t ts_ns, std::span<const uint8_t> bytes) override {
    w_.event(ts_ns, bytes);
    events_++;
  }
  void survey(SurveyBatch&& b) override {
    for (const auto& [ts, s] : b.settings) w_.settings(ts, s);
    for (const auto& l : b.listeners) w_.listeners(l.ts_ns, l.netns, l.listeners);
    for (const auto& c : b.census) w_.census(c.ts_ns, c.netns, c.sockets, c.scope);
  }
  void losses(uint64_t ts_ns, const LossCounters& totals) override {
    if (totals.lost_total != last_.lost_total || totals.map_full != last_.map_full || first_) {
      w_.losses(ts_ns, totals);
      last_ = totals;
      first_ = false;
    }
  }
  void tick(uint64_t now_ns) override {
    if (now_ns >= next_flush_) {
      w_.flush();
      next_flush_ = now_ns + 1000000000ull;
    }
  }
  uint64_t events() const { return events_; }
  const LossCounters& last_losses() const { return last_; }

 private:
  RecordingWriter& w_;
  uint64_t events_ = 0;
  uint64_t next_flush_ = 0;
  LossCounters last_{};
  bool first_ = true;
};

}  // namespace

int run_record(const CommonOptions& common, const RecordOptions& opts) {
  const std::atomic<bool>& stop = install_stop_signals();
  SurveyConfig survey;
  survey.census_interval_s = opts.census_interval_s;
  LiveCapture capture(common, opts, survey);
  print_unknown_netns_note(opts.filter.netns);
  RecordingWriter writer(opts.out);
  RecordingMeta meta;
  const BuildInfo b = build_info();
  meta.version = b.version;
  meta.kernel = b.kernel;
  meta.strategies = strategies_in_use(capture.choices());
  meta.start_mono_ns = monotonic_now_ns();
  meta.start_unix_s = unix_now_s();
  writer.meta(meta);
  fprintf(stderr, "connscope: recording to %s (%s), watching %s; Ctrl-C to stop\n", opts.out.c_str(),
          capture.strategies_line().c_str(), describe_filter(opts.filter).c_str());
  RecordSink sink(writer);
  capture.run(sink, stop);
  writer.end(monotonic_now_ns());
  fprintf(stderr, "connscope: recorded %llu events (%llu frames), %llu lost, to %s\n",
          static_cast<unsigned long long>(sink.events()), static_cast<unsigned long long>(writer.frames()),
          static_cast<unsigned long long>(sink.last_losses().lost_total), opts.out.c_str());
  return 0;
}

}  // namespace connscope
