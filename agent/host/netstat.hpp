// The one parser of /proc/net/netstat (and /proc/net/snmp) text: every
// counter, keyed the way nstat names them ("TcpExtListenOverflows").
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace connscope {

// The counters of the calling thread's netns. /proc/net follows the
// thread-group leader's netns; thread-self follows this thread's, which is
// the one for_each_netns() switched into (and the one its sysctls come from).
inline constexpr char kThreadNetstat[] = "/proc/thread-self/net/netstat";

// The text is pairs of lines, a header and its values, both starting with the
// same prefix ("TcpExt: SyncookiesSent ...", "TcpExt: 0 ..."). Counters of
// every pair, as prefix + name. Negative values (/proc/net/snmp's Tcp:
// MaxConn -1) are left out. nullopt when the lines do not pair up, a pair's
// prefixes or field counts differ, or a value is not a number.
std::optional<std::map<std::string, uint64_t>> parse_netstat_counters(std::string_view text);

// One counter of them ("TcpExtListenDrops"); nullopt when the kernel lacks it.
std::optional<uint64_t> netstat_value(const std::map<std::string, uint64_t>& all, const std::string& name);

}  // namespace connscope
