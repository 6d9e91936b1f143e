// The `connscope run` HTTP endpoint (default 127.0.0.1:9464):
//   /metrics            Prometheus text 0.0.4 (docs/metrics.md)
//   /api/v1/snapshot    the last interval's JSON (docs/run-json.md)
//   /api/v1/alerts      firing alerts and those resolved in the last interval
//   /api/v1/heatmap     heatmap rows for Grafana's Infinity data source; 404
//                       for a dst/listen no snapshot in the window had
//   /healthz            200 "ok" while intervals keep closing, else 503
//   /                   a plain-text index
// Only GET and HEAD are served (others: 405 with Allow); OPTIONS /api/* is a
// CORS preflight, answered only when HttpLimits::cors_origin is set.
// Publication holds what the endpoints serve, rendered once per interval by
// the aggregator thread; HttpServer serves it from its own thread, within
// the limits of HttpLimits (docs/security.md "HTTP endpoint").
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "aggregate/snapshot.hpp"
#include "export/heatmap_history.hpp"
#include "export/prometheus_text.hpp"

namespace connscope {

class Publication {
 public:
  // Monotonic seconds; tests pass a fake.
  using Clock = std::function<double()>;

  // interval_s: the configured --interval (for /healthz); heatmap_retention_s:
  // how far back /api/v1/heatmap can look.
  Publication(BuildInfo build, double interval_s, double heatmap_retention_s = 3600, Clock clock = {});

  // The attach tiers, for /metrics before the first interval closes.
  void set_strategies(const std::vector<StrategyInUse>& strategies);

  // Renders the snapshot's JSON, metrics and alerts outside the lock, then
  // swaps them in and adds the heatmap frames. Called once per interval.
  void publish(const Snapshot& s);

  std::shared_ptr<const std::string> metrics_text() const;
  // nullptr until the first publish.
  std::shared_ptr<const std::string> snapshot_json() const;
  std::shared_ptr<const std::string> alerts_json() const;  // "[]" until the first publish
  HeatmapRows heatmap(HeatmapMetric m, double window_s, const HeatmapScope& scope) const;

  struct Health {
    bool ok = false;
    std::string reason;  // "ok", or why not
  };
  // ok while the last publish (or, before the first one, the construction)
  // is younger than 3 intervals + 2 s.
  Health health() const;
  uint64_t published() const;

 private:
  BuildInfo build_;
  double interval_s_;
  Clock clock_;
  double started_;

  mutable std::mutex mutex_;
  std::shared_ptr<const std::string> metrics_;
  std::shared_ptr<const std::string> snapshot_;
  std::shared_ptr<const std::string> alerts_;
  HeatmapHistory history_;
  std::optional<double> last_publish_;
  double last_interval_s_ = 0;
  uint64_t published_ = 0;
};

// What one client, or all of them, may hold of the server. Any local process
// can connect to the endpoint; these keep /metrics and /healthz answering
// while one of them tries not to let it.
struct HttpLimits {
  // Connections open at once, and from one client address. A new connection
  // over either cap closes the oldest one (counted from the start of the
  // request it is on) of that address, or of all: a scrape is done in
  // milliseconds, so the oldest is the one holding a slot without asking.
  size_t max_connections = 256;
  size_t max_per_address = 64;
  // The whole request head (from accept, or from the end of the previous
  // response on a keep-alive connection), a body, and writing a response:
  // deadlines, not idle timeouts, so sending a byte a second buys nothing.
  double head_timeout_s = 5;
  double body_timeout_s = 5;
  double write_timeout_s = 10;
  size_t max_head_bytes = 8192;   // request line and header fields: over it, 431
  size_t max_body_bytes = 16384;  // a GET or HEAD with a larger body: 413, not read
  // Access-Control-Allow-Origin on /api/*, and OPTIONS preflights there;
  // empty (the default): no CORS headers, OPTIONS is 405.
  std::string cors_origin;
};

class HttpServer {
 public:
  // Binds host:port (port 0: an ephemeral port, see port()) and starts
  // serving on its own thread. Throws std::runtime_error with one line, e.g.
  // "cannot listen on 127.0.0.1:9464: Address already in use; pick another with --listen ADDR:PORT".
  HttpServer(Publication& publication, const std::string& host, uint16_t port, HttpLimits limits = {});
  // Stops accepting, closes every connection and joins.
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  uint16_t port() const { return port_; }
  // "127.0.0.1:9464", "[::1]:9464"
  std::string address() const;

 private:
  class Impl;  // Boost.Asio and Beast stay in http_server.cpp

  std::string host_;
  uint16_t port_ = 0;
  std::unique_ptr<Impl> impl_;
};

// The 400 message for a heatmap query, or nullopt when it is valid; fills
// metric/window/scope. params: the query parameters (first value of each).
struct HeatmapQuery {
  HeatmapMetric metric = HeatmapMetric::handshake;
  double window_s = 300;
  HeatmapScope scope;
};
std::optional<std::string> parse_heatmap_query(const std::function<std::optional<std::string>(const char*)>& param,
                                               HeatmapQuery& query);

}  // namespace connscope
