// The HTTP endpoint (Boost.Beast over Asio): /metrics, /api/v1/*, /healthz over the latest publication, within
// HttpLimits.
#include "export/http_server.hpp"

#include <array>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <list>
#include <stdexcept>
#include <string_view>

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

// ---------------------------------------------------------------- requests

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Request = http::request<http::string_body>;
// Bodies are spans over a shared string: 256 clients slow to read /metrics
// share the one rendering instead of holding a copy each.
using Response = http::response<http::span_body<const char>>;

struct Reply {
  Response res;
  std::shared_ptr<const std::string> body;
  bool close = false;  // refused: the connection ends after this answer
};

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// %XX decoded, and '+' as a space in a query; a malformed escape stays as is.
std::string percent_decode(std::string_view s, bool plus_as_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+' && plus_as_space) {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size() && hex_digit(s[i + 1]) >= 0 && hex_digit(s[i + 2]) >= 0) {
      out += static_cast<char>(hex_digit(s[i + 1]) * 16 + hex_digit(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

// A request target split into its decoded path and query parameters.
struct Target {
  std::string path;
  std::vector<std::pair<std::string, std::string>> params;

  // The first value of key, as the heatmap query wants it.
  std::optional<std::string> param(const char* key) const {
    for (const auto& [k, v] : params)
      if (k == key) return v;
    return std::nullopt;
  }
};

Target split_target(std::string_view target) {
  Target t;
  const size_t q = target.find('?');
  t.path = percent_decode(target.substr(0, q), false);
  if (q == std::string_view::npos) return t;
  std::string_view rest = target.substr(q + 1);
  while (!rest.empty()) {
    const size_t amp = rest.find('&');
    const std::string_view part = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
    if (part.empty()) continue;
    const size_t eq = part.find('=');
    t.params.emplace_back(percent_decode(part.substr(0, eq), true),
                          eq == std::string_view::npos ? std::string() : percent_decode(part.substr(eq + 1), true));
  }
  return t;
}

bool is_api(const std::string& path) { return path.rfind("/api/", 0) == 0; }

// OPTIONS is a CORS preflight: served on /api/* only when CORS is on.
bool method_allowed(http::verb method, const std::string& path, const HttpLimits& limits) {
  if (method == http::verb::get || method == http::verb::head) return true;
  return method == http::verb::options && is_api(path) && !limits.cors_origin.empty();
}

Reply make_reply(http::status status, unsigned version, std::shared_ptr<const std::string> body, const char* type) {
  Reply r{Response(status, version), std::move(body)};
  r.res.set(http::field::content_type, type);
  return r;
}

Reply text_reply(http::status status, unsigned version, std::string body) {
  return make_reply(status, version, std::make_shared<const std::string>(std::move(body)), kTextType);
}

// The answer to a request refused before its body is read; the connection
// closes after it.
Reply refusal(http::status status, unsigned version, std::string message) {
  Reply r = text_reply(status, version, std::move(message) + "\n");
  r.close = true;
  return r;
}

Reply method_not_allowed(const Request& req, const std::string& path, const HttpLimits& limits) {
  const bool preflight = is_api(path) && !limits.cors_origin.empty();
  Reply r = refusal(http::status::method_not_allowed, req.version(),
                    "method " + std::string(req.method_string()) +
                        " not allowed: " + (preflight ? "GET, HEAD or OPTIONS" : "GET or HEAD"));
  r.res.set(http::field::allow, preflight ? "GET, HEAD, OPTIONS" : "GET, HEAD");
  return r;
}

Reply route(Publication& pub, const HttpLimits& limits, const Request& req, const Target& t) {
  const unsigned v = req.version();
  const bool cors = is_api(t.path) && !limits.cors_origin.empty();
  Reply r = [&]() -> Reply {
    if (req.method() == http::verb::options) {
      Reply p = make_reply(http::status::no_content, v, nullptr, kTextType);
      p.res.erase(http::field::content_type);
      p.res.set(http::field::access_control_allow_methods, "GET, HEAD, OPTIONS");
      p.res.set(http::field::access_control_allow_headers, "*");
      return p;
    }
    if (t.path == "/metrics") return make_reply(http::status::ok, v, pub.metrics_text(), kMetricsType);
    if (t.path == "/api/v1/snapshot") {
      auto text = pub.snapshot_json();
      if (!text)
        return make_reply(http::status::service_unavailable, v,
                          std::make_shared<const std::string>(error_body("no interval closed yet")), kJsonType);
      return make_reply(http::status::ok, v, std::move(text), kJsonType);
    }
    if (t.path == "/api/v1/alerts") return make_reply(http::status::ok, v, pub.alerts_json(), kJsonType);
    if (t.path == "/api/v1/heatmap") {
      HeatmapQuery query;
      if (const auto error = parse_heatmap_query([&t](const char* key) { return t.param(key); }, query))
        return make_reply(http::status::bad_request, v, std::make_shared<const std::string>(error_body(*error, true)),
                          kJsonType);
      const HeatmapRows rows = pub.heatmap(query.metric, query.window_s, query.scope);
      if (!rows.seen)
        return make_reply(http::status::not_found, v,
                          std::make_shared<const std::string>(error_body(scope_not_found(query))), kJsonType);
      return make_reply(http::status::ok, v, std::make_shared<const std::string>(dump_json(heatmap_rows_json(rows))),
                        kJsonType);
    }
    if (t.path == "/healthz") {
      const Publication::Health h = pub.health();
      return text_reply(h.ok ? http::status::ok : http::status::service_unavailable, v, h.reason + "\n");
    }
    if (t.path == "/") return make_reply(http::status::ok, v, std::make_shared<const std::string>(kIndex), kTextType);
    return text_reply(http::status::not_found, v, "not found: " + t.path + " (GET / lists the endpoints)\n");
  }();
  if (cors) r.res.set(http::field::access_control_allow_origin, limits.cors_origin);
  return r;
}

}  // namespace

// ---------------------------------------------------------------- HttpServer

// One thread runs every connection through Asio: concurrency is one request
// at a time (each is a lookup of a rendered string, or one heatmap), and a
// slow client costs a socket and a few KiB, never a thread.
class HttpServer::Impl {
 public:
  class Session;

  Impl(Publication& pub, HttpLimits limits) : pub_(pub), limits_(std::move(limits)) {}

  void bind(const std::string& host, uint16_t port);
  void start();
  void stop();
  uint16_t port() const { return acceptor_.local_endpoint().port(); }

  Publication& pub_;
  const HttpLimits limits_;
  // Open connections, oldest first by when each started its current request
  // (a session moves to the back when it starts a new one).
  std::list<Session*> sessions_;
  asio::io_context ioc_{1};
  tcp::acceptor acceptor_{ioc_};
  asio::steady_timer retry_{ioc_};
  std::thread thread_;

 private:
  void accept();
  void admit(tcp::socket socket);
};

class HttpServer::Impl::Session : public std::enable_shared_from_this<Session> {
 public:
  Session(Impl& server, tcp::socket socket) : server_(server), stream_(std::move(socket)) {
    beast::error_code ec;
    const auto peer = stream_.socket().remote_endpoint(ec);
    if (!ec) peer_ = peer.address();
    listed_ = server_.sessions_.insert(server_.sessions_.end(), this);
  }
  ~Session() { close(); }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  const asio::ip::address& peer() const { return peer_; }

  void read_head() {
    server_.sessions_.splice(server_.sessions_.end(), server_.sessions_, *listed_);
    parser_.emplace();
    parser_->header_limit(static_cast<uint32_t>(server_.limits_.max_head_bytes));
    // The body limit is checked against Content-Length by hand once the
    // method is known, so a POST is a 405, whatever it would send.
    parser_->body_limit(std::numeric_limits<uint64_t>::max());
    stream_.expires_after(seconds(server_.limits_.head_timeout_s));
    http::async_read_header(stream_, buffer_, *parser_,
                            [self = shared_from_this()](beast::error_code ec, size_t) { self->on_head(ec); });
  }

  // Closes the socket: pending reads and writes end with operation_aborted
  // and drop their hold on the session.
  void close() {
    if (!listed_) return;
    server_.sessions_.erase(*listed_);
    listed_.reset();
    beast::error_code ec;
    stream_.socket().close(ec);
  }

 private:
  static std::chrono::steady_clock::duration seconds(double s) {
    return std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(s));
  }

  void on_head(beast::error_code ec) {
    if (!listed_) return;
    if (ec == http::error::header_limit || ec == http::error::buffer_overflow) {
      return send(
          refusal(http::status::request_header_fields_too_large, 11,
                  "request line and header fields over " + std::to_string(server_.limits_.max_head_bytes) + " bytes"));
    }
    if (ec.category() == http::make_error_code(http::error::bad_target).category() &&
        ec != http::error::end_of_stream && ec != http::error::partial_message)
      return send(refusal(http::status::bad_request, 11, "bad request: " + ec.message()));
    if (ec) return close();  // the deadline, or the client went away
    const Request& req = parser_->get();
    target_ = split_target(std::string_view(req.target().data(), req.target().size()));
    if (!method_allowed(req.method(), target_.path, server_.limits_))
      return send(method_not_allowed(req, target_.path, server_.limits_));
    const size_t cap = server_.limits_.max_body_bytes;
    if (parser_->content_length() && *parser_->content_length() > cap)
      return send(refusal(http::status::payload_too_large, req.version(),
                          "request body over " + std::to_string(cap) + " bytes"));
    if (parser_->is_done()) return respond();
    parser_->body_limit(cap);  // a chunked body
    stream_.expires_after(seconds(server_.limits_.body_timeout_s));
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, size_t) { self->on_body(ec); });
  }

  void on_body(beast::error_code ec) {
    if (!listed_) return;
    if (ec == http::error::body_limit)
      return send(refusal(http::status::payload_too_large, parser_->get().version(),
                          "request body over " + std::to_string(server_.limits_.max_body_bytes) + " bytes"));
    if (ec) return close();
    respond();
  }

  void respond() {
    const Request& req = parser_->get();
    Reply r = [&] {
      try {
        return route(server_.pub_, server_.limits_, req, target_);
      } catch (const std::exception& e) {
        return refusal(http::status::internal_server_error, req.version(), std::string("error: ") + e.what());
      }
    }();
    r.res.keep_alive(!r.close && req.keep_alive());
    send(std::move(r), req.method() == http::verb::head);
  }

  void send(Reply r, bool head = false) {
    reply_ = std::move(r);
    if (reply_->close) reply_->res.keep_alive(false);
    const std::string_view body = reply_->body ? std::string_view(*reply_->body) : std::string_view();
    if (head) {
      reply_->res.content_length(body.size());
    } else {
      reply_->res.body() = Response::body_type::value_type(body.data(), body.size());
      if (reply_->body || reply_->res.result() != http::status::no_content) reply_->res.prepare_payload();
    }
    stream_.expires_after(seconds(server_.limits_.write_timeout_s));
    http::async_write(stream_, reply_->res,
                      [self = shared_from_this()](beast::error_code ec, size_t) { self->on_written(ec); });
  }

  void on_written(beast::error_code ec) {
    if (!listed_) return;
    const bool keep = !ec && !reply_->close && reply_->res.keep_alive();
    const bool refused = !parser_->is_done();
    reply_.reset();
    if (ec) return close();
    if (keep) return read_head();
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    if (!refused) return close();
    // Refused before its body was read: drain a little for a second, so the
    // client can read the answer instead of a reset, then close.
    drained_ = 0;
    stream_.expires_after(std::chrono::seconds(1));
    drain();
  }

  void drain() {
    stream_.async_read_some(asio::buffer(scratch_), [self = shared_from_this()](beast::error_code ec, size_t n) {
      self->drained_ += n;
      if (ec || self->drained_ > (1u << 20)) return self->close();
      self->drain();
    });
  }

  Impl& server_;
  beast::tcp_stream stream_;
  asio::ip::address peer_;
  beast::flat_buffer buffer_{16384};
  std::optional<http::request_parser<http::string_body>> parser_;
  Target target_;
  std::optional<Reply> reply_;
  std::optional<std::list<Session*>::iterator> listed_;
  std::array<char, 4096> scratch_{};
  size_t drained_ = 0;
};

