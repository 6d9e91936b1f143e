// Accept-queue fallback: listener queues over sock_diag and listen-drop attribution.
#include "host/listener_poller.hpp"

#include <fcntl.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>
#include <iterator>
#include <limits>
#include <set>

#include "host/netns.hpp"
#include "host/netstat.hpp"
#include "host/procfs.hpp"
#include "host/socket_census.hpp"
#include "util/clock.hpp"
#include "util/unique_fd.hpp"

namespace connscope {

namespace {

// All TCP listeners (IPv4 and IPv6) of the calling thread's netns.
int dump_listeners(std::vector<ListenerInfo>* out) {
  UniqueFd fd(::socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG));
  if (!fd) return -errno;
  auto parse = [out](std::span<const uint8_t> buf) { return parse_sock_diag_listeners(buf, out); };
  constexpr uint8_t kExt = 1u << (INET_DIAG_SKMEMINFO - 1);  // per-listener drop counter
  if (int r = inet_diag_dump(fd.get(), AF_INET, 1u << TCP_LISTEN, kExt, 1, parse); r < 0) return r;
  return inet_diag_dump(fd.get(), AF_INET6, 1u << TCP_LISTEN, kExt, 2, parse);
}

void push_counted(std::vector<cs_accept_queue_event>* out, const cs_accept_queue_event& rec, uint64_t n) {
  constexpr uint64_t kMax = std::numeric_limits<uint32_t>::max();
  while (n > 0) {
    cs_accept_queue_event r = rec;
    r.count = static_cast<uint32_t>(std::min(n, kMax));
    n -= r.count;
    out->push_back(r);
  }
}

}  // namespace

std::optional<NetstatCounters> parse_netstat(std::string_view text) {
  std::optional<std::map<std::string, uint64_t>> all = parse_netstat_counters(text);
  if (!all) return std::nullopt;
  std::optional<uint64_t> overflows = netstat_value(*all, "TcpExtListenOverflows");
  std::optional<uint64_t> drops = netstat_value(*all, "TcpExtListenDrops");
  if (!overflows || !drops) return std::nullopt;
  return NetstatCounters{*overflows, *drops};
}

namespace {

bool same_listener(const ListenerInfo& a, const ListenerInfo& b) {
  return a.family == b.family && a.port == b.port && a.addr == b.addr;
}

cs_accept_queue_event listener_record(const cs_accept_queue_event& base, uint8_t kind, const ListenerInfo* l) {
  cs_accept_queue_event rec = base;
  rec.kind = kind;
  if (l) {
    rec.flow.family = l->family;
    std::memcpy(rec.flow.saddr, l->addr.data(), sizeof rec.flow.saddr);
    rec.flow.sport = l->port;
    rec.backlog = l->queue_len;
    rec.max_backlog = l->max_backlog;
  }
  return rec;
}

}  // namespace

std::vector<cs_accept_queue_event> attribute_listen_drops(uint32_t netns, const NetstatCounters& prev,
                                                          const NetstatCounters& cur,
                                                          const std::vector<ListenerInfo>& listeners, uint64_t ts_ns,
                                                          const std::vector<ListenerInfo>* prev_listeners) {
  std::vector<cs_accept_queue_event> out;
  if (cur.listen_overflows < prev.listen_overflows || cur.listen_drops < prev.listen_drops) return out;
  uint64_t overflows = cur.listen_overflows - prev.listen_overflows;
  const uint64_t drops = cur.listen_drops - prev.listen_drops;
  uint64_t other_drops = drops > overflows ? drops - overflows : 0;

  cs_accept_queue_event base{};
  base.h.type = CS_EV_ACCEPT_QUEUE;
  base.h.tier = CS_TIER_FALLBACK;
  base.h.flags = CS_AQ_F_APPROXIMATE;
  base.h.ts_ns = ts_ns;
  base.flow.netns = netns;

  // Exact first: a listener's own drop counter (sk_drops) grows with every
  // tcp_listendrop() on it, overflows included. Overflows go to listeners
  // whose counter grew, up to that growth; other drops take what is left.
  if (prev_listeners && (overflows > 0 || other_drops > 0)) {
    for (const ListenerInfo& l : listeners) {
      if (!l.has_drops) continue;
      auto was = std::find_if(prev_listeners->begin(), prev_listeners->end(),
                              [&](const ListenerInfo& p) { return p.has_drops && same_listener(p, l); });
      // A listener the last poll did not list is new since then: its
      // sk_drops started at 0 when the socket was created.
      const uint64_t before = was == prev_listeners->end() ? 0 : was->drops;
      if (l.drops <= before) continue;
      uint64_t grown = l.drops - before;
      const uint64_t o = std::min(grown, overflows);
      push_counted(&out, listener_record(base, CS_AQ_OVERFLOW, &l), o);
      overflows -= o;
      grown -= o;
      const uint64_t d = std::min(grown, other_drops);
      push_counted(&out, listener_record(base, CS_AQ_DROP, &l), d);
      other_drops -= d;
    }
  }

  // What the counters could not place: blame the listeners that are full
  // now; if none is, the ones that were full at the last poll and have
  // closed since (the overflows happened before they went away).
  if (overflows > 0) {
    std::vector<const ListenerInfo*> full;
    for (const ListenerInfo& l : listeners)
      if (listener_is_full(l)) full.push_back(&l);
    if (full.empty() && prev_listeners)
      for (const ListenerInfo& p : *prev_listeners)
        if (listener_is_full(p) && std::none_of(listeners.begin(), listeners.end(),
                                                [&](const ListenerInfo& l) { return same_listener(p, l); }))
          full.push_back(&p);
    if (full.empty()) {
      push_counted(&out, listener_record(base, CS_AQ_OVERFLOW, nullptr), overflows);
    } else {
      const uint64_t share = overflows / full.size();
      const uint64_t remainder = overflows % full.size();
      for (size_t i = 0; i < full.size(); ++i)
        push_counted(&out, listener_record(base, CS_AQ_OVERFLOW, full[i]), share + (i < remainder ? 1 : 0));
    }
  }
  if (other_drops > 0) push_counted(&out, listener_record(base, CS_AQ_DROP, nullptr), other_drops);
  return out;
}

