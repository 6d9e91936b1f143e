// `connscope run` on a busy host: the exhaustion scenario while thousands of
// unrelated loopback destinations churn in a third namespace. The upstream at
// risk keeps its own row and alerts, every alert names the process that did
// what it says, nothing is blamed on `other`, and the remedy's commands, run
// as printed, fix the client's namespace. Host only (it runs build/spread and
// needs the host's CPU): the VM harness leaves "busy host: *" out.
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <signal.h>
#include <unistd.h>

#include <future>
#include <set>
#include <sstream>
#include <thread>

#include "agent_process.hpp"
#include "netns.hpp"
#include "run_agent.hpp"
#include "traffic.hpp"
#include "traffic_run.hpp"

using namespace itest;

namespace {

constexpr int kLo = 40000, kHi = 40199, kPorts = kHi - kLo + 1;  // the client's 200 ephemeral ports
constexpr int kNoiseDestinations = 3000;
constexpr uint16_t kPort = 8096, kNoisePort = 18080;

// build/spread, beside the agent binary (make test-host builds both).
std::string spread_path() {
  const std::string agent = agent_path();
  const auto slash = agent.rfind('/');
  return (slash == std::string::npos ? std::string(".") : agent.substr(0, slash)) + "/spread";
}

int count_of(const std::string& text, const std::string& needle) {
  int n = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + needle.size())) n++;
  return n;
}

}  // namespace

