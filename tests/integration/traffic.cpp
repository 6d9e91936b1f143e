// The traffic of each trace scenario, driven by helper processes.
#include "traffic.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <thread>

#include "child.hpp"
#include "sockets.hpp"

namespace itest {

namespace {

ClientFacts facts_from(const Child& c, const json& m) {
  ClientFacts f;
  f.pid = c.pid();
  f.comm = c.comm();
  f.tid = m.value("tid", 0);
  f.sport = m.value("sport", uint16_t{0});
  f.err = m.value("err", 0);
  f.seconds = m.value("seconds", 0.0);
  return f;
}

pid_t gettid_() { return static_cast<pid_t>(syscall(SYS_gettid)); }

double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// A server child: listen, report the port, then run `after_listen`.
std::unique_ptr<Child> start_server(const Topology& t, int af, uint16_t port, int backlog,
                                    std::function<void(Channel&, int listen_fd)> after_listen) {
  Endpoint ep{af, t.server_addr(af), port};
  auto c = std::make_unique<Child>(kServerComm, t.server.fd(), [ep, backlog, after_listen](Channel& ch) {
    Fd l = tcp_listen(ep, backlog);
    ch.send({{"listening", local_port(l.get())}});
    after_listen(ch, l.get());
  });
  c->recv(ms(5000), "server listening");
  return c;
}

}  // namespace

ConnectFacts drive_connect_close(const Topology& t, int af, uint16_t port, int backlog) {
  ConnectFacts f;
  auto server = start_server(t, af, port, backlog, [](Channel& ch, int lfd) {
    Fd a = accept_for(lfd, scaled(ms(10000)));
    if (a.get() < 0) throw std::runtime_error("server: no connection to accept within the bound");
    ch.send({{"accepted", true}, {"peer_port", [&] {
                                    sockaddr_storage ss{};
                                    socklen_t len = sizeof ss;
                                    getpeername(a.get(), reinterpret_cast<sockaddr*>(&ss), &len);
                                    return ss.ss_family == AF_INET
                                               ? ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port)
                                               : ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
                                  }()}});
    // The client closes first; close after its FIN.
    if (drain_until_eof(a.get(), scaled(ms(10000))) < 0) throw std::runtime_error("server: no EOF from the client");
    a.reset();
    ch.send({{"closed", true}});
  });
  f.server_pid = server->pid();
  f.listen_port = port;

  Endpoint dst{af, t.server_addr(af), port};
  Child client(kClientComm, t.client.fd(), [dst](Channel& ch) {
    // Connect from a second thread (it inherits the comm) so that the
    // records' pid (tgid) and tid differ.
    Fd s;
    json connected;
    std::string error;
    std::thread th([&] {
      try {
        s = tcp_socket(dst.af);
        auto t0 = Clock::now();
        int err = connect_blocking(s.get(), dst, scaled(ms(5000)));
        if (err) throw std::runtime_error("client: connect: " + errno_str(err));
        connected = {{"connected", true}, {"tid", gettid_()}, {"sport", local_port(s.get())}, {"seconds", since(t0)}};
      } catch (const std::exception& e) {
        error = e.what();
      }
    });
    th.join();
    if (!error.empty()) throw std::runtime_error(error);
    ch.send(connected);
    auto cmd = ch.recv(scaled(ms(10000)));
    if (!cmd || !cmd->contains("close")) throw std::runtime_error("client: no close command");
    s.reset();  // plain close, no SO_LINGER: the client closes first
    ch.send({{"closed", true}});
  });
  f.client = facts_from(client, client.recv(ms(10000), "client connected"));
  f.accepted_peer_port = server->recv(ms(10000), "server accepted").value("peer_port", uint16_t{0});
  client.send({{"close", true}});
  client.recv(ms(5000), "client closed");
  server->recv(ms(10000), "server closed after the client's FIN");
  client.wait_exit(ms(5000));
  server->wait_exit(ms(5000));
  return f;
}

