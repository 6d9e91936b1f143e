// Listen queues: somaxconn, SYN cookies, past overflows and the listeners that are capped or filling.
#include "doctor/numbers.hpp"
#include "doctor/rules.hpp"
#include "util/address.hpp"

namespace connscope {

void evaluate_listen(const HostFacts& f, std::vector<Finding>* out) {
  const NetnsSettings& s = f.settings;
  const std::string sc = std::to_string(s.somaxconn);
  add_finding(
      out, "listen.somaxconn",
      s.somaxconn < 1024   ? FindingLevel::warning
      : s.somaxconn < 4096 ? FindingLevel::info
                           : FindingLevel::ok,
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
    add_finding(
        out, "listen.syncookies", FindingLevel::warning, "net.ipv4.tcp_syncookies",
        "0 (off), tcp_max_syn_backlog " + msb,
        "Without SYN cookies a SYN is dropped once a listener's half-open queue reaches its backlog, and SYNs from "
        "peers this host has not talked to are dropped once the queue holds 3/4 of tcp_max_syn_backlog (" +
            std::to_string(uint64_t{s.max_syn_backlog} * 3 / 4) +
            "). A SYN flood or a reconnect storm after an upstream failover makes the service unreachable" +
            (s.max_syn_backlog < 1024 ? ", and tcp_max_syn_backlog " + msb + " is small." : "."),
        "sysctl -w net.ipv4.tcp_syncookies=1" + std::string(persist_hint()));
  } else {
    add_finding(out, "listen.syncookies", s.syncookies == 1 ? FindingLevel::ok : FindingLevel::info,
                "net.ipv4.tcp_syncookies", std::to_string(s.syncookies) + ", tcp_max_syn_backlog " + msb,
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
    add_finding(
        out, "listen.overflows", c.listen_overflows > 0 || other > 0 ? FindingLevel::warning : FindingLevel::ok,
        "TcpExtListenOverflows",
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
    const FindingLevel sev = full ? FindingLevel::critical : p >= 50 ? FindingLevel::warning : FindingLevel::info;
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
    add_finding(
        out, "listen.queue." + std::to_string(++n), sev, format_endpoint(l.family, l.addr, l.port),
        "queue " + std::to_string(l.queue) + ", backlog " + std::to_string(l.max_backlog) + (capped ? " (capped)" : ""),
        meaning, fix);
  }
}

}  // namespace connscope
