// Ephemeral ports: the port range, reserved ports, tcp_tw_reuse, tcp_timestamps and the ports in use.
#include <algorithm>

#include "doctor/numbers.hpp"
#include "doctor/rules.hpp"

namespace connscope {

void evaluate_ports(const HostFacts& f, std::vector<Finding>* out) {
  const NetnsSettings& s = f.settings;
  const uint32_t range = uint32_t{s.port_hi} - s.port_lo + 1;
  const std::string u = std::to_string(s.usable_ports);
  {
    FindingLevel sev = s.usable_ports < 1000    ? FindingLevel::critical
                       : s.usable_ports < 10000 ? FindingLevel::warning
                       : s.usable_ports < 28232 ? FindingLevel::info
                                                : FindingLevel::ok;
    add_finding(
        out, "ports.range", sev, "net.ipv4.ip_local_port_range",
        std::to_string(s.port_lo) + "-" + std::to_string(s.port_hi) + " (" + u + " usable ports)",
        "Each (source address, destination address, destination port) can hold at most " + u +
            " connections that are open or in TIME_WAIT; one more connect() fails with EADDRNOTAVAIL (\"Cannot "
            "assign requested address\"). When this host closes first, each port then stays 60 s in TIME_WAIT: " +
            u + " ports sustain about " + u + "/60 s = " + rate_text(s.usable_ports, kTimeWaitMs) +
            " new connections per destination.",
        sev == FindingLevel::ok
            ? ""
            : std::string("widen it: sysctl -w net.ipv4.ip_local_port_range='1024 65535' (reserve ports "
                          "your services listen on with net.ipv4.ip_local_reserved_ports)") +
                  persist_hint());
  }
  if (!s.reserved.empty()) {
    const uint32_t taken = range - s.usable_ports;
    const FindingLevel sev = taken == 0               ? FindingLevel::ok
                             : pct(taken, range) > 50 ? FindingLevel::warning
                                                      : FindingLevel::info;
    add_finding(out, "ports.reserved", sev, "net.ipv4.ip_local_reserved_ports", format_port_ranges(s.reserved),
                taken == 0 ? "The reserved ports lie outside ip_local_port_range and do not shrink it."
                           : std::to_string(taken) +
                                 " reserved ports lie inside ip_local_port_range: automatic port selection "
                                 "skips them, so the range offers " +
                                 u + " of its " + std::to_string(range) + " ports (" +
                                 pct_text(pct(s.usable_ports, range)) + ").",
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
    add_finding(out, "ports.tw_reuse", busiest_remote >= 50 ? FindingLevel::critical : FindingLevel::warning,
                "net.ipv4.tcp_tw_reuse", "0 (off)",
                "connect() never takes over a TIME_WAIT port: sustainable new connections per destination are about " +
                    u + "/60 s = " + base_rate + "; " + reuse_math + ".",
                fix_reuse);
  } else if (s.tw_reuse == 2) {
    add_finding(
        out, "ports.tw_reuse", busiest_remote >= 50 ? FindingLevel::warning : FindingLevel::info,
        "net.ipv4.tcp_tw_reuse", "2 (loopback only)",
        "TIME_WAIT ports are reused only for connections over loopback (127.0.0.0/8, ::1). Connections to other hosts "
        "(upstreams of a gateway) get no reuse: about " +
            u + "/60 s = " + base_rate + " new connections per destination; " + reuse_math + ".",
        "on a host that opens many connections to other hosts: " + fix_reuse);
  } else if (s.tw_reuse == 1) {
    add_finding(out, "ports.tw_reuse", s.timestamps == 0 ? FindingLevel::warning : FindingLevel::ok,
                "net.ipv4.tcp_tw_reuse", "1 (on)",
                s.timestamps == 0
                    ? "Reuse is on but cannot work: tcp_timestamps=0 (see below), so TIME_WAIT still caps "
                      "new connections per destination at about " +
                          u + "/60 s = " + base_rate + "."
                    : "connect() may take over a TIME_WAIT port " + delay +
                          " after it entered TIME_WAIT when the peer sent timestamps: up to about " + u + "/" + delay +
                          " = " + reuse_rate + " new connections per destination (" + base_rate +
                          " toward peers without timestamps).",
                s.timestamps == 0 ? "sysctl -w net.ipv4.tcp_timestamps=1" + std::string(persist_hint()) : "");
  } else {
    add_finding(out, "ports.tw_reuse", FindingLevel::warning, "net.ipv4.tcp_tw_reuse", std::to_string(s.tw_reuse),
                "Not a value the kernel documents (0, 1, 2).", "sysctl -w net.ipv4.tcp_tw_reuse=1");
  }
  if (s.tw_reuse_delay_present && s.tw_reuse_delay_ms != 1000)
    add_finding(out, "ports.tw_reuse_delay", FindingLevel::info, "net.ipv4.tcp_tw_reuse_delay",
                std::to_string(s.tw_reuse_delay_ms) + " ms",
                "A TIME_WAIT port becomes reusable " + delay + " after the connection closed (default 1 s).", "");

  if (s.timestamps == 0)
    add_finding(
        out, "ports.timestamps", FindingLevel::warning, "net.ipv4.tcp_timestamps", "0 (off)",
        "Without TCP timestamps the kernel cannot tell old segments from new ones on a reused port, so tcp_tw_reuse "
        "never applies: every closed connection holds its port for the full 60 s (" +
            base_rate + " per destination). PAWS and precise RTT measurement are off too.",
        "sysctl -w net.ipv4.tcp_timestamps=1" + std::string(persist_hint()));
  else
    add_finding(out, "ports.timestamps", FindingLevel::ok, "net.ipv4.tcp_timestamps", std::to_string(s.timestamps),
                "TCP timestamps are on, which tcp_tw_reuse needs (the peer must send them too).", "");

  if (f.sockets_read) {
    const double p = pct(f.sockets.ephemeral_in_use, s.usable_ports);
    add_finding(
        out, "ports.in_use",
        p >= 80   ? FindingLevel::warning
        : p >= 50 ? FindingLevel::info
                  : FindingLevel::ok,
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

}  // namespace connscope
