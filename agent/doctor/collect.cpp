// Gathering the doctor's facts from this host (the I/O half of `connscope doctor`).
#include "doctor/collect.hpp"

#include <dirent.h>
#include <sys/utsname.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>
#include <map>
#include <optional>
#include <string_view>
#include <thread>
#include <vector>

#include "host/netns.hpp"
#include "host/netstat.hpp"
#include "host/procfs.hpp"

namespace connscope {

namespace {

constexpr size_t kTopProcesses = 5;

void collect_processes(HostFacts* f) {
  DIR* d = ::opendir("/proc");
  if (!d) {
    f->warnings.push_back(std::string("cannot list /proc: ") + std::strerror(errno) +
                          "; file-descriptor use per process is missing (is /proc mounted?)");
    return;
  }
  std::vector<ProcessFds> all;
  while (const dirent* e = ::readdir(d)) {
    const std::string pid = e->d_name;
    if (!all_digits(pid)) continue;
    int err = 0;
    std::optional<uint64_t> fds = count_fds(pid, &err);
    if (!fds) {
      if (err != ENOENT) ++f->processes_unreadable;  // ENOENT: exited meanwhile
      continue;
    }
    ++f->processes_scanned;
    if (*fds == 0) continue;  // kernel threads
    ProcessFds p;
    p.pid = static_cast<int>(parse_u64(pid).value_or(0));
    p.fds = *fds;
    all.push_back(std::move(p));
  }
  ::closedir(d);
  std::stable_sort(all.begin(), all.end(), [](const ProcessFds& a, const ProcessFds& b) { return a.fds > b.fds; });
  // Among the busiest, the one closest to its limit matters most: read limits of a wider set.
  if (all.size() > 4 * kTopProcesses) all.resize(4 * kTopProcesses);
  for (ProcessFds& p : all) {
    const std::string pid = std::to_string(p.pid);
    if (std::optional<std::string> comm = read_comm("/proc", pid)) p.comm = std::move(*comm);
    if (std::optional<std::string> limits = read_text_file("/proc/" + pid + "/limits"))
      parse_max_open_files(*limits, &p.soft_limit, &p.hard_limit);
  }
  // Top by fd count, but keep any process above 80 % of its soft limit in view.
  auto near_limit = [](const ProcessFds& p) {
    return p.soft_limit != kUnlimited && p.soft_limit > 0 && p.fds * 100 >= p.soft_limit * 80;
  };
  std::stable_partition(all.begin() + static_cast<std::ptrdiff_t>(std::min(all.size(), kTopProcesses)), all.end(),
                        near_limit);
  size_t keep = std::min(all.size(), kTopProcesses);
  while (keep < all.size() && near_limit(all[keep])) ++keep;
  all.resize(keep);
  f->processes = std::move(all);
  if (f->processes_unreadable > 0)
    f->warnings.push_back(std::to_string(f->processes_unreadable) + " of " +
                          std::to_string(f->processes_unreadable + f->processes_scanned) +
                          " processes' fd tables are unreadable (not root): the process list covers this user's "
                          "processes only; run as root (sudo) to see all");
}

std::string netns_label(const std::string& path) {
  constexpr std::string_view kProc = "/proc/";
  if (path.rfind(kProc, 0) != 0) return path;
  const std::string pid = path.substr(kProc.size(), path.find('/', kProc.size()) - kProc.size());
  std::optional<std::string> comm = read_comm("/proc", pid);
  return "pid " + pid + (comm ? " (" + *comm + ")" : "");
}

// Runs on its own thread: for_each_netns() switches the calling thread.
void collect_other_netns(HostFacts* f) {
  const uint32_t host = f->settings.netns;
  const std::map<uint32_t, std::string> paths = enumerate_netns();
  std::vector<std::string> notes;
  std::string error;
  const bool ok = for_each_netns(
      0,
      [&](uint32_t ino) {
        if (ino == host) return;
        OtherNetns o;
        o.netns = ino;
        auto it = paths.find(ino);
        if (it != paths.end()) {
          o.path = it->second;
          o.label = netns_label(it->second);
        }
        std::string err;
        std::optional<NetnsSettings> s = read_netns_settings("/proc", &err);
        if (!s) {
          notes.push_back("netns " + std::to_string(ino) + " skipped: " + err);
          return;
        }
        o.settings = *s;
        o.settings.netns = ino;
        std::vector<SocketRecord> recs;
        if (int r = dump_tcp_sockets(&recs); r < 0)
          notes.push_back("netns " + std::to_string(ino) + ": sock_diag dump failed: " + std::strerror(-r) +
                          "; its TIME_WAIT counts are missing");
        SocketSummary sum = summarize_sockets(recs, o.settings, 1);
        o.time_wait = sum.time_wait;
        if (!sum.destinations.empty()) {
          o.has_busiest = true;
          o.busiest = sum.destinations.front();
        }
        f->other_netns.push_back(std::move(o));
      },
      &error);
  f->other_netns_read = ok || !f->other_netns.empty();
  if (!ok) f->warnings.push_back("other network namespaces: " + error);
  f->warnings.insert(f->warnings.end(), notes.begin(), notes.end());
}

}  // namespace

HostFacts collect_host_facts(std::string* warnings) {
  HostFacts f;
  utsname u{};
  if (::uname(&u) == 0) f.kernel = u.release;

  const uint32_t self = current_netns_inode();
  f.settings.netns = self;
  f.init_netns = ns_inode("/proc/1/ns/net");
  std::string error;
  if (std::optional<NetnsSettings> s = read_netns_settings("/proc", &error)) {
    f.settings = *s;
    f.settings.netns = self;
    f.settings_read = true;
  } else {
    f.warnings.push_back("cannot read the network sysctls: " + error);
  }

  if (std::optional<std::string> t = read_text_file(kThreadNetstat)) {
    if (std::optional<std::map<std::string, uint64_t>> all = parse_netstat_counters(*t)) {
      f.counters = tcp_counters(*all);
      f.counters_read = true;
    }
  }
  if (!f.counters_read)
    f.warnings.push_back(std::string("cannot read ") + kThreadNetstat +
                         "; past TIME_WAIT and accept-queue overflows are missing (is /proc mounted?)");

  if (std::optional<uint64_t> v = read_u64_file("/proc/sys/fs/file-max")) f.file_max = *v;
  if (std::optional<uint64_t> v = read_u64_file("/proc/sys/fs/nr_open")) f.nr_open = *v;
  if (std::optional<std::string> t = read_text_file("/proc/sys/fs/file-nr")) {
    std::vector<std::string_view> fields = split_ws(trim(*t));
    std::optional<uint64_t> allocated = fields.empty() ? std::nullopt : parse_u64(fields[0]);
    if (allocated) {
      f.files_allocated = *allocated;
      f.have_file_nr = true;
    }
  }
  if (f.file_max == 0) f.warnings.push_back("cannot read /proc/sys/fs/file-max; the host-wide file limit is missing");

  collect_processes(&f);

  std::vector<SocketRecord> recs;
  if (int r = dump_tcp_sockets(&recs); r < 0) {
    f.warnings.push_back(std::string("sock_diag dump of this netns failed: ") + std::strerror(-r) +
                         "; TIME_WAIT and listener figures are missing (is the tcp_diag module available? modprobe "
                         "tcp_diag)");
  } else {
    f.sockets = summarize_sockets(recs, f.settings);
    f.sockets_read = true;
  }

  if (f.settings_read) {
    std::thread t([&f] {
      try {
        collect_other_netns(&f);
      } catch (const std::exception& e) {
        f.warnings.push_back(std::string("other network namespaces: ") + e.what());
      }
    });
    t.join();
  }

  if (warnings)
    for (const std::string& w : f.warnings) *warnings += w + "\n";
  return f;
}

}  // namespace connscope
