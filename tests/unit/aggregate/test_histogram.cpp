// Unit tests: histogram accuracy, quantiles and bucket layouts.
#include <doctest/doctest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "aggregate/histogram.hpp"

using namespace connscope;

namespace {

using H = LogLinearHistogram;

const std::vector<double> kQs = {0, 0.001, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999, 1};

// Nearest rank max(1, ceil(q * n)), within [1, n].
size_t nearest_rank(double q, size_t n) {
  const double r = std::ceil(q * static_cast<double>(n));
  if (r < 1) return 1;
  if (r > static_cast<double>(n)) return n;
  return static_cast<size_t>(r);
}

uint64_t exact_quantile(const std::vector<uint64_t>& sorted, double q) {
  return sorted[nearest_rank(q, sorted.size()) - 1];
}

H histogram_of(const std::vector<uint64_t>& values) {
  H h;
  for (const uint64_t v : values) h.record(v);
  return h;
}

// Every q in kQs plus a 1/200 sweep: the estimate is within kMaxRelativeError of the exact
// nearest-rank quantile; q=0 / q=1 are min / max exactly. Values must be < 2^kMaxPow.
void check_quantiles(std::vector<uint64_t> values) {
  const H h = histogram_of(values);
  std::sort(values.begin(), values.end());
  REQUIRE(h.count() == values.size());
  CHECK(h.min() == values.front());
  CHECK(h.max() == values.back());
  CHECK(h.quantile(0) == values.front());
  CHECK(h.quantile(1) == values.back());
  std::vector<double> qs = kQs;
  for (int i = 0; i <= 200; ++i) qs.push_back(i / 200.0);
  for (const double q : qs) {
    const uint64_t exact = exact_quantile(values, q);
    const uint64_t est = h.quantile(q);
    const double err = std::fabs(static_cast<double>(est) - static_cast<double>(exact));
    INFO("q=", q, " exact=", exact, " estimate=", est);
    CHECK(err <= H::kMaxRelativeError * static_cast<double>(exact));
    CHECK(est >= h.min());
    CHECK(est <= h.max());
  }
}

std::vector<uint64_t> log_uniform(std::mt19937_64& rng, size_t n, double lo, double hi) {
  std::uniform_real_distribution<double> e(std::log(lo), std::log(hi));
  std::vector<uint64_t> v;
  for (size_t i = 0; i < n; ++i) v.push_back(static_cast<uint64_t>(std::exp(e(rng))));
  return v;
}

}  // namespace

TEST_CASE("histogram layout constants") {
  CHECK(H::kBuckets == 16 + (38 - 4) * 16 + 1);
  CHECK(H::kOverflowIndex == H::kBuckets - 1);
  CHECK(H::bucket_lower(H::kOverflowIndex) == (uint64_t{1} << 38));
  CHECK(H::bucket_upper(H::kOverflowIndex) == UINT64_MAX);
  CHECK(H::bucket_lower(0) == 0);
}

TEST_CASE("values below 32 have their own bucket") {
  for (uint64_t v = 0; v < 32; ++v) {
    const size_t i = H::bucket_index(v);
    CHECK(i == v);
    CHECK(H::bucket_lower(i) == v);
    CHECK(H::bucket_upper(i) == v);
  }
  // Known indexes past the exact range.
  CHECK(H::bucket_index(32) == 32);
  CHECK(H::bucket_index(33) == 32);
  CHECK(H::bucket_index(34) == 33);
  CHECK(H::bucket_index(63) == 47);
  CHECK(H::bucket_index(64) == 48);
  CHECK(H::bucket_index(1000) == 16 * 6 + 15);  // [992, 1023]
  CHECK(H::bucket_lower(16 * 6 + 15) == 992);
  CHECK(H::bucket_upper(16 * 6 + 15) == 1023);
  CHECK(H::bucket_index((uint64_t{1} << 38) - 1) == H::kOverflowIndex - 1);
  CHECK(H::bucket_index(uint64_t{1} << 38) == H::kOverflowIndex);
  CHECK(H::bucket_index(UINT64_MAX) == H::kOverflowIndex);

  H h;
  for (uint64_t v = 0; v < 16; ++v) h.record(v, v + 1);
  for (uint64_t v = 0; v < 16; ++v) CHECK(h.bucket_count(v) == v + 1);
  CHECK(h.bucket_count(16) == 0);
  CHECK(h.bucket_count(H::kBuckets) == 0);  // out of range
  CHECK(h.count() == 136);
  CHECK(h.sum() == 1360);  // sum of v*(v+1) for v < 16
  CHECK(h.min() == 0);
  CHECK(h.max() == 15);
  // Every quantile is exact here.
  std::vector<uint64_t> all;
  for (uint64_t v = 0; v < 16; ++v) all.insert(all.end(), v + 1, v);
  for (int i = 0; i <= 100; ++i) CHECK(h.quantile(i / 100.0) == exact_quantile(all, i / 100.0));
}

