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

std::string exhaustion_remedy(const PortModel& m) {
  std::string out;
  char buf[512];
  if (m.settings_known && !m.reuse_effective) {
    if (m.timestamps == 0) {
      snprintf(buf, sizeof buf,
               "tcp_timestamps=0 turns TIME_WAIT reuse off: with net.ipv4.tcp_timestamps=1 and "
               "net.ipv4.tcp_tw_reuse=1 the sustainable rate to this upstream rises from %s to about %s; "
               "the current rate is %s.",
               format_rate(m.sustainable_rate_without_reuse).c_str(),
               format_rate(m.sustainable_rate_with_reuse).c_str(), format_rate(m.connect_rate).c_str());
    } else {
      snprintf(buf, sizeof buf,
               "tcp_tw_reuse=%d%s: enabling it (sysctl -w net.ipv4.tcp_tw_reuse=1) raises the sustainable rate to "
               "this upstream from %s to about %s; the current rate is %s.",
               m.tw_reuse, m.tw_reuse == 2 ? " (loopback only)" : "",
               format_rate(m.sustainable_rate_without_reuse).c_str(),
               format_rate(m.sustainable_rate_with_reuse).c_str(), format_rate(m.connect_rate).c_str());
    }
    out += buf;
  } else if (m.settings_known) {
    snprintf(buf, sizeof buf,
             "TIME_WAIT reuse is already on (tcp_tw_reuse=%d): the sustainable rate to this upstream is about %s and "
             "the current rate is %s.",
             m.tw_reuse, format_rate(m.sustainable_rate).c_str(), format_rate(m.connect_rate).c_str());
    out += buf;
  } else {
    snprintf(buf, sizeof buf,
             "The sustainable rate to this upstream is about %s without TIME_WAIT reuse; the current rate is %s "
             "(the namespace's sysctls could not be read).",
             format_rate(m.sustainable_rate_without_reuse).c_str(), format_rate(m.connect_rate).c_str());
    out += buf;
  }
  if (m.usable_ports > 0 && m.usable_ports < 28232) {
    snprintf(buf, sizeof buf,
             " Widen net.ipv4.ip_local_port_range (now %u-%u, %u usable ports), e.g. to \"1024 65535\".", m.range_lo,
             m.range_hi, m.usable_ports);
    out += buf;
  }
  out +=
      " Reuse upstream connections (HTTP keep-alive, connection pooling), spread them over more source addresses or "
      "upstream addresses, or bind with IP_BIND_ADDRESS_NO_PORT.";
  return out;
}

}  // namespace connscope
