// The ephemeral-port exhaustion model (docs/port-exhaustion-model.md).
//
// Ephemeral ports are a per-(netns, source address, destination address,
// destination port) resource. A port stays busy for the connection's life
// plus 60 s of TIME_WAIT (TCP_TIMEWAIT_LEN, fixed: tcp_fin_timeout does not
// shorten it). Without TIME_WAIT reuse the sustainable new-connection rate to
// one destination is usable/60 s; with reuse (tcp_tw_reuse=1, or 2 on
// loopback, and tcp_timestamps on) connect() may take a TIME_WAIT port once
// its last timestamp is older than tcp_tw_reuse_delay (1 s before 6.13), so
// the rate is about usable/1 s.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "aggregate/snapshot.hpp"
#include "host/host_settings.hpp"

namespace connscope {

inline constexpr double kTimeWaitSeconds = 60.0;  // TCP_TIMEWAIT_LEN
inline constexpr uint64_t kTimeWaitNs = static_cast<uint64_t>(kTimeWaitSeconds) * 1000000000ull;

struct PortModelInput {
  const NetnsSettings* settings = nullptr;          // the destination's netns; nullptr if unknown
  uint16_t event_range_lo = 0, event_range_hi = 0;  // from port_alloc records, when settings are unknown
  bool loopback = false;                            // source or destination is a loopback address (tcp_tw_reuse=2)
  uint32_t connecting = 0, open = 0, time_wait = 0;
  uint32_t time_wait_recent = 0;  // TIME_WAIT entered less than tcp_tw_reuse_delay ago
  double connect_rate = 0;        // connect() attempts per second
};

// Whether TIME_WAIT reuse applies to a destination under these settings.
bool tw_reuse_effective(const NetnsSettings& s, bool loopback);

PortModel compute_port_model(const PortModelInput& in);

// What to do about a destination running out of ports, built from its
// namespace's actual settings and numbers: the commands (each prefixed with
// `exec_prefix`, netns_exec_prefix(), so that it changes the destination's
// own namespace) and one line that quotes them with their effect, e.g.
// "`sysctl -w net.ipv4.tcp_tw_reuse=1` lets connect() reuse TIME_WAIT
// ports: sustainable 470/s -> about 28232/s (now 900/s); for good: ...".
struct Remedy {
  std::string text;
  std::vector<std::string> commands;
};
Remedy exhaustion_remedy(const PortModel& m, const std::string& exec_prefix);

// "470/s", "28232/s", "1.5/s"
std::string format_rate(double per_second);

}  // namespace connscope
