// The doctor's JSON report.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "doctor/render_json.hpp"
#include "doctor/rules.hpp"
#include "doctor_fixtures.hpp"

using namespace connscope;
using namespace connscope::test;

TEST_CASE("format_doctor_json renders every finding") {
  HostFacts f = busy_report_facts();
  auto fs = evaluate_host(f);
  const nlohmann::json j = nlohmann::json::parse(format_doctor_json(f, fs));
  REQUIRE(j["findings"].size() == fs.size());
  for (size_t i = 0; i < fs.size(); ++i) {
    CHECK(j["findings"][i]["id"] == fs[i].id);
    CHECK(j["findings"][i]["severity"] == level_name(fs[i].severity));
    CHECK(j["findings"][i]["fix"] == fs[i].fix);
  }
  CHECK(j["settings"]["ip_local_port_range"][0] == 32768);
  CHECK(j["settings"]["usable_ports"] == 28232);
  CHECK(j["sockets"]["destinations"][0]["destination"] == "10.0.0.5:443");
  CHECK(j["sockets"]["destinations"][0]["time_wait"] == 16000);
  CHECK(j["warnings"].size() == 1);
  CHECK(j["counters"]["TcpExtListenOverflows"] == 0);
  CHECK(j["other_netns"].is_null());  // not inspected
}
