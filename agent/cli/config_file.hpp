// The --config TOML file: read strictly with toml++, checked against the CLI11 options of each command, turned
// into the flags CLI11 parses, and the place a refused value came from.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace CLI {
class App;
}  // namespace CLI

namespace connscope {

// Where a value starts in the file (1-based, as toml++ counts).
struct ConfigPosition {
  std::size_t line = 0;
  std::size_t column = 0;
};

// One key of the command's section, as CLI11 will see it.
struct ConfigSetting {
  std::string key;                       // the option's long name, "interval"
  ConfigPosition where;                  // the value
  std::vector<std::string> values;       // one flag each; an array gives one per element
  std::vector<ConfigPosition> elements;  // an array's elements, parallel to values
};

struct ConfigFile {
  std::string path;
  std::string section;                  // the command's section, "run"
  std::vector<ConfigSetting> settings;  // in the file's order
};

// Reads `path` and checks each [run], [record] and [trace] section against that subcommand of `app`: only those
// sections, only long flag names as keys, and TOML types that fit (quoted strings, numbers, booleans for flags,
// arrays for repeatable options). Keeps the section of `command`. False with a one-line *error naming
// PATH:LINE:COLUMN when the file is refused.
bool read_config_file(const std::string& path, const CLI::App& app, const std::string& command, ConfigFile* out,
                      std::string* error);

// The file's settings as flags for `sub` ("--interval=0.5"), leaving out (and forgetting) those whose option
// `command_line` gives too: the command line wins.
std::vector<std::string> config_flags(ConfigFile* config, const CLI::App& sub,
                                      const std::vector<std::string>& command_line);

// When `message` starts with a flag ("--interval: Value -1 not in range ...", "--listen 'x' must be ...") whose
// value came from the file, the message about the file instead: "PATH:3:12: [run] interval: -1 is not in
// [0.05, 3600] (see connscope run --help)". `element` picks the array element of a repeatable option.
std::optional<std::string> explain_config_error(const ConfigFile& config, const CLI::App& sub,
                                                const std::string& message, std::size_t element = 0);

}  // namespace connscope
