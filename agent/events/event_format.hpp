// Renders decoded events as JSON lines (the schema of docs/trace-json.md) or
// as human-readable text. Hand-written for the hot path: no allocation per
// field, one append per record into a reused buffer.
#pragma once

#include <cstdint>
#include <string>

#include "events/event_decoder.hpp"
#include "events/losses.hpp"
#include "util/address.hpp"

namespace connscope {

std::string errno_name(int err);                        // "ECONNREFUSED"; "E<n>" when unknown
const char* tcp_state_name(int state);                  // "SYN_SENT"; "UNKNOWN" out of range
const char* event_type_name(uint8_t type);              // "connect", "port_alloc", ...; "other"
const char* state_event_name(const cs_state_event& e);  // handshake, connect_failed, ...

// Wall time of a record: its CLOCK_MONOTONIC ts_ns plus one offset (unix -
// monotonic) taken when tracing starts, so a later step of the system clock
// does not reorder the output. Keeps the last second's text: not thread-safe.
class WallClock {
 public:
  enum class Zone : uint8_t { local, utc };  // utc: for tests that must not depend on TZ

  explicit WallClock(int64_t offset_ns, Zone zone = Zone::local) : offset_ns_(offset_ns), zone_(zone) {}
  // From one reading of both clocks (a recording's start_mono_ns/start_unix_s).
  static WallClock from_pair(uint64_t mono_ns, double unix_s, Zone zone = Zone::local);
  static WallClock now(Zone zone = Zone::local);  // util/clock.hpp's clocks, read now

  int64_t offset_ns() const { return offset_ns_; }
  int64_t unix_ns(uint64_t ts_ns) const { return static_cast<int64_t>(ts_ns) + offset_ns_; }
  // "14:03:07.123": time of day in the zone, milliseconds truncated.
  void append_time_of_day(std::string& out, uint64_t ts_ns) const;

 private:
  int64_t offset_ns_;
  Zone zone_;
  mutable int64_t cached_second_ = INT64_MIN;
  mutable char cached_hms_[9] = {};  // "HH:MM:SS"
};

// JSON records carry ts_ns and, from the clock, "time": unix seconds to the
// microsecond (what a JSON double holds), e.g. 1795295047.728630.
void append_event_json(std::string& out, const Event& e, const WallClock& clock);
// Text lines start with the wall time of day: "14:03:07.123 connect ...".
void append_event_text(std::string& out, const Event& e, const WallClock& clock);
void append_loss_json(std::string& out, const LossCounters& loss, uint64_t ts_ns, bool final, const WallClock& clock);

}  // namespace connscope
