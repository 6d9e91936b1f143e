// End to end without BPF or root: a recorded exhaustion scenario
// (tests/fixtures/exhaustion.csrec, made with tests/scenarios/exhaustion.sh
// -r 10 -p 100 and `connscope record`: a python3 client connecting to
// 10.243.0.2:8080 ten times a second from a namespace with 100 ephemeral
// ports and tcp_tw_reuse=0, until EADDRNOTAVAIL) replayed through the
// aggregation and the alert engine with the default settings.
#include <doctest/doctest.h>

#include <atomic>
#include <cstring>
#include <filesystem>

#include "aggregate/run_engine.hpp"
#include "record/recording.hpp"
#include "snapshot_fixture.hpp"

using namespace connscope;

namespace {

std::string fixture(const char* name) { return test::fixture_path(name); }

// The client process as the recording saw it: the tgid of its first connect record.
uint32_t recorded_client_pid(const std::string& path) {
  RecordingReader r(path);
  while (auto item = r.next())
    if (auto* ev = std::get_if<RecordedEvent>(&*item); ev && ev->bytes[0] == CS_EV_CONNECT) {
      cs_connect_event e;
      std::memcpy(&e, ev->bytes.data(), sizeof e);
      return e.task.tgid;
    }
  return 0;
}

struct Seen {
  uint64_t seq;
  std::vector<Alert> alerts;
  uint64_t eaddrnotavail = 0;
  double utilization = 0;
  double sustainable = 0;
};

}  // namespace

TEST_CASE("replay: an upstream running out of ports warns, then goes critical, before connect() fails") {
  const std::string path = fixture("exhaustion.csrec");
  const uint32_t pid = recorded_client_pid(path);
  REQUIRE(pid != 0);
  EngineConfig cfg;  // defaults: 1 s intervals, fire after 2, warn 0.70, critical 0.90
  std::vector<Seen> seen;
  RunEngine engine(cfg, [&](const Snapshot& s, const std::vector<Alert>&) {
    Seen x{s.seq, s.alerts};
    for (const auto& d : s.destinations)
      if (d.dst == "10.243.0.2:8080") {
        if (auto it = d.errors.find("EADDRNOTAVAIL"); it != d.errors.end()) x.eaddrnotavail = it->second;
        x.utilization = d.model.utilization;
        x.sustainable = d.model.sustainable_rate;
      }
    seen.push_back(std::move(x));
  });
  std::atomic<bool> stop{false};
  std::vector<StrategyInUse> strategies;
  const uint64_t events =
      replay_recording(path, false, engine, stop, [&](const RecordingMeta& m) { strategies = m.strategies; });
  CHECK(events > 400);
  CHECK(strategies.size() == 5);

  auto first = [&](const std::function<bool(const Seen&)>& pred) -> const Seen* {
    for (const Seen& s : seen)
      if (pred(s)) return &s;
    return nullptr;
  };
  auto firing = [](const Seen& s, const char* rule) -> const Alert* {
    for (const Alert& a : s.alerts)
      if (a.rule == rule && a.state == AlertState::firing) return &a;
    return nullptr;
  };
  const Seen* failed = first([](const Seen& s) { return s.eaddrnotavail > 0; });
  REQUIRE(failed);
  const Seen* warned = first([&](const Seen& s) { return firing(s, "ephemeral_ports_warning") != nullptr; });
  REQUIRE(warned);
  INFO("warning in snapshot " << warned->seq << ", first EADDRNOTAVAIL in snapshot " << failed->seq);
  CHECK(warned->seq < failed->seq);
  CHECK(warned->utilization >= 0.70);
  CHECK(warned->sustainable == doctest::Approx(100.0 / 60));
  // Time to exhaustion: the warning at once, the critical level within the
  // critical horizon, both well before the first failure.
  const Seen* soon = first([&](const Seen& s) { return firing(s, "ephemeral_ports_exhaustion_soon") != nullptr; });
  const Seen* critical = first([&](const Seen& s) { return firing(s, "ephemeral_ports_critical") != nullptr; });
  REQUIRE(soon);
  REQUIRE(critical);
  CHECK(soon->seq + 5 <= failed->seq);
  CHECK(critical->seq + 5 <= failed->seq);

  // connect_port_errors fires in the interval connect() first fails.
  const Alert* crit = firing(*failed, "connect_port_errors");
  REQUIRE(crit);
  CHECK(crit->severity == Severity::critical);
  CHECK(crit->target == "10.243.0.2:8080");
  CHECK(crit->src == "10.243.0.1");
  CHECK(crit->process == "python3 (pid " + std::to_string(pid) + ")");
  // The recording predates the netns entry paths: the command enters the
  // netns through the connecting process.
  CHECK(crit->remedy_commands.front() ==
        "nsenter --net=/proc/" + std::to_string(pid) + "/ns/net sysctl -w net.ipv4.tcp_tw_reuse=1");
  CHECK(crit->remedy.find("sustainable 1.7/s -> about 100/s") != std::string::npos);
  CHECK(crit->summary.find("EADDRNOTAVAIL (Cannot assign requested address)") != std::string::npos);
  const Alert* w = firing(*warned, "ephemeral_ports_warning");
  CHECK(w->process == crit->process);
  CHECK(w->netns == crit->netns);
}

TEST_CASE("replay is deterministic") {
  EngineConfig cfg;
  auto run = [&] {
    std::vector<std::string> lines;
    RunEngine engine(cfg, [&](const Snapshot& s, const std::vector<Alert>& changed) {
      std::string l = std::to_string(s.seq) + " " + std::to_string(s.timestamp);
      for (const auto& d : s.destinations) l += " " + d.dst + "=" + std::to_string(d.model.in_use);
      for (const auto& a : changed) l += " " + a.rule + ":" + alert_state_name(a.state);
      lines.push_back(l);
    });
    std::atomic<bool> stop{false};
    replay_recording(fixture("exhaustion.csrec"), false, engine, stop);
    return lines;
  };
  auto a = run(), b = run();
  CHECK(a.size() >= 10);
  CHECK(a == b);
}

TEST_CASE("the engine counts alert changes whether or not anything prints them (run -q)") {
  EngineConfig cfg;
  uint64_t seen = 0;
  RunEngine engine(cfg, [&](const Snapshot&, const std::vector<Alert>& changed) { seen += changed.size(); });
  std::atomic<bool> stop{false};
  replay_recording(fixture("exhaustion.csrec"), false, engine, stop);
  CHECK(seen == 5);  // exhaustion soon, critical, rate, warning, port errors: the README's replay
  CHECK(engine.alert_changes() == seen);
  RunEngine silent(cfg, nullptr);
  replay_recording(fixture("exhaustion.csrec"), false, silent, stop);
  CHECK(silent.alert_changes() == 5);
}

TEST_CASE("replay refuses what is not a recording") {
  EngineConfig cfg;
  RunEngine engine(cfg, nullptr);
  std::atomic<bool> stop{false};
  CHECK_THROWS_WITH_AS(replay_recording(std::filesystem::path(__FILE__).string(), false, engine, stop),
                       doctest::Contains("is not a connscope recording"), std::runtime_error);
}
