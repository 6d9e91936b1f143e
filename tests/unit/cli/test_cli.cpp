// Unit tests: command-line parsing and its error messages.
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <tuple>

#include "cli/cli.hpp"
#include "cli/commands.hpp"

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

namespace {
// A refused command line: no command, exit code 2, one line naming `needle`.
void check_parse_error(const std::vector<std::string>& args, const std::string& needle) {
  auto c = parse(args);
  INFO(c.message);
  CHECK(c.kind == ParsedCommand::Kind::none);
  CHECK(c.exit_code == 2);
  CHECK(one_line(c.message));
  CHECK(c.message.find(needle) != std::string::npos);
}
}  // namespace

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
           {{"trace", "--netns", "/etc/passwd"},
            "--netns /etc/passwd: not a network namespace; give a path like /run/netns/NAME or /proc/PID/ns/net, "
            "or an inode (readlink /proc/PID/ns/net)"},
           {{"run", "--netns", "/proc/self/ns/pid"}, "--netns /proc/self/ns/pid: not a network namespace"},
           {{"trace", "--cgroup", "/nonexistent"}, "--cgroup /nonexistent"},
           {{"trace", "--ringbuf-size", "12Q"}, "--ringbuf-size '12Q'"},
           {{"trace", "--duration", "-1"}, "--duration"}}) {
    check_parse_error(args, needle);
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

TEST_CASE("a network namespace file is accepted by path") {
  auto c = parse({"trace", "--netns", "/proc/self/ns/net"});
  INFO(c.message);
  CHECK(c.kind == ParsedCommand::Kind::trace);
  struct stat st {};
  REQUIRE(stat("/proc/self/ns/net", &st) == 0);
  CHECK(c.trace.filter.netns == static_cast<uint32_t>(st.st_ino));
}

TEST_CASE("an unknown command is named") {
  for (const auto& args : std::vector<std::vector<std::string>>{{"bogus"}, {"bogus", "--json"}}) {
    auto c = parse(args);
    CHECK(c.exit_code == 2);
    CHECK(c.message ==
          "connscope: unknown command 'bogus'; the commands are probe, trace, run, record and doctor (see connscope "
          "--help)");
  }
}

TEST_CASE("help says what 0 and --pid mean") {
  const std::string h = parse({"trace", "--help"}).message;
  CHECK(h.find("(default, or 0: until Ctrl-C)") != std::string::npos);
  CHECK(h.find("not its children") != std::string::npos);
  CHECK(h.find("--cgroup, e.g. /sys/fs/cgroup/system.slice/nginx.service") != std::string::npos);
}

TEST_CASE("doctor --fail-on") {
  CHECK_FALSE(parse({"doctor"}).doctor_fail_on.has_value());
  CHECK(parse({"doctor", "--fail-on", "warning"}).doctor_fail_on == FindingLevel::warning);
  CHECK(parse({"doctor", "--fail-on", "critical"}).doctor_fail_on == FindingLevel::critical);
  auto c = parse({"doctor", "--fail-on", "info"});
  CHECK(c.exit_code == 2);
  CHECK(c.message.find("--fail-on") != std::string::npos);
  CHECK(one_line(c.message));
}

TEST_CASE("describe_filter lists the active filters for the banner") {
  CHECK(describe_filter(parse({"trace"}).trace.filter) == "all connections");
  auto c = parse({"run", "--netns", "4026532177", "--pid", "812", "--lport", "80,443", "--rport", "8080"});
  CHECK(describe_filter(c.run.filter) == "only netns 4026532177, pid 812, local ports 80,443, remote ports 8080");
  CHECK(describe_filter(parse({"record", "--out", "x", "--cgroup", "7"}).record.filter) == "only cgroup 7");
}

TEST_CASE("a --netns inode that no namespace has gets a note") {
  CHECK(unknown_netns_note(0).empty());
  struct stat st {};
  REQUIRE(stat("/proc/self/ns/net", &st) == 0);
  CHECK(unknown_netns_note(static_cast<uint32_t>(st.st_ino)).empty());
  CHECK(unknown_netns_note(12345) ==
        "connscope: --netns 12345: no process and no /run/netns entry is in a network namespace with this inode yet; "
        "its connections show once one is (readlink /proc/PID/ns/net gives a process's inode)");
}

TEST_CASE("no subcommand and help") {
  CHECK(parse({}).exit_code == 2);
  auto h = parse({"trace", "--help"});
  CHECK(h.exit_code == 0);
  CHECK(h.message.find("--strategy") != std::string::npos);
}

namespace {
std::string write_config(const std::string& name, const std::string& text) {
  std::string path = "/tmp/connscope-unit-" + std::to_string(getpid()) + "-" + name;
  FILE* f = fopen(path.c_str(), "w");
  REQUIRE(f);
  fputs(text.c_str(), f);
  fclose(f);
  return path;
}
}  // namespace

TEST_CASE("run: defaults and flags") {
  auto c = parse({"run"});
  REQUIRE(c.kind == ParsedCommand::Kind::run);
  CHECK(c.run.engine.interval_s == 1.0);
  CHECK(c.run.http);
  CHECK(c.run.listen_host == "127.0.0.1");
  CHECK(c.run.listen_port == 9464);
  CHECK(c.run.engine.aggregator.top_destinations == 64);
  CHECK(c.run.engine.aggregator.max_destinations == 16384);
  CHECK(c.run.engine.alerts.warn_utilization == doctest::Approx(0.70));
  CHECK(c.run.engine.alerts.crit_utilization == doctest::Approx(0.90));
  c = parse({"run", "--interval", "0.5", "--listen", "[::1]:9500", "--json-out", "-", "--netns", "4026531833",
             "--alert-fire-after", "3", "--rport", "443"});
  REQUIRE(c.kind == ParsedCommand::Kind::run);
  CHECK(c.run.engine.interval_s == 0.5);
  CHECK(c.run.listen_host == "::1");
  CHECK(c.run.listen_port == 9500);
  CHECK(c.run.json_out == "-");
  CHECK(c.run.filter.netns == 4026531833u);
  CHECK(c.run.filter.rports[0] == 443);
  CHECK(c.run.engine.alerts.fire_after == 3);
  CHECK_FALSE(parse({"run", "--listen", "off"}).run.http);
  // A replay serves HTTP only when --listen is given.
  CHECK_FALSE(parse({"run", "--replay", "x.csrec"}).run.http);
  CHECK(parse({"run", "--replay", "x.csrec", "--listen", ":9999"}).run.http);
}

TEST_CASE("run: bad values name the flag") {
  for (auto [args, needle] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"run", "--interval", "0"}, "--interval"},
           {{"run", "--listen", "9464"}, "--listen '9464' must be ADDRESS:PORT"},
           {{"run", "--listen", "::1:9464"}, "in brackets"},
           {{"run", "--listen", "127.0.0.1:99999"}, "not a port number"},
           {{"run", "--warn-utilization", "0.95", "--crit-utilization", "0.9"},
            "--warn-utilization (0.950000) must be below --crit-utilization (0.900000)"},
           {{"run", "--replay-speed", "fast"}, "--replay-speed"},
           {{"run", "--top-destinations", "0"}, "--top-destinations"},
           {{"record"}, "--out"}}) {
    check_parse_error(args, needle);
  }
}

