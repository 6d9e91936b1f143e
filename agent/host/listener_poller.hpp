// Accept-queue fallback: a user-space poll of the listen counters and the
// TCP listeners of every network namespace, for kernels where BPF cannot see
// accept-queue overflows (no kprobes/fentry; a SYN dropped on a full accept
// queue is consumed, not freed with a drop reason).
//
// Per network namespace it reads TcpExtListenOverflows / TcpExtListenDrops
// (/proc/net/netstat is per-netns) and dumps the TCP LISTEN sockets over
// netlink sock_diag, where a listener's idiag_rqueue is its accept-queue
// length (sk_ack_backlog) and idiag_wqueue its max backlog
// (sk_max_ack_backlog). When the counters grow, the growth is attributed to
// the listeners whose queue is full at poll time; records carry
// CS_AQ_F_APPROXIMATE.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "connscope/events.h"

namespace connscope {

struct NetstatCounters {
  uint64_t listen_overflows = 0;
  uint64_t listen_drops = 0;
};

// TcpExtListenOverflows and TcpExtListenDrops out of /proc/net/netstat text
// (parse_netstat_counters). nullopt if the text is malformed or lacks either
// counter.
std::optional<NetstatCounters> parse_netstat(std::string_view text);

struct ListenerInfo {
  uint16_t family;               // AF_INET or AF_INET6
  std::array<uint8_t, 16> addr;  // network order, IPv4 in the first 4 bytes
  uint16_t port;                 // host order
  uint32_t queue_len;            // idiag_rqueue = sk_ack_backlog
  uint32_t max_backlog;          // idiag_wqueue = sk_max_ack_backlog
  uint32_t drops = 0;            // SK_MEMINFO_DROPS (sk_drops): bumped by every tcp_listendrop()
  bool has_drops = false;        // the dump carried INET_DIAG_SKMEMINFO
  uint32_t inode = 0;            // idiag_inode: the socket's inode, what /proc/<pid>/fd links name
  std::string owner;             // "nginx (pid 812)": the process holding it (live runs; never recorded)
};

// One namespace's listeners at one time.
struct ListenerDump {
  uint64_t ts_ns;
  uint32_t netns;
  std::vector<ListenerInfo> listeners;
};

// The kernel's sk_acceptq_is_full(): sk_ack_backlog > sk_max_ack_backlog.
// A listener holds max_backlog + 1 connections before it drops.
inline bool listener_is_full(const ListenerInfo& l) { return l.queue_len > l.max_backlog; }

// Pure attribution step for one netns: the cs_accept_queue_event records for
// the growth from prev to cur.
//  - CS_AQ_OVERFLOW, count = ListenOverflows delta, split over the full
//    listeners (input order; the first ones get the remainder; records of
//    count 0 are left out) so the counts sum to the delta exactly; one
//    unattributed record (family 0, port 0) if no listener is full. With
//    prev_listeners: listeners whose own drop counter grew get up to that
//    growth first (a listener absent from prev_listeners is new and counts
//    from 0), and a listener full at the last poll that has closed since
//    stands in for "full now" when nothing is.
//  - CS_AQ_DROP, count = ListenDrops delta - ListenOverflows delta when
//    positive (every overflow is also a listen drop), unattributed.
//  - Nothing when either counter went backwards (reset / netns inode reuse).
std::vector<cs_accept_queue_event> attribute_listen_drops(uint32_t netns, const NetstatCounters& prev,
                                                          const NetstatCounters& cur,
                                                          const std::vector<ListenerInfo>& listeners, uint64_t ts_ns,
                                                          const std::vector<ListenerInfo>* prev_listeners = nullptr);

// Parses one recv() buffer of a NETLINK_SOCK_DIAG inet_diag dump, appending
// the sockets of TCP LISTEN state to *out. Returns 1 when the buffer holds
// NLMSG_DONE, 0 when more buffers follow, -errno on NLMSG_ERROR or -EBADMSG
// on a malformed buffer (then nothing is appended).
int parse_sock_diag_listeners(std::span<const uint8_t> buf, std::vector<ListenerInfo>* out);

class ListenerPoller {
 public:
  using Emit = std::function<void(const cs_accept_queue_event&)>;

  ListenerPoller(Emit emit, uint32_t netns_filter /*0 = all*/);

  // Enumerates network namespaces (/proc/[0-9]*/ns/net and /run/netns/*,
  // deduplicated by inode), reads counters and listeners in each (setns() on
  // the calling thread, restoring its original netns before returning: run it
  // on a dedicated thread), and emits records for counter growth. The first
  // sighting of a netns only records a baseline. Namespaces that vanish or
  // cannot be opened are skipped; a failed listener dump degrades to
  // unattributed records. Returns false with *error set when polling cannot
  // go on (setns refused: CAP_SYS_ADMIN missing; the original netns could not
  // be restored). Never throws.
  bool poll_once(std::string* error);

  // Distinct namespaces read by the last poll_once().
  uint64_t namespaces_seen() const { return namespaces_seen_; }

 private:
  bool poll_impl(std::string* error);

  Emit emit_;
  uint32_t netns_filter_;
  struct Baseline {
    NetstatCounters counters;
    std::vector<ListenerInfo> listeners;
  };
  std::unordered_map<uint32_t, Baseline> baseline_;  // by netns inode
  uint64_t namespaces_seen_ = 0;
};

}  // namespace connscope