void HttpServer::Impl::bind(const std::string& host, uint16_t port) {
  beast::error_code ec;
  tcp::resolver resolver(ioc_);
  const auto endpoints =
      resolver.resolve(host, std::to_string(port), tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  std::string why = ec ? ec.message() : "no address";
  for (const auto& entry : endpoints) {
    acceptor_.open(entry.endpoint().protocol(), ec);
    if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(entry.endpoint(), ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (!ec) return;
    why = ec.message();
    beast::error_code ignored;
    acceptor_.close(ignored);
  }
  throw std::runtime_error("cannot listen on " + host_port(host, port) + ": " + why +
                           "; pick another with --listen ADDR:PORT");
}

void HttpServer::Impl::start() {
  accept();
  thread_ = std::thread([this] {
    // A handler that throws ends only its own connection.
    for (;;) {
      try {
        ioc_.run();
        return;
      } catch (const std::exception& e) {
        std::fprintf(stderr, "connscope: HTTP: %s\n", e.what());
      }
    }
  });
}

void HttpServer::Impl::stop() {
  asio::post(ioc_, [this] {
    beast::error_code ignored;
    acceptor_.close(ignored);
    retry_.cancel();
    while (!sessions_.empty()) sessions_.front()->close();
  });
  if (thread_.joinable()) thread_.join();
}

void HttpServer::Impl::accept() {
  acceptor_.async_accept([this](beast::error_code ec, tcp::socket socket) {
    if (!acceptor_.is_open()) return;
    if (ec == asio::error::no_descriptors || ec == asio::error::no_buffer_space || ec == asio::error::no_memory) {
      // Out of files: wait instead of spinning on a full accept queue.
      retry_.expires_after(std::chrono::milliseconds(100));
      retry_.async_wait([this](beast::error_code wait_ec) {
        if (!wait_ec) accept();
      });
      return;
    }
    if (!ec) admit(std::move(socket));
    accept();
  });
}

// Over a cap, the oldest connection of that address (or of all) makes room:
// refusing the newcomer instead would let whoever holds the slots keep them.
void HttpServer::Impl::admit(tcp::socket socket) {
  auto session = std::make_shared<Session>(*this, std::move(socket));
  size_t same = 0;
  Session* oldest_same = nullptr;
  for (Session* s : sessions_) {
    if (s == session.get() || s->peer() != session->peer()) continue;
    if (!oldest_same) oldest_same = s;
    ++same;
  }
  if (same >= limits_.max_per_address && oldest_same) {
    oldest_same->close();
  } else if (sessions_.size() > limits_.max_connections && sessions_.front() != session.get()) {
    sessions_.front()->close();
  }
  session->read_head();
}

HttpServer::HttpServer(Publication& publication, const std::string& host, uint16_t port, HttpLimits limits)
    : host_(host), impl_(std::make_unique<Impl>(publication, std::move(limits))) {
  impl_->bind(host, port);
  port_ = impl_->port();
  impl_->start();
}

HttpServer::~HttpServer() { impl_->stop(); }

std::string HttpServer::address() const { return host_port(host_, port_); }

}  // namespace connscope
