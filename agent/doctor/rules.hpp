// The doctor's rules: evaluate_host() turns facts into findings without any
// I/O, one rule set (one report section) per file, rules_<section>.cpp. A
// finding's id starts with its section: "ports.", "timewait.", "listen.",
// "fd." or "netns.".
#pragma once

#include <string>
#include <vector>

#include "doctor/facts.hpp"
#include "doctor/finding.hpp"

namespace connscope {

// Every rule set, in report order (those that need the sysctls only when they were read).
std::vector<Finding> evaluate_host(const HostFacts& facts);

// The rule sets; each appends the findings of its section.
void evaluate_ports(const HostFacts& f, std::vector<Finding>* out);        // rules_ports.cpp
void evaluate_time_wait(const HostFacts& f, std::vector<Finding>* out);    // rules_time_wait.cpp
void evaluate_listen(const HostFacts& f, std::vector<Finding>* out);       // rules_listen.cpp
void evaluate_fds(const HostFacts& f, std::vector<Finding>* out);          // rules_fds.cpp
void evaluate_other_netns(const HostFacts& f, std::vector<Finding>* out);  // rules_netns.cpp

// Findings at or above `level` (doctor --fail-on).
std::size_t count_at_or_above(const std::vector<Finding>& findings, FindingLevel level);

// What the rule sets share.
void add_finding(std::vector<Finding>* out, std::string id, FindingLevel severity, std::string subject,
                 std::string value, std::string meaning, std::string fix);
// Appended to a `sysctl -w` fix.
const char* persist_hint();

}  // namespace connscope
