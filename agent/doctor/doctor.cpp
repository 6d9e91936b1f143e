// The pure half of `connscope doctor`: grouping sockets, turning facts into
// findings, and rendering them. No I/O here (see doctor_command.cpp).
#include "doctor/doctor.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <tuple>

#include "host/procfs.hpp"

namespace connscope {

namespace {

// TIME_WAIT lasts TCP_TIMEWAIT_LEN, compiled into the kernel.
constexpr uint32_t kTimeWaitMs = 60000;

std::string num(uint64_t v) { return v == kUnlimited ? "unlimited" : std::to_string(v); }

double pct(uint64_t part, uint64_t whole) {
  return whole == 0 ? 0.0 : 100.0 * static_cast<double>(part) / static_cast<double>(whole);
}

std::string pct_text(double p) {
  char buf[32];
  std::snprintf(buf, sizeof buf, p < 10 ? "%.1f %%" : "%.0f %%", p);
  return buf;
}

// New connections per second that `ports` sustain when each port is held for `hold_ms`.
std::string rate_text(uint64_t ports, uint32_t hold_ms) {
  return std::to_string(hold_ms == 0 ? ports : ports * 1000 / hold_ms) + "/s";
}

std::string seconds_text(uint32_t ms) {
  char buf[32];
  if (ms % 1000 == 0)
    std::snprintf(buf, sizeof buf, "%u s", ms / 1000);
  else
    std::snprintf(buf, sizeof buf, "%.3g s", ms / 1000.0);
  return buf;
}

int severity_rank(std::string_view s) {
  if (s == "critical") return 3;
  if (s == "warning") return 2;
  if (s == "info") return 1;
  return 0;
}

// tcp_twsk_unique(): reuse needs tcp_tw_reuse 1 (any peer) or 2 (loopback) and
// the old connection's timestamps, so tcp_timestamps on.
bool tw_reuse_applies(const NetnsSettings& s, uint16_t family, const std::array<uint8_t, 16>& saddr,
                      const std::array<uint8_t, 16>& daddr) {
  if (s.timestamps == 0) return false;
  if (s.tw_reuse == 1) return true;
  return s.tw_reuse == 2 && (is_loopback(family, saddr) || is_loopback(family, daddr));
}

bool in_reserved(uint16_t port, const std::vector<PortRange>& reserved) {
  return std::any_of(reserved.begin(), reserved.end(),
                     [port](const PortRange& r) { return port >= r.lo && port <= r.hi; });
}

uint32_t effective_use(const DestinationUse& d) { return d.sockets - d.reusable; }

const char* persist_hint() { return "; persist it in /etc/sysctl.d/90-connscope.conf"; }

}  // namespace

bool parse_max_open_files(std::string_view text, uint64_t* soft, uint64_t* hard) {
  constexpr std::string_view kName = "Max open files";
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (line.substr(0, kName.size()) != kName) continue;
    std::vector<std::string_view> f = split_ws(line.substr(kName.size()));
    if (f.size() < 2) return false;
    auto value = [](std::string_view s) -> std::optional<uint64_t> {
      if (s == "unlimited") return kUnlimited;
      return parse_u64(s);
    };
    std::optional<uint64_t> a = value(f[0]), b = value(f[1]);
    if (!a || !b) return false;
    *soft = *a;
    *hard = *b;
    return true;
  }
  return false;
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

namespace {

void add(std::vector<Finding>* out, std::string id, std::string severity, std::string subject, std::string value,
         std::string meaning, std::string fix) {
  out->push_back(Finding{std::move(id), std::move(severity), std::move(subject), std::move(value), std::move(meaning),
                         std::move(fix)});
}

std::string dest_subject(const DestinationUse& d) {
  return format_address(d.family, d.saddr) + " -> " + format_endpoint(d.family, d.daddr, d.dport);
}

void evaluate_ports(const HostFacts& f, std::vector<Finding>* out) {
  const NetnsSettings& s = f.settings;
  const uint32_t range = uint32_t{s.port_hi} - s.port_lo + 1;
  const std::string u = std::to_string(s.usable_ports);
  {
    std::string sev = s.usable_ports < 1000    ? "critical"
                      : s.usable_ports < 10000 ? "warning"
                      : s.usable_ports < 28232 ? "info"
                                               : "ok";
    add(out, "ports.range", sev, "net.ipv4.ip_local_port_range",
        std::to_string(s.port_lo) + "-" + std::to_string(s.port_hi) + " (" + u + " usable ports)",
        "Each (source address, destination address, destination port) can hold at most " + u +
            " connections that are open or in TIME_WAIT; one more connect() fails with EADDRNOTAVAIL (\"Cannot "
            "assign requested address\"). When this host closes first, each port then stays 60 s in TIME_WAIT: " +
            u + " ports sustain about " + u + "/60 s = " + rate_text(s.usable_ports, kTimeWaitMs) +
            " new connections per destination.",
        sev == "ok" ? ""
                    : std::string("widen it: sysctl -w net.ipv4.ip_local_port_range='1024 65535' (reserve ports "
                                  "your services listen on with net.ipv4.ip_local_reserved_ports)") +
                          persist_hint());
  }
  if (!s.reserved.empty()) {
    const uint32_t taken = range - s.usable_ports;
    const std::string sev = taken == 0 ? "ok" : pct(taken, range) > 50 ? "warning" : "info";
    add(out, "ports.reserved", sev, "net.ipv4.ip_local_reserved_ports", format_port_ranges(s.reserved),
        taken == 0
            ? "The reserved ports lie outside ip_local_port_range and do not shrink it."
            : std::to_string(taken) +
                  " reserved ports lie inside ip_local_port_range: automatic port selection "
                  "skips them, so the range offers " +
                  u + " of its " + std::to_string(range) + " ports (" + pct_text(pct(s.usable_ports, range)) + ").",
        taken == 0 ? "" : "keep only the ports services listen on reserved, or widen ip_local_port_range");
  }

  const std::string base_rate = rate_text(s.usable_ports, kTimeWaitMs);
  const std::string reuse_rate = rate_text(s.usable_ports, s.tw_reuse_delay_ms);
  const std::string delay = seconds_text(s.tw_reuse_delay_ms);
  const std::string reuse_math = "with tcp_tw_reuse=1 and timestamps about " + u + "/" + delay + " = " + reuse_rate;
  // A busy non-loopback destination makes the lack of reuse a present problem, not a potential one.
  double busiest_remote = 0;
  for (const DestinationUse& d : f.sockets.destinations)
    if (!tw_reuse_applies(s, d.family, d.saddr, d.daddr))
      busiest_remote = std::max(busiest_remote, pct(effective_use(d), s.usable_ports));
  const std::string fix_reuse = std::string("sysctl -w net.ipv4.tcp_tw_reuse=1") + persist_hint() +
                                "; or reuse connections (HTTP keep-alive, upstream connection pools)";
  if (s.tw_reuse == 0) {
    add(out, "ports.tw_reuse", busiest_remote >= 50 ? "critical" : "warning", "net.ipv4.tcp_tw_reuse", "0 (off)",
        "connect() never takes over a TIME_WAIT port: sustainable new connections per destination are about " + u +
            "/60 s = " + base_rate + "; " + reuse_math + ".",
        fix_reuse);
  } else if (s.tw_reuse == 2) {
    add(out, "ports.tw_reuse", busiest_remote >= 50 ? "warning" : "info", "net.ipv4.tcp_tw_reuse", "2 (loopback only)",
        "TIME_WAIT ports are reused only for connections over loopback (127.0.0.0/8, ::1). Connections to other hosts "
        "(upstreams of a gateway) get no reuse: about " +
            u + "/60 s = " + base_rate + " new connections per destination; " + reuse_math + ".",
        "on a host that opens many connections to other hosts: " + fix_reuse);
  } else if (s.tw_reuse == 1) {
    add(out, "ports.tw_reuse", s.timestamps == 0 ? "warning" : "ok", "net.ipv4.tcp_tw_reuse", "1 (on)",
        s.timestamps == 0
            ? "Reuse is on but cannot work: tcp_timestamps=0 (see below), so TIME_WAIT still caps "
              "new connections per destination at about " +
                  u + "/60 s = " + base_rate + "."
            : "connect() may take over a TIME_WAIT port " + delay +
                  " after it entered TIME_WAIT when the peer sent timestamps: up to about " + u + "/" + delay + " = " +
                  reuse_rate + " new connections per destination (" + base_rate + " toward peers without timestamps).",
        s.timestamps == 0 ? "sysctl -w net.ipv4.tcp_timestamps=1" + std::string(persist_hint()) : "");
  } else {
    add(out, "ports.tw_reuse", "warning", "net.ipv4.tcp_tw_reuse", std::to_string(s.tw_reuse),
        "Not a value the kernel documents (0, 1, 2).", "sysctl -w net.ipv4.tcp_tw_reuse=1");
  }
  if (s.tw_reuse_delay_present && s.tw_reuse_delay_ms != 1000)
    add(out, "ports.tw_reuse_delay", "info", "net.ipv4.tcp_tw_reuse_delay", std::to_string(s.tw_reuse_delay_ms) + " ms",
        "A TIME_WAIT port becomes reusable " + delay + " after the connection closed (default 1 s).", "");

  if (s.timestamps == 0)
    add(out, "ports.timestamps", "warning", "net.ipv4.tcp_timestamps", "0 (off)",
        "Without TCP timestamps the kernel cannot tell old segments from new ones on a reused port, so tcp_tw_reuse "
        "never applies: every closed connection holds its port for the full 60 s (" +
            base_rate + " per destination). PAWS and precise RTT measurement are off too.",
        "sysctl -w net.ipv4.tcp_timestamps=1" + std::string(persist_hint()));
  else
    add(out, "ports.timestamps", "ok", "net.ipv4.tcp_timestamps", std::to_string(s.timestamps),
        "TCP timestamps are on, which tcp_tw_reuse needs (the peer must send them too).", "");

  if (f.sockets_read) {
    const double p = pct(f.sockets.ephemeral_in_use, s.usable_ports);
    add(out, "ports.in_use",
        p >= 80   ? "warning"
        : p >= 50 ? "info"
                  : "ok",
        "ephemeral ports in use", std::to_string(f.sockets.ephemeral_in_use) + " of " + u + " (" + pct_text(p) + ")",
        "Distinct local ports of the range held by some socket. connect() alone shares a port across destinations, "
        "but bind() before connect() (or bind to port 0) needs a port no other socket holds and fails with "
        "EADDRINUSE once all " +
            u + " are taken.",
        p >= 50 ? "set IP_BIND_ADDRESS_NO_PORT on sockets that bind() a source address before connect(), or widen "
                  "ip_local_port_range"
                : "");
  }
}

void evaluate_time_wait(const HostFacts& f, std::vector<Finding>* out) {
  const NetnsSettings& s = f.settings;
  add(out, "timewait.fin_timeout", s.fin_timeout == 60 ? "ok" : "info", "net.ipv4.tcp_fin_timeout",
      std::to_string(s.fin_timeout) + " s",
      "How long an orphaned connection waits in FIN_WAIT_2 for the peer's FIN. It does NOT shorten TIME_WAIT, which "
      "is fixed at 60 s (TCP_TIMEWAIT_LEN, compiled into the kernel); changing it frees no ephemeral ports.",
      s.fin_timeout == 60 ? "" : "nothing to change for TIME_WAIT; to free ports sooner use tcp_tw_reuse=1 or pooling");

  const std::string m = std::to_string(s.max_tw_buckets);
  if (f.sockets_read) {
    const uint32_t tw = f.sockets.time_wait;
    const double p = pct(tw, s.max_tw_buckets);
    std::string sev = s.max_tw_buckets > 0 && tw >= s.max_tw_buckets ? "critical" : p >= 80 ? "warning" : "ok";
    std::string meaning = std::to_string(tw) + " sockets are in TIME_WAIT (" +
                          std::to_string(f.sockets.time_wait_inbound) +
                          " of them on listening ports, closed first by this host as a server). ";
    meaning += "Beyond " + m +
               " the kernel closes connections without TIME_WAIT and counts them in TcpExtTCPTimeWaitOverflow "
               "(older kernels also logged \"TCP: time wait bucket table overflow\"): ports free up at once, but "
               "delayed segments of an old connection can then be taken for a new one's.";
    if (s.max_tw_buckets < s.usable_ports) {
      meaning += " The limit is below one destination's " + std::to_string(s.usable_ports) + " usable ports.";
      if (sev == "ok") sev = "info";
    }
    if (f.counters_read && f.counters.time_wait_overflow > 0) {
      meaning += " It has happened: TcpExtTCPTimeWaitOverflow = " + std::to_string(f.counters.time_wait_overflow) +
                 " since boot (or since this netns was created).";
      if (sev == "ok" || sev == "info") sev = "warning";
    }
    add(out, "timewait.buckets", sev, "net.ipv4.tcp_max_tw_buckets",
        std::to_string(tw) + " of " + m + " (" + pct_text(p) + ")", meaning,
        sev == "ok" || sev == "info"
            ? ""
            : "find who closes first (the destinations below); reuse connections, or raise the limit: sysctl -w "
              "net.ipv4.tcp_max_tw_buckets=" +
                  std::to_string(std::max<uint64_t>(uint64_t{s.max_tw_buckets} * 2, 262144)) + persist_hint());
  } else {
    add(out, "timewait.buckets", "info", "net.ipv4.tcp_max_tw_buckets", m,
        "At most " + m +
            " TIME_WAIT sockets are kept; beyond that closing connections skip TIME_WAIT (counted in "
            "TcpExtTCPTimeWaitOverflow). The current count could not be read.",
        "");
  }

  if (!f.sockets_read) return;
  const std::string u = std::to_string(s.usable_ports);
  int flagged = 0;
  for (const DestinationUse& d : f.sockets.destinations) {
    const double p = pct(effective_use(d), s.usable_ports);
    if (p < 50) continue;
    const bool reuse = tw_reuse_applies(s, d.family, d.saddr, d.daddr);
    std::string meaning = std::to_string(d.sockets) + " sockets hold ports toward this destination (" +
                          std::to_string(d.time_wait) + " in TIME_WAIT";
    if (reuse) meaning += ", " + std::to_string(d.reusable) + " of them reusable now";
    meaning += "): " + pct_text(p) + " of the " + u + " usable ports. ";
    meaning += reuse ? "With tcp_tw_reuse it sustains about " + rate_text(s.usable_ports, s.tw_reuse_delay_ms) +
                           " new connections; "
                     : "TIME_WAIT is not reused for it, so it sustains about " + u +
                           "/60 s = " + rate_text(s.usable_ports, kTimeWaitMs) + " new connections; ";
    meaning += "when the ports run out connect() fails with EADDRNOTAVAIL.";
    add(out, "timewait.dest." + std::to_string(++flagged), p >= 80 ? "critical" : "warning", dest_subject(d),
        std::to_string(effective_use(d)) + " of " + u + " ports (" + pct_text(p) + ")", meaning,
        std::string("reuse connections to it (keep-alive, pooling)") +
            (reuse ? "" : "; sysctl -w net.ipv4.tcp_tw_reuse=1") + "; add source addresses (each gets its own " + u +
            " ports); widen ip_local_port_range");
  }
  if (flagged == 0) {
    if (f.sockets.destinations.empty()) {
      add(out, "timewait.destinations", "ok", "outgoing connections", "none",
          "No outgoing TCP connections or TIME_WAIT toward other services right now.", "");
    } else {
      const DestinationUse& d = f.sockets.destinations.front();
      const double p = pct(effective_use(d), s.usable_ports);
      add(out, "timewait.destinations", p >= 25 ? "info" : "ok", dest_subject(d),
          std::to_string(effective_use(d)) + " of " + u + " ports (" + pct_text(p) + ")",
          "The busiest destination: " + std::to_string(d.sockets) + " sockets, " + std::to_string(d.time_wait) +
              " in TIME_WAIT" +
              (d.reusable ? " (" + std::to_string(d.reusable) + " reusable now: tcp_tw_reuse applies to it)" : "") +
              ". No destination holds half of its ports.",
          "");
    }
  }
}

void evaluate_listen(const HostFacts& f, std::vector<Finding>* out) {
  const NetnsSettings& s = f.settings;
  const std::string sc = std::to_string(s.somaxconn);
  add(out, "listen.somaxconn",
      s.somaxconn < 1024   ? "warning"
      : s.somaxconn < 4096 ? "info"
                           : "ok",
      "net.core.somaxconn", sc,
      "listen(fd, backlog) is silently capped to " + sc + ": a listener queues at most " +
          std::to_string(uint64_t{s.somaxconn} + 1) +
          " completed connections waiting for accept(); more are dropped (ListenOverflows) and clients retry the "
          "handshake after 1 s, 3 s, ...",
      s.somaxconn < 4096 ? "sysctl -w net.core.somaxconn=4096" + std::string(persist_hint()) +
                               ", then restart the services so they listen() again"
                         : "");

  const std::string msb = std::to_string(s.max_syn_backlog);
  if (s.syncookies == 0) {
    add(out, "listen.syncookies", "warning", "net.ipv4.tcp_syncookies", "0 (off), tcp_max_syn_backlog " + msb,
        "Without SYN cookies a SYN is dropped once a listener's half-open queue reaches its backlog, and SYNs from "
        "peers this host has not talked to are dropped once the queue holds 3/4 of tcp_max_syn_backlog (" +
            std::to_string(uint64_t{s.max_syn_backlog} * 3 / 4) +
            "). A SYN flood or a reconnect storm after an upstream failover makes the service unreachable" +
            (s.max_syn_backlog < 1024 ? ", and tcp_max_syn_backlog " + msb + " is small." : "."),
        "sysctl -w net.ipv4.tcp_syncookies=1" + std::string(persist_hint()));
  } else {
    add(out, "listen.syncookies", s.syncookies == 1 ? "ok" : "info", "net.ipv4.tcp_syncookies",
        std::to_string(s.syncookies) + ", tcp_max_syn_backlog " + msb,
        s.syncookies == 1
            ? "SYN cookies answer SYNs once a listener's half-open queue is full instead of dropping them."
            : "SYN cookies answer every SYN, even with room in the queue; options that do not fit in a "
              "cookie are lost.",
        s.syncookies == 1 ? "" : "sysctl -w net.ipv4.tcp_syncookies=1 unless always-cookies is intended");
  }

  if (f.counters_read) {
    const TcpCounters& c = f.counters;
    const uint64_t other = c.listen_drops > c.listen_overflows ? c.listen_drops - c.listen_overflows : 0;
    std::string meaning = "Since boot (or since this netns was created) " + std::to_string(c.listen_overflows) +
                          " handshakes were dropped because a listener's accept queue was full";
    meaning += ", and " + std::to_string(other) + " other drops at listeners";
    if (c.req_q_full_drop > 0)
      meaning += " (" + std::to_string(c.req_q_full_drop) + " SYNs dropped on a full SYN queue without cookies)";
    meaning += ". Clients of a dropped handshake retry after 1 s, 3 s, ...";
    add(out, "listen.overflows", c.listen_overflows > 0 || other > 0 ? "warning" : "ok", "TcpExtListenOverflows",
        std::to_string(c.listen_overflows) + " overflows, " + std::to_string(c.listen_drops) + " drops", meaning,
        c.listen_overflows > 0 || other > 0
            ? "find the listener: connscope trace shows accept-queue overflows per listener as they happen; then "
              "accept faster or raise its backlog (and net.core.somaxconn)"
            : "");
  }

  if (!f.sockets_read) return;
  int n = 0;
  for (const ListenerFact& l : f.sockets.listeners) {
    const bool capped = s.somaxconn > 0 && l.max_backlog == s.somaxconn;
    const bool full = l.queue > l.max_backlog;
    const double p = pct(l.queue, l.max_backlog);
    if (!capped && !full && p < 50) continue;
    const std::string sev = full ? "critical" : p >= 50 ? "warning" : "info";
    std::string meaning = std::to_string(l.queue) + " connections wait for accept(); the queue holds at most " +
                          std::to_string(uint64_t{l.max_backlog} + 1) + ". ";
    if (capped) {
      meaning += "The backlog equals net.core.somaxconn: the application asked for ";
      meaning += sc;
      meaning += " or more and got ";
      meaning += sc;
      meaning += ". ";
    }
    if (full)
      meaning += "The queue is full: new handshakes are dropped (ListenOverflows) until the application accepts.";
    else if (p >= 50)
      meaning += "The application accepts slower than connections arrive.";
    std::string fix;
    if (full || p >= 50) fix = "accept faster (more workers/threads) or raise the listen() backlog";
    if (capped)
      fix += std::string(fix.empty() ? "" : "; ") + "raise net.core.somaxconn above " + sc +
             " and restart the service if it needs a deeper queue";
    add(out, "listen.queue." + std::to_string(++n), sev, format_endpoint(l.family, l.addr, l.port),
        "queue " + std::to_string(l.queue) + ", backlog " + std::to_string(l.max_backlog) + (capped ? " (capped)" : ""),
        meaning, fix);
  }
}

std::string fd_limit_fix(int pid, const std::string& target) {
  std::string fix = "raise it: prlimit --pid " + std::to_string(pid) + " --nofile=";
  fix += target;
  fix += ":";
  fix += target;
  fix += " now, and LimitNOFILE=";
  fix += target;
  fix += " in its systemd unit (or ulimit -n) for restarts";
  return fix;
}

void evaluate_fds(const HostFacts& f, std::vector<Finding>* out) {
  if (f.file_max > 0) {
    const double p = f.have_file_nr ? pct(f.files_allocated, f.file_max) : 0;
    add(out, "fd.file_max",
        p >= 95   ? "critical"
        : p >= 80 ? "warning"
                  : "ok",
        "fs.file-max",
        (f.have_file_nr ? std::to_string(f.files_allocated) + " of " : "") + num(f.file_max) + " open files" +
            (f.nr_open ? ", fs.nr_open " + num(f.nr_open) : ""),
        "fs.file-max caps open files of the whole host (every socket is one); at the cap open(), socket() and "
        "accept() fail with ENFILE. fs.nr_open caps what a process's RLIMIT_NOFILE can be raised to.",
        p >= 80 ? "sysctl -w fs.file-max=" + std::to_string(f.file_max * 2) + persist_hint() : "");
  }
  bool flagged = false;
  for (const ProcessFds& p : f.processes) {
    if (p.soft_limit == kUnlimited || p.soft_limit == 0) continue;
    const double use = pct(p.fds, p.soft_limit);
    if (use < 80) continue;
    flagged = true;
    const std::string target = std::to_string(
        std::min<uint64_t>(std::max<uint64_t>(p.soft_limit * 4, 65536), f.nr_open ? f.nr_open : uint64_t{1048576}));
    add(out, "fd.process." + std::to_string(p.pid), use >= 95 ? "critical" : "warning",
        "pid " + std::to_string(p.pid) + " (" + p.comm + ")",
        std::to_string(p.fds) + " of " + num(p.soft_limit) + " fds (" + pct_text(use) + "; hard limit " +
            num(p.hard_limit) + ")",
        "At its soft RLIMIT_NOFILE the process's accept(), socket() and connect() fail with EMFILE (\"Too many open "
        "files\"): a server stops accepting while the listen queue overflows.",
        fd_limit_fix(p.pid, target));
  }
  if (!flagged && !f.processes.empty()) {
    const ProcessFds& p = f.processes.front();
    add(out, "fd.processes", "ok", "pid " + std::to_string(p.pid) + " (" + p.comm + ")",
        std::to_string(p.fds) + " of " + num(p.soft_limit) + " fds",
        "The process with the most open files; no process is above 80 % of its soft limit.", "");
  }
}

void evaluate_other_netns(const HostFacts& f, std::vector<Finding>* out) {
  const NetnsSettings& h = f.settings;
  for (const OtherNetns& o : f.other_netns) {
    const NetnsSettings& s = o.settings;
    std::vector<std::string> diffs;
    if (s.port_lo != h.port_lo || s.port_hi != h.port_hi || s.usable_ports != h.usable_ports)
      diffs.push_back("port range " + std::to_string(s.port_lo) + "-" + std::to_string(s.port_hi) + " (" +
                      std::to_string(s.usable_ports) + " usable)");
    if (s.tw_reuse != h.tw_reuse) diffs.push_back("tcp_tw_reuse=" + std::to_string(s.tw_reuse));
    if (s.timestamps != h.timestamps) diffs.push_back("tcp_timestamps=" + std::to_string(s.timestamps));
    if (s.somaxconn != h.somaxconn) diffs.push_back("somaxconn=" + std::to_string(s.somaxconn));
    const double busy = o.has_busiest ? pct(effective_use(o.busiest), s.usable_ports) : 0;
    if (diffs.empty() && busy < 50) continue;
    std::string meaning;
    for (const std::string& d : diffs) meaning += (meaning.empty() ? "Differs from the host: " : ", ") + d;
    if (!meaning.empty()) meaning += ". ";
    meaning += std::to_string(o.time_wait) + " TIME_WAIT";
    if (o.has_busiest)
      meaning += "; busiest destination " + dest_subject(o.busiest) + " holds " +
                 std::to_string(effective_use(o.busiest)) + " of " + std::to_string(s.usable_ports) + " ports (" +
                 pct_text(busy) + ")";
    meaning += ". These sysctls are per network namespace: containers do not inherit the host's values.";
    // What to set inside it: the settings that lower its new-connection rate below the host's.
    std::string sets;
    if (s.usable_ports < h.usable_ports)
      sets += " net.ipv4.ip_local_port_range='" + std::to_string(h.port_lo) + " " + std::to_string(h.port_hi) + "'";
    if (s.tw_reuse != 1 && (busy >= 50 || s.tw_reuse != h.tw_reuse)) sets += " net.ipv4.tcp_tw_reuse=1";
    if (s.timestamps == 0) sets += " net.ipv4.tcp_timestamps=1";
    std::string fix;
    if (!sets.empty()) {
      constexpr std::string_view kRunNetns = "/run/netns/";
      const std::string enter = o.path.rfind(kRunNetns, 0) == 0
                                    ? "ip netns exec " + o.path.substr(kRunNetns.size())
                                    : "nsenter --net=" + (o.path.empty() ? std::string("<netns file>") : o.path);
      fix = enter + " sysctl -w";
      fix += sets;
      fix +=
          " (containers: set them through the runtime, e.g. docker run --sysctl, Kubernetes "
          "securityContext.sysctls)";
    } else if (busy >= 50) {
      fix = "reuse connections to " + dest_subject(o.busiest) + " (keep-alive, pooling) or add source addresses";
    }
    const std::string sev = busy >= 80 ? "critical" : busy >= 50 ? "warning" : "info";
    add(out, "netns." + std::to_string(o.netns), sev, "netns " + std::to_string(o.netns) + " " + o.label, describe(s),
        meaning, fix);
  }
}

}  // namespace

std::vector<Finding> evaluate_host(const HostFacts& facts) {
  std::vector<Finding> out;
  if (facts.settings_read) {
    evaluate_ports(facts, &out);
    evaluate_time_wait(facts, &out);
    evaluate_listen(facts, &out);
  }
  evaluate_fds(facts, &out);
  if (facts.settings_read) evaluate_other_netns(facts, &out);
  return out;
}

namespace {

struct Section {
  const char* prefix;
  const char* title;
};
constexpr Section kSections[] = {{"ports.", "Ephemeral ports"},
                                 {"timewait.", "TIME_WAIT"},
                                 {"listen.", "Listen queues"},
                                 {"fd.", "File descriptors"},
                                 {"netns.", "Other network namespaces"}};

// Appends text word-wrapped at `width` columns: the first line starts with
// first (default: indent), the others with indent.
void wrap(std::string* out, std::string_view text, const std::string& indent, const std::string& first = "",
          size_t width = 110) {
  size_t col = 0;
  bool first_line = true;
  for (std::string_view word : split_ws(text)) {
    if (col > 0 && col + 1 + word.size() > width) {
      *out += '\n';
      col = 0;
    }
    if (col == 0) {
      const std::string& lead = first_line && !first.empty() ? first : indent;
      first_line = false;
      *out += lead;
      col = lead.size();
    } else {
      *out += ' ';
      ++col;
    }
    *out += word;
    col += word.size();
  }
  if (col > 0) *out += '\n';
}

std::string upper(std::string s) {
  for (char& c : s) c = static_cast<char>(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
  return s;
}

std::string pad(std::string s, size_t w) {
  if (s.size() < w) s.append(w - s.size(), ' ');
  return s;
}

std::string rpad(const std::string& s, size_t w) { return s.size() < w ? std::string(w - s.size(), ' ') + s : s; }

void section_facts(std::string* out, std::string_view prefix, const HostFacts& f) {
  const NetnsSettings& s = f.settings;
  if (prefix == "ports." && f.settings_read) {
    *out += "  range " + std::to_string(s.port_lo) + "-" + std::to_string(s.port_hi) + ", reserved " +
            format_port_ranges(s.reserved) + ", " + std::to_string(s.usable_ports) + " usable; tcp_tw_reuse " +
            std::to_string(s.tw_reuse) +
            (s.tw_reuse_delay_present ? " (delay " + seconds_text(s.tw_reuse_delay_ms) + ")" : "") +
            ", tcp_timestamps " + std::to_string(s.timestamps) + "\n";
  } else if (prefix == "timewait." && f.sockets_read) {
    *out += "  " + std::to_string(f.sockets.sockets) + " TCP sockets, " + std::to_string(f.sockets.time_wait) +
            " in TIME_WAIT (" + std::to_string(f.sockets.time_wait_inbound) + " inbound); tcp_max_tw_buckets " +
            std::to_string(s.max_tw_buckets) + "\n";
    if (!f.sockets.destinations.empty()) {
      *out += "  " + pad("outgoing: source -> destination", 52) + rpad("sockets", 8) + rpad("TIME_WAIT", 10) +
              rpad("reusable", 9) + "  ports used\n";
      for (const DestinationUse& d : f.sockets.destinations)
        *out += "  " + pad(dest_subject(d), 52) + rpad(std::to_string(d.sockets), 8) +
                rpad(std::to_string(d.time_wait), 10) + rpad(std::to_string(d.reusable), 9) + "  " +
                pct_text(pct(effective_use(d), s.usable_ports)) + "\n";
    }
  } else if (prefix == "listen." && f.sockets_read) {
    *out += "  " + std::to_string(f.sockets.listeners.size()) + " listeners; somaxconn " + std::to_string(s.somaxconn) +
            ", tcp_max_syn_backlog " + std::to_string(s.max_syn_backlog) + ", tcp_syncookies " +
            std::to_string(s.syncookies) + "\n";
    if (!f.sockets.listeners.empty()) {
      *out += "  " + pad("listener", 48) + rpad("queue", 7) + rpad("backlog", 9) + "\n";
      std::vector<ListenerFact> ls = f.sockets.listeners;
      std::stable_sort(ls.begin(), ls.end(), [](const auto& a, const auto& b) { return a.port < b.port; });
      for (const ListenerFact& l : ls)
        *out += "  " + pad(format_endpoint(l.family, l.addr, l.port), 48) + rpad(std::to_string(l.queue), 7) +
                rpad(std::to_string(l.max_backlog), 9) +
                (s.somaxconn > 0 && l.max_backlog == s.somaxconn ? "  capped by somaxconn" : "") + "\n";
    }
  } else if (prefix == "fd.") {
    if (f.file_max > 0)
      *out += "  fs.file-nr " + (f.have_file_nr ? std::to_string(f.files_allocated) : std::string("?")) +
              " allocated of fs.file-max " + num(f.file_max) + "; fs.nr_open " + num(f.nr_open) + "\n";
    if (!f.processes.empty()) {
      *out += "  " + pad("busiest processes", 34) + rpad("fds", 9) + rpad("soft limit", 12) + rpad("use", 8) + "\n";
      for (const ProcessFds& p : f.processes)
        *out += "  " + pad(std::to_string(p.pid) + " " + p.comm, 34) + rpad(std::to_string(p.fds), 9) +
                rpad(num(p.soft_limit), 12) +
                rpad(p.soft_limit == kUnlimited ? "-" : pct_text(pct(p.fds, p.soft_limit)), 8) + "\n";
      *out += "  (" + std::to_string(f.processes_scanned) + " processes scanned";
      if (f.processes_unreadable) *out += ", " + std::to_string(f.processes_unreadable) + " unreadable";
      *out += ")\n";
    }
  } else if (prefix == "netns.") {
    if (!f.other_netns_read) {
      *out += "  not inspected (see notes)\n";
      return;
    }
    *out += "  other network namespaces inspected: " + std::to_string(f.other_netns.size()) + "\n";
  }
}

}  // namespace

std::string format_doctor_text(const HostFacts& facts, const std::vector<Finding>& findings) {
  std::string out = "connscope doctor";
  if (!facts.kernel.empty()) out += ": kernel " + facts.kernel;
  out += ", netns " + std::to_string(facts.settings.netns);
  if (facts.init_netns != 0)
    out += facts.init_netns == facts.settings.netns ? " (the host's, PID 1's)" : " (not PID 1's: a container?)";
  out += "\n";
  int counts[4] = {0, 0, 0, 0};
  for (const Finding& f : findings) ++counts[severity_rank(f.severity)];
  out += "findings: " + std::to_string(counts[3]) + " critical, " + std::to_string(counts[2]) + " warning, " +
         std::to_string(counts[1]) + " info, " + std::to_string(counts[0]) + " ok\n";

  for (const Section& sec : kSections) {
    out += "\n" + std::string(sec.title) + "\n";
    section_facts(&out, sec.prefix, facts);
    bool any = false;
    for (const Finding& f : findings) {
      if (f.id.rfind(sec.prefix, 0) != 0) continue;
      any = true;
      out += "\n  [" + upper(f.severity) + "] " + f.subject + " = " + f.value + "\n";
      wrap(&out, f.meaning, "    ");
      if (!f.fix.empty()) wrap(&out, f.fix, "         ", "    fix: ");
    }
    if (!any && std::string_view(sec.prefix) == "netns." && facts.other_netns_read)
      out += facts.other_netns.empty() ? "  (there are none)\n" : "  (none differ from the host or are busy)\n";
  }
  if (!facts.warnings.empty()) {
    out += "\nNotes\n";
    for (const std::string& w : facts.warnings) wrap(&out, w, "    ", "  - ");
  }
  return out;
}

namespace {

nlohmann::ordered_json settings_json(const NetnsSettings& s) {
  nlohmann::ordered_json reserved = nlohmann::ordered_json::array();
  for (const PortRange& r : s.reserved) reserved.push_back({{"lo", r.lo}, {"hi", r.hi}});
  return {{"netns", s.netns},
          {"ip_local_port_range", {s.port_lo, s.port_hi}},
          {"ip_local_reserved_ports", reserved},
          {"usable_ports", s.usable_ports},
          {"tcp_tw_reuse", s.tw_reuse},
          {"tcp_tw_reuse_delay_ms",
           s.tw_reuse_delay_present ? nlohmann::ordered_json(s.tw_reuse_delay_ms) : nlohmann::ordered_json()},
          {"tcp_timestamps", s.timestamps},
          {"tcp_fin_timeout", s.fin_timeout},
          {"tcp_max_tw_buckets", s.max_tw_buckets},
          {"somaxconn", s.somaxconn},
          {"tcp_max_syn_backlog", s.max_syn_backlog},
          {"tcp_syncookies", s.syncookies}};
}

nlohmann::ordered_json dest_json(const DestinationUse& d, uint32_t usable) {
  return {{"source", format_address(d.family, d.saddr)},
          {"destination", format_endpoint(d.family, d.daddr, d.dport)},
          {"sockets", d.sockets},
          {"time_wait", d.time_wait},
          {"reusable", d.reusable},
          {"ports_used_pct", pct(effective_use(d), usable)}};
}

nlohmann::ordered_json limit_json(uint64_t v) {
  return v == kUnlimited ? nlohmann::ordered_json("unlimited") : nlohmann::ordered_json(v);
}

}  // namespace

std::string format_doctor_json(const HostFacts& f, const std::vector<Finding>& findings) {
  nlohmann::ordered_json j;
  j["kernel"] = f.kernel;
  j["netns"] = f.settings.netns;
  j["init_netns"] =
      f.init_netns == 0 ? nlohmann::ordered_json() : nlohmann::ordered_json(f.init_netns == f.settings.netns);
  j["settings"] = f.settings_read ? settings_json(f.settings) : nlohmann::ordered_json();
  j["counters"] = f.counters_read ? nlohmann::ordered_json{{"TcpExtTCPTimeWaitOverflow", f.counters.time_wait_overflow},
                                                           {"TcpExtListenOverflows", f.counters.listen_overflows},
                                                           {"TcpExtListenDrops", f.counters.listen_drops},
                                                           {"TcpExtTCPReqQFullDrop", f.counters.req_q_full_drop}}
                                  : nlohmann::ordered_json();
  j["files"] = {{"file_max", f.file_max},
                {"nr_open", f.nr_open},
                {"allocated", f.have_file_nr ? nlohmann::ordered_json(f.files_allocated) : nlohmann::ordered_json()}};
  nlohmann::ordered_json procs = nlohmann::ordered_json::array();
  for (const ProcessFds& p : f.processes)
    procs.push_back({{"pid", p.pid},
                     {"comm", p.comm},
                     {"fds", p.fds},
                     {"soft_limit", limit_json(p.soft_limit)},
                     {"hard_limit", limit_json(p.hard_limit)}});
  j["processes"] = {{"scanned", f.processes_scanned}, {"unreadable", f.processes_unreadable}, {"busiest", procs}};
  if (f.sockets_read) {
    nlohmann::ordered_json dests = nlohmann::ordered_json::array();
    for (const DestinationUse& d : f.sockets.destinations) dests.push_back(dest_json(d, f.settings.usable_ports));
    nlohmann::ordered_json ls = nlohmann::ordered_json::array();
    for (const ListenerFact& l : f.sockets.listeners)
      ls.push_back({{"address", format_endpoint(l.family, l.addr, l.port)},
                    {"queue", l.queue},
                    {"backlog", l.max_backlog},
                    {"capped_by_somaxconn", f.settings.somaxconn > 0 && l.max_backlog == f.settings.somaxconn}});
    j["sockets"] = {{"total", f.sockets.sockets},
                    {"time_wait", f.sockets.time_wait},
                    {"time_wait_inbound", f.sockets.time_wait_inbound},
                    {"ephemeral_ports_in_use", f.sockets.ephemeral_in_use},
                    {"destinations", dests},
                    {"listeners", ls}};
  } else {
    j["sockets"] = nullptr;
  }
  nlohmann::ordered_json others = nlohmann::ordered_json::array();
  for (const OtherNetns& o : f.other_netns) {
    nlohmann::ordered_json e = {{"netns", o.netns},
                                {"path", o.path},
                                {"label", o.label},
                                {"settings", settings_json(o.settings)},
                                {"time_wait", o.time_wait}};
    e["busiest"] = o.has_busiest ? dest_json(o.busiest, o.settings.usable_ports) : nlohmann::ordered_json();
    others.push_back(e);
  }
  j["other_netns"] = f.other_netns_read ? others : nlohmann::ordered_json();
  nlohmann::ordered_json fs = nlohmann::ordered_json::array();
  for (const Finding& x : findings)
    fs.push_back({{"id", x.id},
                  {"severity", x.severity},
                  {"subject", x.subject},
                  {"value", x.value},
                  {"meaning", x.meaning},
                  {"fix", x.fix}});
  j["findings"] = fs;
  j["warnings"] = f.warnings;
  return j.dump(2) + "\n";
}

}  // namespace connscope
