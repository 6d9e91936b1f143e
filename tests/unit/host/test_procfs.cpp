// Reading /proc: text splitting, /proc/<pid> files and /proc/<pid>/limits.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cerrno>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "host/procfs.hpp"
#include "snapshot_fixture.hpp"

using namespace connscope;
using namespace connscope::test;

TEST_CASE("parse_max_open_files reads real /proc/<pid>/limits") {
  uint64_t soft = 0, hard = 0;
  CHECK(parse_max_open_files(read_fixture("limits_6.18.txt"), &soft, &hard));
  CHECK(soft == 20000);
  CHECK(hard == 20000);
  CHECK(parse_max_open_files(read_fixture("limits_soft1024_6.18.txt"), &soft, &hard));  // prlimit --nofile=1024:20000
  CHECK(soft == 1024);
  CHECK(hard == 20000);
  CHECK(parse_max_open_files("Max open files            unlimited            unlimited            files\n", &soft,
                             &hard));
  CHECK(soft == kUnlimited);
  CHECK(hard == kUnlimited);

  soft = hard = 7;
  CHECK_FALSE(parse_max_open_files("", &soft, &hard));
  CHECK_FALSE(parse_max_open_files("Max processes 96551 96551 processes\n", &soft, &hard));
  CHECK_FALSE(parse_max_open_files("Max open files            lots                 20000                files\n", &soft,
                                   &hard));
  CHECK_FALSE(parse_max_open_files("Max open files            1024\n", &soft, &hard));
  CHECK_FALSE(parse_max_open_files("Max open files            -1     20000     files\n", &soft, &hard));
  CHECK(soft == 7);
  CHECK(hard == 7);
}

TEST_CASE("split_lines keeps empty lines inside the text, not after its last newline") {
  CHECK(split_lines("").empty());
  CHECK(split_lines("a\n") == std::vector<std::string_view>{"a"});
  CHECK(split_lines("a\n\nb") == std::vector<std::string_view>{"a", "", "b"});
  CHECK(split_lines("\n") == std::vector<std::string_view>{""});
}

TEST_CASE("all_digits names /proc/<pid> directories") {
  CHECK(all_digits("1"));
  CHECK(all_digits("4242"));
  CHECK_FALSE(all_digits(""));
  CHECK_FALSE(all_digits("self"));
  CHECK_FALSE(all_digits("12a"));
  CHECK_FALSE(all_digits("-1"));
}

TEST_CASE("read_u64_file, read_comm and count_fds read this process") {
  CHECK(read_u64_file(fixture_path("procsys/host_6.18/sys/net/core/somaxconn")) == 4096);
  CHECK_FALSE(read_u64_file(fixture_path("procsys/host_6.18/sys/net/ipv4/ip_local_port_range")).has_value());
  CHECK_FALSE(read_u64_file(fixture_path("procsys/no-such-file")).has_value());

  const std::string self = std::to_string(::getpid());
  std::optional<std::string> comm = read_comm("/proc", self);
  REQUIRE(comm.has_value());
  CHECK_FALSE(comm->empty());
  CHECK(comm->find('\n') == std::string::npos);
  CHECK_FALSE(read_comm("/proc", "0").has_value());

  int err = 0;
  std::optional<uint64_t> fds = count_fds(self, &err);
  REQUIRE(fds.has_value());
  CHECK(*fds >= 3);  // stdin, stdout, stderr at least
  CHECK_FALSE(count_fds("0", &err).has_value());
  CHECK(err == ENOENT);
}
