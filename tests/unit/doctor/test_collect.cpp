// collect_host_facts() on this machine.
#include <doctest/doctest.h>

#include <algorithm>

#include "doctor/collect.hpp"
#include "doctor/render_text.hpp"
#include "doctor/rules.hpp"
#include "doctor_fixtures.hpp"
#include "host/netns.hpp"

using namespace connscope;
using namespace connscope::test;

TEST_CASE("collect_host_facts reads this machine (root or not)") {
  std::string warnings;
  HostFacts f = collect_host_facts(&warnings);
  CHECK(f.settings_read);
  CHECK(f.counters_read);
  CHECK(f.settings.netns == current_netns_inode());
  CHECK(f.settings.usable_ports > 0);
  CHECK(f.sockets_read);
  CHECK(f.file_max > 0);
  CHECK(f.processes_scanned > 0);
  CHECK_FALSE(f.processes.empty());  // at least this test process has open files
  for (size_t i = 1; i < std::min<size_t>(f.processes.size(), 5); ++i)
    CHECK(f.processes[i - 1].fds >= f.processes[i].fds);  // busiest first (near-limit extras may follow)
  for (const std::string& w : f.warnings) {
    CHECK(w.find('\n') == std::string::npos);
    CHECK(has(warnings, w));
  }
  auto fs = evaluate_host(f);
  check_well_formed(fs);
  CHECK(has(format_doctor_text(f, fs), "Ephemeral ports"));
}
