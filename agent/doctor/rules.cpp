// evaluate_host(): the rule sets in report order, and what they share.
#include "doctor/rules.hpp"

namespace connscope {

void add_finding(std::vector<Finding>* out, std::string id, FindingLevel severity, std::string subject,
                 std::string value, std::string meaning, std::string fix) {
  out->push_back(
      Finding{std::move(id), severity, std::move(subject), std::move(value), std::move(meaning), std::move(fix)});
}

const char* persist_hint() { return "; persist it in /etc/sysctl.d/90-connscope.conf"; }

std::vector<Finding> evaluate_host(const HostFacts& facts) {
  std::vector<Finding> out;
  if (facts.settings_read) {
    evaluate_ports(facts, &out);
    evaluate_time_wait(facts, &out);
    evaluate_listen(facts, &out);
  }
  evaluate_fds(facts, &out);
  if (facts.settings_read) evaluate_other_netns(facts, &out);
  return out;
}

std::size_t count_at_or_above(const std::vector<Finding>& findings, FindingLevel level) {
  std::size_t n = 0;
  for (const Finding& f : findings) n += f.severity >= level ? 1 : 0;
  return n;
}

}  // namespace connscope
