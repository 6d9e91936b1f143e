// The HTTP endpoint: /metrics, /api/v1/*, /healthz over the latest publication.
#include "export/http_server.hpp"

#include <httplib.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "export/snapshot_json.hpp"

namespace connscope {

namespace {

constexpr const char* kMetricsType = "text/plain; version=0.0.4; charset=utf-8";
constexpr const char* kJsonType = "application/json";
constexpr const char* kTextType = "text/plain; charset=utf-8";
constexpr const char* kHeatmapUsage =
    "/api/v1/heatmap?metric=METRIC[&window=5m][&dst=ADDR:PORT[&netns=N][&src=ADDR] | &listen=ADDR:PORT[&netns=N]]";

constexpr const char* kIndex =
    "connscope\n"
    "\n"
    "/metrics            Prometheus text format 0.0.4 (docs/metrics.md)\n"
    "/api/v1/snapshot    the last closed interval as JSON (docs/run-json.md)\n"
    "/api/v1/alerts      firing alerts and those resolved in the last interval (JSON)\n"
    "/api/v1/heatmap     heatmap rows for Grafana Infinity:\n"
    "                    ?metric=handshake|port_search|connect_syscall|accept_queue_fill&window=5m\n"
    "                    [&dst=ADDR:PORT[&netns=N][&src=ADDR]] or [&listen=ADDR:PORT[&netns=N]]\n"
    "/healthz            200 ok while intervals keep closing, 503 otherwise\n";

double steady_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::string host_port(const std::string& host, uint16_t port) {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

// Why binding host:port fails, found by trying it with a plain socket
// (httplib reports only failure). Empty when the retry succeeds.
std::string bind_error(const std::string& host, uint16_t port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  const std::string service = std::to_string(port);
  const int gai = getaddrinfo(host.empty() ? nullptr : host.c_str(), service.c_str(), &hints, &res);
  if (gai != 0) return gai_strerror(gai);
  std::string error;
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    const int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      error = std::strerror(errno);
      continue;
    }
    const int yes = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 1) == 0) {
      close(fd);
      error.clear();
      break;
    }
    error = std::strerror(errno);
    close(fd);
  }
  freeaddrinfo(res);
  return error;
}

std::string error_body(const std::string& message, bool heatmap_usage = false) {
  nlohmann::ordered_json body = nlohmann::ordered_json::object();
  body["error"] = message;
  if (heatmap_usage) {
    nlohmann::ordered_json metrics = nlohmann::ordered_json::array();
    for (HeatmapMetric m : kHeatmapMetrics) metrics.push_back(heatmap_metric_name(m));
    body["valid_metrics"] = std::move(metrics);
    body["usage"] = kHeatmapUsage;
  }
  return dump_json(body);
}

std::string metric_list() {
  std::string out;
  for (HeatmapMetric m : kHeatmapMetrics) {
    if (!out.empty()) out += ", ";
    out += heatmap_metric_name(m);
  }
  return out;
}

std::optional<uint32_t> parse_u32(const std::string& s) {
  uint32_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

// "5m", "1h", "90s", "1.5s", "500ms": how a window reads in a message.
std::string duration_text(double s) {
  char buf[32];
  if (s >= 60 && std::fmod(s, 86400) == 0)
    std::snprintf(buf, sizeof(buf), "%.0fd", s / 86400);
  else if (s >= 60 && std::fmod(s, 3600) == 0)
    std::snprintf(buf, sizeof(buf), "%.0fh", s / 3600);
  else if (s >= 60 && std::fmod(s, 60) == 0)
    std::snprintf(buf, sizeof(buf), "%.0fm", s / 60);
  else if (s < 1)
    std::snprintf(buf, sizeof(buf), "%gms", s * 1000);
  else
    std::snprintf(buf, sizeof(buf), "%gs", s);
  return buf;
}

// The 404 message for a destination or listener no snapshot in the window had.
std::string scope_not_found(const HeatmapQuery& q) {
  const bool listener = q.scope.kind == HeatmapScope::Kind::listener;
  std::string where = "netns " + (q.scope.netns ? std::to_string(*q.scope.netns) : std::string("any"));
  if (q.scope.src) where += ", src " + *q.scope.src;
  const char* what = listener ? "listener" : "destination";
  const char* field = listener ? "listeners" : "destinations";
  return std::string("no ") + what + " " + q.scope.label + " (" + where + ") in the last " + duration_text(q.window_s) +
         ": see " + field + " in /api/v1/snapshot for the known ones";
}

void cors(httplib::Response& res) { res.set_header("Access-Control-Allow-Origin", "*"); }

}  // namespace

// ---------------------------------------------------------------- Publication

