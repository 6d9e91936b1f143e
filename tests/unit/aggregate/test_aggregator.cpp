#include <arpa/inet.h>
#include <doctest/doctest.h>

#include <cstring>

#include "aggregate/aggregator.hpp"

using namespace connscope;

namespace {

constexpr uint64_t kSec = 1000000000ull;
constexpr uint32_t kNs = 4026532001u;

cs_flow flow(const char* src, uint16_t sport, const char* dst, uint16_t dport, uint32_t netns = kNs) {
  cs_flow f{};
  f.family = AF_INET;
  inet_pton(AF_INET, src, f.saddr);
  inet_pton(AF_INET, dst, f.daddr);
  f.sport = sport;
  f.dport = dport;
  f.netns = netns;
  return f;
}

cs_task task(uint32_t pid, const char* comm) {
  cs_task t{};
  t.pid = t.tgid = pid;
  std::strncpy(t.comm, comm, sizeof t.comm - 1);
  return t;
}

cs_connect_event connect_ev(uint64_t ts, const cs_flow& f, int err = 0, uint64_t latency = 20000) {
  cs_connect_event e{};
  e.h.type = CS_EV_CONNECT;
  e.h.ts_ns = ts;
  e.task = task(77, "curl");
  e.flow = f;
  e.latency_ns = latency;
  e.err = err;
  return e;
}

cs_port_alloc_event alloc_ev(uint64_t ts, const cs_flow& f, uint64_t dur, int err = 0) {
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

cs_state_event state_ev(uint64_t ts, const cs_flow& f, uint8_t from, uint8_t to, uint16_t flags = 0,
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

// One full active connection that ends in TIME_WAIT on the client.
void connection(Aggregator& a, uint64_t ts, uint16_t sport, uint64_t handshake_ns = 50000) {
  cs_flow f = flow("10.0.0.1", sport, "10.0.0.2", 80);
  a.on_event(alloc_ev(ts, f, 1500));
  a.on_event(connect_ev(ts + 1000, f));
  a.on_event(state_ev(ts + handshake_ns, f, 2, 1, 0, handshake_ns));
  a.on_event(state_ev(ts + handshake_ns + 1000, f, 5, 7, CS_STATE_F_TIME_WAIT));  // FIN_WAIT2 -> CLOSE
}

const DestinationStats* find_dst(const Snapshot& s, const std::string& dst) {
  for (const auto& d : s.destinations)
    if (d.dst == dst) return &d;
  return nullptr;
}

NetnsSettings narrow_settings() {
  NetnsSettings s;
  s.netns = kNs;
  s.port_lo = 40000;
  s.port_hi = 40099;
  s.usable_ports = 100;
  s.tw_reuse = 0;
  return s;
}

}  // namespace

TEST_CASE("connections: counts, ports by state, latency, the model") {
  Aggregator a(AggregatorConfig{});
  a.start(10 * kSec);
  a.set_netns_settings(narrow_settings());
  for (uint16_t i = 0; i < 20; ++i) connection(a, 10 * kSec + i * 10000000ull, static_cast<uint16_t>(40000 + i));
  // One still connecting, one open.
  cs_flow c = flow("10.0.0.1", 40050, "10.0.0.2", 80), o = flow("10.0.0.1", 40051, "10.0.0.2", 80);
  a.on_event(connect_ev(10 * kSec + 500000000, c));
  a.on_event(connect_ev(10 * kSec + 500000000, o));
  a.on_event(state_ev(10 * kSec + 500100000, o, 2, 1, 0, 100000));
  Snapshot s = a.close_interval(11 * kSec, 1000.0);
  CHECK(s.interval_s == doctest::Approx(1.0));
  const DestinationStats* d = find_dst(s, "10.0.0.2:80");
  REQUIRE(d);
  CHECK(d->src == "10.0.0.1");
  CHECK(d->attempts == 22);
  CHECK(d->established == 21);
  CHECK(d->time_wait == 20);
  CHECK(d->connecting == 1);
  CHECK(d->open == 1);
  CHECK(d->model.in_use == 22);
  CHECK(d->model.usable_ports == 100);
  CHECK(d->model.utilization == doctest::Approx(0.22));
  CHECK(d->model.connect_rate == doctest::Approx(22.0));
  CHECK(d->model.sustainable_rate == doctest::Approx(100.0 / 60));
  CHECK(d->model.time_to_exhaustion_s.has_value());
  CHECK(d->handshake.summary.count == 21);
  CHECK(d->handshake.summary.p50 == doctest::Approx(50e-6).epsilon(1.0 / 32));
  CHECK(d->handshake.summary.max == doctest::Approx(100e-6));
  CHECK(d->port_search.interval.count() == 20);
  CHECK(d->connect_syscall.interval.count() == 22);
  REQUIRE(d->processes.size() == 1);
  CHECK(d->processes[0].comm == "curl");
  CHECK(d->processes[0].attempts == 22);
  CHECK(s.handshake.interval.count() == 21);
  CHECK(s.health.events_total.at("connect") == 22);

  // The next interval: counters restart, ports stay; TIME_WAIT ends 60 s on.
  Snapshot s2 = a.close_interval(12 * kSec, 1001.0);
  d = find_dst(s2, "10.0.0.2:80");
  REQUIRE(d);
  CHECK(d->attempts == 0);
  CHECK(d->attempts_total == 22);
  CHECK(d->time_wait == 20);
  CHECK(d->handshake.interval.count() == 0);
  CHECK(d->handshake.total.count() == 21);
  Snapshot s3 = a.close_interval(70 * kSec + 100000000, 1059.1);
  d = find_dst(s3, "10.0.0.2:80");
  REQUIRE(d);
  CHECK(d->time_wait == 10);  // the first ten entered TIME_WAIT before 10.1 s
  Snapshot s4 = a.close_interval(72 * kSec, 1061.0);
  CHECK(find_dst(s4, "10.0.0.2:80")->time_wait == 0);
}

TEST_CASE("failures: errno names, a failed connect without a source address") {
  Aggregator a(AggregatorConfig{});
  a.start(kSec);
  connection(a, kSec, 40000);
  cs_flow failed = flow("0.0.0.0", 0, "10.0.0.2", 80);
  a.on_event(alloc_ev(kSec + 100, failed, 900000, 99));
  a.on_event(connect_ev(kSec + 200, failed, 99 /*EADDRNOTAVAIL*/));
  cs_flow refused = flow("10.0.0.1", 40001, "10.0.0.2", 80);
  a.on_event(connect_ev(kSec + 300, refused));
  a.on_event(state_ev(kSec + 400, refused, 2, 7, 0, 0, 111 /*ECONNREFUSED*/));
  Snapshot s = a.close_interval(2 * kSec, 1.0);
  REQUIRE(s.destinations.size() == 1);  // the failed connect joined the real row
  const DestinationStats& d = s.destinations[0];
  CHECK(d.errors.at("EADDRNOTAVAIL") == 1);
  CHECK(d.errors.at("ECONNREFUSED") == 1);
  CHECK(d.errors_total.at("EADDRNOTAVAIL") == 1);
  CHECK(d.connecting == 0);  // the refused socket is gone
  CHECK(d.port_search.summary.max == doctest::Approx(900e-6));
}

TEST_CASE("cardinality: destinations beyond the limit fold into other, counted") {
  AggregatorConfig cfg;
  cfg.top_destinations = 2;
  Aggregator a(cfg);
  a.start(kSec);
  for (int i = 0; i < 5; ++i) {
    std::string dst = "10.0.1." + std::to_string(i + 1);
    cs_flow f = flow("10.0.0.1", static_cast<uint16_t>(40000 + i), dst.c_str(), 443);
    a.on_event(connect_ev(kSec + i, f));
    a.on_event(connect_ev(kSec + 100 + i, flow("10.0.0.1", static_cast<uint16_t>(41000 + i), dst.c_str(), 443)));
  }
  Snapshot s = a.close_interval(2 * kSec, 1.0);
  REQUIRE(s.destinations.size() == 3);
  CHECK(s.destinations.back().other);
  CHECK(s.destinations.back().dst == "other");
  CHECK(s.destinations.back().attempts == 6);
  CHECK(s.destinations.back().connecting == 6);
  CHECK(s.health.destinations_folded_total == 3);  // each folded destination counted once
  CHECK(s.health.destinations_tracked == 2);
}

TEST_CASE("reconcile: the socket table follows sock_diag, corrections counted") {
  Aggregator a(AggregatorConfig{});
  a.start(kSec);
  a.set_netns_settings(narrow_settings());
  connection(a, kSec, 40000);                                                  // TIME_WAIT per events
  a.on_event(connect_ev(kSec + 10, flow("10.0.0.1", 40001, "10.0.0.2", 80)));  // connecting per events
  auto rec = [](uint16_t sport, uint8_t state, uint32_t expires_ms = 0) {
    SocketRecord r{};
    r.family = AF_INET;
    inet_pton(AF_INET, "10.0.0.1", r.saddr.data());
    inet_pton(AF_INET, "10.0.0.2", r.daddr.data());
    r.sport = sport;
    r.dport = 80;
    r.state = state;
    r.expires_ms = expires_ms;
    return r;
  };
  // The dump: 40000 in TIME_WAIT, 40001 gone (its close was lost), two
  // TIME_WAIT sockets from before the agent started, a passive socket
  // (local port 8080, a listener) that is not ours.
  SocketRecord passive = rec(8080, 1);
  passive.dport = 50000;
  SocketRecord listener = rec(8080, 10);
  // Both ports ephemeral: could be the server side of a connection to a
  // port-0 listener that has gone; not taken for an upstream.
  SocketRecord ambiguous = rec(40005, 6, 30000);
  ambiguous.dport = 40090;
  std::vector<SocketRecord> dump = {
      rec(40000, 6, 59000), rec(40002, 6, 30000), rec(40003, 6, 1000), passive, listener, ambiguous};
  ReconcileResult r = a.reconcile(kNs, dump, 2 * kSec);
  CHECK(r.added == 2);
  CHECK(r.removed == 1);
  Snapshot s = a.close_interval(2 * kSec + kSec / 2, 2.0);
  REQUIRE(s.destinations.size() == 1);
  const DestinationStats& d = s.destinations[0];
  CHECK(d.time_wait == 3);
  CHECK(d.connecting == 0);
  CHECK(d.corrected_time_wait == 2);
  CHECK(d.corrected_connecting == -1);
  CHECK(s.health.reconcile_runs_total == 1);
  CHECK(s.health.reconcile_corrections_total.at("time_wait") == 2);
  // 40003 had 1 s left at the dump: gone at 3 s; 40002 (30 s left) stays.
  Snapshot s2 = a.close_interval(4 * kSec, 3.0);
  CHECK(s2.destinations[0].time_wait == 2);
  Snapshot s3 = a.close_interval(33 * kSec, 32.0);
  CHECK(s3.destinations[0].time_wait == 1);
}

TEST_CASE("listeners: accepts, queue samples, overflows, SYN-ACK retransmits") {
  Aggregator a(AggregatorConfig{});
  a.start(kSec);
  ListenerInfo l{};
  l.family = AF_INET;
  l.port = 8080;
  l.queue_len = 3;
  l.max_backlog = 4;
  a.on_listener_sample(kNs, {l}, kSec + 1);
  cs_flow in = flow("10.0.0.2", 8080, "10.0.0.1", 50000);
  a.on_event(state_ev(kSec + 10, in, 3, 1, CS_STATE_F_PASSIVE, 30000));
  cs_accept_queue_event ov{};
  ov.h.type = CS_EV_ACCEPT_QUEUE;
  ov.h.ts_ns = kSec + 20;
  ov.flow = flow("0.0.0.0", 8080, "0.0.0.0", 0);
  ov.kind = CS_AQ_OVERFLOW;
  ov.count = 5;
  ov.backlog = 5;
  ov.max_backlog = 4;
  a.on_event(ov);
  cs_accept_queue_event un = ov;
  un.flow = cs_flow{};
  un.flow.netns = kNs;
  un.count = 2;
  a.on_event(un);
  cs_retransmit_event rt{};
  rt.h.type = CS_EV_RETRANSMIT;
  rt.h.ts_ns = kSec + 30;
  rt.flow = in;
  rt.kind = CS_RETRANS_SYNACK;
  rt.state = 3;
  a.on_event(rt);
  Snapshot s = a.close_interval(2 * kSec, 1.0);
  REQUIRE(s.listeners.size() == 2);
  const ListenerStats& ls = s.listeners[0];
  CHECK(ls.listen == "0.0.0.0:8080");
  CHECK(ls.accepts == 1);
  CHECK(ls.overflows == 5);
  CHECK(ls.synack_retransmits == 1);
  CHECK(ls.queue_len == 3);
  CHECK(ls.queue_peak == 5);
  CHECK(ls.max_backlog == 4);
  CHECK(ls.fill.interval.count() == 1);
  CHECK(s.listeners[1].listen == "unattributed");
  CHECK(s.listeners[1].overflows == 2);
  CHECK(s.accept_queue_fill.interval.count() == 1);
}

TEST_CASE("losses: cumulative counters become per-interval deltas") {
  Aggregator a(AggregatorConfig{});
  a.start(kSec);
  LossCounters l{};
  l.lost_by_type[CS_EV_STATE] = 4;
  l.lost_total = 4;
  a.on_losses(l);
  Snapshot s = a.close_interval(2 * kSec, 1.0);
  CHECK(s.health.lost_interval == 4);
  CHECK(s.health.lost_total.at("state") == 4);
  a.on_losses(l);
  Snapshot s2 = a.close_interval(3 * kSec, 2.0);
  CHECK(s2.health.lost_interval == 0);
  a.on_decode_error();
  CHECK(a.close_interval(4 * kSec, 3.0).health.decode_errors_total == 1);
}
