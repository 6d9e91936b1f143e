// The user-space path of `connscope run` per event and per interval:
// decode + aggregate a real recorded event stream, close an interval with
// 256 busy destinations, render /metrics and the JSON snapshot.
#include <benchmark/benchmark.h>

#include <atomic>
#include <filesystem>
#include <string>
#include <vector>

#include "aggregate/aggregator.hpp"
#include "events/event_decoder.hpp"
#include "export/prometheus_text.hpp"
#include "record/recording.hpp"
#include "export/snapshot_json.hpp"

using namespace connscope;

namespace {

std::vector<std::vector<uint8_t>> recorded_events() {
  std::vector<std::vector<uint8_t>> out;
  auto path = std::filesystem::path(__FILE__).parent_path().parent_path() / "fixtures" / "exhaustion.csrec";
  RecordingReader r(path.string());
  while (auto item = r.next())
    if (auto* ev = std::get_if<RecordedEvent>(&*item)) out.push_back(ev->bytes);
  return out;
}

// A snapshot with n destinations, each with connects, handshakes and ports.
Snapshot busy_snapshot(size_t n) {
  AggregatorConfig cfg;
  cfg.top_destinations = n;
  Aggregator a(cfg);
  a.start(1);
  uint64_t ts = 1000;
  for (size_t d = 0; d < n; ++d)
    for (uint16_t i = 0; i < 20; ++i) {
      cs_flow f{};
      f.family = 2;
      f.saddr[0] = 10;
      f.daddr[0] = 10;
      f.daddr[2] = static_cast<uint8_t>(d >> 8);
      f.daddr[3] = static_cast<uint8_t>(d);
      f.sport = static_cast<uint16_t>(40000 + i);
      f.dport = 443;
      f.netns = 4026531840u;
      cs_connect_event c{};
      c.h.type = CS_EV_CONNECT;
      c.h.ts_ns = ts++;
      c.flow = f;
      c.latency_ns = 20000 + i * 1000;
      a.on_event(c);
      cs_state_event s{};
      s.h.type = CS_EV_STATE;
      s.h.ts_ns = ts++;
      s.flow = f;
      s.oldstate = 2;
      s.newstate = 1;
      s.latency_ns = 100000 + i * 5000;
      a.on_event(s);
    }
  return a.close_interval(1000000000, 1.7e9);
}

void BM_DecodeAndAggregate(benchmark::State& state) {
  const auto events = recorded_events();
  Aggregator a(AggregatorConfig{});
  a.start(1);
  std::string err;
  for (auto _ : state) {
    for (const auto& bytes : events)
      if (auto ev = decode_event(bytes, &err)) a.on_event(*ev);
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(events.size()));
}
BENCHMARK(BM_DecodeAndAggregate);

void BM_CloseInterval256(benchmark::State& state) {
  for (auto _ : state) {
    state.PauseTiming();
    AggregatorConfig cfg;
    Aggregator a(cfg);
    a.start(1);
    for (size_t d = 0; d < 256; ++d) {
      cs_connect_event c{};
      c.h.type = CS_EV_CONNECT;
      c.h.ts_ns = 10 + d;
      c.flow.family = 2;
      c.flow.daddr[2] = static_cast<uint8_t>(d >> 8);
      c.flow.daddr[3] = static_cast<uint8_t>(d);
      c.flow.dport = 443;
      c.flow.sport = 40000;
      a.on_event(c);
    }
    state.ResumeTiming();
    benchmark::DoNotOptimize(a.close_interval(1000000000, 1.7e9));
  }
}
BENCHMARK(BM_CloseInterval256);

void BM_RenderPrometheus256(benchmark::State& state) {
  const Snapshot s = busy_snapshot(256);
  const BuildInfo b{"bench", "6.18"};
  size_t bytes = 0;
  for (auto _ : state) {
    std::string text = render_prometheus(s, b);
    bytes = text.size();
    benchmark::DoNotOptimize(text);
  }
  state.counters["bytes"] = static_cast<double>(bytes);
}
BENCHMARK(BM_RenderPrometheus256);

void BM_SnapshotJson256(benchmark::State& state) {
  const Snapshot s = busy_snapshot(256);
  for (auto _ : state) benchmark::DoNotOptimize(snapshot_to_json(s).dump());
}
BENCHMARK(BM_SnapshotJson256);

}  // namespace

BENCHMARK_MAIN();
