// The keys the aggregation tables share: a flow's addresses as 16 bytes, the
// socket 4-tuple in its netns that the port table tracks, and the TCP state
// numbers records and sock_diag carry.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "connscope/events.h"

namespace connscope {

using Addr = std::array<uint8_t, 16>;

inline Addr to_addr(const uint8_t* p) {
  Addr a{};
  std::memcpy(a.data(), p, 16);
  return a;
}

struct SockKey {
  uint32_t netns = 0;
  uint16_t family = 0;
  uint16_t sport = 0;
  uint16_t dport = 0;
  Addr saddr{};
  Addr daddr{};
  bool operator==(const SockKey&) const = default;
};

struct SockKeyHash {
  size_t operator()(const SockKey& k) const {
    uint64_t h = 1469598103934665603ull;
    auto mix = [&h](const void* p, size_t n) {
      const auto* b = static_cast<const uint8_t*>(p);
      for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 1099511628211ull;
    };
    mix(&k.netns, sizeof k.netns);
    mix(&k.sport, sizeof k.sport);
    mix(&k.dport, sizeof k.dport);
    mix(k.saddr.data(), 16);
    mix(k.daddr.data(), 16);
    return static_cast<size_t>(h);
  }
};

inline SockKey sock_key(const cs_flow& f) {
  return SockKey{f.netns, f.family, f.sport, f.dport, to_addr(f.saddr), to_addr(f.daddr)};
}

}  // namespace connscope
