// What the live commands share: build info, the strategies as the snapshot
// names them, the note for a --netns inode that matches nothing yet, and
// the agent's own HTTP endpoint as the tables leave it out.
#include <arpa/inet.h>
#include <sys/utsname.h>

#include <cstdio>

#include "cli/commands.hpp"
#include "cli/version.hpp"
#include "export/prometheus_text.hpp"
#include "host/netns.hpp"

namespace connscope {

BuildInfo build_info() {
  utsname u{};
  uname(&u);
  return BuildInfo{CONNSCOPE_VERSION, u.release};
}

std::vector<StrategyInUse> strategies_in_use(const std::vector<FamilyChoice>& choices) {
  std::vector<StrategyInUse> out;
  for (const auto& c : choices)
    if (c.tier) out.push_back({std::string(family_name(c.family)), std::string(strategy_name(c.family, *c.tier))});
  return out;
}

std::string unknown_netns_note(uint32_t netns) {
  if (netns == 0 || enumerate_netns().contains(netns)) return "";
  return "connscope: --netns " + std::to_string(netns) + ": no process and no /run/netns entry is in a network " +
         "namespace with this inode yet; its connections show once one is (readlink /proc/PID/ns/net gives a " +
         "process's inode)";
}

SelfEndpoint self_endpoint(const std::string& host, uint16_t port) {
  SelfEndpoint e;
  e.netns = current_netns_inode();
  e.port = port;
  std::string h = host;
  if (h.size() > 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  if (inet_pton(AF_INET, h.c_str(), e.addr.data()) == 1)
    e.family = AF_INET;
  else if (inet_pton(AF_INET6, h.c_str(), e.addr.data()) == 1)
    e.family = AF_INET6;
  // A name, or an address that parses as neither: any address on the port.
  return e;
}

void print_unknown_netns_note(uint32_t netns) {
  if (const std::string note = unknown_netns_note(netns); !note.empty()) fprintf(stderr, "%s\n", note.c_str());
}

}  // namespace connscope
