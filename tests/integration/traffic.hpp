// The traffic of each scenario, driven by helper processes inside the
// client and server namespaces. The drivers check the kernel-side outcome
// (the connect really is refused, times out, runs out of ports, the accept
// queue really overflows) and return what the agent's records must match.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "netns.hpp"

namespace itest {

inline constexpr const char* kClientComm = "cs-itest-cli";
inline constexpr const char* kServerComm = "cs-itest-srv";

// Who made a connection, as the client process saw it.
struct ClientFacts {
  pid_t pid = 0;
  pid_t tid = 0;
  std::string comm;
  uint16_t sport = 0;  // getsockname() after connect
  int err = 0;         // connect() result
  double seconds = 0;  // how long connect() took
};

// 1. Successful connect + accept; the client closes first. The client
// connects from a second thread: client.tid != client.pid.
struct ConnectFacts {
  ClientFacts client;
  pid_t server_pid = 0;
  uint16_t listen_port = 0;
  uint16_t accepted_peer_port = 0;  // the client port as the server saw it
};
ConnectFacts drive_connect_close(const Topology& t, int af, uint16_t port, int backlog);

// 2./3. A blocking connect that fails (no listener: ECONNREFUSED; SYNs
// dropped: ETIMEDOUT). Returns the client's facts; err is the errno.
ClientFacts drive_failing_connect(const Topology& t, int af, uint16_t port, ms connect_timeout);

// 4. Established connection; `while_dropping` runs after the client wrote
// data that the server namespace drops (nft rule on the port).
struct RetransmitFacts {
  ClientFacts client;
  int64_t dropped_packets = -1;  // nft counter when while_dropping returned
};
RetransmitFacts drive_data_retransmit(const Topology& t, int af, uint16_t port,
                                      const std::function<void(const RetransmitFacts&)>& while_dropping);

// Makes TIME_WAIT last its full 60 s in the (client) namespace:
// net.ipv4.tcp_rfc1337=1. With the default 0 a TIME_WAIT socket dies on an
// in-window RST (RFC 1337 "TIME-WAIT assassination"), and this traffic draws
// such RSTs now and then although both sides close cleanly: the server's
// delayed ACK of the client's FIN (sent by a timer on the CPU that took the
// FIN) can reach the client after the server's FIN+ACK (sent by the server
// process on another CPU; veth delivers through per-CPU backlogs, so the two
// can swap, often under qemu TCG). The TIME_WAIT socket answers that stale
// segment with an ACK, the server (closed by then) answers with a RST from
// its listener, and the client's port is free 60 s early and gets reused.
// No counter shows the kill on the client; the server's Tcp OutRsts counts
// the RST. With tcp_rfc1337=1 the TIME_WAIT socket ignores the RST.
void keep_time_wait(const Netns& client);

// Sends one stale bare ACK (no options; sequence and acknowledgment numbers
// far from the connection's) over IPv4 from src:sport to dst:dport, through a
// raw socket created in `ns`: what a delayed ACK overtaken by the FIN looks
// like to the TIME_WAIT socket it reaches.
void send_stale_ack(const Netns& ns, const std::string& src, uint16_t sport, const std::string& dst, uint16_t dport);

// 5. Connect-and-close loop to one destination until EADDRNOTAVAIL.
struct ExhaustionFacts {
  pid_t pid = 0;
  std::string comm;
  std::vector<uint16_t> ports;  // successful connections' local ports, in order
  // Ports the client saw in TIME_WAIT after closing (within 5 s), and ports
  // it did not see there. With keep_time_wait() on the client namespace the
  // second list must stay empty (see there for what empties it otherwise).
  std::set<uint16_t> tw_ports;
  std::vector<uint16_t> no_tw_ports;
  int64_t server_resets = -1;  // RSTs the server namespace sent meanwhile (Tcp OutRsts delta)
  int attempts = 0;
  int final_err = 0;  // errno of the last connect (EADDRNOTAVAIL expected)
};
ExhaustionFacts drive_port_exhaustion(const Topology& t, int af, uint16_t port, int max_attempts);

// 6. Listener with a small backlog that never accepts. The first
// backlog + 1 clients complete their handshakes one by one and fill the
// accept queue; the other SYNs hit the full queue and are dropped (the
// clients retransmit them). `while_overflowing` runs while they retry.
struct OverflowFacts {
  pid_t client_pid = 0;
  pid_t server_pid = 0;                 // the process holding the listener
  std::string server_comm;              // its comm (kServerComm as the kernel keeps it)
  std::vector<uint16_t> queued_ports;   // connections in the accept queue
  std::vector<uint16_t> dropped_ports;  // connections whose SYNs are dropped
  int64_t listen_overflows_before = -1;
  int64_t listen_overflows_after = -1;  // TcpExtListenOverflows in the server ns
  int64_t client_syn_retrans = -1;      // TcpExtTCPSynRetrans in the client ns
};
OverflowFacts drive_accept_overflow(const Topology& t, int af, uint16_t port, int backlog, int nclients,
                                    const std::function<void(const OverflowFacts&)>& while_overflowing);

}  // namespace itest
