// Unit tests: Prometheus text, against the golden file and docs/metrics.md.
#include <doctest/doctest.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include "export/prometheus_text.hpp"
#include "snapshot_fixture.hpp"

using namespace connscope;
using namespace connscope::test;

namespace {

const BuildInfo kBuild{"0.3.0", "6.1.0-27-amd64"};

struct Sample {
  std::string name;
  std::vector<std::pair<std::string, std::string>> labels;  // unescaped, in order
  std::string value;
  std::string label(const std::string& key) const {
    for (const auto& [k, v] : labels)
      if (k == key) return v;
    return "\x01missing";
  }
  // The labels except `le`, as one string: identifies a histogram series.
  std::string series_key() const {
    std::string out;
    for (const auto& [k, v] : labels)
      if (k != "le") out += k + "=" + v + ",";
    return out;
  }
};

struct Exposition {
  std::vector<std::string> families;         // in TYPE order
  std::map<std::string, std::string> types;  // family -> type
  std::map<std::string, int> help_count, type_count;
  std::vector<Sample> samples;
  std::vector<std::string> errors;  // structural problems found while parsing
};

std::string family_of(const std::string& name, const std::map<std::string, std::string>& types) {
  for (const char* suffix : {"_bucket", "_sum", "_count"}) {
    const std::string s = suffix;
    if (name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0) {
      const std::string base = name.substr(0, name.size() - s.size());
      auto it = types.find(base);
      if (it != types.end() && it->second == "histogram") return base;
    }
  }
  return name;
}

Exposition parse(const std::string& text) {
  Exposition e;
  std::istringstream in(text);
  std::string line;
  std::string current;
  std::set<std::string> closed;
  while (std::getline(in, line)) {
    if (line.rfind("# HELP ", 0) == 0) {
      const std::string name = line.substr(7, line.find(' ', 7) - 7);
      ++e.help_count[name];
      continue;
    }
    if (line.rfind("# TYPE ", 0) == 0) {
      std::istringstream words(line.substr(7));
      std::string name;
      std::string type;
      words >> name >> type;
      ++e.type_count[name];
      if (!current.empty()) closed.insert(current);
      if (closed.count(name) != 0) e.errors.push_back("family " + name + " interleaved");
      current = name;
      e.families.push_back(name);
      e.types[name] = type;
      continue;
    }
    if (line.empty() || line[0] == '#') {
      e.errors.push_back("unexpected line: " + line);
      continue;
    }
    Sample s;
    size_t i = 0;
    while (i < line.size() && line[i] != '{' && line[i] != ' ') ++i;
    s.name = line.substr(0, i);
    if (i < line.size() && line[i] == '{') {
      ++i;
      while (i < line.size() && line[i] != '}') {
        const size_t eq = line.find('=', i);
        const std::string key = line.substr(i, eq - i);
        i = eq + 2;  // skip ="
        std::string value;
        while (i < line.size() && line[i] != '"') {
          if (line[i] == '\\' && i + 1 < line.size()) {
            ++i;
            value += line[i] == 'n' ? '\n' : line[i];
          } else {
            value += line[i];
          }
          ++i;
        }
        ++i;  // closing quote
        if (i < line.size() && line[i] == ',') ++i;
        s.labels.emplace_back(key, value);
      }
      ++i;  // }
    }
    s.value = line.substr(i + 1);
    if (family_of(s.name, e.types) != current) e.errors.push_back("sample outside its family: " + line);
    e.samples.push_back(std::move(s));
  }
  return e;
}

struct DocMetric {
  std::string name;
  std::string type;
};

std::vector<DocMetric> doc_metrics() {
  std::ifstream in(repo_path("docs/metrics.md"));
  REQUIRE_MESSAGE(in.good(), "cannot read docs/metrics.md");
  std::vector<DocMetric> out;
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("| `connscope_", 0) != 0) continue;
    const size_t end = line.find('`', 3);
    DocMetric m;
    m.name = line.substr(3, end - 3);
    const size_t col = line.find('|', end) + 1;
    std::istringstream type(line.substr(col));
    type >> m.type;
    out.push_back(m);
  }
  return out;
}

