// Command-line parsing (CLI11). Pure: parse_command_line() validates every
// value and returns a one-line error naming the flag and the fix.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "connscope/events.h"
#include "strategy.hpp"

namespace connscope {

struct CommonOptions {
  std::map<Family, Tier> forced;  // --strategy FAMILY=NAME
  std::string btf_path;           // --btf
  bool verbose = false;
};

struct TraceOptions {
  bool json = false;
  double duration_s = 0;  // 0 = until SIGINT/SIGTERM
  std::string output = "-";
  cs_filter filter{};
  uint32_t ringbuf_bytes = 8u << 20;
  bool all_states = false;
  double poll_interval_s = 1.0;  // accept-queue fallback poll
};

struct ParsedCommand {
  enum class Kind { none, probe, trace } kind = Kind::none;
  CommonOptions common;
  TraceOptions trace;
  bool probe_json = false;
  int exit_code = 0;    // for help/version/errors (kind == none)
  std::string message;  // help text or the error line
};

ParsedCommand parse_command_line(const std::vector<std::string>& args);

// Helpers exposed for tests.
bool parse_port_list(const std::string& text, std::vector<uint16_t>* ports, std::string* error);
bool parse_size(const std::string& text, uint32_t* bytes, std::string* error);
bool parse_strategy_flag(const std::string& text, std::map<Family, Tier>* forced, std::string* error);

}  // namespace connscope
