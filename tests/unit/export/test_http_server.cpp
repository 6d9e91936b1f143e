// Unit tests: the HTTP endpoint over real loopback sockets.
#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "export/http_server.hpp"
#include "snapshot_fixture.hpp"

using namespace connscope;
using namespace connscope::test;

namespace {

const BuildInfo kBuild{"0.3.0", "6.1.0-27-amd64"};

// A fake monotonic clock the tests move by hand.
struct FakeClock {
  std::shared_ptr<std::atomic<double>> now = std::make_shared<std::atomic<double>>(1000.0);
  Publication::Clock fn() const {
    auto n = now;
    return [n] { return n->load(); };
  }
  void advance(double s) const { now->store(now->load() + s); }
};

std::string header(const httplib::Result& r, const char* name) { return r->get_header_value(name); }

nlohmann::json json_of(const httplib::Result& r) { return nlohmann::json::parse(r->body); }

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// A client socket that speaks raw bytes, for what httplib will not send:
// unfinished heads, huge bodies, oversized lines. src: the local address
// (anywhere in 127.0.0.0/8), so tests can be many clients or one.
class RawClient {
 public:
  RawClient(uint16_t port, const char* src = "127.0.0.1") {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    inet_pton(AF_INET, src, &a.sin_addr);
    if (fd_ >= 0 && bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) reset();
    a.sin_port = htons(port);
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (fd_ >= 0 && connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) reset();
  }
  ~RawClient() { reset(); }
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;
  RawClient(RawClient&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }

  bool ok() const { return fd_ >= 0; }
  bool send_all(std::string_view data) {
    while (!data.empty()) {
      const ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }
  // Whether the server has answered or closed (readable), waiting up to ms.
  bool readable(int ms) const {
    pollfd p{fd_, POLLIN, 0};
    return poll(&p, 1, ms) == 1;
  }
  // Everything until the server closes, or limit_s passes.
  std::string read_all(double limit_s) {
    std::string out;
    const auto start = std::chrono::steady_clock::now();
    char buf[16384];
    while (seconds_since(start) < limit_s) {
      if (!readable(50)) continue;
      const ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    return out;
  }
  // True once a read sees the end of the stream (or a reset).
  bool closed_by_server() {
    char c;
    const ssize_t n = ::recv(fd_, &c, 1, MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
  }

 private:
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  int fd_ = -1;
};

// "HTTP/1.1 431 Request..." -> 431; 0 for no status line.
int status_of(const std::string& response) {
  int status = 0;
  if (std::sscanf(response.c_str(), "HTTP/1.%*d %d", &status) != 1) return 0;
  return status;
}

std::string header_of(const std::string& response, const std::string& name) {
  const std::string key = "\r\n" + name + ": ";
  const size_t at = response.find(key);
  if (at == std::string::npos) return {};
  const size_t from = at + key.size();
  return response.substr(from, response.find("\r\n", from) - from);
}

// The peak resident set of this process, in KiB (VmHWM).
long peak_rss_kib() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
  return -1;
}

// GET path on a fresh connection: the status, or 0 when unanswered in 1 s.
int get_within_1s(uint16_t port, const char* path, double* took = nullptr) {
  httplib::Client cli("127.0.0.1", port);
  cli.set_connection_timeout(1);
  cli.set_read_timeout(1);
  const auto start = std::chrono::steady_clock::now();
  auto r = cli.Get(path);
  if (took) *took = seconds_since(start);
  return r ? r->status : 0;
}

}  // namespace

TEST_CASE("HTTP endpoints before the first interval closes") {
  FakeClock clock;
  Publication pub(kBuild, 1.0, 600, clock.fn());
  pub.set_strategies(make_fixture_snapshot().health.strategies);
  HttpServer server(pub, "127.0.0.1", 0);
  REQUIRE(server.port() != 0);
  CHECK(server.address() == "127.0.0.1:" + std::to_string(server.port()));
  httplib::Client cli("127.0.0.1", server.port());

  auto r = cli.Get("/metrics");
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(header(r, "Content-Type") == "text/plain; version=0.0.4; charset=utf-8");
  CHECK(r->body.find("connscope_build_info{version=\"0.3.0\",kernel=\"6.1.0-27-amd64\"} 1\n") != std::string::npos);
  CHECK(r->body.find("connscope_strategy_info{family=\"accept_queue\",strategy=\"fallback\"} 1\n") !=
        std::string::npos);
  CHECK(r->body.find("connscope_connect_attempts_total") == std::string::npos);

  r = cli.Get("/api/v1/snapshot");
  REQUIRE(r);
  CHECK(r->status == 503);
  CHECK(header(r, "Content-Type") == "application/json");
  CHECK(header(r, "Access-Control-Allow-Origin").empty());
  CHECK(json_of(r) == nlohmann::json{{"error", "no interval closed yet"}});

  r = cli.Get("/api/v1/alerts");
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->body == "[]");

