// The `connscope run` HTTP endpoint (default 127.0.0.1:9464):
//   /metrics            Prometheus text 0.0.4 (docs/metrics.md)
//   /api/v1/snapshot    the last interval's JSON (docs/run-json.md)
//   /api/v1/alerts      firing alerts and those resolved in the last interval
//   /api/v1/heatmap     heatmap rows for Grafana's Infinity data source; 404
//                       for a dst/listen no snapshot in the window had
//   /healthz            200 "ok" while intervals keep closing, else 503
//   /                   a plain-text index
// Publication holds what the endpoints serve, rendered once per interval by
// the aggregator thread; HttpServer serves it from its own threads.
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

namespace httplib {
class Server;
}

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

class HttpServer {
 public:
  // Binds host:port (port 0: an ephemeral port, see port()) and starts
  // serving on its own thread. Throws std::runtime_error with one line, e.g.
  // "cannot listen on 127.0.0.1:9464: Address already in use; pick another with --listen ADDR:PORT".
  HttpServer(Publication& publication, const std::string& host, uint16_t port);
  // Stops accepting, finishes the requests in flight and joins.
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  uint16_t port() const { return port_; }
  // "127.0.0.1:9464", "[::1]:9464"
  std::string address() const;

 private:
  void routes();

  Publication& publication_;
  std::string host_;
  uint16_t port_ = 0;
  std::unique_ptr<httplib::Server> server_;
  std::atomic<bool> loop_exited_{false};
  std::thread thread_;
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
