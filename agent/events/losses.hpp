// The BPF side's loss counters: ring-buffer records dropped per record type
// (the ring was full) and map insertions refused (a map was full).
#pragma once

#include <array>
#include <cstdint>

#include "connscope/events.h"

namespace connscope {

struct LossCounters {
  uint64_t lost_total = 0;
  std::array<uint64_t, CS_EV_TYPE_MAX> lost_by_type{};
  uint64_t map_full = 0;
};

}  // namespace connscope
