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

// netns inode -> a path that opens it: /run/netns/<name> when `ip netns`
// named it (the name a person knows it by), else the first
// /proc/<pid>/ns/net in pid order.
std::map<uint32_t, std::string> enumerate_netns();

// The prefix that runs a command inside the netns `path` opens, for the
// commands remedies print: "" for the agent's own netns (own), "ip netns
// exec NAME " for /run/netns/NAME, "nsenter --net=PATH " otherwise, and
// "nsenter --net=<netns file> " when no path is known.
std::string netns_exec_prefix(const std::string& path, bool own);
// NAME for /run/netns/NAME, else "".
std::string netns_name(const std::string& path);

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
