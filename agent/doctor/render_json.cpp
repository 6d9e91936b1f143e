// The doctor's JSON report.
#include "doctor/render_json.hpp"

#include <nlohmann/json.hpp>

#include "doctor/numbers.hpp"
#include "host/procfs.hpp"
#include "util/address.hpp"

namespace connscope {

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
                  {"severity", level_name(x.severity)},
                  {"subject", x.subject},
                  {"value", x.value},
                  {"meaning", x.meaning},
                  {"fix", x.fix}});
  j["findings"] = fs;
  j["warnings"] = f.warnings;
  return j.dump(2) + "\n";
}

}  // namespace connscope
