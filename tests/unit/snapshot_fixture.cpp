#include "snapshot_fixture.hpp"

#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <sys/socket.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace connscope::test {

namespace {

// Deterministic pseudo-random numbers (integer-only, same on every platform).
class Lcg {
 public:
  explicit Lcg(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    state_ = state_ * 6364136223846793005ULL + 1442695040888963407ULL;
    return state_ >> 33;
  }
  // Roughly log-uniform in [lo, hi].
  uint64_t log_between(uint64_t lo, uint64_t hi) {
    uint64_t v = lo;
    const uint64_t steps = next() % 64;
    for (uint64_t i = 0; i < steps && v < hi; ++i) v += v / 8 + 1;
    return v > hi ? hi : v;
  }

 private:
  uint64_t state_;
};

std::array<uint8_t, 16> addr(int family, const char* text) {
  std::array<uint8_t, 16> a{};
  inet_pton(family, text, a.data());
  return a;
}

// Records `before` samples into total only (earlier intervals) and `now`
// samples into both. The summary holds this interval's exact nearest-rank
// quantiles (the aggregator estimates them with LogLinearHistogram; exact
// values keep the golden files independent of that estimator).
void fill(Distribution& d, Lcg& rng, uint64_t lo, uint64_t hi, int before, int now, uint64_t slow_tail = 0) {
  std::vector<uint64_t> samples;
  for (int i = 0; i < before + now; ++i) {
    uint64_t v = rng.log_between(lo, hi);
    if (slow_tail != 0 && i % 17 == 0) v = slow_tail + rng.next() % slow_tail;
    d.total.record(v);
    if (i >= before) {
      d.interval.record(v);
      samples.push_back(v);
    }
  }
  if (d.metric == HeatmapMetric::accept_queue_fill || samples.empty()) return;
  std::sort(samples.begin(), samples.end());
  const auto quantile = [&](double q) {
    const auto rank = static_cast<size_t>(std::ceil(q * static_cast<double>(samples.size())));
    return static_cast<double>(samples[std::clamp<size_t>(rank, 1, samples.size()) - 1]) / 1e9;
  };
  d.summary.count = samples.size();
  d.summary.p50 = quantile(0.5);
  d.summary.p90 = quantile(0.9);
  d.summary.p99 = quantile(0.99);
  d.summary.max = static_cast<double>(samples.back()) / 1e9;
}

void merge_into(Distribution& all, const Distribution& d) {
  all.interval.merge(d.interval);
  all.total.merge(d.total);
}

}  // namespace

