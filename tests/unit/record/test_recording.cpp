// Unit tests: the recording format, round trip and corruption.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>

#include "record/recording.hpp"

using namespace connscope;

namespace {
std::string temp_path(const char* name) { return "/tmp/connscope-unit-" + std::to_string(getpid()) + "-" + name; }
}  // namespace

TEST_CASE("a recording reads back what was written") {
  const std::string path = temp_path("rt.csrec");
  {
    RecordingWriter w(path);
    RecordingMeta m;
    m.version = "0.2.0";
    m.kernel = "6.18.0";
    m.strategies = {{"connect", "fallback"}, {"state", "raw_tp"}};
    m.start_mono_ns = 1000;
    m.start_unix_s = 1.7e9;
    w.meta(m);
    cs_connect_event e{};
    e.h.type = CS_EV_CONNECT;
    e.h.ts_ns = 2000;
    e.err = 99;
    w.event(2000, {reinterpret_cast<const uint8_t*>(&e), sizeof e});
    NetnsSettings s;
    s.netns = 42;
    s.port_lo = 40000;
    s.port_hi = 40099;
    s.reserved = {{40010, 40019}};
    s.usable_ports = 90;
    s.tw_reuse = 0;
    w.settings(3000, s);
    ListenerInfo l{};
    l.family = 10;
    l.addr[15] = 1;
    l.port = 8080;
    l.queue_len = 2;
    l.max_backlog = 4;
    w.listeners(4000, 42, {l});
    SocketRecord r{};
    r.family = 2;
    r.saddr[0] = 10;
    r.daddr[0] = 11;
    r.sport = 40001;
    r.dport = 80;
    r.state = 6;
    r.expires_ms = 59000;
    w.census(5000, 42, {r, r});
    w.census(5500, 42, {r}, CensusScope{kTimeWaitStates, PortSpan{40000, 40099}});
    LossCounters loss{};
    loss.lost_by_type[CS_EV_STATE] = 3;
    loss.map_full = 1;
    w.losses(6000, loss);
    w.end(7000);
    CHECK(w.frames() == 8);
  }
  RecordingReader r(path);
  auto meta = std::get<RecordingMeta>(*r.next());
  CHECK(meta.kernel == "6.18.0");
  REQUIRE(meta.strategies.size() == 2);
  CHECK(meta.start_mono_ns == 1000);
  auto ev = std::get<RecordedEvent>(*r.next());
  CHECK(ev.ts_ns == 2000);
  REQUIRE(ev.bytes.size() == sizeof(cs_connect_event));
  cs_connect_event back;
  std::memcpy(&back, ev.bytes.data(), sizeof back);
  CHECK(back.err == 99);
  auto st = std::get<RecordedSettings>(*r.next());
  CHECK(st.settings.netns == 42);
  CHECK(st.settings.usable_ports == 90);
  REQUIRE(st.settings.reserved.size() == 1);
  CHECK(st.settings.reserved[0].hi == 40019);
  CHECK(st.settings.tw_reuse == 0);
  auto ls = std::get<RecordedListeners>(*r.next());
  REQUIRE(ls.listeners.size() == 1);
  CHECK(ls.listeners[0].addr[15] == 1);
  CHECK(ls.listeners[0].max_backlog == 4);
  auto c = std::get<RecordedCensus>(*r.next());
  CHECK(c.netns == 42);
  REQUIRE(c.sockets.size() == 2);
  CHECK(c.sockets[1].sport == 40001);
  CHECK(c.sockets[1].expires_ms == 59000);
  CHECK(c.sockets[1].daddr[0] == 11);
  CHECK(c.scope.whole());
  auto cp = std::get<RecordedCensus>(*r.next());
  CHECK(cp.ts_ns == 5500);
  REQUIRE(cp.sockets.size() == 1);
  CHECK(cp.sockets[0].expires_ms == 59000);
  CHECK(cp.scope == CensusScope{kTimeWaitStates, PortSpan{40000, 40099}});
  auto lo = std::get<RecordedLosses>(*r.next());
  CHECK(lo.losses.lost_total == 3);
  CHECK(lo.losses.map_full == 1);
  CHECK(std::get<RecordedEnd>(*r.next()).ts_ns == 7000);
  CHECK_FALSE(r.next().has_value());
  std::remove(path.c_str());
}

TEST_CASE("bad recordings are refused with the path and the offset") {
  const std::string path = temp_path("bad.csrec");
  {
    std::ofstream f(path);
    f << "hello\n";
  }
  try {
    RecordingReader r(path);
    FAIL("no exception");
  } catch (const std::runtime_error& e) {
    CHECK(std::string(e.what()).find("is not a connscope recording") != std::string::npos);
  }
  {
    RecordingWriter w(path);
    w.end(5);
  }
  // Cut the last frame in half.
  std::string bytes;
  {
    std::ifstream f(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(f), {});
  }
  {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size() - 8));
  }
  RecordingReader r(path);
  try {
    r.next();
    FAIL("no exception");
  } catch (const std::runtime_error& e) {
    CHECK(std::string(e.what()).find("corrupt at byte 16") != std::string::npos);
  }
  CHECK_THROWS_WITH_AS(RecordingReader("/nonexistent/x.csrec"), doctest::Contains("cannot open recording"),
                       std::runtime_error);
  std::remove(path.c_str());
}
