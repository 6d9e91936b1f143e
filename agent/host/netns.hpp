// Network namespaces: enumeration and running code inside each of them.
//
// Namespaces are found through /proc/[0-9]*/ns/net and /run/netns/* (the
// names `ip netns` creates) and identified by the inode of their nsfs file,
// the same number BPF sees as net->ns.inum.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>

namespace connscope {

// Inode of a namespace file (e.g. /proc/1/ns/net), or 0 when it cannot be
// stat()ed (gone, or another user's process without privileges).
uint32_t ns_inode(const std::string& path);

// netns inode -> a path that opens it (the first one found: /proc/<pid>/ns/net
// in pid order, then /run/netns/<name>).
std::map<uint32_t, std::string> enumerate_netns();

// Inode of the calling thread's network namespace, or 0 on failure.
uint32_t current_netns_inode();

// Calls fn(inode) with the calling thread switched into each network
// namespace (filter 0 = all, else only that inode), restoring the thread's
// netns after each call. The calling thread's own netns is always included
// (fn runs there without a switch). Namespaces that vanish, are replaced
// (pid reuse) or cannot be opened or entered for reasons other than
// permission are skipped. Returns false with *error set when setns() is
// refused (CAP_SYS_ADMIN missing) or the original netns cannot be restored;
// fn has then run for some namespaces only. An exception thrown by fn
// propagates after the thread's netns has been restored. setns() switches
// only the calling thread: run this on a dedicated thread when other threads
// of the process must not observe the switch window.
bool for_each_netns(uint32_t filter, const std::function<void(uint32_t netns)>& fn, std::string* error);

}  // namespace connscope
