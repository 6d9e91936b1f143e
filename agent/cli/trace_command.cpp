// `connscope trace`: load the probes, stream decoded events, account for
// every loss, detach cleanly on SIGINT/SIGTERM/--duration.
#include <bpf/libbpf.h>
#include <signal.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <utility>

#include "cli/commands.hpp"
#include "events/event_decoder.hpp"
#include "events/event_format.hpp"
#include "host/listener_poller.hpp"
#include "probes/loader.hpp"

namespace connscope {
namespace {

std::atomic<bool> stop_requested{false};

void on_signal(int) { stop_requested = true; }

uint64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

struct FileCloser {
  void operator()(FILE* f) const {
    if (f && f != stdout) fclose(f);
  }
};

struct RingBufferDeleter {
  void operator()(ring_buffer* rb) const { ring_buffer__free(rb); }
};

// Formats events into a buffer and writes it out in large chunks.
class EventSink {
 public:
  EventSink(FILE* out, bool json) : out_(out), json_(json) { buf_.reserve(1 << 17); }
  void event(const Event& e) {
    if (json_)
      append_event_json(buf_, e);
    else
      append_event_text(buf_, e);
    events_++;
    if (buf_.size() > (1 << 16)) flush();
  }
  void loss(const LossCounters& l, bool final) {
    if (json_) {
      append_loss_json(buf_, l, monotonic_ns(), final);
    } else {
      buf_ += "loss: " + std::to_string(l.lost_total) + " events lost (ring buffer full), " +
              std::to_string(l.map_full) + " per-socket state updates refused (map full)\n";
    }
    flush();
  }
  void decode_error(const std::string& what) {
    decode_errors_++;
    if (decode_errors_ <= 5) fprintf(stderr, "connscope: undecodable record: %s\n", what.c_str());
  }
  void flush() {
    if (!buf_.empty() && fwrite(buf_.data(), 1, buf_.size(), out_) != buf_.size())
      throw std::runtime_error("writing events failed (disk full or closed pipe?)");
    buf_.clear();
    fflush(out_);
  }
  uint64_t events() const { return events_; }
  uint64_t decode_errors() const { return decode_errors_; }

 private:
  FILE* out_;
  bool json_;
  std::string buf_;
  uint64_t events_ = 0;
  uint64_t decode_errors_ = 0;
};

int on_ringbuf_record(void* ctx, void* data, size_t size) {
  auto* sink = static_cast<EventSink*>(ctx);
  std::string error;
  if (auto ev = decode_event({static_cast<const uint8_t*>(data), size}, &error))
    sink->event(*ev);
  else
    sink->decode_error(error);
  return 0;
}

// Runs the accept-queue fallback poll on its own thread (it setns()es).
class PollerThread {
 public:
  PollerThread(uint32_t netns_filter, double interval_s)
      : poller_([this](const cs_accept_queue_event& e) { pending_.push_back(e); }, netns_filter),
        interval_(std::chrono::duration<double>(interval_s)) {
    thread_ = std::thread([this] { loop(); });
  }
  ~PollerThread() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  std::vector<cs_accept_queue_event> take() {
    std::lock_guard lock(mu_);
    return std::exchange(ready_, {});
  }
  // One more poll now, so overflows just before exit are not missed.
  void final_poll() {
    std::unique_lock lock(mu_);
    final_requested_ = true;
    cv_.notify_all();
    cv_.wait(lock, [this] { return !final_requested_ || failed_; });
  }

