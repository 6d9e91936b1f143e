// The doctor's text report.
#include <doctest/doctest.h>

#include <string>

#include "doctor/render_text.hpp"
#include "doctor/rules.hpp"
#include "doctor_fixtures.hpp"

using namespace connscope;
using namespace connscope::test;

TEST_CASE("format_doctor_text renders every finding") {
  HostFacts f = busy_report_facts();
  auto fs = evaluate_host(f);
  const std::string text = format_doctor_text(f, fs);
  for (const char* title :
       {"Ephemeral ports", "TIME_WAIT", "Listen queues", "File descriptors", "Other network namespaces", "Notes"})
    CHECK_MESSAGE(has(text, std::string("\n") + title + "\n"), title);
  CHECK(has(text, "connscope doctor: kernel 6.18.44, netns 4026531840"));
  CHECK(has(text, "[WARNING] net.ipv4.tcp_tw_reuse = 0 (off)") == false);  // critical with the busy destination
  CHECK(has(text, "[CRITICAL] net.ipv4.tcp_tw_reuse = 0 (off)"));
  CHECK(has(text, "[WARNING] 10.0.0.1 -> 10.0.0.5:443 = 17000 of 28232 ports (60 %)"));
  CHECK(has(text, "    fix: sysctl -w net.ipv4.tcp_tw_reuse=1"));
  CHECK(has(text, "  - 3 of 90 processes"));
  for (const Finding& x : fs) CHECK_MESSAGE(has(text, x.subject + " = " + x.value), x.id);
}