TEST_CASE("buckets are contiguous, cover every value and are narrow enough") {
  for (size_t i = 0; i < H::kBuckets; ++i) {
    const uint64_t lo = H::bucket_lower(i);
    const uint64_t hi = H::bucket_upper(i);
    INFO("bucket ", i, " [", lo, ", ", hi, "]");
    REQUIRE(lo <= hi);
    CHECK(H::bucket_index(lo) == i);
    CHECK(H::bucket_index(hi) == i);
    if (i + 1 < H::kBuckets) {
      CHECK(H::bucket_lower(i + 1) == hi + 1);
      CHECK(H::bucket_index(hi + 1) == i + 1);
      // Midpoint within kMaxRelativeError of both edges.
      const uint64_t mid = lo + (hi - lo) / 2;
      CHECK(static_cast<double>(mid - lo) <= H::kMaxRelativeError * static_cast<double>(lo));
      CHECK(static_cast<double>(hi - mid) <= H::kMaxRelativeError * static_cast<double>(hi));
    }
    if (i >= 32 && i < H::kOverflowIndex) {
      const uint64_t pow2 = std::bit_floor(lo);
      CHECK(hi - lo + 1 == pow2 / 16);  // 16 equal sub-buckets per power of two
    }
  }
  std::mt19937_64 rng(42);
  for (int n = 0; n < 200000; ++n) {
    const uint64_t v = rng() >> (rng() % 64);  // spread over every magnitude
    const size_t i = H::bucket_index(v);
    REQUIRE(i < H::kBuckets);
    CHECK(H::bucket_lower(i) <= v);
    CHECK(v <= H::bucket_upper(i));
  }
}

TEST_CASE("empty histogram") {
  const H h;
  CHECK(h.count() == 0);
  CHECK(h.sum() == 0);
  CHECK(h.min() == 0);
  CHECK(h.max() == 0);
  CHECK(h.overflow() == 0);
  for (const double q : kQs) CHECK(h.quantile(q) == 0);
}

TEST_CASE("quantile uses nearest rank and the bucket midpoint") {
  H h;
  for (const uint64_t v : {10, 20, 30, 40}) h.record(v);
  CHECK(h.quantile(0.25) == 10);  // rank 1
  CHECK(h.quantile(0.26) == 20);  // rank 2
  CHECK(h.quantile(0.5) == 20);
  CHECK(h.quantile(0.75) == 30);
  CHECK(h.quantile(0.76) == 40);  // rank 4 = max
  CHECK(h.quantile(-3) == 10);    // clamped to q=0
  CHECK(h.quantile(7) == 40);     // clamped to q=1
  CHECK(h.quantile(std::numeric_limits<double>::quiet_NaN()) == 10);

  H m;
  m.record(1000, 2);  // bucket [992, 1023], midpoint 1007
  m.record(5000);
  m.record(200);
  CHECK(m.quantile(0.5) == 1007);
  CHECK(m.quantile(0.75) == 1007);
  // Midpoint clamped to [min, max]: everything in one bucket.
  H c;
  c.record(993);
  c.record(995);
  c.record(996);
  CHECK(c.quantile(0.5) == 996);  // midpoint 1007 > max
  H d;
  d.record(1020, 2);
  d.record(1021);
  CHECK(d.quantile(0.5) == 1020);  // midpoint 1007 < min
}

