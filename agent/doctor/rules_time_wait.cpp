// TIME_WAIT: tcp_fin_timeout, tcp_max_tw_buckets and the destinations whose ports TIME_WAIT holds.
#include <algorithm>

#include "doctor/numbers.hpp"
#include "doctor/rules.hpp"

namespace connscope {

void evaluate_time_wait(const HostFacts& f, std::vector<Finding>* out) {
  const NetnsSettings& s = f.settings;
  add_finding(
      out, "timewait.fin_timeout", s.fin_timeout == 60 ? FindingLevel::ok : FindingLevel::info,
      "net.ipv4.tcp_fin_timeout", std::to_string(s.fin_timeout) + " s",
      "How long an orphaned connection waits in FIN_WAIT_2 for the peer's FIN. It does NOT shorten TIME_WAIT, which "
      "is fixed at 60 s (TCP_TIMEWAIT_LEN, compiled into the kernel); changing it frees no ephemeral ports.",
      s.fin_timeout == 60 ? "" : "nothing to change for TIME_WAIT; to free ports sooner use tcp_tw_reuse=1 or pooling");

  const std::string m = std::to_string(s.max_tw_buckets);
  if (f.sockets_read) {
    const uint32_t tw = f.sockets.time_wait;
    const double p = pct(tw, s.max_tw_buckets);
    FindingLevel sev = s.max_tw_buckets > 0 && tw >= s.max_tw_buckets ? FindingLevel::critical
                       : p >= 80                                      ? FindingLevel::warning
                                                                      : FindingLevel::ok;
    std::string meaning = std::to_string(tw) + " sockets are in TIME_WAIT (" +
                          std::to_string(f.sockets.time_wait_inbound) +
                          " of them on listening ports, closed first by this host as a server). ";
    meaning += "Beyond " + m +
               " the kernel closes connections without TIME_WAIT and counts them in TcpExtTCPTimeWaitOverflow "
               "(older kernels also logged \"TCP: time wait bucket table overflow\"): ports free up at once, but "
               "delayed segments of an old connection can then be taken for a new one's.";
    if (s.max_tw_buckets < s.usable_ports) {
      meaning += " The limit is below one destination's " + std::to_string(s.usable_ports) + " usable ports.";
      if (sev == FindingLevel::ok) sev = FindingLevel::info;
    }
    if (f.counters_read && f.counters.time_wait_overflow > 0) {
      meaning += " It has happened: TcpExtTCPTimeWaitOverflow = " + std::to_string(f.counters.time_wait_overflow) +
                 " since boot (or since this netns was created).";
      if (sev == FindingLevel::ok || sev == FindingLevel::info) sev = FindingLevel::warning;
    }
    add_finding(
        out, "timewait.buckets", sev, "net.ipv4.tcp_max_tw_buckets",
        std::to_string(tw) + " of " + m + " (" + pct_text(p) + ")", meaning,
        sev == FindingLevel::ok || sev == FindingLevel::info
            ? ""
            : "find who closes first (the destinations below); reuse connections, or raise the limit: sysctl -w "
              "net.ipv4.tcp_max_tw_buckets=" +
                  std::to_string(std::max<uint64_t>(uint64_t{s.max_tw_buckets} * 2, 262144)) + persist_hint());
  } else {
    add_finding(out, "timewait.buckets", FindingLevel::info, "net.ipv4.tcp_max_tw_buckets", m,
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
    add_finding(out, "timewait.dest." + std::to_string(++flagged),
                p >= 80 ? FindingLevel::critical : FindingLevel::warning, dest_subject(d),
                std::to_string(effective_use(d)) + " of " + u + " ports (" + pct_text(p) + ")", meaning,
                std::string("reuse connections to it (keep-alive, pooling)") +
                    (reuse ? "" : "; sysctl -w net.ipv4.tcp_tw_reuse=1") +
                    "; add source addresses (each gets its own " + u + " ports); widen ip_local_port_range");
  }
  if (flagged == 0) {
    if (f.sockets.destinations.empty()) {
      add_finding(out, "timewait.destinations", FindingLevel::ok, "outgoing connections", "none",
                  "No outgoing TCP connections or TIME_WAIT toward other services right now.", "");
    } else {
      const DestinationUse& d = f.sockets.destinations.front();
      const double p = pct(effective_use(d), s.usable_ports);
      add_finding(
          out, "timewait.destinations", p >= 25 ? FindingLevel::info : FindingLevel::ok, dest_subject(d),
          std::to_string(effective_use(d)) + " of " + u + " ports (" + pct_text(p) + ")",
          "The busiest destination: " + std::to_string(d.sockets) + " sockets, " + std::to_string(d.time_wait) +
              " in TIME_WAIT" +
              (d.reusable ? " (" + std::to_string(d.reusable) + " reusable now: tcp_tw_reuse applies to it)" : "") +
              ". No destination holds half of its ports.",
          "");
    }
  }
}

}  // namespace connscope
