// Network namespaces: enumeration, resolving a path or inode, running code inside each.
#include "host/netns.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <string_view>

#include "host/procfs.hpp"
#include "util/unique_fd.hpp"

namespace connscope {

namespace {

constexpr const char* kThreadNetns = "/proc/thread-self/ns/net";

// Switches the calling thread into another netns; the destructor switches back
// if restore() was not called (exception paths).
class NetnsSwitch {
 public:
  explicit NetnsSwitch(int home_fd) : home_fd_(home_fd) {}
  ~NetnsSwitch() { restore(); }
  NetnsSwitch(const NetnsSwitch&) = delete;
  NetnsSwitch& operator=(const NetnsSwitch&) = delete;
  int enter(int ns_fd) {
    if (::setns(ns_fd, CLONE_NEWNET) != 0) return errno;
    away_ = true;
    return 0;
  }
  bool restore() {
    if (!away_) return true;
    if (::setns(home_fd_, CLONE_NEWNET) != 0) return false;
    away_ = false;
    return true;
  }

 private:
  int home_fd_;
  bool away_ = false;
};

}  // namespace

uint32_t ns_inode(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return 0;
  return static_cast<uint32_t>(st.st_ino);
}

std::map<uint32_t, std::string> enumerate_netns() {
  std::map<uint32_t, std::string> found;
  auto scan = [&found](const char* dir, bool pids_only, const char* suffix) {
    DIR* d = ::opendir(dir);
    if (!d) return;
    while (const dirent* e = ::readdir(d)) {
      std::string_view name = e->d_name;
      if (name == "." || name == "..") continue;
      if (pids_only && !all_digits(name)) continue;
      std::string path = std::string(dir) + "/" + std::string(name) + suffix;
      if (uint32_t ino = ns_inode(path)) found.emplace(ino, std::move(path));
    }
    ::closedir(d);
  };
  scan("/run/netns", false, "");
  scan("/proc", true, "/ns/net");
  return found;
}

namespace {
constexpr std::string_view kRunNetns = "/run/netns/";
}

std::string netns_name(const std::string& path) {
  if (path.rfind(kRunNetns, 0) != 0 || path.size() == kRunNetns.size()) return "";
  return path.substr(kRunNetns.size());
}

std::string netns_exec_prefix(const std::string& path, bool own) {
  if (own) return "";
  if (std::string name = netns_name(path); !name.empty()) return "ip netns exec " + name + " ";
  return "nsenter --net=" + (path.empty() ? std::string("<netns file>") : path) + " ";
}

uint32_t current_netns_inode() { return ns_inode(kThreadNetns); }

bool for_each_netns(uint32_t filter, const std::function<void(uint32_t netns)>& fn, std::string* error) {
  std::string scratch;
  if (!error) error = &scratch;

  UniqueFd home(::open(kThreadNetns, O_RDONLY | O_CLOEXEC));
  if (!home) {
    *error = std::string("open ") + kThreadNetns + ": " + std::strerror(errno) + "; is /proc mounted?";
    return false;
  }
  struct stat home_st {};
  if (::fstat(home.get(), &home_st) != 0) {
    *error = std::string("fstat ") + kThreadNetns + ": " + std::strerror(errno);
    return false;
  }
  const auto home_ino = static_cast<uint32_t>(home_st.st_ino);

  std::map<uint32_t, std::string> namespaces = enumerate_netns();
  namespaces.emplace(home_ino, kThreadNetns);

  for (const auto& [ino, path] : namespaces) {
    if (filter != 0 && ino != filter) continue;
    NetnsSwitch sw(home.get());
    if (ino != home_ino) {
      UniqueFd ns(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
      struct stat st {};
      // Gone (process exited) or replaced (pid reuse) since enumeration: skip.
      if (!ns || ::fstat(ns.get(), &st) != 0 || st.st_ino != ino) continue;
      if (int err = sw.enter(ns.get()); err != 0) {
        if (err == EPERM) {
          *error = "setns(CLONE_NEWNET) into netns " + std::to_string(ino) + " (" + path + "): " + std::strerror(err) +
                   "; reading other network namespaces needs CAP_SYS_ADMIN (run as root)";
          return false;
        }
        continue;
      }
    }
    fn(ino);
    if (!sw.restore()) {
      *error = "setns back to the original netns " + std::to_string(home_ino) + ": " + std::strerror(errno) +
               "; the thread is left in netns " + std::to_string(ino);
      return false;
    }
  }
  return true;
}

}  // namespace connscope
