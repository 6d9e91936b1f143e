// Facts and checks shared by the doctor's tests.
#include "doctor_fixtures.hpp"

#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/tcp.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <string_view>

#include "snapshot_fixture.hpp"

namespace connscope::test {

// Each recv() buffer of the dump is framed by its u32 LE length.
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
  auto s = read_netns_settings(fixture_path(std::string("procsys/") + name), &error);
  REQUIRE_MESSAGE(s.has_value(), error);
  return *s;
}

std::array<uint8_t, 16> ip(uint16_t family, const char* text) {
  std::array<uint8_t, 16> a{};
  REQUIRE(inet_pton(family, text, a.data()) == 1);
  return a;
}

SocketRecord sock(uint8_t state, const char* src, uint16_t sport, const char* dst, uint16_t dport,
                  uint32_t expires_ms) {
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

HostFacts tuned_facts() {
  HostFacts f = host_facts();
  f.settings = settings_fixture("tuned_6.18");
  return f;
}

void add_outgoing(HostFacts* f, const char* src, const char* dst, uint16_t dport, uint32_t n, uint32_t tw,
                  uint32_t tw_age_ms) {
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
    CHECK((f.severity == FindingLevel::ok || f.severity == FindingLevel::info || f.severity == FindingLevel::warning ||
           f.severity == FindingLevel::critical));
    CHECK((f.id.rfind("ports.", 0) == 0 || f.id.rfind("timewait.", 0) == 0 || f.id.rfind("listen.", 0) == 0 ||
           f.id.rfind("fd.", 0) == 0 || f.id.rfind("netns.", 0) == 0));
    CHECK_FALSE(f.subject.empty());
    CHECK_FALSE(f.value.empty());
    CHECK_FALSE(f.meaning.empty());
    if (f.severity == FindingLevel::warning || f.severity == FindingLevel::critical) CHECK_FALSE(f.fix.empty());
  }
}

HostFacts busy_report_facts() {
  HostFacts f = host_facts();
  f.kernel = "6.18.44";
  f.settings.tw_reuse = 0;
  add_outgoing(&f, "10.0.0.1", "10.0.0.5", 443, 17000, 16000);
  f.warnings = {"3 of 90 processes' fd tables are unreadable (not root): run as root (sudo) to see all"};
  return f;
}

}  // namespace connscope::test
