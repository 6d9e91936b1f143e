// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Accept-queue family: tcp_conn_request (SYN time) and tcp_v{4,6}_syn_recv_sock
 * (child creation) as fentry (preferred) or kprobe (second), twins over
 * handle_accept_queue(). The fallback has no program here: the state
 * family's hook reads the queue at LISTEN->SYN_RECV (bpf/state.bpf.c), and
 * user space polls sock_diag and /proc/net/netstat.
 */
#include "lib/common.bpf.h"
#include "lib/emit.bpf.h"
#include "lib/flow.bpf.h"
#include "lib/maps.bpf.h"

/* sk_acceptq_is_full(): sk_ack_backlog > sk_max_ack_backlog. At SYN time
 * (tcp_conn_request) only an overflow is reported; at child creation
 * (tcp_v{4,6}_syn_recv_sock) the connection is queued or overflows. */
static __always_inline void handle_accept_queue(const struct sock *listener, const struct request_sock *req,
						bool at_syn, __u8 tier)
{
	struct cs_flow flow = {};
	__u32 backlog = BPF_CORE_READ(listener, sk_ack_backlog);
	__u32 max = BPF_CORE_READ(listener, sk_max_ack_backlog);
	bool full = backlog > max;

	if (at_syn && !full)
		return;
	read_sock_flow(listener, &flow);
	if (req) {
		struct cs_flow peer = {};

		read_flow(&req->__req_common, &peer);
		__builtin_memcpy(flow.saddr, peer.saddr, sizeof(flow.saddr));
		__builtin_memcpy(flow.daddr, peer.daddr, sizeof(flow.daddr));
		flow.dport = peer.dport;
	}
	emit_accept_queue(&flow, sk_cgroup_id(listener), full ? backlog : backlog + 1, max,
			  full ? CS_AQ_OVERFLOW : CS_AQ_QUEUED, tier);
}

SEC("fentry/tcp_conn_request")
int BPF_PROG(cs_accept_queue_conn_request_fentry, struct request_sock_ops *rsk_ops,
	     const struct tcp_request_sock_ops *af_ops, struct sock *sk)
{
	handle_accept_queue(sk, NULL, true, CS_TIER_PREFERRED);
	return 0;
}

SEC("fentry/tcp_v4_syn_recv_sock")
int BPF_PROG(cs_accept_queue_syn_recv_v4_fentry, const struct sock *sk, struct sk_buff *skb, struct request_sock *req)
{
	handle_accept_queue(sk, req, false, CS_TIER_PREFERRED);
	return 0;
}

SEC("fentry/tcp_v6_syn_recv_sock")
int BPF_PROG(cs_accept_queue_syn_recv_v6_fentry, const struct sock *sk, struct sk_buff *skb, struct request_sock *req)
{
	handle_accept_queue(sk, req, false, CS_TIER_PREFERRED);
	return 0;
}

SEC("kprobe/tcp_conn_request")
int BPF_KPROBE(cs_accept_queue_conn_request_kprobe, struct request_sock_ops *rsk_ops,
	       const struct tcp_request_sock_ops *af_ops, struct sock *sk)
{
	handle_accept_queue(sk, NULL, true, CS_TIER_SECOND);
	return 0;
}

SEC("kprobe/tcp_v4_syn_recv_sock")
int BPF_KPROBE(cs_accept_queue_syn_recv_v4_kprobe, const struct sock *sk, struct sk_buff *skb, struct request_sock *req)
{
	handle_accept_queue(sk, req, false, CS_TIER_SECOND);
	return 0;
}

SEC("kprobe/tcp_v6_syn_recv_sock")
int BPF_KPROBE(cs_accept_queue_syn_recv_v6_kprobe, const struct sock *sk, struct sk_buff *skb, struct request_sock *req)
{
	handle_accept_queue(sk, req, false, CS_TIER_SECOND);
	return 0;
}
