// `connscope trace`: decoded events, one per line, as a sink over the one
// live capture loop; every loss is accounted for.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>

#include "cli/commands.hpp"
#include "events/event_decoder.hpp"
#include "events/event_format.hpp"
#include "probes/live_capture.hpp"

namespace connscope {
namespace {

struct FileCloser {
  void operator()(FILE* f) const {
    if (f && f != stdout) fclose(f);
  }
};

// Formats events into a buffer and writes it out once per ring-buffer batch.
class TraceSink : public CaptureSink {
 public:
  TraceSink(FILE* out, bool json, WallClock clock) : out_(out), json_(json), clock_(clock) { buf_.reserve(1 << 17); }

  void raw_event(uint64_t, std::span<const uint8_t> bytes) override {
    std::string error;
    if (auto ev = decode_event(bytes, &error)) {
      if (json_)
        append_event_json(buf_, *ev, clock_);
      else
        append_event_text(buf_, *ev, clock_);
      events_++;
      if (buf_.size() > (1 << 16)) flush();
    } else {
      decode_errors_++;
      if (decode_errors_ <= 5) fprintf(stderr, "connscope: undecodable record: %s\n", error.c_str());
    }
  }
  void survey(SurveyBatch&&) override {}
  // Reported when they change (the capture reads them every second).
  void losses(uint64_t now_ns, const LossCounters& l) override {
    if (l.lost_total == reported_.lost_total && l.map_full == reported_.map_full) return;
    loss_line(now_ns, l, false);
    fprintf(stderr, "connscope: %llu events lost so far (ring buffer full; raise --ringbuf-size)\n",
            static_cast<unsigned long long>(l.lost_total));
    reported_ = l;
  }
  // One write per batch: readers see events within a poll, not a second.
  void tick(uint64_t) override { flush(); }
  void finish(uint64_t now_ns, const LossCounters& l) override {
    loss_line(now_ns, l, true);
    final_ = l;
  }

  uint64_t events() const { return events_; }
  uint64_t decode_errors() const { return decode_errors_; }
  const LossCounters& final_losses() const { return final_; }

 private:
  // JSON lines carry loss records in the stream (docs/trace-json.md); the
  // text stream holds events only, its losses go to stderr.
  void loss_line(uint64_t now_ns, const LossCounters& l, bool final) {
    if (json_) append_loss_json(buf_, l, now_ns, final, clock_);
    flush();
    if (json_ || final) return;  // text: the exit summary gives the final counts
    fprintf(stderr,
            "connscope: loss: %llu events lost (ring buffer full), %llu per-socket state updates refused (map full)\n",
            static_cast<unsigned long long>(l.lost_total), static_cast<unsigned long long>(l.map_full));
  }
  void flush() {
    if (!buf_.empty() && fwrite(buf_.data(), 1, buf_.size(), out_) != buf_.size())
      throw std::runtime_error("writing events failed (disk full or closed pipe?)");
    buf_.clear();
    fflush(out_);
  }

  FILE* out_;
  bool json_;
  WallClock clock_;
  std::string buf_;
  uint64_t events_ = 0;
  uint64_t decode_errors_ = 0;
  LossCounters reported_{};
  LossCounters final_{};
};

}  // namespace

int run_trace(const CommonOptions& common, const TraceOptions& opts) {
  std::unique_ptr<FILE, FileCloser> out(stdout);
  if (opts.output != "-") {
    out.reset(fopen(opts.output.c_str(), "w"));
    if (!out) throw std::runtime_error("cannot open --output " + opts.output + ": " + strerror(errno));
  }
  const std::atomic<bool>& stop = install_stop_signals();
  // The survey only polls listeners where BPF cannot see accept-queue overflows.
  SurveyConfig survey;
  survey.settings = false;
  survey.listeners = false;
  LiveCapture capture(common, opts, survey, opts.all_states);
  print_unknown_netns_note(opts.filter.netns);
  fprintf(stderr, "connscope: tracing (%s), %zu programs attached, watching %s; Ctrl-C to stop\n",
          capture.strategies_line().c_str(), capture.attached_links(), describe_filter(opts.filter).c_str());
  // One offset for the whole trace: event times stay in order if the system clock steps.
  TraceSink sink(out.get(), opts.json, WallClock::now());
  capture.run(sink, stop);
  const LossCounters& final_loss = sink.final_losses();
  fprintf(stderr, "connscope: %llu events, %llu lost (ring buffer full), %llu map-full, %llu undecodable\n",
          static_cast<unsigned long long>(sink.events()), static_cast<unsigned long long>(final_loss.lost_total),
          static_cast<unsigned long long>(final_loss.map_full), static_cast<unsigned long long>(sink.decode_errors()));
  return 0;
}

}  // namespace connscope
