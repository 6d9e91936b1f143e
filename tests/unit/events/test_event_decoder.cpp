// Decoding records from raw bytes laid out as the kernel writes them
// (little-endian x86-64), not from structs the test itself filled.
#include <doctest/doctest.h>

#include <cstring>
#include <nlohmann/json.hpp>
#include <vector>

#include "events/event_decoder.hpp"
#include "events/event_format.hpp"

using namespace connscope;

namespace {

struct Bytes {
  std::vector<uint8_t> b;
  explicit Bytes(size_t n) : b(n, 0) {}
  void u8(size_t off, uint8_t v) { b.at(off) = v; }
  void u16(size_t off, uint16_t v) {
    for (int i = 0; i < 2; i++) b.at(off + i) = uint8_t(v >> (8 * i));
  }
  void u32(size_t off, uint32_t v) {
    for (int i = 0; i < 4; i++) b.at(off + i) = uint8_t(v >> (8 * i));
  }
  void u64(size_t off, uint64_t v) {
    for (int i = 0; i < 8; i++) b.at(off + i) = uint8_t(v >> (8 * i));
  }
  void str(size_t off, const char* s) { std::memcpy(&b.at(off), s, std::strlen(s)); }
  void ip4(size_t off, uint8_t a, uint8_t b2, uint8_t c, uint8_t d) {
    u8(off, a);
    u8(off + 1, b2);
    u8(off + 2, c);
    u8(off + 3, d);
  }
};

// Header at 0 (16 bytes), task at 16 (32 bytes), flow at 48 (48 bytes).
void header(Bytes& r, uint8_t type, uint8_t tier, uint64_t ts) {
  r.u8(0, type);
  r.u8(1, tier);
  r.u64(8, ts);
}
void task(Bytes& r, uint32_t tid, uint32_t tgid, const char* comm) {
  r.u32(16, tid);
  r.u32(20, tgid);
  r.u64(24, 77);
  r.str(32, comm);
}
void flow4(Bytes& r, size_t at, uint16_t sport, uint16_t dport, uint32_t netns) {
  r.ip4(at, 10, 0, 0, 1);
  r.ip4(at + 16, 10, 0, 0, 2);
  r.u16(at + 32, sport);
  r.u16(at + 34, dport);
  r.u16(at + 36, 2);
  r.u32(at + 40, netns);
}

nlohmann::json to_json(const Event& e) {
  std::string out;
  append_event_json(out, e, WallClock(0, WallClock::Zone::utc));
  REQUIRE(out.back() == '\n');
  return nlohmann::json::parse(out);
}

}  // namespace

TEST_CASE("connect record decodes with errno name") {
  Bytes r(112);
  header(r, CS_EV_CONNECT, CS_TIER_FALLBACK, 123456789);
  task(r, 4242, 4240, "nginx");
  flow4(r, 48, 0, 443, 4026531833u);
  r.u64(96, 15000);
  r.u32(104, 99);  // EADDRNOTAVAIL
  std::string err;
  auto ev = decode_event(r.b, &err);
  REQUIRE(ev);
  auto j = to_json(*ev);
  CHECK(j["type"] == "connect");
  CHECK(j["ts_ns"] == 123456789);
  CHECK(j["strategy"] == "fallback");
  CHECK(j["pid"] == 4240);
  CHECK(j["tid"] == 4242);
  CHECK(j["comm"] == "nginx");
  CHECK(j["family"] == "ipv4");
  CHECK(j["saddr"] == "10.0.0.1");
  CHECK(j["daddr"] == "10.0.0.2");
  CHECK(j["dport"] == 443);
  CHECK(j["netns"] == 4026531833u);
  CHECK(j["latency_ns"] == 15000);
  CHECK(j["errno"] == 99);
  CHECK(j["error"] == "EADDRNOTAVAIL");
}

TEST_CASE("port_alloc record carries port, range and approximation") {
  Bytes r(112);
  header(r, CS_EV_PORT_ALLOC, CS_TIER_PREFERRED, 5);
  r.u16(2, 1);  // approximate flag
  task(r, 1, 1, "curl");
  flow4(r, 48, 42001, 80, 1);
  r.u64(96, 2500);
  r.u16(108, 42000);
  r.u16(110, 42009);
  std::string err;
  auto j = to_json(*decode_event(r.b, &err));
  CHECK(j["type"] == "port_alloc");
  CHECK(j["strategy"] == "fentry");
  CHECK(j["port"] == 42001);
  CHECK(j["duration_ns"] == 2500);
  CHECK(j["range_lo"] == 42000);
  CHECK(j["range_hi"] == 42009);
  CHECK(j["errno"] == 0);
  CHECK_FALSE(j.contains("error"));
  CHECK(j["approximate"] == true);
}

