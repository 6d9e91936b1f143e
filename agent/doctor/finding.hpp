// One line of the doctor's report: a setting or a state, what it means, and what to do about it.
#pragma once

#include <string>

namespace connscope {

struct Finding {
  std::string id;        // "ports.tw_reuse", "timewait.dest.1", ...; starts with its section
  std::string severity;  // "ok", "info", "warning", "critical"
  std::string subject;   // e.g. "net.ipv4.tcp_tw_reuse" or "10.0.0.1 -> 10.0.0.5:443"
  std::string value;
  std::string meaning;
  std::string fix;  // empty when nothing needs doing
};

}  // namespace connscope
