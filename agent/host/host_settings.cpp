// Reading a namespace's port and TIME_WAIT sysctls from /proc/sys.
#include "host/host_settings.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>

#include "host/procfs.hpp"

namespace connscope {

namespace {

std::string quoted(std::string_view s) {
  constexpr size_t kMax = 40;
  std::string out = "'";
  for (char c : s.substr(0, kMax)) {
    if (c == '\n')
      out += "\\n";
    else if (c == '\t')
      out += "\\t";
    else if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f)
      out += '?';
    else
      out += c;
  }
  if (s.size() > kMax) out += "...";
  return out + "'";
}

std::optional<uint16_t> parse_port(std::string_view s) {
  std::optional<uint64_t> v = parse_u64(s);
  if (!v || *v == 0 || *v > 65535) return std::nullopt;
  return static_cast<uint16_t>(*v);
}

}  // namespace

bool parse_port_range(std::string_view text, uint16_t* lo, uint16_t* hi, std::string* error) {
  std::vector<std::string_view> f = split_ws(trim(text));
  std::optional<uint16_t> a = f.size() == 2 ? parse_port(f[0]) : std::nullopt;
  std::optional<uint16_t> b = f.size() == 2 ? parse_port(f[1]) : std::nullopt;
  if (!a || !b) {
    if (error)
      *error = "ip_local_port_range: " + quoted(text) +
               " is not two port numbers 1..65535; expected e.g. '32768\\t60999' (sysctl net.ipv4.ip_local_port_range)";
    return false;
  }
  if (*a > *b) {
    if (error)
      *error = "ip_local_port_range: low port " + std::to_string(*a) + " is above high port " + std::to_string(*b) +
               "; set it with sysctl -w net.ipv4.ip_local_port_range='" + std::to_string(*b) + " " +
               std::to_string(*a) + "'";
    return false;
  }
  *lo = *a;
  *hi = *b;
  return true;
}

bool parse_reserved_ports(std::string_view text, std::vector<PortRange>* out, std::string* error) {
  std::string_view rest = trim(text);
  std::vector<PortRange> parsed;
  while (!rest.empty()) {
    const size_t comma = rest.find(',');
    std::string_view item = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    const size_t dash = item.find('-');
    // Port 0 may be listed (the kernel accepts it); it is never an ephemeral port.
    std::optional<uint64_t> a = parse_u64(item.substr(0, dash));
    std::optional<uint64_t> b = dash == std::string_view::npos ? a : parse_u64(item.substr(dash + 1));
    if (!a || !b || *a > 65535 || *b > 65535 || *a > *b || (comma != std::string_view::npos && rest.empty())) {
      if (error)
        *error = "ip_local_reserved_ports: bad entry " + quoted(item) + " in " + quoted(text) +
                 "; expected a comma list of ports and ranges like '8080,9000-9100' (sysctl "
                 "net.ipv4.ip_local_reserved_ports)";
      return false;
    }
    parsed.push_back(PortRange{static_cast<uint16_t>(*a), static_cast<uint16_t>(*b)});
  }
  out->insert(out->end(), parsed.begin(), parsed.end());
  return true;
}

uint32_t usable_port_count(uint16_t lo, uint16_t hi, const std::vector<PortRange>& reserved) {
  if (lo > hi) return 0;
  // Clip each reserved range to [lo, hi], merge, subtract.
  std::vector<PortRange> clipped;
  for (const PortRange& r : reserved) {
    if (r.lo > r.hi || r.hi < lo || r.lo > hi) continue;
    clipped.push_back(PortRange{std::max(r.lo, lo), std::min(r.hi, hi)});
  }
  std::sort(clipped.begin(), clipped.end(), [](const PortRange& a, const PortRange& b) { return a.lo < b.lo; });
  uint32_t covered = 0;
  uint32_t next_free = lo;  // first port not yet counted as covered
  for (const PortRange& r : clipped) {
    const uint32_t from = std::max<uint32_t>(r.lo, next_free);
    if (from > r.hi) continue;
    covered += r.hi - from + 1;
    next_free = uint32_t{r.hi} + 1;
  }
  return uint32_t{hi} - lo + 1 - covered;
}

namespace {

struct SysctlReader {
  std::string root;  // <proc_root>/sys/
  std::string* error;