Publication::Publication(BuildInfo build, double interval_s, double heatmap_retention_s, Clock clock)
    : build_(std::move(build)),
      interval_s_(interval_s),
      clock_(clock ? std::move(clock) : Clock(steady_seconds)),
      started_(clock_()),
      metrics_(std::make_shared<const std::string>(render_prometheus_info(build_, {}))),
      alerts_(std::make_shared<const std::string>("[]")),
      history_(heatmap_retention_s) {}

void Publication::set_strategies(const std::vector<StrategyInUse>& strategies) {
  auto text = std::make_shared<const std::string>(render_prometheus_info(build_, strategies));
  std::lock_guard lock(mutex_);
  if (published_ == 0) metrics_ = std::move(text);
}

void Publication::publish(const Snapshot& s) {
  auto metrics = std::make_shared<const std::string>(render_prometheus(s, build_));
  auto snapshot = std::make_shared<const std::string>(dump_json(snapshot_to_json(s)));
  auto alerts = std::make_shared<const std::string>(dump_json(alerts_to_json(s.alerts)));
  std::lock_guard lock(mutex_);
  metrics_ = std::move(metrics);
  snapshot_ = std::move(snapshot);
  alerts_ = std::move(alerts);
  history_.add(s);
  last_publish_ = clock_();
  last_interval_s_ = s.interval_s;
  ++published_;
}

std::shared_ptr<const std::string> Publication::metrics_text() const {
  std::lock_guard lock(mutex_);
  return metrics_;
}

std::shared_ptr<const std::string> Publication::snapshot_json() const {
  std::lock_guard lock(mutex_);
  return snapshot_;
}

std::shared_ptr<const std::string> Publication::alerts_json() const {
  std::lock_guard lock(mutex_);
  return alerts_;
}

HeatmapRows Publication::heatmap(HeatmapMetric m, double window_s, const HeatmapScope& scope) const {
  std::lock_guard lock(mutex_);
  return history_.collect(m, window_s, scope);
}

uint64_t Publication::published() const {
  std::lock_guard lock(mutex_);
  return published_;
}

Publication::Health Publication::health() const {
  std::optional<double> last;
  double interval = interval_s_;
  {
    std::lock_guard lock(mutex_);
    last = last_publish_;
    if (last_interval_s_ > interval) interval = last_interval_s_;
  }
  const double limit = 3 * interval + 2;
  const double now = clock_();
  char buf[160];
  if (!last) {
    const double age = now - started_;
    if (age < limit) return {true, "ok"};
    std::snprintf(buf, sizeof(buf), "no interval closed in %.1f s since start (limit %.1f s: 3 intervals + 2 s)", age,
                  limit);
    return {false, buf};
  }
  const double age = now - *last;
  if (age < limit) return {true, "ok"};
  std::snprintf(buf, sizeof(buf), "last interval closed %.1f s ago (limit %.1f s: 3 intervals + 2 s)", age, limit);
  return {false, buf};
}

// ---------------------------------------------------------------- queries

std::optional<std::string> parse_heatmap_query(const std::function<std::optional<std::string>(const char*)>& param,
                                               HeatmapQuery& query) {
  const auto metric = param("metric");
  if (!metric) return "missing parameter metric: one of " + metric_list();
  const auto m = heatmap_metric_from_name(*metric);
  if (!m) return "bad parameter metric=\"" + *metric + "\": valid metrics are " + metric_list();
  query.metric = *m;

  query.window_s = 300;
  if (const auto window = param("window")) {
    const auto w = parse_duration(*window);
    if (!w || !(*w > 0))
      return "bad parameter window=\"" + *window + "\": a positive duration like 300, 300s, 5m, 1h, 500ms";
    query.window_s = *w;
  }

  const auto dst = param("dst");
  const auto listen = param("listen");
  const auto src = param("src");
  const auto netns_text = param("netns");
  if (dst && listen) return std::string("parameters dst and listen exclude each other: pick one scope");
  if (src && !dst) return std::string("parameter src needs dst (src narrows a destination)");
  if (netns_text && !dst && !listen) return std::string("parameter netns needs dst or listen");
  std::optional<uint32_t> netns;
  if (netns_text) {
    netns = parse_u32(*netns_text);
    if (!netns) return "bad parameter netns=\"" + *netns_text + "\": a network namespace inode number";
  }
  if (dst) {
    if (dst->empty()) return std::string("bad parameter dst=\"\": a dst label like 10.0.0.2:443 or other");
    query.scope = HeatmapScope::destination(*dst, netns, src);
  } else if (listen) {
    if (listen->empty()) return std::string("bad parameter listen=\"\": a listen label like 0.0.0.0:8080");
    query.scope = HeatmapScope::listener(*listen, netns);
  } else {
    query.scope = HeatmapScope::overall();
  }
  if (!heatmap_scope_has_metric(query.scope.kind, query.metric)) {
    if (query.scope.kind == HeatmapScope::Kind::listener)
      return "bad parameter metric=\"" + *metric +
             "\" with listen: listeners have accept_queue_fill frames only; valid metrics are " + metric_list();
    return "bad parameter metric=\"" + *metric +
           "\" with dst: destinations have handshake, port_search and connect_syscall frames; valid metrics are " +
           metric_list();
  }
  return std::nullopt;
}

