// evaluate_host() as a whole: this host's defaults.
#include <doctest/doctest.h>

#include "doctor/rules.hpp"
#include "doctor_fixtures.hpp"

using namespace connscope;
using namespace connscope::test;

TEST_CASE("evaluate_host on this host's default settings: nothing alarming, tw_reuse=2 explained") {
  HostFacts f = host_facts();
  auto fs = evaluate_host(f);
  check_well_formed(fs);
  for (const Finding& x : fs)
    CHECK_MESSAGE((x.severity == FindingLevel::ok || x.severity == FindingLevel::info),
                  x.id << " " << level_name(x.severity));

  const Finding* range = find(fs, "ports.range");
  REQUIRE(range != nullptr);
  CHECK(range->severity == FindingLevel::ok);
  CHECK(range->value == "32768-60999 (28232 usable ports)");
  CHECK(has(range->meaning, "EADDRNOTAVAIL"));
  CHECK(has(range->meaning, "28232/60 s = 470/s"));
  CHECK(find(fs, "ports.reserved") == nullptr);

  const Finding* reuse = find(fs, "ports.tw_reuse");
  REQUIRE(reuse != nullptr);
  CHECK(reuse->severity == FindingLevel::info);
  CHECK(reuse->value == "2 (loopback only)");
  CHECK(has(reuse->meaning, "loopback"));
  CHECK(has(reuse->meaning, "28232/60 s = 470/s"));
  CHECK(has(reuse->meaning, "28232/1 s = 28232/s"));
  CHECK(has(reuse->fix, "sysctl -w net.ipv4.tcp_tw_reuse=1"));
  CHECK(has(reuse->fix, "/etc/sysctl.d/"));

  const Finding* fin = find(fs, "timewait.fin_timeout");
  REQUIRE(fin != nullptr);
  CHECK(has(fin->meaning, "does NOT shorten TIME_WAIT"));
  CHECK(find(fs, "timewait.buckets")->severity == FindingLevel::ok);
  CHECK(find(fs, "timewait.destinations")->value == "none");
  CHECK(find(fs, "listen.somaxconn")->severity == FindingLevel::ok);
  CHECK(find(fs, "listen.syncookies")->severity == FindingLevel::ok);
  CHECK(find(fs, "fd.file_max")->severity == FindingLevel::ok);
  CHECK(find(fs, "ports.timestamps")->severity == FindingLevel::ok);
}

TEST_CASE("count_at_or_above counts findings at the level and worse (doctor --fail-on)") {
  std::vector<Finding> fs;
  for (FindingLevel l :
       {FindingLevel::ok, FindingLevel::info, FindingLevel::warning, FindingLevel::critical, FindingLevel::warning})
    add_finding(&fs, "x", l, "s", "v", "m", "");
  CHECK(count_at_or_above(fs, FindingLevel::critical) == 1);
  CHECK(count_at_or_above(fs, FindingLevel::warning) == 3);
  CHECK(count_at_or_above({}, FindingLevel::warning) == 0);
}
