// Unit tests: listener dumps and listen-drop attribution from captured bytes.
#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <netinet/tcp.h>

#include <cstring>

#include "host/listener_poller.hpp"
#include "netlink_builder.hpp"
#include "snapshot_fixture.hpp"

using namespace connscope;
using test::append_msg;

namespace {

ListenerInfo listener_v4(const char* addr, uint16_t port, uint32_t queue_len, uint32_t max_backlog) {
  ListenerInfo l{};
  l.family = AF_INET;
  inet_pton(AF_INET, addr, l.addr.data());
  l.port = port;
  l.queue_len = queue_len;
  l.max_backlog = max_backlog;
  return l;
}

uint64_t total(const std::vector<cs_accept_queue_event>& recs, uint8_t kind) {
  uint64_t sum = 0;
  for (const auto& r : recs)
    if (r.kind == kind) sum += r.count;
  return sum;
}

constexpr uint32_t kNetns = 4026532177u;
constexpr uint64_t kTs = 123456789u;

}  // namespace

TEST_CASE("parse_netstat reads ListenOverflows/ListenDrops from real /proc/net/netstat text") {
  // Root netns of the 6.18 build machine: no overflows.
  auto host = parse_netstat(test::read_fixture("netstat_host_6.18.txt"));
  REQUIRE(host.has_value());
  CHECK(host->listen_overflows == 0);
  CHECK(host->listen_drops == 0);

  // A netns with a backlog-1 listener that never accepts and 5 clients.
  auto full = parse_netstat(test::read_fixture("netstat_netns_overflow_6.18.txt"));
  REQUIRE(full.has_value());
  CHECK(full->listen_overflows == 8);
  CHECK(full->listen_drops == 8);
}

TEST_CASE("parse_netstat rejects truncated, garbled and incomplete text") {
  CHECK_FALSE(parse_netstat(test::read_fixture("netstat_truncated.txt")).has_value());
  CHECK_FALSE(parse_netstat(test::read_fixture("netstat_garbled.txt")).has_value());
  CHECK_FALSE(parse_netstat("").has_value());
  CHECK_FALSE(parse_netstat("IpExt: InNoRoutes\nIpExt: 0\n").has_value());
  CHECK_FALSE(parse_netstat("TcpExt: ListenOverflows ListenDrops\n").has_value());
  CHECK_FALSE(parse_netstat("TcpExt: ListenOverflows ListenDrops\nTcpExt: 1\n").has_value());
  CHECK_FALSE(parse_netstat("TcpExt: ListenOverflows ListenDrops\nTcpExt: 1 -2\n").has_value());
  CHECK_FALSE(parse_netstat("TcpExt: SyncookiesSent ListenDrops\nTcpExt: 1 2\n").has_value());
  auto ok = parse_netstat("IpExt: InNoRoutes\nIpExt: 0\nTcpExt: A ListenDrops ListenOverflows\nTcpExt: 7 5 3");
  REQUIRE(ok.has_value());
  CHECK(ok->listen_overflows == 3);
  CHECK(ok->listen_drops == 5);
}

TEST_CASE("listener_is_full follows sk_acceptq_is_full: backlog > max") {
  CHECK_FALSE(listener_is_full(listener_v4("127.0.0.1", 80, 1, 1)));
  CHECK(listener_is_full(listener_v4("127.0.0.1", 80, 2, 1)));
  CHECK_FALSE(listener_is_full(listener_v4("127.0.0.1", 80, 0, 0)));
  CHECK(listener_is_full(listener_v4("127.0.0.1", 80, 1, 0)));
}

TEST_CASE("one full listener gets the whole overflow delta") {
  std::vector<ListenerInfo> ls = {listener_v4("10.0.0.1", 8080, 3, 128), listener_v4("127.0.0.1", 47001, 2, 1)};
  auto recs = attribute_listen_drops(kNetns, {10, 10}, {18, 18}, ls, kTs);
  REQUIRE(recs.size() == 1);
  const auto& r = recs[0];
  CHECK(r.h.type == CS_EV_ACCEPT_QUEUE);
  CHECK(r.h.tier == CS_TIER_FALLBACK);
  CHECK(r.h.flags == CS_AQ_F_APPROXIMATE);
  CHECK(r.h.ts_ns == kTs);
  CHECK(r.kind == CS_AQ_OVERFLOW);
  CHECK(r.count == 8);
  CHECK(r.flow.family == AF_INET);
  CHECK(r.flow.sport == 47001);
  CHECK(r.flow.netns == kNetns);
  const uint8_t lo[16] = {127, 0, 0, 1};
  CHECK(std::memcmp(r.flow.saddr, lo, 16) == 0);
  CHECK(r.flow.dport == 0);
  CHECK(r.backlog == 2);
  CHECK(r.max_backlog == 1);
}

