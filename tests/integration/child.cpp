// Forked helper processes in a namespace with a JSON-lines channel to the test.
#include "child.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <stdexcept>

#include "netns.hpp"

namespace itest {

void Channel::send(const json& msg) {
  std::string line = msg.dump() + "\n";
  std::size_t off = 0;
  while (off < line.size()) {
    ssize_t n = write(wfd_, line.data() + off, line.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw std::runtime_error("channel write: " + errno_str(errno));
    off += static_cast<std::size_t>(n);
  }
}

std::optional<json> Channel::recv(ms timeout) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    auto nl = buf_.find('\n');
    if (nl != std::string::npos) {
      std::string line = buf_.substr(0, nl);
      buf_.erase(0, nl + 1);
      return json::parse(line);
    }
    if (eof_) return std::nullopt;
    auto left = std::chrono::duration_cast<ms>(deadline - Clock::now()).count();
    if (left <= 0) return std::nullopt;
    pollfd p{rfd_, POLLIN, 0};
    int r = poll(&p, 1, static_cast<int>(left));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;
    char tmp[4096];
    ssize_t n = read(rfd_, tmp, sizeof tmp);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      eof_ = true;
      continue;
    }
    buf_.append(tmp, static_cast<std::size_t>(n));
  }
}

Child::Child(const std::string& comm, int netns_fd, Body body) {
  int down[2], up[2];
  if (pipe2(down, O_CLOEXEC) || pipe2(up, O_CLOEXEC)) throw std::runtime_error("pipe: " + errno_str(errno));
  std::fflush(nullptr);
  pid_ = fork();
  if (pid_ < 0) throw std::runtime_error("fork: " + errno_str(errno));
  if (pid_ == 0) {
    child_reset_signals();
    close(down[1]);
    close(up[0]);
    int rc = 1;
    Channel ch(down[0], up[1]);
    try {
      if (netns_fd >= 0 && setns(netns_fd, CLONE_NEWNET) != 0)
        throw std::runtime_error("setns(CLONE_NEWNET): " + errno_str(errno));
      // Close everything else we inherited (other children's pipes, the
      // namespace fds) so that no process holds another's pipe ends.
      for (int fd = 3; fd < 1024; fd++)
        if (fd != down[0] && fd != up[1]) close(fd);
      if (prctl(PR_SET_NAME, comm.c_str()) != 0) throw std::runtime_error("prctl(PR_SET_NAME): " + errno_str(errno));
      auto c = read_file("/proc/thread-self/comm");
      ch.send({{"hello", true},
               {"pid", getpid()},
               {"tid", static_cast<pid_t>(syscall(SYS_gettid))},
               {"comm", c ? trim(*c) : ""},
               {"netns", current_netns_inode()}});
      body(ch);
      rc = 0;
    } catch (const std::exception& e) {
      try {
        ch.send({{"error", e.what()}});
      } catch (...) {
      }
    } catch (...) {
      try {
        ch.send({{"error", "unknown exception"}});
      } catch (...) {
      }
    }
    _exit(rc);
  }
  register_child_pid(pid_);
  close(down[0]);
  close(up[1]);
  to_child_ = down[1];
  from_child_ = up[0];
  ch_.emplace(from_child_, to_child_);
  try {
    json hello = recv(ms(10000), "hello from child '" + comm + "'");
    comm_ = hello.value("comm", "");
    netns_ = hello.value("netns", uint64_t{0});
  } catch (...) {
    // The destructor does not run for a constructor that throws.
    if (!reaped_) {
      kill(pid_, SIGKILL);
      wait_pid_for(pid_, ms(5000));
    }
    unregister_child_pid(pid_);
    close(to_child_);
    close(from_child_);
    throw;
  }
}

Child::~Child() {
  if (pid_ > 0 && !reaped_) {
    kill(pid_, SIGKILL);
    wait_pid_for(pid_, ms(5000));
  }
  if (pid_ > 0) unregister_child_pid(pid_);
  if (to_child_ >= 0) close(to_child_);
  if (from_child_ >= 0) close(from_child_);
}

void Child::send(const json& msg) { ch_->send(msg); }

json Child::recv(ms timeout, const std::string& what) {
  auto m = ch_->recv(scaled(timeout));
  if (!m) {
    std::string why = ch_->eof() ? "the child exited" : "timed out";
    if (ch_->eof() && !reaped_) {
      if (auto st = wait_pid_for(pid_, ms(1000))) {
        reaped_ = true;
        why += " (" + describe_status(*st) + ")";
      }
    }
    throw std::runtime_error("child pid " + std::to_string(pid_) + ": waiting for " + what + ": " + why);
  }
  if (m->contains("error"))
    throw std::runtime_error("child pid " + std::to_string(pid_) + " failed while the test waited for " + what + ": " +
                             (*m)["error"].get<std::string>());
  return *m;
}

void Child::wait_exit(ms timeout) {
  if (reaped_) return;
  auto st = wait_pid_for(pid_, scaled(timeout));
  if (!st) throw std::runtime_error("child pid " + std::to_string(pid_) + " did not exit within the bound");
  reaped_ = true;
  if (!WIFEXITED(*st) || WEXITSTATUS(*st) != 0) {
    std::string err;
    while (auto m = ch_->recv(ms(0)))
      if (m->contains("error")) err = (*m)["error"].get<std::string>();
    throw std::runtime_error("child pid " + std::to_string(pid_) + " " + describe_status(*st) +
                             (err.empty() ? "" : ": " + err));
  }
}

}  // namespace itest
