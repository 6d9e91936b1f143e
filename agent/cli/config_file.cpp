// The --config TOML file with toml++: strict reading, checks against the CLI11 options, flags, and blame.
#include "cli/config_file.hpp"

#include <toml++/toml.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <set>

namespace connscope {
namespace {

constexpr const char* kSections[] = {"run", "record", "trace"};

bool is_section(std::string_view name) {
  return std::find(std::begin(kSections), std::end(kSections), name) != std::end(kSections);
}

std::string at(const std::string& path, ConfigPosition p) {
  return path + ":" + std::to_string(p.line) + ":" + std::to_string(p.column) + ": ";
}

ConfigPosition position_of(const toml::source_region& r) { return {r.begin.line, r.begin.column}; }

bool read_whole_file(const std::string& path, std::string* text, std::string* error) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) {
    *error = "--config " + path + ": " + std::strerror(errno);
    return false;
  }
  char buf[4096];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) text->append(buf, n);
  const bool failed = std::ferror(f) != 0;
  const int err = errno;
  std::fclose(f);
  if (failed) {
    *error = "--config " + path + ": " + std::strerror(err);
    return false;
  }
  return true;
}

// What an option takes, from CLI11: a flag (no value), or values of one kind, once or repeated.
enum class ValueKind { boolean, string, number, integer };
struct OptionShape {
  ValueKind kind = ValueKind::string;
  bool repeated = false;
};

OptionShape shape_of(const CLI::Option& opt) {
  OptionShape s;
  if (opt.get_expected_max() == 0) {
    s.kind = ValueKind::boolean;
    return s;
  }
  s.repeated = opt.get_items_expected_max() > 1;
  // "FLOAT:FLOAT in [0.05 - 3600]": the type, then the validators' descriptions.
  const std::string type = opt.get_type_name().substr(0, opt.get_type_name().find(':'));
  s.kind = type == "FLOAT"                   ? ValueKind::number
           : type == "INT" || type == "UINT" ? ValueKind::integer
                                             : ValueKind::string;
  return s;
}

const char* expected(ValueKind k) {
  switch (k) {
    case ValueKind::boolean:
      return "true or false";
    case ValueKind::number:
      return "a number";
    case ValueKind::integer:
      return "an integer";
    default:
      return "a quoted string";
  }
}

const char* expected_array(ValueKind k) {
  switch (k) {
    case ValueKind::number:
      return "an array of numbers";
    case ValueKind::integer:
      return "an array of integers";
    default:
      return "an array of quoted strings";
  }
}

std::string format_double(double v) {
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, res.ptr);
}

// The value as the command line would spell it; nullopt for arrays, tables and dates.
std::optional<std::string> scalar_text(const toml::node& n) {
  if (auto s = n.as_string()) return s->get();
  if (auto i = n.as_integer()) return std::to_string(i->get());
  if (auto d = n.as_floating_point()) return format_double(d->get());
  if (auto b = n.as_boolean()) return b->get() ? "true" : "false";
  return std::nullopt;
}

std::string describe(const toml::node& n) {
  if (auto s = n.as_string()) return "the string \"" + s->get() + "\"";
  if (n.is_integer()) return "the integer " + *scalar_text(n);
  if (n.is_floating_point()) return "the number " + *scalar_text(n);
  if (n.is_boolean()) return "the boolean " + *scalar_text(n);
  if (n.is_array()) return "an array";
  if (n.is_table()) return "a table";
  if (n.is_date()) return "a date";
  if (n.is_time()) return "a time";
  return "a date-time";
}

bool parses_as_number(const std::string& s) {
  double v = 0;
  auto res = std::from_chars(s.data(), s.data() + s.size(), v);
  return !s.empty() && res.ec == std::errc() && res.ptr == s.data() + s.size();
}

