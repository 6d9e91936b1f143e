// The alert engine: rules evaluated once per closed interval, with
// hysteresis (a rule fires after `fire_after` consecutive intervals with its
// condition true and resolves after `resolve_after` consecutive intervals
// with it false). Rules that see discrete failures (EADDRNOTAVAIL, accept
// queue overflow, lost events) fire on the first interval: the failure is
// the evidence.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "aggregate/snapshot.hpp"

namespace connscope {

struct AlertThresholds {
  double warn_utilization = 0.70;     // ephemeral_ports_warning
  double crit_utilization = 0.90;     // ephemeral_ports_critical...
  double critical_horizon_s = 30;     // ...or ports run out within this many seconds at the current rate
  double exhaustion_horizon_s = 120;  // ephemeral_ports_exhaustion_soon: ports run out within this (at once)
  double port_search_p99_s = 0.001;   // port_search_slow: p99 of the interval above this
  double retransmit_rate = 10;        // retransmit_spike: per second, at least...
  double retransmit_factor = 3;       // ...and this many times the recent baseline
  uint32_t fire_after = 2;            // intervals
  uint32_t resolve_after = 5;         // intervals
};

// Rule ids and their severities.
struct AlertRule {
  const char* id;
  Severity severity;
  bool immediate;  // fires on the first interval its condition holds
  const char* description;
};
const std::vector<AlertRule>& alert_rules();

class AlertEngine {
 public:
  explicit AlertEngine(AlertThresholds t) : t_(t) {}

  // Evaluates every rule against the snapshot, fills s.alerts (firing, plus
  // those resolved in this interval) and s.alerts_fired_total. Returns the
  // alerts that changed state in this interval (fired or resolved), for the
  // one-line stderr report.
  std::vector<Alert> evaluate(Snapshot& s);

  const AlertThresholds& thresholds() const { return t_; }

 private:
  struct Key {
    std::string rule;
    uint32_t netns;
    std::string target;
    auto operator<=>(const Key&) const = default;  // NOLINT(modernize-use-nullptr): clang-tidy misreads defaulted <=>
  };
  struct State {
    uint32_t true_streak = 0;
    uint32_t false_streak = 0;
    bool firing = false;
    bool seen = false;  // condition evaluated this interval
    Alert alert;        // the last evidence while the condition held
    Alert now;          // this interval's numbers (what RESOLVED reports)
  };
  void observe(bool condition, Alert candidate, double now);  // the rule is candidate.rule

  AlertThresholds t_;
  std::map<Key, State> states_;
  std::map<std::string, uint64_t> fired_total_;
  std::map<std::tuple<uint32_t, std::string, std::string>, double> retransmit_baseline_;  // EWMA per destination
  std::vector<Alert> changed_;
};

// One readable stderr line for an alert that fired or resolved:
// "connscope: 14:03:07 ALERT critical RULE SRC -> TARGET netns NAME [PROC]: SUMMARY"
// (local time; RESOLVED lines carry the current numbers).
std::string format_alert_line(const Alert& a);

// The stderr report of each interval's alert changes: a line per alert that
// fired or resolved, and a target's remedy once ("connscope: 14:03:07 FIX
// TARGET netns NAME: REMEDY"), when the first alert that carries it fires,
// and again only after all of the target's alerts resolved.
class AlertLog {
 public:
  // `active`: the snapshot's alerts (firing, and resolved this interval).
  std::vector<std::string> lines(const std::vector<Alert>& changed, const std::vector<Alert>& active);

 private:
  std::set<std::tuple<uint32_t, std::string, std::string>> remedied_;  // (netns, target, remedy_key)
};

}  // namespace connscope
