/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Reading a connection's 4-tuple, netns and owner, and the in-kernel filters. */
#ifndef CONNSCOPE_FLOW_BPF_H
#define CONNSCOPE_FLOW_BPF_H

#include "common.bpf.h"
#include "maps.bpf.h"

static __always_inline void fill_current_task(struct cs_task *t)
{
	__u64 id = bpf_get_current_pid_tgid();

	t->pid = (__u32)id;
	t->tgid = id >> 32;
	t->cgroup_id = bpf_get_current_cgroup_id();
	bpf_get_current_comm(t->comm, sizeof(t->comm));
}

static __always_inline __u32 net_inum(const struct net *net)
{
	return BPF_CORE_READ(net, ns.inum);
}

static __always_inline __u32 sk_netns(const struct sock_common *skc)
{
	return net_inum(BPF_CORE_READ(skc, skc_net.net));
}

/* Reads the 4-tuple of a socket or request socket (both start with
 * struct sock_common). Ports in host order. */
static __always_inline void read_flow(const struct sock_common *skc, struct cs_flow *f)
{
	__u16 family = BPF_CORE_READ(skc, skc_family);

	f->family = family;
	f->sport = BPF_CORE_READ(skc, skc_num);
	f->dport = bpf_ntohs(BPF_CORE_READ(skc, skc_dport));
	if (family == AF_INET6) {
		BPF_CORE_READ_INTO(&f->saddr, skc, skc_v6_rcv_saddr.in6_u.u6_addr8);
		BPF_CORE_READ_INTO(&f->daddr, skc, skc_v6_daddr.in6_u.u6_addr8);
	} else {
		/* 4 bytes into the 16-byte arrays (BPF_CORE_READ_INTO would size
		 * the read by the array's element). */
		bpf_core_read(f->saddr, 4, &skc->skc_rcv_saddr);
		bpf_core_read(f->daddr, 4, &skc->skc_daddr);
	}
	f->netns = sk_netns(skc);
}

/* Reads a user sockaddr (sockaddr_in / sockaddr_in6) into the destination
 * half of a flow. Returns false for other families. */
static __always_inline bool read_uaddr_dest(const void *uaddr, struct cs_flow *f)
{
	__u16 family = 0;

	bpf_probe_read_kernel(&family, sizeof(family), uaddr);
	if (family == AF_INET) {
		const struct sockaddr_in *sin = uaddr;

		f->dport = bpf_ntohs(BPF_CORE_READ(sin, sin_port));
		bpf_core_read(f->daddr, 4, &sin->sin_addr.s_addr);
	} else if (family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = uaddr;

		f->dport = bpf_ntohs(BPF_CORE_READ(sin6, sin6_port));
		BPF_CORE_READ_INTO(&f->daddr, sin6, sin6_addr.in6_u.u6_addr8);
	} else {
		return false;
	}
	f->family = family;
	return true;
}

/* A full socket's flow. The local port comes from inet_sport: tcp_set_state
 * releases the bound port (zeroing skc_num) before the CLOSE transition is
 * traced, but inet_sport keeps it. */
static __always_inline void read_sock_flow(const struct sock *sk, struct cs_flow *f)
{
	read_flow(&sk->__sk_common, f);
	f->sport = bpf_ntohs(BPF_CORE_READ((const struct inet_sock *)sk, inet_sport));
}

static __always_inline __u64 sk_cgroup_id(const struct sock *sk)
{
	return BPF_CORE_READ(sk, sk_cgrp_data.cgroup, kn, id);
}

static __always_inline bool is_tcp_sock(const struct sock *sk)
{
	return BPF_CORE_READ(sk, sk_protocol) == IPPROTO_TCP;
}

static __always_inline bool port_in(__u16 port, const volatile __u16 *list, __u8 n)
{
#pragma unroll
	for (int i = 0; i < CS_MAX_PORT_FILTER; i++) {
		if (i >= n)
			break;
		if (list[i] == port)
			return true;
	}
	return false;
}

/* The in-kernel filters (--pid, --cgroup, --netns, --lport, --rport).
 * tgid/cgroup 0 mean "not attributable": they pass only without that filter. */
static __always_inline bool filter_pass(const struct cs_flow *f, __u32 tgid, __u64 cgroup_id)
{
	if (cs_cfg.tgid && tgid != cs_cfg.tgid)
		return false;
	if (cs_cfg.cgroup_id && cgroup_id != cs_cfg.cgroup_id)
		return false;
	if (cs_cfg.netns && f->netns != cs_cfg.netns)
		return false;
	if (cs_cfg.n_lports && !port_in(f->sport, cs_cfg.lports, cs_cfg.n_lports))
		return false;
	if (cs_cfg.n_rports && !port_in(f->dport, cs_cfg.rports, cs_cfg.n_rports))
		return false;
	return true;
}

#endif /* CONNSCOPE_FLOW_BPF_H */