  // nullopt + *missing when the file does not exist; nullopt + *error when it cannot be read.
  std::optional<std::string> text(const char* name, bool* missing) const {
    *missing = false;
    std::string path = root + name;
    std::replace(path.begin() + static_cast<std::ptrdiff_t>(root.size()), path.end(), '.', '/');
    int err = 0;
    std::optional<std::string> t = read_text_file(path, &err);
    if (!t && err == ENOENT) *missing = true;
    if (!t && err != ENOENT && error)
      *error = "read " + path + ": " + std::strerror(err) + "; run as a user that may read /proc/sys";
    return t;
  }

  // Returns false on a read or parse error; keeps *value when the file is missing.
  template <typename T>
  bool integer(const char* name, T* value, bool* present = nullptr) const {
    bool missing = false;
    std::optional<std::string> t = text(name, &missing);
    if (present) *present = t.has_value();
    if (!t) return missing;
    std::optional<int64_t> v = parse_i64(trim(*t));
    if (!v || *v < std::numeric_limits<T>::min() || *v > static_cast<int64_t>(std::numeric_limits<T>::max())) {
      if (error)
        *error = std::string(name) + ": " + "expected one integer, read '" + std::string(trim(*t).substr(0, 40)) +
                 "'; check that " + root + " is a procfs sysctl tree";
      return false;
    }
    *value = static_cast<T>(*v);
    return true;
  }
};

}  // namespace

std::optional<NetnsSettings> read_netns_settings(const std::string& proc_root, std::string* error) {
  std::string scratch;
  if (!error) error = &scratch;
  SysctlReader rd{proc_root + "/sys/", error};
  NetnsSettings s;

  bool missing = false;
  std::optional<std::string> range = rd.text("net.ipv4.ip_local_port_range", &missing);
  if (!range) {
    if (missing)
      *error = "no " + proc_root + "/sys/net/ipv4/ip_local_port_range; mount procfs at " + proc_root +
               " (mount -t proc proc " + proc_root + ")";
    return std::nullopt;
  }
  if (!parse_port_range(*range, &s.port_lo, &s.port_hi, error)) return std::nullopt;

  std::optional<std::string> reserved = rd.text("net.ipv4.ip_local_reserved_ports", &missing);
  if (!reserved && !missing) return std::nullopt;
  if (reserved && !parse_reserved_ports(*reserved, &s.reserved, error)) return std::nullopt;
  s.usable_ports = usable_port_count(s.port_lo, s.port_hi, s.reserved);

  if (!rd.integer("net.ipv4.tcp_tw_reuse", &s.tw_reuse) ||
      !rd.integer("net.ipv4.tcp_tw_reuse_delay", &s.tw_reuse_delay_ms, &s.tw_reuse_delay_present) ||
      !rd.integer("net.ipv4.tcp_timestamps", &s.timestamps) ||
      !rd.integer("net.ipv4.tcp_fin_timeout", &s.fin_timeout) ||
      !rd.integer("net.ipv4.tcp_max_tw_buckets", &s.max_tw_buckets) ||
      !rd.integer("net.core.somaxconn", &s.somaxconn) ||
      !rd.integer("net.ipv4.tcp_max_syn_backlog", &s.max_syn_backlog) ||
      !rd.integer("net.ipv4.tcp_syncookies", &s.syncookies))
    return std::nullopt;
  return s;
}

std::string format_port_ranges(const std::vector<PortRange>& ranges) {
  if (ranges.empty()) return "none";
  std::string out;
  for (const PortRange& r : ranges) {
    if (!out.empty()) out += ',';
    out += std::to_string(r.lo);
    if (r.hi != r.lo) out += "-" + std::to_string(r.hi);
  }
  return out;
}

std::string describe(const NetnsSettings& s) {
  std::string out = "ports " + std::to_string(s.port_lo) + "-" + std::to_string(s.port_hi) + " (" +
                    std::to_string(s.usable_ports) + " usable)";
  if (!s.reserved.empty()) out += ", reserved " + format_port_ranges(s.reserved);
  out += ", tw_reuse=" + std::to_string(s.tw_reuse);
  if (s.tw_reuse_delay_present) out += ", tw_reuse_delay=" + std::to_string(s.tw_reuse_delay_ms) + "ms";
  out += ", timestamps=" + std::to_string(s.timestamps);
  return out;
}

}  // namespace connscope
