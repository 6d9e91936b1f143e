// The JSON-lines writer of run --json-out.
#include "export/json_lines.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <iostream>
#include <stdexcept>

#include "export/snapshot_json.hpp"

namespace connscope {

namespace {

// Writes everything or returns the errno of the failure. SIGPIPE is blocked
// in this thread for the duration and a SIGPIPE raised by this write is
// consumed, so a closed pipe is an EPIPE error instead of a dead process.
int write_all(int fd, const char* data, size_t size) {
  sigset_t pipe_set;
  sigset_t old_set;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  sigset_t pending;
  sigemptyset(&pending);
  sigpending(&pending);
  const bool was_pending = sigismember(&pending, SIGPIPE) == 1;
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old_set);

  int err = 0;
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      err = errno;
      break;
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
  if (err == EPIPE && !was_pending) {
    const timespec zero{};
    while (sigtimedwait(&pipe_set, nullptr, &zero) < 0 && errno == EINTR) {
    }
  }
  pthread_sigmask(SIG_SETMASK, &old_set, nullptr);
  return err;
}

}  // namespace

JsonLinesWriter::JsonLinesWriter(const std::string& path) : path_(path) {
  if (path == "-") {
    fd_ = STDOUT_FILENO;
    return;
  }
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd_ < 0) throw std::runtime_error("cannot open JSON lines output " + path + ": " + std::strerror(errno));
  owned_ = true;
}

JsonLinesWriter::~JsonLinesWriter() {
  if (owned_) ::close(fd_);
}

void JsonLinesWriter::write(const Snapshot& s) { write_line(dump_json(snapshot_to_json(s))); }

void JsonLinesWriter::write_line(const std::string& line) {
  std::string buf;
  buf.reserve(line.size() + 1);
  buf += line;
  buf += '\n';
  if (!owned_) {
    // Keep whatever else went to stdout in order with the lines.
    std::cout.flush();
    std::fflush(stdout);
  }
  const int err = write_all(fd_, buf.data(), buf.size());
  if (err != 0) {
    const std::string where = path_ == "-" ? std::string("stdout") : path_;
    throw std::runtime_error("cannot write JSON lines to " + where + ": " + std::strerror(err));
  }
}

}  // namespace connscope
