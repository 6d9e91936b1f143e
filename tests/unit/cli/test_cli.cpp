// Unit tests: command-line parsing and its error messages.
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "cli/cli.hpp"
#include "cli/commands.hpp"
#include "snapshot_fixture.hpp"

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

namespace {
// The example under "connscope run" in README.md, which must keep parsing.
std::string readme_config_example() {
  std::ifstream in(connscope::test::repo_path("README.md"));
  REQUIRE_MESSAGE(in.good(), "cannot read " << connscope::test::repo_path("README.md"));
  std::stringstream text;
  text << in.rdbuf();
  const std::string readme = text.str();
  const std::string open = "```toml\n# connscope.toml\n";
  const auto begin = readme.find(open);
  REQUIRE_MESSAGE(begin != std::string::npos, "README.md has no ```toml block starting with # connscope.toml");
  const auto end = readme.find("```", begin + open.size());
  REQUIRE(end != std::string::npos);
  return readme.substr(begin + 7, end - begin - 7);
}

// The one line a refused config file gives, exit code 2.
std::string config_error(const std::string& text, std::vector<std::string> args = {"run"}) {
  const std::string path = write_config("bad.toml", text);
  args.push_back("--config");
  args.push_back(path);
  auto c = parse(args);
  std::remove(path.c_str());
  CHECK(c.kind == ParsedCommand::Kind::none);
  CHECK(c.exit_code == 2);
  CHECK(one_line(c.message));
  // The path is a temporary's: the tests compare what follows it.
  const std::string prefix = "connscope: " + path + ":";
  REQUIRE_MESSAGE(c.message.rfind(prefix, 0) == 0, c.message);
  return c.message.substr(prefix.size());
}
}  // namespace

TEST_CASE("run --config: the README example parses") {
  const std::string example = readme_config_example();
  INFO(example);
  const std::string path = write_config("readme.toml", example);
  auto c = parse({"run", "--config", path});
  std::remove(path.c_str());
  REQUIRE_MESSAGE(c.kind == ParsedCommand::Kind::run, c.message);
  CHECK(c.run.engine.interval_s == 1.0);
  CHECK(c.run.listen_host == "127.0.0.1");
  CHECK(c.run.listen_port == 9464);
  CHECK(c.run.engine.alerts.warn_utilization == doctest::Approx(0.7));
  CHECK(c.run.engine.alerts.crit_utilization == doctest::Approx(0.9));
  CHECK(c.run.engine.aggregator.top_destinations == 64);
}

TEST_CASE("run --config: TOML sections, values checked, keys named") {
  const std::string good = write_config("good.toml",
                                        "# a comment\n[run]\ninterval = 0.5\nwarn-utilization = 0.6\n"
                                        "listen = \"127.0.0.1:9999\"\nquiet = true\njson-out = \"-\"\n"
                                        "strategy = [\"connect=kprobe\", \"state=raw_tp\"]\n"
                                        "[record]\nout = \"x.csrec\"\ncensus-interval = 2\n"
                                        "[trace]\njson = true\nall-states = false\n");
  auto c = parse({"run", "--config", good});
  REQUIRE_MESSAGE(c.kind == ParsedCommand::Kind::run, c.message);
  CHECK(c.run.engine.interval_s == 0.5);
  CHECK(c.run.engine.alerts.warn_utilization == doctest::Approx(0.6));
  CHECK(c.run.listen_port == 9999);
  CHECK(c.run.quiet);
  CHECK(c.run.json_out == "-");
  // An array for a repeatable option: one --strategy per element.
  CHECK(c.common.forced.size() == 2);
  CHECK(c.common.forced.at(Family::connect) == Tier::second);
  CHECK(c.common.forced.at(Family::state) == Tier::second);
  // --config before the command works too; each command takes its own section.
  CHECK(parse({"--config", good, "run"}).run.engine.interval_s == 0.5);
  auto rec = parse({"record", "--config", good});
  REQUIRE_MESSAGE(rec.kind == ParsedCommand::Kind::record, rec.message);
  CHECK(rec.record.out == "x.csrec");
  CHECK(rec.record.census_interval_s == 2.0);
  auto tr = parse({"trace", "--config=" + good});
  REQUIRE_MESSAGE(tr.kind == ParsedCommand::Kind::trace, tr.message);
  CHECK(tr.trace.json);
  CHECK_FALSE(tr.trace.all_states);

  // The command line wins over the file, in every spelling of the flag.
  CHECK(parse({"run", "--config", good, "--interval", "2"}).run.engine.interval_s == 2.0);
  CHECK(parse({"run", "--interval=2", "--config", good}).run.engine.interval_s == 2.0);
  CHECK(parse({"run", "--config", good, "-qi2"}).run.engine.interval_s == 2.0);
  auto over = parse({"run", "--config", good, "--strategy", "connect=fallback"});
  REQUIRE_MESSAGE(over.kind == ParsedCommand::Kind::run, over.message);
  CHECK(over.common.forced.size() == 1);
  CHECK(over.common.forced.at(Family::connect) == Tier::fallback);
  // ...so a bad value in the file that the command line replaces is not used.
  const std::string overridden = write_config("overridden.toml", "[run]\ninterval = -1\n");
  auto fixed = parse({"run", "--config", overridden, "--interval", "3"});
  CHECK_MESSAGE(fixed.kind == ParsedCommand::Kind::run, fixed.message);
  CHECK(fixed.run.engine.interval_s == 3.0);
  std::remove(overridden.c_str());
  std::remove(good.c_str());
}

