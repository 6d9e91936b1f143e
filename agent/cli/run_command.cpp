// `connscope run`: the agent. Live (BPF) or from a recording (--replay).
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <thread>

#include "aggregate/run_engine.hpp"
#include "cli/commands.hpp"
#include "cli/version.hpp"
#include "export/http_server.hpp"
#include "export/json_lines.hpp"
#include "export/prometheus_text.hpp"
#include "probes/live_capture.hpp"
#include "record/recording.hpp"
#include "util/clock.hpp"

namespace connscope {
namespace {

class EngineSink : public CaptureSink {
 public:
  explicit EngineSink(RunEngine& e) : engine_(e) {}
  // Intervals close by event time, as in a replay: a record stamped after
  // an interval's end goes to the next one even when the ring-buffer poll
  // that delivered it returned after the end.
  void raw_event(uint64_t ts_ns, std::span<const uint8_t> bytes) override {
    if (ts_ns) engine_.advance_to(ts_ns);
    engine_.raw_event(bytes);
  }
  void survey(SurveyBatch&& b) override { engine_.survey(b); }
  void losses(uint64_t, const LossCounters& totals) override { engine_.losses(totals); }
  void tick(uint64_t now_ns) override { engine_.advance_to(now_ns); }

 private:
  RunEngine& engine_;
};

}  // namespace

int run_run(const CommonOptions& common, const RunOptions& opts) {
  const std::atomic<bool>& stop = install_stop_signals();
  // A bad --replay file fails before any output is created.
  if (!opts.replay.empty()) RecordingReader check(opts.replay);
  std::unique_ptr<JsonLinesWriter> json_lines;
  if (!opts.json_out.empty()) json_lines = std::make_unique<JsonLinesWriter>(opts.json_out);
  std::unique_ptr<Publication> pub;
  if (opts.http) pub = std::make_unique<Publication>(build_info(), opts.engine.interval_s, opts.history_s);

  AlertLog alert_log;
  EngineConfig cfg = opts.engine;
  // The agent's own scrapes are not the host's traffic (a replay has none).
  if (opts.http && opts.replay.empty() && !opts.watch_self)
    cfg.aggregator.self = self_endpoint(opts.listen_host, opts.listen_port);
  RunEngine engine(cfg, [&](const Snapshot& s, const std::vector<Alert>& changed) {
    if (pub) pub->publish(s);
    if (json_lines) json_lines->write(s);
    for (const std::string& n : s.notices) fprintf(stderr, "connscope: %s\n", n.c_str());
    if (!opts.quiet)
      for (const std::string& line : alert_log.lines(changed, s.alerts)) fprintf(stderr, "%s\n", line.c_str());
  });

  std::unique_ptr<HttpServer> http;
  if (pub) {
    HttpLimits limits;
    limits.cors_origin = opts.cors_origin;
    http = std::make_unique<HttpServer>(*pub, opts.listen_host, opts.listen_port, limits);
  }
  const std::string where = http ? "metrics at http://" + http->address() + "/metrics, snapshot at http://" +
                                       http->address() + "/api/v1/snapshot, alerts at http://" + http->address() +
                                       "/api/v1/alerts"
                                 : std::string("HTTP off");

  if (!opts.replay.empty()) {
    engine.set_replay(true);
    fprintf(stderr, "connscope: replaying %s (%s speed); %s\n", opts.replay.c_str(),
            opts.replay_realtime ? "recorded" : "maximum", where.c_str());
    uint64_t events = replay_recording(opts.replay, opts.replay_realtime, engine, stop, [&](const RecordingMeta& m) {
      if (pub) pub->set_strategies(m.strategies);
    });
    fprintf(stderr, "connscope: replayed %llu events into %llu snapshots, %llu alert changes, %llu undecodable\n",
            static_cast<unsigned long long>(events), static_cast<unsigned long long>(engine.snapshots()),
            static_cast<unsigned long long>(engine.alert_changes()),
            static_cast<unsigned long long>(engine.decode_errors()));
    if (http && !stop) {
      fprintf(stderr, "connscope: replay done; serving its final state at http://%s (Ctrl-C to stop)\n",
              http->address().c_str());
      const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(opts.duration_s);
      while (!stop && (opts.duration_s <= 0 || std::chrono::steady_clock::now() < until))
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return 0;
  }

  SurveyConfig survey;
  survey.census_interval_s = opts.engine.reconcile_interval_s;
  survey.listener_owners = true;  // live only: a recording keeps no owners, a replay has no /proc
  LiveCapture capture(common, opts, survey);
  print_unknown_netns_note(opts.filter.netns);
  engine.set_strategies(strategies_in_use(capture.choices()));
  if (pub) pub->set_strategies(strategies_in_use(capture.choices()));
  fprintf(stderr,
          "connscope: running (%s), %zu programs attached, watching %s, a snapshot every %gs; %s%s; Ctrl-C to stop\n",
          capture.strategies_line().c_str(), capture.attached_links(), describe_filter(opts.filter).c_str(),
          opts.engine.interval_s, where.c_str(),
          opts.json_out.empty() ? "" : (", JSON lines to " + opts.json_out).c_str());
  EngineSink sink(engine);
  engine.start(monotonic_now_ns(), unix_now_s());
  capture.run(sink, stop);
  engine.finish(monotonic_now_ns());
  fprintf(stderr, "connscope: %llu snapshots, %llu alert changes, %llu undecodable records\n",
          static_cast<unsigned long long>(engine.snapshots()), static_cast<unsigned long long>(engine.alert_changes()),
          static_cast<unsigned long long>(engine.decode_errors()));
  return 0;
}

}  // namespace connscope
