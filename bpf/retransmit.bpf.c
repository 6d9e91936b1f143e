// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Retransmit family: tcp_retransmit_skb and tcp_retransmit_synack as tp_btf
 * (preferred), raw_tp (second) or classic tracepoints (fallback), twins over
 * handle_retransmit() and handle_retransmit_synack(). The 6.17 layout change
 * of tcp_retransmit_skb is in lib/core_fixes.bpf.h.
 */
#include "lib/common.bpf.h"
#include "lib/core_fixes.bpf.h"
#include "lib/emit.bpf.h"
#include "lib/flow.bpf.h"
#include "lib/maps.bpf.h"

static __always_inline void handle_retransmit(const struct sock *sk, int err, __u8 tier)
{
	struct cs_flow flow = {};
	struct cs_sock_info *info;
	__u64 key = (__u64)sk;
	__u32 tgid = 0;
	__u8 state;

	if (!sk)
		return;
	read_sock_flow(sk, &flow);
	info = bpf_map_lookup_elem(&cs_socks, &key);
	if (info && info->have_task)
		tgid = info->task.tgid;
	state = BPF_CORE_READ(sk, __sk_common.skc_state);
	emit_retransmit(&flow, tgid, sk_cgroup_id(sk), state,
			state == CS_TCP_SYN_SENT ? CS_RETRANS_SYN : CS_RETRANS_DATA, err, tier);
}

static __always_inline void handle_retransmit_synack(const struct sock *listener, const struct request_sock *req,
						     __u8 tier)
{
	struct cs_flow flow = {};

	if (!req)
		return;
	read_flow(&req->__req_common, &flow);
	flow.netns = sk_netns(&listener->__sk_common);
	emit_retransmit(&flow, 0, sk_cgroup_id(listener), CS_TCP_SYN_RECV, CS_RETRANS_SYNACK, 0, tier);
}

SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(cs_retransmit_skb_tp_btf, const struct sock *sk, const struct sk_buff *skb)
{
	handle_retransmit(sk, retransmit_err_arg(ctx), CS_TIER_PREFERRED);
	return 0;
}

SEC("raw_tp/tcp_retransmit_skb")
int BPF_PROG(cs_retransmit_skb_raw_tp, const struct sock *sk, const struct sk_buff *skb)
{
	handle_retransmit(sk, retransmit_err_arg(ctx), CS_TIER_SECOND);
	return 0;
}

SEC("tracepoint/tcp/tcp_retransmit_skb")
int cs_retransmit_skb_tp(void *ctx)
{
	int err;
	const struct sock *sk = retransmit_tp_read(ctx, &err);

	handle_retransmit(sk, err, CS_TIER_FALLBACK);
	return 0;
}

SEC("tp_btf/tcp_retransmit_synack")
int BPF_PROG(cs_retransmit_synack_tp_btf, const struct sock *sk, const struct request_sock *req)
{
	handle_retransmit_synack(sk, req, CS_TIER_PREFERRED);
	return 0;
}

SEC("raw_tp/tcp_retransmit_synack")
int BPF_PROG(cs_retransmit_synack_raw_tp, const struct sock *sk, const struct request_sock *req)
{
	handle_retransmit_synack(sk, req, CS_TIER_SECOND);
	return 0;
}

SEC("tracepoint/tcp/tcp_retransmit_synack")
int cs_retransmit_synack_tp(struct trace_event_raw_tcp_retransmit_synack *ctx)
{
	handle_retransmit_synack(BPF_CORE_READ(ctx, skaddr), BPF_CORE_READ(ctx, req), CS_TIER_FALLBACK);
	return 0;
}
