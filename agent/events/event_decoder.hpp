// Decodes raw ring-buffer records (include/connscope/events.h) into typed events.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <variant>

#include "connscope/events.h"

namespace connscope {

using Event =
    std::variant<cs_connect_event, cs_port_alloc_event, cs_state_event, cs_retransmit_event, cs_accept_queue_event>;

// Returns the event, or nullopt with *error set for a short, unknown or
// malformed record (never reads past `bytes`).
std::optional<Event> decode_event(std::span<const uint8_t> bytes, std::string* error);

const cs_header& header_of(const Event& e);

}  // namespace connscope