// The `le` strings the doc lists for the latency histograms.
std::vector<std::string> doc_latency_les() {
  std::ifstream in(repo_path("docs/metrics.md"));
  std::ostringstream text;
  text << in.rdbuf();
  const std::string doc = text.str();
  const size_t start = doc.find("`1e-06");
  REQUIRE(start != std::string::npos);
  const size_t end = doc.find('`', start + 1);
  std::istringstream words(doc.substr(start + 1, end - start - 1));
  std::vector<std::string> out;
  for (std::string w; words >> w;) out.push_back(w);
  return out;
}

// `promtool check metrics` output and exit status ("" and 0 when clean).
std::pair<std::string, int> promtool(const std::string& text) {
  char path[] = "/tmp/connscope-promtool-XXXXXX";
  const int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  REQUIRE(write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()));
  close(fd);
  const std::string cmd = std::string("promtool check metrics < ") + path + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  std::string out;
  char buf[4096];
  size_t n = 0;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  const int status = pclose(p);
  unlink(path);
  return {out, WIFEXITED(status) ? WEXITSTATUS(status) : -1};
}

void check_promtool_clean(const std::string& text) {
  const bool found = std::system("command -v promtool >/dev/null 2>&1") == 0;
  REQUIRE_MESSAGE(found, "promtool not found (Debian package prometheus; make deps)");
  const auto [out, status] = promtool(text);
  CHECK_MESSAGE(status == 0, "promtool exit status " << status << ":\n" << out);
  CHECK_MESSAGE(out.empty(), "promtool reports:\n" << out);
}

void check_structure(const Exposition& e) {
  for (const auto& err : e.errors) FAIL_CHECK(err);
  for (const auto& f : e.families) {
    CHECK_MESSAGE(e.help_count.at(f) == 1, f << " HELP count");
    CHECK_MESSAGE(e.type_count.at(f) == 1, f << " TYPE count");
    const bool total_suffix = f.size() > 6 && f.compare(f.size() - 6, 6, "_total") == 0;
    if (e.types.at(f) == "counter") CHECK_MESSAGE(total_suffix, f << " lacks _total");
  }
  for (const auto& s : e.samples) {
    CHECK_MESSAGE(s.value.find("NaN") == std::string::npos, s.name);
    CHECK_MESSAGE(s.value.find("Inf") == std::string::npos, s.name);
  }
}

// Every histogram series: cumulative buckets non-decreasing, ending in
// le="+Inf" equal to _count. Returns the number of series checked.
int check_histograms(const Exposition& e) {
  struct Series {
    std::vector<std::pair<std::string, double>> buckets;
    std::optional<double> count, sum;
  };
  std::map<std::string, Series> series;
  for (const auto& s : e.samples) {
    const std::string family = family_of(s.name, e.types);
    if (e.types.at(family) != "histogram") continue;
    Series& h = series[family + "{" + s.series_key() + "}"];
    const double v = std::stod(s.value);
    if (s.name == family + "_bucket")
      h.buckets.emplace_back(s.label("le"), v);
    else if (s.name == family + "_count")
      h.count = v;
    else if (s.name == family + "_sum")
      h.sum = v;
  }
  for (const auto& [key, h] : series) {
    REQUIRE_MESSAGE(!h.buckets.empty(), key);
    CHECK_MESSAGE(h.buckets.back().first == "+Inf", key);
    REQUIRE_MESSAGE(h.count.has_value(), key << " has no _count");
    CHECK_MESSAGE(h.sum.has_value(), key << " has no _sum");
    CHECK_MESSAGE(h.buckets.back().second == *h.count, key << ": +Inf != _count");
    for (size_t i = 1; i < h.buckets.size(); ++i) {
      CHECK_MESSAGE(h.buckets[i].second >= h.buckets[i - 1].second, key << " decreases at le=" << h.buckets[i].first);
      if (h.buckets[i].first != "+Inf")
        CHECK_MESSAGE(std::stod(h.buckets[i].first) > std::stod(h.buckets[i - 1].first), key);
    }
  }
  return static_cast<int>(series.size());
}

}  // namespace

TEST_CASE("Prometheus text matches the golden file") {
  const std::string text = render_prometheus(make_fixture_snapshot(), kBuild);
  const std::string diff = compare_golden("metrics.prom", text);
  CHECK_MESSAGE(diff.empty(), diff);
}

TEST_CASE("promtool check metrics accepts the fixture, an empty snapshot and the pre-interval text") {
  check_promtool_clean(render_prometheus(make_fixture_snapshot(), kBuild));
  check_promtool_clean(render_prometheus(Snapshot{}, kBuild));
  check_promtool_clean(render_prometheus_info(kBuild, make_fixture_snapshot().health.strategies));
}