TEST_CASE("two full listeners split an odd delta exactly") {
  ListenerInfo v6{};
  v6.family = AF_INET6;
  inet_pton(AF_INET6, "::", v6.addr.data());
  v6.port = 443;
  v6.queue_len = 4097;
  v6.max_backlog = 4096;
  std::vector<ListenerInfo> ls = {listener_v4("0.0.0.0", 80, 129, 128), listener_v4("0.0.0.0", 22, 0, 128), v6};
  auto recs = attribute_listen_drops(kNetns, {100, 100}, {107, 107}, ls, kTs);
  REQUIRE(recs.size() == 2);
  CHECK(recs[0].flow.sport == 80);
  CHECK(recs[0].count == 4);
  CHECK(recs[1].flow.sport == 443);
  CHECK(recs[1].flow.family == AF_INET6);
  CHECK(recs[1].count == 3);
  CHECK(recs[1].backlog == 4097);
  CHECK(total(recs, CS_AQ_OVERFLOW) == 7);
  CHECK(total(recs, CS_AQ_DROP) == 0);

  // A delta smaller than the number of full listeners: no zero-count records.
  auto one = attribute_listen_drops(kNetns, {100, 100}, {101, 101}, ls, kTs);
  REQUIRE(one.size() == 1);
  CHECK(one[0].flow.sport == 80);
  CHECK(one[0].count == 1);
}

TEST_CASE("no full listener: one unattributed record carries the whole delta") {
  std::vector<ListenerInfo> ls = {listener_v4("127.0.0.1", 47001, 1, 1), listener_v4("0.0.0.0", 22, 0, 128)};
  auto recs = attribute_listen_drops(kNetns, {0, 0}, {5, 5}, ls, kTs);
  REQUIRE(recs.size() == 1);
  CHECK(recs[0].kind == CS_AQ_OVERFLOW);
  CHECK(recs[0].count == 5);
  CHECK(recs[0].flow.family == 0);
  CHECK(recs[0].flow.sport == 0);
  CHECK(recs[0].flow.netns == kNetns);
  CHECK(recs[0].backlog == 0);

  auto none = attribute_listen_drops(kNetns, {0, 0}, {2, 2}, {}, kTs);
  REQUIRE(none.size() == 1);
  CHECK(none[0].count == 2);
}

TEST_CASE("drops beyond overflows become one CS_AQ_DROP record") {
  std::vector<ListenerInfo> ls = {listener_v4("127.0.0.1", 47001, 2, 1)};
  auto recs = attribute_listen_drops(kNetns, {10, 12}, {13, 20}, ls, kTs);
  REQUIRE(recs.size() == 2);
  CHECK(recs[0].kind == CS_AQ_OVERFLOW);
  CHECK(recs[0].count == 3);
  CHECK(recs[1].kind == CS_AQ_DROP);
  CHECK(recs[1].count == 5);
  CHECK(recs[1].flow.sport == 0);
  CHECK(recs[1].h.flags == CS_AQ_F_APPROXIMATE);

  // Drops only (e.g. SYN queue full without syncookies).
  auto drops = attribute_listen_drops(kNetns, {10, 12}, {10, 15}, ls, kTs);
  REQUIRE(drops.size() == 1);
  CHECK(drops[0].kind == CS_AQ_DROP);
  CHECK(drops[0].count == 3);
}

TEST_CASE("counter reset or no change emits nothing") {
  std::vector<ListenerInfo> ls = {listener_v4("127.0.0.1", 47001, 2, 1)};
  CHECK(attribute_listen_drops(kNetns, {1000, 1000}, {3, 3}, ls, kTs).empty());
  CHECK(attribute_listen_drops(kNetns, {1000, 1000}, {1001, 3}, ls, kTs).empty());
  CHECK(attribute_listen_drops(kNetns, {7, 9}, {7, 9}, ls, kTs).empty());
  // Overflows read ahead of drops (non-atomic read): no negative DROP.
  auto recs = attribute_listen_drops(kNetns, {7, 9}, {9, 10}, ls, kTs);
  REQUIRE(recs.size() == 1);
  CHECK(recs[0].kind == CS_AQ_OVERFLOW);
  CHECK(recs[0].count == 2);
}

TEST_CASE("a delta beyond 32 bits is carried by several records, not truncated") {
  const uint64_t big = (uint64_t{1} << 32) + 5;
  auto recs = attribute_listen_drops(kNetns, {0, 0}, {big, big}, {}, kTs);
  REQUIRE(recs.size() == 2);
  CHECK(total(recs, CS_AQ_OVERFLOW) == big);
}