int parse_sock_diag_listeners(std::span<const uint8_t> buf, std::vector<ListenerInfo>* out) {
  const size_t before = out->size();
  const int r = walk_inet_diag(buf, [out](const inet_diag_msg& m, std::span<const uint8_t> attrs) {
    if (m.idiag_state != TCP_LISTEN || (m.idiag_family != AF_INET && m.idiag_family != AF_INET6)) return;
    ListenerInfo l{};
    l.family = m.idiag_family;
    std::memcpy(l.addr.data(), m.id.idiag_src, l.addr.size());
    l.port = ntohs(m.id.idiag_sport);
    l.queue_len = m.idiag_rqueue;
    l.max_backlog = m.idiag_wqueue;
    l.inode = m.idiag_inode;
    // INET_DIAG_SKMEMINFO is u32[SK_MEMINFO_VARS].
    size_t at = 0;
    while (at + sizeof(rtattr) <= attrs.size()) {
      rtattr a;
      std::memcpy(&a, attrs.data() + at, sizeof a);
      if (a.rta_len < sizeof a || a.rta_len > attrs.size() - at) break;
      if (a.rta_type == INET_DIAG_SKMEMINFO && a.rta_len >= RTA_LENGTH((SK_MEMINFO_DROPS + 1) * sizeof(uint32_t))) {
        std::memcpy(&l.drops, attrs.data() + at + RTA_LENGTH(SK_MEMINFO_DROPS * sizeof(uint32_t)), sizeof l.drops);
        l.has_drops = true;
      }
      at += RTA_ALIGN(a.rta_len);
    }
    out->push_back(l);
  });
  if (r < 0) out->resize(before);
  return r;
}

ListenerPoller::ListenerPoller(Emit emit, uint32_t netns_filter)
    : emit_(std::move(emit)), netns_filter_(netns_filter) {}

bool ListenerPoller::poll_once(std::string* error) {
  try {
    return poll_impl(error);
  } catch (const std::exception& e) {
    if (error) *error = std::string("listener poll: ") + e.what();
  } catch (...) {
    if (error) *error = "listener poll: unknown exception";
  }
  return false;
}

bool ListenerPoller::poll_impl(std::string* error) {
  std::string scratch;
  if (!error) error = &scratch;

  struct Sample {
    uint32_t netns;
    NetstatCounters counters;
    std::vector<ListenerInfo> listeners;
    uint64_t ts_ns;
  };
  std::vector<Sample> samples;
  std::set<uint32_t> visited;
  const bool ok = for_each_netns(
      netns_filter_,
      [&](uint32_t ino) {
        visited.insert(ino);
        std::optional<std::string> text = read_text_file(kThreadNetstat);
        std::optional<NetstatCounters> counters = text ? parse_netstat(*text) : std::nullopt;
        const uint64_t ts = monotonic_now_ns();
        std::vector<ListenerInfo> listeners;
        if (counters && dump_listeners(&listeners) < 0) listeners.clear();  // unattributed records
        if (counters) samples.push_back(Sample{ino, *counters, std::move(listeners), ts});
      },
      error);
  if (!ok) return false;

  // Forget namespaces that no longer exist (their inode may be reused).
  for (auto it = baseline_.begin(); it != baseline_.end();)
    it = visited.count(it->first) ? std::next(it) : baseline_.erase(it);

  namespaces_seen_ = samples.size();
  for (const Sample& s : samples) {
    auto [it, first_sighting] = baseline_.try_emplace(s.netns, Baseline{s.counters, s.listeners});
    if (first_sighting) continue;
    std::vector<cs_accept_queue_event> records =
        attribute_listen_drops(s.netns, it->second.counters, s.counters, s.listeners, s.ts_ns, &it->second.listeners);
    it->second = Baseline{s.counters, s.listeners};  // before emitting: a throwing emit_ must not cause a recount
    for (const cs_accept_queue_event& rec : records) emit_(rec);
  }
  return true;
}

}  // namespace connscope
