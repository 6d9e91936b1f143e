// Gathering the doctor's facts from this host: sysctls, /proc/net/netstat, a
// sock_diag dump, /proc/<pid> fd counts and limits, and the other network
// namespaces.
#pragma once

#include <string>

#include "doctor/facts.hpp"

namespace connscope {

// Reads everything it may (unprivileged: fewer facts plus a warning).
// Each warning is also appended to *warnings as one line.
HostFacts collect_host_facts(std::string* warnings);

}  // namespace connscope