namespace {

inet_diag_msg diag(uint8_t family, uint8_t state, const char* addr, uint16_t port, uint32_t rq, uint32_t wq) {
  inet_diag_msg m{};
  m.idiag_family = family;
  m.idiag_state = state;
  inet_pton(family, addr, m.id.idiag_src);
  m.id.idiag_sport = htons(port);
  m.idiag_rqueue = rq;
  m.idiag_wqueue = wq;
  return m;
}

}  // namespace

TEST_CASE("parse_sock_diag_listeners decodes listeners and stops at NLMSG_DONE") {
  std::vector<uint8_t> buf;
  auto a = diag(AF_INET, TCP_LISTEN, "127.0.0.1", 47001, 2, 1);
  auto b = diag(AF_INET6, TCP_LISTEN, "::1", 443, 0, 4096);
  auto c = diag(AF_INET, TCP_ESTABLISHED, "10.0.0.1", 5555, 0, 0);
  append_msg(&buf, SOCK_DIAG_BY_FAMILY, &a, sizeof a);
  append_msg(&buf, SOCK_DIAG_BY_FAMILY, &b, sizeof b);
  append_msg(&buf, SOCK_DIAG_BY_FAMILY, &c, sizeof c);

  std::vector<ListenerInfo> out;
  CHECK(parse_sock_diag_listeners(buf, &out) == 0);  // more to come
  REQUIRE(out.size() == 2);
  CHECK(out[0].family == AF_INET);
  CHECK(out[0].port == 47001);
  CHECK(out[0].queue_len == 2);
  CHECK(out[0].max_backlog == 1);
  CHECK(out[0].addr[0] == 127);
  CHECK(out[0].addr[3] == 1);
  CHECK(out[0].addr[4] == 0);
  CHECK(out[1].family == AF_INET6);
  CHECK(out[1].port == 443);
  CHECK(out[1].addr[15] == 1);
  CHECK(out[1].max_backlog == 4096);

  int done = 0;
  std::vector<uint8_t> last;
  append_msg(&last, NLMSG_DONE, &done, sizeof done);
  CHECK(parse_sock_diag_listeners(last, &out) == 1);
}

TEST_CASE("parse_sock_diag_listeners rejects malformed buffers and reports errors") {
  std::vector<ListenerInfo> out;
  auto a = diag(AF_INET, TCP_LISTEN, "127.0.0.1", 80, 0, 128);
  std::vector<uint8_t> buf;
  append_msg(&buf, SOCK_DIAG_BY_FAMILY, &a, sizeof a);

  std::vector<uint8_t> cut(buf.begin(), buf.begin() + 40);  // header claims more than the buffer holds
  CHECK(parse_sock_diag_listeners(cut, &out) == -EBADMSG);

  std::vector<uint8_t> short_payload;
  append_msg(&short_payload, SOCK_DIAG_BY_FAMILY, &a, 8);  // shorter than inet_diag_msg
  CHECK(parse_sock_diag_listeners(short_payload, &out) == -EBADMSG);
  CHECK(out.empty());

  nlmsgerr err{};
  err.error = -EACCES;
  std::vector<uint8_t> error_msg;
  append_msg(&error_msg, NLMSG_ERROR, &err, sizeof err);
  CHECK(parse_sock_diag_listeners(error_msg, &out) == -EACCES);

  CHECK(parse_sock_diag_listeners({}, &out) == 0);
}

TEST_CASE("parse_sock_diag_listeners reads the listener's drop counter from INET_DIAG_SKMEMINFO") {
  // inet_diag_msg followed by one rtattr holding u32[SK_MEMINFO_VARS].
  auto m = diag(AF_INET, TCP_LISTEN, "10.1.2.3", 8080, 2, 1);
  std::vector<uint8_t> payload(NLMSG_ALIGN(sizeof m) + RTA_SPACE(SK_MEMINFO_VARS * sizeof(uint32_t)), 0);
  std::memcpy(payload.data(), &m, sizeof m);
  rtattr a{};
  a.rta_len = static_cast<unsigned short>(RTA_LENGTH(SK_MEMINFO_VARS * sizeof(uint32_t)));
  a.rta_type = INET_DIAG_SKMEMINFO;
  std::memcpy(payload.data() + NLMSG_ALIGN(sizeof m), &a, sizeof a);
  const uint32_t drops = 17;
  std::memcpy(payload.data() + NLMSG_ALIGN(sizeof m) + RTA_LENGTH(SK_MEMINFO_DROPS * sizeof(uint32_t)), &drops,
              sizeof drops);
  std::vector<uint8_t> buf;
  append_msg(&buf, SOCK_DIAG_BY_FAMILY, payload.data(), payload.size());
  std::vector<ListenerInfo> out;
  CHECK(parse_sock_diag_listeners(buf, &out) == 0);
  REQUIRE(out.size() == 1);
  CHECK(out[0].has_drops);
  CHECK(out[0].drops == 17);

  // Without the attribute the counter is marked absent.
  std::vector<uint8_t> plain;
  append_msg(&plain, SOCK_DIAG_BY_FAMILY, &m, sizeof m);
  out.clear();
  CHECK(parse_sock_diag_listeners(plain, &out) == 0);
  REQUIRE(out.size() == 1);
  CHECK_FALSE(out[0].has_drops);
}

