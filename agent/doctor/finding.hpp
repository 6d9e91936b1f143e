// One line of the doctor's report: a setting or a state, what it means, and what to do about it.
#pragma once

#include <cstdint>
#include <string>

namespace connscope {

// Ordered: a higher level is worse.
enum class FindingLevel : uint8_t { ok, info, warning, critical };
inline const char* level_name(FindingLevel l) {
  switch (l) {
    case FindingLevel::ok:
      return "ok";
    case FindingLevel::info:
      return "info";
    case FindingLevel::warning:
      return "warning";
    case FindingLevel::critical:
      return "critical";
  }
  return "?";
}

struct Finding {
  std::string id;  // "ports.tw_reuse", "timewait.dest.1", ...; starts with its section
  FindingLevel severity = FindingLevel::ok;
  std::string subject;  // e.g. "net.ipv4.tcp_tw_reuse" or "10.0.0.1 -> 10.0.0.5:443"
  std::string value;
  std::string meaning;
  std::string fix;  // empty when nothing needs doing
};

}  // namespace connscope
