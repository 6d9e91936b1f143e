// Google Benchmark: histogram record / quantile / merge costs.
// g++ -std=c++20 -O2 -Iinclude -Iagent tests/bench/bench_histogram.cpp agent/aggregate/histogram.cpp -lbenchmark -lpthread
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "aggregate/histogram.hpp"

using namespace connscope;

namespace {

constexpr size_t kValues = 4096;  // power of two: index with a mask

// Latency-like values, log-uniform over 1 us .. 1 s (ns).
const std::vector<uint64_t>& latencies() {
  static const std::vector<uint64_t> kV = [] {
    std::mt19937_64 rng(1);
    std::uniform_real_distribution<double> e(std::log(1e3), std::log(1e9));
    std::vector<uint64_t> v(kValues);
    for (auto& x : v) x = static_cast<uint64_t>(std::exp(e(rng)));
    return v;
  }();
  return kV;
}

LogLinearHistogram filled_histogram() {
  LogLinearHistogram h;
  for (int r = 0; r < 256; ++r) {
    for (const uint64_t v : latencies()) h.record(v);
  }
  return h;
}

void bm_loglinear_record(benchmark::State& state) {
  const auto& v = latencies();
  LogLinearHistogram h;
  size_t i = 0;
  for (auto _ : state) {
    h.record(v[i++ & (kValues - 1)]);
  }
  benchmark::DoNotOptimize(h.count());
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(bm_loglinear_record);

void bm_loglinear_bucket_index(benchmark::State& state) {
  const auto& v = latencies();
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(LogLinearHistogram::bucket_index(v[i++ & (kValues - 1)]));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(bm_loglinear_bucket_index);

void bm_bucketcounts_record(benchmark::State& state) {
  const auto& v = latencies();
  BucketCounts b(latency_layout());
  size_t i = 0;
  for (auto _ : state) {
    b.record(v[i++ & (kValues - 1)]);
  }
  benchmark::DoNotOptimize(b.count());
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(bm_bucketcounts_record);

void bm_bucketcounts_record_fill(benchmark::State& state) {
  BucketCounts b(fill_layout());
  uint64_t x = 0;
  for (auto _ : state) {
    b.record(x);
    x = (x + 37) % 1100;
  }
  benchmark::DoNotOptimize(b.count());
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(bm_bucketcounts_record_fill);

// Arg: quantile in per-mille.
void bm_loglinear_quantile(benchmark::State& state) {
  const LogLinearHistogram h = filled_histogram();
  const double q = static_cast<double>(state.range(0)) / 1000;
  for (auto _ : state) {
    benchmark::DoNotOptimize(h.quantile(q));
  }
}
BENCHMARK(bm_loglinear_quantile)->Arg(500)->Arg(990)->Arg(999);

void bm_loglinear_merge(benchmark::State& state) {
  const LogLinearHistogram src = filled_histogram();
  LogLinearHistogram dst;
  for (auto _ : state) {
    dst.merge(src);
    benchmark::ClobberMemory();
  }
  benchmark::DoNotOptimize(dst.count());
}
BENCHMARK(bm_loglinear_merge);

void bm_bucketcounts_merge(benchmark::State& state) {
  BucketCounts src(latency_layout());
  for (const uint64_t v : latencies()) src.record(v);
  BucketCounts dst(latency_layout());
  for (auto _ : state) {
    dst.merge(src);
    benchmark::ClobberMemory();
  }
  benchmark::DoNotOptimize(dst.count());
}
BENCHMARK(bm_bucketcounts_merge);

}  // namespace

BENCHMARK_MAIN();
