#include "cli.hpp"

#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <charconv>
#include <sstream>

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

ParsedCommand parse_command_line(const std::vector<std::string>& args) {
  ParsedCommand out;
  CLI::App app{
      "connscope: live TCP connection health for gateway hosts (connect latency, ephemeral-port exhaustion, "
      "port-search cost, retransmits, accept-queue overflows), from CO-RE eBPF programs that pick the best hook "
      "each kernel allows.",
      "connscope"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "connscope 0.1.0");

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

  CLI::App* trace = app.add_subcommand("trace", "Print decoded connection events, one per line");
  add_common(trace);
  std::string pid, netns, cgroup, lports, rports, ringbuf;
  trace->add_flag("--json", out.trace.json, "JSON lines (schema: docs/trace-json.md)");
  trace->add_option("-d,--duration", out.trace.duration_s, "Stop after SECONDS (default: until Ctrl-C)")
      ->check(CLI::NonNegativeNumber);
  trace->add_option("-o,--output", out.trace.output, "Write events to FILE ('-' = stdout)");
  trace->add_option("-p,--pid", pid, "Only connections of this process id");
  trace->add_option("--cgroup", cgroup, "Only this cgroup v2 directory (or cgroup id)");
  trace->add_option("--netns", netns, "Only this network namespace: inode or path (/run/netns/NAME)");
  trace->add_option("--lport", lports, "Only these local ports (comma list, up to 8)");
  trace->add_option("--rport", rports, "Only these remote ports (comma list, up to 8)");
  trace->add_option("--ringbuf-size", ringbuf, "Ring buffer size, e.g. 8M (default 8M, rounded up to a power of 2)");
  trace->add_flag("--all-states", out.trace.all_states, "Emit every TCP state transition, not only the key ones");
  trace
      ->add_option("--poll-interval", out.trace.poll_interval_s,
                   "Seconds between accept-queue polls (fallback strategy; default 1)")
      ->check(CLI::PositiveNumber);

  std::vector<std::string> argv_rev(args.rbegin(), args.rend());
  try {
    app.parse(argv_rev);
  } catch (const CLI::CallForHelp& e) {
    out.message = app.help();
    for (CLI::App* sub : {probe, trace})
      if (sub->parsed()) out.message = sub->help();
    return out;
  } catch (const CLI::CallForVersion& e) {
    out.message = "connscope 0.1.0\n";
    return out;
  } catch (const CLI::ParseError& e) {
    out.exit_code = 2;
    out.message = "connscope: " + one_line(e.what()) + " (see connscope --help)";
    return out;
  }

  auto fail = [&](const std::string& msg) {
    out.kind = ParsedCommand::Kind::none;
    out.exit_code = 2;
    out.message = "connscope: " + msg;
    return out;
  };
  std::string err;
  for (const auto& s : strategies)
    if (!parse_strategy_flag(s, &out.common.forced, &err)) return fail("--strategy " + err);

  if (probe->parsed()) {
    out.kind = ParsedCommand::Kind::probe;
    return out;
  }
  out.kind = ParsedCommand::Kind::trace;
  cs_filter& f = out.trace.filter;
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
  if (!ringbuf.empty() && !parse_size(ringbuf, &out.trace.ringbuf_bytes, &err)) return fail("--ringbuf-size " + err);
  return out;
}

}  // namespace connscope