  r = cli.Get("/api/v1/heatmap?metric=handshake");
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->body == "[]");

  // Starting up: healthy for 3 intervals + 2 s, then not.
  r = cli.Get("/healthz");
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->body == "ok\n");
  clock.advance(5.5);
  r = cli.Get("/healthz");
  REQUIRE(r);
  CHECK(r->status == 503);
  CHECK(header(r, "Content-Type") == "text/plain; charset=utf-8");
  CHECK(r->body == "no interval closed in 5.5 s since start (limit 5.0 s: 3 intervals + 2 s)\n");
}

TEST_CASE("HTTP endpoints serve the published snapshot") {
  FakeClock clock;
  Publication pub(kBuild, 1.0, 600, clock.fn());
  HttpServer server(pub, "127.0.0.1", 0);
  httplib::Client cli("127.0.0.1", server.port());
  for (int i = 0; i < 5; ++i) {
    pub.publish(make_fixture_snapshot(40 + i, kFixtureTimestamp - 4 + i));
    clock.advance(1);
  }
  CHECK(pub.published() == 5);

  auto r = cli.Get("/metrics");
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(header(r, "Content-Type") == "text/plain; version=0.0.4; charset=utf-8");
  CHECK(r->body == render_prometheus(make_fixture_snapshot(44, kFixtureTimestamp), kBuild));
  CHECK(header(r, "Access-Control-Allow-Origin").empty());

  r = cli.Get("/api/v1/snapshot");
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(header(r, "Content-Type") == "application/json");
  CHECK(header(r, "Access-Control-Allow-Origin").empty());
  auto j = json_of(r);
  CHECK(j["seq"] == 44);
  CHECK(j["timestamp"] == kFixtureTimestamp);

  r = cli.Get("/api/v1/alerts");
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(header(r, "Access-Control-Allow-Origin").empty());
  j = json_of(r);
  REQUIRE(j.size() == 2);
  CHECK(j[0]["rule"] == "ephemeral_ports_critical");

  r = cli.Get("/api/v1/heatmap?metric=handshake&window=3s");
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(header(r, "Access-Control-Allow-Origin").empty());
  j = json_of(r);
  REQUIRE(j.size() == 3);
  CHECK(j[2]["time"] == static_cast<int64_t>(kFixtureTimestamp * 1000));
  CHECK(j[2].size() == 1 + heatmap_layout(HeatmapMetric::handshake).size());
  const std::string body = r->body;
  CHECK(body.find("{\"time\":") == 1);  // time first, then the buckets in le order
  CHECK(body.find("\"1e-06\"") < body.find("\"10\""));
  CHECK(body.find("\"10\"") < body.find("\"+Inf\""));

  httplib::Params params{{"metric", "port_search"},
                         {"window", "5m"},
                         {"dst", "[fd00::2]:8443"},
                         {"netns", std::to_string(kAppNetns)},
                         {"src", "fd00::1"}};
  r = cli.Get("/api/v1/heatmap", params, {});
  REQUIRE(r);
  CHECK(r->status == 200);
  j = json_of(r);
  REQUIRE(j.size() == 5);
  uint64_t total = 0;
  for (const auto& [k, v] : j[4].items())
    if (k != "time") total += v.get<uint64_t>();
  CHECK(total == make_fixture_snapshot(44, kFixtureTimestamp).destinations[1].port_search.interval.count());

  r = cli.Get("/api/v1/heatmap?metric=accept_queue_fill&listen=0.0.0.0%3A8080&window=300");
  REQUIRE(r);
  CHECK(r->status == 200);
  j = json_of(r);
  REQUIRE(j.size() == 5);
  CHECK(j[4]["+Inf"] == 1);

  r = cli.Get("/healthz");
  REQUIRE(r);
  CHECK(r->status == 200);
  clock.advance(4.5);
  r = cli.Get("/healthz");
  REQUIRE(r);
  CHECK(r->status == 503);
  CHECK(r->body == "last interval closed 5.5 s ago (limit 5.0 s: 3 intervals + 2 s)\n");
  pub.publish(make_fixture_snapshot(45, kFixtureTimestamp + 1));
  r = cli.Get("/healthz");
  REQUIRE(r);
  CHECK(r->status == 200);

  r = cli.Get("/");
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(header(r, "Content-Type") == "text/plain; charset=utf-8");
  for (const char* path : {"/metrics", "/api/v1/snapshot", "/api/v1/alerts", "/api/v1/heatmap", "/healthz"})
    CHECK_MESSAGE(r->body.find(path) != std::string::npos, path);

  r = cli.Get("/nope");
  REQUIRE(r);
  CHECK(r->status == 404);
  CHECK(r->body == "not found: /nope (GET / lists the endpoints)\n");

  // No CORS unless asked for: OPTIONS is a method like any other.
  r = cli.Options("/api/v1/heatmap");
  REQUIRE(r);
  CHECK(r->status == 405);
  CHECK(header(r, "Allow") == "GET, HEAD");
  CHECK(header(r, "Access-Control-Allow-Origin").empty());
}

