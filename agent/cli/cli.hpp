// Command-line parsing (CLI11). Pure: parse_command_line() validates every
// value and returns a one-line error naming the flag and the fix.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "aggregate/engine_config.hpp"
#include "connscope/events.h"
#include "doctor/finding.hpp"
#include "probes/capture_config.hpp"
#include "probes/strategy.hpp"

namespace connscope {

struct TraceOptions : CaptureOptions {
  bool json = false;
  std::string output = "-";
  bool all_states = false;
};

struct RunOptions : CaptureOptions {
  EngineConfig engine;                    // --interval, --top-*, --max-sockets, --reconcile-interval, alert thresholds
  std::string json_out;                   // "" = none, "-" = stdout
  std::string listen = "127.0.0.1:9464";  // "off" = no HTTP
  std::string listen_host = "127.0.0.1";  // parsed from listen
  uint16_t listen_port = 9464;
  bool http = true;
  std::string cors_origin;       // --cors-origin: Access-Control-Allow-Origin on /api/*, "" = none
  double history_s = 600;        // heatmap history kept for /api/v1/heatmap
  std::string replay;            // --replay FILE: no BPF, no root
  bool replay_realtime = false;  // --replay-speed recorded
  bool quiet = false;            // no alert lines on stderr
  bool watch_self = false;       // keep the agent's own HTTP traffic in the tables
};

struct RecordOptions : CaptureOptions {
  std::string out;
  double census_interval_s = 5;  // socket census snapshots kept in the recording
};

struct ParsedCommand {
  enum class Kind { none, probe, trace, run, record, doctor } kind = Kind::none;
  CommonOptions common;
  TraceOptions trace;
  RunOptions run;
  RecordOptions record;
  bool probe_json = false;
  bool doctor_json = false;
  std::optional<FindingLevel> doctor_fail_on;  // --fail-on warning|critical
  int exit_code = 0;                           // for help/version/errors (kind == none)
  std::string message;                         // help text or the error line
};

ParsedCommand parse_command_line(const std::vector<std::string>& args);

// The active filters for the start banner: "all connections", or e.g.
// "only netns 4026532177, pid 812, local ports 80,443".
std::string describe_filter(const cs_filter& f);

// Helpers exposed for tests.
bool parse_port_list(const std::string& text, std::vector<uint16_t>* ports, std::string* error);
bool parse_size(const std::string& text, uint32_t* bytes, std::string* error);
bool parse_strategy_flag(const std::string& text, std::map<Family, Tier>* forced, std::string* error);
// "127.0.0.1:9464", "[::1]:9464", ":9464" (all addresses), "off".
bool parse_listen(const std::string& text, std::string* host, uint16_t* port, bool* enabled, std::string* error);

}  // namespace connscope
