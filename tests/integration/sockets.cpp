// Plain socket helpers for the helper processes.
#include "sockets.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <sstream>
#include <stdexcept>

#include "netns.hpp"

namespace itest {

void Fd::reset() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

namespace {

socklen_t make_sockaddr(const Endpoint& ep, sockaddr_storage& ss) {
  ss = {};
  if (ep.af == AF_INET) {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_port = htons(ep.port);
    if (inet_pton(AF_INET, ep.ip.c_str(), &a->sin_addr) != 1) throw std::runtime_error("bad IPv4 address " + ep.ip);
    return sizeof *a;
  }
  auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
  a->sin6_family = AF_INET6;
  a->sin6_port = htons(ep.port);
  if (inet_pton(AF_INET6, ep.ip.c_str(), &a->sin6_addr) != 1) throw std::runtime_error("bad IPv6 address " + ep.ip);
  return sizeof *a;
}

}  // namespace

Fd tcp_socket(int af, bool nonblocking) {
  int fd = socket(af, SOCK_STREAM | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0), 0);
  if (fd < 0) throw std::runtime_error("socket: " + errno_str(errno));
  return Fd(fd);
}

Fd tcp_listen(const Endpoint& ep, int backlog) {
  Fd fd = tcp_socket(ep.af);
  int one = 1;
  setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (ep.af == AF_INET6) setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  sockaddr_storage ss;
  socklen_t len = make_sockaddr(ep, ss);
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0)
    throw std::runtime_error("bind " + ep.ip + ":" + std::to_string(ep.port) + ": " + errno_str(errno));
  if (listen(fd.get(), backlog) != 0) throw std::runtime_error("listen: " + errno_str(errno));
  return fd;
}

int connect_blocking(int fd, const Endpoint& ep, ms timeout) {
  timeval tv{};
  tv.tv_sec = timeout.count() / 1000;
  tv.tv_usec = (timeout.count() % 1000) * 1000;
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_storage ss;
  socklen_t len = make_sockaddr(ep, ss);
  int r;
  do {
    r = connect(fd, reinterpret_cast<sockaddr*>(&ss), len);
  } while (r != 0 && errno == EINTR);
  return r == 0 ? 0 : errno;
}

int connect_nonblocking(int fd, const Endpoint& ep) {
  int fl = fcntl(fd, F_GETFL);
  fcntl(fd, F_SETFL, fl | O_NONBLOCK);
  sockaddr_storage ss;
  socklen_t len = make_sockaddr(ep, ss);
  return connect(fd, reinterpret_cast<sockaddr*>(&ss), len) == 0 ? 0 : errno;
}

int finish_connect(int fd, ms timeout) {
  pollfd p{fd, POLLOUT, 0};
  int r = poll(&p, 1, static_cast<int>(timeout.count()));
  if (r == 0) return ETIME;
  if (r < 0) return errno;
  int err = 0;
  socklen_t len = sizeof err;
  getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
  return err;
}

uint16_t local_port(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0)
    throw std::runtime_error("getsockname: " + errno_str(errno));
  if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  return ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
}

std::string local_ip(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0)
    throw std::runtime_error("getsockname: " + errno_str(errno));
  char buf[INET6_ADDRSTRLEN] = "";
  if (ss.ss_family == AF_INET)
    inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&ss)->sin_addr, buf, sizeof buf);
  else
    inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(&ss)->sin6_addr, buf, sizeof buf);
  return buf;
}

bool wait_readable(int fd, ms timeout) {
  // A signal must not pass for a timeout: retry with the time that is left.
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<ms>(deadline - Clock::now());
    pollfd p{fd, POLLIN, 0};
    const int n = poll(&p, 1, static_cast<int>(std::max<int64_t>(left.count(), 0)));
    if (n > 0) return true;
    if (n == 0 || errno != EINTR || left.count() <= 0) return false;
  }
}

Fd accept_for(int listen_fd, ms timeout) {
  if (!wait_readable(listen_fd, timeout)) return Fd();
  int fd = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
  if (fd < 0) throw std::runtime_error("accept: " + errno_str(errno));
  return Fd(fd);
}

long drain_until_eof(int fd, ms timeout) {
  auto deadline = Clock::now() + timeout;
  long total = 0;
  for (;;) {
    auto left = std::chrono::duration_cast<ms>(deadline - Clock::now());
    if (left.count() <= 0 || !wait_readable(fd, left)) return -1;
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return total;
    total += n;
  }
}

void send_all(int fd, const std::string& data) {
  std::size_t off = 0;
  while (off < data.size()) {
    ssize_t n = send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw std::runtime_error("send: " + errno_str(errno));
    off += static_cast<std::size_t>(n);
  }
}

std::vector<int> tcp_states_of_local_port(int af, uint16_t port) {
  std::vector<int> states;
  auto text = read_file(af == AF_INET6 ? "/proc/thread-self/net/tcp6" : "/proc/thread-self/net/tcp");
  if (!text) return states;
  for (const auto& line : split_lines(*text)) {
    // "  sl  local_address rem_address   st ...": local "HEXADDR:HEXPORT", st hex
    std::istringstream in(line);
    std::string sl, local, remote, st;
    if (!(in >> sl >> local >> remote >> st) || sl == "sl") continue;
    auto colon = local.rfind(':');
    if (colon == std::string::npos) continue;
    if (std::stoul(local.substr(colon + 1), nullptr, 16) == port) states.push_back(std::stoi(st, nullptr, 16));
  }
  return states;
}

}  // namespace itest