TEST_CASE("bad heatmap queries get 400 with a message naming the parameter") {
  Publication pub(kBuild, 1.0);
  pub.publish(make_fixture_snapshot());
  HttpServer server(pub, "127.0.0.1", 0);
  httplib::Client cli("127.0.0.1", server.port());
  const std::string metrics = "handshake, port_search, connect_syscall, accept_queue_fill";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "missing parameter metric: one of " + metrics},
      {"?metric=rtt", "bad parameter metric=\"rtt\": valid metrics are " + metrics},
      {"?metric=handshake&window=5x", "bad parameter window=\"5x\": a positive duration like 300, 300s, 5m, 1h, 500ms"},
      {"?metric=handshake&window=0", "bad parameter window=\"0\": a positive duration like 300, 300s, 5m, 1h, 500ms"},
      {"?metric=handshake&dst=a&listen=b", "parameters dst and listen exclude each other: pick one scope"},
      {"?metric=handshake&src=10.0.0.1", "parameter src needs dst (src narrows a destination)"},
      {"?metric=handshake&netns=1", "parameter netns needs dst or listen"},
      {"?metric=handshake&dst=10.0.0.2:443&netns=abc", "bad parameter netns=\"abc\": a network namespace inode number"},
      {"?metric=handshake&listen=0.0.0.0:8080",
       "bad parameter metric=\"handshake\" with listen: listeners have accept_queue_fill frames only; valid metrics "
       "are " +
           metrics},
      {"?metric=accept_queue_fill&dst=10.0.0.2:443",
       "bad parameter metric=\"accept_queue_fill\" with dst: destinations have handshake, port_search and "
       "connect_syscall frames; valid metrics are " +
           metrics},
  };
  for (const auto& [query, message] : cases) {
    auto r = cli.Get(("/api/v1/heatmap" + query).c_str());
    REQUIRE(r);
    CHECK_MESSAGE(r->status == 400, query);
    CHECK(r->get_header_value("Content-Type") == "application/json");
    CHECK(r->get_header_value("Access-Control-Allow-Origin").empty());
    const auto j = nlohmann::json::parse(r->body);
    CHECK_MESSAGE(j["error"] == message, query);
    CHECK(j["valid_metrics"] ==
          nlohmann::json::array({"handshake", "port_search", "connect_syscall", "accept_queue_fill"}));
    CHECK(j["usage"].get<std::string>().rfind("/api/v1/heatmap?metric=", 0) == 0);
  }
}

