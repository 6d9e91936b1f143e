// The file-descriptor rules: fs.file-max and processes near RLIMIT_NOFILE.
#include <doctest/doctest.h>

#include "doctor/rules.hpp"
#include "doctor_fixtures.hpp"

using namespace connscope;
using namespace connscope::test;

TEST_CASE("evaluate_host: a busy process near its open-file limit") {
  HostFacts f = host_facts();
  ProcessFds nginx;
  nginx.pid = 4242;
  nginx.comm = "nginx";
  nginx.fds = 850;
  nginx.soft_limit = 1024;
  nginx.hard_limit = 524288;
  ProcessFds calm;
  calm.pid = 1;
  calm.comm = "systemd";
  calm.fds = 120;
  calm.soft_limit = 1024;
  f.processes = {nginx, calm};
  auto fs = evaluate_host(f);
  check_well_formed(fs);
  const Finding* p = find(fs, "fd.process.4242");
  REQUIRE(p != nullptr);
  CHECK(p->severity == FindingLevel::warning);
  CHECK(p->subject == "pid 4242 (nginx)");
  CHECK(p->value == "850 of 1024 fds (83 %; hard limit 524288)");
  CHECK(has(p->meaning, "EMFILE"));
  CHECK(has(p->fix, "prlimit --pid 4242 --nofile=65536:65536"));
  CHECK(has(p->fix, "LimitNOFILE=65536"));
  CHECK(find(fs, "fd.process.1") == nullptr);
  CHECK(find(fs, "fd.processes") == nullptr);

  f.processes[0].fds = 1000;
  CHECK(find(evaluate_host(f), "fd.process.4242")->severity == FindingLevel::critical);
  f.processes[0].fds = 100;
  fs = evaluate_host(f);
  CHECK(find(fs, "fd.process.4242") == nullptr);
  CHECK(find(fs, "fd.processes")->severity == FindingLevel::ok);
  f.processes[0].soft_limit = kUnlimited;  // no limit, no finding
  f.processes[0].fds = 5000000;
  CHECK(find(evaluate_host(f), "fd.process.4242") == nullptr);

  // The host-wide table nearly full.
  f.files_allocated = 2400000;
  fs = evaluate_host(f);
  const Finding* fm = find(fs, "fd.file_max");
  CHECK(fm->severity == FindingLevel::critical);
  CHECK(has(fm->meaning, "ENFILE"));
  CHECK(has(fm->fix, "sysctl -w fs.file-max=4941876"));
}
