// Unit tests: the socket census from captured sock_diag dumps.
#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>

#include "events/event_format.hpp"
#include "host/listener_poller.hpp"
#include "host/socket_census.hpp"
#include "netlink_builder.hpp"
#include "snapshot_fixture.hpp"

using namespace connscope;
using test::append_msg;

namespace {

// The recv() buffers of a captured dump (fixtures/sockdiag/capture_sock_diag.cpp):
// each framed by its length as a little-endian u32.
std::vector<std::vector<uint8_t>> dump_fixture(const char* name) {
  const std::filesystem::path path = test::fixture_path(std::string("sockdiag/") + name);
  std::ifstream in(path, std::ios::binary);
  REQUIRE_MESSAGE(in.good(), "missing fixture " << path);
  std::vector<uint8_t> raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::vector<uint8_t>> bufs;
  size_t off = 0;
  while (off + 4 <= raw.size()) {
    const uint32_t len = raw[off] | raw[off + 1] << 8 | raw[off + 2] << 16 | static_cast<uint32_t>(raw[off + 3]) << 24;
    off += 4;
    REQUIRE(len <= raw.size() - off);
    bufs.emplace_back(raw.begin() + static_cast<std::ptrdiff_t>(off),
                      raw.begin() + static_cast<std::ptrdiff_t>(off + len));
    off += len;
  }
  REQUIRE(off == raw.size());
  REQUIRE_FALSE(bufs.empty());
  return bufs;
}

std::string addr_text(const SocketRecord& s, bool dst) {
  char text[INET6_ADDRSTRLEN] = {};
  inet_ntop(s.family, (dst ? s.daddr : s.saddr).data(), text, sizeof text);
  return text;
}

std::map<uint8_t, int> count_states(const std::vector<SocketRecord>& recs) {
  std::map<uint8_t, int> n;
  for (const auto& r : recs) ++n[r.state];
  return n;
}

const SocketRecord* find_listener(const std::vector<SocketRecord>& recs, uint16_t port) {
  auto it = std::find_if(recs.begin(), recs.end(),
                         [&](const SocketRecord& r) { return r.state == TCP_LISTEN && r.sport == port; });
  return it == recs.end() ? nullptr : &*it;
}

// Parses all buffers of a fixture the way dump_tcp_sockets does: 0 until the last, which returns 1.
std::vector<SocketRecord> parse_all(const char* name) {
  std::vector<SocketRecord> out;
  auto bufs = dump_fixture(name);
  for (size_t i = 0; i < bufs.size(); ++i)
    CHECK(parse_sock_diag_sockets(bufs[i], &out) == (i + 1 == bufs.size() ? 1 : 0));
  return out;
}

// Offsets just past each netlink message of a well-formed buffer.
std::vector<size_t> message_ends(const std::vector<uint8_t>& buf) {
  std::vector<size_t> ends;
  for (size_t off = 0; off < buf.size();) {
    nlmsghdr h;
    std::memcpy(&h, buf.data() + off, sizeof h);
    off += NLMSG_ALIGN(h.nlmsg_len);
    ends.push_back(off);
  }
  return ends;
}

}  // namespace

