// Unit tests: the JSON-lines writer.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>

#include "export/json_lines.hpp"
#include "export/snapshot_json.hpp"
#include "snapshot_fixture.hpp"

using namespace connscope;
using namespace connscope::test;

namespace {

std::string temp_path() {
  char path[] = "/tmp/connscope-jsonl-XXXXXX";
  const int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  close(fd);
  return path;
}

std::vector<std::string> lines_of(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("JSON lines: one parseable line per snapshot, flushed at once, appended") {
  const std::string path = temp_path();
  {
    JsonLinesWriter w(path);
    for (int i = 1; i <= 3; ++i) {
      w.write(make_fixture_snapshot(i, kFixtureTimestamp + i));
      const auto lines = lines_of(path);  // visible before the writer closes
      REQUIRE(lines.size() == static_cast<size_t>(i));
    }
  }
  {
    JsonLinesWriter w(path);  // a restart continues the file
    w.write(make_fixture_snapshot(1, kFixtureTimestamp + 10));
  }
  const auto lines = lines_of(path);
  REQUIRE(lines.size() == 4);
  const std::vector<uint64_t> seqs = {1, 2, 3, 1};
  for (size_t i = 0; i < lines.size(); ++i) {
    const auto j = nlohmann::json::parse(lines[i]);
    CHECK(j["seq"] == seqs[i]);
    CHECK(j["destinations"].size() == 3);
  }
  CHECK(lines[0] == dump_json(snapshot_to_json(make_fixture_snapshot(1, kFixtureTimestamp + 1))));
  std::filesystem::remove(path);
}

TEST_CASE("JSON lines: open and write failures are one-line errors naming the path") {
  CHECK(error_of([] { JsonLinesWriter w("/nonexistent-dir/x.jsonl"); }) ==
        "cannot open JSON lines output /nonexistent-dir/x.jsonl: No such file or directory");

  // Disk full.
  JsonLinesWriter full("/dev/full");
  CHECK(error_of([&] { full.write(make_fixture_snapshot()); }) ==
        "cannot write JSON lines to /dev/full: No space left on device");

  // Reader gone: EPIPE, not a SIGPIPE death.
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  const std::string path = "/proc/self/fd/" + std::to_string(fds[1]);
  JsonLinesWriter piped(path);
  close(fds[0]);
  CHECK(error_of([&] { piped.write(make_fixture_snapshot()); }) ==
        "cannot write JSON lines to " + path + ": Broken pipe");
  close(fds[1]);
}

TEST_CASE("JSON lines to stdout (\"-\")") {
  const std::string path = temp_path();
  std::fflush(stdout);
  const int saved = dup(STDOUT_FILENO);
  const int fd = open(path.c_str(), O_WRONLY | O_TRUNC);
  REQUIRE(fd >= 0);
  dup2(fd, STDOUT_FILENO);
  close(fd);
  {
    JsonLinesWriter w("-");
    std::printf("not json\n");  // buffered stdout text stays ahead of the line
    w.write(make_fixture_snapshot(7, kFixtureTimestamp));
  }
  std::fflush(stdout);
  dup2(saved, STDOUT_FILENO);
  close(saved);
  const auto lines = lines_of(path);
  REQUIRE(lines.size() == 2);
  CHECK(lines[0] == "not json");
  CHECK(nlohmann::json::parse(lines[1])["seq"] == 7);
  std::filesystem::remove(path);
}
