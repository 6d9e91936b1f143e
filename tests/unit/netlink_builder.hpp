// Test helper: netlink messages built by hand, as the kernel frames them in a
// sock_diag dump, for the parsers of such dumps.
#pragma once

#include <linux/netlink.h>

#include <cstdint>
#include <cstring>
#include <vector>

namespace connscope::test {

// Appends one message of `type` with `payload` (nlmsg_len and padding as the kernel sets them).
inline void append_msg(std::vector<uint8_t>* buf, uint16_t type, const void* payload, size_t len) {
  nlmsghdr h{};
  h.nlmsg_len = static_cast<uint32_t>(NLMSG_LENGTH(len));
  h.nlmsg_type = type;
  const size_t at = buf->size();
  buf->resize(at + NLMSG_SPACE(len));
  std::memcpy(buf->data() + at, &h, sizeof h);
  std::memcpy(buf->data() + at + NLMSG_HDRLEN, payload, len);
}

}  // namespace connscope::test
