// `connscope run --json PATH`: one compact JSON object per closed interval
// (docs/run-json.md), one line each, written with write(2) so every line is
// on its way when write() returns. A file is opened for appending (a restart
// continues the file; `seq` starts again at 1); "-" is stdout.
#pragma once

#include <string>

#include "aggregate/snapshot.hpp"

namespace connscope {

class JsonLinesWriter {
 public:
  // Throws std::runtime_error("cannot open JSON lines output PATH: <strerror>").
  explicit JsonLinesWriter(const std::string& path);
  ~JsonLinesWriter();
  JsonLinesWriter(const JsonLinesWriter&) = delete;
  JsonLinesWriter& operator=(const JsonLinesWriter&) = delete;

  // Throws std::runtime_error("cannot write JSON lines to PATH: <strerror>")
  // on a failed write (disk full, reader gone: EPIPE, with SIGPIPE kept away
  // from the process).
  void write(const Snapshot& s);
  // The same for an already rendered line (no trailing newline).
  void write_line(const std::string& line);

  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int fd_ = -1;
  bool owned_ = false;
};

}  // namespace connscope
