// Capability checks before privileged work, with messages naming what is missing.
#pragma once

#include <string>

namespace connscope {

// Empty when the process may load and attach BPF programs (root, or
// CAP_BPF + CAP_PERFMON + CAP_NET_ADMIN + CAP_SYS_ADMIN); otherwise the
// one-line reason with the fix.
std::string missing_bpf_privileges();

}  // namespace connscope
