// What the doctor knows about a host: the facts collect_host_facts() gathers
// (sysctls, netstat counters, a sockets summary, fd use and limits, the other
// network namespaces) and the pure steps that shape them.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "host/host_settings.hpp"
#include "host/procfs.hpp"
#include "host/socket_census.hpp"

namespace connscope {

// TIME_WAIT lasts TCP_TIMEWAIT_LEN, compiled into the kernel.
inline constexpr uint32_t kTimeWaitMs = 60000;

struct ProcessFds {
  int pid = 0;
  std::string comm;
  uint64_t fds = 0;                  // entries in /proc/<pid>/fd
  uint64_t soft_limit = kUnlimited;  // "Max open files" of /proc/<pid>/limits
  uint64_t hard_limit = kUnlimited;
};

// Outgoing sockets from one local address to one remote address and port:
// they share the ephemeral port range (a port may be reused toward other
// destinations, not toward this one).
struct DestinationUse {
  uint16_t family = 0;
  std::array<uint8_t, 16> saddr{}, daddr{};
  uint16_t dport = 0;
  uint32_t sockets = 0;    // all states, TIME_WAIT included
  uint32_t time_wait = 0;  // of which in TIME_WAIT
  uint32_t reusable = 0;   // TIME_WAIT that tcp_tw_reuse lets connect() take over now
};

struct ListenerFact {
  uint16_t family = 0;
  std::array<uint8_t, 16> addr{};
  uint16_t port = 0;
  uint32_t queue = 0;        // completed connections waiting for accept()
  uint32_t max_backlog = 0;  // min(listen() backlog, somaxconn at listen time)
};

struct SocketSummary {
  uint32_t sockets = 0;            // all TCP sockets
  uint32_t time_wait = 0;          // all TIME_WAIT
  uint32_t time_wait_inbound = 0;  // TIME_WAIT on a local listening port (this host closed first as a server)
  uint32_t ephemeral_in_use = 0;   // distinct local ports inside the usable range held by a non-listening socket
  std::vector<DestinationUse> destinations;  // outgoing, busiest first (by sockets - reusable)
  std::vector<ListenerFact> listeners;
};

struct OtherNetns {
  uint32_t netns = 0;
  std::string path;   // a file that opens it: /proc/<pid>/ns/net or /run/netns/<name>
  std::string label;  // "/run/netns/<name>" or "pid <pid> (<comm>)"
  NetnsSettings settings;
  uint32_t time_wait = 0;
  bool has_busiest = false;
  DestinationUse busiest;
};

// Cumulative counters of the netns (/proc/net/netstat, since boot or netns
// creation) that show whether a wall has already been hit.
struct TcpCounters {
  uint64_t time_wait_overflow = 0;  // TcpExtTCPTimeWaitOverflow: closed without TIME_WAIT (tcp_max_tw_buckets)
  uint64_t listen_overflows = 0;    // TcpExtListenOverflows: accept queue full
  uint64_t listen_drops = 0;        // TcpExtListenDrops: all drops at listeners, overflows included
  uint64_t req_q_full_drop = 0;     // TcpExtTCPReqQFullDrop: SYN dropped, SYN queue full and no cookies
};

struct HostFacts {
  NetnsSettings settings;
  bool settings_read = false;
  TcpCounters counters;
  bool counters_read = false;
  std::string kernel;       // uname -r
  uint32_t init_netns = 0;  // netns of PID 1 when readable, else 0
  uint64_t file_max = 0, nr_open = 0;
  uint64_t files_allocated = 0;  // first field of fs.file-nr
  bool have_file_nr = false;
  std::vector<ProcessFds> processes;  // busiest first, at most 5
  uint32_t processes_scanned = 0, processes_unreadable = 0;
  bool sockets_read = false;
  SocketSummary sockets;
  bool other_netns_read = false;  // some other namespaces could be inspected
  std::vector<OtherNetns> other_netns;
  std::vector<std::string> warnings;  // what could not be collected, one line each
};

// The TcpCounters out of parse_netstat_counters() (a counter the kernel lacks stays 0).
TcpCounters tcp_counters(const std::map<std::string, uint64_t>& all);

// Groups a netns's sockets: listeners, TIME_WAIT totals and the outgoing
// sockets per (local address, remote address, remote port), top
// `top_destinations` of them. A socket whose local port is a listening port
// of that family is inbound; the rest with a remote port are outgoing.
SocketSummary summarize_sockets(const std::vector<SocketRecord>& sockets, const NetnsSettings& settings,
                                size_t top_destinations = 10);

// tcp_twsk_unique(): reuse needs tcp_tw_reuse 1 (any peer) or 2 (loopback) and
// the old connection's timestamps, so tcp_timestamps on.
bool tw_reuse_applies(const NetnsSettings& s, uint16_t family, const std::array<uint8_t, 16>& saddr,
                      const std::array<uint8_t, 16>& daddr);

// The ports a destination holds that connect() cannot take over now.
inline uint32_t effective_use(const DestinationUse& d) { return d.sockets - d.reusable; }

// "10.0.0.1 -> 10.0.0.5:443".
std::string dest_subject(const DestinationUse& d);

}  // namespace connscope