TEST_CASE("run --config: TOML sections, values checked, keys named") {
  const std::string good = write_config("good.toml",
                                        "[run]\ninterval = 0.5\nwarn-utilization = 0.6\n"
                                        "listen = \"127.0.0.1:9999\"\nquiet = true\n");
  auto c = parse({"run", "--config", good});
  REQUIRE_MESSAGE(c.kind == ParsedCommand::Kind::run, c.message);
  CHECK(c.run.engine.interval_s == 0.5);
  CHECK(c.run.engine.alerts.warn_utilization == doctest::Approx(0.6));
  CHECK(c.run.listen_port == 9999);
  CHECK(c.run.quiet);
  // The command line wins over the file.
  CHECK(parse({"run", "--config", good, "--interval", "2"}).run.engine.interval_s == 2.0);

  for (auto [name, text, needle] : std::vector<std::tuple<std::string, std::string, std::string>>{
           {"range.toml", "[run]\nwarn-utilization = 2.0\n", "--warn-utilization: Value 2.0 not in range"},
           {"type.toml", "[run]\ninterval = \"soon\"\n", "--interval"},
           {"unknown.toml", "[run]\nbogus-key = 3\n", "unknown key 'run.bogus-key'"},
           {"nosection.toml", "interval = 3\n", "unknown key 'interval'"},
           {"listen.toml", "[run]\nlisten = \"nope\"\n", "--listen 'nope'"}}) {
    const std::string path = write_config(name, text);
    auto bad = parse({"run", "--config", path});
    INFO(name << ": " << bad.message);
    CHECK(bad.kind == ParsedCommand::Kind::none);
    CHECK(bad.exit_code == 2);
    CHECK(one_line(bad.message));
    CHECK(bad.message.find(needle) != std::string::npos);
    std::remove(path.c_str());
  }
  auto missing = parse({"run", "--config", "/nonexistent/connscope.toml"});
  CHECK(missing.exit_code == 2);
  CHECK(missing.message.find("/nonexistent/connscope.toml") != std::string::npos);
  std::remove(good.c_str());
}
