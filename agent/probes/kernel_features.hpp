// Probes the running kernel once for what each attach strategy needs.
#pragma once

#include <string>

#include "probes/strategy.hpp"

namespace connscope {

// Mounts tracefs at /sys/kernel/tracing when no tracefs is mounted. Returns
// the tracefs root, or an error message naming the fix.
std::string ensure_tracefs(std::string* error);

// btf_path: vmlinux BTF to use ("" = /sys/kernel/btf/vmlinux).
KernelFeatures probe_kernel(const std::string& btf_path);

}  // namespace connscope
