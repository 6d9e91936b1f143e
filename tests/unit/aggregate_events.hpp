// Records and settings the aggregation tests feed the Aggregator: IPv4
// flows in one netns, connect / port-search / state records, one full
// connection ending in TIME_WAIT, a netns with 100 ephemeral ports.
#pragma once

#include <arpa/inet.h>

#include <cstring>
#include <string>

#include "aggregate/aggregator.hpp"

namespace connscope::test {

inline constexpr uint64_t kSec = 1000000000ull;
inline constexpr uint32_t kNs = 4026532001u;

inline cs_flow flow(const char* src, uint16_t sport, const char* dst, uint16_t dport, uint32_t netns = kNs) {
  cs_flow f{};
  f.family = AF_INET;
  inet_pton(AF_INET, src, f.saddr);
  inet_pton(AF_INET, dst, f.daddr);
  f.sport = sport;
  f.dport = dport;
  f.netns = netns;
  return f;
}

inline cs_task task(uint32_t pid, const char* comm) {
  cs_task t{};
  t.pid = t.tgid = pid;
  std::strncpy(t.comm, comm, sizeof t.comm - 1);
  return t;
}

inline cs_connect_event connect_ev(uint64_t ts, const cs_flow& f, int err = 0, uint64_t latency = 20000) {
  cs_connect_event e{};
  e.h.type = CS_EV_CONNECT;
  e.h.ts_ns = ts;
  e.task = task(77, "curl");
  e.flow = f;
  e.latency_ns = latency;
  e.err = err;
  return e;
}

inline cs_port_alloc_event alloc_ev(uint64_t ts, const cs_flow& f, uint64_t dur, int err = 0) {
  cs_port_alloc_event e{};
  e.h.type = CS_EV_PORT_ALLOC;
  e.h.ts_ns = ts;
  e.task = task(77, "curl");
  e.flow = f;
  e.duration_ns = dur;
  e.err = err;
  e.range_lo = 40000;
  e.range_hi = 40099;
  return e;
}

inline cs_state_event state_ev(uint64_t ts, const cs_flow& f, uint8_t from, uint8_t to, uint16_t flags = 0,
                               uint64_t latency = 0, int err = 0) {
  cs_state_event e{};
  e.h.type = CS_EV_STATE;
  e.h.ts_ns = ts;
  e.h.flags = flags;
  e.flow = f;
  e.oldstate = from;
  e.newstate = to;
  e.latency_ns = latency;
  e.err = err;
  return e;
}

// An accept-queue overflow of `count` connections on the listener `f`.
inline cs_accept_queue_event overflow_ev(uint64_t ts, const cs_flow& f, uint32_t count, uint32_t backlog,
                                         uint32_t max_backlog) {
  cs_accept_queue_event e{};
  e.h.type = CS_EV_ACCEPT_QUEUE;
  e.h.ts_ns = ts;
  e.flow = f;
  e.kind = CS_AQ_OVERFLOW;
  e.count = count;
  e.backlog = backlog;
  e.max_backlog = max_backlog;
  return e;
}

// One full active connection that ends in TIME_WAIT on the client.
inline void connection(Aggregator& a, uint64_t ts, uint16_t sport, uint64_t handshake_ns = 50000) {
  cs_flow f = flow("10.0.0.1", sport, "10.0.0.2", 80);
  a.on_event(alloc_ev(ts, f, 1500));
  a.on_event(connect_ev(ts + 1000, f));
  a.on_event(state_ev(ts + handshake_ns, f, 2, 1, 0, handshake_ns));
  a.on_event(state_ev(ts + handshake_ns + 1000, f, 5, 7, CS_STATE_F_TIME_WAIT));  // FIN_WAIT2 -> CLOSE
}

inline const DestinationStats* find_dst(const Snapshot& s, const std::string& dst) {
  for (const auto& d : s.destinations)
    if (d.dst == dst) return &d;
  return nullptr;
}

inline NetnsSettings narrow_settings() {
  NetnsSettings s;
  s.netns = kNs;
  s.port_lo = 40000;
  s.port_hi = 40099;
  s.usable_ports = 100;
  s.tw_reuse = 0;
  return s;
}

}  // namespace connscope::test
