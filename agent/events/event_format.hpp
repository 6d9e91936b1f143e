// Renders decoded events as JSON lines (the schema of docs/trace-json.md) or
// as human-readable text. Hand-written for the hot path: no allocation per
// field, one append per record into a reused buffer.
#pragma once

#include <string>

#include "events/event_decoder.hpp"
#include "events/losses.hpp"
#include "util/address.hpp"

namespace connscope {

std::string errno_name(int err);                        // "ECONNREFUSED"; "E<n>" when unknown
const char* tcp_state_name(int state);                  // "SYN_SENT"; "UNKNOWN" out of range
const char* event_type_name(uint8_t type);              // "connect", "port_alloc", ...; "other"
const char* state_event_name(const cs_state_event& e);  // handshake, connect_failed, ...

void append_event_json(std::string& out, const Event& e);
void append_event_text(std::string& out, const Event& e);
void append_loss_json(std::string& out, const LossCounters& loss, uint64_t ts_ns, bool final);

}  // namespace connscope
