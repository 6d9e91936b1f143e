// The sock_diag dump of every TCP socket of a namespace, as `ss` reads it.
#include "host/socket_census.hpp"

#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "util/unique_fd.hpp"

namespace connscope {

int walk_inet_diag(std::span<const uint8_t> buf,
                   const std::function<void(const inet_diag_msg&, std::span<const uint8_t> attrs)>& fn) {
  size_t off = 0;
  while (off < buf.size()) {
    if (buf.size() - off < sizeof(nlmsghdr)) return -EBADMSG;  // a cut header
    nlmsghdr h;
    std::memcpy(&h, buf.data() + off, sizeof h);
    if (h.nlmsg_len < sizeof h || h.nlmsg_len > buf.size() - off) return -EBADMSG;
    if (h.nlmsg_type == NLMSG_DONE) {
      // A dump that failed in the kernel reports its error as the DONE payload.
      int status = 0;
      if (h.nlmsg_len >= NLMSG_LENGTH(sizeof status))
        std::memcpy(&status, buf.data() + off + NLMSG_HDRLEN, sizeof status);
      return status < 0 ? status : 1;
    }
    if (h.nlmsg_type == NLMSG_ERROR) {
      nlmsgerr e;
      if (h.nlmsg_len < NLMSG_LENGTH(sizeof e)) return -EBADMSG;
      std::memcpy(&e, buf.data() + off + NLMSG_HDRLEN, sizeof e);
      return e.error < 0 ? e.error : -EBADMSG;
    }
    if (h.nlmsg_type == SOCK_DIAG_BY_FAMILY) {
      inet_diag_msg m;
      if (h.nlmsg_len < NLMSG_LENGTH(sizeof m)) return -EBADMSG;
      std::memcpy(&m, buf.data() + off + NLMSG_HDRLEN, sizeof m);
      const size_t attrs_at = NLMSG_HDRLEN + NLMSG_ALIGN(sizeof m);
      std::span<const uint8_t> attrs;
      if (h.nlmsg_len > attrs_at) attrs = buf.subspan(off + attrs_at, h.nlmsg_len - attrs_at);
      fn(m, attrs);
    }
    off += NLMSG_ALIGN(h.nlmsg_len);
  }
  return 0;
}

int parse_sock_diag_sockets(std::span<const uint8_t> buf, std::vector<SocketRecord>* out) {
  const size_t before = out->size();
  const int r = walk_inet_diag(buf, [out](const inet_diag_msg& m, std::span<const uint8_t>) {
    if (m.idiag_family != AF_INET && m.idiag_family != AF_INET6) return;
    SocketRecord s;
    s.family = m.idiag_family;
    std::memcpy(s.saddr.data(), m.id.idiag_src, s.saddr.size());
    std::memcpy(s.daddr.data(), m.id.idiag_dst, s.daddr.size());
    if (s.family == AF_INET) {  // only the first word is defined for IPv4
      std::memset(s.saddr.data() + 4, 0, 12);
      std::memset(s.daddr.data() + 4, 0, 12);
    }
    s.sport = ntohs(m.id.idiag_sport);
    s.dport = ntohs(m.id.idiag_dport);
    s.state = m.idiag_state;
    s.expires_ms = m.idiag_expires;
    s.rqueue = m.idiag_rqueue;
    s.wqueue = m.idiag_wqueue;
    s.uid = m.idiag_uid;
    s.inode = m.idiag_inode;
    out->push_back(s);
  });
  if (r < 0) out->resize(before);
  return r;
}

std::vector<uint8_t> local_port_filter(PortSpan span) {
  if (span.all()) return {};
  // Each port comparison is two ops: the test, then one whose `no` holds
  // the port. From the first test 16 bytes remain, from the second 8: a
  // false test jumps 4 bytes past the end, which the kernel reads as reject.
  const inet_diag_bc_op ops[4] = {
      {INET_DIAG_BC_S_GE, 8, 16 + 4},
      {0, 0, span.lo},
      {INET_DIAG_BC_S_LE, 8, 8 + 4},
      {0, 0, span.hi},
  };
  std::vector<uint8_t> out(sizeof ops);
  std::memcpy(out.data(), ops, sizeof ops);
  return out;
}

int inet_diag_dump(int fd, uint8_t family, uint32_t states, uint8_t ext, uint32_t seq,
                   const std::function<int(std::span<const uint8_t>)>& parse, std::span<const uint8_t> bytecode) {
  struct {
    nlmsghdr nlh;
    inet_diag_req_v2 req;
  } head{};
  const size_t attr_len = bytecode.empty() ? 0 : RTA_SPACE(bytecode.size());
  head.nlh.nlmsg_len = static_cast<uint32_t>(sizeof head + attr_len);
  head.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  head.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  head.nlh.nlmsg_seq = seq;
  head.req.sdiag_family = family;
  head.req.sdiag_protocol = IPPROTO_TCP;
  head.req.idiag_states = states;
  head.req.idiag_ext = ext;
  std::vector<uint8_t> msg(head.nlh.nlmsg_len, 0);
  std::memcpy(msg.data(), &head, sizeof head);
  if (attr_len) {
    rtattr a{};
    a.rta_len = static_cast<unsigned short>(RTA_LENGTH(bytecode.size()));
    a.rta_type = INET_DIAG_REQ_BYTECODE;
    std::memcpy(msg.data() + sizeof head, &a, sizeof a);
    std::memcpy(msg.data() + sizeof head + RTA_LENGTH(0), bytecode.data(), bytecode.size());
  }
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (::sendto(fd, msg.data(), msg.size(), 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel) < 0) return -errno;

  // Larger than any dump skb (the kernel caps them at 32 KiB); MSG_TRUNC
  // would still be caught below.
  std::vector<uint8_t> buf(size_t{64} * 1024);
  for (;;) {
    iovec iov{buf.data(), buf.size()};
    msghdr mh{};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    const ssize_t n = ::recvmsg(fd, &mh, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -errno;
    if (n == 0) return -EBADMSG;
    if (mh.msg_flags & MSG_TRUNC) return -EMSGSIZE;
    const int r = parse(std::span<const uint8_t>(buf.data(), static_cast<size_t>(n)));
    if (r != 0) return r < 0 ? r : 0;
  }
}

int dump_tcp_sockets(std::vector<SocketRecord>* out, uint32_t state_mask, PortSpan local_ports) {
  UniqueFd fd(::socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG));
  if (!fd) return -errno;
  auto parse = [out](std::span<const uint8_t> buf) { return parse_sock_diag_sockets(buf, out); };
  const std::vector<uint8_t> bc = local_port_filter(local_ports);
  if (int r = inet_diag_dump(fd.get(), AF_INET, state_mask, 0, 1, parse, bc); r < 0) return r;
  return inet_diag_dump(fd.get(), AF_INET6, state_mask, 0, 2, parse, bc);
}

}  // namespace connscope