TEST_SUITE("busy host") {
  TEST_CASE("busy host: the upstream at risk keeps its own row and alerts among 3000 churning destinations") {
    const int af = AF_INET;
    Topology t;
    t.client.write_sysctl("net/ipv4/ip_local_port_range", std::to_string(kLo) + " " + std::to_string(kHi));
    t.client.write_sysctl("net/ipv4/tcp_tw_reuse", "0");
    t.client.write_sysctl("net/ipv4/tcp_timestamps", "1");
    keep_time_wait(t.client);
    Netns noise("n");
    noise.run({"ip", "link", "set", "lo", "up"});
    noise.write_sysctl("net/ipv4/ip_local_port_range", "1024 65535");
    const uint64_t C = t.client.inode();
    const std::string caddr = t.client_addr(af), dst = endpoint_label(af, t.server_addr(af), kPort);
    auto server = start_closing_server(t, af, kPort);
    // Every namespace: the noise and the upstream compete for the 64 rows.
    RunAgent agent({"--interval", "0.5", "--reconcile-interval", "1"});
    INFO(t.describe());
    INFO(agent.describe());

    // 3000 destinations at 1000 connections/s for up to 30 s (bounded).
    const std::string spread = spread_path();
    REQUIRE_MESSAGE(access(spread.c_str(), X_OK) == 0, spread << " is missing: make test-host builds it");
    auto noise_run = std::async(std::launch::async, [&] {
      return noise.try_run({spread, "-n", std::to_string(kNoiseDestinations), "-c", "0", "-r", "1000", "-d", "30", "-p",
                            std::to_string(kNoisePort), "-q"},
                           ms(45000));
    });
    // Let every noise destination be seen (and folding start) first.
    const bool folded = wait_until(
        [&] {
          try {
            const auto l = agent.snapshots();
            return !l.empty() && l.back().at("health").value("destinations_folded", 0) >= kNoiseDestinations - 100;
          } catch (const std::exception&) {
            return false;
          }
        },
        scaled(ms(15000)), ms(200));
    CHECK_MESSAGE(folded, "the noise destinations were never folded into other");

    PacedLoopOptions o;
    o.rate = 20;
    o.max_attempts = 3 * kPorts;
    o.max_time = ms(30000);
    PacedConnectLoop loop(t, af, kPort, o);
    const PacedLoopFacts f = loop.wait();
    INFO("client: " << f.describe());
    REQUIRE_MESSAGE(f.other_errors.empty(), "unexpected connect errors");
    REQUIRE_MESSAGE(f.first_eaddrnotavail_unix > 0, "the client never ran out of ports");
    // The failure reaches the agent, then one more interval.
    wait_until(
        [&] {
          try {
            return first_firing(agent.snapshots(), "connect_port_errors", C, dst) >= 0;
          } catch (const std::exception&) {
            return false;
          }
        },
        scaled(ms(5000)), ms(100));
    AgentExit ex = agent.stop(SIGINT);
    CHECK_MESSAGE(ex.exited_zero(), "SIGINT: the agent must exit 0, got " << ex.describe());
    const CmdResult noise_result = noise_run.get();
    CHECK_MESSAGE((noise_result.exited && noise_result.exit_code == 0), "spread: " << noise_result.describe());

    const std::vector<json> lines = read_json_lines(agent.json_path());
    REQUIRE(!lines.empty());
    const std::string err = agent.stderr_text();
    const std::string proc = f.comm + " (pid " + std::to_string(f.pid) + ")";
    const double failed_at = f.first_eaddrnotavail_unix;

    // Folding happened, and stderr said so once.
    int64_t max_folded = 0, max_tracked = 0;
    for (const auto& l : lines) {
      max_folded = std::max(max_folded, l.at("health").value("destinations_folded", int64_t{0}));
      max_tracked = std::max(max_tracked, l.at("health").value("destinations_tracked", int64_t{0}));
    }
    INFO("health: tracked up to " << max_tracked << ", folded up to " << max_folded);
    CHECK(max_tracked >= kNoiseDestinations);
    CHECK(max_folded >= kNoiseDestinations - 100);
    CHECK_MESSAGE(count_of(err, "are summed into dst=\"other\"") == 1, "the folding notice must appear once");

    // The upstream has its own row in every interval from its first failure
    // on, and while it was at risk before that.
    const json* row = nullptr;
    for (const auto& l : lines)
      if (l.value("timestamp", 0.0) >= failed_at)
        if (const json* d = find_destination(l, C, caddr, dst)) row = d;
    REQUIRE_MESSAGE(row, "the exhausting upstream " << dst << " never had its own row after its first failure");
    CHECK(row->at("errors_total").value("EADDRNOTAVAIL", 0) >= 1);

    // Warning before failure; critical no later than it.
    for (const char* rule : {"ephemeral_ports_exhaustion_soon", "ephemeral_ports_warning"}) {
      CAPTURE(rule);
      const int i = first_firing(lines, rule, C, dst);
      REQUIRE_MESSAGE(i >= 0, rule << " never fired for " << dst);
      const json a = find_alerts(lines[i], rule, C, dst).front();
      CHECK_MESSAGE(a.value("since", 0.0) < failed_at, rule << " fired at " << unix_text(a.value("since", 0.0))
                                                            << ", not before the first EADDRNOTAVAIL at "
                                                            << unix_text(failed_at));
    }
    const int c = first_firing(lines, "ephemeral_ports_critical", C, dst);
    REQUIRE_MESSAGE(c >= 0, "ephemeral_ports_critical never fired for " << dst);
    const json crit = find_alerts(lines[c], "ephemeral_ports_critical", C, dst).front();
    CHECK_MESSAGE(crit.value("since", 0.0) <= failed_at + 0.001, "ephemeral_ports_critical fired at "
                                                                     << unix_text(crit.value("since", 0.0))
                                                                     << ", after the first EADDRNOTAVAIL at "
                                                                     << unix_text(failed_at));
    CHECK(first_firing(lines, "connect_port_errors", C, dst) >= 0);

    // Every alert on a destination of the two namespaces names the client's
    // process and its target; none is about `other` or the noise. (The
    // agent watches the whole host: what else runs here is not judged.)
    std::set<std::string> rules;
    for (const auto& l : lines)
      for (const auto& a : l.value("alerts", json::array())) {
        if (a.value("target_kind", "") != "destination") continue;
        CAPTURE(a.dump());
        CHECK(a.value("target", "") != "other");
        const uint64_t in = a.value("netns", uint64_t{0});
        if (in != C && in != noise.inode()) continue;
        CHECK(a.value("target", "") == dst);
        CHECK(a.value("netns", uint64_t{0}) == C);
        CHECK(a.value("process", "") == proc);
        rules.insert(a.value("rule", ""));
      }
    CHECK(rules.count("connect_port_errors") == 1);
    for (const auto& l : split_lines(err))
      if (contains(l, " ALERT ") || contains(l, " FIX ")) {
        CAPTURE(l);
        CHECK_FALSE(contains(l, " other"));
        CHECK_FALSE(contains(l, "[spread"));
      }
    // The stderr lines: timestamped, the netns by name, the kernel's error
    // text for grep, and the fix once for the target.
    CHECK(contains(err, " ALERT warning ephemeral_ports_warning " + caddr + " -> " + dst + " netns " + t.client.name() +
                            " [" + proc + "]: "));
    CHECK(contains(err, "Cannot assign requested address"));
    CHECK_MESSAGE(count_of(err, " FIX " + dst + " netns " + t.client.name() + ": ") == 1,
                  "the remedy must be printed once for the target");

    // The remedy's commands are for the client's namespace: run as printed,
    // they change its settings.
    const json& cmds = crit.at("remedy_commands");
    REQUIRE_MESSAGE(cmds.size() == 2, "expected tcp_tw_reuse and ip_local_port_range commands: " << cmds.dump());
    for (const auto& cmd : cmds) {
      const std::string line = cmd.get<std::string>();
      CAPTURE(line);
      CHECK(line.rfind("ip netns exec " + t.client.name() + " sysctl -w ", 0) == 0);
      const CmdResult r = run_cmd({"sh", "-c", line}, ms(10000));
      CHECK_MESSAGE((r.exited && r.exit_code == 0), r.describe());
    }
    CHECK(trim(t.client.read_sysctl("net/ipv4/tcp_tw_reuse")) == "1");
    CHECK(trim(t.client.read_sysctl("net/ipv4/ip_local_port_range")) == "1024\t65535");
    CHECK(trim(noise.read_sysctl("net/ipv4/tcp_tw_reuse")) != "1");  // the other namespaces are left alone
  }
}
