// Fixed-storage histograms for latency / fill distributions.
//
// LogLinearHistogram keeps fine-grained counts (quantiles with a bounded
// relative error); BucketCounts keeps counts per export bucket (Prometheus
// classic histogram `le` buckets, JSON heatmap frames). Neither allocates
// after construction; record() is O(1) / O(log buckets).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace connscope {

// Log-linear histogram of unsigned integer values (nanoseconds, typically).
// Values 0..15 are counted exactly; above, each power-of-two range [2^k, 2^(k+1))
// is split into 16 equal sub-buckets (so 16..31 are still exact). Values >= 2^kMaxPow
// land in one overflow bucket (clamped; counted by overflow()). Fixed storage: no
// allocation after construction, record() is O(1) (count-leading-zeros).
//
// Bucket index layout: i < 16 holds value i; for k in [4, kMaxPow) bucket
// (k - 3) * 16 + s holds [2^k + s * 2^(k-4), 2^k + (s+1) * 2^(k-4) - 1];
// the last index (kBuckets - 1) is the overflow bucket [2^kMaxPow, UINT64_MAX].
class LogLinearHistogram {
 public:
  static constexpr int kSubBits = 4;                     // 16 sub-buckets per power of two
  static constexpr int kMaxPow = 38;                     // 2^38 ns ~ 275 s
  static constexpr double kMaxRelativeError = 1.0 / 32;  // documented bound for quantile()
  static constexpr size_t kSubBuckets = size_t{1} << kSubBits;
  // kSubBuckets exact values, kSubBuckets per power of two in [kSubBits, kMaxPow), one overflow bucket.
  static constexpr size_t kBuckets = kSubBuckets + static_cast<size_t>(kMaxPow - kSubBits) * kSubBuckets + 1;
  static constexpr size_t kOverflowIndex = kBuckets - 1;
  static constexpr uint64_t kOverflowValue = uint64_t{1} << kMaxPow;  // smallest overflowing value

  void record(uint64_t value, uint64_t n = 1);
  void merge(const LogLinearHistogram& other);
  void clear();
  uint64_t count() const { return count_; }
  uint64_t sum() const { return sum_; }                           // saturating at UINT64_MAX
  uint64_t min() const { return count_ == 0 ? 0 : min_; }         // exact, 0 if empty
  uint64_t max() const { return max_; }                           // exact, 0 if empty
  uint64_t overflow() const { return buckets_[kOverflowIndex]; }  // samples >= 2^kMaxPow
  // Value at quantile q in [0,1] (nearest-rank: the smallest recorded value v such that
  // at least ceil(q*count) samples are <= v, estimated; rank max(1, ceil(q*count))).
  // The estimate is the midpoint of the bucket holding that rank, clamped to [min(), max()];
  // its relative error against the exact nearest-rank quantile is <= kMaxRelativeError for
  // every value below 2^kMaxPow. Rank 1 returns min() and rank count() returns max() exactly;
  // a rank in the overflow bucket returns max(). Returns 0 when empty. q outside [0,1] is
  // clamped (NaN is treated as 0).
  uint64_t quantile(double q) const;
  // Bucket bounds for a bucket index: values v in [bucket_lower(i), bucket_upper(i)] (inclusive).
  // Indexes >= kBuckets are treated as the overflow bucket.
  static uint64_t bucket_lower(size_t i);
  static uint64_t bucket_upper(size_t i);
  static size_t bucket_index(uint64_t value);
  uint64_t bucket_count(size_t i) const { return i < kBuckets ? buckets_[i] : 0; }

 private:
  std::array<uint64_t, kBuckets> buckets_{};
  uint64_t count_ = 0;
  uint64_t sum_ = 0;
  uint64_t min_ = UINT64_MAX;
  uint64_t max_ = 0;
};

// A fixed set of export buckets (Prometheus classic histogram / heatmap frame):
// upper bounds in the recorded unit, ascending, plus an implicit +Inf bucket;
// each bound has a stable label string (the Prometheus `le` value and the
// JSON heatmap key).
struct BucketLayout {
  std::vector<uint64_t> upper;                      // inclusive upper bounds (v <= upper[i])
  std::vector<std::string> labels;                  // same size as upper; "+Inf" is implicit
  size_t size() const { return upper.size() + 1; }  // including +Inf
  size_t index_of(uint64_t value) const;            // first i with value <= upper[i], else upper.size()
  const std::string& label(size_t i) const;         // "+Inf" for i >= upper.size()
};

// Formats v like Go's strconv.FormatFloat(v, 'g', -1, 64) (what Prometheus uses for
// `le` labels): shortest round-trip digits, exponent form ("1e-06", "1e+06", "1.5e+07")
// when the decimal exponent is < -4 or >= 6, fixed form otherwise ("0.0001", "10").
// "+Inf", "-Inf", "NaN" for the non-finite values.
std::string format_prometheus_float(double v);

// Builds a layout whose labels are format_prometheus_float(upper[i] / divisor).
BucketLayout make_bucket_layout(std::vector<uint64_t> upper, double divisor);

// Latency buckets in nanoseconds, 1-2-5 steps from 1 us to 10 s:
// 1000, 2000, 5000, 10000, ..., 5e9, 1e10 (22 bounds), labels in seconds
// ("1e-06", ..., "0.0001", ..., "10").
const BucketLayout& latency_layout();
// Accept-queue fill in per-mille of the listener's max backlog: 100,200,...,1000 with labels
// "0.1","0.2",...,"0.9","1"; +Inf holds "over the max" (queue full: the kernel holds max+1).
const BucketLayout& fill_layout();

// Counts per export bucket (non-cumulative), sized once from a layout.
// Keeps a reference to the layout: it must outlive the BucketCounts (the
// built-in layouts are static).
class BucketCounts {
 public:
  explicit BucketCounts(const BucketLayout& layout);
  void record(uint64_t value, uint64_t n = 1);
  void merge(const BucketCounts& other);  // same layout required (assert)
  void clear();
  const BucketLayout& layout() const { return *layout_; }
  const std::vector<uint64_t>& counts() const { return counts_; }  // size() == layout.size()
  uint64_t count() const { return count_; }
  uint64_t sum() const { return sum_; }  // sum of recorded values (saturating), for Prometheus _sum
  // cumulative count up to and including bucket i (Prometheus _bucket{le=label(i)});
  // i >= layout.size() gives count().
  uint64_t cumulative(size_t i) const;

 private:
  const BucketLayout* layout_;
  std::vector<uint64_t> counts_;
  uint64_t count_ = 0;
  uint64_t sum_ = 0;
};

}  // namespace connscope
