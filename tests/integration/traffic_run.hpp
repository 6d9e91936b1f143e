// Traffic for the `run: ` tests: a server that lets the client close first,
// and a paced connect-and-close loop that runs while the test polls the
// agent (started in the background, collected with wait()).
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "child.hpp"
#include "netns.hpp"

namespace itest {

// A server child (comm kServerComm) in the server namespace listening on
// server_addr(af):port: accepts connections one by one and closes each only
// after the client's FIN, so the client is the active closer and its port
// stays in TIME_WAIT. Runs until killed (the returned Child's destructor).
std::unique_ptr<Child> start_closing_server(const Topology& t, int af, uint16_t port, int backlog = 128);

struct PacedLoopOptions {
  double rate = 20;         // connect attempts per second
  int max_attempts = 100;   // bound on attempts
  ms max_time = ms(30000);  // bound on the loop's duration (not scaled)
  bool stop_on_eaddrnotavail = true;
  int attempts_after_first_failure = 2;  // further attempts once EADDRNOTAVAIL came
};

struct PacedLoopFacts {
  pid_t pid = 0;
  std::string comm;
  int attempts = 0;
  int connected = 0;
  int eaddrnotavail = 0;
  // CLOCK_REALTIME (unix s) just before the connect() that first failed with
  // EADDRNOTAVAIL; 0 when none did.
  double first_eaddrnotavail_unix = 0;
  double started_unix = 0, finished_unix = 0;
  std::vector<std::string> other_errors;  // "attempt N: ERRNO" of unexpected failures (the loop stops)
  std::vector<uint16_t> ports;            // local ports of the successful connections, in order
  int not_seen_in_time_wait = 0;          // closed ports not seen in TIME_WAIT within 5 s
  int64_t server_resets = -1;             // RSTs the server namespace sent during the loop (Tcp OutRsts)
  bool timed_out = false;                 // max_time ran out
  std::string describe() const;
};

// Connect-and-close loop to server_addr(af):port from a Child (comm
// kClientComm) in the client namespace, paced at `rate`: plain close right
// after the handshake (client closes first), then a bounded wait until the
// port shows TIME_WAIT. Starts on construction. Every port stays in
// TIME_WAIT for 60 s only with keep_time_wait() on the client namespace.
class PacedConnectLoop {
 public:
  PacedConnectLoop(const Topology& t, int af, uint16_t port, PacedLoopOptions opts);
  pid_t pid() const { return child_->pid(); }
  const std::string& comm() const { return child_->comm(); }
  // The loop's result; throws if the child fails or does not report within
  // its bound (max_time + 10 s, scaled).
  PacedLoopFacts wait();

 private:
  PacedLoopOptions opts_;
  const Netns& server_;
  int64_t server_resets_before_ = -1;
  std::unique_ptr<Child> child_;
};

// TIME_WAIT sockets towards remote port `dport` in a namespace, as the
// kernel lists them (/proc/net/tcp or tcp6 read from inside it).
int kernel_time_wait_count(const Netns& ns, int af, uint16_t dport);

}  // namespace itest
