// connscope run as a test process: HTTP gets, JSON lines, a Prometheus text parser.
#include "run_agent.hpp"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "sockets.hpp"

namespace itest {

namespace {

Fd bind_local(uint16_t port, bool reuseaddr) {
  Fd s(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (s.get() < 0) throw std::runtime_error("socket: " + errno_str(errno));
  if (reuseaddr) {
    const int one = 1;
    setsockopt(s.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  }
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(s.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || listen(s.get(), 1) != 0) return Fd();
  return s;
}

// Socket inodes of TCP listeners on `port` (any address) in /proc/net/tcp{,6}.
std::set<std::string> listener_inodes(uint16_t port) {
  std::set<std::string> inodes;
  for (const char* table : {"/proc/thread-self/net/tcp", "/proc/thread-self/net/tcp6"}) {
    auto text = read_file(table);
    if (!text) continue;
    for (const auto& line : split_lines(*text)) {
      std::istringstream in(line);
      std::string sl, local, remote, st, queues, timer, retr, uid, timeout, inode;
      if (!(in >> sl >> local >> remote >> st >> queues >> timer >> retr >> uid >> timeout >> inode) || sl == "sl")
        continue;
      const auto colon = local.rfind(':');
      if (colon == std::string::npos || st != "0A") continue;  // 0A = LISTEN
      if (std::stoul(local.substr(colon + 1), nullptr, 16) == port) inodes.insert(inode);
    }
  }
  return inodes;
}

}  // namespace

uint16_t free_local_port() {
  Fd s = bind_local(0, false);
  if (s.get() < 0) throw std::runtime_error("cannot bind 127.0.0.1:0: " + errno_str(errno));
  return local_port(s.get());
}

bool local_port_free(uint16_t port) { return bind_local(port, true).get() >= 0; }

std::string who_listens(uint16_t port) {
  const std::set<std::string> inodes = listener_inodes(port);
  if (inodes.empty()) return "no TCP listener on port " + std::to_string(port) + " in /proc/net/tcp{,6}";
  std::string out;
  DIR* proc = opendir("/proc");
  if (!proc) return "a listener (socket inode(s) found) but /proc cannot be read";
  int scanned = 0;
  while (dirent* de = readdir(proc)) {
    if (++scanned > 100000) break;  // bounded
    const std::string pid = de->d_name;
    if (pid.empty() || pid.find_first_not_of("0123456789") != std::string::npos) continue;
    const std::string fd_dir = "/proc/" + pid + "/fd";
    DIR* fds = opendir(fd_dir.c_str());
    if (!fds) continue;
    bool holds = false;
    while (dirent* f = readdir(fds)) {
      char target[128];
      const std::string link = fd_dir + "/" + f->d_name;
      const ssize_t n = readlink(link.c_str(), target, sizeof target - 1);
      if (n <= 0) continue;
      target[n] = '\0';
      std::string t = target;
      if (t.rfind("socket:[", 0) == 0 && inodes.count(t.substr(8, t.size() - 9))) {
        holds = true;
        break;
      }
    }
    closedir(fds);
    if (!holds) continue;
    std::string cmdline = read_file("/proc/" + pid + "/cmdline").value_or("");
    for (char& c : cmdline)
      if (c == '\0') c = ' ';
    if (!out.empty()) out += "; ";
    out += "pid " + pid + " (" + trim(read_file("/proc/" + pid + "/comm").value_or("?")) + "): " + trim(cmdline);
  }
  closedir(proc);
  return out.empty() ? "a listener (socket inode(s) found) but no process holding it" : out;
}

std::string HttpResult::describe() const {
  if (status == 0) return "request failed: " + error;
  return "HTTP " + std::to_string(status) + " (" + content_type + "): " + body.substr(0, 2000);
}

HttpResult http_get(const std::string& host, uint16_t port, const std::string& path, ms timeout) {
  httplib::Client cli(host, port);
  const auto t = scaled(timeout);
  const auto sec = t.count() / 1000, usec = (t.count() % 1000) * 1000;
  cli.set_connection_timeout(sec, usec);
  cli.set_read_timeout(sec, usec);
  cli.set_write_timeout(sec, usec);
  HttpResult r;
  auto res = cli.Get(path.c_str());
  if (!res) {
    r.error = httplib::to_string(res.error());
    return r;
  }
  r.status = res->status;
  r.body = res->body;
  r.content_type = res->get_header_value("Content-Type");
  return r;
}

// ---------------------------------------------------------------------------
// Prometheus text format

namespace {

bool parse_labels(const std::string& s, std::size_t& i, std::map<std::string, std::string>& out, std::string& err) {
  // s[i] == '{'
  i++;
  for (;;) {
    if (i >= s.size()) return err = "unterminated label set", false;
    if (s[i] == '}') {
      i++;
      return true;
    }
    std::size_t eq = s.find('=', i);
    if (eq == std::string::npos) return err = "label without '='", false;
    std::string key = s.substr(i, eq - i);
    if (key.empty() || !(std::isalpha(static_cast<unsigned char>(key[0])) || key[0] == '_'))
      return err = "bad label name '" + key + "'", false;
    i = eq + 1;
    if (i >= s.size() || s[i] != '"') return err = "label value not quoted", false;
    i++;
    std::string value;
    for (;;) {
      if (i >= s.size()) return err = "unterminated label value", false;
      char c = s[i++];
      if (c == '"') break;
      if (c == '\\') {
        if (i >= s.size()) return err = "dangling backslash", false;
        char e = s[i++];
        value += e == 'n' ? '\n' : e;
      } else {
        value += c;
      }
    }
    if (out.count(key)) return err = "label '" + key + "' twice", false;
    out[key] = value;
    if (i < s.size() && s[i] == ',') i++;
  }
}

bool parse_value(const std::string& text, double& v) {
  if (text == "+Inf") return v = INFINITY, true;
  if (text == "-Inf") return v = -INFINITY, true;
  if (text == "NaN") return v = NAN, true;
  char* end = nullptr;
  errno = 0;
  v = std::strtod(text.c_str(), &end);
  return !text.empty() && end == text.c_str() + text.size() && errno == 0;
}

// The family a sample belongs to: name minus a histogram/summary suffix
// when the family with that base name was declared.
std::string family_of(const std::string& name, const std::map<std::string, std::string>& types) {
  if (types.count(name)) return name;
  for (const char* suffix : {"_bucket", "_sum", "_count"}) {
    const std::string sfx = suffix;
    if (name.size() > sfx.size() && name.compare(name.size() - sfx.size(), sfx.size(), sfx) == 0) {
      std::string base = name.substr(0, name.size() - sfx.size());
      if (types.count(base)) return base;
    }
  }
  return {};
}

}  // namespace

PromText parse_prometheus(const std::string& text) {
  PromText p;
  int n = 0;
  for (const auto& line : split_lines(text)) {
    n++;
    if (line.empty()) continue;
    if (line[0] == '#') {
      std::istringstream in(line);
      std::string hash, kw, name, type;
      in >> hash >> kw >> name;
      if (kw == "TYPE") {
        in >> type;
        static const std::set<std::string> kTypes = {"counter", "gauge", "histogram", "summary", "untyped"};
        if (!kTypes.count(type)) p.errors.push_back("line " + std::to_string(n) + ": bad TYPE: " + line);
        if (p.types.count(name)) p.errors.push_back("line " + std::to_string(n) + ": TYPE of " + name + " twice");
        p.types[name] = type;
      }
      continue;
    }
    PromSample s;
    std::size_t i = 0;
    while (i < line.size() && (std::isalnum(static_cast<unsigned char>(line[i])) || line[i] == '_' || line[i] == ':'))
      i++;
    s.name = line.substr(0, i);
    std::string err;
    if (s.name.empty()) err = "no metric name";
    if (err.empty() && i < line.size() && line[i] == '{') parse_labels(line, i, s.labels, err);
    if (err.empty()) {
      if (i >= line.size() || line[i] != ' ') {
        err = "no space before the value";
      } else {
        std::istringstream in(line.substr(i + 1));
        std::string value, ts, extra;
        in >> value >> ts >> extra;
        if (!parse_value(value, s.value)) err = "bad value '" + value + "'";
        if (!extra.empty()) err = "trailing text";
      }
    }
    if (!err.empty()) {
      p.errors.push_back("line " + std::to_string(n) + ": " + err + ": " + line);
      continue;
    }
    if (family_of(s.name, p.types).empty())
      p.errors.push_back("line " + std::to_string(n) + ": sample without a preceding # TYPE: " + line);
    p.samples.push_back(std::move(s));
  }
  return p;
}

std::vector<PromSample> PromText::find(const std::string& name,
                                       const std::map<std::string, std::string>& labels) const {
  std::vector<PromSample> out;
  for (const auto& s : samples) {
    if (s.name != name) continue;
    bool ok = true;
    for (const auto& [k, v] : labels) {
      auto it = s.labels.find(k);
      if (it == s.labels.end() || it->second != v) ok = false;
    }
    if (ok) out.push_back(s);
  }
  return out;
}

std::optional<double> PromText::value(const std::string& name, const std::map<std::string, std::string>& labels) const {
  auto found = find(name, labels);
  if (found.empty()) return std::nullopt;
  if (found.size() > 1) throw std::runtime_error(std::to_string(found.size()) + " samples of " + name + " match");
  return found.front().value;
}

std::vector<std::string> prometheus_shape_problems(const PromText& p) {
  std::vector<std::string> problems = p.errors;
  auto label_text = [](const std::map<std::string, std::string>& l) {
    std::string s;
    for (const auto& [k, v] : l) s += (s.empty() ? "" : ",") + k + "=\"" + v + "\"";
    return "{" + s + "}";
  };
  // Histograms: group buckets by their labels without `le`.
  std::map<std::pair<std::string, std::string>, std::vector<std::pair<double, double>>> buckets;
  std::map<std::pair<std::string, std::string>, double> counts;
  for (const auto& s : p.samples) {
    const std::string fam = family_of(s.name, p.types);
    const std::string type = fam.empty() ? "" : p.types.at(fam);
    if (type == "counter" && !(s.value >= 0))
      problems.push_back("counter " + s.name + label_text(s.labels) + " is " + std::to_string(s.value));
    if (type != "histogram") continue;
    auto labels = s.labels;
    if (s.name == fam + "_bucket") {
      auto le = labels.find("le");
      if (le == labels.end()) {
        problems.push_back("bucket without le: " + s.name + label_text(s.labels));
        continue;
      }
      double bound = 0;
      if (!parse_value(le->second, bound)) problems.push_back("bad le: " + s.name + label_text(s.labels));
      labels.erase(le);
      buckets[{fam, label_text(labels)}].push_back({bound, s.value});
    } else if (s.name == fam + "_count") {
      counts[{fam, label_text(labels)}] = s.value;
    } else if (s.name != fam + "_sum") {
      problems.push_back("histogram sample " + s.name + " is not _bucket, _sum or _count");
    }
  }
  for (const auto& [key, bs] : buckets) {
    const std::string where = key.first + key.second;
    for (std::size_t i = 1; i < bs.size(); i++) {
      if (!(bs[i].first > bs[i - 1].first)) problems.push_back(where + ": le bounds not increasing");
      if (bs[i].second < bs[i - 1].second) problems.push_back(where + ": buckets not cumulative");
    }
    if (bs.empty() || !std::isinf(bs.back().first)) {
      problems.push_back(where + ": last bucket is not le=\"+Inf\"");
      continue;
    }
    auto c = counts.find(key);
    if (c == counts.end())
      problems.push_back(where + ": no _count");
    else if (c->second != bs.back().second)
      problems.push_back(where + ": +Inf bucket " + std::to_string(bs.back().second) + " != _count " +
                         std::to_string(c->second));
  }
  return problems;
}

void create_file(const std::string& path, const std::string& data) {
  std::FILE* f = std::fopen(path.c_str(), "w");
  if (!f) throw std::runtime_error("create " + path + ": " + errno_str(errno));
  const bool ok = std::fwrite(data.data(), 1, data.size(), f) == data.size();
  if (std::fclose(f) != 0 || !ok) throw std::runtime_error("write " + path + ": " + errno_str(errno));
}

std::vector<json> read_json_lines(const std::string& path) {
  std::vector<json> out;
  const std::string text = read_file(path).value_or("");
  std::size_t start = 0;
  int n = 0;
  for (;;) {
    const std::size_t nl = text.find('\n', start);
    if (nl == std::string::npos) break;  // a partial last line is still being written
    n++;
    const std::string line = text.substr(start, nl - start);
    start = nl + 1;
    if (line.empty()) continue;
    try {
      out.push_back(json::parse(line));
    } catch (const std::exception& e) {
      throw std::runtime_error(path + " line " + std::to_string(n) + " is not JSON (" + e.what() +
                               "): " + line.substr(0, 300));
    }
  }
  return out;
}

// ---------------------------------------------------------------------------
// connscope run

namespace {
std::vector<std::string> run_args(const std::vector<std::string>& extra, uint16_t port) {
  std::vector<std::string> a = {"run"};
  for (auto& s : strategy_args()) a.push_back(s);
  a.insert(a.end(), {"--listen", "127.0.0.1:" + std::to_string(port), "--json-out", "{dir}/run.jsonl"});
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}
}  // namespace

RunAgent::RunAgent(const std::vector<std::string>& extra_args) : RunAgent(extra_args, free_local_port()) {}

RunAgent::RunAgent(const std::vector<std::string>& extra_args, uint16_t port)
    : AgentProcess(run_args(extra_args, port), "connscope: running"),
      port_(port),
      json_path_(dir().file("run.jsonl")) {}

// ---------------------------------------------------------------------------
// Snapshot helpers

const json* find_destination(const json& snapshot, uint64_t netns, const std::string& src, const std::string& dst) {
  if (!snapshot.contains("destinations")) return nullptr;
  for (const auto& d : snapshot["destinations"])
    if (d.value("netns", uint64_t{0}) == netns && d.value("src", "") == src && d.value("dst", "") == dst) return &d;
  return nullptr;
}

const json* find_listener(const json& snapshot, uint64_t netns, const std::string& listen) {
  if (!snapshot.contains("listeners")) return nullptr;
  for (const auto& l : snapshot["listeners"])
    if (l.value("netns", uint64_t{0}) == netns && l.value("listen", "") == listen) return &l;
  return nullptr;
}

std::vector<json> find_alerts(const json& alerts, const std::string& rule, std::optional<uint64_t> netns,
                              const std::string& target) {
  std::vector<json> out;
  const json* arr = &alerts;
  if (alerts.is_object()) {
    if (!alerts.contains("alerts")) return out;
    arr = &alerts["alerts"];
  }
  if (!arr->is_array()) return out;
  for (const auto& a : *arr) {
    if (a.value("rule", "") != rule) continue;
    if (netns && a.value("netns", uint64_t{0}) != *netns) continue;
    if (!target.empty() && a.value("target", "") != target) continue;
    out.push_back(a);
  }
  return out;
}

std::string endpoint_label(int af, const std::string& addr, uint16_t port) {
  return (af == AF_INET6 ? "[" + addr + "]" : addr) + ":" + std::to_string(port);
}

int first_firing(const std::vector<json>& lines, const std::string& rule, uint64_t netns, const std::string& target) {
  for (std::size_t i = 0; i < lines.size(); i++)
    for (const auto& a : find_alerts(lines[i], rule, netns, target))
      if (a.value("state", "") == "firing") return static_cast<int>(i);
  return -1;
}

std::string unix_text(double t) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.6f", t);
  return buf;
}

double unix_now() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

}  // namespace itest