TEST_CASE("quantiles within kMaxRelativeError: random distributions") {
  std::mt19937_64 rng(0x5eed);
  SUBCASE("uniform") {
    std::uniform_int_distribution<uint64_t> u(0, 1'000'000'000);
    std::vector<uint64_t> v;
    for (int i = 0; i < 100000; ++i) v.push_back(u(rng));
    check_quantiles(v);
  }
  SUBCASE("log-uniform 1 ns .. 100 s") { check_quantiles(log_uniform(rng, 100000, 1, 100e9)); }
  SUBCASE("bimodal") {
    std::normal_distribution<double> fast(100e3, 10e3);
    std::normal_distribution<double> slow(50e6, 5e6);
    std::vector<uint64_t> v;
    for (int i = 0; i < 50000; ++i) {
      v.push_back(static_cast<uint64_t>(std::max(1.0, fast(rng))));
      if (i % 3 == 0) v.push_back(static_cast<uint64_t>(std::max(1.0, slow(rng))));
    }
    check_quantiles(v);
  }
  SUBCASE("small counts") {
    for (size_t n = 1; n <= 40; ++n) check_quantiles(log_uniform(rng, n, 1, 1e11));
  }
}

TEST_CASE("quantiles within kMaxRelativeError: degenerate and adversarial data") {
  SUBCASE("all equal") { check_quantiles(std::vector<uint64_t>(10000, 123456789)); }
  SUBCASE("single sample") {
    check_quantiles({987654321});
    check_quantiles({0});
    check_quantiles({(uint64_t{1} << 38) - 1});
  }
  SUBCASE("two far-apart samples") {
    check_quantiles({3, (uint64_t{1} << 37) + 12345});
    check_quantiles({1, 200'000'000'000});
  }
  SUBCASE("powers of two and one below") {
    std::vector<uint64_t> v;
    for (int k = 0; k < 38; ++k) {
      v.push_back(uint64_t{1} << k);
      v.push_back((uint64_t{1} << k) - 1);
    }
    check_quantiles(v);
  }
  SUBCASE("every bucket edge") {
    std::vector<uint64_t> v;
    for (size_t i = 0; i < H::kOverflowIndex; ++i) {
      v.push_back(H::bucket_lower(i));
      v.push_back(H::bucket_upper(i));
    }
    check_quantiles(v);
  }
  SUBCASE("mass at one edge of a wide bucket, sentinel at the other") {
    // The estimate is the midpoint; the exact value is the far edge: worst case.
    for (const size_t i : {size_t{40}, size_t{200}, size_t{400}, H::kOverflowIndex - 1}) {
      const uint64_t lo = H::bucket_lower(i);
      const uint64_t hi = H::bucket_upper(i);
      std::vector<uint64_t> low_heavy(999, lo);
      low_heavy.push_back(hi);
      low_heavy.push_back(0);  // so the midpoint is not clamped by min
      low_heavy.push_back((uint64_t{1} << 38) - 1);
      check_quantiles(low_heavy);
      std::vector<uint64_t> high_heavy(999, hi);
      high_heavy.push_back(lo);
      high_heavy.push_back(1);
      high_heavy.push_back((uint64_t{1} << 38) - 1);
      check_quantiles(high_heavy);
    }
  }
  SUBCASE("random bucket edges") {
    std::mt19937_64 rng(7);
    std::vector<uint64_t> v;
    for (int n = 0; n < 20000; ++n) {
      const size_t i = rng() % H::kOverflowIndex;
      v.push_back(rng() % 2 ? H::bucket_lower(i) : H::bucket_upper(i));
    }
    check_quantiles(v);
  }
}

TEST_CASE("record with a count, and n = 0") {
  H h;
  h.record(100, 5);
  h.record(7, 0);  // no-op: min stays 100
  CHECK(h.count() == 5);
  CHECK(h.sum() == 500);
  CHECK(h.min() == 100);
  CHECK(h.max() == 100);
  CHECK(h.bucket_count(H::bucket_index(100)) == 5);
}

TEST_CASE("merge equals recording the union") {
  std::mt19937_64 rng(99);
  auto a_vals = log_uniform(rng, 5000, 1, 1e12);  // some overflow
  auto b_vals = log_uniform(rng, 3000, 1000, 1e7);
  const H a = histogram_of(a_vals);
  const H b = histogram_of(b_vals);
  std::vector<uint64_t> all = a_vals;
  all.insert(all.end(), b_vals.begin(), b_vals.end());
  const H u = histogram_of(all);

  H m = a;
  m.merge(b);
  CHECK(m.count() == u.count());
  CHECK(m.sum() == u.sum());
  CHECK(m.min() == u.min());
  CHECK(m.max() == u.max());
  CHECK(m.overflow() == u.overflow());
  CHECK(m.overflow() > 0);
  for (size_t i = 0; i < H::kBuckets; ++i) CHECK(m.bucket_count(i) == u.bucket_count(i));
  for (const double q : kQs) CHECK(m.quantile(q) == u.quantile(q));

  H e;  // into empty
  e.merge(b);
  CHECK(e.min() == b.min());
  CHECK(e.max() == b.max());
  CHECK(e.count() == b.count());
  H f = b;  // empty into non-empty
  f.merge(H{});
  CHECK(f.min() == b.min());
  CHECK(f.count() == b.count());
}

TEST_CASE("clear") {
  H h;
  h.record(5);
  h.record(uint64_t{1} << 40);
  h.clear();
  CHECK(h.count() == 0);
  CHECK(h.sum() == 0);
  CHECK(h.min() == 0);
  CHECK(h.max() == 0);
  CHECK(h.overflow() == 0);
  for (size_t i = 0; i < H::kBuckets; ++i) CHECK(h.bucket_count(i) == 0);
  h.record(300);
  h.record(200);
  CHECK(h.min() == 200);
  CHECK(h.max() == 300);
  CHECK(h.count() == 2);
}

TEST_CASE("overflow bucket clamps values >= 2^kMaxPow") {
  H h;
  h.record((uint64_t{1} << 38) - 1);
  h.record(uint64_t{1} << 38);
  h.record(uint64_t{1} << 41);
  h.record(UINT64_MAX - 1);
  CHECK(h.overflow() == 3);
  CHECK(h.bucket_count(H::kOverflowIndex) == 3);
  CHECK(h.bucket_count(H::kOverflowIndex - 1) == 1);
  CHECK(h.max() == UINT64_MAX - 1);  // exact
  CHECK(h.quantile(1) == UINT64_MAX - 1);
  CHECK(h.quantile(0.5) == UINT64_MAX - 1);  // rank 2 is in the overflow bucket: max()
  H g;
  g.record(1);
  g.record(uint64_t{1} << 40, 3);
  g.record(uint64_t{1} << 39);
  CHECK(g.quantile(0.5) == uint64_t{1} << 40);
}

TEST_CASE("sum saturates") {
  H h;
  h.record(UINT64_MAX / 2);
  h.record(UINT64_MAX / 2);
  CHECK(h.sum() == UINT64_MAX - 1);
  h.record(2);
  CHECK(h.sum() == UINT64_MAX);
  h.record(1);
  CHECK(h.sum() == UINT64_MAX);
  H p;
  p.record(uint64_t{1} << 40, uint64_t{1} << 30);  // product overflows
  CHECK(p.sum() == UINT64_MAX);
  CHECK(p.count() == uint64_t{1} << 30);
  H m;
  m.record(UINT64_MAX - 10);
  H n;
  n.record(11);
  m.merge(n);
  CHECK(m.sum() == UINT64_MAX);
}

// ---- export buckets ----

TEST_CASE("format_prometheus_float matches Go strconv 'g' shortest") {
  const std::vector<std::pair<double, std::string>> cases = {
      {0, "0"},
      {1, "1"},
      {10, "10"},
      {100, "100"},
      {123456, "123456"},
      {1e6, "1e+06"},
      {1234567, "1.234567e+06"},
      {1e21, "1e+21"},
      {0.5, "0.5"},
      {1.5, "1.5"},
      {0.0001, "0.0001"},
      {0.00012, "0.00012"},
      {1.2e-05, "1.2e-05"},
      {1e-06, "1e-06"},
      {5e-324, "5e-324"},
      {1e-300, "1e-300"},
      {0.1 + 0.2, "0.30000000000000004"},
      {-2.5, "-2.5"},
      {-1e-07, "-1e-07"},
      {std::numeric_limits<double>::infinity(), "+Inf"},
      {-std::numeric_limits<double>::infinity(), "-Inf"},
      {std::numeric_limits<double>::quiet_NaN(), "NaN"},
  };
  for (const auto& [v, want] : cases) {
    INFO(want);
    CHECK(format_prometheus_float(v) == want);
  }
}

TEST_CASE("latency_layout: 1-2-5 bounds in ns, labels in seconds") {
  const BucketLayout& l = latency_layout();
  const std::vector<uint64_t> upper = {1000,       2000,       5000,       10000,      20000,     50000,
                                       100000,     200000,     500000,     1000000,    2000000,   5000000,
                                       10000000,   20000000,   50000000,   100000000,  200000000, 500000000,
                                       1000000000, 2000000000, 5000000000, 10000000000};
  const std::vector<std::string> labels = {"1e-06",  "2e-06", "5e-06", "1e-05", "2e-05", "5e-05", "0.0001", "0.0002",
                                           "0.0005", "0.001", "0.002", "0.005", "0.01",  "0.02",  "0.05",   "0.1",
                                           "0.2",    "0.5",   "1",     "2",     "5",     "10"};
  CHECK(l.upper == upper);
  CHECK(l.labels == labels);
  CHECK(l.size() == 23);
  CHECK(l.label(22) == "+Inf");
  CHECK(l.label(0) == "1e-06");
  CHECK(&latency_layout() == &l);  // one shared instance
}

TEST_CASE("index_of at and around every bound") {
  for (const BucketLayout* l : {&latency_layout(), &fill_layout()}) {
    const auto& u = l->upper;
    CHECK(l->index_of(0) == 0);
    CHECK(l->index_of(UINT64_MAX) == u.size());
    for (size_t i = 0; i < u.size(); ++i) {
      INFO("bound ", u[i]);
      CHECK(l->index_of(u[i]) == i);
      CHECK(l->index_of(u[i] + 1) == i + 1);
      CHECK(l->index_of(u[i] - 1) == (i > 0 && u[i] - 1 == u[i - 1] ? i - 1 : i));
    }
  }
}

TEST_CASE("index_of on small and large custom layouts matches a linear search") {
  std::mt19937_64 rng(5);
  for (const size_t n : {size_t{1}, size_t{3}, size_t{32}, size_t{33}, size_t{200}}) {
    std::vector<uint64_t> upper;
    uint64_t b = 0;
    for (size_t i = 0; i < n; ++i) upper.push_back(b += 1 + rng() % 1000);
    const BucketLayout l = make_bucket_layout(upper, 1);
    CHECK(l.size() == n + 1);
    CHECK(l.labels.back() == format_prometheus_float(static_cast<double>(upper.back())));
    for (int k = 0; k < 5000; ++k) {
      const uint64_t v = rng() % (b + 100);
      size_t want = 0;
      while (want < n && v > upper[want]) ++want;
      INFO("n=", n, " v=", v);
      REQUIRE(l.index_of(v) == want);
    }
  }
}

TEST_CASE("fill_layout: per-mille of the max backlog") {
  const BucketLayout& l = fill_layout();
  CHECK(l.upper == std::vector<uint64_t>{100, 200, 300, 400, 500, 600, 700, 800, 900, 1000});
  CHECK(l.labels == std::vector<std::string>{"0.1", "0.2", "0.3", "0.4", "0.5", "0.6", "0.7", "0.8", "0.9", "1"});
  CHECK(l.size() == 11);
  CHECK(l.index_of(1000) == 9);   // exactly full
  CHECK(l.index_of(1001) == 10);  // over the max: +Inf
  CHECK(l.label(10) == "+Inf");
}

TEST_CASE("BucketCounts") {
  std::mt19937_64 rng(1234);
  const auto vals = log_uniform(rng, 20000, 100, 30e9);
  BucketCounts b(latency_layout());
  CHECK(&b.layout() == &latency_layout());
  CHECK(b.counts().size() == 23);
  std::vector<uint64_t> want(23, 0);
  uint64_t sum = 0;
  for (const uint64_t v : vals) {
    b.record(v);
    size_t i = 0;
    while (i < latency_layout().upper.size() && v > latency_layout().upper[i]) ++i;
    ++want[i];
    sum += v;
  }
  CHECK(b.counts() == want);
  CHECK(b.count() == vals.size());
  CHECK(b.sum() == sum);
  CHECK(want.front() > 0);
  CHECK(want.back() > 0);
  uint64_t cum = 0;
  for (size_t i = 0; i < b.counts().size(); ++i) {
    cum += want[i];
    CHECK(b.cumulative(i) == cum);
  }
  CHECK(b.cumulative(22) == b.count());
  CHECK(b.cumulative(1000) == b.count());

  SUBCASE("merge and clear") {
    BucketCounts c(latency_layout());
    c.record(1500, 4);
    c.record(UINT64_MAX);
    BucketCounts m = b;
    m.merge(c);
    CHECK(m.count() == b.count() + 5);
    CHECK(m.counts()[1] == b.counts()[1] + 4);
    CHECK(m.counts()[22] == b.counts()[22] + 1);
    CHECK(m.sum() == UINT64_MAX);
    CHECK(m.cumulative(22) == m.count());
    m.clear();
    CHECK(m.count() == 0);
    CHECK(m.sum() == 0);
    CHECK(m.counts() == std::vector<uint64_t>(23, 0));
    CHECK(m.cumulative(22) == 0);
  }
  SUBCASE("fill") {
    BucketCounts f(fill_layout());
    f.record(0);
    f.record(100);
    f.record(101);
    f.record(1000, 2);
    f.record(1001);
    f.record(7, 0);
    CHECK(f.counts() == std::vector<uint64_t>{2, 1, 0, 0, 0, 0, 0, 0, 0, 2, 1});
    CHECK(f.cumulative(0) == 2);
    CHECK(f.cumulative(9) == 5);
    CHECK(f.cumulative(10) == 6);
    CHECK(f.sum() == 3202);
  }
}
