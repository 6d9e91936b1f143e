// What the doctor's tests share: facts built from the captured fixtures and checks on findings.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "doctor/facts.hpp"
#include "doctor/finding.hpp"

namespace connscope::test {

// The captured sock_diag dump tests/fixtures/sockdiag/<name> (see test_socket_census.cpp).
std::vector<SocketRecord> dump_fixture(const char* name);

// The sysctls of tests/fixtures/procsys/<name>.
NetnsSettings settings_fixture(const char* name);

std::array<uint8_t, 16> ip(uint16_t family, const char* text);

SocketRecord sock(uint8_t state, const char* src, uint16_t sport, const char* dst, uint16_t dport,
                  uint32_t expires_ms = 0);

// Host facts as this 6.18 machine has them (fixture sysctls), sockets read, nothing busy.
HostFacts host_facts();

// host_facts() with the sysctls of a tuned netns captured on 6.18: a narrow range with reserved ports,
// small somaxconn and tcp_max_syn_backlog, SYN cookies off, tcp_fin_timeout 15.
HostFacts tuned_facts();

// Replaces f's sockets with n outgoing sockets toward dst (tw of them in TIME_WAIT of the given age) from src.
void add_outgoing(HostFacts* f, const char* src, const char* dst, uint16_t dport, uint32_t n, uint32_t tw,
                  uint32_t tw_age_ms = 30000);

// host_facts() with tcp_tw_reuse=0, a busy remote destination and a note: what the renderer tests print.
HostFacts busy_report_facts();

// The finding with this id, or nullptr.
const Finding* find(const std::vector<Finding>& fs, const std::string& id);

bool has(const std::string& text, const std::string& part);

// Every finding has a known severity and section, a subject, a value, a meaning, and a fix when it alarms.
void check_well_formed(const std::vector<Finding>& fs);

}  // namespace connscope::test