TEST_CASE("parse_sock_diag_sockets decodes a real IPv4 dump: listeners, ESTABLISHED and 60 TIME_WAIT over 3 buffers") {
  auto bufs = dump_fixture("dump_v4_6.18.bin");
  REQUIRE(bufs.size() == 3);  // the kernel's first dump skb is small (NLMSG_GOODSIZE): the dump spans buffers
  std::vector<SocketRecord> recs = parse_all("dump_v4_6.18.bin");
  REQUIRE(recs.size() == 66);
  auto n = count_states(recs);
  CHECK(n[TCP_LISTEN] == 2);
  CHECK(n[TCP_ESTABLISHED] == 4);
  CHECK(n[TCP_TIME_WAIT] == 60);

  const SocketRecord* l = find_listener(recs, 5000);
  REQUIRE(l != nullptr);
  CHECK(l->family == AF_INET);
  CHECK(addr_text(*l, false) == "127.0.0.1");
  CHECK(l->rqueue == 2);   // two connections in the accept queue, never accepted
  CHECK(l->wqueue == 16);  // listen(fd, 16)
  CHECK(l->inode != 0);
  REQUIRE(find_listener(recs, 5003) != nullptr);
  CHECK(find_listener(recs, 5003)->wqueue == 128);

  for (const auto& r : recs) {
    CHECK(r.family == AF_INET);
    CHECK(std::all_of(r.saddr.begin() + 4, r.saddr.end(), [](uint8_t b) { return b == 0; }));
    CHECK(std::all_of(r.daddr.begin() + 4, r.daddr.end(), [](uint8_t b) { return b == 0; }));
    if (r.state != TCP_TIME_WAIT) continue;
    // Client side of connections it closed first: ephemeral source port, 60 s timer running.
    CHECK(addr_text(r, true) == "127.0.0.1");
    CHECK(r.dport == 5003);
    CHECK(r.sport >= 40000);
    CHECK(r.sport <= 40999);
    CHECK(r.expires_ms > 0);
    CHECK(r.expires_ms <= 60000);
    CHECK(r.inode == 0);  // a timewait sock has no struct socket
  }
  int clients = 0;
  for (const auto& r : recs)
    if (r.state == TCP_ESTABLISHED && r.dport == 5000) {
      ++clients;
      CHECK(r.inode != 0);
      CHECK(r.sport >= 40000);
    }
  CHECK(clients == 2);
}

TEST_CASE("parse_sock_diag_sockets decodes a real IPv6 dump, IPv4-mapped peers stay AF_INET6") {
  std::vector<SocketRecord> recs = parse_all("dump_v6_6.18.bin");
  REQUIRE(recs.size() == 12);
  auto n = count_states(recs);
  CHECK(n[TCP_LISTEN] == 3);
  CHECK(n[TCP_ESTABLISHED] == 4);
  CHECK(n[TCP_TIME_WAIT] == 5);
  for (const auto& r : recs) CHECK(r.family == AF_INET6);

  const SocketRecord* l = find_listener(recs, 5001);
  REQUIRE(l != nullptr);
  CHECK(addr_text(*l, false) == "::1");
  CHECK(l->rqueue == 1);
  CHECK(l->wqueue == 8);
  l = find_listener(recs, 5002);
  REQUIRE(l != nullptr);
  CHECK(addr_text(*l, false) == "::");
  CHECK(l->wqueue == 4);

  int mapped = 0;
  for (const auto& r : recs) {
    if (addr_text(r, false) != "::ffff:127.0.0.1") continue;
    ++mapped;
    CHECK(r.state == TCP_ESTABLISHED);
    CHECK(addr_text(r, true) == "::ffff:127.0.0.1");
    CHECK(r.saddr[10] == 0xff);
    CHECK(r.saddr[12] == 127);
    CHECK(r.saddr[15] == 1);
  }
  CHECK(mapped == 2);
  for (const auto& r : recs)
    if (r.state == TCP_TIME_WAIT) {
      CHECK(addr_text(r, true) == "::1");
      CHECK(r.dport == 5004);
      CHECK(r.expires_ms > 0);
      CHECK(r.expires_ms <= 60000);
    }
}

TEST_CASE("parse_sock_diag_sockets rejects every truncation of a real buffer that cuts a message") {
  const std::vector<uint8_t> full = dump_fixture("dump_v4_6.18.bin")[0];
  const std::vector<size_t> ends = message_ends(full);
  REQUIRE(ends.size() == 38);
  REQUIRE(ends.back() == full.size());
  for (size_t len = 1; len < full.size(); ++len) {
    std::vector<SocketRecord> out(1);  // pre-existing content must survive a rejected buffer
    const int r = parse_sock_diag_sockets(std::span(full.data(), len), &out);
    const auto whole = static_cast<size_t>(std::count_if(ends.begin(), ends.end(), [&](size_t e) { return e <= len; }));
    if (std::find(ends.begin(), ends.end(), len) != ends.end()) {
      CHECK(r == 0);
      CHECK(out.size() == 1 + whole);
    } else {
      CHECK_MESSAGE(r == -EBADMSG, "prefix of " << len << " bytes");
      CHECK(out.size() == 1);
    }
  }
}

