// Command-line parsing with CLI11: every flag, its check, and the one-line errors.
#include "cli/cli.hpp"

#include <fcntl.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <charconv>
#include <optional>
#include <sstream>

#include "cli/config_file.hpp"
#include "cli/version.hpp"
#include "util/unique_fd.hpp"

namespace connscope {
namespace {

bool parse_u64(std::string_view s, uint64_t* out) {
  auto res = std::from_chars(s.data(), s.data() + s.size(), *out);
  return res.ec == std::errc() && res.ptr == s.data() + s.size() && !s.empty();
}

// --netns accepts an inode number or a path (/proc/PID/ns/net, /run/netns/NAME).
bool resolve_netns(const std::string& text, uint32_t* inode, std::string* error) {
  uint64_t v = 0;
  if (parse_u64(text, &v) && v > 0 && v <= UINT32_MAX) {
    *inode = static_cast<uint32_t>(v);
    return true;
  }
  struct stat st {};
  if (::stat(text.c_str(), &st) != 0) {
    *error = "--netns " + text + ": not an inode number and no such file; give an inode (readlink /proc/PID/ns/net) " +
             "or a path like /run/netns/NAME";
    return false;
  }
  // A namespace file answers NS_GET_NSTYPE (Linux 4.11) with its type; any
  // other file (or another kind of namespace) would filter on an inode no
  // network namespace has, and the agent would watch nothing.
  UniqueFd fd(::open(text.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd || ::ioctl(fd.get(), NS_GET_NSTYPE) != CLONE_NEWNET) {
    *error = "--netns " + text + ": not a network namespace; give a path like /run/netns/NAME or /proc/PID/ns/net, " +
             "or an inode (readlink /proc/PID/ns/net)";
    return false;
  }
  *inode = static_cast<uint32_t>(st.st_ino);
  return true;
}

// --cgroup accepts a cgroup v2 directory or a cgroup id.
bool resolve_cgroup(const std::string& text, __u64* id, std::string* error) {
  uint64_t v = 0;
  if (parse_u64(text, &v) && v > 0) {
    *id = v;
    return true;
  }

  struct stat st {};
  if (::stat(text.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    *error = "--cgroup " + text +
             ": not a cgroup v2 directory (e.g. /sys/fs/cgroup/unified/system.slice/nginx.service) " +
             "nor a cgroup id";
    return false;
  }
  *id = st.st_ino;
  return true;
}

// The first word that is not a flag: the command (--config and its value are taken out before).
std::optional<std::size_t> first_command_word(const std::vector<std::string>& args) {
  for (std::size_t i = 0; i < args.size(); i++) {
    if (args[i] == "--") break;
    if (!args[i].empty() && args[i][0] != '-') return i;
  }
  return std::nullopt;
}

// Takes `--config FILE` (or --config=FILE) out of `args`, before or after the command: the file is read with
// toml++ here, and CLI11 parses what it says as flags.
bool take_config_flag(std::vector<std::string>* args, std::string* path, std::string* error) {
  for (std::size_t i = 0; i < args->size();) {
    const std::string& a = (*args)[i];
    if (a == "--") break;
    std::size_t words = 0;
    std::string value;
    if (a == "--config") {
      if (i + 1 >= args->size()) {
        *error = "--config needs a FILE (a TOML file with a [run], [record] or [trace] section)";
        return false;
      }
      value = (*args)[i + 1];
      words = 2;
    } else if (a.rfind("--config=", 0) == 0) {
      value = a.substr(9);
      words = 1;
    }
    if (words == 0) {
      i++;
      continue;
    }
    if (!path->empty()) {
      *error = "--config given twice (" + *path + ", " + value + "); give one file";
      return false;
    }
    if (value.empty()) {
      *error = "--config needs a FILE (a TOML file with a [run], [record] or [trace] section)";
      return false;
    }
    *path = value;
    args->erase(args->begin() + static_cast<std::ptrdiff_t>(i), args->begin() + static_cast<std::ptrdiff_t>(i + words));
  }
  return true;
}

bool asks_for_help(const std::vector<std::string>& args) {
  for (const auto& a : args) {
    if (a == "--") break;
    if (a == "-h" || a == "--help" || a == "--version") return true;
  }
  return false;
}

std::string one_line(std::string s) {
  for (char& c : s)
    if (c == '\n') c = ' ';
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

}  // namespace

bool parse_port_list(const std::string& text, std::vector<uint16_t>* ports, std::string* error) {
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    uint64_t v = 0;
    if (!parse_u64(item, &v) || v == 0 || v > 65535) {
      *error = "'" + item + "' is not a port number (1-65535)";
      return false;
    }
    ports->push_back(static_cast<uint16_t>(v));
  }
  if (ports->empty()) {
    *error = "empty port list";
    return false;
  }
  if (ports->size() > CS_MAX_PORT_FILTER) {
    *error = "at most " + std::to_string(CS_MAX_PORT_FILTER) + " ports";
    return false;
  }
  return true;
}

bool parse_size(const std::string& text, uint32_t* bytes, std::string* error) {
  uint64_t mult = 1;
  std::string digits = text;
  if (!digits.empty()) {
    char suffix = static_cast<char>(std::toupper(static_cast<unsigned char>(digits.back())));
    if (suffix == 'K' || suffix == 'M' || suffix == 'G') {
      mult = suffix == 'K' ? 1ull << 10 : suffix == 'M' ? 1ull << 20 : 1ull << 30;
      digits.pop_back();
    }
  }
  uint64_t v = 0;
  if (!parse_u64(digits, &v) || v * mult < 4096 || v * mult > (1ull << 30)) {
    *error = "'" + text + "' is not a size between 4K and 1G (e.g. 8M)";
    return false;
  }
  *bytes = static_cast<uint32_t>(v * mult);
  return true;
}

bool parse_strategy_flag(const std::string& text, std::map<Family, Tier>* forced, std::string* error) {
  auto eq = text.find('=');
  if (eq == std::string::npos) {
    *error = "'" + text + "' must be FAMILY=STRATEGY, e.g. connect=fallback or all=kprobe";
    return false;
  }
  std::string fam = text.substr(0, eq), name = text.substr(eq + 1);
  std::vector<Family> families;
  if (fam == "all") {
    families.assign(all_families.begin(), all_families.end());
  } else if (auto f = parse_family(fam)) {
    families.push_back(*f);
  } else {
    *error = "unknown family '" + fam + "' (connect, port_alloc, state, retransmit, accept_queue, all)";
    return false;
  }
  for (Family f : families) {
    // "all=kprobe" means the second tier everywhere (raw_tp for tracepoint families).
    auto t = parse_strategy(f, name);
    if (!t && fam == "all") {
      for (Family g : all_families)
        for (Tier tier : all_tiers)
          if (strategy_name(g, tier) == name) t = tier;
    }
    if (!t) {
      *error = "unknown strategy '" + name + "' for " + std::string(family_name(f)) + " (" +
               std::string(strategy_name(f, Tier::preferred)) + ", " + std::string(strategy_name(f, Tier::second)) +
               ", " + std::string(strategy_name(f, Tier::fallback)) + ", or preferred/second/fallback)";
      return false;
    }
    (*forced)[f] = *t;
  }
  return true;
}

bool parse_listen(const std::string& text, std::string* host, uint16_t* port, bool* enabled, std::string* error) {
  if (text == "off" || text == "none") {
    *enabled = false;
    return true;
  }
  *enabled = true;
  std::string h, p;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      *error = "'" + text + "' must be [IPV6]:PORT, e.g. [::1]:9464";
      return false;
    }
    h = text.substr(1, close - 1);
    p = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string::npos) {
      *error = "'" + text + "' must be ADDRESS:PORT, e.g. 127.0.0.1:9464 (or off)";
      return false;
    }
    h = text.substr(0, colon);
    p = text.substr(colon + 1);
    if (h.find(':') != std::string::npos) {
      *error = "'" + text + "': put an IPv6 address in brackets, e.g. [::1]:9464";
      return false;
    }
  }
  uint64_t v = 0;
  if (!parse_u64(p, &v) || v > 65535) {
    *error = "'" + text + "': '" + p + "' is not a port number (0-65535)";
    return false;
  }
  *host = h.empty() ? "0.0.0.0" : h;
  *port = static_cast<uint16_t>(v);
  return true;
}

