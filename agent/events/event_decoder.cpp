// Decoding raw ring-buffer records into typed events, refusing short or unknown ones.
#include "events/event_decoder.hpp"

#include <cstddef>
#include <cstring>

namespace connscope {

// The kernel writes these structs; pin the layout the decoder relies on.
static_assert(sizeof(cs_header) == 16);
static_assert(sizeof(cs_task) == 32);
static_assert(sizeof(cs_flow) == 48);
static_assert(offsetof(cs_flow, sport) == 32 && offsetof(cs_flow, netns) == 40);
static_assert(sizeof(cs_connect_event) == 112);
static_assert(offsetof(cs_connect_event, latency_ns) == 96);
static_assert(sizeof(cs_port_alloc_event) == 112);
static_assert(offsetof(cs_port_alloc_event, range_lo) == 108);
static_assert(sizeof(cs_state_event) == 120);
static_assert(offsetof(cs_state_event, oldstate) == 116);
static_assert(sizeof(cs_retransmit_event) == 72);
static_assert(sizeof(cs_accept_queue_event) == 80);
static_assert(offsetof(cs_accept_queue_event, kind) == 76);

namespace {

template <typename T>
std::optional<Event> copy_as(std::span<const uint8_t> bytes, std::string* error) {
  if (bytes.size() < sizeof(T)) {
    *error = "record of type " + std::to_string(bytes[0]) + " is " + std::to_string(bytes.size()) +
             " bytes, expected " + std::to_string(sizeof(T));
    return std::nullopt;
  }
  T value;
  std::memcpy(&value, bytes.data(), sizeof(T));
  return Event{value};
}

}  // namespace

std::optional<Event> decode_event(std::span<const uint8_t> bytes, std::string* error) {
  if (bytes.size() < sizeof(cs_header)) {
    *error = "record shorter than its header (" + std::to_string(bytes.size()) + " bytes)";
    return std::nullopt;
  }
  switch (bytes[0]) {
    case CS_EV_CONNECT:
      return copy_as<cs_connect_event>(bytes, error);
    case CS_EV_PORT_ALLOC:
      return copy_as<cs_port_alloc_event>(bytes, error);
    case CS_EV_STATE:
      return copy_as<cs_state_event>(bytes, error);
    case CS_EV_RETRANSMIT:
      return copy_as<cs_retransmit_event>(bytes, error);
    case CS_EV_ACCEPT_QUEUE:
      return copy_as<cs_accept_queue_event>(bytes, error);
    default:
      *error = "unknown record type " + std::to_string(bytes[0]);
      return std::nullopt;
  }
}

const cs_header& header_of(const Event& e) {
  return std::visit([](const auto& ev) -> const cs_header& { return ev.h; }, e);
}

}  // namespace connscope
