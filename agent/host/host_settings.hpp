// The sysctls that decide whether a host runs out of ephemeral ports, keeps
// too many TIME_WAIT sockets or caps its accept queues. Most of them are per
// network namespace (/proc/sys/net shows the reading thread's netns), so they
// are read inside each netns (see for_each_netns).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace connscope {

struct PortRange {
  uint16_t lo = 0, hi = 0;  // inclusive
  bool operator==(const PortRange&) const = default;
};

struct NetnsSettings {
  uint32_t netns = 0;                         // inode; set by the caller
  uint16_t port_lo = 32768, port_hi = 60999;  // net.ipv4.ip_local_port_range
  std::vector<PortRange> reserved;            // net.ipv4.ip_local_reserved_ports
  uint32_t usable_ports = 28232;              // range size minus reserved ports inside it
  int tw_reuse = 2;                           // net.ipv4.tcp_tw_reuse (0 off, 1 on, 2 loopback only)
  uint32_t tw_reuse_delay_ms = 1000;          // net.ipv4.tcp_tw_reuse_delay (6.13+); 1000 when absent
  bool tw_reuse_delay_present = false;
  int timestamps = 1;            // net.ipv4.tcp_timestamps (0 off, 1 on, 2 on without random offset)
  int fin_timeout = 60;          // net.ipv4.tcp_fin_timeout (seconds in FIN_WAIT_2)
  uint32_t max_tw_buckets = 0;   // net.ipv4.tcp_max_tw_buckets
  uint32_t somaxconn = 4096;     // net.core.somaxconn
  uint32_t max_syn_backlog = 0;  // net.ipv4.tcp_max_syn_backlog
  int syncookies = 1;            // net.ipv4.tcp_syncookies (0 off, 1 on overflow, 2 always)
  // Where the settings were read, for the commands remedies print (set by
  // the survey): the agent's own netns, or a path that enters it
  // (/run/netns/NAME, /proc/PID/ns/net); neither when unknown (old recordings).
  bool agent_netns = false;
  std::string enter_path;
  bool operator==(const NetnsSettings&) const = default;
};

// Parses net.ipv4.ip_local_port_range ("32768\t60999\n"). Rejects anything
// but two port numbers 1..65535 with lo <= hi.
bool parse_port_range(std::string_view text, uint16_t* lo, uint16_t* hi, std::string* error);

// Parses net.ipv4.ip_local_reserved_ports: "" / "\n" (none) or a comma list
// of ports and inclusive ranges ("8080,9000-9100\n"), appending to *out.
// On error *out is left unchanged.
bool parse_reserved_ports(std::string_view text, std::vector<PortRange>* out, std::string* error);

// Ports in [lo, hi] not covered by any reserved range (ranges may overlap or
// lie partly or wholly outside [lo, hi]). 0 when lo > hi.
uint32_t usable_port_count(uint16_t lo, uint16_t hi, const std::vector<PortRange>& reserved);

// Reads the settings of the calling thread's netns from
// <proc_root>/sys/net/... (proc_root is "/proc" normally; tests point it at a
// fixture directory). ip_local_port_range is required; a missing optional
// file keeps its default, a malformed one is an error. netns is left 0.
std::optional<NetnsSettings> read_netns_settings(const std::string& proc_root, std::string* error);

// "ports 32768-60999 (28232 usable), reserved 8080,9000-9100, tw_reuse=2,
// tw_reuse_delay=1000ms, timestamps=1": the settings that decide the rate of
// new connections per destination, on one line.
std::string describe(const NetnsSettings& s);

// "8080,9000-9100", or "none".
std::string format_port_ranges(const std::vector<PortRange>& ranges);

}  // namespace connscope