ClientFacts drive_failing_connect(const Topology& t, int af, uint16_t port, ms connect_timeout) {
  Endpoint dst{af, t.server_addr(af), port};
  ms bound = scaled(connect_timeout);
  Child client(kClientComm, t.client.fd(), [dst, bound](Channel& ch) {
    Fd s = tcp_socket(dst.af);
    auto t0 = Clock::now();
    int err = connect_blocking(s.get(), dst, bound);
    double secs = since(t0);
    ch.send({{"err", err}, {"tid", gettid_()}, {"sport", local_port(s.get())}, {"seconds", secs}});
  });
  ClientFacts f = facts_from(client, client.recv(connect_timeout + ms(5000), "client connect result"));
  client.wait_exit(ms(5000));
  return f;
}

RetransmitFacts drive_data_retransmit(const Topology& t, int af, uint16_t port,
                                      const std::function<void(const RetransmitFacts&)>& while_dropping) {
  RetransmitFacts f;
  auto server = start_server(t, af, port, 8, [](Channel& ch, int lfd) {
    Fd a = accept_for(lfd, scaled(ms(10000)));
    if (a.get() < 0) throw std::runtime_error("server: no connection to accept within the bound");
    ch.send({{"accepted", true}});
    // Hold the connection until the test kills us.
    ch.recv(scaled(ms(60000)));
  });
  Endpoint dst{af, t.server_addr(af), port};
  Child client(kClientComm, t.client.fd(), [dst](Channel& ch) {
    Fd s = tcp_socket(dst.af);
    int err = connect_blocking(s.get(), dst, scaled(ms(5000)));
    if (err) throw std::runtime_error("client: connect: " + errno_str(err));
    ch.send({{"connected", true}, {"tid", gettid_()}, {"sport", local_port(s.get())}});
    auto cmd = ch.recv(scaled(ms(20000)));
    if (!cmd || !cmd->contains("write")) throw std::runtime_error("client: no write command");
    send_all(s.get(), std::string(1000, 'x'));
    ch.send({{"written", 1000}});
    ch.recv(scaled(ms(60000)));  // hold the socket until killed
  });
  f.client = facts_from(client, client.recv(ms(10000), "client connected"));
  server->recv(ms(10000), "server accepted");
  {
    NftDrop drop(t.server, port);
    client.send({{"write", true}});
    client.recv(ms(5000), "client wrote");
    progress("data written, nft dropping");
    while_dropping(f);
    f.dropped_packets = drop.dropped_packets();
  }
  return f;  // the helpers are killed; the namespaces go with the topology
}

void keep_time_wait(const Netns& client) { client.write_sysctl("net/ipv4/tcp_rfc1337", "1"); }

