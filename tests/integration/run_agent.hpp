// Running `connscope run` / `connscope record` as a long-lived process for
// the `run: ` tests: stderr and stdout captured to files, a bounded wait for
// the start line, HTTP requests to its endpoint, its JSON-lines output, and a
// small Prometheus text-format parser for /metrics.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "agent_process.hpp"
#include "util.hpp"

namespace itest {

using json = nlohmann::json;

// A TCP port on 127.0.0.1 that was free a moment ago (bind :0, close).
uint16_t free_local_port();
// Whether 127.0.0.1:port can be bound (and listened on) right now.
bool local_port_free(uint16_t port);
// Who holds a TCP listener on `port` in the calling thread's network
// namespace: one "pid N (comm): cmdline" entry per holder, "; "-separated,
// or a note when no process could be found (e.g. a socket of another netns).
std::string who_listens(uint16_t port);

struct HttpResult {
  int status = 0;     // 0 when the request failed
  std::string error;  // httplib's error when status is 0
  std::string body;
  std::string content_type;
  std::string describe() const;
};
// GET http://host:port/path within the bound (connect and read timeouts).
HttpResult http_get(const std::string& host, uint16_t port, const std::string& path, ms timeout = ms(2000));

// One sample line of the Prometheus text format.
struct PromSample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};
struct PromText {
  std::vector<PromSample> samples;
  std::map<std::string, std::string> types;  // # TYPE name type
  std::vector<std::string> errors;           // lines that do not parse, samples without a # TYPE

  // Samples named `name` whose labels include every one of `labels`.
  std::vector<PromSample> find(const std::string& name, const std::map<std::string, std::string>& labels = {}) const;
  // The value of the only such sample; nullopt when there is none (throws
  // when there are several: the labels were not specific enough).
  std::optional<double> value(const std::string& name, const std::map<std::string, std::string>& labels = {}) const;
};
PromText parse_prometheus(const std::string& text);
// Shape checks beyond parsing: every histogram's buckets are cumulative, end
// in le="+Inf" and that bucket equals _count; counters are >= 0. Returns
// the problems found (empty = fine).
std::vector<std::string> prometheus_shape_problems(const PromText& p);

// Create (or truncate) a regular file with `data`; throws on failure.
void create_file(const std::string& path, const std::string& data);

// JSON objects of the complete lines of a file (a partial last line is
// ignored); throws naming the line when one does not parse.
std::vector<json> read_json_lines(const std::string& path);

// `connscope run [--strategy ...] --listen 127.0.0.1:<free port>
// --json-out <tmp>/run.jsonl EXTRA...`, ready at "connscope: running".
class RunAgent : public AgentProcess {
 public:
  explicit RunAgent(const std::vector<std::string>& extra_args);

  uint16_t http_port() const { return port_; }
  const std::string& json_path() const { return json_path_; }
  HttpResult get(const std::string& path, ms timeout = ms(2000)) const {
    return http_get("127.0.0.1", port_, path, timeout);
  }
  // The snapshots written so far (complete lines).
  std::vector<json> snapshots() const { return read_json_lines(json_path_); }

 private:
  RunAgent(const std::vector<std::string>& extra_args, uint16_t port);
  uint16_t port_ = 0;
  std::string json_path_;
};

// Helpers over snapshots (docs/run-json.md).
// The destination row (netns, src, dst labels) of one snapshot, or nullptr.
const json* find_destination(const json& snapshot, uint64_t netns, const std::string& src, const std::string& dst);
// The listener row (netns, listen label) of one snapshot, or nullptr.
const json* find_listener(const json& snapshot, uint64_t netns, const std::string& listen);
// Alerts of one snapshot (or of an /api/v1/alerts array) with this rule,
// and, when given, this netns and target.
std::vector<json> find_alerts(const json& alerts, const std::string& rule, std::optional<uint64_t> netns = {},
                              const std::string& target = {});
// "addr:port", "[addr]:port" for IPv6: the dst / listen label form.
std::string endpoint_label(int af, const std::string& addr, uint16_t port);
// Unix time now (CLOCK_REALTIME), seconds.
double unix_now();
// The first snapshot in which `rule` is firing for the target, or -1.
int first_firing(const std::vector<json>& lines, const std::string& rule, uint64_t netns, const std::string& target);
// Unix seconds with microseconds (doctest messages ignore stream manipulators).
std::string unix_text(double t);

}  // namespace itest