TEST_CASE("a heatmap for a destination or listener no snapshot in the window had is 404, naming where to look") {
  Publication pub(kBuild, 1.0, 3600);
  HttpServer server(pub, "127.0.0.1", 0);
  httplib::Client cli("127.0.0.1", server.port());

  // Nothing published yet: nothing is known.
  auto r = cli.Get("/api/v1/heatmap?metric=handshake&dst=other");
  REQUIRE(r);
  CHECK(r->status == 404);

  Snapshot old = make_fixture_snapshot(1, kFixtureTimestamp - 600);
  old.destinations[0].dst = "10.9.9.9:80";  // ten minutes ago, then gone
  pub.publish(old);
  Snapshot now = make_fixture_snapshot(2, kFixtureTimestamp);
  now.destinations[1].handshake.interval.clear();  // [fd00::2]:8443 idle now
  pub.publish(now);

  const std::vector<std::pair<std::string, std::string>> missing = {
      {"?metric=handshake&dst=10.9.9.9:80",
       "no destination 10.9.9.9:80 (netns any) in the last 5m: see destinations in /api/v1/snapshot for the known "
       "ones"},
      {"?metric=port_search&dst=10.0.0.2:443&netns=4026532177&src=10.0.0.1&window=1h",
       "no destination 10.0.0.2:443 (netns 4026532177, src 10.0.0.1) in the last 1h: see destinations in "
       "/api/v1/snapshot for the known ones"},
      {"?metric=accept_queue_fill&listen=0.0.0.0:9999&window=90",
       "no listener 0.0.0.0:9999 (netns any) in the last 90s: see listeners in /api/v1/snapshot for the known ones"},
      {"?metric=accept_queue_fill&listen=0.0.0.0:8080&netns=1&window=500ms",
       "no listener 0.0.0.0:8080 (netns 1) in the last 500ms: see listeners in /api/v1/snapshot for the known ones"},
  };
  for (const auto& [query, message] : missing) {
    r = cli.Get(("/api/v1/heatmap" + query).c_str());
    REQUIRE(r);
    CHECK_MESSAGE(r->status == 404, query);
    CHECK(header(r, "Content-Type") == "application/json");
    CHECK(header(r, "Access-Control-Allow-Origin").empty());
    CHECK_MESSAGE(r->body == "{\"error\":\"" + message + "\"}", query);
  }
  r = cli.Get("/api/v1/heatmap?metric=handshake&dst=10.9.9.9:80");
  REQUIRE(r);
  CHECK(r->body ==
        "{\"error\":\"no destination 10.9.9.9:80 (netns any) in the last 5m: see destinations in /api/v1/snapshot for "
        "the known ones\"}");

  // Known: in a snapshot in the window (10.9.9.9:80 within 20m), idle in the
  // latest ([fd00::2]:8443: zero rows), the `other` row, the unattributed listener.
  for (const char* query :
       {"?metric=handshake&dst=10.9.9.9:80&window=20m", "?metric=handshake&dst=%5Bfd00::2%5D:8443",
        "?metric=connect_syscall&dst=other&netns=0", "?metric=accept_queue_fill&listen=unattributed",
        "?metric=accept_queue_fill&listen=0.0.0.0:8080&netns=4026531840"}) {
    r = cli.Get((std::string("/api/v1/heatmap") + query).c_str());
    REQUIRE(r);
    CHECK_MESSAGE(r->status == 200, query);
    CHECK_MESSAGE(json_of(r).is_array(), query);
  }
  r = cli.Get("/api/v1/heatmap?metric=handshake&dst=%5Bfd00::2%5D:8443");
  REQUIRE(r);
  const auto j = json_of(r);
  REQUIRE(j.size() == 1);
  for (const auto& [k, v] : j[0].items())
    if (k != "time") CHECK(v == 0);
}