TEST_CASE("run --config: each refused file gives one line naming file, line, column and key") {
  // An unquoted string, the mistake CLI11's own reader let through.
  CHECK(config_error("[run]\ninterval = 1\nlisten = 127.0.0.1:19503\n") ==
        "3:10: [run] listen: Error while parsing time: expected ':', saw '7' "
        "(quote strings: listen = \"127.0.0.1:19503\")");
  CHECK(config_error("[run]\nlisten = off\n") ==
        "2:10: [run] listen: Error while parsing value: could not determine value type "
        "(quote strings: listen = \"off\")");
  CHECK(config_error("[run]\nstrategy = [connect=kprobe, state=raw_tp]\n") ==
        "2:12: [run] strategy: Error while parsing value: could not determine value type "
        "(quote strings: strategy = [\"connect=kprobe\", \"state=raw_tp\"])");
  // Unknown keys and sections.
  CHECK(config_error("[run]\ninterval = 1\nbogus = 3\n") ==
        "3:1: [run] bogus: unknown key; keys are the long flag names of connscope run (see connscope run --help)");
  CHECK(config_error("[run]\ni = 3\n") ==
        "2:1: [run] i: unknown key; keys are the long flag names of connscope run (see connscope run --help)");
  CHECK(config_error("[record]\ninterval = 3\n") ==
        "2:1: [record] interval: unknown key; keys are the long flag names of connscope record (see connscope "
        "record --help)");
  CHECK(config_error("[run]\nconfig = \"other.toml\"\n") ==
        "2:1: [run] config: a config file cannot name another; give --config on the command line");
  CHECK(config_error("[server]\ninterval = 3\n") ==
        "1:2: [server]: unknown section; the file takes [run], [record] and [trace] sections, with the long flag "
        "names of that command as keys");
  CHECK(config_error("interval = 3\n") ==
        "1:1: interval: a key outside any section; the file takes [run], [record] and [trace] sections, with the "
        "long flag names of that command as keys");
  // Wrong types.
  CHECK(config_error("[run]\ninterval = \"soon\"\n") ==
        "2:12: [run] interval: expected a number, got the string \"soon\"");
  CHECK(config_error("[run]\ninterval = \"0.5\"\n") ==
        "2:12: [run] interval: expected a number, got the string \"0.5\" (numbers are not quoted: interval = 0.5)");
  CHECK(config_error("[run]\nlisten = 9464\n") ==
        "2:10: [run] listen: expected a quoted string, got the integer 9464 (quote strings: listen = \"9464\")");
  CHECK(config_error("[run]\ntop-destinations = 1.5\n") ==
        "2:20: [run] top-destinations: expected an integer, got the number 1.5");
  CHECK(config_error("[run]\nquiet = \"true\"\n") ==
        "2:9: [run] quiet: expected true or false, got the string \"true\" (booleans are not quoted: quiet = true)");
  CHECK(config_error("[run]\nquiet = 1\n") == "2:9: [run] quiet: expected true or false, got the integer 1");
  CHECK(config_error("[run]\ninterval = nan\n") ==
        "2:12: [run] interval: expected a finite number, got the number nan");
  CHECK(config_error("[run]\nstrategy = \"connect=kprobe\"\n") ==
        "2:12: [run] strategy: expected an array of quoted strings, got the string \"connect=kprobe\" (a repeatable "
        "option takes an array: strategy = [\"connect=kprobe\"])");
  CHECK(config_error("[run]\nstrategy = [\"connect=kprobe\", 1]\n") ==
        "2:31: [run] strategy: in the array, expected a quoted string, got the integer 1");
  // Values CLI11 or the checks after it refuse, blamed on the file.
  CHECK(config_error("[run]\nlisten = \"off\"\ninterval = -1\n") ==
        "3:12: [run] interval: -1 is not in [0.05, 3600] (see connscope run --help)");
  CHECK(config_error("[run]\nwarn-utilization = 2.0\n") ==
        "2:20: [run] warn-utilization: 2 is not in [0.01, 1] (see connscope run --help)");
  CHECK(config_error("[run]\nlisten = \"nope\"\n") ==
        "2:10: [run] listen: 'nope' must be ADDRESS:PORT, e.g. 127.0.0.1:9464 (or off)");
  CHECK(config_error("[run]\nstrategy = [\"connect=kprobe\", \"connect=raw_tp\"]\n") ==
        "2:31: [run] strategy: unknown strategy 'raw_tp' for connect (fentry, kprobe, fallback, or "
        "preferred/second/fallback)");
  CHECK(config_error("[run]\nreplay-speed = \"fast\"\n") == "2:16: [run] replay-speed: fast not in {recorded,max}");
  CHECK(config_error("[trace]\nduration = -1\n", {"trace"}) ==
        "2:12: [trace] duration: -1 is below 0 (see connscope trace --help)");
  CHECK(config_error("[run]\nwarn-utilization = 0.95\n") ==
        "2:20: [run] warn-utilization: (0.950000) must be below --crit-utilization (0.900000)");
  CHECK(config_error("[run]\npid = \"-3\"\n") == "2:7: [run] pid: '-3' is not a process id");
  // Syntax errors: toml++'s description at its position.
  CHECK(config_error("[run]\ninterval = 1\n[run\n") ==
        "3:5: Error while parsing table header: expected ']', saw '\\n'");
  CHECK(config_error("[run]\ninterval = 1\ninterval = 2\n") ==
        "3:12: [run] interval: Error while parsing key-value pair: cannot redefine existing integer 'interval'");
}

