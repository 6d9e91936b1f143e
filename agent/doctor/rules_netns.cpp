// Other network namespaces: those whose sysctls differ from the host's or whose ports run out.
#include <string_view>

#include "doctor/numbers.hpp"
#include "doctor/rules.hpp"
#include "host/netns.hpp"

namespace connscope {

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
      fix = netns_exec_prefix(o.path, false) + "sysctl -w";
      fix += sets;
      fix +=
          " (containers: set them through the runtime, e.g. docker run --sysctl, Kubernetes "
          "securityContext.sysctls)";
    } else if (busy >= 50) {
      fix = "reuse connections to " + dest_subject(o.busiest) + " (keep-alive, pooling) or add source addresses";
    }
    const FindingLevel sev = busy >= 80   ? FindingLevel::critical
                             : busy >= 50 ? FindingLevel::warning
                                          : FindingLevel::info;
    add_finding(out, "netns." + std::to_string(o.netns), sev, "netns " + std::to_string(o.netns) + " " + o.label,
                describe(s), meaning, fix);
  }
}

}  // namespace connscope
