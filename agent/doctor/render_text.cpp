// The doctor's text report.
#include "doctor/render_text.hpp"

#include <algorithm>
#include <string_view>

#include "doctor/numbers.hpp"
#include "host/procfs.hpp"
#include "util/address.hpp"

namespace connscope {

namespace {

struct Section {
  const char* prefix;
  const char* title;
};
constexpr Section kSections[] = {{"ports.", "Ephemeral ports"},
                                 {"timewait.", "TIME_WAIT"},
                                 {"listen.", "Listen queues"},
                                 {"fd.", "File descriptors"},
                                 {"netns.", "Other network namespaces"}};

// Appends text word-wrapped at `width` columns: the first line starts with
// first (default: indent), the others with indent.
void wrap(std::string* out, std::string_view text, const std::string& indent, const std::string& first = "",
          size_t width = 110) {
  size_t col = 0;
  bool first_line = true;
  for (std::string_view word : split_ws(text)) {
    if (col > 0 && col + 1 + word.size() > width) {
      *out += '\n';
      col = 0;
    }
    if (col == 0) {
      const std::string& lead = first_line && !first.empty() ? first : indent;
      first_line = false;
      *out += lead;
      col = lead.size();
    } else {
      *out += ' ';
      ++col;
    }
    *out += word;
    col += word.size();
  }
  if (col > 0) *out += '\n';
}

std::string upper(std::string s) {
  for (char& c : s) c = static_cast<char>(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
  return s;
}

std::string pad(std::string s, size_t w) {
  if (s.size() < w) s.append(w - s.size(), ' ');
  return s;
}

std::string rpad(const std::string& s, size_t w) { return s.size() < w ? std::string(w - s.size(), ' ') + s : s; }

void section_facts(std::string* out, std::string_view prefix, const HostFacts& f) {
  const NetnsSettings& s = f.settings;
  if (prefix == "ports." && f.settings_read) {
    *out += "  range " + std::to_string(s.port_lo) + "-" + std::to_string(s.port_hi) + ", reserved " +
            format_port_ranges(s.reserved) + ", " + std::to_string(s.usable_ports) + " usable; tcp_tw_reuse " +
            std::to_string(s.tw_reuse) +
            (s.tw_reuse_delay_present ? " (delay " + seconds_text(s.tw_reuse_delay_ms) + ")" : "") +
            ", tcp_timestamps " + std::to_string(s.timestamps) + "\n";
  } else if (prefix == "timewait." && f.sockets_read) {
    *out += "  " + std::to_string(f.sockets.sockets) + " TCP sockets, " + std::to_string(f.sockets.time_wait) +
            " in TIME_WAIT (" + std::to_string(f.sockets.time_wait_inbound) + " inbound); tcp_max_tw_buckets " +
            std::to_string(s.max_tw_buckets) + "\n";
    if (!f.sockets.destinations.empty()) {
      *out += "  " + pad("outgoing: source -> destination", 52) + rpad("sockets", 8) + rpad("TIME_WAIT", 10) +
              rpad("reusable", 9) + "  ports used\n";
      for (const DestinationUse& d : f.sockets.destinations)
        *out += "  " + pad(dest_subject(d), 52) + rpad(std::to_string(d.sockets), 8) +
                rpad(std::to_string(d.time_wait), 10) + rpad(std::to_string(d.reusable), 9) + "  " +
                pct_text(pct(effective_use(d), s.usable_ports)) + "\n";
    }
  } else if (prefix == "listen." && f.sockets_read) {
    *out += "  " + std::to_string(f.sockets.listeners.size()) + " listeners; somaxconn " + std::to_string(s.somaxconn) +
            ", tcp_max_syn_backlog " + std::to_string(s.max_syn_backlog) + ", tcp_syncookies " +
            std::to_string(s.syncookies) + "\n";
    if (!f.sockets.listeners.empty()) {
      *out += "  " + pad("listener", 48) + rpad("queue", 7) + rpad("backlog", 9) + "\n";
      std::vector<ListenerFact> ls = f.sockets.listeners;
      std::stable_sort(ls.begin(), ls.end(), [](const auto& a, const auto& b) { return a.port < b.port; });
      for (const ListenerFact& l : ls)
        *out += "  " + pad(format_endpoint(l.family, l.addr, l.port), 48) + rpad(std::to_string(l.queue), 7) +
                rpad(std::to_string(l.max_backlog), 9) +
                (s.somaxconn > 0 && l.max_backlog == s.somaxconn ? "  capped by somaxconn" : "") + "\n";
    }
  } else if (prefix == "fd.") {
    if (f.file_max > 0)
      *out += "  fs.file-nr " + (f.have_file_nr ? std::to_string(f.files_allocated) : std::string("?")) +
              " allocated of fs.file-max " + num(f.file_max) + "; fs.nr_open " + num(f.nr_open) + "\n";
    if (!f.processes.empty()) {
      *out += "  " + pad("busiest processes", 34) + rpad("fds", 9) + rpad("soft limit", 12) + rpad("use", 8) + "\n";
      for (const ProcessFds& p : f.processes)
        *out += "  " + pad(std::to_string(p.pid) + " " + p.comm, 34) + rpad(std::to_string(p.fds), 9) +
                rpad(num(p.soft_limit), 12) +
                rpad(p.soft_limit == kUnlimited ? "-" : pct_text(pct(p.fds, p.soft_limit)), 8) + "\n";
      *out += "  (" + std::to_string(f.processes_scanned) + " processes scanned";
      if (f.processes_unreadable) *out += ", " + std::to_string(f.processes_unreadable) + " unreadable";
      *out += ")\n";
    }
  } else if (prefix == "netns.") {
    if (!f.other_netns_read) {
      *out += "  not inspected (see notes)\n";
      return;
    }
    *out += "  other network namespaces inspected: " + std::to_string(f.other_netns.size()) + "\n";
  }
}

}  // namespace

std::string format_doctor_text(const HostFacts& facts, const std::vector<Finding>& findings) {
  std::string out = "connscope doctor";
  if (!facts.kernel.empty()) out += ": kernel " + facts.kernel;
  out += ", netns " + std::to_string(facts.settings.netns);
  if (facts.init_netns != 0)
    out += facts.init_netns == facts.settings.netns ? " (the host's, PID 1's)" : " (not PID 1's: a container?)";
  out += "\n";
  int counts[4] = {0, 0, 0, 0};  // by FindingLevel, ok first
  for (const Finding& f : findings) ++counts[static_cast<int>(f.severity)];
  out += "findings: " + std::to_string(counts[3]) + " critical, " + std::to_string(counts[2]) + " warning, " +
         std::to_string(counts[1]) + " info, " + std::to_string(counts[0]) + " ok\n";

  for (const Section& sec : kSections) {
    out += "\n" + std::string(sec.title) + "\n";
    section_facts(&out, sec.prefix, facts);
    bool any = false;
    for (const Finding& f : findings) {
      if (f.id.rfind(sec.prefix, 0) != 0) continue;
      any = true;
      out += "\n  [" + upper(level_name(f.severity)) + "] " + f.subject + " = " + f.value + "\n";
      wrap(&out, f.meaning, "    ");
      if (!f.fix.empty()) wrap(&out, f.fix, "         ", "    fix: ");
    }
    if (!any && std::string_view(sec.prefix) == "netns." && facts.other_netns_read)
      out += facts.other_netns.empty() ? "  (there are none)\n" : "  (none differ from the host or are busy)\n";
  }
  if (!facts.warnings.empty()) {
    out += "\nNotes\n";
    for (const std::string& w : facts.warnings) wrap(&out, w, "    ", "  - ");
  }
  return out;
}

}  // namespace connscope
