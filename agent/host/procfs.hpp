// Small helpers for reading /proc and /proc/sys text, and the per-process files of /proc/<pid>.
#pragma once

#include <cstdint>
#include <limits>
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

// True for a non-empty run of decimal digits (the name of a /proc/<pid> directory).
bool all_digits(std::string_view s);

// A file holding one decimal number (a /proc/sys value such as fs.file-max);
// nullopt when it cannot be read or holds anything else.
std::optional<uint64_t> read_u64_file(const std::string& path);

// The pids under proc_root ("/proc", or a fake tree in tests), ascending;
// empty when the directory cannot be read.
std::vector<uint32_t> list_pids(const std::string& proc_root);

// <proc_root>/<pid>/comm without its newline; nullopt when the process is gone or unreadable.
std::optional<std::string> read_comm(const std::string& proc_root, std::string_view pid);

// The target of a symbolic link (/proc/<pid>/fd/N: "socket:[123]"), or
// nullopt with *err = errno (ENOENT: the fd was closed or the process exited).
// With dir_fd, path is relative to that open directory (readlinkat: a scan
// of /proc/<pid>/fd then skips resolving the directory for every link).
std::optional<std::string> read_symlink(const std::string& path, int* err = nullptr);
std::optional<std::string> read_symlink(int dir_fd, const char* path, int* err = nullptr);

// Entries of /proc/<pid>/fd; nullopt with *err = errno when the directory
// cannot be read (ENOENT: the process exited; EACCES: another user's).
std::optional<uint64_t> count_fds(std::string_view pid, int* err);

// "unlimited" in /proc/<pid>/limits.
inline constexpr uint64_t kUnlimited = std::numeric_limits<uint64_t>::max();

// Reads soft and hard "Max open files" from the text of /proc/<pid>/limits
// ("unlimited" = kUnlimited). False if the line is missing or malformed.
bool parse_max_open_files(std::string_view text, uint64_t* soft, uint64_t* hard);

}  // namespace connscope
