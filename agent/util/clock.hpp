// The agent's two clocks: CLOCK_MONOTONIC nanoseconds (the time base of every
// BPF record, bpf_ktime_get_ns) and wall-clock seconds since the epoch.
#pragma once

#include <time.h>

#include <cstdint>

namespace connscope {

inline uint64_t monotonic_now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

inline double unix_now_s() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

}  // namespace connscope
