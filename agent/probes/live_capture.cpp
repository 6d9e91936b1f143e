// The one live capture loop: ring buffer, survey and loss counters into a sink.
#include "probes/live_capture.hpp"

#include <bpf/libbpf.h>
#include <signal.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "util/clock.hpp"

namespace connscope {
namespace {

std::atomic<bool> g_stop{false};
void on_signal(int) { g_stop = true; }

struct RingBufferDeleter {
  void operator()(ring_buffer* rb) const { ring_buffer__free(rb); }
};

struct RingContext {
  CaptureSink* sink = nullptr;
};

int on_record(void* ctx, void* data, size_t size) {
  auto* c = static_cast<RingContext*>(ctx);
  uint64_t ts = 0;
  if (size >= sizeof(cs_header)) std::memcpy(&ts, static_cast<const uint8_t*>(data) + offsetof(cs_header, ts_ns), 8);
  c->sink->raw_event(ts, {static_cast<const uint8_t*>(data), size});
  return 0;
}

}  // namespace

const std::atomic<bool>& install_stop_signals() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  return g_stop;
}

struct LiveCapture::Impl {
  Plan plan;
  std::unique_ptr<BpfProbes> probes;
  CaptureOptions capture;
  SurveyConfig survey_cfg;
  RingContext ring_ctx;
  std::unique_ptr<ring_buffer, RingBufferDeleter> rb;
};

LiveCapture::LiveCapture(const CommonOptions& common, const CaptureOptions& capture, SurveyConfig survey,
                         bool all_states)
    : impl_(std::make_unique<Impl>()) {
  impl_->capture = capture;
  impl_->plan = plan_strategies(common, true);
  LoaderConfig cfg;
  cfg.filter = capture.filter;
  cfg.ringbuf_bytes = capture.ringbuf_bytes;
  cfg.btf_path = common.btf_path;
  cfg.cgroup2_path = impl_->plan.features.cgroup2_path;
  cfg.all_states = all_states;
  impl_->probes = load_plan(impl_->plan, cfg, common);
  impl_->rb.reset(ring_buffer__new(impl_->probes->ringbuf_fd(), on_record, &impl_->ring_ctx, nullptr));
  if (!impl_->rb) throw std::runtime_error("cannot open the ring buffer: " + std::string(strerror(errno)));
  survey.netns_filter = capture.filter.netns;
  survey.interval_s = capture.poll_interval_s;
  survey.accept_queue_fallback =
      std::any_of(impl_->plan.choices.begin(), impl_->plan.choices.end(),
                  [](const FamilyChoice& c) { return c.family == Family::accept_queue && c.tier == Tier::fallback; });
  impl_->survey_cfg = survey;
}

LiveCapture::~LiveCapture() = default;

const std::vector<FamilyChoice>& LiveCapture::choices() const { return impl_->plan.choices; }

std::string LiveCapture::strategies_line() const {
  std::string s;
  for (const auto& c : impl_->plan.choices)
    if (c.tier)
      s += (s.empty() ? "" : " ") + std::string(family_name(c.family)) + "=" +
           std::string(strategy_name(c.family, *c.tier));
  return s;
}

size_t LiveCapture::attached_links() const { return impl_->probes->attached_links(); }

namespace {
constexpr int kDrainMs = 100;  // the reader's timer
}  // namespace

void LiveCapture::run(CaptureSink& sink, const std::atomic<bool>& stop) {
  impl_->ring_ctx.sink = &sink;
  HostSurvey survey(impl_->survey_cfg);
  auto drain_survey = [&](SurveyBatch b) {
    // Accept-queue records from the poll travel as raw records, like the
    // BPF ones, so a recording replays them the same way.
    for (const cs_accept_queue_event& e : b.accept_queue)
      sink.raw_event(e.h.ts_ns, {reinterpret_cast<const uint8_t*>(&e), sizeof e});
    b.accept_queue.clear();
    if (!b.empty()) sink.survey(std::move(b));
  };
  const uint64_t start = monotonic_now_ns();
  const double duration = impl_->capture.duration_s;
  const uint64_t deadline = duration > 0 ? start + static_cast<uint64_t>(duration * 1e9) : 0;
  uint64_t next_loss_check = start;
  uint64_t lost_before = 0;
  while (!stop) {
    // The programs submit without a wakeup until an eighth of the ring
    // waits (cs_rb_wakeup_bytes): the agent wakes on that or on this
    // 100 ms timeout, and drains whatever waits either way. A busy host
    // costs ~10 wakeups a second plus one per eighth of the ring filled,
    // not one per record; records wait <= 100 ms, snapshots are per
    // interval.
    int n = ring_buffer__poll(impl_->rb.get(), kDrainMs);
    if (n < 0 && n != -EINTR) throw std::runtime_error("ring buffer poll failed: " + std::string(strerror(-n)));
    n = ring_buffer__consume(impl_->rb.get());
    if (n < 0 && n != -EINTR) throw std::runtime_error("ring buffer read failed: " + std::string(strerror(-n)));
    drain_survey(survey.take());
    const uint64_t now = monotonic_now_ns();
    if (now >= next_loss_check) {
      next_loss_check = now + 1000000000ull;
      const LossCounters l = impl_->probes->read_losses();
      // A lost record may have been a close: the next census looks at
      // every socket, not only TIME_WAIT.
      if (l.lost_total + l.map_full > lost_before) survey.request_full_census();
      lost_before = l.lost_total + l.map_full;
      sink.losses(now, l);
    }
    sink.tick(now);
    if (deadline && now >= deadline) break;
  }
  ring_buffer__consume(impl_->rb.get());
  survey.final_poll();
  drain_survey(survey.take());
  sink.finish(monotonic_now_ns(), impl_->probes->read_losses());
}

}  // namespace connscope
