// Scenarios 7-9: `connscope probe --json` and forced strategies the kernel
// refuses, the final loss record of a run, and command-line errors.
#include <doctest/doctest.h>

#include <set>

#include "agent_process.hpp"
#include "events.hpp"
#include "scenario.hpp"
#include "util.hpp"

using namespace itest;

namespace {

const std::vector<std::string> kFamilies = {"connect", "port_alloc", "state", "retransmit", "accept_queue"};

// Stderr of a failed command: exactly one non-empty line.
void check_one_line_error(const CmdResult& r) {
  INFO(r.describe());
  CHECK_MESSAGE(r.exited, "the agent must exit, not die of a signal");
  CHECK_MESSAGE((r.exited && r.exit_code != 0), "the agent must exit non-zero");
  CHECK_FALSE(r.timed_out);
  const auto lines = split_lines(trim(r.err));
  CHECK_MESSAGE(lines.size() == 1, "expected a one-line error message on stderr, got " << lines.size() << " lines");
  CHECK_MESSAGE(!contains(r.err, "connscope: tracing"), "the agent must not start tracing");
}

json run_probe() {
  CmdResult r = run_agent({"probe", "--json"}, ms(30000));
  INFO(r.describe());
  REQUIRE_MESSAGE(r.ok(), "connscope probe --json must exit 0");
  json j;
  REQUIRE_NOTHROW(j = json::parse(r.out));
  return j;
}

}  // namespace

TEST_SUITE("cli") {
  TEST_CASE("probe --json reports every family ok, and each rejected strategy is refused by trace") {
    json probe = run_probe();
    INFO("probe: " << probe.dump(2));
    REQUIRE(probe.contains("families"));
    REQUIRE(probe["families"].is_array());
    std::set<std::string> seen;
    for (const auto& fam : probe["families"]) {
      const std::string name = fam.value("family", "");
      CAPTURE(name);
      CHECK_MESSAGE(seen.insert(name).second, "family listed twice");
      CHECK_FIELD(fam, "ok", true);
      CHECK_MESSAGE(
          (fam.contains("strategy") && fam["strategy"].is_string() && !fam["strategy"].get<std::string>().empty()),
          "each family names the strategy it uses");
      CHECK_MESSAGE((fam.contains("rejected") && fam["rejected"].is_array()), "each family has a rejected list");
    }
    CHECK(seen == std::set<std::string>(kFamilies.begin(), kFamilies.end()));

    TempDir tmp;
    int forced_runs = 0;  // on the 6.18 host: 8 (fentry/tp_btf and kprobe)
    for (const auto& fam : probe["families"]) {
      const std::string name = fam.value("family", "");
      for (const auto& rej : fam.value("rejected", json::array())) {
        const std::string strategy = rej.value("strategy", "");
        const std::string reason = rej.value("reason", "");
        CAPTURE(name);
        CAPTURE(strategy);
        CHECK_MESSAGE(!strategy.empty(), "rejected entry without a strategy: " << rej.dump());
        CHECK_MESSAGE(!reason.empty(), "rejected entry without a reason: " << rej.dump());
        if (strategy.empty()) continue;
        std::vector<std::string> args{"trace", "--json", "--output", tmp.file("forced.jsonl")};
        for (auto& a : strategy_args()) args.push_back(a);  // forced tiers first, the family override after it
        for (auto a : {std::string("--strategy"), name + "=" + strategy, std::string("--duration"), std::string("1")})
          args.push_back(a);
        CmdResult r = run_agent(args, ms(30000));
        forced_runs++;
        INFO(r.describe());
        check_one_line_error(r);
        CHECK_MESSAGE(contains(r.err, strategy), "stderr must name the refused strategy '" << strategy << "'");
        CHECK_MESSAGE(contains(r.err, reason), "stderr must carry probe's rejection reason: " << reason);
      }
    }
    (void)forced_runs;
  }

  TEST_CASE("trace --duration: exits 0 by itself with a final loss record, nothing lost") {
    TempDir tmp;
    std::vector<std::string> args{"trace", "--json", "--output", tmp.file("events.jsonl")};
    for (auto& a : strategy_args()) args.push_back(a);
    args.push_back("--duration");
    args.push_back("1");
    const uint64_t t0 = monotonic_ns();
    CmdResult r = run_agent(args, ms(30000));
    const uint64_t t1 = monotonic_ns();
    INFO(r.describe());
    REQUIRE_MESSAGE(r.ok(), "trace --duration 1 must exit 0 by itself");
    CHECK_MESSAGE(r.seconds >= 1.0, "the run ended before its duration");
    CHECK(contains(r.err, "connscope: tracing"));
    // A one-line loss summary on stderr after the tracing line.
    const auto lines = split_lines(trim(r.err));
    CHECK_MESSAGE((lines.size() >= 2 && contains(lines.back(), "lost")),
                  "the last stderr line should be the loss summary");

    Records recs = Records::parse(read_file(tmp.file("events.jsonl")).value_or(""), true);
    INFO("records:\n" << dump_list(recs.all));
    check_common(recs, t0, t1);
    auto finals = recs.where([](const json& j) { return j.value("type", "") == "loss" && j.value("final", false); });
    REQUIRE(finals.size() == 1);
    const json& f = finals[0];
    CHECK_FIELD(f, "lost", 0);
    CHECK_FIELD(f, "map_full", 0);
    CHECK_MESSAGE((f.contains("lost_by_type") && f["lost_by_type"].is_object()), f.dump());
    // docs/trace-json.md: the agent writes loss records itself, without strategy/tier.
    CHECK_MESSAGE(!f.contains("strategy"), "loss record with a \"strategy\": " << f.dump());
    for (const char* t : {"connect", "port_alloc", "state", "retransmit", "accept_queue"})
      CHECK_MESSAGE((f["lost_by_type"].contains(t) && f["lost_by_type"][t] == 0), f.dump());
  }

  TEST_CASE("trace text: events only on stdout, losses and the summary on stderr") {
    std::vector<std::string> args{"trace", "--duration", "1"};
    for (auto& a : strategy_args()) args.push_back(a);
    CmdResult r = run_agent(args, ms(30000));
    INFO(r.describe());
    REQUIRE(r.ok());
    CHECK_MESSAGE(!contains(r.out, "loss"), "a loss line on stdout:\n" << r.out);
    const auto lines = split_lines(trim(r.err));
    REQUIRE(!lines.empty());
    CHECK(contains(lines.back(), " lost (ring buffer full), "));
  }

  TEST_CASE("command-line errors exit non-zero with one line on stderr") {
    const std::vector<std::vector<std::string>> cases = {
        {"trace", "--strategy", "bogus=x"}, {"trace", "--lport", "abc"},
        {"trace", "--no-such-flag"},        {"trace", "--strategy", "connect=no_such_strategy"},
        {"trace", "--rport", "70000"},      {"no-such-subcommand"},
    };
    for (const auto& args : cases) {
      CAPTURE(shell_words(args));
      CmdResult r = run_agent(args, ms(20000));
      check_one_line_error(r);
      CHECK_MESSAGE(r.out.empty(), "nothing on stdout:\n" << r.out);
    }
  }
}
