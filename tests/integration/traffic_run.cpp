// Traffic for the run tests: a closing server and a paced connect loop.
#include "traffic_run.hpp"

#include <netinet/in.h>
#include <time.h>

#include <cerrno>
#include <cstring>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "run_agent.hpp"
#include "sockets.hpp"
#include "traffic.hpp"

namespace itest {

std::unique_ptr<Child> start_closing_server(const Topology& t, int af, uint16_t port, int backlog) {
  Endpoint ep{af, t.server_addr(af), port};
  auto c = std::make_unique<Child>(kServerComm, t.server.fd(), [ep, backlog](Channel& ch) {
    Fd l = tcp_listen(ep, backlog);
    ch.send({{"listening", local_port(l.get())}});
    // Bounded: at most this many connections, each waited for at most 60 s.
    for (int i = 0; i < 100000; i++) {
      Fd a = accept_for(l.get(), scaled(ms(60000)));
      if (a.get() < 0) return;
      // Close only after the client's FIN (bounded).
      drain_until_eof(a.get(), scaled(ms(10000)));
    }
  });
  c->recv(ms(5000), "server listening");
  return c;
}

std::string PacedLoopFacts::describe() const {
  std::ostringstream o;
  o << "client pid " << pid << " (" << comm << "): " << attempts << " attempts, " << connected << " connected, "
    << eaddrnotavail << " EADDRNOTAVAIL";
  if (first_eaddrnotavail_unix > 0) o << " (first at unix " << std::fixed << first_eaddrnotavail_unix << ")";
  o << ", ran unix " << std::fixed << started_unix << " .. " << finished_unix;
  if (!other_errors.empty()) o << ", other errors: " << join(other_errors, ", ");
  if (not_seen_in_time_wait) o << ", " << not_seen_in_time_wait << " ports not seen in TIME_WAIT";
  if (server_resets > 0) o << ", the server namespace sent " << server_resets << " RSTs";
  if (timed_out) o << ", stopped by its time bound";
  return o.str();
}

PacedConnectLoop::PacedConnectLoop(const Topology& t, int af, uint16_t port, PacedLoopOptions opts)
    : opts_(opts), server_(t.server), server_resets_before_(t.server.netstat_counter("Tcp", "OutRsts")) {
  Endpoint dst{af, t.server_addr(af), port};
  child_ = std::make_unique<Child>(kClientComm, t.client.fd(), [dst, opts](Channel& ch) {
    json r = {{"attempts", 0},
              {"connected", 0},
              {"eaddrnotavail", 0},
              {"first_eaddrnotavail_unix", 0.0},
              {"other_errors", json::array()},
              {"ports", json::array()},
              {"not_tw", 0},
              {"timed_out", false}};
    r["started_unix"] = unix_now();
    const auto t0 = Clock::now();
    const auto deadline = t0 + opts.max_time;
    int attempts = 0, connected = 0, fails = 0, not_tw = 0;
    for (;;) {
      if (attempts >= opts.max_attempts) break;
      if (Clock::now() >= deadline) {
        r["timed_out"] = true;
        break;
      }
      const auto due =
          t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(attempts / opts.rate));
      std::this_thread::sleep_until(std::min(due, deadline));
      attempts++;
      Fd s = tcp_socket(dst.af);
      const double before = unix_now();
      const int err = connect_blocking(s.get(), dst, scaled(ms(3000)));
      if (err == EADDRNOTAVAIL) {
        if (fails++ == 0) r["first_eaddrnotavail_unix"] = before;
        if (opts.stop_on_eaddrnotavail && fails > opts.attempts_after_first_failure) break;
        continue;
      }
      if (err) {
        r["other_errors"].push_back("attempt " + std::to_string(attempts) + ": " + errno_str(err));
        break;
      }
      connected++;
      const uint16_t p = local_port(s.get());
      r["ports"].push_back(p);
      s.reset();  // plain close: the client closes first
      // A bound, not a wait: TIME_WAIT comes once the server's FIN is in.
      if (!wait_until([&] { return tcp_states_of_local_port(dst.af, p) == std::vector<int>{6}; }, scaled(ms(5000)),
                      ms(1)))
        not_tw++;
    }
    r["attempts"] = attempts;
    r["connected"] = connected;
    r["eaddrnotavail"] = fails;
    r["not_tw"] = not_tw;
    r["finished_unix"] = unix_now();
    ch.send(r);
  });
}

PacedLoopFacts PacedConnectLoop::wait() {
  const json r = child_->recv(opts_.max_time + ms(10000), "the connect loop's result");
  child_->wait_exit(ms(5000));
  PacedLoopFacts f;
  const int64_t resets_after = server_.netstat_counter("Tcp", "OutRsts");
  if (server_resets_before_ >= 0 && resets_after >= 0) f.server_resets = resets_after - server_resets_before_;
  f.pid = child_->pid();
  f.comm = child_->comm();
  f.attempts = r.at("attempts").get<int>();
  f.connected = r.at("connected").get<int>();
  f.eaddrnotavail = r.at("eaddrnotavail").get<int>();
  f.first_eaddrnotavail_unix = r.at("first_eaddrnotavail_unix").get<double>();
  f.started_unix = r.at("started_unix").get<double>();
  f.finished_unix = r.at("finished_unix").get<double>();
  for (const auto& e : r.at("other_errors")) f.other_errors.push_back(e.get<std::string>());
  for (const auto& p : r.at("ports")) f.ports.push_back(p.get<uint16_t>());
  f.not_seen_in_time_wait = r.at("not_tw").get<int>();
  f.timed_out = r.at("timed_out").get<bool>();
  return f;
}

int kernel_time_wait_count(const Netns& ns, int af, uint16_t dport) {
  std::optional<std::string> text;
  {
    NetnsEnter in(ns.fd());
    text = read_file(af == AF_INET6 ? "/proc/thread-self/net/tcp6" : "/proc/thread-self/net/tcp");
  }
  if (!text) throw std::runtime_error("cannot read the TCP table of " + ns.name());
  int n = 0;
  for (const auto& line : split_lines(*text)) {
    std::istringstream in(line);
    std::string sl, local, remote, st;
    if (!(in >> sl >> local >> remote >> st) || sl == "sl") continue;
    const auto colon = remote.rfind(':');
    if (colon != std::string::npos && st == "06" && std::stoul(remote.substr(colon + 1), nullptr, 16) == dport) n++;
  }
  return n;
}

}  // namespace itest