TEST_CASE("Prometheus text structure: HELP/TYPE once, no interleaving, counters _total, histograms consistent") {
  const Exposition e = parse(render_prometheus(make_fixture_snapshot(), kBuild));
  check_structure(e);
  // 3 histograms x 3 destination rows + the accept-queue fill histogram.
  CHECK(check_histograms(e) == 10);
}

TEST_CASE("every metric in docs/metrics.md is rendered with its documented type, and nothing else") {
  const auto doc = doc_metrics();
  REQUIRE(doc.size() >= 30);  // the parser found the tables
  const Exposition full = parse(render_prometheus(make_fixture_snapshot(), kBuild));
  const Exposition empty = parse(render_prometheus(Snapshot{}, kBuild));
  std::set<std::string> documented;
  for (const auto& m : doc) {
    documented.insert(m.name);
    REQUIRE_MESSAGE(full.types.count(m.name) == 1, m.name << " documented but not rendered");
    CHECK_MESSAGE(full.types.at(m.name) == m.type, m.name);
    if (m.name != "connscope_port_exhaustion_seconds")
      CHECK_MESSAGE(empty.types.count(m.name) == 1, m.name << " missing from an empty snapshot");
  }
  for (const auto& f : full.families) CHECK_MESSAGE(documented.count(f) == 1, f << " rendered but not documented");
  CHECK(empty.types.count("connscope_port_exhaustion_seconds") == 0);
}

TEST_CASE("histogram le strings are the documented ones") {
  const Exposition e = parse(render_prometheus(make_fixture_snapshot(), kBuild));
  std::vector<std::string> latency;
  std::vector<std::string> fill;
  for (const auto& s : e.samples) {
    if (s.name == "connscope_handshake_duration_seconds_bucket" && s.label("dst") == "10.0.0.2:443")
      latency.push_back(s.label("le"));
    if (s.name == "connscope_accept_queue_fill_ratio_bucket") fill.push_back(s.label("le"));
  }
  CHECK(latency == doc_latency_les());
  CHECK(fill == std::vector<std::string>{"0.1", "0.2", "0.3", "0.4", "0.5", "0.6", "0.7", "0.8", "0.9", "1", "+Inf"});
}

TEST_CASE("Prometheus samples: labels, other rows, zero-initialized fixed sets, _sum in seconds") {
  const Snapshot snap = make_fixture_snapshot();
  const Exposition e = parse(render_prometheus(snap, kBuild));
  auto find = [&](const std::string& name, std::vector<std::pair<std::string, std::string>> labels) {
    for (const auto& s : e.samples)
      if (s.name == name && s.labels == labels) return s.value;
    return std::string("<absent>");
  };
  const std::string host = std::to_string(kHostNetns);
  const std::string app = std::to_string(kAppNetns);
  CHECK(find("connscope_build_info", {{"version", "0.3.0"}, {"kernel", "6.1.0-27-amd64"}}) == "1");
  CHECK(find("connscope_strategy_info", {{"family", "state"}, {"strategy", "tp_btf"}}) == "1");
  CHECK(find("connscope_last_interval_timestamp_seconds", {}) == "1732222222.5");
  CHECK(find("connscope_events_lost_total", {{"type", "state"}}) == "7");
  CHECK(find("connscope_events_lost_total", {{"type", "connect"}}) == "0");
  CHECK(find("connscope_reconcile_corrections_total", {{"state", "open"}}) == "0");
  CHECK(find("connscope_alerts_fired_total", {{"rule", "events_lost"}}) == "0");
  CHECK(find("connscope_alerts_fired_total", {{"rule", "listen_overflow"}}) == "3");
  CHECK(find("connscope_alert_active", {{"rule", "ephemeral_ports_critical"},
                                        {"severity", "critical"},
                                        {"target", "10.0.0.2:443"},
                                        {"netns", host}}) == "1");
  CHECK(find("connscope_alert_active",
             {{"rule", "listen_overflow"}, {"severity", "warning"}, {"target", "0.0.0.0:8080"}, {"netns", host}}) ==
        "<absent>");  // resolved
  CHECK(find("connscope_connect_errors_total",
             {{"netns", host}, {"src", "10.0.0.1"}, {"dst", "10.0.0.2:443"}, {"errno", "EADDRNOTAVAIL"}}) == "361");
  CHECK(find("connscope_ports_in_use",
             {{"netns", app}, {"src", "fd00::1"}, {"dst", "[fd00::2]:8443"}, {"state", "time_wait"}}) == "1190");
  CHECK(find("connscope_connect_attempts_total", {{"netns", "0"}, {"src", ""}, {"dst", "other"}}) == "77");
  // No sysctls for the other row: no model gauges, but ports and rates.
  CHECK(find("connscope_ports_usable", {{"netns", "0"}, {"src", ""}, {"dst", "other"}}) == "<absent>");
  CHECK(find("connscope_sustainable_connect_rate", {{"netns", "0"}, {"src", ""}, {"dst", "other"}}) == "<absent>");
  CHECK(find("connscope_connect_rate", {{"netns", "0"}, {"src", ""}, {"dst", "other"}}) == "3");
  CHECK(find("connscope_port_exhaustion_seconds", {{"netns", host}, {"src", "10.0.0.1"}, {"dst", "10.0.0.2:443"}}) !=
        "<absent>");
  CHECK(find("connscope_port_exhaustion_seconds", {{"netns", app}, {"src", "fd00::1"}, {"dst", "[fd00::2]:8443"}}) ==
        "<absent>");
  CHECK(find("connscope_listen_overflows_total", {{"netns", app}, {"listen", "unattributed"}}) == "5");
  CHECK(find("connscope_listen_queue_max", {{"netns", host}, {"listen", "0.0.0.0:8080"}}) == "128");

  const auto& hs = snap.destinations[0].handshake.total;
  const double sum = std::stod(find("connscope_handshake_duration_seconds_sum",
                                    {{"netns", host}, {"src", "10.0.0.1"}, {"dst", "10.0.0.2:443"}}));
  CHECK(sum == doctest::Approx(static_cast<double>(hs.sum()) / 1e9).epsilon(1e-12));
  const double fill_sum = std::stod(find("connscope_accept_queue_fill_ratio_sum", {}));
  CHECK(fill_sum == doctest::Approx(static_cast<double>(snap.accept_queue_fill.total.sum()) / 1000));
}

