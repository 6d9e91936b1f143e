// Unit tests: network namespace resolution.
#include <doctest/doctest.h>
#include <sys/stat.h>

#include <stdexcept>
#include <vector>

#include "host/netns.hpp"

using namespace connscope;

TEST_CASE("current_netns_inode is the inode of /proc/thread-self/ns/net and is enumerated") {
  struct stat st {};
  REQUIRE(::stat("/proc/thread-self/ns/net", &st) == 0);
  const uint32_t self = current_netns_inode();
  CHECK(self == static_cast<uint32_t>(st.st_ino));
  CHECK(self != 0);
  CHECK(ns_inode("/proc/self/ns/net") == self);  // single-threaded test binary
  CHECK(ns_inode("/nonexistent/ns/net") == 0);
  CHECK(enumerate_netns().count(self) == 1);
}

TEST_CASE("for_each_netns with a filter runs fn only in that netns") {
  const uint32_t self = current_netns_inode();
  std::vector<uint32_t> seen;
  std::string error;
  CHECK(for_each_netns(
      self, [&](uint32_t ino) { seen.push_back(ino); }, &error));
  REQUIRE(seen.size() == 1);
  CHECK(seen[0] == self);
  CHECK(error.empty());

  seen.clear();
  CHECK(for_each_netns(
      1, [&](uint32_t ino) { seen.push_back(ino); }, &error));  // no netns has inode 1
  CHECK(seen.empty());
}

TEST_CASE("for_each_netns restores the thread's netns, also when fn throws") {
  const uint32_t self = current_netns_inode();
  std::string error;
  std::vector<uint32_t> inside;
  const bool ok = for_each_netns(
      0, [&](uint32_t ino) { inside.push_back(current_netns_inode() == ino ? ino : 0); }, &error);
  // Unprivileged, other namespaces may refuse setns(); the error then names the capability.
  if (!ok) CHECK(error.find("CAP_SYS_ADMIN") != std::string::npos);
  CHECK(current_netns_inode() == self);
  for (uint32_t ino : inside) CHECK(ino != 0);  // fn ran inside the namespace it was told about

  // Throwing from inside another netns (when there is one we may enter) must still switch back.
  bool thrown = false;
  try {
    for_each_netns(
        0,
        [&](uint32_t ino) {
          if (ino != self) throw std::runtime_error("boom");
        },
        &error);
  } catch (const std::runtime_error&) {
    thrown = true;
  }
  CHECK(thrown == (inside.size() > 1));
  CHECK(current_netns_inode() == self);
}