TEST_CASE("parse_sock_diag_sockets rejects garbled headers and reports kernel errors") {
  std::vector<uint8_t> good = dump_fixture("dump_v4_6.18.bin")[0];
  std::vector<SocketRecord> out;
  auto set_len = [](std::vector<uint8_t> b, size_t at, uint32_t len) {
    std::memcpy(b.data() + at, &len, sizeof len);
    return b;
  };
  const size_t second = message_ends(good)[0];
  CHECK(parse_sock_diag_sockets(set_len(good, 0, 0), &out) == -EBADMSG);  // shorter than a header
  CHECK(parse_sock_diag_sockets(set_len(good, 0, 15), &out) == -EBADMSG);
  CHECK(parse_sock_diag_sockets(set_len(good, 0, 0xffffffffu), &out) == -EBADMSG);       // beyond the buffer
  CHECK(parse_sock_diag_sockets(set_len(good, second, 40), &out) == -EBADMSG);           // payload too short
  CHECK(parse_sock_diag_sockets(set_len(good, second, good.size()), &out) == -EBADMSG);  // runs past the end
  CHECK(out.empty());

  // Deterministic fuzz: byte flips never crash and never yield records from a rejected buffer.
  uint32_t seed = 12345;
  for (int round = 0; round < 2000; ++round) {
    std::vector<uint8_t> b = good;
    for (int k = 0; k < 4; ++k) {
      seed = seed * 1103515245u + 12345u;
      b[(seed >> 8) % b.size()] ^= static_cast<uint8_t>(seed >> 24 | 1);
    }
    out.clear();
    const int r = parse_sock_diag_sockets(b, &out);
    CHECK((r == 0 || r == 1 || r < 0));
    if (r < 0) CHECK(out.empty());
    CHECK(out.size() <= b.size() / NLMSG_SPACE(sizeof(inet_diag_msg)));
  }

  nlmsgerr err{};
  err.error = -EPERM;
  std::vector<uint8_t> error_msg;
  append_msg(&error_msg, NLMSG_ERROR, &err, sizeof err);
  CHECK(parse_sock_diag_sockets(error_msg, &out) == -EPERM);
  err.error = 0;  // an ACK is not a dump answer
  error_msg.clear();
  append_msg(&error_msg, NLMSG_ERROR, &err, sizeof err);
  CHECK(parse_sock_diag_sockets(error_msg, &out) == -EBADMSG);

  // A dump that failed in the kernel reports the error in NLMSG_DONE.
  int status = -ENOBUFS;
  std::vector<uint8_t> done;
  append_msg(&done, NLMSG_DONE, &status, sizeof status);
  CHECK(parse_sock_diag_sockets(done, &out) == -ENOBUFS);
  // The records before a DONE in the same buffer are kept.
  std::vector<uint8_t> tail = good;
  status = 0;
  append_msg(&tail, NLMSG_DONE, &status, sizeof status);
  out.clear();
  CHECK(parse_sock_diag_sockets(tail, &out) == 1);
  CHECK(out.size() == message_ends(good).size());
  CHECK(parse_sock_diag_sockets({}, &out) == 0);
}

