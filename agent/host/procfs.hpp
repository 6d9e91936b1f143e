// Small helpers for reading /proc and /proc/sys text.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace connscope {

// The whole file, or nullopt with *err = errno. /proc files are read in one
// pass of read()s (their content is generated per open).
std::optional<std::string> read_text_file(const std::string& path, int* err = nullptr);

// s without leading and trailing spaces, tabs, CR and LF.
std::string_view trim(std::string_view s);

// The lines of text without their '\n' (a last line without one counts too;
// a final '\n' starts no empty line).
std::vector<std::string_view> split_lines(std::string_view text);

// Fields separated by runs of spaces, tabs or CRs.
std::vector<std::string_view> split_ws(std::string_view line);

// The whole of s as a decimal number (no sign, no spaces), or nullopt.
std::optional<uint64_t> parse_u64(std::string_view s);
// The whole of s as a decimal number with an optional '-', or nullopt.
std::optional<int64_t> parse_i64(std::string_view s);

}  // namespace connscope
