// Unit tests: snapshot JSON, against the golden file and docs/run-json.md.
#include <doctest/doctest.h>

#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>

#include "export/snapshot_json.hpp"
#include "snapshot_fixture.hpp"

using namespace connscope;
using namespace connscope::test;

TEST_CASE("snapshot JSON matches the golden file") {
  const Snapshot s = make_fixture_snapshot();
  const std::string text = dump_json(snapshot_to_json(s), 2) + "\n";
  const std::string diff = compare_golden("snapshot.json", text);
  CHECK_MESSAGE(diff.empty(), diff);
}

TEST_CASE("snapshot JSON: one compact line that parses back, top-level keys in documented order") {
  const Snapshot s = make_fixture_snapshot();
  const std::string line = dump_json(snapshot_to_json(s));
  CHECK(line.find('\n') == std::string::npos);
  const auto j = nlohmann::ordered_json::parse(line);
  std::vector<std::string> keys;
  for (const auto& [k, v] : j.items()) keys.push_back(k);
  CHECK(keys == std::vector<std::string>{"timestamp", "interval_s", "seq", "destinations", "listeners", "heatmaps",
                                         "alerts", "alerts_fired_total", "health"});
  CHECK(j["timestamp"].get<double>() == kFixtureTimestamp);
  CHECK(j["seq"] == 42);
  REQUIRE(j["destinations"].size() == 3);
  const auto& web = j["destinations"][0];
  CHECK(web["family"] == "ipv4");
  CHECK(web["daddr"] == "10.0.0.2");
  CHECK(web["dport"] == 443);
  CHECK(web["errors_total"]["EADDRNOTAVAIL"] == 361);
  CHECK(web["ports"]["time_wait"] == 27311);
  CHECK(web["model"]["range"] == nlohmann::ordered_json::array({32768, 60999}));
  CHECK(web["model"]["time_to_exhaustion_s"].is_number());
  CHECK(web["reconcile"]["time_wait"] == -3);
  CHECK(web["processes"][0]["comm"] == "nginx");
  CHECK(web["latency"]["handshake"]["count"] == 598);
  const auto& api = j["destinations"][1];
  CHECK(api["family"] == "ipv6");
  CHECK(api["daddr"] == "fd00::2");
  CHECK(api["model"]["time_to_exhaustion_s"].is_null());
  const auto& other = j["destinations"][2];
  CHECK(other["other"] == true);
  CHECK(other["family"].is_null());
  CHECK(other["daddr"].is_null());
  CHECK(other["src"] == "");
  CHECK(j["listeners"][1]["listen"] == "unattributed");
  CHECK(j["listeners"][1]["port"].is_null());
  CHECK(j["health"]["strategies"]["state"] == "tp_btf");
  CHECK(j["alerts"][0]["resolved_at"].is_null());
  CHECK(j["alerts"][1]["resolved_at"] == kFixtureTimestamp);
}

TEST_CASE("snapshot JSON heatmaps: overall frames always, scoped frames only when non-empty, all buckets in le order") {
  Snapshot s = make_fixture_snapshot();
  s.destinations[1].port_search.interval.clear();  // no port_search frame for the IPv6 destination
  const auto j = snapshot_to_json(s);
  const auto& frames = j["heatmaps"];
  std::vector<std::string> seen;
  for (const auto& f : frames) {
    const std::string metric = f["metric"];
    const std::string scope = f["scope"];
    std::string id = metric + "/" + scope;
    if (scope == "destination") id += "/" + f["dst"].get<std::string>();
    if (scope == "listener") id += "/" + f["listen"].get<std::string>();
    seen.push_back(id);
    const BucketLayout& layout = heatmap_layout(*heatmap_metric_from_name(metric));
    REQUIRE(f["buckets"].size() == layout.size());
    size_t i = 0;
    uint64_t sum = 0;
    for (const auto& [le, n] : f["buckets"].items()) {
      CHECK(le == layout.label(i++));
      sum += n.get<uint64_t>();
    }
    CHECK(sum == f["count"].get<uint64_t>());
    if (scope != "all") CHECK(f["count"].get<uint64_t>() > 0);
  }
  CHECK(seen == std::vector<std::string>{
                    "handshake/all",
                    "port_search/all",
                    "connect_syscall/all",
                    "accept_queue_fill/all",
                    "handshake/destination/10.0.0.2:443",
                    "port_search/destination/10.0.0.2:443",
                    "connect_syscall/destination/10.0.0.2:443",
                    "handshake/destination/[fd00::2]:8443",
                    "connect_syscall/destination/[fd00::2]:8443",
                    "handshake/destination/other",
                    "connect_syscall/destination/other",
                    "accept_queue_fill/listener/0.0.0.0:8080",
                });
  CHECK(frames[0]["buckets"].begin().key() == "1e-06");
  CHECK((--frames[0]["buckets"].end()).key() == "+Inf");
  CHECK(frames[11]["netns"] == kHostNetns);
  // The full-queue sample (129 of 128) lands in +Inf.
  CHECK(frames[11]["buckets"]["+Inf"] == 1);
}

