// The listen-queue rules: somaxconn, SYN cookies, listeners and past overflows.
#include <arpa/inet.h>
#include <doctest/doctest.h>

#include "doctor/rules.hpp"
#include "doctor_fixtures.hpp"
#include "host/netstat.hpp"
#include "snapshot_fixture.hpp"

using namespace connscope;
using namespace connscope::test;

TEST_CASE("evaluate_host: somaxconn and SYN cookies of a tuned netns captured on 6.18") {
  HostFacts f = tuned_facts();
  auto fs = evaluate_host(f);
  check_well_formed(fs);
  CHECK(find(fs, "listen.somaxconn")->severity == FindingLevel::warning);  // 128
  const Finding* sc = find(fs, "listen.syncookies");
  CHECK(sc->severity == FindingLevel::warning);
  CHECK(has(sc->meaning, "3/4 of tcp_max_syn_backlog (192)"));
  CHECK(has(sc->meaning, "tcp_max_syn_backlog 256 is small"));
  CHECK(has(sc->fix, "sysctl -w net.ipv4.tcp_syncookies=1"));
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
  CHECK(qs[0]->severity == FindingLevel::info);
  CHECK(qs[0]->value == "queue 3, backlog 4096 (capped)");
  CHECK(has(qs[0]->meaning, "equals net.core.somaxconn"));
  CHECK(has(qs[0]->fix, "raise net.core.somaxconn above 4096"));
  CHECK(qs[1]->subject == "10.0.0.1:8080");
  CHECK(qs[1]->severity == FindingLevel::warning);
  CHECK(qs[2]->subject == "127.0.0.1:9090");
  CHECK(qs[2]->severity == FindingLevel::critical);
  CHECK(has(qs[2]->meaning, "The queue is full"));
  CHECK(has(qs[2]->meaning, "holds at most 2"));
}

TEST_CASE("evaluate_host: accept-queue overflows already counted by the kernel") {
  HostFacts f = host_facts();
  CHECK(find(evaluate_host(f), "listen.overflows")->severity == FindingLevel::ok);
  f.counters = tcp_counters(*parse_netstat_counters(read_fixture("netstat_netns_overflow_6.18.txt")));
  auto fs = evaluate_host(f);
  const Finding* o = find(fs, "listen.overflows");
  REQUIRE(o != nullptr);
  CHECK(o->severity == FindingLevel::warning);
  CHECK(o->value == "8 overflows, 8 drops");
  CHECK(has(o->meaning, "8 handshakes were dropped"));
  CHECK(has(o->fix, "connscope trace"));
  f.counters_read = false;  // unreadable counters: no finding rather than a false "ok"
  CHECK(find(evaluate_host(f), "listen.overflows") == nullptr);
}
