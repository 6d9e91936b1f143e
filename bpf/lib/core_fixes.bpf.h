/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Every CO-RE flavour: a kernel layout that changed, the change, and one accessor. */
#ifndef CONNSCOPE_CORE_FIXES_BPF_H
#define CONNSCOPE_CORE_FIXES_BPF_H

#include "common.bpf.h"

/*
 * Each accessor picks its flavour with bpf_core_*_exists() against the
 * running kernel's BTF at load time (never LINUX_VERSION_CODE): the branch
 * not taken is dead code the verifier never sees.
 */

/* ---- netns_ipv4.ip_local_ports.range ----
 * Before 6.3 (commit 91d0b78c5177 "inet: Add IP_LOCAL_PORT_RANGE socket
 * option") it was int[2]; since then it is a u32 holding low | high << 16. */
struct local_ports___pre63 {
	int range[2];
} __attribute__((preserve_access_index));

struct netns_ipv4___pre63 {
	struct local_ports___pre63 ip_local_ports;
} __attribute__((preserve_access_index));

struct net___pre63 {
	struct netns_ipv4___pre63 ipv4;
} __attribute__((preserve_access_index));

/* The netns's ip_local_port_range. */
static __always_inline void read_port_range(const struct net *net, __u16 *lo, __u16 *hi)
{
	struct net___pre63 *old = (void *)net;

	if (bpf_core_field_exists(old->ipv4.ip_local_ports.range)) {
		int r[2] = {};

		BPF_CORE_READ_INTO(&r, old, ipv4.ip_local_ports.range);
		*lo = r[0];
		*hi = r[1];
	} else {
		__u32 r = BPF_CORE_READ(net, ipv4.ip_local_ports.range);

		*lo = r & 0xffff;
		*hi = r >> 16;
	}
}

/* ---- tcp:tcp_retransmit_skb ----
 * 6.17 ("tcp: extend tcp_retransmit_skb tracepoint with failure reasons",
 * net-next July 2025) moved the tracepoint out of the tcp_event_sk_skb class
 * into its own, trace_event_raw_tcp_retransmit_skb, and gave it a third
 * argument, the retransmission's result `err`. Before, there is no err. */
struct trace_event_raw_tcp_event_sk_skb___pre617 {
	const void *skbaddr;
	const void *skaddr;
	int state;
} __attribute__((preserve_access_index));

static __always_inline bool retransmit_has_err(void)
{
	return bpf_core_type_exists(struct trace_event_raw_tcp_retransmit_skb);
}

/* The err argument of a tp_btf/raw_tp context (positive errno), 0 before 6.17. */
static __always_inline int retransmit_err_arg(const unsigned long long *ctx)
{
	int err = 0;

	if (retransmit_has_err())
		err = (int)ctx[2];
	return err < 0 ? -err : err;
}

/* The socket and err (positive errno, 0 before 6.17) of a classic tracepoint record. */
static __always_inline const struct sock *retransmit_tp_read(void *ctx, int *err)
{
	const struct sock *sk;
	int e = 0;

	if (retransmit_has_err()) {
		struct trace_event_raw_tcp_retransmit_skb *c = ctx;

		sk = BPF_CORE_READ(c, skaddr);
		e = BPF_CORE_READ(c, err);
	} else {
		struct trace_event_raw_tcp_event_sk_skb___pre617 *c = ctx;

		sk = BPF_CORE_READ(c, skaddr);
	}
	*err = e < 0 ? -e : e;
	return sk;
}

#endif /* CONNSCOPE_CORE_FIXES_BPF_H */
