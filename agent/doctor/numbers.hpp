// How the doctor writes numbers: limits, percentages, connection rates and durations.
#pragma once

#include <cstdint>
#include <string>

namespace connscope {

// v, or "unlimited" for kUnlimited.
std::string num(uint64_t v);

// part of whole in percent; 0 when whole is 0.
double pct(uint64_t part, uint64_t whole);

// "3.5 %" below 10 %, "60 %" from there.
std::string pct_text(double p);

// New connections per second that `ports` sustain when each port is held for `hold_ms`: "470/s".
std::string rate_text(uint64_t ports, uint32_t hold_ms);

// "1 s", "0.25 s".
std::string seconds_text(uint32_t ms);

}  // namespace connscope
