// Log-linear latency histograms and the bucket layouts of the heatmaps.
#include "aggregate/histogram.hpp"

#include <algorithm>
#include <bit>
#include <cassert>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <string_view>
#include <utility>

namespace connscope {

namespace {

uint64_t saturating_add(uint64_t a, uint64_t b) {
  uint64_t r = 0;
  return __builtin_add_overflow(a, b, &r) ? UINT64_MAX : r;
}

// a + value * n, saturating at UINT64_MAX.
uint64_t saturating_add_product(uint64_t a, uint64_t value, uint64_t n) {
  uint64_t p = 0;
  if (__builtin_mul_overflow(value, n, &p)) return UINT64_MAX;
  return saturating_add(a, p);
}

using H = LogLinearHistogram;
static_assert(H::kSubBits >= 1 && H::kMaxPow > H::kSubBits && H::kMaxPow < 64);
static_assert(H::kBuckets == 561, "16 exact + 34 powers x 16 + overflow");

}  // namespace

// ---- LogLinearHistogram ----

size_t LogLinearHistogram::bucket_index(uint64_t value) {
  if (value < kSubBuckets) return static_cast<size_t>(value);
  if (value >= kOverflowValue) return kOverflowIndex;
  const int k = std::bit_width(value) - 1;  // value in [2^k, 2^(k+1)), k >= kSubBits
  const auto sub = static_cast<size_t>((value >> (k - kSubBits)) & (kSubBuckets - 1));
  return static_cast<size_t>(k - kSubBits + 1) * kSubBuckets + sub;
}

uint64_t LogLinearHistogram::bucket_lower(size_t i) {
  if (i >= kOverflowIndex) return kOverflowValue;
  if (i < kSubBuckets) return i;
  const int k = static_cast<int>(i / kSubBuckets) + kSubBits - 1;
  const uint64_t sub = i % kSubBuckets;
  return (kSubBuckets + sub) << (k - kSubBits);
}

uint64_t LogLinearHistogram::bucket_upper(size_t i) {
  if (i >= kOverflowIndex) return UINT64_MAX;
  return bucket_lower(i + 1) - 1;
}

void LogLinearHistogram::record(uint64_t value, uint64_t n) {
  if (n == 0) return;
  buckets_[bucket_index(value)] += n;
  count_ += n;
  sum_ = saturating_add_product(sum_, value, n);
  min_ = std::min(min_, value);
  max_ = std::max(max_, value);
}

void LogLinearHistogram::merge(const LogLinearHistogram& other) {
  if (other.count_ == 0) return;
  for (size_t i = 0; i < kBuckets; ++i) buckets_[i] += other.buckets_[i];
  count_ += other.count_;
  sum_ = saturating_add(sum_, other.sum_);
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
}

void LogLinearHistogram::clear() {
  buckets_.fill(0);
  count_ = 0;
  sum_ = 0;
  min_ = UINT64_MAX;
  max_ = 0;
}

uint64_t LogLinearHistogram::quantile(double q) const {
  if (count_ == 0) return 0;
  if (!(q > 0)) q = 0;  // also NaN
  if (q > 1) q = 1;
  // Nearest rank: max(1, ceil(q * count)), kept within [1, count] against rounding.
  const auto n = static_cast<double>(count_);
  const double r = std::ceil(q * n);
  uint64_t rank = 1;
  if (r >= n) {
    rank = count_;
  } else if (r > 1) {
    rank = static_cast<uint64_t>(r);
  }
  // The extreme ranks are known exactly.
  if (rank == 1) return min_;
  if (rank == count_) return max_;

  uint64_t seen = 0;
  for (size_t i = bucket_index(min_); i < kBuckets; ++i) {
    seen += buckets_[i];
    if (seen < rank) continue;
    if (i == kOverflowIndex) return max_;
    const uint64_t lo = bucket_lower(i);
    const uint64_t mid = lo + (bucket_upper(i) - lo) / 2;
    return std::clamp(mid, min_, max_);
  }
  return max_;  // unreachable while the bucket counts add up to count_
}

// ---- BucketLayout ----

size_t BucketLayout::index_of(uint64_t value) const {
  // Export layouts are small: counting the bounds below the value has no
  // data-dependent branch, where std::lower_bound mispredicts about once per
  // step on latencies spread over the buckets (11 vs 25 ns per record()).
  if (upper.size() <= 32) {
    size_t n = 0;
    for (const uint64_t u : upper) n += value > u ? 1 : 0;
    return n;
  }
  return static_cast<size_t>(std::lower_bound(upper.begin(), upper.end(), value) - upper.begin());
}

const std::string& BucketLayout::label(size_t i) const {
  static const std::string kInf = "+Inf";
  return i < labels.size() ? labels[i] : kInf;
}

std::string format_prometheus_float(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == 0) return std::signbit(v) ? "-0" : "0";