void send_stale_ack(const Netns& ns, const std::string& src, uint16_t sport, const std::string& dst, uint16_t dport) {
  in_addr s{}, d{};
  if (inet_pton(AF_INET, src.c_str(), &s) != 1 || inet_pton(AF_INET, dst.c_str(), &d) != 1)
    throw std::runtime_error("send_stale_ack: IPv4 addresses only: " + src + ", " + dst);
  uint8_t seg[20] = {};
  auto put16 = [&seg](int at, uint16_t v) {
    seg[at] = static_cast<uint8_t>(v >> 8);
    seg[at + 1] = static_cast<uint8_t>(v);
  };
  put16(0, sport);
  put16(2, dport);
  put16(6, 1000);    // seq (bytes 4-7): 1000
  put16(10, 1000);   // ack (bytes 8-11): 1000
  seg[12] = 5 << 4;  // data offset: 20 bytes, no options
  seg[13] = 0x10;    // ACK
  put16(14, 1024);   // window
  // Checksum over the pseudo-header (addresses, protocol, length) and the segment.
  uint8_t sum_in[12 + sizeof seg];
  std::memcpy(sum_in, &s, 4);
  std::memcpy(sum_in + 4, &d, 4);
  sum_in[8] = 0;
  sum_in[9] = IPPROTO_TCP;
  sum_in[10] = 0;
  sum_in[11] = sizeof seg;
  std::memcpy(sum_in + 12, seg, sizeof seg);
  uint32_t sum = 0;
  for (std::size_t i = 0; i < sizeof sum_in; i += 2) sum += static_cast<uint32_t>(sum_in[i] << 8 | sum_in[i + 1]);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  put16(16, static_cast<uint16_t>(~sum));

  NetnsEnter in(ns.fd());
  Fd fd(socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_TCP));
  if (fd.get() < 0) throw std::runtime_error("raw socket: " + errno_str(errno));
  sockaddr_in from{}, to{};
  from.sin_family = to.sin_family = AF_INET;
  from.sin_addr = s;
  to.sin_addr = d;
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&from), sizeof from) != 0)
    throw std::runtime_error("raw socket: bind " + src + ": " + errno_str(errno));
  if (sendto(fd.get(), seg, sizeof seg, 0, reinterpret_cast<sockaddr*>(&to), sizeof to) != sizeof seg)
    throw std::runtime_error("raw socket: sendto " + dst + ": " + errno_str(errno));
}

ExhaustionFacts drive_port_exhaustion(const Topology& t, int af, uint16_t port, int max_attempts) {
  ExhaustionFacts f;
  const int64_t resets_before = t.server.netstat_counter("Tcp", "OutRsts");
  auto server = start_server(t, af, port, 64, [](Channel&, int lfd) {
    // Serve connections one by one until killed: greet, wait for the
    // client's FIN, then close (so the client is the active closer and its
    // port stays in TIME_WAIT).
    for (;;) {
      Fd a = accept_for(lfd, scaled(ms(30000)));
      if (a.get() < 0) return;
      send_all(a.get(), "x");
      // A bound, not a wait: closing before the client's FIN would make the
      // client the passive closer, and its port would skip TIME_WAIT.
      drain_until_eof(a.get(), scaled(ms(30000)));
    }
  });
  Endpoint dst{af, t.server_addr(af), port};
  Child client(kClientComm, t.client.fd(), [dst, max_attempts](Channel& ch) {
    json ports = json::array(), tw_ports = json::array(), no_tw_ports = json::array();
    int err = 0, attempts = 0;
    while (attempts < max_attempts) {
      attempts++;
      Fd s = tcp_socket(dst.af);
      err = connect_blocking(s.get(), dst, scaled(ms(5000)));
      if (err == EADDRNOTAVAIL) break;
      if (err) throw std::runtime_error("client: connect attempt " + std::to_string(attempts) + ": " + errno_str(err));
      // Wait for the greeting: the server accepted this connection.
      if (!wait_readable(s.get(), scaled(ms(5000)))) throw std::runtime_error("client: no greeting from the server");
      char b;
      if (read(s.get(), &b, 1) != 1) throw std::runtime_error("client: short greeting");
      const uint16_t p = local_port(s.get());
      ports.push_back(p);
      s.reset();  // plain close: TIME_WAIT on this side
      // Wait (bounded) until the port really is in TIME_WAIT, so that the
      // range ends up all TIME_WAIT (and the time_wait transition happened
      // before the test looks for it), however slow the machine.
      const bool tw = wait_until([&] { return tcp_states_of_local_port(dst.af, p) == std::vector<int>{6}; },
                                 scaled(ms(5000)), ms(2));
      (tw ? tw_ports : no_tw_ports).push_back(p);
      if (!tw) {
        const char* table = dst.af == AF_INET6 ? "/proc/thread-self/net/tcp6" : "/proc/thread-self/net/tcp";
        std::fprintf(stderr, "connscope-itest: note: port %u was not seen in TIME_WAIT within 5 s; %s:\n%s\n", p, table,
                     read_file(table).value_or("(unreadable)").c_str());
      }
    }
    ch.send(
        {{"ports", ports}, {"tw_ports", tw_ports}, {"no_tw_ports", no_tw_ports}, {"attempts", attempts}, {"err", err}});
  });
  json r = client.recv(ms(30000), "client connect loop result");
  client.wait_exit(ms(5000));
  const int64_t resets_after = t.server.netstat_counter("Tcp", "OutRsts");
  if (resets_before >= 0 && resets_after >= 0) f.server_resets = resets_after - resets_before;
  f.pid = client.pid();
  f.comm = client.comm();
  f.attempts = r["attempts"].get<int>();
  f.final_err = r["err"].get<int>();
  for (const auto& p : r["ports"]) f.ports.push_back(p.get<uint16_t>());
  for (const auto& p : r["tw_ports"]) f.tw_ports.insert(p.get<uint16_t>());
  for (const auto& p : r["no_tw_ports"]) f.no_tw_ports.push_back(p.get<uint16_t>());
  return f;
}

