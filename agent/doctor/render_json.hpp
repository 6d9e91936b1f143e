// The doctor's report as JSON: the facts and the findings, pretty-printed.
#pragma once

#include <string>
#include <vector>

#include "doctor/facts.hpp"
#include "doctor/finding.hpp"

namespace connscope {

std::string format_doctor_json(const HostFacts& facts, const std::vector<Finding>& findings);  // pretty

}  // namespace connscope