// ---------------------------------------------------------------- HttpServer

HttpServer::HttpServer(Publication& publication, const std::string& host, uint16_t port)
    : publication_(publication), host_(host), server_(std::make_unique<httplib::Server>()) {
  server_->new_task_queue = [] { return new httplib::ThreadPool(4); };
  // Idle keep-alive connections hold a worker (and the destructor) this long.
  server_->set_keep_alive_timeout(1);
  server_->set_read_timeout(5);
  server_->set_write_timeout(5);
  routes();

  int bound = -1;
  if (port == 0) {
    bound = server_->bind_to_any_port(host);
  } else if (server_->bind_to_port(host, port)) {
    bound = port;
  }
  if (bound <= 0) {
    std::string why = bind_error(host, port);
    if (why.empty()) why = "bind failed";
    throw std::runtime_error("cannot listen on " + host_port(host, port) + ": " + why +
                             "; pick another with --listen ADDR:PORT");
  }
  port_ = static_cast<uint16_t>(bound);
  thread_ = std::thread([this] {
    server_->listen_after_bind();
    loop_exited_ = true;
  });
  // stop() is a no-op until the accept loop runs: wait for it, so the
  // destructor cannot miss it.
  while (!server_->is_running() && !loop_exited_) std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

HttpServer::~HttpServer() {
  server_->stop();
  if (thread_.joinable()) thread_.join();
}

std::string HttpServer::address() const { return host_port(host_, port_); }

void HttpServer::routes() {
  httplib::Server& s = *server_;
  Publication& pub = publication_;

  s.Get("/metrics", [&pub](const httplib::Request&, httplib::Response& res) {
    res.set_content(*pub.metrics_text(), kMetricsType);
  });

  s.Get("/api/v1/snapshot", [&pub](const httplib::Request&, httplib::Response& res) {
    cors(res);
    const auto text = pub.snapshot_json();
    if (!text) {
      res.status = 503;
      res.set_content(error_body("no interval closed yet"), kJsonType);
      return;
    }
    res.set_content(*text, kJsonType);
  });

  s.Get("/api/v1/alerts", [&pub](const httplib::Request&, httplib::Response& res) {
    cors(res);
    res.set_content(*pub.alerts_json(), kJsonType);
  });

  s.Get("/api/v1/heatmap", [&pub](const httplib::Request& req, httplib::Response& res) {
    cors(res);
    HeatmapQuery query;
    const auto error = parse_heatmap_query(
        [&req](const char* key) -> std::optional<std::string> {
          if (!req.has_param(key)) return std::nullopt;
          return req.get_param_value(key);
        },
        query);
    if (error) {
      res.status = 400;
      res.set_content(error_body(*error, true), kJsonType);
      return;
    }
    const HeatmapRows rows = pub.heatmap(query.metric, query.window_s, query.scope);
    if (!rows.seen) {
      res.status = 404;
      res.set_content(error_body(scope_not_found(query)), kJsonType);
      return;
    }
    res.set_content(dump_json(heatmap_rows_json(rows)), kJsonType);
  });

  s.Options(R"(/api/.*)", [](const httplib::Request&, httplib::Response& res) {
    cors(res);
    res.set_header("Access-Control-Allow-Methods", "GET, OPTIONS");
    res.set_header("Access-Control-Allow-Headers", "*");
    res.status = 204;
  });

  s.Get("/healthz", [&pub](const httplib::Request&, httplib::Response& res) {
    const Publication::Health h = pub.health();
    res.status = h.ok ? 200 : 503;
    res.set_content(h.reason + "\n", kTextType);
  });

  s.Get("/", [](const httplib::Request&, httplib::Response& res) { res.set_content(kIndex, kTextType); });

  s.set_error_handler(httplib::Server::HandlerWithResponse([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    if (res.status == 404)
      res.set_content("not found: " + req.path + " (GET / lists the endpoints)\n", kTextType);
    else
      res.set_content("error " + std::to_string(res.status) + "\n", kTextType);
    return httplib::Server::HandlerResponse::Handled;
  }));
}

}  // namespace connscope