// Empty when `n` fits `kind`; else what is wrong, and (for a lone value) how to write it when that is plain.
std::string check_value(const toml::node& n, ValueKind kind, const std::string& key, bool hint = true) {
  bool ok = false;
  switch (kind) {
    case ValueKind::boolean:
      ok = n.is_boolean();
      break;
    case ValueKind::string:
      ok = n.is_string();
      break;
    case ValueKind::number:
      ok = n.is_integer() || n.is_floating_point();
      break;
    case ValueKind::integer:
      ok = n.is_integer();
      break;
  }
  if (ok && n.is_floating_point() && !std::isfinite(n.as_floating_point()->get()))
    return "expected a finite number, got " + describe(n);
  if (ok) return "";
  std::string msg = std::string("expected ") + expected(kind) + ", got " + describe(n);
  if (!hint) return msg;
  const auto text = scalar_text(n);
  if (kind == ValueKind::string && text && !n.is_string()) msg += " (quote strings: " + key + " = \"" + *text + "\")";
  if ((kind == ValueKind::number || kind == ValueKind::integer) && n.is_string() && parses_as_number(*text))
    msg += " (numbers are not quoted: " + key + " = " + *text + ")";
  if (kind == ValueKind::boolean && n.is_string() && (*text == "true" || *text == "false"))
    msg += " (booleans are not quoted: " + key + " = " + *text + ")";
  return msg;
}

// A table's entries in the file's order (toml++ keeps them sorted by key).
std::vector<std::pair<const toml::key*, const toml::node*>> in_file_order(const toml::table& t) {
  std::vector<std::pair<const toml::key*, const toml::node*>> out;
  for (auto&& [k, v] : t) out.emplace_back(&k, &v);
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    const auto pa = a.first->source().begin, pb = b.first->source().begin;
    return pa.line != pb.line ? pa.line < pb.line : pa.column < pb.column;
  });
  return out;
}

bool check_section(const std::string& path, const std::string& section, const toml::table& table, const CLI::App& sub,
                   ConfigFile* keep, std::string* error) {
  for (const auto& [k, node] : in_file_order(table)) {
    const std::string key(k->str());
    const std::string where = at(path, position_of(k->source())) + "[" + section + "] " + key + ": ";
    const CLI::Option* opt = sub.get_option_no_throw("--" + key);
    if (!opt || opt == sub.get_help_ptr() || opt == sub.get_help_all_ptr()) {
      *error = where + "unknown key; keys are the long flag names of connscope " + section + " (see connscope " +
               section + " --help)";
      return false;
    }
    if (key == "config") {
      *error = where + "a config file cannot name another; give --config on the command line";
      return false;
    }
    const OptionShape shape = shape_of(*opt);
    const std::string value_at = at(path, position_of(node->source())) + "[" + section + "] " + key + ": ";
    ConfigSetting s{key, position_of(node->source()), {}, {}};
    if (shape.repeated) {
      const toml::array* arr = node->as_array();
      if (!arr) {
        std::string msg = value_at + "expected " + expected_array(shape.kind) + ", got " + describe(*node);
        if (check_value(*node, shape.kind, key).empty())
          msg += " (a repeatable option takes an array: " + key + " = [" +
                 (node->is_string() ? "\"" + *scalar_text(*node) + "\"" : *scalar_text(*node)) + "])";
        *error = msg;
        return false;
      }
      for (const toml::node& e : *arr) {
        if (std::string bad = check_value(e, shape.kind, key, false); !bad.empty()) {
          *error = at(path, position_of(e.source())) + "[" + section + "] " + key + ": in the array, " + bad;
          return false;
        }
        s.values.push_back(*scalar_text(e));
        s.elements.push_back(position_of(e.source()));
      }
    } else {
      if (std::string bad = check_value(*node, shape.kind, key); !bad.empty()) {
        *error = value_at + bad;
        return false;
      }
      s.values.push_back(*scalar_text(*node));
    }
    if (keep) keep->settings.push_back(std::move(s));
  }
  return true;
}

std::string trim(std::string_view s) {
  const auto b = s.find_first_not_of(" \t\r");
  if (b == std::string_view::npos) return "";
  return std::string(s.substr(b, s.find_last_not_of(" \t\r") - b + 1));
}

bool is_bare_key_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_'; }

std::string quoted(const std::string& s) {
  if (!s.empty() && (s.front() == '"' || s.front() == '\'')) return s;
  return "\"" + s + "\"";
}

