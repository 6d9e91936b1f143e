// What the live capture needs from the command line: strategy overrides,
// the in-kernel filter, ring-buffer size, survey pace and duration. Shared by
// trace, run and record; the CLI fills it, the probes layer never sees CLI11.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "connscope/events.h"
#include "probes/strategy.hpp"

namespace connscope {

struct CommonOptions {
  std::map<Family, Tier> forced;  // --strategy FAMILY=NAME
  std::string btf_path;           // --btf
  bool verbose = false;
};

struct CaptureOptions {
  cs_filter filter{};
  uint32_t ringbuf_bytes = CS_RINGBUF_DEFAULT_BYTES;
  double poll_interval_s = 1.0;  // accept-queue poll (listener queue samples; overflows on the fallback tier)
  double duration_s = 0;         // 0 = until SIGINT/SIGTERM
};

}  // namespace connscope
