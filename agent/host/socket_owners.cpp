// Finding the processes that hold sockets through /proc/<pid>/fd, and the cache of listeners' owners.
#include "host/socket_owners.hpp"

#include <dirent.h>

#include <chrono>
#include <cstdint>
#include <iterator>
#include <memory>
#include <set>
#include <utility>

#include "host/procfs.hpp"

namespace connscope {

namespace {

struct DirCloser {
  void operator()(DIR* d) const { ::closedir(d); }
};
using UniqueDir = std::unique_ptr<DIR, DirCloser>;

// INODE out of "PREFIX:[INODE]".
std::optional<uint64_t> bracketed_inode(std::string_view target, std::string_view prefix) {
  if (target.size() < prefix.size() + 3 || target.substr(0, prefix.size()) != prefix) return std::nullopt;
  target.remove_prefix(prefix.size());
  if (target.front() != ':' || target[1] != '[' || target.back() != ']') return std::nullopt;
  return parse_u64(target.substr(2, target.size() - 3));
}

}  // namespace

std::string owner_label(const SocketOwner& o) {
  std::string label = o.comm + " (pid " + std::to_string(o.pid);
  if (o.others > 0) label += " and " + std::to_string(o.others) + " more";
  return label + ")";
}

std::optional<uint64_t> parse_socket_link(std::string_view target) { return bracketed_inode(target, "socket"); }

std::optional<uint64_t> parse_ns_link(std::string_view target, std::string_view kind) {
  return bracketed_inode(target, kind);
}

SocketOwnerScan::SocketOwnerScan(std::string proc_root, std::map<uint64_t, uint32_t> wanted)
    : proc_root_(std::move(proc_root)), wanted_(std::move(wanted)) {}

bool SocketOwnerScan::step(uint64_t max_fds, uint64_t max_ns) {
  if (!listed_) {
    if (!wanted_.empty()) pids_ = list_pids(proc_root_);
    listed_ = true;
  }
  const auto start = std::chrono::steady_clock::now();
  const uint64_t fds_at_start = fds_read_;
  while (next_ < pids_.size()) {
    const auto spent = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start);
    if (fds_read_ - fds_at_start >= max_fds || static_cast<uint64_t>(spent.count()) >= max_ns) break;
    scan_process(pids_[next_++]);
  }
  return done();
}

void SocketOwnerScan::scan_process(uint32_t pid) {
  const std::string p = std::to_string(pid);
  const std::string fd_dir = proc_root_ + "/" + p + "/fd";
  UniqueDir d(::opendir(fd_dir.c_str()));
  if (!d) return;  // exited since the listing, or another user's process without privileges
  const int dir_fd = ::dirfd(d.get());
  ++processes_read_;
  std::set<uint64_t> held;  // a process holding a socket in several fds counts once
  while (const dirent* e = ::readdir(d.get())) {
    if (e->d_name[0] == '.') continue;
    ++fds_read_;
    std::optional<std::string> target = read_symlink(dir_fd, e->d_name);
    if (!target) continue;  // closed meanwhile
    std::optional<uint64_t> inode = parse_socket_link(*target);
    if (inode && wanted_.count(*inode)) held.insert(*inode);
  }
  if (held.empty()) return;
  // Only now, for the few processes that hold a wanted socket: their netns and name.
  std::optional<std::string> ns = read_symlink(proc_root_ + "/" + p + "/ns/net");
  const std::optional<uint64_t> netns = ns ? parse_ns_link(*ns, "net") : std::nullopt;
  std::optional<std::string> comm = read_comm(proc_root_, p);
  if (!comm) return;  // exited mid-scan
  for (uint64_t inode : held) {
    const uint32_t want_ns = wanted_.at(inode);
    if (want_ns != 0 && netns != want_ns) continue;
    auto [it, first] = owners_.try_emplace(inode, SocketOwner{pid, *comm, 0});
    if (!first) ++it->second.others;
  }
}

std::map<uint64_t, SocketOwner> find_socket_owners(const std::string& proc_root,
                                                   const std::map<uint64_t, uint32_t>& wanted) {
  SocketOwnerScan scan(proc_root, wanted);
  while (!scan.step(UINT64_MAX, UINT64_MAX)) {
  }
  return scan.owners();
}

ListenerOwnerCache::ListenerOwnerCache(std::string proc_root, OwnerCacheConfig cfg)
    : proc_root_(std::move(proc_root)), cfg_(cfg) {}

void ListenerOwnerCache::update(std::vector<ListenerDump>& dumps, uint64_t now_ns) {
  const auto ttl_ns = static_cast<uint64_t>(cfg_.ttl_s * 1e9);
  auto key_of = [](uint32_t netns, const ListenerInfo& l) { return Key{netns, l.family, l.addr, l.port, l.inode}; };
  std::set<uint32_t> dumped;
  std::set<Key> listed;
  for (const ListenerDump& d : dumps) {
    dumped.insert(d.netns);
    for (const ListenerInfo& l : d.listeners) listed.insert(key_of(d.netns, l));
  }
  for (const Key& k : listed) {
    Entry& e = entries_[k];
    e.seen_ns = now_ns;
    if (k.inode == 0 && !e.looked_up) {  // nothing to look for
      e.looked_up = true;
      e.looked_up_ns = now_ns;
    }
  }

  if (!scan_) {
    std::map<uint64_t, uint32_t> wanted;
    for (const Key& k : listed) {
      const Entry& e = entries_[k];
      if (k.inode != 0 && (!e.looked_up || now_ns - e.looked_up_ns >= ttl_ns)) {
        wanted[k.inode] = k.netns;
        scanning_.push_back(k);
      }
    }
    if (!wanted.empty()) scan_.emplace(proc_root_, std::move(wanted));
  }
  if (scan_) {
    const uint64_t before = scan_->fds_read();
    const bool done = scan_->step(cfg_.fds_per_poll, static_cast<uint64_t>(cfg_.ms_per_poll * 1e6));
    fds_read_total_ += scan_->fds_read() - before;
    if (done) {
      for (const Key& k : scanning_) {
        auto it = entries_.find(k);
        if (it == entries_.end()) continue;  // closed while the scan ran
        auto o = scan_->owners().find(k.inode);
        it->second.label = o == scan_->owners().end() ? std::string() : owner_label(o->second);
        it->second.looked_up = true;
        it->second.looked_up_ns = now_ns;
      }
      scan_.reset();
      scanning_.clear();
      ++scans_completed_;
    } else {
      // Pids go in ascending order, so the first holder found is the one to
      // name: a listener without a name gets it now, the count of the
      // others when the scan ends.
      for (const Key& k : scanning_) {
        auto it = entries_.find(k);
        auto o = scan_->owners().find(k.inode);
        if (it != entries_.end() && it->second.label.empty() && o != scan_->owners().end())
          it->second.label = owner_label(o->second);
      }
    }
  }

  for (ListenerDump& d : dumps)
    for (ListenerInfo& l : d.listeners) l.owner = entries_[key_of(d.netns, l)].label;
  // Closed listeners go; so do those of namespaces not dumped for a ttl (gone).
  for (auto it = entries_.begin(); it != entries_.end();) {
    const bool closed = dumped.count(it->first.netns) && !listed.count(it->first);
    it = closed || now_ns - it->second.seen_ns > ttl_ns ? entries_.erase(it) : std::next(it);
  }
}

}  // namespace connscope
