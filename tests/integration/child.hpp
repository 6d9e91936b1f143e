// A forked helper process that joins a network namespace, takes a known comm
// (prctl PR_SET_NAME) and runs a function there, talking to the test over a
// pair of pipes with one JSON object per line. Sockets it creates belong to
// that namespace and are attributed to its pid/comm by the agent.
#pragma once

#include <sys/types.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "util.hpp"

namespace itest {

using json = nlohmann::json;

// One end of the line protocol.
class Channel {
 public:
  Channel(int rfd, int wfd) : rfd_(rfd), wfd_(wfd) {}
  void send(const json& msg);
  // Next message, or nullopt on timeout / end of file (eof() tells which).
  std::optional<json> recv(ms timeout);
  bool eof() const { return eof_; }

 private:
  int rfd_, wfd_;
  std::string buf_;
  bool eof_ = false;
};

class Child {
 public:
  // The body runs in the child after setns(netns_fd) and PR_SET_NAME(comm).
  // A body that throws reports {"error": what} and exits 1; returning exits 0.
  // The constructor waits for the child's hello {"pid","comm","netns"} and
  // throws if it does not arrive.
  using Body = std::function<void(Channel&)>;
  Child(const std::string& comm, int netns_fd, Body body);
  ~Child();  // SIGKILL + reap if still running
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  pid_t pid() const { return pid_; }
  const std::string& comm() const { return comm_; }  // as read back from /proc/self/comm in the child
  uint64_t netns_inode() const { return netns_; }

  void send(const json& msg);
  // Next message within the bound (scaled); throws std::runtime_error naming
  // `what` on timeout, EOF, or an {"error": ...} message from the child.
  json recv(ms timeout, const std::string& what);
  // Wait for exit within the bound (scaled); throws if it does not exit or
  // exits non-zero.
  void wait_exit(ms timeout);

 private:
  pid_t pid_ = -1;
  std::string comm_;
  uint64_t netns_ = 0;
  std::optional<Channel> ch_;
  int to_child_ = -1, from_child_ = -1;
  bool reaped_ = false;
};

}  // namespace itest
