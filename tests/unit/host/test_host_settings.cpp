// Unit tests: sysctl reading from captured /proc/sys trees.
#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "host/host_settings.hpp"
#include "snapshot_fixture.hpp"

using namespace connscope;

namespace {

std::filesystem::path procsys_fixture(const char* name) {
  const std::filesystem::path path = test::fixture_path(std::string("procsys/") + name);
  REQUIRE_MESSAGE(std::filesystem::is_directory(path / "sys" / "net"), "missing fixture " << path);
  return path;
}

// A writable copy of a fixture tree in a fresh temporary directory, removed at scope exit.
struct TempProc {
  std::filesystem::path root;
  explicit TempProc(const char* fixture) {
    root = std::filesystem::temp_directory_path() / ("connscope-procsys-" + std::to_string(::getpid()));
    std::filesystem::remove_all(root);
    std::filesystem::copy(procsys_fixture(fixture), root, std::filesystem::copy_options::recursive);
  }
  ~TempProc() { std::filesystem::remove_all(root); }
  TempProc(const TempProc&) = delete;
  TempProc& operator=(const TempProc&) = delete;
  void write(const char* rel, const char* text) const { std::ofstream(root / "sys" / rel) << text; }
  void remove(const char* rel) const { std::filesystem::remove(root / "sys" / rel); }
};

std::vector<PortRange> reserved(std::string_view text) {
  std::vector<PortRange> out;
  std::string error;
  REQUIRE_MESSAGE(parse_reserved_ports(text, &out, &error), error);
  return out;
}

}  // namespace

TEST_CASE("parse_port_range reads the kernel's tab-separated pair") {
  uint16_t lo = 0, hi = 0;
  std::string error;
  CHECK(parse_port_range("32768\t60999\n", &lo, &hi, &error));
  CHECK(lo == 32768);
  CHECK(hi == 60999);
  CHECK(parse_port_range(" 1024 65535", &lo, &hi, &error));
  CHECK(lo == 1024);
  CHECK(hi == 65535);
  CHECK(parse_port_range("5000\t5000\n", &lo, &hi, &error));  // a single port is a valid range
  CHECK(lo == 5000);
  CHECK(hi == 5000);
}

TEST_CASE("parse_port_range rejects low > high, non-numbers, out-of-range ports and wrong field counts") {
  uint16_t lo = 7, hi = 9;
  std::string error;
  CHECK_FALSE(parse_port_range("60999\t32768\n", &lo, &hi, &error));
  CHECK(error.find("low port 60999 is above high port 32768") != std::string::npos);
  CHECK(error.find("sysctl -w net.ipv4.ip_local_port_range='32768 60999'") != std::string::npos);
  CHECK(error.find('\n') == std::string::npos);
  for (const char* bad : {"", "\n", "32768", "32768 60999 1", "abc\tdef", "32768\t6O999", "0\t1000", "1000\t65536",
                          "-1\t1000", "1e3\t2000", "32768,60999"}) {
    error.clear();
    CHECK_MESSAGE(!parse_port_range(bad, &lo, &hi, &error), bad);
    CHECK(error.find("ip_local_port_range") != std::string::npos);
    CHECK(error.find('\n') == std::string::npos);
  }
  CHECK(lo == 7);  // untouched on error
  CHECK(hi == 9);
}

TEST_CASE("parse_reserved_ports reads empty, single ports and ranges") {
  CHECK(reserved("").empty());
  CHECK(reserved("\n").empty());
  auto r = reserved("8080,9000-9100,20500\n");
  REQUIRE(r.size() == 3);
  CHECK(r[0].lo == 8080);
  CHECK(r[0].hi == 8080);
  CHECK(r[1].lo == 9000);
  CHECK(r[1].hi == 9100);
  CHECK(r[2].lo == 20500);
  CHECK(r[2].hi == 20500);
  CHECK(reserved("0-65535").size() == 1);

  std::vector<PortRange> out = {{1, 2}};
  std::string error;
  for (const char* bad :
       {"8080,", ",8080", "8080,,9000", "9100-9000", "70000", "a", "80-", "-80", "80 - 90", "1-2-3", "8080;9000"}) {
    error.clear();
    CHECK_MESSAGE(!parse_reserved_ports(bad, &out, &error), bad);
    CHECK(error.find("ip_local_reserved_ports") != std::string::npos);
    CHECK(error.find('\n') == std::string::npos);
  }
  CHECK(out.size() == 1);  // unchanged on error
}

TEST_CASE("usable_port_count subtracts reserved ports inside the range, once") {
  CHECK(usable_port_count(32768, 60999, {}) == 28232);
  CHECK(usable_port_count(5000, 5000, {}) == 1);
  CHECK(usable_port_count(1, 65535, {}) == 65535);
  CHECK(usable_port_count(6000, 5000, {}) == 0);
  // Single ports and ranges, inside and outside.
  CHECK(usable_port_count(32768, 60999, reserved("8080,40000,50000-50099")) == 28232 - 1 - 100);
  // Overlapping and duplicate ranges count once.
  CHECK(usable_port_count(20000, 20999, reserved("20100-20199,20150-20160,20190-20250,20100")) == 1000 - 151);
  // Ranges straddling either end are clipped.
  CHECK(usable_port_count(20000, 20999, reserved("19990-20009,20990-21010")) == 1000 - 10 - 10);
  // Everything reserved.
  CHECK(usable_port_count(20000, 20999, reserved("0-65535")) == 0);
  CHECK(usable_port_count(20000, 20999, reserved("20000-20499,20500-20999")) == 0);
  // Touching the ends exactly.
  CHECK(usable_port_count(20000, 20999, reserved("20000,20999")) == 998);
  CHECK(usable_port_count(1, 65535, reserved("65535")) == 65534);
}