TEST_CASE("overflows go to the listener whose own drop counter grew, even when it is no longer full") {
  auto with_drops = [](ListenerInfo l, uint32_t drops) {
    l.drops = drops;
    l.has_drops = true;
    return l;
  };
  // 8080 overflowed 5 times and drained since; 9090 is full but dropped nothing.
  std::vector<ListenerInfo> before = {with_drops(listener_v4("10.0.0.1", 8080, 2, 1), 10),
                                      with_drops(listener_v4("10.0.0.1", 9090, 2, 1), 3)};
  std::vector<ListenerInfo> now = {with_drops(listener_v4("10.0.0.1", 8080, 0, 1), 15),
                                   with_drops(listener_v4("10.0.0.1", 9090, 2, 1), 3)};
  auto recs = attribute_listen_drops(kNetns, {100, 100}, {105, 105}, now, kTs, &before);
  REQUIRE(recs.size() == 1);
  CHECK(recs[0].kind == CS_AQ_OVERFLOW);
  CHECK(recs[0].flow.sport == 8080);
  CHECK(recs[0].count == 5);
  CHECK(recs[0].flow.netns == kNetns);

  // A counter that grew less than the delta: the rest falls back to the full listener.
  now[0].drops = 12;
  recs = attribute_listen_drops(kNetns, {100, 100}, {105, 105}, now, kTs, &before);
  CHECK(total(recs, CS_AQ_OVERFLOW) == 5);
  uint64_t on_8080 = 0, on_9090 = 0;
  for (const auto& r : recs) (r.flow.sport == 8080 ? on_8080 : on_9090) += r.count;
  CHECK(on_8080 == 2);
  CHECK(on_9090 == 3);

  // Drops beyond overflows are placed on the listener whose counter has room left.
  now[0].drops = 20;
  recs = attribute_listen_drops(kNetns, {100, 100}, {105, 108}, now, kTs, &before);
  CHECK(total(recs, CS_AQ_OVERFLOW) == 5);
  CHECK(total(recs, CS_AQ_DROP) == 3);
  for (const auto& r : recs) CHECK(r.flow.sport == 8080);
}

TEST_CASE("a listener new since the last poll counts its drops from 0") {
  ListenerInfo fresh = listener_v4("10.0.0.2", 8092, 1, 1);  // not full at the poll
  fresh.drops = 4;
  fresh.has_drops = true;
  const std::vector<ListenerInfo> prev = {};  // the netns was seen, the listener was not there yet
  auto recs = attribute_listen_drops(kNetns, {10, 10}, {14, 14}, {fresh}, kTs, &prev);
  REQUIRE(recs.size() == 1);
  CHECK(recs[0].flow.sport == 8092);
  CHECK(recs[0].count == 4);
}

TEST_CASE("overflows after a full listener closed go to it, not to unattributed") {
  const std::vector<ListenerInfo> prev = {listener_v4("10.0.0.2", 8092, 2, 1), listener_v4("0.0.0.0", 22, 0, 128)};
  const std::vector<ListenerInfo> now = {listener_v4("0.0.0.0", 22, 0, 128)};
  auto recs = attribute_listen_drops(kNetns, {10, 10}, {13, 13}, now, kTs, &prev);
  REQUIRE(recs.size() == 1);
  CHECK(recs[0].flow.sport == 8092);
  CHECK(recs[0].count == 3);
  // Still open and no longer full: not blamed for what it cannot explain.
  const std::vector<ListenerInfo> drained = {listener_v4("10.0.0.2", 8092, 0, 1)};
  auto un = attribute_listen_drops(kNetns, {10, 10}, {13, 13}, drained, kTs, &prev);
  REQUIRE(un.size() == 1);
  CHECK(un[0].flow.sport == 0);
}
