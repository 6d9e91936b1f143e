// Reading /proc files and splitting their text.
#include "host/procfs.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>

#include "util/unique_fd.hpp"

namespace connscope {

std::optional<std::string> read_text_file(const std::string& path, int* err) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    if (err) *err = errno;
    return std::nullopt;
  }
  std::string text;
  char buf[8192];
  for (;;) {
    const ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      if (err) *err = errno;
      return std::nullopt;
    }
    if (n == 0) return text;
    text.append(buf, static_cast<size_t>(n));
  }
}

std::string_view trim(std::string_view s) {
  constexpr std::string_view kSpace = " \t\r\n";
  const size_t b = s.find_first_not_of(kSpace);
  if (b == std::string_view::npos) return {};
  const size_t e = s.find_last_not_of(kSpace);
  return s.substr(b, e - b + 1);
}

std::vector<std::string_view> split_lines(std::string_view text) {
  std::vector<std::string_view> out;
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    out.push_back(text.substr(0, nl));
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
  }
  return out;
}

std::vector<std::string_view> split_ws(std::string_view line) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) ++i;
    size_t j = i;
    while (j < line.size() && line[j] != ' ' && line[j] != '\t' && line[j] != '\r') ++j;
    if (j > i) out.push_back(line.substr(i, j - i));
    i = j;
  }
  return out;
}

std::optional<uint64_t> parse_u64(std::string_view s) {
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

std::optional<int64_t> parse_i64(std::string_view s) {
  int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::optional<uint64_t> read_u64_file(const std::string& path) {
  std::optional<std::string> t = read_text_file(path);
  return t ? parse_u64(trim(*t)) : std::nullopt;
}

std::vector<uint32_t> list_pids(const std::string& proc_root) {
  std::vector<uint32_t> pids;
  DIR* d = ::opendir(proc_root.c_str());
  if (!d) return pids;
  while (const dirent* e = ::readdir(d)) {
    if (!all_digits(e->d_name)) continue;
    std::optional<uint64_t> pid = parse_u64(e->d_name);
    if (pid && *pid <= std::numeric_limits<uint32_t>::max()) pids.push_back(static_cast<uint32_t>(*pid));
  }
  ::closedir(d);
  std::sort(pids.begin(), pids.end());
  return pids;
}

std::optional<std::string> read_comm(const std::string& proc_root, std::string_view pid) {
  std::optional<std::string> comm = read_text_file(proc_root + "/" + std::string(pid) + "/comm");
  if (!comm) return std::nullopt;
  return std::string(trim(*comm));
}

std::optional<std::string> read_symlink(const std::string& path, int* err) {
  return read_symlink(AT_FDCWD, path.c_str(), err);
}

std::optional<std::string> read_symlink(int dir_fd, const char* path, int* err) {
  // /proc links are short ("socket:[4026531992]", a path); a longer target
  // is read again with more room.
  std::string buf(128, '\0');
  for (;;) {
    const ssize_t n = ::readlinkat(dir_fd, path, buf.data(), buf.size());
    if (n < 0) {
      if (err) *err = errno;
      return std::nullopt;
    }
    if (static_cast<size_t>(n) < buf.size()) {
      buf.resize(static_cast<size_t>(n));
      return buf;
    }
    buf.resize(buf.size() * 2);
  }
}

std::optional<uint64_t> count_fds(std::string_view pid, int* err) {
  const std::string path = "/proc/" + std::string(pid) + "/fd";
  DIR* d = ::opendir(path.c_str());
  if (!d) {
    *err = errno;
    return std::nullopt;
  }
  uint64_t n = 0;
  while (const dirent* e = ::readdir(d))
    if (e->d_name[0] != '.') ++n;
  ::closedir(d);
  return n;
}

bool parse_max_open_files(std::string_view text, uint64_t* soft, uint64_t* hard) {
  constexpr std::string_view kName = "Max open files";
  for (std::string_view line : split_lines(text)) {
    if (line.substr(0, kName.size()) != kName) continue;
    std::vector<std::string_view> f = split_ws(line.substr(kName.size()));
    if (f.size() < 2) return false;
    auto value = [](std::string_view s) -> std::optional<uint64_t> {
      if (s == "unlimited") return kUnlimited;
      return parse_u64(s);
    };
    std::optional<uint64_t> a = value(f[0]), b = value(f[1]);
    if (!a || !b) return false;
    *soft = *a;
    *hard = *b;
    return true;
  }
  return false;
}

}  // namespace connscope
