// The doctor's report as text: a header, one section per rule set with its facts and findings, and notes.
#pragma once

#include <string>
#include <vector>

#include "doctor/facts.hpp"
#include "doctor/finding.hpp"

namespace connscope {

std::string format_doctor_text(const HostFacts& facts, const std::vector<Finding>& findings);

}  // namespace connscope
