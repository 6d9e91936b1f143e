// Loading and filtering the agent's JSON lines (docs/trace-json.md), and the
// doctest helpers that compare records field by field with messages that
// print the record.
#pragma once

#include <doctest/doctest.h>

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace itest {

using json = nlohmann::json;

struct Records {
  std::vector<json> all;
  std::vector<std::string> bad_lines;  // "line N: <text>: <parse error>"

  // Parse JSON lines; an incomplete last line (no '\n') is ignored unless
  // `complete` (the writer has exited).
  static Records parse(const std::string& text, bool complete);

  std::vector<json> where(const std::function<bool(const json&)>& pred) const;
  bool any(const std::function<bool(const json&)>& pred) const;
  // Records whose netns is one of `inodes`, one per line (for failure
  // messages; at most `limit` lines, then a count of the rest).
  std::string dump_netns(std::initializer_list<uint64_t> inodes, std::size_t limit = 80) const;
  std::string dump(const std::function<bool(const json&)>& pred, std::size_t limit = 80) const;
};

// A conjunction of field == value tests: Match{{"type","state"},{"event","handshake"}}.
struct Match {
  std::vector<std::pair<std::string, json>> fields;
  Match(std::initializer_list<std::pair<const char*, json>> f) {
    for (const auto& [k, v] : f) fields.emplace_back(k, v);
  }
  Match& and_(const char* k, json v) {
    fields.emplace_back(k, std::move(v));
    return *this;
  }
  bool operator()(const json& r) const {
    for (const auto& [k, v] : fields)
      if (!r.is_object() || !r.contains(k) || r.at(k) != v) return false;
    return true;
  }
  std::string describe() const {
    json j = json::object();
    for (const auto& [k, v] : fields) j[k] = v;
    return j.dump();
  }
};

std::string dump_list(const std::vector<json>& v, std::size_t limit = 40);

// Checks on every record of a run, independent of the scenario: it parses,
// has type/ts_ns/strategy/tier (loss: type/ts_ns), ts_ns inside the run's
// monotonic window, valid flow fields, tier == CONNSCOPE_STRATEGY when
// forced; exactly one final loss record, last, with lost == 0.
void check_common(const Records& recs, uint64_t start_ns, uint64_t stop_ns);

}  // namespace itest

// CHECK that rec[key] == expected (JSON equality: numbers compare by value),
// printing the record on failure.
#define CHECK_FIELD(rec, key, expected)                                                                    \
  do {                                                                                                     \
    const ::nlohmann::json& cf_rec_ = (rec);                                                               \
    const ::nlohmann::json cf_exp_ = (expected);                                                           \
    const bool cf_has_ = cf_rec_.is_object() && cf_rec_.contains(key);                                     \
    CHECK_MESSAGE((cf_has_ && cf_rec_.at(key) == cf_exp_),                                                 \
                  "field \"" << (key) << "\": expected " << cf_exp_.dump() << ", got "                     \
                             << (cf_has_ ? cf_rec_.at(key).dump() : std::string("<missing>")) << "\n  in " \
                             << cf_rec_.dump());                                                           \
  } while (0)

// CHECK that rec[key] is a number > 0.
#define CHECK_FIELD_POSITIVE(rec, key)                                                                              \
  do {                                                                                                              \
    const ::nlohmann::json& cf_rec_ = (rec);                                                                        \
    const bool cf_ok_ = cf_rec_.contains(key) && cf_rec_.at(key).is_number() && cf_rec_.at(key) > 0;                \
    CHECK_MESSAGE(cf_ok_, "field \"" << (key) << "\": expected a number > 0, got "                                  \
                                     << (cf_rec_.contains(key) ? cf_rec_.at(key).dump() : "<missing>") << "\n  in " \
                                     << cf_rec_.dump());                                                            \
  } while (0)

// CHECK that rec has no field `key`.
#define CHECK_NO_FIELD(rec, key)                                                                              \
  do {                                                                                                        \
    const ::nlohmann::json& cf_rec_ = (rec);                                                                  \
    CHECK_MESSAGE(!cf_rec_.contains(key), "field \"" << (key) << "\": expected absent, got "                  \
                                                     << (cf_rec_.contains(key) ? cf_rec_.at(key).dump() : "") \
                                                     << "\n  in " << cf_rec_.dump());                         \
  } while (0)
