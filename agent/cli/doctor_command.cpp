// `connscope doctor`: collects the host's facts, evaluates the rules and prints the report.
#include <exception>
#include <iostream>

#include "cli/commands.hpp"
#include "doctor/collect.hpp"
#include "doctor/render_json.hpp"
#include "doctor/render_text.hpp"
#include "doctor/rules.hpp"

namespace connscope {

int run_doctor(bool json, std::optional<FindingLevel> fail_on) {
  try {
    std::string warnings;
    HostFacts facts = collect_host_facts(&warnings);
    std::vector<Finding> findings = evaluate_host(facts);
    std::cout << (json ? format_doctor_json(facts, findings) : format_doctor_text(facts, findings)) << std::flush;
    if (!facts.settings_read) return 1;
    if (!fail_on) return 0;
    const std::size_t at_or_above = count_at_or_above(findings, *fail_on);
    if (at_or_above == 0) return 0;
    std::cerr << "connscope doctor: " << at_or_above << (at_or_above == 1 ? " finding" : " findings") << " at or above "
              << level_name(*fail_on) << " (--fail-on " << level_name(*fail_on) << ")\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "connscope doctor: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace connscope
