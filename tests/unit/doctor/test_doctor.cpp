#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/tcp.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>

#include "doctor/doctor.hpp"
#include "host/netns.hpp"
#include "snapshot_fixture.hpp"

using namespace connscope;

namespace {

std::filesystem::path fixture_path(const std::string& rel) { return test::fixture_path(rel); }

std::string fixture(const char* name) {
  std::ifstream in(fixture_path(name));
  REQUIRE_MESSAGE(in.good(), "missing fixture " << name);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// The captured sock_diag dump (see test_socket_census.cpp): u32 LE length-framed recv() buffers.
std::vector<SocketRecord> dump_fixture(const char* name) {
  std::ifstream in(fixture_path(std::string("sockdiag/") + name), std::ios::binary);
  REQUIRE(in.good());
  std::vector<uint8_t> raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<SocketRecord> out;
  for (size_t off = 0; off + 4 <= raw.size();) {
    const uint32_t len = raw[off] | raw[off + 1] << 8 | raw[off + 2] << 16 | static_cast<uint32_t>(raw[off + 3]) << 24;
    off += 4;
    REQUIRE(len <= raw.size() - off);
    REQUIRE(parse_sock_diag_sockets(std::span(raw.data() + off, len), &out) >= 0);
    off += len;
  }
  return out;
}

NetnsSettings settings_fixture(const char* name) {
  std::string error;
  auto s = read_netns_settings(fixture_path(std::string("procsys/") + name).string(), &error);
  REQUIRE_MESSAGE(s.has_value(), error);
  return *s;
}

std::array<uint8_t, 16> ip(uint16_t family, const char* text) {
  std::array<uint8_t, 16> a{};
  REQUIRE(inet_pton(family, text, a.data()) == 1);
  return a;
}

SocketRecord sock(uint8_t state, const char* src, uint16_t sport, const char* dst, uint16_t dport,
                  uint32_t expires_ms = 0) {
  SocketRecord s;
  s.family = std::string_view(src).find(':') == std::string_view::npos ? AF_INET : AF_INET6;
  s.saddr = ip(s.family, src);
  s.daddr = ip(s.family, dst);
  s.sport = sport;
  s.dport = dport;
  s.state = state;
  s.expires_ms = expires_ms;
  return s;
}

// Host facts as this 6.18 machine has them (fixture sysctls), sockets read, nothing busy.
HostFacts host_facts() {
  HostFacts f;
  f.settings = settings_fixture("host_6.18");
  f.settings.netns = 4026531840u;
  f.settings_read = true;
  f.counters_read = true;
  f.sockets_read = true;
  f.file_max = 2470938;
  f.nr_open = 1048576;
  f.files_allocated = 434;
  f.have_file_nr = true;
  return f;
}

// n outgoing sockets toward dst (TIME_WAIT of the given age) from src.
void add_outgoing(HostFacts* f, const char* src, const char* dst, uint16_t dport, uint32_t n, uint32_t tw,
                  uint32_t tw_age_ms = 30000) {
  std::vector<SocketRecord> recs;
  for (uint32_t i = 0; i < n; ++i)
    recs.push_back(sock(i < tw ? TCP_TIME_WAIT : TCP_ESTABLISHED, src, static_cast<uint16_t>(32768 + i), dst, dport,
                        i < tw ? 60000 - tw_age_ms : 0));
  f->sockets = summarize_sockets(recs, f->settings);
}

const Finding* find(const std::vector<Finding>& fs, const std::string& id) {
  auto it = std::find_if(fs.begin(), fs.end(), [&](const Finding& f) { return f.id == id; });
  return it == fs.end() ? nullptr : &*it;
}

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

void check_well_formed(const std::vector<Finding>& fs) {
  for (const Finding& f : fs) {
    INFO(f.id);
    CHECK((f.severity == "ok" || f.severity == "info" || f.severity == "warning" || f.severity == "critical"));
    CHECK((f.id.rfind("ports.", 0) == 0 || f.id.rfind("timewait.", 0) == 0 || f.id.rfind("listen.", 0) == 0 ||
           f.id.rfind("fd.", 0) == 0 || f.id.rfind("netns.", 0) == 0));
    CHECK_FALSE(f.subject.empty());
    CHECK_FALSE(f.value.empty());
    CHECK_FALSE(f.meaning.empty());
    if (f.severity == "warning" || f.severity == "critical") CHECK_FALSE(f.fix.empty());
  }
}

}  // namespace

TEST_CASE("parse_max_open_files reads real /proc/<pid>/limits") {
  uint64_t soft = 0, hard = 0;
  CHECK(parse_max_open_files(fixture("limits_6.18.txt"), &soft, &hard));
  CHECK(soft == 20000);
  CHECK(hard == 20000);
  CHECK(parse_max_open_files(fixture("limits_soft1024_6.18.txt"), &soft, &hard));  // prlimit --nofile=1024:20000
  CHECK(soft == 1024);
  CHECK(hard == 20000);
  CHECK(parse_max_open_files("Max open files            unlimited            unlimited            files\n", &soft,
                             &hard));
  CHECK(soft == kUnlimited);
  CHECK(hard == kUnlimited);

  soft = hard = 7;
  CHECK_FALSE(parse_max_open_files("", &soft, &hard));
  CHECK_FALSE(parse_max_open_files("Max processes 96551 96551 processes\n", &soft, &hard));
  CHECK_FALSE(parse_max_open_files("Max open files            lots                 20000                files\n", &soft,
                                   &hard));
  CHECK_FALSE(parse_max_open_files("Max open files            1024\n", &soft, &hard));
  CHECK_FALSE(parse_max_open_files("Max open files            -1     20000     files\n", &soft, &hard));
  CHECK(soft == 7);
  CHECK(hard == 7);
}

TEST_CASE("tcp_counters picks the doctor's counters out of real /proc/net/netstat text of 6.18") {
  auto host = parse_netstat_counters(fixture("netstat_host_6.18.txt"));
  REQUIRE(host.has_value());
  TcpCounters c = tcp_counters(*host);
  CHECK(c.listen_overflows == 0);
  CHECK(c.time_wait_overflow == 0);

  // A netns with a backlog-1 listener that never accepts and 5 clients.
  c = tcp_counters(*parse_netstat_counters(fixture("netstat_netns_overflow_6.18.txt")));
  CHECK(c.listen_overflows == 8);
  CHECK(c.listen_drops == 8);

  // A netns with tcp_max_tw_buckets=5 after 10 connections closed client-first.
  auto tw = parse_netstat_counters(fixture("netstat_tw_overflow_6.18.txt"));
  REQUIRE(tw.has_value());
  c = tcp_counters(*tw);
  CHECK(c.time_wait_overflow == 5);
  CHECK(c.req_q_full_drop == 0);
}

TEST_CASE("is_loopback follows tcp_tw_reuse=2: 127/8, ::1, IPv4-mapped 127/8") {
  CHECK(is_loopback(AF_INET, ip(AF_INET, "127.0.0.1")));
  CHECK(is_loopback(AF_INET, ip(AF_INET, "127.255.0.9")));
  CHECK_FALSE(is_loopback(AF_INET, ip(AF_INET, "10.0.0.1")));
  CHECK_FALSE(is_loopback(AF_INET, ip(AF_INET, "128.0.0.1")));
  CHECK(is_loopback(AF_INET6, ip(AF_INET6, "::1")));
  CHECK(is_loopback(AF_INET6, ip(AF_INET6, "::ffff:127.0.0.1")));
  CHECK_FALSE(is_loopback(AF_INET6, ip(AF_INET6, "::ffff:10.0.0.1")));
  CHECK_FALSE(is_loopback(AF_INET6, ip(AF_INET6, "::")));
  CHECK_FALSE(is_loopback(AF_INET6, ip(AF_INET6, "::127.0.0.1")));  // IPv4-compatible, not mapped
  CHECK_FALSE(is_loopback(0, ip(AF_INET, "127.0.0.1")));
}

TEST_CASE("summarize_sockets groups a real IPv4 dump by destination, with TIME_WAIT reuse by age") {
  const std::vector<SocketRecord> recs = dump_fixture("dump_v4_6.18.bin");
  NetnsSettings s;  // the capture netns: 40000-40999, tcp_tw_reuse=2 (loopback)
  s.port_lo = 40000;
  s.port_hi = 40999;
  s.usable_ports = 1000;

  SocketSummary sum = summarize_sockets(recs, s);
  CHECK(sum.listeners.size() == 2);
  CHECK(sum.sockets == 64);  // 60 TIME_WAIT, 2 clients, 2 accept-queue children
  CHECK(sum.time_wait == 60);
  CHECK(sum.time_wait_inbound == 0);
  // 60 TIME_WAIT + 2 client ports, but connect() gave client port 40178 to a connection toward :5000 while
  // an earlier one toward :5003 still held it in TIME_WAIT: ports are shared across destinations.
  CHECK(sum.ephemeral_in_use == 61);
  REQUIRE(sum.destinations.size() == 2);
  const DestinationUse& d = sum.destinations[0];
  CHECK(format_address(d.family, d.saddr) == "127.0.0.1");
  CHECK(format_endpoint(d.family, d.daddr, d.dport) == "127.0.0.1:5003");
  CHECK(d.sockets == 60);
  CHECK(d.time_wait == 60);
  CHECK(d.reusable == 0);  // captured 0.7 s into TIME_WAIT: younger than tcp_tw_reuse_delay 1 s
  CHECK(sum.destinations[1].dport == 5000);
  CHECK(sum.destinations[1].sockets == 2);  // the clients; the server side is inbound

  auto reusable_5003 = [&] {
    for (const DestinationUse& x : summarize_sockets(recs, s).destinations)
      if (x.dport == 5003) return x.reusable;
    FAIL("no destination :5003");
    return 0u;
  };
  s.tw_reuse_delay_ms = 250;  // old enough now: reusable over loopback
  CHECK(reusable_5003() == 60);
  s.timestamps = 0;  // no timestamps, no reuse
  CHECK(reusable_5003() == 0);
  s.timestamps = 1;
  s.tw_reuse = 0;
  CHECK(reusable_5003() == 0);
  s.tw_reuse = 1;
  CHECK(reusable_5003() == 60);

  // Ordered by ports held: reuse pushed :5003 (60 sockets, all reusable) below :5000 (2 held).
  sum = summarize_sockets(recs, s);
  CHECK(sum.destinations[0].dport == 5000);
  CHECK(summarize_sockets(recs, s, 1).destinations.size() == 1);
}

TEST_CASE("summarize_sockets on a real IPv6 dump: IPv4-mapped peers are loopback, server side is inbound") {
  const std::vector<SocketRecord> recs = dump_fixture("dump_v6_6.18.bin");
  NetnsSettings s;
  s.port_lo = 40000;
  s.port_hi = 40999;
  s.usable_ports = 1000;
  s.tw_reuse_delay_ms = 100;
  SocketSummary sum = summarize_sockets(recs, s);
  CHECK(sum.listeners.size() == 3);
  CHECK(sum.time_wait == 5);
  REQUIRE(sum.destinations.size() == 3);  // ::1 -> 5004 (TIME_WAIT), ::1 -> 5001, mapped -> 5002
  for (const DestinationUse& d : sum.destinations) {
    CHECK(d.family == AF_INET6);
    if (d.dport == 5004) {
      CHECK(d.time_wait == 5);
      CHECK(d.reusable == 5);
    } else {
      CHECK(d.sockets == 1);
    }
  }
  CHECK(std::any_of(sum.destinations.begin(), sum.destinations.end(), [](const DestinationUse& d) {
    return format_endpoint(d.family, d.daddr, d.dport) == "[::ffff:127.0.0.1]:5002";
  }));
}

TEST_CASE("summarize_sockets: TIME_WAIT on a listening port is inbound, unconnected sockets are not destinations") {
  NetnsSettings s;
  std::vector<SocketRecord> recs = {
      sock(TCP_LISTEN, "0.0.0.0", 443, "0.0.0.0", 0),
      sock(TCP_TIME_WAIT, "10.0.0.1", 443, "192.0.2.7", 51000, 30000),  // we closed first as the server
      sock(TCP_TIME_WAIT, "10.0.0.1", 33000, "10.0.0.5", 8080, 30000),
      sock(TCP_ESTABLISHED, "10.0.0.1", 33001, "10.0.0.5", 8080),
      sock(TCP_ESTABLISHED, "10.0.0.2", 33000, "10.0.0.5", 8080),  // another source address: its own ports
      sock(TCP_SYN_SENT, "10.0.0.1", 33002, "10.0.0.6", 80),
      sock(TCP_CLOSE, "10.0.0.1", 33003, "0.0.0.0", 0),
  };
  SocketSummary sum = summarize_sockets(recs, s);
  CHECK(sum.sockets == 6);
  CHECK(sum.time_wait == 2);
  CHECK(sum.time_wait_inbound == 1);
  CHECK(sum.ephemeral_in_use == 4);  // 33000 (twice), 33001, 33002, 33003
  REQUIRE(sum.destinations.size() == 3);
  CHECK(format_address(AF_INET, sum.destinations[0].saddr) == "10.0.0.1");
  CHECK(sum.destinations[0].dport == 8080);
  CHECK(sum.destinations[0].sockets == 2);
  CHECK(sum.destinations[0].time_wait == 1);
  CHECK(sum.destinations[0].reusable == 0);  // tcp_tw_reuse=2 and not loopback

  s.reserved = {{33000, 33001}};  // reserved ports are not counted as usable ports in use
  CHECK(summarize_sockets(recs, s).ephemeral_in_use == 2);
}

TEST_CASE("evaluate_host on this host's default settings: nothing alarming, tw_reuse=2 explained") {
  HostFacts f = host_facts();
  auto fs = evaluate_host(f);
  check_well_formed(fs);
  for (const Finding& x : fs) CHECK_MESSAGE((x.severity == "ok" || x.severity == "info"), x.id << " " << x.severity);

  const Finding* range = find(fs, "ports.range");
  REQUIRE(range != nullptr);
  CHECK(range->severity == "ok");
  CHECK(range->value == "32768-60999 (28232 usable ports)");
  CHECK(has(range->meaning, "EADDRNOTAVAIL"));
  CHECK(has(range->meaning, "28232/60 s = 470/s"));
  CHECK(find(fs, "ports.reserved") == nullptr);

  const Finding* reuse = find(fs, "ports.tw_reuse");
  REQUIRE(reuse != nullptr);
  CHECK(reuse->severity == "info");
  CHECK(reuse->value == "2 (loopback only)");
  CHECK(has(reuse->meaning, "loopback"));
  CHECK(has(reuse->meaning, "28232/60 s = 470/s"));
  CHECK(has(reuse->meaning, "28232/1 s = 28232/s"));
  CHECK(has(reuse->fix, "sysctl -w net.ipv4.tcp_tw_reuse=1"));
  CHECK(has(reuse->fix, "/etc/sysctl.d/"));

  const Finding* fin = find(fs, "timewait.fin_timeout");
  REQUIRE(fin != nullptr);
  CHECK(has(fin->meaning, "does NOT shorten TIME_WAIT"));
  CHECK(find(fs, "timewait.buckets")->severity == "ok");
  CHECK(find(fs, "timewait.destinations")->value == "none");
  CHECK(find(fs, "listen.somaxconn")->severity == "ok");
  CHECK(find(fs, "listen.syncookies")->severity == "ok");
  CHECK(find(fs, "fd.file_max")->severity == "ok");
  CHECK(find(fs, "ports.timestamps")->severity == "ok");
}

TEST_CASE("evaluate_host: tcp_tw_reuse 0, 1 and 2 and the rates they allow") {
  HostFacts f = host_facts();
  f.settings.tw_reuse = 0;
  std::vector<Finding> fs = evaluate_host(f);
  const Finding* r = find(fs, "ports.tw_reuse");
  REQUIRE(r != nullptr);
  CHECK(r->severity == "warning");
  CHECK(r->value == "0 (off)");
  CHECK(has(r->meaning, "28232/60 s = 470/s"));
  CHECK(has(r->meaning, "28232/1 s = 28232/s"));
  CHECK(has(r->fix, "sysctl -w net.ipv4.tcp_tw_reuse=1"));
  CHECK(has(r->fix, "keep-alive"));

  // A remote destination already holding 60 % of the ports makes it critical.
  add_outgoing(&f, "10.0.0.1", "10.0.0.5", 443, 17000, 16000);
  fs = evaluate_host(f);
  check_well_formed(fs);
  CHECK(find(fs, "ports.tw_reuse")->severity == "critical");
  const Finding* d = find(fs, "timewait.dest.1");
  REQUIRE(d != nullptr);
  CHECK(d->severity == "warning");
  CHECK(d->subject == "10.0.0.1 -> 10.0.0.5:443");
  CHECK(d->value == "17000 of 28232 ports (60 %)");
  CHECK(has(d->meaning, "16000 in TIME_WAIT"));
  CHECK(has(d->fix, "tcp_tw_reuse=1"));
  CHECK(has(d->fix, "add source addresses"));
  CHECK(find(fs, "timewait.destinations") == nullptr);

  // tw_reuse=2 with the same busy remote destination: loopback-only reuse does not help it.
  f.settings.tw_reuse = 2;
  fs = evaluate_host(f);
  CHECK(find(fs, "ports.tw_reuse")->severity == "warning");
  CHECK(find(fs, "timewait.dest.1")->severity == "warning");

  // tw_reuse=1: the TIME_WAIT older than 1 s are reusable, the destination is no longer flagged.
  f.settings.tw_reuse = 1;
  add_outgoing(&f, "10.0.0.1", "10.0.0.5", 443, 17000, 16000);
  fs = evaluate_host(f);
  r = find(fs, "ports.tw_reuse");
  CHECK(r->severity == "ok");
  CHECK(has(r->meaning, "28232/1 s = 28232/s"));
  CHECK(find(fs, "timewait.dest.1") == nullptr);
  CHECK(find(fs, "timewait.destinations")->value == "1000 of 28232 ports (3.5 %)");
  CHECK(has(find(fs, "timewait.destinations")->meaning, "16000 reusable now"));

  // A shorter tcp_tw_reuse_delay (6.13+) raises the rate and is reported.
  f.settings.tw_reuse_delay_ms = 250;
  fs = evaluate_host(f);
  CHECK(has(find(fs, "ports.tw_reuse")->meaning, "28232/0.25 s = 112928/s"));
  REQUIRE(find(fs, "ports.tw_reuse_delay") != nullptr);
  CHECK(find(fs, "ports.tw_reuse_delay")->severity == "info");

  // Destinations 80 % full are critical.
  f.settings.tw_reuse = 0;
  add_outgoing(&f, "10.0.0.1", "10.0.0.5", 443, 25000, 24000);
  CHECK(find(evaluate_host(f), "timewait.dest.1")->severity == "critical");
}

TEST_CASE("evaluate_host: tcp_timestamps=0 disables reuse") {
  HostFacts f = host_facts();
  f.settings.timestamps = 0;
  f.settings.tw_reuse = 1;
  auto fs = evaluate_host(f);
  check_well_formed(fs);
  const Finding* ts = find(fs, "ports.timestamps");
  REQUIRE(ts != nullptr);
  CHECK(ts->severity == "warning");
  CHECK(has(ts->meaning, "tcp_tw_reuse never applies"));
  CHECK(has(ts->fix, "sysctl -w net.ipv4.tcp_timestamps=1"));
  const Finding* r = find(fs, "ports.tw_reuse");
  CHECK(r->severity == "warning");
  CHECK(has(r->meaning, "cannot work"));
  CHECK(has(r->meaning, "470/s"));
}

TEST_CASE("evaluate_host: narrowed and reserved port ranges (a tuned netns captured on 6.18)") {
  HostFacts f = host_facts();
  f.settings = settings_fixture("tuned_6.18");
  auto fs = evaluate_host(f);
  check_well_formed(fs);
  const Finding* range = find(fs, "ports.range");
  CHECK(range->severity == "critical");  // 899 usable ports
  CHECK(range->value == "20000-20999 (899 usable ports)");
  CHECK(has(range->meaning, "899/60 s = 14/s"));
  CHECK(has(range->fix, "ip_local_port_range"));
  const Finding* res = find(fs, "ports.reserved");
  REQUIRE(res != nullptr);
  CHECK(res->severity == "info");
  CHECK(res->value == "8080,20100-20199,20500,30000-30010");
  CHECK(has(res->meaning, "101 reserved ports"));
  CHECK(has(res->meaning, "899 of its 1000"));

  CHECK(find(fs, "timewait.fin_timeout")->severity == "info");  // 15 s: still explains TIME_WAIT stays 60 s
  CHECK(has(find(fs, "timewait.fin_timeout")->meaning, "fixed at 60 s"));
  CHECK(find(fs, "listen.somaxconn")->severity == "warning");  // 128
  const Finding* sc = find(fs, "listen.syncookies");
  CHECK(sc->severity == "warning");
  CHECK(has(sc->meaning, "3/4 of tcp_max_syn_backlog (192)"));
  CHECK(has(sc->meaning, "tcp_max_syn_backlog 256 is small"));
  CHECK(has(sc->fix, "sysctl -w net.ipv4.tcp_syncookies=1"));
  CHECK(find(fs, "timewait.buckets")->severity == "ok");  // 5000 > 899 usable, no TIME_WAIT

  // Reserved ranges all outside the port range change nothing.
  f.settings = settings_fixture("host_6.18");
  f.settings.reserved = {{8080, 8080}};
  CHECK(find(evaluate_host(f), "ports.reserved")->severity == "ok");
}

TEST_CASE("evaluate_host: tcp_max_tw_buckets reached or below the port range") {
  HostFacts f = host_facts();
  f.settings.max_tw_buckets = 5000;
  add_outgoing(&f, "10.0.0.1", "10.0.0.5", 443, 5000, 5000);
  std::vector<Finding> fs = evaluate_host(f);
  const Finding* b = find(fs, "timewait.buckets");
  REQUIRE(b != nullptr);
  CHECK(b->severity == "critical");
  CHECK(b->value == "5000 of 5000 (100 %)");
  CHECK(has(b->meaning, "time wait bucket table overflow"));
  CHECK(has(b->fix, "sysctl -w net.ipv4.tcp_max_tw_buckets=262144"));

  add_outgoing(&f, "10.0.0.1", "10.0.0.5", 443, 100, 100);
  fs = evaluate_host(f);
  b = find(fs, "timewait.buckets");
  CHECK(b->severity == "info");  // not full, but smaller than the 28232 usable ports
  CHECK(has(b->meaning, "below one destination's 28232 usable ports"));

  // The counter shows it already happened (captured after 10 closes with tcp_max_tw_buckets=5).
  f.counters = tcp_counters(*parse_netstat_counters(fixture("netstat_tw_overflow_6.18.txt")));
  fs = evaluate_host(f);
  b = find(fs, "timewait.buckets");
  CHECK(b->severity == "warning");
  CHECK(has(b->meaning, "TcpExtTCPTimeWaitOverflow = 5"));
  CHECK_FALSE(b->fix.empty());
}

TEST_CASE("evaluate_host: listeners capped by somaxconn, filling and full") {
  HostFacts f = host_facts();
  f.settings.somaxconn = 4096;
  auto listener = [](const char* addr, uint16_t port, uint32_t queue, uint32_t max) {
    ListenerFact l;
    l.family = AF_INET;
    l.addr = ip(AF_INET, addr);
    l.port = port;
    l.queue = queue;
    l.max_backlog = max;
    return l;
  };
  f.sockets.listeners = {listener("0.0.0.0", 22, 0, 128),      // fine: no finding
                         listener("0.0.0.0", 443, 3, 4096),    // capped
                         listener("10.0.0.1", 8080, 70, 128),  // filling
                         listener("127.0.0.1", 9090, 2, 1)};   // full
  auto fs = evaluate_host(f);
  check_well_formed(fs);
  std::vector<const Finding*> qs;
  for (const Finding& x : fs)
    if (x.id.rfind("listen.queue.", 0) == 0) qs.push_back(&x);
  REQUIRE(qs.size() == 3);
  CHECK(qs[0]->subject == "0.0.0.0:443");
  CHECK(qs[0]->severity == "info");
  CHECK(qs[0]->value == "queue 3, backlog 4096 (capped)");
  CHECK(has(qs[0]->meaning, "equals net.core.somaxconn"));
  CHECK(has(qs[0]->fix, "raise net.core.somaxconn above 4096"));
  CHECK(qs[1]->subject == "10.0.0.1:8080");
  CHECK(qs[1]->severity == "warning");
  CHECK(qs[2]->subject == "127.0.0.1:9090");
  CHECK(qs[2]->severity == "critical");
  CHECK(has(qs[2]->meaning, "The queue is full"));
  CHECK(has(qs[2]->meaning, "holds at most 2"));
}

TEST_CASE("evaluate_host: accept-queue overflows already counted by the kernel") {
  HostFacts f = host_facts();
  CHECK(find(evaluate_host(f), "listen.overflows")->severity == "ok");
  f.counters = tcp_counters(*parse_netstat_counters(fixture("netstat_netns_overflow_6.18.txt")));
  auto fs = evaluate_host(f);
  const Finding* o = find(fs, "listen.overflows");
  REQUIRE(o != nullptr);
  CHECK(o->severity == "warning");
  CHECK(o->value == "8 overflows, 8 drops");
  CHECK(has(o->meaning, "8 handshakes were dropped"));
  CHECK(has(o->fix, "connscope trace"));
  f.counters_read = false;  // unreadable counters: no finding rather than a false "ok"
  CHECK(find(evaluate_host(f), "listen.overflows") == nullptr);
}

TEST_CASE("evaluate_host: a busy process near its open-file limit") {
  HostFacts f = host_facts();
  ProcessFds nginx;
  nginx.pid = 4242;
  nginx.comm = "nginx";
  nginx.fds = 850;
  nginx.soft_limit = 1024;
  nginx.hard_limit = 524288;
  ProcessFds calm;
  calm.pid = 1;
  calm.comm = "systemd";
  calm.fds = 120;
  calm.soft_limit = 1024;
  f.processes = {nginx, calm};
  auto fs = evaluate_host(f);
  check_well_formed(fs);
  const Finding* p = find(fs, "fd.process.4242");
  REQUIRE(p != nullptr);
  CHECK(p->severity == "warning");
  CHECK(p->subject == "pid 4242 (nginx)");
  CHECK(p->value == "850 of 1024 fds (83 %; hard limit 524288)");
  CHECK(has(p->meaning, "EMFILE"));
  CHECK(has(p->fix, "prlimit --pid 4242 --nofile=65536:65536"));
  CHECK(has(p->fix, "LimitNOFILE=65536"));
  CHECK(find(fs, "fd.process.1") == nullptr);
  CHECK(find(fs, "fd.processes") == nullptr);

  f.processes[0].fds = 1000;
  CHECK(find(evaluate_host(f), "fd.process.4242")->severity == "critical");
  f.processes[0].fds = 100;
  fs = evaluate_host(f);
  CHECK(find(fs, "fd.process.4242") == nullptr);
  CHECK(find(fs, "fd.processes")->severity == "ok");
  f.processes[0].soft_limit = kUnlimited;  // no limit, no finding
  f.processes[0].fds = 5000000;
  CHECK(find(evaluate_host(f), "fd.process.4242") == nullptr);

  // The host-wide table nearly full.
  f.files_allocated = 2400000;
  fs = evaluate_host(f);
  const Finding* fm = find(fs, "fd.file_max");
  CHECK(fm->severity == "critical");
  CHECK(has(fm->meaning, "ENFILE"));
  CHECK(has(fm->fix, "sysctl -w fs.file-max=4941876"));
}

TEST_CASE("evaluate_host: other network namespaces only when they differ or are busy") {
  HostFacts f = host_facts();
  f.other_netns_read = true;
  OtherNetns same;
  same.netns = 4026532001u;
  same.path = "/proc/77/ns/net";
  same.label = "pid 77 (envoy)";
  same.settings = f.settings;
  OtherNetns narrow = same;
  narrow.netns = 4026532002u;
  narrow.path = "/run/netns/blue";
  narrow.label = "/run/netns/blue";
  narrow.settings = settings_fixture("tuned_6.18");
  OtherNetns busy = same;
  busy.netns = 4026532003u;
  busy.has_busiest = true;
  busy.busiest.family = AF_INET;
  busy.busiest.saddr = ip(AF_INET, "10.1.0.2");
  busy.busiest.daddr = ip(AF_INET, "10.1.0.9");
  busy.busiest.dport = 5432;
  busy.busiest.sockets = 20000;
  busy.busiest.time_wait = 19000;
  f.other_netns = {same, narrow, busy};
  auto fs = evaluate_host(f);
  check_well_formed(fs);
  CHECK(find(fs, "netns.4026532001") == nullptr);
  const Finding* n = find(fs, "netns.4026532002");
  REQUIRE(n != nullptr);
  CHECK(n->severity == "info");
  CHECK(has(n->meaning, "port range 20000-20999 (899 usable)"));
  CHECK(has(n->fix, "ip netns exec blue sysctl -w net.ipv4.ip_local_port_range='32768 60999'"));
  CHECK(has(n->fix, "net.ipv4.tcp_timestamps=1"));
  const Finding* b = find(fs, "netns.4026532003");
  REQUIRE(b != nullptr);
  CHECK(b->severity == "warning");  // 20000 of 28232
  CHECK(has(b->meaning, "10.1.0.2 -> 10.1.0.9:5432 holds 20000 of 28232 ports"));
  CHECK(has(b->fix, "nsenter --net=/proc/77/ns/net sysctl -w net.ipv4.tcp_tw_reuse=1"));
}

TEST_CASE("format_doctor_text and format_doctor_json render every finding") {
  HostFacts f = host_facts();
  f.kernel = "6.18.44";
  f.settings.tw_reuse = 0;
  add_outgoing(&f, "10.0.0.1", "10.0.0.5", 443, 17000, 16000);
  f.warnings = {"3 of 90 processes' fd tables are unreadable (not root): run as root (sudo) to see all"};
  auto fs = evaluate_host(f);
  const std::string text = format_doctor_text(f, fs);
  for (const char* title :
       {"Ephemeral ports", "TIME_WAIT", "Listen queues", "File descriptors", "Other network namespaces", "Notes"})
    CHECK_MESSAGE(has(text, std::string("\n") + title + "\n"), title);
  CHECK(has(text, "connscope doctor: kernel 6.18.44, netns 4026531840"));
  CHECK(has(text, "[WARNING] net.ipv4.tcp_tw_reuse = 0 (off)") == false);  // critical with the busy destination
  CHECK(has(text, "[CRITICAL] net.ipv4.tcp_tw_reuse = 0 (off)"));
  CHECK(has(text, "[WARNING] 10.0.0.1 -> 10.0.0.5:443 = 17000 of 28232 ports (60 %)"));
  CHECK(has(text, "    fix: sysctl -w net.ipv4.tcp_tw_reuse=1"));
  CHECK(has(text, "  - 3 of 90 processes"));
  for (const Finding& x : fs) CHECK_MESSAGE(has(text, x.subject + " = " + x.value), x.id);

  const nlohmann::json j = nlohmann::json::parse(format_doctor_json(f, fs));
  REQUIRE(j["findings"].size() == fs.size());
  for (size_t i = 0; i < fs.size(); ++i) {
    CHECK(j["findings"][i]["id"] == fs[i].id);
    CHECK(j["findings"][i]["severity"] == fs[i].severity);
    CHECK(j["findings"][i]["fix"] == fs[i].fix);
  }
  CHECK(j["settings"]["ip_local_port_range"][0] == 32768);
  CHECK(j["settings"]["usable_ports"] == 28232);
  CHECK(j["sockets"]["destinations"][0]["destination"] == "10.0.0.5:443");
  CHECK(j["sockets"]["destinations"][0]["time_wait"] == 16000);
  CHECK(j["warnings"].size() == 1);
  CHECK(j["counters"]["TcpExtListenOverflows"] == 0);
  CHECK(j["other_netns"].is_null());  // not inspected
}

TEST_CASE("collect_host_facts reads this machine (root or not)") {
  std::string warnings;
  HostFacts f = collect_host_facts(&warnings);
  CHECK(f.settings_read);
  CHECK(f.counters_read);
  CHECK(f.settings.netns == current_netns_inode());
  CHECK(f.settings.usable_ports > 0);
  CHECK(f.sockets_read);
  CHECK(f.file_max > 0);
  CHECK(f.processes_scanned > 0);
  CHECK_FALSE(f.processes.empty());  // at least this test process has open files
  for (size_t i = 1; i < std::min<size_t>(f.processes.size(), 5); ++i)
    CHECK(f.processes[i - 1].fds >= f.processes[i].fds);  // busiest first (near-limit extras may follow)
  for (const std::string& w : f.warnings) {
    CHECK(w.find('\n') == std::string::npos);
    CHECK(has(warnings, w));
  }
  auto fs = evaluate_host(f);
  check_well_formed(fs);
  CHECK(has(format_doctor_text(f, fs), "Ephemeral ports"));
}
