// Every TCP socket of a network namespace, read the way `ss` does: a
// NETLINK_SOCK_DIAG inet_diag dump per address family. Unlike /proc/net/tcp
// it includes TIME_WAIT timers and listeners' accept-queue limits, costs no
// text parsing, and shows the calling thread's netns (see for_each_netns).
#pragma once

#include <linux/inet_diag.h>

#include <array>
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

namespace connscope {

struct SocketRecord {
  uint16_t family = 0;                       // AF_INET / AF_INET6
  std::array<uint8_t, 16> saddr{}, daddr{};  // network order; IPv4 in first 4 bytes (IPv4-mapped v6 stays v6)
  uint16_t sport = 0, dport = 0;             // host order
  uint8_t state = 0;                         // TCP_* (1 ESTABLISHED ... 10 LISTEN, 6 TIME_WAIT)
  uint32_t expires_ms = 0;                   // idiag_expires (TIME_WAIT: time left)
  uint32_t rqueue = 0, wqueue = 0;           // LISTEN: accept-queue length / max backlog
  uint32_t uid = 0, inode = 0;
};

// Local ports a dump covers (both ends inclusive); the whole space by default.
struct PortSpan {
  uint16_t lo = 0, hi = 65535;
  bool all() const { return lo == 0 && hi == 65535; }
  bool contains(uint16_t p) const { return p >= lo && p <= hi; }
  bool operator==(const PortSpan&) const = default;
};

// TCP state bit masks (1u << TCP_x) for census dumps.
constexpr uint32_t tcp_state_bit(int state) { return 1u << state; }
inline constexpr uint32_t kCensusStates = 0xfffu & ~tcp_state_bit(10);  // every state but LISTEN
inline constexpr uint32_t kTimeWaitStates = tcp_state_bit(6);           // TIME_WAIT only
// The states of a port the model counts as open: ESTABLISHED .. CLOSING.
inline constexpr uint32_t kOpenStates =
    tcp_state_bit(1) | tcp_state_bit(4) | tcp_state_bit(5) | tcp_state_bit(8) | tcp_state_bit(9) | tcp_state_bit(11);

// What a census dump held: sockets in these states with a local port in
// this span. A reconciliation corrects only what its dump could have held.
struct CensusScope {
  uint32_t states = kCensusStates;
  PortSpan local_ports;
  bool whole() const { return states == kCensusStates && local_ports.all(); }
  bool operator==(const CensusScope&) const = default;
};

// INET_DIAG_REQ_BYTECODE for "local port in span": S_GE lo, then S_LE hi,
// each jumping past the end (reject) when false. The kernel runs it per
// socket in the dump (inet_diag_bc_run), so sockets outside the span are
// never copied out. Empty for the whole space.
std::vector<uint8_t> local_port_filter(PortSpan span);

// Parses one recv() buffer of an inet_diag dump, appending records. 1 =
// NLMSG_DONE seen, 0 = more buffers follow, -errno on NLMSG_ERROR (or a
// failed dump reported in NLMSG_DONE), -EBADMSG on malformed input (never
// reads past buf). On a negative return nothing is appended.
int parse_sock_diag_sockets(std::span<const uint8_t> buf, std::vector<SocketRecord>* out);

// Dumps TCP sockets of both families in the calling thread's netns whose
// state bit is in state_mask (1u << TCP_x; default all). Request sockets in
// SYN_RECV are reported with state TCP_SYN_RECV. With a span, only sockets
// whose local port is in it (filtered in the kernel). Returns 0 or -errno
// (out then holds what was read before the failure).
int dump_tcp_sockets(std::vector<SocketRecord>* out, uint32_t state_mask = 0xfff, PortSpan local_ports = {});

// Building blocks shared with the listener poll.

// Walks the netlink messages of one recv() buffer of an inet_diag dump and
// calls fn(msg, attributes) for each SOCK_DIAG_BY_FAMILY message (attributes:
// the rtattr bytes after the inet_diag_msg). Return values as for
// parse_sock_diag_sockets; fn has been called for the messages before a
// malformed one.
int walk_inet_diag(std::span<const uint8_t> buf,
                   const std::function<void(const inet_diag_msg&, std::span<const uint8_t> attrs)>& fn);

// Sends one TCP inet_diag dump request (family, states bit mask, idiag_ext
// bit mask, optional bytecode filter) on the NETLINK_SOCK_DIAG socket fd and
// feeds every received buffer to parse until parse returns nonzero. Returns
// 0 once parse returned 1, parse's negative value, or -errno (-EMSGSIZE if a
// buffer was truncated).
int inet_diag_dump(int fd, uint8_t family, uint32_t states, uint8_t ext, uint32_t seq,
                   const std::function<int(std::span<const uint8_t>)>& parse, std::span<const uint8_t> bytecode = {});

}  // namespace connscope
