// connscope entry point: parses the command line and runs a subcommand.
// Fatal setup errors arrive as exceptions and become one stderr line and a
// non-zero exit code.
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "cli/cli.hpp"
#include "cli/commands.hpp"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  connscope::ParsedCommand cmd = connscope::parse_command_line(args);
  if (cmd.kind == connscope::ParsedCommand::Kind::none) {
    std::fputs(cmd.message.c_str(), cmd.exit_code ? stderr : stdout);
    if (cmd.exit_code && (cmd.message.empty() || cmd.message.back() != '\n')) std::fputc('\n', stderr);
    return cmd.exit_code;
  }
  try {
    if (cmd.kind == connscope::ParsedCommand::Kind::probe) return connscope::run_probe(cmd.common, cmd.probe_json);
    switch (cmd.kind) {
      case connscope::ParsedCommand::Kind::run:
        return connscope::run_run(cmd.common, cmd.run);
      case connscope::ParsedCommand::Kind::record:
        return connscope::run_record(cmd.common, cmd.record);
      case connscope::ParsedCommand::Kind::doctor:
        return connscope::run_doctor(cmd.doctor_json, cmd.doctor_fail_on);
      default:
        return connscope::run_trace(cmd.common, cmd.trace);
    }
  } catch (const std::exception& e) {
    std::string msg = e.what();
    std::fprintf(stderr, "connscope: %s\n", msg.c_str());
    return 1;
  }
}
