// JSON rendering of a Snapshot: the `connscope run` JSON-lines record and the
// /api/v1/snapshot body. Schema: docs/run-json.md.
//
// Objects keep their documented key order (nlohmann::ordered_json): heatmap
// buckets must stay in `le` order, and a JSON line reads top-down like the
// doc. ordered_json converts implicitly to nlohmann::json where a caller needs
// one (keys are then sorted).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "aggregate/snapshot.hpp"

namespace connscope {

nlohmann::ordered_json snapshot_to_json(const Snapshot& s);
nlohmann::ordered_json alert_to_json(const Alert& a);
nlohmann::ordered_json alerts_to_json(const std::vector<Alert>& alerts);

// Serializes with invalid UTF-8 (a process name is arbitrary bytes) replaced
// by U+FFFD instead of throwing. indent < 0: one compact line.
std::string dump_json(const nlohmann::ordered_json& j, int indent = -1);

// A JSON number, or null for NaN / +-Inf (never emitted as numbers).
nlohmann::ordered_json json_number(double v);

// "ipv4", "ipv6", or "" for anything else (the `other` rows).
const char* family_name(uint16_t family);

// Unix seconds to integer unix milliseconds (Grafana's time unit).
int64_t unix_ms(double unix_seconds);

}  // namespace connscope