OverflowFacts drive_accept_overflow(const Topology& t, int af, uint16_t port, int backlog, int nclients,
                                    const std::function<void(const OverflowFacts&)>& while_overflowing) {
  OverflowFacts f;
  f.listen_overflows_before = t.server.netstat_counter("TcpExt", "ListenOverflows");
  auto server = start_server(t, af, port, backlog, [](Channel& ch, int) {
    ch.recv(scaled(ms(60000)));  // never accept; hold the listener until killed
  });
  f.server_pid = server->pid();
  f.server_comm = server->comm();
  Endpoint dst{af, t.server_addr(af), port};
  // First fill the accept queue (it holds backlog + 1 connections), one
  // connection at a time so that the SYN queue never looks flooded (that
  // would answer with syncookies and drop the final ACKs instead of the
  // SYNs); then the remaining SYNs arrive at a full queue: the listener
  // drops them (ListenOverflows) and the clients retransmit them.
  const int fill = backlog + 1;
  Child client(kClientComm, t.client.fd(), [dst, nclients, fill](Channel& ch) {
    std::vector<Fd> socks;
    json queued = json::array(), dropped = json::array();
    for (int i = 0; i < nclients; i++) {
      Fd s = tcp_socket(dst.af, true);
      int err = connect_nonblocking(s.get(), dst);
      if (err != EINPROGRESS && err != 0)
        throw std::runtime_error("client: non-blocking connect " + std::to_string(i) + ": " + errno_str(err));
      if (i < fill) {
        err = finish_connect(s.get(), scaled(ms(5000)));
        if (err)
          throw std::runtime_error("client: connection " + std::to_string(i) +
                                   " to fill the accept queue: " + errno_str(err));
        queued.push_back(local_port(s.get()));
        // Let the server take the final ACK into its accept queue before
        // the next SYN arrives.
        std::this_thread::sleep_for(ms(20));
      } else {
        dropped.push_back(local_port(s.get()));
      }
      socks.push_back(std::move(s));
    }
    ch.send({{"queued", queued}, {"dropped", dropped}});
    ch.recv(scaled(ms(60000)));  // keep retrying SYNs until killed
  });
  json r = client.recv(ms(10000), "client connects started");
  f.client_pid = client.pid();
  for (const auto& p : r["queued"]) f.queued_ports.push_back(p.get<uint16_t>());
  for (const auto& p : r["dropped"]) f.dropped_ports.push_back(p.get<uint16_t>());
  progress("accept queue full, SYNs dropped");
  while_overflowing(f);
  f.listen_overflows_after = t.server.netstat_counter("TcpExt", "ListenOverflows");
  f.client_syn_retrans = t.client.netstat_counter("TcpExt", "TCPSynRetrans");
  return f;
}

}  // namespace itest