  // Shortest round-trip digits in scientific form: [-]d[.ddd]e(+|-)dd
  char buf[64];
  const auto res = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
  assert(res.ec == std::errc{});
  const std::string_view sci(buf, static_cast<size_t>(res.ptr - buf));
  const size_t e_pos = sci.find('e');
  std::string_view mant = sci.substr(0, e_pos);
  const bool neg = !mant.empty() && mant.front() == '-';
  if (neg) mant.remove_prefix(1);
  std::string digits;
  for (const char c : mant) {
    if (c != '.') digits.push_back(c);
  }
  int exp10 = 0;
  const std::string_view exp_text = sci.substr(e_pos + 1);
  std::from_chars(exp_text.data() + (exp_text.front() == '+' ? 1 : 0), exp_text.data() + exp_text.size(), exp10);

  const int nd = static_cast<int>(digits.size());
  std::string out = neg ? "-" : "";
  if (exp10 < -4 || exp10 >= 6) {  // Go: 'g' with the shortest precision decides with eprec = 6
    out += digits[0];
    if (nd > 1) {
      out += '.';
      out.append(digits, 1);
    }
    out += exp10 < 0 ? "e-" : "e+";
    const int a = std::abs(exp10);
    if (a < 10) out += '0';
    out += std::to_string(a);
    return out;
  }
  const int dp = exp10 + 1;  // digits before the decimal point
  if (dp > 0) {
    for (int i = 0; i < dp; ++i) out += i < nd ? digits[static_cast<size_t>(i)] : '0';
  } else {
    out += '0';
  }
  if (nd > dp) {
    out += '.';
    for (int j = dp; j < nd; ++j) out += j < 0 ? '0' : digits[static_cast<size_t>(j)];
  }
  return out;
}

BucketLayout make_bucket_layout(std::vector<uint64_t> upper, double divisor) {
  assert(std::is_sorted(upper.begin(), upper.end()) && std::adjacent_find(upper.begin(), upper.end()) == upper.end());
  BucketLayout layout;
  layout.labels.reserve(upper.size());
  for (const uint64_t u : upper) layout.labels.push_back(format_prometheus_float(static_cast<double>(u) / divisor));
  layout.upper = std::move(upper);
  return layout;
}

const BucketLayout& latency_layout() {
  static const BucketLayout kLayout = [] {
    std::vector<uint64_t> upper;
    for (uint64_t decade = 1000; decade <= 1'000'000'000; decade *= 10) {
      for (const uint64_t m : {1, 2, 5}) upper.push_back(decade * m);
    }
    upper.push_back(10'000'000'000);
    return make_bucket_layout(std::move(upper), 1e9);
  }();
  return kLayout;
}

const BucketLayout& fill_layout() {
  static const BucketLayout kLayout = [] {
    std::vector<uint64_t> upper;
    for (uint64_t permille = 100; permille <= 1000; permille += 100) upper.push_back(permille);
    return make_bucket_layout(std::move(upper), 1000);
  }();
  return kLayout;
}

// ---- BucketCounts ----

BucketCounts::BucketCounts(const BucketLayout& layout) : layout_(&layout), counts_(layout.size(), 0) {}

void BucketCounts::record(uint64_t value, uint64_t n) {
  if (n == 0) return;
  counts_[layout_->index_of(value)] += n;
  count_ += n;
  sum_ = saturating_add_product(sum_, value, n);
}

void BucketCounts::merge(const BucketCounts& other) {
  assert(layout_ == other.layout_ || layout_->upper == other.layout_->upper);
  const size_t n = std::min(counts_.size(), other.counts_.size());
  for (size_t i = 0; i < n; ++i) counts_[i] += other.counts_[i];
  count_ += other.count_;
  sum_ = saturating_add(sum_, other.sum_);
}

void BucketCounts::clear() {
  std::fill(counts_.begin(), counts_.end(), 0);
  count_ = 0;
  sum_ = 0;
}

uint64_t BucketCounts::cumulative(size_t i) const {
  if (i >= counts_.size() - 1) return count_;  // the +Inf bucket and beyond
  uint64_t c = 0;
  for (size_t j = 0; j <= i; ++j) c += counts_[j];
  return c;
}

}  // namespace connscope
