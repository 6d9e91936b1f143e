// Addresses as the kernel records them: 16 bytes in network order, IPv4
// in the first 4.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace connscope {

// The addresses tcp_tw_reuse=2 treats as loopback: 127/8, ::1 and
// IPv4-mapped 127/8.
bool is_loopback(uint16_t family, const std::array<uint8_t, 16>& addr);
// "10.0.0.1", "fd00::1" from 16 bytes in network order; `unknown` for a
// family other than AF_INET and AF_INET6. The one address formatter.
std::string format_address(uint16_t family, const uint8_t* addr, std::string_view unknown = "");
inline std::string format_address(uint16_t family, const std::array<uint8_t, 16>& addr, std::string_view unknown = "") {
  return format_address(family, addr.data(), unknown);
}
// "10.0.0.1:80", "[fd00::1]:80"; "?:80" for an unknown family.
std::string format_endpoint(uint16_t family, const std::array<uint8_t, 16>& addr, uint16_t port);

}  // namespace connscope
