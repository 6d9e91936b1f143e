#include <doctest/doctest.h>

#include "cli.hpp"

using namespace connscope;

namespace {
ParsedCommand parse(std::vector<std::string> args) { return parse_command_line(args); }
bool one_line(const std::string& s) { return !s.empty() && s.find('\n') == std::string::npos; }
}  // namespace

TEST_CASE("valid trace command") {
  auto c = parse({"trace", "--json", "--duration", "2.5", "--lport", "80,443", "--rport", "5432", "--pid", "42",
                  "--ringbuf-size", "16M", "--strategy", "connect=kprobe", "--netns", "4026531833"});
  REQUIRE(c.kind == ParsedCommand::Kind::trace);
  CHECK(c.trace.json);
  CHECK(c.trace.duration_s == doctest::Approx(2.5));
  CHECK(c.trace.filter.n_lports == 2);
  CHECK(c.trace.filter.lports[1] == 443);
  CHECK(c.trace.filter.rports[0] == 5432);
  CHECK(c.trace.filter.tgid == 42);
  CHECK(c.trace.filter.netns == 4026531833u);
  CHECK(c.trace.ringbuf_bytes == 16u << 20);
  CHECK(c.common.forced.at(Family::connect) == Tier::second);
}

TEST_CASE("--strategy all=NAME maps to the tier in every family") {
  auto c = parse({"probe", "--strategy", "all=kprobe"});
  REQUIRE(c.kind == ParsedCommand::Kind::probe);
  CHECK(c.common.forced.size() == 5);
  CHECK(c.common.forced.at(Family::state) == Tier::second);
  c = parse({"probe", "--strategy", "all=fallback"});
  CHECK(c.common.forced.at(Family::retransmit) == Tier::fallback);
}

TEST_CASE("unknown flag") {
  auto c = parse({"trace", "--no-such-flag"});
  CHECK(c.kind == ParsedCommand::Kind::none);
  CHECK(c.exit_code == 2);
  CHECK(one_line(c.message));
  CHECK(c.message.find("--no-such-flag") != std::string::npos);
}

TEST_CASE("bad filter values name the flag") {
  for (auto [args, needle] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"trace", "--lport", "abc"}, "--lport 'abc'"},
           {{"trace", "--rport", "70000"}, "--rport '70000'"},
           {{"trace", "--lport", "1,2,3,4,5,6,7,8,9"}, "at most 8"},
           {{"trace", "--pid", "-3"}, "--pid"},
           {{"trace", "--netns", "/nonexistent/ns"}, "--netns /nonexistent/ns"},
           {{"trace", "--cgroup", "/nonexistent"}, "--cgroup /nonexistent"},
           {{"trace", "--ringbuf-size", "12Q"}, "--ringbuf-size '12Q'"},
           {{"trace", "--duration", "-1"}, "--duration"}}) {
    auto c = parse(args);
    INFO(c.message);
    CHECK(c.kind == ParsedCommand::Kind::none);
    CHECK(c.exit_code == 2);
    CHECK(one_line(c.message));
    CHECK(c.message.find(needle) != std::string::npos);
  }
}

TEST_CASE("bad --strategy") {
  for (auto [value, needle] :
       std::vector<std::pair<std::string, std::string>>{{"bogus=x", "unknown family 'bogus'"},
                                                        {"connect=raw_tp", "unknown strategy 'raw_tp' for connect"},
                                                        {"connect", "FAMILY=STRATEGY"}}) {
    auto c = parse({"trace", "--strategy", value});
    INFO(c.message);
    CHECK(c.exit_code == 2);
    CHECK(one_line(c.message));
    CHECK(c.message.find(needle) != std::string::npos);
  }
}

TEST_CASE("no subcommand and help") {
  CHECK(parse({}).exit_code == 2);
  auto h = parse({"trace", "--help"});
  CHECK(h.exit_code == 0);
  CHECK(h.message.find("--strategy") != std::string::npos);
}