TEST_CASE("--config: a missing file, a directory, and commands without a section") {
  auto missing = parse({"run", "--config", "/nonexistent/connscope.toml"});
  CHECK(missing.exit_code == 2);
  CHECK(missing.message == "connscope: --config /nonexistent/connscope.toml: No such file or directory");
  auto dir = parse({"run", "--config", "/tmp"});
  CHECK(dir.exit_code == 2);
  CHECK(dir.message == "connscope: --config /tmp: Is a directory");
  auto probe = parse({"probe", "--config", "/nonexistent/connscope.toml"});
  CHECK(probe.exit_code == 2);
  CHECK(probe.message == "connscope: --config is for run, record and trace; probe takes its flags only");
  auto twice = parse({"run", "--config", "a.toml", "--config", "b.toml"});
  CHECK(twice.exit_code == 2);
  CHECK(twice.message == "connscope: --config given twice (a.toml, b.toml); give one file");
  CHECK(parse({"run", "--config"}).message ==
        "connscope: --config needs a FILE (a TOML file with a [run], [record] or [trace] section)");
  // Help does not read the file.
  auto help = parse({"run", "--config", "/nonexistent/connscope.toml", "--help"});
  CHECK(help.exit_code == 0);
  CHECK(help.message.find("--config FILE") != std::string::npos);
}
