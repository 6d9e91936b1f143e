// Which process holds a socket: the /proc/<pid>/fd scan `ss -p` and `lsof`
// do (a socket fd's link reads "socket:[INODE]", the inode sock_diag reports
// as idiag_inode), and a cache of listeners' owners that keeps the scan rare
// and bounded on hosts with many open files.
//
// Every function takes the proc root ("/proc", or a fake tree of real files
// and symlinks in tests). Only live runs have a /proc to scan: a replay never
// builds any of this.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "host/listener_poller.hpp"

namespace connscope {

struct SocketOwner {
  uint32_t pid = 0;     // the lowest pid holding the socket (nginx's master, not a worker)
  std::string comm;     // its /proc/<pid>/comm
  uint32_t others = 0;  // further processes holding the same socket
};

// "nginx (pid 812)", or "nginx (pid 812 and 4 more)" when others hold it too.
std::string owner_label(const SocketOwner& o);

// INODE out of a link target "socket:[INODE]", or nullopt for anything else
// (a file, a pipe, "anon_inode:...").
std::optional<uint64_t> parse_socket_link(std::string_view target);
// INODE out of a namespace link target "net:[INODE]" (kind "net").
std::optional<uint64_t> parse_ns_link(std::string_view target, std::string_view kind);

// A scan of <proc_root>/<pid>/fd/* for the processes holding some sockets,
// in ascending pid order, that can stop when a budget is spent and go on
// where it stopped. Each wanted inode names the netns of its socket; only
// processes in that netns (by <proc_root>/<pid>/ns/net) are taken as its
// holders. Processes that exit mid-scan, or whose files this user cannot
// read, are passed over.
class SocketOwnerScan {
 public:
  // wanted: socket inode -> netns inode (0: any netns).
  SocketOwnerScan(std::string proc_root, std::map<uint64_t, uint32_t> wanted);

  // Reads processes' fd tables until at least max_fds links were read or
  // max_ns elapsed (checked between processes, so one process's table is
  // always read whole), or every process was visited. True when done.
  bool step(uint64_t max_fds, uint64_t max_ns);
  bool done() const { return listed_ && next_ >= pids_.size(); }

  // Owners found so far, by socket inode. Complete once done().
  const std::map<uint64_t, SocketOwner>& owners() const { return owners_; }
  const std::map<uint64_t, uint32_t>& wanted() const { return wanted_; }
  uint64_t fds_read() const { return fds_read_; }
  uint64_t processes_read() const { return processes_read_; }

 private:
  void scan_process(uint32_t pid);

  std::string proc_root_;
  std::map<uint64_t, uint32_t> wanted_;
  std::vector<uint32_t> pids_;
  size_t next_ = 0;
  bool listed_ = false;
  std::map<uint64_t, SocketOwner> owners_;
  uint64_t fds_read_ = 0, processes_read_ = 0;
};

// A whole scan at once: the owners of the wanted sockets (inode -> netns).
std::map<uint64_t, SocketOwner> find_socket_owners(const std::string& proc_root,
                                                   const std::map<uint64_t, uint32_t>& wanted);

// A socket's holders change rarely while the socket lives (fork, exit, fd
// passing); a new socket is a new key. Reading an fd link costs 4-7 us
// (measured with tests/bench/bench_socket_owners.cpp), so a poll's budget
// reads a few thousand: at most 2 % of a core at one poll a second, and a
// host with 200k fds gets a full scan in about a minute.
struct OwnerCacheConfig {
  double ttl_s = 300;            // an owner found (or not found) is trusted this long
  uint64_t fds_per_poll = 5000;  // fd links one poll may read...
  double ms_per_poll = 20;       // ...and the time it may take
};

// The owners of a host's listeners, as labels for the listener rows and
// their alerts. A listener is looked up when first seen and again once its
// entry is older than the ttl (a new socket on the same address has another
// inode, and so another key). One scan at a time covers every listener that
// needs a lookup, a budget of fd links per poll, so a host with 200k open
// files spreads its scan over many polls instead of stalling one. A listener
// without a name gets its lowest-pid holder as soon as the scan passes it
// (the count of the others when the scan ends); one with a name keeps it
// until the scan ends.
class ListenerOwnerCache {
 public:
  explicit ListenerOwnerCache(std::string proc_root, OwnerCacheConfig cfg = {});

  // One poll: the listener dumps of every namespace read (with inodes).
  // Advances (or starts) the scan by one budget, sets each listener's
  // `owner` to its label ("" when not known), and forgets listeners no
  // longer listed in the namespaces dumped.
  void update(std::vector<ListenerDump>& dumps, uint64_t now_ns);

  uint64_t scans_completed() const { return scans_completed_; }
  uint64_t fds_read_total() const { return fds_read_total_; }

 private:
  struct Key {
    uint32_t netns;
    uint16_t family;
    std::array<uint8_t, 16> addr;
    uint16_t port;
    uint64_t inode;
    auto operator<=>(const Key&) const = default;  // NOLINT(modernize-use-nullptr): defaulted <=>
  };
  struct Entry {
    std::string label;
    bool looked_up = false;  // false: a scan is pending
    uint64_t looked_up_ns = 0;
    uint64_t seen_ns = 0;  // last listed by a dump
  };

  std::string proc_root_;
  OwnerCacheConfig cfg_;
  std::map<Key, Entry> entries_;
  std::optional<SocketOwnerScan> scan_;
  std::vector<Key> scanning_;  // the keys scan_ was started for
  uint64_t scans_completed_ = 0, fds_read_total_ = 0;
};

}  // namespace connscope
