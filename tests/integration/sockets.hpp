// Plain socket helpers for the helper processes (they throw
// std::runtime_error on unexpected failures; expected failures such as a
// refused connect are returned as errno values).
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <vector>

#include "util.hpp"

namespace itest {

struct Endpoint {
  int af = 0;
  std::string ip;
  uint16_t port = 0;
};

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(Fd&& o) noexcept : fd_(o.release()) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = o.release();
    }
    return *this;
  }
  int get() const { return fd_; }
  int release() {
    int f = fd_;
    fd_ = -1;
    return f;
  }
  void reset();

 private:
  int fd_ = -1;
};

Fd tcp_socket(int af, bool nonblocking = false);
// bind + listen (SO_REUSEADDR); `backlog` is passed to listen() unchanged.
Fd tcp_listen(const Endpoint& ep, int backlog);
// Blocking connect bounded by SO_SNDTIMEO; returns 0 or the errno.
int connect_blocking(int fd, const Endpoint& ep, ms timeout);
// Non-blocking connect: returns 0, EINPROGRESS or the synchronous errno.
int connect_nonblocking(int fd, const Endpoint& ep);
// Wait for a non-blocking connect to finish; returns SO_ERROR (0 = connected),
// or ETIME if it did not finish within the bound.
int finish_connect(int fd, ms timeout);
uint16_t local_port(int fd);
std::string local_ip(int fd);
// accept() bounded by `timeout`; returns an invalid Fd on timeout.
Fd accept_for(int listen_fd, ms timeout);
bool wait_readable(int fd, ms timeout);
// Read until EOF (or error) within the bound; returns bytes read, -1 on timeout.
long drain_until_eof(int fd, ms timeout);
void send_all(int fd, const std::string& data);
// TCP states of the sockets with local port `port` in the calling thread's
// network namespace (/proc/thread-self/net/tcp or tcp6; TCP_* numbers,
// TIME_WAIT = 6). Empty when there is none.
std::vector<int> tcp_states_of_local_port(int af, uint16_t port);

}  // namespace itest