ParsedCommand parse_command_line(const std::vector<std::string>& args) {
  ParsedCommand out;
  CLI::App app{
      "connscope: live TCP connection health for gateway hosts (connect latency, ephemeral-port exhaustion, "
      "port-search cost, retransmits, accept-queue overflows), from CO-RE eBPF programs that pick the best hook "
      "each kernel allows.",
      "connscope"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "connscope " CONNSCOPE_VERSION);

  std::vector<std::string> strategies;
  auto add_common = [&](CLI::App* sub) {
    sub->add_option("--strategy", strategies,
                    "Force a strategy: FAMILY=NAME (repeatable). Families: connect, port_alloc, state, retransmit, "
                    "accept_queue, all. Names: fentry|kprobe|fallback, tp_btf|raw_tp|tracepoint, or the tier "
                    "aliases preferred|second|fallback");
    sub->add_option("--btf", out.common.btf_path, "Kernel BTF file when /sys/kernel/btf/vmlinux is missing");
    sub->add_flag("-v,--verbose", out.common.verbose, "Print libbpf's messages");
  };

  CLI::App* probe = app.add_subcommand("probe", "Show which hook strategy each family would use here, and why");
  add_common(probe);
  probe->add_flag("--json", out.probe_json, "Print JSON: {\"families\":[{family,strategy,ok,rejected}]}");

  std::string pid, netns, cgroup, lports, rports, ringbuf;
  // `connscope run --config FILE`: taken out of the arguments and read by read_config_file(); declared here for
  // --help and so that `config` is a key of no section.
  std::string config_path;
  auto add_capture = [&](CLI::App* sub, CaptureOptions& c) {
    sub->add_option("--config", config_path,
                    "Read options from a TOML file: a [run] (or [record], [trace]) section with the long flag names "
                    "as keys, e.g. [run] interval = 0.5; flags on the command line win")
        ->type_name("FILE");
    sub->add_option("-d,--duration", c.duration_s, "Stop after SECONDS (default, or 0: until Ctrl-C)")
        ->check(CLI::NonNegativeNumber);
    sub->add_option("-p,--pid", pid,
                    "Only connections of this process id (that process only, not its children: for nginx's or "
                    "Envoy's workers give --cgroup, e.g. /sys/fs/cgroup/system.slice/nginx.service)");
    sub->add_option("--cgroup", cgroup, "Only this cgroup v2 directory (or cgroup id)");
    sub->add_option("--netns", netns, "Only this network namespace: inode or path (/run/netns/NAME)");
    sub->add_option("--lport", lports, "Only these local ports (comma list, up to 8)");
    sub->add_option("--rport", rports, "Only these remote ports (comma list, up to 8)");
    sub->add_option("--ringbuf-size", ringbuf, "Ring buffer size, e.g. 8M (default 8M, rounded up to a power of 2)");
    sub->add_option("--poll-interval", c.poll_interval_s,
                    "Seconds between accept-queue polls of every namespace's listeners (default 1)")
        ->check(CLI::Range(0.05, 3600.0));
  };

  CLI::App* trace = app.add_subcommand("trace", "Print decoded connection events, one per line");
  add_common(trace);
  add_capture(trace, out.trace);
  trace->add_flag("--json", out.trace.json, "JSON lines (schema: docs/trace-json.md)");
  trace->add_option("-o,--output", out.trace.output, "Write events to FILE ('-' = stdout)");
  trace->add_flag("--all-states", out.trace.all_states, "Emit every TCP state transition, not only the key ones");

  RunOptions& r = out.run;
  EngineConfig& engine = r.engine;
  CLI::App* run = app.add_subcommand(
      "run",
      "The agent: per-destination and per-listener health, latency heatmaps, the ephemeral-port exhaustion model and "
      "alerts, served as Prometheus metrics and JSON over HTTP (default 127.0.0.1:9464) and as JSON lines");
  add_common(run);
  add_capture(run, r);
  run->add_option("-i,--interval", engine.interval_s,
                  "Seconds per snapshot, heatmap frame and alert evaluation (default 1)")
      ->check(CLI::Range(0.05, 3600.0));
  run->add_option("--json-out", r.json_out,
                  "Write one JSON snapshot per interval to FILE ('-' = stdout; docs/run-json.md)");
  run->add_option("--listen", r.listen,
                  "HTTP address for /metrics and /api/v1/* (default 127.0.0.1:9464; [::1]:9464, :9464 for all "
                  "addresses, off to disable)");
  run->add_option("--cors-origin", r.cors_origin,
                  "Let browser pages from ORIGIN (e.g. https://grafana.example.com, or *) read /api/* "
                  "(Access-Control-Allow-Origin; default: no CORS headers)");
  run->add_option("--top-destinations", engine.aggregator.top_destinations,
                  "Destinations with their own row, labels and histograms (about 87 series each): those at risk "
                  "first (errors, utilization at --warn-utilization, a rate above sustainable, exhaustion within "
                  "--exhaustion-horizon), then the busiest; the rest are summed into dst=\"other\" (default 64)")
      ->check(CLI::Range(1, 100000));
  run->add_option("--max-destinations", engine.aggregator.max_destinations,
                  "Destinations tracked at all (ports held, rate, errors, exhaustion model, about 2 KiB each); "
                  "beyond, counted only in dst=\"other\" (default 16384)")
      ->check(CLI::Range(1, 1000000));
  run->add_option("--top-listeners", engine.aggregator.top_listeners, "Listeners with their own row (default 256)")
      ->check(CLI::Range(1, 100000));
  run->add_option("--max-sockets", engine.aggregator.max_sockets,
                  "Sockets tracked for ports-in-use counts; beyond, counted as untracked (default 1048576)")
      ->check(CLI::Range(1024, 1 << 26));
  run->add_option("--reconcile-interval", engine.reconcile_interval_s,
                  "Seconds between sock_diag reconciliations of the ports-in-use counts (default 5, 0 = off)")
      ->check(CLI::Range(0.0, 3600.0));
  run->add_option("--history", r.history_s, "Seconds of heatmap history for /api/v1/heatmap (default 600)")
      ->check(CLI::Range(10.0, 86400.0));
  run->add_option("--destination-idle", engine.aggregator.destination_idle_s,
                  "Drop a destination's row after this many idle seconds with no ports held (default 300)")
      ->check(CLI::Range(10.0, 86400.0));
  run->add_option("--warn-utilization", engine.alerts.warn_utilization,
                  "Ephemeral-port utilization that raises ephemeral_ports_warning (default 0.70)")
      ->check(CLI::Range(0.01, 1.0));
  run->add_option("--crit-utilization", engine.alerts.crit_utilization,
                  "Utilization that raises ephemeral_ports_critical (default 0.90)")
      ->check(CLI::Range(0.01, 1.0));
  run->add_option("--critical-horizon", engine.alerts.critical_horizon_s,
                  "Seconds: ports running out within this at the current rate also raise ephemeral_ports_critical "
                  "(default 30)")
      ->check(CLI::Range(0.0, 86400.0));
  run->add_option("--exhaustion-horizon", engine.alerts.exhaustion_horizon_s,
                  "Seconds: ports running out within this at the current rate raise ephemeral_ports_exhaustion_soon "
                  "at once (default 120)")
      ->check(CLI::Range(0.0, 86400.0));
  run->add_option("--port-search-p99", engine.alerts.port_search_p99_s,
                  "Seconds: port-search p99 above this raises port_search_slow (default 0.001)")
      ->check(CLI::Range(1e-7, 60.0));
  run->add_option("--retransmit-rate", engine.alerts.retransmit_rate,
                  "Retransmits/s to one destination that can raise retransmit_spike (default 10)")
      ->check(CLI::Range(0.001, 1e9));
  run->add_option("--retransmit-factor", engine.alerts.retransmit_factor,
                  "...when also this many times the destination's recent baseline (default 3)")
      ->check(CLI::Range(1.0, 1e6));
  run->add_option("--alert-fire-after", engine.alerts.fire_after,
                  "Intervals a threshold must hold before its alert fires (default 2; failures fire at once)")
      ->check(CLI::Range(1, 1000));
  run->add_option("--alert-resolve-after", engine.alerts.resolve_after,
                  "Intervals a condition must be clear before its alert resolves (default 5)")
      ->check(CLI::Range(1, 1000));
  run->add_option("--replay", r.replay,
                  "Feed a recording (connscope record) through aggregation, alerts and exports: no BPF, no root");
  std::string speed = "max";
  run->add_option("--replay-speed", speed, "recorded (real time) or max (default)")
      ->check(CLI::IsMember({"recorded", "max"}));
  run->add_flag("-q,--quiet", r.quiet, "No alert lines on stderr (counts and exports unchanged)");
  run->add_flag("--watch-self", r.watch_self,
                "Keep the agent's own HTTP traffic (its scrapes) in the tables; left out by default");

  CLI::App* record = app.add_subcommand(
      "record", "Save the raw event stream (with the namespaces' sysctls and socket census) for `run --replay`");
  add_common(record);
  add_capture(record, out.record);
  record->add_option("-o,--out", out.record.out, "Recording file to write")->required();
  record
      ->add_option("--census-interval", out.record.census_interval_s,
                   "Seconds between socket census snapshots in the recording (default 5, 0 = off)")
      ->check(CLI::Range(0.0, 3600.0));

  CLI::App* doctor = app.add_subcommand(
      "doctor", "One-shot report of the host settings that decide port exhaustion and accept-queue drops");
  doctor->add_flag("--json", out.doctor_json, "Print JSON");
  std::string fail_on;
  doctor
      ->add_option("--fail-on", fail_on,
                   "Exit with code 1 when a finding is at or above this level (warning or critical); for scripts and "
                   "CI. Default: exit 0 whatever the findings")
      ->check(CLI::IsMember({"warning", "critical"}));

  std::vector<std::string> argv = args;
  std::string err;
  if (!take_config_flag(&argv, &config_path, &err)) {
    out.exit_code = 2;
    out.message = "connscope: " + err;
    return out;
  }
  ConfigFile config;
  const CLI::App* config_sub = nullptr;  // the command whose section the file's flags are for
  const auto word = first_command_word(argv);
  if (!config_path.empty() && word && !asks_for_help(argv)) {
    const std::string& command = argv[*word];
    if (command == "probe" || command == "doctor") {
      out.exit_code = 2;
      out.message = "connscope: --config is for run, record and trace; " + command + " takes its flags only";
      return out;
    }
    if (command == "run" || command == "record" || command == "trace") {
      if (!read_config_file(config_path, app, command, &config, &err)) {
        out.exit_code = 2;
        out.message = "connscope: " + err;
        return out;
      }
      config_sub = app.get_subcommand(command);
      // Before the command line's own flags, which then win.
      const auto flags = config_flags(&config, *config_sub, argv);
      argv.insert(argv.begin() + static_cast<std::ptrdiff_t>(*word + 1), flags.begin(), flags.end());
    }
  }
  auto from_file = [&](const std::string& msg, std::size_t element = 0) -> std::optional<std::string> {
    if (!config_sub) return std::nullopt;
    return explain_config_error(config, *config_sub, msg, element);
  };

  std::vector<std::string> argv_rev(argv.rbegin(), argv.rend());
  try {
    app.parse(argv_rev);
  } catch (const CLI::CallForHelp& e) {
    out.message = app.help();
    for (CLI::App* sub : {probe, trace, run, record, doctor})
      if (sub->parsed()) out.message = sub->help();
    return out;
  } catch (const CLI::CallForVersion& e) {
    out.message = "connscope " CONNSCOPE_VERSION "\n";
    return out;
  } catch (const CLI::ParseError& e) {
    out.exit_code = 2;
    std::string what = one_line(e.what());
    // CLI11 reports a mistyped command as "A subcommand is required": name it.
    const auto subs = {probe, trace, run, record, doctor};
    if (word &&
        std::none_of(subs.begin(), subs.end(), [&](const CLI::App* s) { return s->get_name() == argv[*word]; })) {
      out.message = "connscope: unknown command '" + argv[*word] +
                    "'; the commands are probe, trace, run, record and doctor (see connscope --help)";
      return out;
    }
    if (auto file = from_file(what)) {
      out.message = "connscope: " + *file;
      return out;
    }
    out.message = "connscope: " + what + " (see connscope --help)";
    return out;
  }

  // A value from the file is blamed on its line and key, one from the command line on its flag.
  auto fail = [&](const std::string& msg, std::size_t element = 0) {
    out.kind = ParsedCommand::Kind::none;
    out.exit_code = 2;
    out.message = "connscope: " + from_file(msg, element).value_or(msg);
    return out;
  };
  for (std::size_t i = 0; i < strategies.size(); i++)
    if (!parse_strategy_flag(strategies[i], &out.common.forced, &err)) return fail("--strategy " + err, i);

  if (probe->parsed()) {
    out.kind = ParsedCommand::Kind::probe;
    return out;
  }
  if (doctor->parsed()) {
    out.kind = ParsedCommand::Kind::doctor;
    if (!fail_on.empty()) out.doctor_fail_on = fail_on == "critical" ? FindingLevel::critical : FindingLevel::warning;
    return out;
  }
  CaptureOptions* capture = &out.trace;
  out.kind = ParsedCommand::Kind::trace;
  if (run->parsed()) {
    out.kind = ParsedCommand::Kind::run;
    capture = &out.run;
    r.replay_realtime = speed == "recorded";
    // A replay serves HTTP only when asked to (--listen given).
    if (!r.replay.empty() && run->count("--listen") == 0) r.listen = "off";
    if (!parse_listen(r.listen, &r.listen_host, &r.listen_port, &r.http, &err)) return fail("--listen " + err);
    for (const char c : r.cors_origin)  // a header value: no spaces, no control characters
      if (static_cast<unsigned char>(c) <= ' ' || c == '\x7f')
        return fail("--cors-origin '" + r.cors_origin + "': one origin like https://grafana.example.com, or *");
    if (engine.alerts.warn_utilization >= engine.alerts.crit_utilization)
      return fail("--warn-utilization (" + std::to_string(engine.alerts.warn_utilization) +
                  ") must be below --crit-utilization (" + std::to_string(engine.alerts.crit_utilization) + ")");
    if (!r.replay.empty() && !r.json_out.empty() && r.json_out == r.replay)
      return fail("--json-out would overwrite the --replay file " + r.replay);
  } else if (record->parsed()) {
    out.kind = ParsedCommand::Kind::record;
    capture = &out.record;
  }
  cs_filter& f = capture->filter;
  if (!pid.empty()) {
    uint64_t v = 0;
    if (!parse_u64(pid, &v) || v == 0 || v > INT32_MAX) return fail("--pid '" + pid + "' is not a process id");
    f.tgid = static_cast<uint32_t>(v);
  }
  if (!netns.empty() && !resolve_netns(netns, &f.netns, &err)) return fail(err);
  if (!cgroup.empty() && !resolve_cgroup(cgroup, &f.cgroup_id, &err)) return fail(err);
  std::vector<uint16_t> ports;
  if (!lports.empty()) {
    if (!parse_port_list(lports, &ports, &err)) return fail("--lport " + err);
    std::copy(ports.begin(), ports.end(), f.lports);
    f.n_lports = static_cast<uint8_t>(ports.size());
  }
  ports.clear();
  if (!rports.empty()) {
    if (!parse_port_list(rports, &ports, &err)) return fail("--rport " + err);
    std::copy(ports.begin(), ports.end(), f.rports);
    f.n_rports = static_cast<uint8_t>(ports.size());
  }
  if (!ringbuf.empty() && !parse_size(ringbuf, &capture->ringbuf_bytes, &err)) return fail("--ringbuf-size " + err);
  return out;
}

std::string describe_filter(const cs_filter& f) {
  std::vector<std::string> parts;
  if (f.netns) parts.push_back("netns " + std::to_string(f.netns));
  if (f.tgid) parts.push_back("pid " + std::to_string(f.tgid));
  if (f.cgroup_id) parts.push_back("cgroup " + std::to_string(f.cgroup_id));
  auto ports = [&](const char* what, const uint16_t* p, uint8_t n) {
    if (n == 0) return;
    std::string s = what;
    for (uint8_t i = 0; i < n; i++) s += (i ? "," : " ") + std::to_string(p[i]);
    parts.push_back(s);
  };
  ports("local ports", f.lports, f.n_lports);
  ports("remote ports", f.rports, f.n_rports);
  if (parts.empty()) return "all connections";
  std::string out = "only";
  for (std::size_t i = 0; i < parts.size(); i++) out += (i ? ", " : " ") + parts[i];
  return out;
}

}  // namespace connscope