TEST_CASE("binding an occupied port fails with one line naming the address and the fix") {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  REQUIRE(listen(fd, 1) == 0);
  socklen_t len = sizeof(addr);
  REQUIRE(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  const uint16_t port = ntohs(addr.sin_port);

  Publication pub(kBuild, 1.0);
  std::string message;
  try {
    HttpServer server(pub, "127.0.0.1", port);
  } catch (const std::runtime_error& e) {
    message = e.what();
  }
  close(fd);
  CHECK(message == "cannot listen on 127.0.0.1:" + std::to_string(port) +
                       ": Address already in use; pick another with --listen ADDR:PORT");

  message.clear();
  try {
    HttpServer server(pub, "192.0.2.1", 9464);  // TEST-NET-1: not a local address
  } catch (const std::runtime_error& e) {
    message = e.what();
  }
  CHECK(message ==
        "cannot listen on 192.0.2.1:9464: Cannot assign requested address; pick another with --listen "
        "ADDR:PORT");
}

TEST_CASE("the server stops promptly with a keep-alive client connected, and serves IPv6") {
  Publication pub(kBuild, 1.0);
  pub.publish(make_fixture_snapshot());
  std::optional<HttpServer> server;
  try {
    server.emplace(pub, "::1", 0);
  } catch (const std::runtime_error& e) {
    MESSAGE("no IPv6 loopback here: " << e.what());
    server.emplace(pub, "127.0.0.1", 0);
  }
  httplib::Client cli(server->address().find('[') == 0 ? "::1" : "127.0.0.1", server->port());
  cli.set_keep_alive(true);
  for (int i = 0; i < 3; ++i) {
    auto r = cli.Get("/metrics");
    REQUIRE(r);
    CHECK(r->status == 200);
  }
  const auto start = std::chrono::steady_clock::now();
  server.reset();
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(3));
}

TEST_CASE("publishing while clients read") {
  Publication pub(kBuild, 1.0, 30);
  HttpServer server(pub, "127.0.0.1", 0);
  pub.publish(make_fixture_snapshot(1, kFixtureTimestamp));  // 10.0.0.2:443 known before the first read
  std::atomic<bool> done{false};
  std::thread publisher([&] {
    for (int i = 1; i < 60; ++i) pub.publish(make_fixture_snapshot(i + 1, kFixtureTimestamp + i));
    done = true;
  });
  httplib::Client cli("127.0.0.1", server.port());
  int reads = 0;
  while (!done || reads < 10) {
    auto r = cli.Get("/metrics");
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(r->body.rfind("# HELP connscope_build_info", 0) == 0);
    r = cli.Get("/api/v1/heatmap?metric=handshake&dst=10.0.0.2:443&window=1h");
    REQUIRE(r);
    CHECK(r->status == 200);
    const auto rows = nlohmann::json::parse(r->body);
    CHECK(rows.size() <= 30);
    ++reads;
  }
  publisher.join();
  const auto j = nlohmann::json::parse(*pub.snapshot_json());
  CHECK(j["seq"] == 60);
}