// A loopback listener (backlog 7) and one connection to it, not accepted.
struct LoopbackPair {
  int l = -1, c = -1;
  uint16_t port = 0;
  LoopbackPair() {
    l = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(l >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(l, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(l, 7) == 0);
    socklen_t alen = sizeof a;
    REQUIRE(::getsockname(l, reinterpret_cast<sockaddr*>(&a), &alen) == 0);
    port = ntohs(a.sin_port);
    c = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(::connect(c, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  }
  ~LoopbackPair() {
    ::close(c);
    ::close(l);
  }
};

TEST_CASE("dump_tcp_sockets sees a listener and a connection created here, and filters by state") {
  LoopbackPair p;
  const uint16_t port = p.port;

  std::vector<SocketRecord> all;
  REQUIRE(dump_tcp_sockets(&all) == 0);
  const SocketRecord* mine = find_listener(all, port);
  REQUIRE(mine != nullptr);
  CHECK(mine->wqueue == 7);
  CHECK(mine->rqueue == 1);
  CHECK(std::any_of(all.begin(), all.end(),
                    [&](const SocketRecord& r) { return r.state == TCP_ESTABLISHED && r.dport == port; }));

  std::vector<SocketRecord> listeners;
  REQUIRE(dump_tcp_sockets(&listeners, 1u << TCP_LISTEN) == 0);
  CHECK(find_listener(listeners, port) != nullptr);
  for (const auto& r : listeners) CHECK(r.state == TCP_LISTEN);
}

TEST_CASE("local_port_filter: S_GE lo then S_LE hi, a false test jumps to reject") {
  CHECK(local_port_filter(PortSpan{}).empty());
  const std::vector<uint8_t> bc = local_port_filter(PortSpan{40000, 40199});
  REQUIRE(bc.size() == 4 * sizeof(inet_diag_bc_op));
  inet_diag_bc_op ops[4];
  std::memcpy(ops, bc.data(), sizeof ops);
  CHECK(ops[0].code == INET_DIAG_BC_S_GE);
  CHECK(ops[0].yes == 8);
  CHECK(ops[0].no == 20);
  CHECK(ops[1].no == 40000);
  CHECK(ops[2].code == INET_DIAG_BC_S_LE);
  CHECK(ops[2].yes == 8);
  CHECK(ops[2].no == 12);
  CHECK(ops[3].no == 40199);
}

TEST_CASE("dump_tcp_sockets with a local port span: the kernel leaves out the rest") {
  LoopbackPair p;
  const int l = p.l, c = p.c;
  const uint16_t port = p.port;
  sockaddr_in me{};
  socklen_t mlen = sizeof me;
  REQUIRE(::getsockname(c, reinterpret_cast<sockaddr*>(&me), &mlen) == 0);
  const uint16_t cport = ntohs(me.sin_port);
  int s = ::accept(l, nullptr, nullptr);
  REQUIRE(s >= 0);

  // Only the client's end: local port cport.
  std::vector<SocketRecord> got;
  REQUIRE(dump_tcp_sockets(&got, 0xfff, PortSpan{cport, cport}) == 0);
  CHECK(
      std::any_of(got.begin(), got.end(), [&](const SocketRecord& r) { return r.sport == cport && r.dport == port; }));
  for (const auto& r : got) CHECK(r.sport == cport);
  // Only the server's end and the listener: local port `port`.
  got.clear();
  REQUIRE(dump_tcp_sockets(&got, 0xfff, PortSpan{port, port}) == 0);
  CHECK(find_listener(got, port) != nullptr);
  CHECK(std::any_of(got.begin(), got.end(), [&](const SocketRecord& r) { return r.dport == cport; }));
  for (const auto& r : got) CHECK(r.sport == port);
  ::close(s);
}

TEST_CASE("tcp_state_name") {
  CHECK(std::string(tcp_state_name(TCP_TIME_WAIT)) == "TIME_WAIT");
  CHECK(std::string(tcp_state_name(TCP_LISTEN)) == "LISTEN");
  CHECK(std::string(tcp_state_name(0)) == "UNKNOWN");
  CHECK(std::string(tcp_state_name(200)) == "UNKNOWN");
}

TEST_CASE("the listener parser shares the walker: real dumps give the same listeners") {
  for (const char* name : {"dump_v4_6.18.bin", "dump_v6_6.18.bin"}) {
    std::vector<ListenerInfo> listeners;
    auto bufs = dump_fixture(name);
    for (const auto& b : bufs) REQUIRE(parse_sock_diag_listeners(b, &listeners) >= 0);
    const std::vector<SocketRecord> recs = parse_all(name);
    REQUIRE(listeners.size() == static_cast<size_t>(count_states(recs)[TCP_LISTEN]));
    for (const ListenerInfo& l : listeners) {
      const SocketRecord* r = find_listener(recs, l.port);
      REQUIRE(r != nullptr);
      CHECK(l.queue_len == r->rqueue);
      CHECK(l.max_backlog == r->wqueue);
      CHECK_FALSE(l.has_drops);  // INET_DIAG_SKMEMINFO was not requested in the capture
    }
  }
}