TEST_CASE("state records name the transition") {
  Bytes r(120);
  header(r, CS_EV_STATE, CS_TIER_SECOND, 9);
  task(r, 7, 7, "envoy");
  flow4(r, 48, 50000, 8080, 1);
  r.u64(96, 120000);
  r.u8(116, 2);  // SYN_SENT
  r.u8(117, 1);  // ESTABLISHED
  std::string err;
  auto j = to_json(*decode_event(r.b, &err));
  CHECK(j["strategy"] == "raw_tp");
  CHECK(j["event"] == "handshake");
  CHECK(j["oldstate"] == "SYN_SENT");
  CHECK(j["newstate"] == "ESTABLISHED");
  CHECK(j["latency_ns"] == 120000);

  r.u8(117, 7);     // CLOSE
  r.u32(112, 111);  // ECONNREFUSED
  j = to_json(*decode_event(r.b, &err));
  CHECK(j["event"] == "connect_failed");
  CHECK(j["error"] == "ECONNREFUSED");

  r.u8(116, 5);  // FIN_WAIT2 -> CLOSE, flagged TIME_WAIT
  r.u32(112, 0);
  r.u16(2, CS_STATE_F_TIME_WAIT);
  r.u64(104, 3000000);
  j = to_json(*decode_event(r.b, &err));
  CHECK(j["event"] == "time_wait");
  CHECK(j["duration_ns"] == 3000000);
}

TEST_CASE("retransmit and accept_queue records") {
  Bytes r(72);
  header(r, CS_EV_RETRANSMIT, CS_TIER_FALLBACK, 1);
  flow4(r, 16, 40000, 80, 3);
  r.u8(64, 2);  // SYN_SENT
  r.u8(65, CS_RETRANS_SYN);
  std::string err;
  auto j = to_json(*decode_event(r.b, &err));
  CHECK(j["type"] == "retransmit");
  CHECK(j["strategy"] == "tracepoint");
  CHECK(j["kind"] == "syn");
  CHECK(j["state"] == "SYN_SENT");
  CHECK(j["sport"] == 40000);

  Bytes q(80);
  header(q, CS_EV_ACCEPT_QUEUE, CS_TIER_FALLBACK, 2);
  q.u16(2, CS_AQ_F_APPROXIMATE);
  flow4(q, 16, 8080, 0, 3);
  q.u32(64, 2);
  q.u32(68, 1);
  q.u32(72, 8);
  q.u8(76, CS_AQ_OVERFLOW);
  j = to_json(*decode_event(q.b, &err));
  CHECK(j["type"] == "accept_queue");
  CHECK(j["strategy"] == "poll");
  CHECK(j["kind"] == "overflow");
  CHECK(j["backlog"] == 2);
  CHECK(j["max_backlog"] == 1);
  CHECK(j["count"] == 8);
  CHECK(j["approximate"] == true);
}

TEST_CASE("IPv6 addresses format as text") {
  Bytes r(72);
  header(r, CS_EV_RETRANSMIT, CS_TIER_PREFERRED, 1);
  r.u8(16, 0xfd);
  r.u8(31, 1);
  r.u8(32, 0xfd);
  r.u8(47, 2);
  r.u16(52, 10);
  std::string err;
  auto j = to_json(*decode_event(r.b, &err));
  CHECK(j["family"] == "ipv6");
  CHECK(j["saddr"] == "fd00::1");
  CHECK(j["daddr"] == "fd00::2");
}

TEST_CASE("short, unknown and empty records are rejected without reading past the end") {
  std::string err;
  Bytes r(111);
  header(r, CS_EV_CONNECT, 0, 0);
  CHECK_FALSE(decode_event(r.b, &err));
  CHECK(err.find("expected 112") != std::string::npos);
  Bytes u(120);
  u.u8(0, 99);
  CHECK_FALSE(decode_event(u.b, &err));
  CHECK(err.find("unknown record type 99") != std::string::npos);
  CHECK_FALSE(decode_event(std::span<const uint8_t>(), &err));
}

TEST_CASE("JSON strings are escaped") {
  Bytes r(112);
  header(r, CS_EV_CONNECT, 0, 0);
  task(r, 1, 1, "a\"b\\c\x01");
  std::string err;
  auto j = to_json(*decode_event(r.b, &err));
  CHECK(j["comm"] == "a\"b\\c\x01");
}

TEST_CASE("loss record") {
  LossCounters l;
  l.lost_total = 5;
  l.lost_by_type[CS_EV_STATE] = 5;
  l.map_full = 2;
  std::string out;
  append_loss_json(out, l, 10, true, WallClock(1795295007'000000000, WallClock::Zone::utc));
  auto j = nlohmann::json::parse(out);
  CHECK(j["type"] == "loss");
  CHECK(j["lost"] == 5);
  CHECK(j["lost_by_type"]["state"] == 5);
  CHECK(j["map_full"] == 2);
  CHECK(j["final"] == true);
  CHECK(out.find("\"ts_ns\":10,\"time\":1795295007.000000,") != std::string::npos);
}