TEST_CASE("snapshot JSON never emits NaN or infinity") {
  Snapshot s = make_fixture_snapshot();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  s.interval_s = nan;
  s.destinations[0].model.utilization = nan;
  s.destinations[0].model.time_to_exhaustion_s = inf;
  s.destinations[0].handshake.summary.p99 = inf;
  s.listeners[0].accept_rate = -inf;
  s.alerts[0].evidence.emplace_back("ratio", nan);
  const std::string line = dump_json(snapshot_to_json(s));
  CHECK(line.find("NaN") == std::string::npos);
  CHECK(line.find("nan") == std::string::npos);
  CHECK(line.find("inf") == std::string::npos);
  const auto j = nlohmann::json::parse(line);
  CHECK(j["interval_s"].is_null());
  CHECK(j["destinations"][0]["ports"]["utilization"].is_null());
  CHECK(j["destinations"][0]["model"]["time_to_exhaustion_s"].is_null());
  CHECK(j["destinations"][0]["latency"]["handshake"]["p99"].is_null());
  CHECK(j["listeners"][0]["accept_rate"].is_null());
  CHECK(j["alerts"][0]["evidence"]["ratio"].is_null());
}

TEST_CASE("snapshot JSON survives invalid UTF-8 in a process name") {
  Snapshot s = make_fixture_snapshot();
  s.destinations[0].processes[0].comm = std::string("bad\xff\xfe", 5);
  std::string line;
  CHECK_NOTHROW(line = dump_json(snapshot_to_json(s)));
  CHECK(nlohmann::json::parse(line)["destinations"][0]["processes"][0]["comm"] == "bad\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST_CASE("alerts JSON: fields, evidence order, process null when absent") {
  const Snapshot s = make_fixture_snapshot();
  const auto a = alerts_to_json(s.alerts);
  REQUIRE(a.is_array());
  REQUIRE(a.size() == 2);
  CHECK(a[0]["rule"] == "ephemeral_ports_critical");
  CHECK(a[0]["process"] == "nginx (pid 812)");
  CHECK(a[1]["process"].is_null());
  std::vector<std::string> evidence;
  for (const auto& [k, v] : a[0]["evidence"].items()) evidence.push_back(k);
  CHECK(evidence == std::vector<std::string>{"utilization", "in_use", "usable", "time_to_exhaustion_s"});
  CHECK(alerts_to_json({}).dump() == "[]");
}

TEST_CASE("empty snapshot JSON still has the overall frames and every top-level key") {
  const Snapshot s;
  const auto j = snapshot_to_json(s);
  CHECK(j["destinations"].empty());
  CHECK(j["heatmaps"].size() == 4);
  CHECK(j["heatmaps"][3]["metric"] == "accept_queue_fill");
  CHECK(j["heatmaps"][3]["buckets"]["+Inf"] == 0);
  CHECK(j["alerts"].is_array());
  CHECK(j["alerts_fired_total"].is_object());
  CHECK(j["health"]["strategies"].is_object());
}

namespace {

// The key structure of a JSON value: objects by key in order, arrays by their
// first element (the doc example abridges arrays and heatmap frames).
void key_paths(const nlohmann::ordered_json& j, const std::string& prefix, std::vector<std::string>& out) {
  if (j.is_object()) {
    for (const auto& [k, v] : j.items()) {
      const std::string path = prefix + "." + k;
      // Bucket keys are checked elsewhere; errno/state/rule maps hold data, not schema.
      const bool data_map = prefix.size() >= 8 && (prefix.compare(prefix.size() - 8, 8, ".buckets") == 0);
      if (data_map) continue;
      out.push_back(path);
      key_paths(v, path, out);
    }
  } else if (j.is_array() && !j.empty() && j.front().is_object()) {
    key_paths(j.front(), prefix + "[]", out);
  }
}

}  // namespace

TEST_CASE("the example in docs/run-json.md has the structure snapshot_to_json produces") {
  std::ifstream in(repo_path("docs/run-json.md"));
  REQUIRE(in.good());
  std::ostringstream text;
  text << in.rdbuf();
  const std::string doc = text.str();
  const size_t start = doc.find("```json\n{");
  REQUIRE(start != std::string::npos);
  const size_t end = doc.find("```", start + 7);
  const auto example = nlohmann::ordered_json::parse(doc.substr(start + 8, end - start - 8));
  std::vector<std::string> documented;
  std::vector<std::string> actual;
  key_paths(example, "", documented);
  key_paths(snapshot_to_json(make_fixture_snapshot()), "", actual);
  CHECK(documented == actual);
}