Snapshot make_fixture_snapshot(uint64_t seq, double timestamp) {
  Snapshot s;
  s.seq = seq;
  s.timestamp = timestamp;
  s.interval_s = 1.0;
  Lcg rng(seq * 7919 + 17);

  // 10.0.0.1 -> 10.0.0.2:443 in the host netns: TIME_WAIT piling up faster
  // than 60 s drains it; tcp_tw_reuse=2 (loopback only) does not apply.
  DestinationStats web;
  web.key = {kHostNetns, AF_INET, addr(AF_INET, "10.0.0.1"), addr(AF_INET, "10.0.0.2"), 443};
  web.src = "10.0.0.1";
  web.dst = "10.0.0.2:443";
  web.attempts_total = 183412;
  web.established_total = 183020;
  web.errors_total = {{"EADDRNOTAVAIL", 361}, {"ECONNREFUSED", 14}};
  web.retransmits_total = {{"established", 52}, {"syn_sent", 9}};
  web.attempts = 612;
  web.established = 598;
  web.errors = {{"EADDRNOTAVAIL", 14}};
  web.retransmits = {{"syn_sent", 1}};
  web.connecting = 4;
  web.open = 96;
  web.time_wait = 27311;
  web.corrected_time_wait = -3;
  web.model.settings_known = true;
  web.model.range_lo = 32768;
  web.model.range_hi = 60999;
  web.model.usable_ports = 28232;
  web.model.in_use = 27411;
  web.model.utilization = 27411.0 / 28232.0;
  web.model.tw_reuse = 2;
  web.model.timestamps = 1;
  web.model.reuse_effective = false;
  web.model.connect_rate = 598;
  web.model.sustainable_rate = 28232.0 / 60.0;
  web.model.sustainable_rate_without_reuse = 28232.0 / 60.0;
  web.model.sustainable_rate_with_reuse = 28232.0;
  web.model.time_to_exhaustion_s = (28232.0 - 27411.0) / (598 - 28232.0 / 60.0);
  web.processes = {{812, "nginx", 176002}, {4410, "curl", 7410}};
  fill(web.handshake, rng, 40'000, 3'000'000, 300, 598);
  fill(web.port_search, rng, 800, 60'000, 300, 612, 4'000'000);
  fill(web.connect_syscall, rng, 3'000, 120'000, 300, 612, 4'000'000);

  // fd00::1 -> [fd00::2]:8443 in an application netns: healthy.
  DestinationStats api;
  api.key = {kAppNetns, AF_INET6, addr(AF_INET6, "fd00::1"), addr(AF_INET6, "fd00::2"), 8443};
  api.src = "fd00::1";
  api.dst = "[fd00::2]:8443";
  api.attempts_total = 5120;
  api.established_total = 5118;
  api.errors_total = {{"ETIMEDOUT", 2}};
  api.retransmits_total = {{"established", 3}};
  api.attempts = 20;
  api.established = 20;
  api.connecting = 0;
  api.open = 31;
  api.time_wait = 1190;
  api.model.settings_known = true;
  api.model.range_lo = 32768;
  api.model.range_hi = 60999;
  api.model.usable_ports = 28232;
  api.model.in_use = 1221;
  api.model.utilization = 1221.0 / 28232.0;
  api.model.tw_reuse = 1;
  api.model.timestamps = 1;
  api.model.reuse_effective = true;
  api.model.connect_rate = 20;
  api.model.sustainable_rate = 28232.0;
  api.model.sustainable_rate_without_reuse = 28232.0 / 60.0;
  api.model.sustainable_rate_with_reuse = 28232.0;
  api.processes = {{2301, "java", 5120}};
  fill(api.handshake, rng, 200'000, 900'000, 40, 20);
  fill(api.port_search, rng, 500, 5'000, 40, 20);
  fill(api.connect_syscall, rng, 2'000, 20'000, 40, 20);

  // Destinations beyond --top-destinations, folded together.
  DestinationStats other;
  other.other = true;
  other.dst = "other";
  other.attempts_total = 77;
  other.established_total = 70;
  other.errors_total = {{"ECONNREFUSED", 7}};
  other.attempts = 3;
  other.established = 3;
  other.open = 5;
  other.time_wait = 64;
  other.model.in_use = 69;
  other.model.connect_rate = 3;
  fill(other.handshake, rng, 100'000, 2'000'000, 10, 3);
  fill(other.connect_syscall, rng, 2'000, 50'000, 10, 3);

  for (const auto* d : {&web, &api, &other}) {
    merge_into(s.handshake, d->handshake);
    merge_into(s.port_search, d->port_search);
    merge_into(s.connect_syscall, d->connect_syscall);
  }
  s.handshake.summary = web.handshake.summary;
  s.port_search.summary = web.port_search.summary;
  s.connect_syscall.summary = web.connect_syscall.summary;
  s.destinations = {web, api, other};

  ListenerStats http;
  http.key = {kHostNetns, AF_INET, {}, 8080};
  http.listen = "0.0.0.0:8080";
  http.process = "nginx (pid 812 and 4 more)";
  http.queue_len = 3;
  http.queue_peak = 129;
  http.max_backlog = 128;
  http.overflows_total = 41;
  http.overflows = 2;
  http.synack_retransmits_total = 6;
  http.accepts_total = 90211;
  http.accepts = 240;
  http.accept_rate = 240;
  // Fill per-mille of the max backlog; 1008 = 129/128: full (max + 1).
  for (uint64_t v : {0, 0, 23, 23, 47, 109, 250, 500, 1000, 1008}) http.fill.total.record(v);
  for (uint64_t v : {0, 23, 47, 1008}) http.fill.interval.record(v);

  ListenerStats unattributed;
  unattributed.key = {kAppNetns, 0, {}, 0};
  unattributed.other = true;
  unattributed.listen = "unattributed";
  unattributed.overflows_total = 5;
  unattributed.drops_total = 5;

  for (const auto* l : {&http, &unattributed}) merge_into(s.accept_queue_fill, l->fill);
  s.listeners = {http, unattributed};

  Alert ports;
  ports.rule = "ephemeral_ports_critical";
  ports.severity = Severity::critical;
  ports.state = AlertState::firing;
  ports.target_kind = TargetKind::destination;
  ports.target = "10.0.0.2:443";
  ports.src = "10.0.0.1";
  ports.netns = kHostNetns;
  ports.process = "nginx (pid 812)";
  ports.summary = "97% of ephemeral ports towards 10.0.0.2:443 are in use";
  ports.remedy =
      "TIME_WAIT holds 27311 ports for 60 s; enable tcp_tw_reuse=1 (now 2: loopback only) or widen "
      "ip_local_port_range (32768-60999).";
  ports.remedy_commands = {"sysctl -w net.ipv4.tcp_tw_reuse=1"};
  ports.evidence = {{"utilization", web.model.utilization},
                    {"in_use", 27411},
                    {"usable", 28232},
                    {"time_to_exhaustion_s", *web.model.time_to_exhaustion_s}};
  ports.since = timestamp - 30;

  Alert overflow;
  overflow.rule = "listen_overflow";
  overflow.severity = Severity::warning;
  overflow.state = AlertState::resolved;
  overflow.target_kind = TargetKind::listener;
  overflow.target = "0.0.0.0:8080";
  overflow.netns = kHostNetns;
  overflow.summary = "accept queue of 0.0.0.0:8080 overflowed";
  overflow.remedy = "Raise the listen() backlog and net.core.somaxconn (4096).";
  overflow.evidence = {{"overflows", 2}, {"max_backlog", 128}};
  overflow.since = timestamp - 120;
  overflow.resolved_at = timestamp;

  s.alerts = {ports, overflow};
  s.alerts_fired_total = {{"ephemeral_ports_critical", 1}, {"ephemeral_ports_warning", 2}, {"listen_overflow", 3}};

  AgentHealth& h = s.health;
  h.events_total = {
      {"connect", 188609}, {"port_alloc", 188600}, {"state", 740112}, {"retransmit", 64}, {"accept_queue", 52}};
  h.lost_total = {{"state", 7}};
  h.lost_interval = 0;
  h.destinations_tracked = 6;
  h.destinations_own_rows = 2;
  h.destinations_folded = 4;
  h.destinations_untracked_total = 1;
  h.reconcile_runs_total = 300;
  h.reconcile_corrections_total = {{"time_wait", 11}, {"connecting", 1}};
  h.strategies = {{"connect", "fentry"},
                  {"port_alloc", "fentry"},
                  {"state", "tp_btf"},
                  {"retransmit", "tp_btf"},
                  {"accept_queue", "fallback"}};
  return s;
}

std::string repo_path(const std::string& relative) {
  // This file is tests/unit/snapshot_fixture.cpp.
  return (std::filesystem::path(__FILE__).parent_path().parent_path().parent_path() / relative).string();
}

std::string fixture_path(const std::string& relative) { return repo_path("tests/fixtures/" + relative); }

std::string read_fixture(const std::string& relative) {
  std::ifstream in(fixture_path(relative));
  REQUIRE_MESSAGE(in.good(), "missing fixture " << fixture_path(relative));
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string compare_golden(const std::string& name, const std::string& actual) {
  const std::string path = fixture_path("golden/" + name);
  const char* update = std::getenv("UPDATE_GOLDEN");
  if (update != nullptr && std::string(update) == "1") {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << actual;
    return out.good() ? "" : "cannot write " + path;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return "missing golden file " + path + " (run with UPDATE_GOLDEN=1 to create it)";
  std::ostringstream text;
  text << in.rdbuf();
  const std::string expected = text.str();
  if (expected == actual) return "";

  std::istringstream e(expected);
  std::istringstream a(actual);
  std::string el;
  std::string al;
  for (size_t line = 1;; ++line) {
    const bool he = static_cast<bool>(std::getline(e, el));
    const bool ha = static_cast<bool>(std::getline(a, al));
    if (!he && !ha) break;
    if (he != ha || el != al) {
      return path + ":" + std::to_string(line) + ": first difference\n  expected: " + (he ? el : "<end of file>") +
             "\n  actual:   " + (ha ? al : "<end of file>") + "\n(UPDATE_GOLDEN=1 rewrites the golden files)";
    }
  }
  return path + ": differs only in the trailing newline";
}

}  // namespace connscope::test