TEST_CASE("read_netns_settings reads this host's real sysctls (6.18 defaults)") {
  std::string error;
  auto s = read_netns_settings(procsys_fixture("host_6.18").string(), &error);
  REQUIRE_MESSAGE(s.has_value(), error);
  CHECK(s->netns == 0);
  CHECK(s->port_lo == 32768);
  CHECK(s->port_hi == 60999);
  CHECK(s->reserved.empty());
  CHECK(s->usable_ports == 28232);
  CHECK(s->tw_reuse == 2);
  CHECK(s->tw_reuse_delay_present);
  CHECK(s->tw_reuse_delay_ms == 1000);
  CHECK(s->timestamps == 1);
  CHECK(s->fin_timeout == 60);
  CHECK(s->max_tw_buckets == 131072);
  CHECK(s->somaxconn == 4096);
  CHECK(s->max_syn_backlog == 2048);
  CHECK(s->syncookies == 1);
  CHECK(describe(*s) == "ports 32768-60999 (28232 usable), tw_reuse=2, tw_reuse_delay=1000ms, timestamps=1");
}

TEST_CASE("read_netns_settings reads a tuned netns captured after sysctl -w") {
  std::string error;
  auto s = read_netns_settings(procsys_fixture("tuned_6.18").string(), &error);
  REQUIRE_MESSAGE(s.has_value(), error);
  CHECK(s->port_lo == 20000);
  CHECK(s->port_hi == 20999);
  // The kernel merged "20100-20199,20150-20160" when it printed the bitmap back.
  CHECK(format_port_ranges(s->reserved) == "8080,20100-20199,20500,30000-30010");
  CHECK(s->usable_ports == 1000 - 100 - 1);
  CHECK(s->tw_reuse == 1);
  CHECK(s->tw_reuse_delay_ms == 250);
  CHECK(s->timestamps == 0);
  CHECK(s->fin_timeout == 15);
  CHECK(s->max_tw_buckets == 5000);
  CHECK(s->somaxconn == 128);
  CHECK(s->max_syn_backlog == 256);
  CHECK(s->syncookies == 0);
}

TEST_CASE("read_netns_settings: missing optional files keep defaults, missing range or malformed files fail") {
  std::string error;
  {
    TempProc p("host_6.18");  // a kernel before 6.13 has no tcp_tw_reuse_delay
    p.remove("net/ipv4/tcp_tw_reuse_delay");
    p.remove("net/ipv4/ip_local_reserved_ports");
    p.write("net/core/somaxconn", "65535\n");
    auto s = read_netns_settings(p.root.string(), &error);
    REQUIRE_MESSAGE(s.has_value(), error);
    CHECK_FALSE(s->tw_reuse_delay_present);
    CHECK(s->tw_reuse_delay_ms == 1000);
    CHECK(s->reserved.empty());
    CHECK(s->somaxconn == 65535);
  }
  {
    TempProc p("host_6.18");
    p.write("net/ipv4/ip_local_reserved_ports", "40000-40999\n");
    auto s = read_netns_settings(p.root.string(), &error);
    REQUIRE(s.has_value());
    CHECK(s->usable_ports == 28232 - 1000);
  }
  {
    TempProc p("host_6.18");
    p.remove("net/ipv4/ip_local_port_range");
    CHECK_FALSE(read_netns_settings(p.root.string(), &error).has_value());
    CHECK(error.find("ip_local_port_range") != std::string::npos);
  }
  {
    TempProc p("host_6.18");
    p.write("net/ipv4/ip_local_port_range", "60999\t32768\n");
    CHECK_FALSE(read_netns_settings(p.root.string(), &error).has_value());
    CHECK(error.find("above high port") != std::string::npos);
  }
  {
    TempProc p("host_6.18");
    p.write("net/ipv4/tcp_tw_reuse", "two\n");
    CHECK_FALSE(read_netns_settings(p.root.string(), &error).has_value());
    CHECK(error.find("net.ipv4.tcp_tw_reuse") != std::string::npos);
  }
  {
    TempProc p("host_6.18");
    p.write("net/core/somaxconn", "-1\n");  // negative for an unsigned setting
    CHECK_FALSE(read_netns_settings(p.root.string(), &error).has_value());
    CHECK(error.find("net.core.somaxconn") != std::string::npos);
  }
  {
    TempProc p("host_6.18");
    p.write("net/ipv4/tcp_max_tw_buckets", "");
    CHECK_FALSE(read_netns_settings(p.root.string(), &error).has_value());
    CHECK(error.find("tcp_max_tw_buckets") != std::string::npos);
  }
  CHECK_FALSE(read_netns_settings("/nonexistent-proc", &error).has_value());
  CHECK(error.find("mount") != std::string::npos);
  CHECK(error.find('\n') == std::string::npos);
}

TEST_CASE("read_netns_settings against the live /proc agrees with the parsers") {
  std::string error;
  auto s = read_netns_settings("/proc", &error);
  REQUIRE_MESSAGE(s.has_value(), error);
  CHECK(s->port_lo <= s->port_hi);
  CHECK(s->usable_ports <= uint32_t{s->port_hi} - s->port_lo + 1);
  CHECK(s->somaxconn > 0);
}