TEST_CASE("label values are escaped and non-finite gauges are left out") {
  Snapshot s = make_fixture_snapshot();
  s.destinations[0].src = "we\"ird\\src\nline";
  s.listeners[0].listen = "a\\b";
  const double nan = std::numeric_limits<double>::quiet_NaN();
  s.destinations[1].model.utilization = nan;
  s.destinations[1].model.connect_rate = std::numeric_limits<double>::infinity();
  s.destinations[0].model.time_to_exhaustion_s = nan;
  s.interval_s = nan;
  const std::string text = render_prometheus(s, {"1.0 \"beta\"", "6.1\\x"});
  CHECK(text.find(R"(src="we\"ird\\src\nline")") != std::string::npos);
  CHECK(text.find(R"(listen="a\\b")") != std::string::npos);
  CHECK(text.find(R"(version="1.0 \"beta\"",kernel="6.1\\x")") != std::string::npos);
  CHECK(text.find("NaN") == std::string::npos);
  CHECK(text.find("Inf ") == std::string::npos);  // only le="+Inf" labels
  CHECK(text.find("\nconnscope_interval_seconds ") == std::string::npos);
  // The only exhaustion value was NaN: the family is gone altogether.
  CHECK(text.find("connscope_port_exhaustion_seconds") == std::string::npos);
  const Exposition e = parse(text);
  check_structure(e);
  bool found = false;
  for (const auto& smp : e.samples) found = found || smp.label("src") == "we\"ird\\src\nline";
  CHECK(found);
  check_promtool_clean(text);
}

// Its cost is measured in make bench (BM_RenderPrometheus256), not asserted here.
TEST_CASE("rendering 257 destinations is promtool-clean") {
  Snapshot s = make_fixture_snapshot();
  const DestinationStats web = s.destinations[0];
  const DestinationStats other = s.destinations[2];
  s.destinations.clear();
  for (int i = 0; i < 256; ++i) {
    DestinationStats d = web;
    d.key.daddr[3] = static_cast<uint8_t>(i);
    d.dst = "10.0.1." + std::to_string(i) + ":443";
    s.destinations.push_back(std::move(d));
  }
  s.destinations.push_back(other);
  const std::string text = render_prometheus(s, kBuild);
  const Exposition e = parse(text);
  check_structure(e);
  CHECK(check_histograms(e) == 257 * 3 + 1);
  check_promtool_clean(text);
}
