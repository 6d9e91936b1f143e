// Reconciliation against a sock_diag census (reconcile.hpp).
#include "aggregate/reconcile.hpp"

#include <algorithm>

#include "aggregate/port_model.hpp"

namespace connscope {

namespace {

// Whether a dump of `scope` would have held a tracked socket: its local
// port in the span, and every kernel state its port state stands for asked.
bool covers(const CensusScope& scope, const SockKey& key, const SockEntry& e) {
  if (!scope.local_ports.contains(key.sport)) return false;
  switch (e.state) {
    case PortState::connecting:
      return (scope.states & tcp_state_bit(CS_TCP_SYN_SENT)) != 0;
    case PortState::time_wait:
      return (scope.states & tcp_state_bit(CS_TCP_TIME_WAIT)) != 0;
    case PortState::open:
      return (scope.states & kOpenStates) == kOpenStates;
  }
  return false;
}

}  // namespace

ReconcileResult Reconciler::reconcile(uint32_t netns, const NetnsSettings* st, const std::vector<SocketRecord>& sockets,
                                      uint64_t dump_ts, CensusScope scope, const Skip& skip) {
  ReconcileResult r;
  for (const SocketRecord& s : sockets)
    if (s.state == CS_TCP_LISTEN) listeners_.add_listen_port(netns, s.sport);

  // Entries the dump holds get this run's mark (no set of keys to build:
  // a census can hold hundreds of thousands of sockets).
  const uint32_t mark = static_cast<uint32_t>(runs_total_ + 1);
  std::map<Destination*, std::array<int64_t, kPortStates>> corrections;
  auto correct = [&corrections](Destination* d, PortState s, int64_t delta) {
    corrections[d][static_cast<size_t>(s)] += delta;
  };
  for (const SocketRecord& s : sockets) {
    if (s.state == CS_TCP_LISTEN || s.state == CS_TCP_SYN_RECV || s.state == CS_TCP_CLOSE || s.state == 0 ||
        s.state > CS_TCP_CLOSING)
      continue;
    if (skip && skip(s)) continue;
    const PortState ps = s.state == CS_TCP_SYN_SENT    ? PortState::connecting
                         : s.state == CS_TCP_TIME_WAIT ? PortState::time_wait
                                                       : PortState::open;
    SockKey key{netns, s.family, s.sport, s.dport, s.saddr, s.daddr};
    const SockEntry* tracked = ports_.find(key);
    if (!tracked && listeners_.is_listen_port(netns, s.sport)) continue;  // accepted from a local listener: not ours
    Destination* d =
        tracked ? tracked->dest : destinations_.resolve(netns, s.family, s.saddr, s.daddr, s.dport, dump_ts, false);
    if (!d) {
      // A socket the events never showed (older than the agent): outgoing
      // when its local port is ephemeral and its remote port is not. Both
      // ephemeral is ambiguous (a server on a port-0 listener that has gone,
      // TIME_WAIT on the server side), so it is left out.
      auto ephemeral = [st](uint16_t port) { return st && port >= st->port_lo && port <= st->port_hi; };
      if (!ephemeral(s.sport) || ephemeral(s.dport)) continue;
      d = destinations_.resolve(netns, s.family, s.saddr, s.daddr, s.dport, dump_ts, true);
    }
    // A TIME_WAIT socket's timer says how long it has left of its 60 s.
    const uint64_t tw_expires =
        ps == PortState::time_wait ? dump_ts + std::min<uint64_t>(s.expires_ms * 1000000ull, kTimeWaitNs) : 0;
    if (!tracked) {
      if (ports_.set(key, d, ps, dump_ts, tw_expires)) {
        r.added++;
        correct(d, ps, +1);
        ports_.set_census_mark(key, mark);
      }
      continue;
    }
    if (tracked->updated_ns <= dump_ts && tracked->state != ps) {
      correct(tracked->dest, tracked->state, -1);
      correct(d, ps, +1);
      ports_.set(key, d, ps, dump_ts, tw_expires);
      r.restated++;
    }
    tracked->census_mark = mark;
  }
  ports_.erase_if([&](const SockKey& key, const SockEntry& e) {
    if (key.netns != netns || e.updated_ns > dump_ts || e.census_mark == mark || !covers(scope, key, e)) return false;
    correct(e.dest, e.state, -1);
    r.removed++;
    return true;
  });
  for (auto& [d, c] : corrections) {
    d->stats.corrected_connecting += c[static_cast<size_t>(PortState::connecting)];
    d->stats.corrected_open += c[static_cast<size_t>(PortState::open)];
    d->stats.corrected_time_wait += c[static_cast<size_t>(PortState::time_wait)];
    for (size_t i = 0; i < kPortStates; ++i)
      if (c[i])
        corrections_total_[port_state_name(static_cast<PortState>(i))] +=
            static_cast<uint64_t>(c[i] < 0 ? -c[i] : c[i]);
  }
  runs_total_++;
  return r;
}

}  // namespace connscope
