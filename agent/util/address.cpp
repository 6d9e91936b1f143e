// Formatting kernel addresses and telling loopback from the rest.
#include "util/address.hpp"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <algorithm>

namespace connscope {

bool is_loopback(uint16_t family, const std::array<uint8_t, 16>& a) {
  if (family == AF_INET) return a[0] == 127;
  if (family != AF_INET6) return false;
  static constexpr std::array<uint8_t, 16> kLo6 = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  if (a == kLo6) return true;
  const bool mapped =
      std::all_of(a.begin(), a.begin() + 10, [](uint8_t b) { return b == 0; }) && a[10] == 0xff && a[11] == 0xff;
  return mapped && a[12] == 127;
}

std::string format_address(uint16_t family, const uint8_t* addr, std::string_view unknown) {
  char text[INET6_ADDRSTRLEN] = {};
  if ((family != AF_INET && family != AF_INET6) || !inet_ntop(family, addr, text, sizeof text))
    return std::string(unknown);
  return text;
}

std::string format_endpoint(uint16_t family, const std::array<uint8_t, 16>& addr, uint16_t port) {
  const std::string a = format_address(family, addr, "?");
  return (family == AF_INET6 ? "[" + a + "]" : a) + ":" + std::to_string(port);
}

}  // namespace connscope