// A parse error on a `key = value` line of a section names the key; an unquoted value for a string option (the
// mistake CLI11's reader let through: listen = 127.0.0.1:9464) gets the quoted spelling.
std::string explain_parse_error(const std::string& path, const std::string& text, const toml::parse_error& e,
                                const CLI::App& app) {
  ConfigPosition where = position_of(e.source());
  const std::string desc(e.description());
  std::vector<std::string> lines;
  for (std::size_t b = 0; b <= text.size();) {
    std::size_t nl = text.find('\n', b);
    if (nl == std::string::npos) nl = text.size();
    lines.push_back(text.substr(b, nl - b));
    b = nl + 1;
  }
  if (where.line == 0 || where.line > lines.size()) return at(path, where) + desc;
  std::string section;
  for (std::size_t i = 0; i + 1 < where.line; i++) {
    const std::string l = trim(lines[i]);
    if (l.size() > 2 && l.front() == '[' && l[1] != '[' && l.find(']') != std::string::npos)
      section = trim(std::string_view(l).substr(1, l.find(']') - 1));
  }
  const std::string& line = lines[where.line - 1];
  std::size_t i = line.find_first_not_of(" \t");
  const std::size_t key_begin = i;
  while (i < line.size() && is_bare_key_char(line[i])) i++;
  const std::string key = key_begin == std::string::npos ? "" : line.substr(key_begin, i - key_begin);
  i = line.find_first_not_of(" \t", i);
  if (key.empty() || i == std::string::npos || line[i] != '=' || !is_section(section)) return at(path, where) + desc;
  const std::size_t value_begin = line.find_first_not_of(" \t", i + 1);
  std::string raw = value_begin == std::string::npos ? "" : line.substr(value_begin);
  if (auto hash = raw.find(" #"); hash != std::string::npos) raw = raw.substr(0, hash);
  raw = trim(raw);

  std::string hint;
  const CLI::Option* opt = app.get_subcommand(section)->get_option_no_throw("--" + key);
  if (opt && !raw.empty() && raw.front() != '"' && raw.front() != '\'') {
    const OptionShape shape = shape_of(*opt);
    if (shape.kind == ValueKind::string && !shape.repeated) {
      hint = " (quote strings: " + key + " = \"" + raw + "\")";
    } else if (shape.kind == ValueKind::string && raw.front() == '[' && raw.back() == ']') {
      std::string items;
      const std::string inner = raw.substr(1, raw.size() - 2);
      for (std::size_t b = 0; b <= inner.size();) {
        std::size_t comma = inner.find(',', b);
        if (comma == std::string::npos) comma = inner.size();
        if (const std::string item = trim(std::string_view(inner).substr(b, comma - b)); !item.empty())
          items += (items.empty() ? "" : ", ") + quoted(item);
        b = comma + 1;
      }
      hint = " (quote strings: " + key + " = [" + items + "])";
    }
    // The fix is at the value, wherever in it toml++ gave up.
    if (!hint.empty()) where.column = value_begin + 1;
  }
  return at(path, where) + "[" + section + "] " + key + ": " + desc + hint;
}

// The options `args` gives, found as CLI11 would: --name, --name=value, -x, -xVALUE, grouped short flags.
std::set<const CLI::Option*> options_given(const CLI::App& sub, const std::vector<std::string>& args) {
  std::set<const CLI::Option*> given;
  for (std::size_t i = 0; i < args.size(); i++) {
    const std::string& a = args[i];
    if (a == "--") break;
    if (a.rfind("--", 0) == 0) {
      const auto eq = a.find('=');
      const CLI::Option* opt = sub.get_option_no_throw(a.substr(0, eq));
      if (!opt) continue;
      given.insert(opt);
      if (eq == std::string::npos && opt->get_expected_max() > 0) i++;  // its value
    } else if (a.size() > 1 && a[0] == '-') {
      for (std::size_t j = 1; j < a.size(); j++) {
        const CLI::Option* opt = sub.get_option_no_throw(std::string{'-', a[j]});
        if (!opt) break;
        given.insert(opt);
        if (opt->get_expected_max() > 0) {
          if (j + 1 == a.size()) i++;  // its value is the next word, else the rest of this one
          break;
        }
      }
    }
  }
  return given;
}

