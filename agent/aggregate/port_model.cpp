// The ephemeral-port exhaustion model: usable ports, sustainable rate, time to exhaustion.
#include "aggregate/port_model.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace connscope {

bool tw_reuse_effective(const NetnsSettings& s, bool loopback) {
  // tcp_twsk_unique(): reuse needs the TIME_WAIT socket's timestamps, so
  // tcp_timestamps must be on; tcp_tw_reuse=2 limits it to loopback.
  if (s.timestamps == 0) return false;
  return s.tw_reuse == 1 || (s.tw_reuse == 2 && loopback);
}

PortModel compute_port_model(const PortModelInput& in) {
  PortModel m;
  const NetnsSettings* s = in.settings;
  m.settings_known = s != nullptr;
  if (s) {
    m.range_lo = s->port_lo;
    m.range_hi = s->port_hi;
    m.usable_ports = s->usable_ports;
    m.tw_reuse = s->tw_reuse;
    m.timestamps = s->timestamps;
    m.reuse_effective = tw_reuse_effective(*s, in.loopback);
  } else if (in.event_range_hi >= in.event_range_lo && in.event_range_hi != 0) {
    m.range_lo = in.event_range_lo;
    m.range_hi = in.event_range_hi;
    m.usable_ports = static_cast<uint32_t>(in.event_range_hi - in.event_range_lo + 1);
  }
  m.in_use = in.connecting + in.open + in.time_wait;
  m.connect_rate = in.connect_rate;
  if (m.usable_ports == 0) return m;

  const double usable = m.usable_ports;
  const double reuse_delay_s = s ? std::max(1u, s->tw_reuse_delay_ms) / 1000.0 : 1.0;
  m.sustainable_rate_without_reuse = usable / kTimeWaitSeconds;
  m.sustainable_rate_with_reuse = usable / reuse_delay_s;
  m.sustainable_rate = m.reuse_effective ? m.sustainable_rate_with_reuse : m.sustainable_rate_without_reuse;

  // Ports connect() cannot take now: with reuse, TIME_WAIT ports older than
  // the reuse delay are free for the taking.
  const double tw_blocking = m.reuse_effective ? std::min(in.time_wait_recent, in.time_wait) : in.time_wait;
  const double blocking = in.connecting + in.open + tw_blocking;
  m.utilization = blocking / usable;

  if (in.connect_rate > m.sustainable_rate) {
    const double free_ports = std::max(0.0, usable - blocking);
    // Ports come back as TIME_WAIT entries expire: spread evenly over the
    // 60 s that is time_wait/60 per second now; in the long run no faster
    // than the sustainable rate.
    double release = m.reuse_effective ? m.sustainable_rate : tw_blocking / kTimeWaitSeconds;
    double growth = in.connect_rate - release;
    if (growth <= 0) growth = in.connect_rate - m.sustainable_rate;
    m.time_to_exhaustion_s = free_ports / growth;
  }
  return m;
}

std::string format_rate(double per_second) {
  char buf[48];
  if (!std::isfinite(per_second)) return "?/s";
  // Whole numbers round down: "470/s" for the 470.5/s of the default range.
  if (per_second >= 100 || per_second == std::floor(per_second))
    snprintf(buf, sizeof buf, "%.0f/s", std::floor(per_second));
  else
    snprintf(buf, sizeof buf, "%.1f/s", per_second);
  return buf;
}

Remedy exhaustion_remedy(const PortModel& m, const std::string& exec_prefix) {
  Remedy r;
  auto add = [&r](const std::string& text) { r.text += (r.text.empty() ? "" : "; ") + text; };
  auto command = [&](const std::string& cmd, const std::string& effect) {
    r.commands.push_back(exec_prefix + cmd);
    add("`" + r.commands.back() + "` " + effect);
  };
  if (!m.settings_known) {
    add("the namespace's sysctls could not be read: without TIME_WAIT reuse this range sustains about " +
        format_rate(m.sustainable_rate_without_reuse) + " (now " + format_rate(m.connect_rate) +
        "); check net.ipv4.tcp_tw_reuse and net.ipv4.ip_local_port_range there");
  } else if (!m.reuse_effective) {
    command(m.timestamps == 0 ? "sysctl -w net.ipv4.tcp_timestamps=1 net.ipv4.tcp_tw_reuse=1"
                              : "sysctl -w net.ipv4.tcp_tw_reuse=1",
            "lets connect() reuse TIME_WAIT ports: sustainable " + format_rate(m.sustainable_rate_without_reuse) +
                " -> about " + format_rate(m.sustainable_rate_with_reuse) + " (now " + format_rate(m.connect_rate) +
                ")");
  }
  constexpr uint32_t kWidestUsable = 65535 - 1024 + 1;
  if (m.settings_known && m.usable_ports < kWidestUsable && (m.usable_ports < 28232 || m.reuse_effective)) {
    char buf[160];
    snprintf(buf, sizeof buf,
             "widens the range from %u-%u (%u usable ports; keep server ports out with "
             "net.ipv4.ip_local_reserved_ports)",
             m.range_lo, m.range_hi, m.usable_ports);
    command("sysctl -w net.ipv4.ip_local_port_range=\"1024 65535\"", buf);
  }
  add("for good: reuse upstream connections (HTTP keep-alive, pooling) or spread them over more source addresses");
  return r;
}

}  // namespace connscope