 private:
  void loop() {
    std::unique_lock lock(mu_);
    while (!stop_) {
      lock.unlock();
      std::string error;
      bool ok = poller_.poll_once(&error);
      lock.lock();
      for (auto& e : pending_) ready_.push_back(e);
      pending_.clear();
      if (!ok) {
        fprintf(stderr, "connscope: accept-queue poll stopped: %s\n", error.c_str());
        failed_ = true;
        cv_.notify_all();
        return;
      }
      if (final_requested_) {
        final_requested_ = false;
        cv_.notify_all();
      }
      cv_.wait_for(lock, interval_, [this] { return stop_ || final_requested_; });
    }
  }
  std::vector<cs_accept_queue_event> pending_;  // filled by poller_ on the poll thread
  ListenerPoller poller_;
  std::chrono::duration<double> interval_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<cs_accept_queue_event> ready_;
  bool stop_ = false;
  bool final_requested_ = false;
  bool failed_ = false;
  std::thread thread_;
};

std::string strategies_line(const std::vector<FamilyChoice>& choices) {
  std::string s;
  for (const auto& c : choices)
    s += (s.empty() ? "" : " ") + std::string(family_name(c.family)) + "=" +
         std::string(strategy_name(c.family, *c.tier));
  return s;
}

}  // namespace

int run_trace(const CommonOptions& common, const TraceOptions& opts) {
  std::unique_ptr<FILE, FileCloser> out(stdout);
  if (opts.output != "-") {
    out.reset(fopen(opts.output.c_str(), "w"));
    if (!out) throw std::runtime_error("cannot open --output " + opts.output + ": " + strerror(errno));
  }
  Plan plan = plan_strategies(common, true);

  LoaderConfig cfg;
  cfg.filter = opts.filter;
  cfg.ringbuf_bytes = opts.ringbuf_bytes;
  cfg.btf_path = common.btf_path;
  cfg.cgroup2_path = plan.features.cgroup2_path;
  cfg.all_states = opts.all_states;
  std::unique_ptr<BpfProbes> loaded = load_plan(plan, cfg, common);
  BpfProbes& probes = *loaded;

  EventSink sink(out.get(), opts.json);
  std::unique_ptr<ring_buffer, RingBufferDeleter> rb(
      ring_buffer__new(probes.ringbuf_fd(), on_ringbuf_record, &sink, nullptr));
  if (!rb) throw std::runtime_error("cannot open the ring buffer: " + std::string(strerror(errno)));

  std::unique_ptr<PollerThread> poller;
  const bool aq_fallback = std::any_of(plan.choices.begin(), plan.choices.end(), [](const FamilyChoice& c) {
    return c.family == Family::accept_queue && c.tier == Tier::fallback;
  });
  if (aq_fallback) poller = std::make_unique<PollerThread>(opts.filter.netns, opts.poll_interval_s);

  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  fprintf(stderr, "connscope: tracing (%s), %zu programs attached; Ctrl-C to stop\n",
          strategies_line(plan.choices).c_str(), probes.attached_links());

  const uint64_t start = monotonic_ns();
  const uint64_t deadline = opts.duration_s > 0 ? start + static_cast<uint64_t>(opts.duration_s * 1e9) : 0;
  uint64_t next_loss_check = start + 1000000000ull;
  LossCounters reported{};
  while (!stop_requested) {
    int n = ring_buffer__poll(rb.get(), 100);
    if (n < 0 && n != -EINTR) throw std::runtime_error("ring buffer poll failed: " + std::string(strerror(-n)));
    if (poller)
      for (const auto& e : poller->take()) sink.event(Event{e});
    // One write per batch: readers see events within a poll, not a second.
    if (n > 0) sink.flush();
    uint64_t now = monotonic_ns();
    if (now >= next_loss_check) {
      next_loss_check = now + 1000000000ull;
      LossCounters l = probes.read_losses();
      if (l.lost_total != reported.lost_total || l.map_full != reported.map_full) {
        sink.loss(l, false);
        fprintf(stderr, "connscope: %llu events lost so far (ring buffer full; raise --ringbuf-size)\n",
                static_cast<unsigned long long>(l.lost_total));
        reported = l;
      }
      sink.flush();
    }
    if (deadline && now >= deadline) break;
  }
  ring_buffer__consume(rb.get());
  if (poller) {
    poller->final_poll();
    for (const auto& e : poller->take()) sink.event(Event{e});
  }
  LossCounters final_loss = probes.read_losses();
  sink.loss(final_loss, true);
  fprintf(stderr, "connscope: %llu events, %llu lost (ring buffer full), %llu map-full, %llu undecodable\n",
          static_cast<unsigned long long>(sink.events()), static_cast<unsigned long long>(final_loss.lost_total),
          static_cast<unsigned long long>(final_loss.map_full), static_cast<unsigned long long>(sink.decode_errors()));
  return 0;
}

}  // namespace connscope