// CLI11's range message in the file's terms: "Value -1 not in range 0.050000 to 3600.000000" becomes
// "-1 is not in [0.05, 3600]", the bounds as the option's help spells them.
std::string plain_range(const std::string& rest, const CLI::Option& opt, const std::string& section) {
  const std::string value_word = "Value ", range_word = " not in range ";
  const auto r = rest.find(range_word);
  if (rest.rfind(value_word, 0) != 0 || r == std::string::npos) return rest;
  const std::string value = rest.substr(value_word.size(), r - value_word.size());
  std::string bounds = rest.substr(r + range_word.size());
  if (auto to = bounds.find(" to "); to != std::string::npos) {
    // CLI11 prints its bounds with %f: NonNegativeNumber's upper bound is DBL_MAX, 309 digits long.
    double lo = 0, hi = 0;
    const std::string lo_text = bounds.substr(0, to), hi_text = bounds.substr(to + 4);
    std::from_chars(lo_text.data(), lo_text.data() + lo_text.size(), lo);
    std::from_chars(hi_text.data(), hi_text.data() + hi_text.size(), hi);
    if (hi >= 1e300) return value + " is below " + format_double(lo) + " (see connscope " + section + " --help)";
    bounds = format_double(lo) + ", " + format_double(hi);
  }
  const std::string type = opt.get_type_name();
  if (auto b = type.find("in ["); b != std::string::npos && type.find(']', b) != std::string::npos) {
    bounds = type.substr(b + 4, type.find(']', b) - b - 4);
    if (auto dash = bounds.find(" - "); dash != std::string::npos) bounds.replace(dash, 3, ", ");
  }
  return value + " is not in [" + bounds + "] (see connscope " + section + " --help)";
}

}  // namespace

bool read_config_file(const std::string& path, const CLI::App& app, const std::string& command, ConfigFile* out,
                      std::string* error) {
  std::string text;
  if (!read_whole_file(path, &text, error)) return false;
  toml::table doc;
  try {
    doc = toml::parse(text, path);
  } catch (const toml::parse_error& e) {
    *error = explain_parse_error(path, text, e, app);
    return false;
  }
  out->path = path;
  out->section = command;
  out->settings.clear();
  for (const auto& [k, node] : in_file_order(doc)) {
    const std::string name(k->str());
    const std::string where = at(path, position_of(k->source()));
    const toml::table* table = node->as_table();
    if (!is_section(name) || !table) {
      std::string what = table                        ? "[" + name + "]: unknown section"
                         : is_section(name)           ? name + ": not a section"
                         : node->is_array_of_tables() ? "[[" + name + "]]: unknown section"
                                                      : name + ": a key outside any section";
      *error = where + what + "; the file takes [run], [record] and [trace] sections, with the long flag names of " +
               "that command as keys";
      return false;
    }
    if (!check_section(path, name, *table, *app.get_subcommand(name), name == command ? out : nullptr, error))
      return false;
  }
  return true;
}

std::vector<std::string> config_flags(ConfigFile* config, const CLI::App& sub,
                                      const std::vector<std::string>& command_line) {
  const auto given = options_given(sub, command_line);
  std::erase_if(config->settings,
                [&](const ConfigSetting& s) { return given.count(sub.get_option_no_throw("--" + s.key)) != 0; });
  std::vector<std::string> flags;
  // --name=value: a value that starts with '-' ("-" for stdout, -1) stays a value.
  for (const ConfigSetting& s : config->settings)
    for (const std::string& v : s.values) flags.push_back("--" + s.key + "=" + v);
  return flags;
}

std::optional<std::string> explain_config_error(const ConfigFile& config, const CLI::App& sub,
                                                const std::string& message, std::size_t element) {
  std::string flag, rest;
  const std::string conversion = "Could not convert: ";
  if (message.rfind(conversion, 0) == 0) {
    const auto eq = message.find(" = ", conversion.size());
    if (eq == std::string::npos) return std::nullopt;
    flag = message.substr(conversion.size(), eq - conversion.size());
    rest = "cannot convert " + message.substr(eq + 3);
  } else {
    const auto end = message.find_first_of(": ");
    flag = message.substr(0, end);
    if (end != std::string::npos) rest = message.substr(message[end] == ':' ? end + 1 : end);
    rest = trim(rest);
  }
  if (flag.rfind("--", 0) != 0) return std::nullopt;
  const CLI::Option* opt = sub.get_option_no_throw(flag);
  if (!opt) return std::nullopt;
  for (const ConfigSetting& s : config.settings) {
    if (sub.get_option_no_throw("--" + s.key) != opt) continue;
    const ConfigPosition where = element < s.elements.size() ? s.elements[element] : s.where;
    return at(config.path, where) + "[" + config.section + "] " + s.key + ": " +
           plain_range(rest, *opt, config.section);
  }
  return std::nullopt;
}

}  // namespace connscope
