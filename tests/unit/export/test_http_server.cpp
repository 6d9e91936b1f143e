// Unit tests: the HTTP endpoint over real loopback sockets.
#include <doctest/doctest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
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
  CHECK(header(r, "Access-Control-Allow-Origin") == "*");
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
  CHECK(header(r, "Access-Control-Allow-Origin") == "*");
  auto j = json_of(r);
  CHECK(j["seq"] == 44);
  CHECK(j["timestamp"] == kFixtureTimestamp);

  r = cli.Get("/api/v1/alerts");
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(header(r, "Access-Control-Allow-Origin") == "*");
  j = json_of(r);
  REQUIRE(j.size() == 2);
  CHECK(j[0]["rule"] == "ephemeral_ports_critical");

  r = cli.Get("/api/v1/heatmap?metric=handshake&window=3s");
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(header(r, "Access-Control-Allow-Origin") == "*");
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

  r = cli.Options("/api/v1/heatmap");
  REQUIRE(r);
  CHECK(r->status == 204);
  CHECK(header(r, "Access-Control-Allow-Origin") == "*");
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
    CHECK(r->get_header_value("Access-Control-Allow-Origin") == "*");
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
    CHECK(header(r, "Access-Control-Allow-Origin") == "*");
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
