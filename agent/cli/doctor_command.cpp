// `connscope doctor`: collects the host's facts, evaluates the rules and prints the report.
#include <exception>
#include <iostream>

#include "cli/commands.hpp"
#include "doctor/collect.hpp"
#include "doctor/render_json.hpp"
#include "doctor/render_text.hpp"
#include "doctor/rules.hpp"

namespace connscope {

int run_doctor(bool json) {
  try {
    std::string warnings;
    HostFacts facts = collect_host_facts(&warnings);
    std::vector<Finding> findings = evaluate_host(facts);
    std::cout << (json ? format_doctor_json(facts, findings) : format_doctor_text(facts, findings)) << std::flush;
    return facts.settings_read ? 0 : 1;
  } catch (const std::exception& e) {
    std::cerr << "connscope doctor: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace connscope
