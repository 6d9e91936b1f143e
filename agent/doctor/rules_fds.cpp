// File descriptors: fs.file-max and the processes near their RLIMIT_NOFILE.
#include <algorithm>

#include "doctor/numbers.hpp"
#include "doctor/rules.hpp"
#include "host/procfs.hpp"

namespace connscope {

namespace {

std::string fd_limit_fix(int pid, const std::string& target) {
  std::string fix = "raise it: prlimit --pid " + std::to_string(pid) + " --nofile=";
  fix += target;
  fix += ":";
  fix += target;
  fix += " now, and LimitNOFILE=";
  fix += target;
  fix += " in its systemd unit (or ulimit -n) for restarts";
  return fix;
}

}  // namespace

void evaluate_fds(const HostFacts& f, std::vector<Finding>* out) {
  if (f.file_max > 0) {
    const double p = f.have_file_nr ? pct(f.files_allocated, f.file_max) : 0;
    add_finding(out, "fd.file_max",
                p >= 95   ? FindingLevel::critical
                : p >= 80 ? FindingLevel::warning
                          : FindingLevel::ok,
                "fs.file-max",
                (f.have_file_nr ? std::to_string(f.files_allocated) + " of " : "") + num(f.file_max) + " open files" +
                    (f.nr_open ? ", fs.nr_open " + num(f.nr_open) : ""),
                "fs.file-max caps open files of the whole host (every socket is one); at the cap open(), socket() and "
                "accept() fail with ENFILE. fs.nr_open caps what a process's RLIMIT_NOFILE can be raised to.",
                p >= 80 ? "sysctl -w fs.file-max=" + std::to_string(f.file_max * 2) + persist_hint() : "");
  }
  bool flagged = false;
  for (const ProcessFds& p : f.processes) {
    if (p.soft_limit == kUnlimited || p.soft_limit == 0) continue;
    const double use = pct(p.fds, p.soft_limit);
    if (use < 80) continue;
    flagged = true;
    const std::string target = std::to_string(
        std::min<uint64_t>(std::max<uint64_t>(p.soft_limit * 4, 65536), f.nr_open ? f.nr_open : uint64_t{1048576}));
    add_finding(
        out, "fd.process." + std::to_string(p.pid), use >= 95 ? FindingLevel::critical : FindingLevel::warning,
        "pid " + std::to_string(p.pid) + " (" + p.comm + ")",
        std::to_string(p.fds) + " of " + num(p.soft_limit) + " fds (" + pct_text(use) + "; hard limit " +
            num(p.hard_limit) + ")",
        "At its soft RLIMIT_NOFILE the process's accept(), socket() and connect() fail with EMFILE (\"Too many open "
        "files\"): a server stops accepting while the listen queue overflows.",
        fd_limit_fix(p.pid, target));
  }
  if (!flagged && !f.processes.empty()) {
    const ProcessFds& p = f.processes.front();
    add_finding(out, "fd.processes", FindingLevel::ok, "pid " + std::to_string(p.pid) + " (" + p.comm + ")",
                std::to_string(p.fds) + " of " + num(p.soft_limit) + " fds",
                "The process with the most open files; no process is above 80 % of its soft limit.", "");
  }
}

}  // namespace connscope