TEST_CASE("300 clients holding unfinished heads do not keep /metrics and /healthz from answering within 1 s") {
  Publication pub(kBuild, 1.0);
  pub.publish(make_fixture_snapshot());
  HttpServer server(pub, "127.0.0.1", 0);

  SUBCASE("from one address: the per-address cap closes that address's oldest") {
    std::vector<RawClient> slow;
    for (int i = 0; i < 300; ++i) {
      slow.emplace_back(server.port());
      REQUIRE(slow.back().ok());
      REQUIRE(slow.back().send_all("GET /metrics HTTP/1.1\r\nHost: x\r\n"));
    }
    for (int round = 0; round < 5; ++round) {
      double took = 0;
      CHECK(get_within_1s(server.port(), "/metrics", &took) == 200);
      CHECK(took < 1.0);
      CHECK(get_within_1s(server.port(), "/healthz") == 200);
      // A byte a second keeps none of them in: the head has one deadline.
      for (RawClient& c : slow) c.send_all("X");
    }
    size_t closed = 0;
    for (RawClient& c : slow) closed += c.closed_by_server();
    const HttpLimits limits;
    CHECK(closed >= 300 - limits.max_per_address);
    CHECK(slow.back().closed_by_server() == false);  // the newest stay
  }

  SUBCASE("from 10 addresses: the total cap closes the oldest of all") {
    std::vector<RawClient> slow;
    for (int i = 0; i < 300; ++i) {
      const std::string src = "127.0.0." + std::to_string(2 + i % 10);
      slow.emplace_back(server.port(), src.c_str());
      REQUIRE(slow.back().ok());
      REQUIRE(slow.back().send_all("GET /metrics HTTP/1.1\r\nHost: x\r\n"));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    for (int round = 0; round < 5; ++round) {
      double took = 0;
      CHECK(get_within_1s(server.port(), "/metrics", &took) == 200);
      CHECK(took < 1.0);
      CHECK(get_within_1s(server.port(), "/healthz") == 200);
    }
    size_t closed = 0;
    for (RawClient& c : slow) closed += c.closed_by_server();
    const HttpLimits limits;
    CHECK(closed >= 300 - limits.max_connections);
    CHECK(slow.front().closed_by_server());
  }
}

TEST_CASE("a request head has one deadline: sending a byte at a time does not extend it") {
  Publication pub(kBuild, 1.0);
  HttpLimits limits;
  limits.head_timeout_s = 0.5;
  HttpServer server(pub, "127.0.0.1", 0, limits);
  RawClient c(server.port());
  REQUIRE(c.send_all("GET /metrics HTTP/1.1\r\n"));
  const auto start = std::chrono::steady_clock::now();
  bool closed = false;
  while (!closed && seconds_since(start) < 3) {
    c.send_all("X");
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    closed = c.readable(0) && c.closed_by_server();
  }
  CHECK(closed);
  const double took = seconds_since(start);
  CHECK(took > 0.35);
  CHECK(took < 1.5);

  // A keep-alive client that asks nothing more is closed after the same time.
  RawClient idle(server.port());
  REQUIRE(idle.send_all("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
  const auto asked = std::chrono::steady_clock::now();
  const std::string response = idle.read_all(3);  // until the server closes
  CHECK(status_of(response) == 200);
  CHECK(seconds_since(asked) > 0.35);
  CHECK(seconds_since(asked) < 1.5);
}

TEST_CASE("a 600 MiB body is refused before it is read, and costs the server no memory") {
  Publication pub(kBuild, 1.0);
  pub.publish(make_fixture_snapshot());
  HttpServer server(pub, "127.0.0.1", 0);
  const long before = peak_rss_kib();
  REQUIRE(before > 0);
  const std::string chunk(64 * 1024, '\0');
  for (const char* method : {"GET", "POST"}) {
    CAPTURE(method);
    RawClient c(server.port());
    const uint64_t total = 600ull << 20;
    REQUIRE(c.send_all(std::string(method) +
                       " /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(total) + "\r\n\r\n"));
    uint64_t sent = 0;
    const auto start = std::chrono::steady_clock::now();
    while (sent < total && !c.readable(0) && seconds_since(start) < 10) {
      if (!c.send_all(chunk)) break;
      sent += chunk.size();
    }
    const std::string response = c.read_all(2);
    CHECK(status_of(response) == (std::string(method) == "GET" ? 413 : 405));
    CHECK(header_of(response, "Connection") == "close");
    CHECK(sent < (64ull << 20));  // the answer came long before the body did
    CHECK(seconds_since(start) < 5);
  }
  // The tests' own buffers are 64 KiB; a body read whole would be 600 MiB.
  CHECK(peak_rss_kib() - before < 4 * 1024);

  // A small body on a GET is read and ignored; a chunked one over the cap is 413.
  RawClient small(server.port());
  REQUIRE(small.send_all("GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"));
  CHECK(status_of(small.read_all(2)) == 200);
  RawClient chunked(server.port());
  REQUIRE(chunked.send_all("GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"));
  const std::string big_chunk = "10000\r\n" + std::string(0x10000, 'a') + "\r\n";
  CHECK(chunked.send_all(big_chunk));
  CHECK(status_of(chunked.read_all(2)) == 413);
}

TEST_CASE("an oversized request line or header is 431; other methods are 405 with Allow; HEAD has no body") {
  Publication pub(kBuild, 1.0);
  pub.publish(make_fixture_snapshot());
  HttpServer server(pub, "127.0.0.1", 0);
  const HttpLimits limits;

  RawClient line(server.port());
  REQUIRE(line.send_all("GET /" + std::string(limits.max_head_bytes, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::string response = line.read_all(2);
  CHECK(status_of(response) == 431);
  CHECK(header_of(response, "Connection") == "close");

  RawClient field(server.port());
  REQUIRE(field.send_all("GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(limits.max_head_bytes, 'b') +
                         "\r\n\r\n"));
  CHECK(status_of(field.read_all(2)) == 431);

  RawClient many(server.port());
  std::string head = "GET /metrics HTTP/1.1\r\nHost: x\r\n";
  for (int i = 0; i < 600; ++i) head += "X-" + std::to_string(i) + ": 0123456789\r\n";
  REQUIRE(many.send_all(head + "\r\n"));
  CHECK(status_of(many.read_all(2)) == 431);

  // Just under the cap is served.
  RawClient under(server.port());
  REQUIRE(under.send_all("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Pad: " +
                         std::string(limits.max_head_bytes - 200, 'c') + "\r\n\r\n"));
  CHECK(status_of(under.read_all(2)) == 200);

  RawClient garbage(server.port());
  REQUIRE(garbage.send_all("NOT A REQUEST\r\n\r\n"));
  CHECK(status_of(garbage.read_all(2)) == 400);

  httplib::Client cli("127.0.0.1", server.port());
  auto r = cli.Post("/metrics", "x", "text/plain");
  REQUIRE(r);
  CHECK(r->status == 405);
  CHECK(r->get_header_value("Allow") == "GET, HEAD");
  r = cli.Put("/api/v1/snapshot", "x", "text/plain");
  REQUIRE(r);
  CHECK(r->status == 405);
  r = cli.Delete("/healthz");
  REQUIRE(r);
  CHECK(r->status == 405);

  RawClient h(server.port());
  REQUIRE(h.send_all("HEAD /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  response = h.read_all(2);
  CHECK(status_of(response) == 200);
  CHECK(header_of(response, "Content-Length") == std::to_string(pub.metrics_text()->size()));
  CHECK(response.substr(response.find("\r\n\r\n") + 4).empty());

  // Keep-alive and pipelining still work within the limits.
  RawClient pipe(server.port());
  REQUIRE(
      pipe.send_all("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\nConnection: "
                    "close\r\n\r\n"));
  response = pipe.read_all(2);
  CHECK(status_of(response) == 200);
  CHECK(status_of(response.substr(response.find("ok\n") + 3)) == 200);
}

TEST_CASE("--cors-origin: Access-Control-Allow-Origin on /api/* and OPTIONS preflights, not elsewhere") {
  Publication pub(kBuild, 1.0);
  pub.publish(make_fixture_snapshot());
  HttpLimits limits;
  limits.cors_origin = "https://grafana.example.com";
  HttpServer server(pub, "127.0.0.1", 0, limits);
  httplib::Client cli("127.0.0.1", server.port());
  for (const char* path : {"/api/v1/snapshot", "/api/v1/alerts", "/api/v1/heatmap?metric=rtt", "/api/v1/nope"}) {
    auto r = cli.Get(path);
    REQUIRE(r);
    CHECK_MESSAGE(header(r, "Access-Control-Allow-Origin") == "https://grafana.example.com", path);
  }
  auto r = cli.Get("/metrics");
  REQUIRE(r);
  CHECK(header(r, "Access-Control-Allow-Origin").empty());
  r = cli.Options("/api/v1/heatmap");
  REQUIRE(r);
  CHECK(r->status == 204);
  CHECK(header(r, "Access-Control-Allow-Origin") == "https://grafana.example.com");
  CHECK(header(r, "Access-Control-Allow-Methods") == "GET, HEAD, OPTIONS");
  r = cli.Options("/metrics");
  REQUIRE(r);
  CHECK(r->status == 405);
  r = cli.Post("/api/v1/snapshot", "x", "text/plain");
  REQUIRE(r);
  CHECK(r->status == 405);
  CHECK(header(r, "Allow") == "GET, HEAD, OPTIONS");
}
