// Shaping the doctor's facts: netstat counters and the sockets summary of a netns. No I/O here.
#include "doctor/facts.hpp"

#include <netinet/tcp.h>

#include <algorithm>
#include <set>
#include <tuple>

#include "host/netstat.hpp"
#include "util/address.hpp"

namespace connscope {

namespace {

bool in_reserved(uint16_t port, const std::vector<PortRange>& reserved) {
  return std::any_of(reserved.begin(), reserved.end(),
                     [port](const PortRange& r) { return port >= r.lo && port <= r.hi; });
}

}  // namespace

bool tw_reuse_applies(const NetnsSettings& s, uint16_t family, const std::array<uint8_t, 16>& saddr,
                      const std::array<uint8_t, 16>& daddr) {
  if (s.timestamps == 0) return false;
  if (s.tw_reuse == 1) return true;
  return s.tw_reuse == 2 && (is_loopback(family, saddr) || is_loopback(family, daddr));
}

std::string dest_subject(const DestinationUse& d) {
  return format_address(d.family, d.saddr) + " -> " + format_endpoint(d.family, d.daddr, d.dport);
}

TcpCounters tcp_counters(const std::map<std::string, uint64_t>& all) {
  auto get = [&all](const char* name) { return netstat_value(all, name).value_or(0); };
  TcpCounters c;
  c.time_wait_overflow = get("TcpExtTCPTimeWaitOverflow");
  c.listen_overflows = get("TcpExtListenOverflows");
  c.listen_drops = get("TcpExtListenDrops");
  c.req_q_full_drop = get("TcpExtTCPReqQFullDrop");
  return c;
}

SocketSummary summarize_sockets(const std::vector<SocketRecord>& sockets, const NetnsSettings& settings,
                                size_t top_destinations) {
  SocketSummary sum;
  std::set<std::pair<uint16_t, uint16_t>> listening;  // (family, port)
  for (const SocketRecord& s : sockets) {
    if (s.state != TCP_LISTEN) continue;
    listening.emplace(s.family, s.sport);
    sum.listeners.push_back(ListenerFact{s.family, s.saddr, s.sport, s.rqueue, s.wqueue});
  }
  using Key = std::tuple<uint16_t, std::array<uint8_t, 16>, std::array<uint8_t, 16>, uint16_t>;
  std::map<Key, DestinationUse> by_dest;
  std::set<uint16_t> ephemeral;
  for (const SocketRecord& s : sockets) {
    if (s.sport >= settings.port_lo && s.sport <= settings.port_hi && !in_reserved(s.sport, settings.reserved))
      ephemeral.insert(s.sport);
    if (s.state == TCP_LISTEN) continue;
    ++sum.sockets;
    const bool tw = s.state == TCP_TIME_WAIT;
    sum.time_wait += tw ? 1 : 0;
    if (listening.count({s.family, s.sport})) {
      sum.time_wait_inbound += tw ? 1 : 0;
      continue;
    }
    if (s.dport == 0) continue;
    DestinationUse& d = by_dest[Key{s.family, s.saddr, s.daddr, s.dport}];
    if (d.sockets == 0) {
      d.family = s.family;
      d.saddr = s.saddr;
      d.daddr = s.daddr;
      d.dport = s.dport;
    }
    ++d.sockets;
    if (!tw) continue;
    ++d.time_wait;
    const uint32_t age_ms = kTimeWaitMs - std::min(s.expires_ms, kTimeWaitMs);
    if (tw_reuse_applies(settings, s.family, s.saddr, s.daddr) && age_ms >= settings.tw_reuse_delay_ms) ++d.reusable;
  }
  sum.ephemeral_in_use = static_cast<uint32_t>(ephemeral.size());
  for (auto& [key, d] : by_dest) sum.destinations.push_back(d);
  std::stable_sort(sum.destinations.begin(), sum.destinations.end(), [](const auto& a, const auto& b) {
    return std::make_pair(effective_use(a), a.sockets) > std::make_pair(effective_use(b), b.sockets);
  });
  if (sum.destinations.size() > top_destinations) sum.destinations.resize(top_destinations);
  return sum;
}

}  // namespace connscope
