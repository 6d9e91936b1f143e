// How the doctor writes numbers.
#include "doctor/numbers.hpp"

#include <cstdio>

#include "host/procfs.hpp"

namespace connscope {

std::string num(uint64_t v) { return v == kUnlimited ? "unlimited" : std::to_string(v); }

double pct(uint64_t part, uint64_t whole) {
  return whole == 0 ? 0.0 : 100.0 * static_cast<double>(part) / static_cast<double>(whole);
}

std::string pct_text(double p) {
  char buf[32];
  std::snprintf(buf, sizeof buf, p < 10 ? "%.1f %%" : "%.0f %%", p);
  return buf;
}

std::string rate_text(uint64_t ports, uint32_t hold_ms) {
  return std::to_string(hold_ms == 0 ? ports : ports * 1000 / hold_ms) + "/s";
}

std::string seconds_text(uint32_t ms) {
  char buf[32];
  if (ms % 1000 == 0)
    std::snprintf(buf, sizeof buf, "%u s", ms / 1000);
  else
    std::snprintf(buf, sizeof buf, "%.3g s", ms / 1000.0);
  return buf;
}

}  // namespace connscope
