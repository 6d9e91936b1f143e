// The hook rows of the family table: per family and tier, each program (named
// through the skeleton) and attach point.
#include "probes/families.hpp"

#include "connscope.skel.h"

namespace connscope {
namespace {

using Progs = decltype(connscope_bpf::progs);

template <bpf_program* Progs::*member>
bpf_program* prog(connscope_bpf* s) {
  return s->progs.*member;
}

using enum AttachKind;
constexpr Family connect = Family::connect, port_alloc = Family::port_alloc, state = Family::state,
                 retransmit = Family::retransmit, accept_queue = Family::accept_queue;
constexpr Tier preferred = Tier::preferred, second = Tier::second, fallback = Tier::fallback;

// Rows in attach order. The state family comes first: its programs also do
// the connect/port_alloc fallback's SYN_SENT step and the accept_queue
// fallback's queue reading (rodata switches), so those rows carry no program.
// A program in several rows (the connect fallback serves port_alloc too) is
// loaded once, and its failure counts against the first chosen row's family.
constexpr Hook hooks[] = {
    {state, preferred, tp_btf, "sock/inet_sock_set_state", prog<&Progs::cs_state_set_state_tp_btf>, {}},
    {state, second, raw_tp, "sock/inet_sock_set_state", prog<&Progs::cs_state_set_state_raw_tp>, {}},
    {state, fallback, tracepoint, "sock/inet_sock_set_state", prog<&Progs::cs_state_set_state_tp>, {}},

    {connect, preferred, fentry, "tcp_v4_connect", prog<&Progs::cs_connect_v4_fentry>, {}},
    {connect, preferred, fexit, "tcp_v4_connect", prog<&Progs::cs_connect_v4_fexit>, {}},
    {connect, preferred, fentry, "tcp_v6_connect", prog<&Progs::cs_connect_v6_fentry>, {}},
    {connect, preferred, fexit, "tcp_v6_connect", prog<&Progs::cs_connect_v6_fexit>, {}},
    {connect, second, kprobe, "tcp_v4_connect", prog<&Progs::cs_connect_v4_kprobe>, {}},
    {connect, second, kretprobe, "tcp_v4_connect", prog<&Progs::cs_connect_v4_kretprobe>, {}},
    {connect, second, kprobe, "tcp_v6_connect", prog<&Progs::cs_connect_v6_kprobe>, {}},
    {connect, second, kretprobe, "tcp_v6_connect", prog<&Progs::cs_connect_v6_kretprobe>, {}},
    {connect, fallback, cgroup_sock_addr, "connect4", prog<&Progs::cs_connect_v4_cgroup>, {}},
    {connect, fallback, cgroup_sock_addr, "connect6", prog<&Progs::cs_connect_v6_cgroup>, {}},
    {connect, fallback, sock_ops, "", prog<&Progs::cs_connect_connect_cb_sockops>, "TCP_CONNECT_CB"},
    {connect, fallback, tracepoint, "syscalls/sys_exit_connect", prog<&Progs::cs_connect_sys_exit_tp>, {}},
    {connect, fallback, tracepoint, "sock/inet_sock_set_state", nullptr, {}},

    {port_alloc, preferred, fentry, "inet_hash_connect", prog<&Progs::cs_port_alloc_v4_fentry>, {}},
    {port_alloc, preferred, fexit, "inet_hash_connect", prog<&Progs::cs_port_alloc_v4_fexit>, {}},
    {port_alloc, preferred, fentry, "inet6_hash_connect", prog<&Progs::cs_port_alloc_v6_fentry>, {}},
    {port_alloc, preferred, fexit, "inet6_hash_connect", prog<&Progs::cs_port_alloc_v6_fexit>, {}},
    {port_alloc, second, kprobe, "inet_hash_connect", prog<&Progs::cs_port_alloc_v4_kprobe>, {}},
    {port_alloc, second, kretprobe, "inet_hash_connect", prog<&Progs::cs_port_alloc_v4_kretprobe>, {}},
    {port_alloc, second, kprobe, "inet6_hash_connect", prog<&Progs::cs_port_alloc_v6_kprobe>, {}},
    {port_alloc, second, kretprobe, "inet6_hash_connect", prog<&Progs::cs_port_alloc_v6_kretprobe>, {}},
    {port_alloc, fallback, cgroup_sock_addr, "connect4", prog<&Progs::cs_connect_v4_cgroup>, {}},
    {port_alloc, fallback, cgroup_sock_addr, "connect6", prog<&Progs::cs_connect_v6_cgroup>, {}},
    {port_alloc, fallback, sock_ops, "", prog<&Progs::cs_connect_connect_cb_sockops>, "TCP_CONNECT_CB"},
    {port_alloc, fallback, tracepoint, "syscalls/sys_exit_connect", prog<&Progs::cs_connect_sys_exit_tp>, {}},
    {port_alloc, fallback, tracepoint, "sock/inet_sock_set_state", nullptr, {}},

    {retransmit, preferred, tp_btf, "tcp/tcp_retransmit_skb", prog<&Progs::cs_retransmit_skb_tp_btf>, {}},
    {retransmit, second, raw_tp, "tcp/tcp_retransmit_skb", prog<&Progs::cs_retransmit_skb_raw_tp>, {}},
    {retransmit, fallback, tracepoint, "tcp/tcp_retransmit_skb", prog<&Progs::cs_retransmit_skb_tp>, {}},
    {retransmit, preferred, tp_btf, "tcp/tcp_retransmit_synack", prog<&Progs::cs_retransmit_synack_tp_btf>, {}},
    {retransmit, second, raw_tp, "tcp/tcp_retransmit_synack", prog<&Progs::cs_retransmit_synack_raw_tp>, {}},
    {retransmit, fallback, tracepoint, "tcp/tcp_retransmit_synack", prog<&Progs::cs_retransmit_synack_tp>, {}},

    // Only an overflow at SYN time, so no fexit/kretprobe.
    {accept_queue, preferred, fentry, "tcp_conn_request", prog<&Progs::cs_accept_queue_conn_request_fentry>, {}},
    {accept_queue, preferred, fentry, "tcp_v4_syn_recv_sock", prog<&Progs::cs_accept_queue_syn_recv_v4_fentry>, {}},
    {accept_queue, preferred, fentry, "tcp_v6_syn_recv_sock", prog<&Progs::cs_accept_queue_syn_recv_v6_fentry>, {}},
    {accept_queue, second, kprobe, "tcp_conn_request", prog<&Progs::cs_accept_queue_conn_request_kprobe>, {}},
    {accept_queue, second, kprobe, "tcp_v4_syn_recv_sock", prog<&Progs::cs_accept_queue_syn_recv_v4_kprobe>, {}},
    {accept_queue, second, kprobe, "tcp_v6_syn_recv_sock", prog<&Progs::cs_accept_queue_syn_recv_v6_kprobe>, {}},
    {accept_queue, fallback, tracepoint, "sock/inet_sock_set_state", nullptr, "LISTEN->SYN_RECV"},
    {accept_queue, fallback, user_space, "netlink sock_diag listeners", nullptr, {}},
    {accept_queue, fallback, user_space, "/proc/net/netstat ListenOverflows, ListenDrops", nullptr, {}},
};

// Per AttachKind (in enum order): how `probe` prefixes the target, and the
// <kind> that ends a program's name.
struct KindNames {
  std::string_view prefix;
  std::string_view suffix;
};
constexpr KindNames kind_names[] = {
    {"fentry/", "_fentry"},  {"fexit/", "_fexit"},
    {"kprobe/", "_kprobe"},  {"kretprobe/", "_kretprobe"},
    {"tp_btf/", "_tp_btf"},  {"raw_tp/", "_raw_tp"},
    {"tracepoint/", "_tp"},  {"cgroup/", "_cgroup"},
    {"sockops", "_sockops"}, {"", ""},
};
static_assert(std::size(kind_names) == static_cast<size_t>(user_space) + 1);

}  // namespace

std::span<const Hook> hook_table() { return hooks; }

std::string_view tracepoint_name(std::string_view category_and_name) {
  return category_and_name.substr(category_and_name.find('/') + 1);
}

bool attaches_to_cgroup(AttachKind kind) { return kind == cgroup_sock_addr || kind == sock_ops; }

std::string_view program_name_suffix(AttachKind kind) { return kind_names[static_cast<size_t>(kind)].suffix; }

std::string attach_point(const Hook& h) {
  std::string_view target = h.kind == tp_btf || h.kind == raw_tp ? tracepoint_name(h.target) : h.target;
  std::string out = std::string(kind_names[static_cast<size_t>(h.kind)].prefix) + std::string(target);
  if (!h.note.empty()) out += " (" + std::string(h.note) + ")";
  return out;
}

}  // namespace connscope
