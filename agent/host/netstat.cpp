// Parsing /proc/net/netstat and /proc/net/snmp text.
#include "host/netstat.hpp"

#include <vector>

#include "host/procfs.hpp"

namespace connscope {

std::optional<std::map<std::string, uint64_t>> parse_netstat_counters(std::string_view text) {
  std::vector<std::string_view> lines;
  for (std::string_view line : split_lines(text))
    if (!trim(line).empty()) lines.push_back(line);
  if (lines.size() % 2 != 0) return std::nullopt;
  std::map<std::string, uint64_t> out;
  for (size_t i = 0; i < lines.size(); i += 2) {
    std::vector<std::string_view> names = split_ws(lines[i]), values = split_ws(lines[i + 1]);
    if (names.empty() || names.size() != values.size() || names[0] != values[0] || names[0].back() != ':')
      return std::nullopt;
    const std::string prefix(names[0].substr(0, names[0].size() - 1));
    for (size_t k = 1; k < names.size(); ++k) {
      // /proc/net/snmp has signed fields (Tcp: MaxConn -1); keep them out rather than fail.
      if (values[k].substr(0, 1) == "-") continue;
      std::optional<uint64_t> v = parse_u64(values[k]);
      if (!v) return std::nullopt;
      out[prefix + std::string(names[k])] = *v;
    }
  }
  return out;
}

std::optional<uint64_t> netstat_value(const std::map<std::string, uint64_t>& all, const std::string& name) {
  auto it = all.find(name);
  if (it == all.end()) return std::nullopt;
  return it->second;
}

}  // namespace connscope
