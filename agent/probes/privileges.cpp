// Capability checks before BPF work, naming the missing capability.
#include "probes/privileges.hpp"

#include <linux/capability.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <utility>
#include <vector>

namespace connscope {

std::string missing_bpf_privileges() {
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  if (syscall(SYS_capget, &hdr, data) != 0) return "cannot read process capabilities (capget failed)";
  auto has = [&](int cap) { return (data[cap / 32].effective & (1u << (cap % 32))) != 0; };
  const std::vector<std::pair<int, const char*>> needed = {{CAP_BPF, "CAP_BPF"},
                                                           {CAP_PERFMON, "CAP_PERFMON"},
                                                           {CAP_NET_ADMIN, "CAP_NET_ADMIN"},
                                                           {CAP_SYS_ADMIN, "CAP_SYS_ADMIN"}};
  std::string missing;
  for (const auto& [cap, name] : needed) {
    if (has(cap)) continue;
    if (!missing.empty()) missing += ", ";
    missing += name;
  }
  if (missing.empty()) return {};
  return "missing " + missing +
         ": run as root (sudo) or grant them: setcap cap_bpf,cap_perfmon,cap_net_admin,cap_sys_admin+ep connscope";
}

}  // namespace connscope
