/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Maps, configuration and helpers shared by the connscope BPF programs. */
#ifndef CONNSCOPE_BPF_H
#define CONNSCOPE_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "connscope/events.h"

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6
#define EINPROGRESS 115
#define EADDRNOTAVAIL 99

/* ---- configuration (read-only, set by the loader before load) ---- */

const volatile struct cs_filter cs_cfg = {};
/* The accept-queue family runs as the fallback: queue length comes from the
 * LISTEN->SYN_RECV transition of the new child socket. */
const volatile __u8 cs_aq_from_state = 0;
/* The connect / port_alloc families run as the fallback (cgroup connect4/6,
 * sock_ops TCP_CONNECT_CB, syscalls:sys_exit_connect). */
const volatile __u8 cs_fb_connect = 0;
const volatile __u8 cs_fb_port_alloc = 0;

/* ---- maps ---- */

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, CS_RINGBUF_DEFAULT_BYTES); /* resized by the loader (--ringbuf-size) */
} cs_events SEC(".maps");

/* Ring-buffer reserve failures, per CPU, indexed by enum cs_event_type. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CS_EV_TYPE_MAX);
	__type(key, __u32);
	__type(value, __u64);
} cs_lost SEC(".maps");

/* Per-socket state maps that refused an update (hash full), per CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} cs_map_full SEC(".maps");

/* Per-socket state, keyed by the socket's kernel address. Written when a
 * connection starts (CLOSE->SYN_SENT, LISTEN->SYN_RECV), removed at CLOSE. */
struct cs_sock_info {
	__u64 start_ns;
	__u64 established_ns;
	struct cs_task task;
	__u8 have_task;
	__u8 pad[7];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 131072);
	__type(key, __u64);
	__type(value, struct cs_sock_info);
} cs_socks SEC(".maps");

/* Entry timestamp of an in-flight function call, keyed by thread id, for the
 * fentry/fexit and kprobe/kretprobe pairs. */
struct cs_call {
	__u64 start_ns;
	__u64 sk;
	__u64 uaddr;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct cs_call);
} cs_connect_calls SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct cs_call);
} cs_hash_calls SEC(".maps");

/* Fallback connect tracking: cgroup connect4/6 fills it, keyed by socket
 * cookie; the state tracepoint adds the port-search start, netns and range;
 * sock_ops TCP_CONNECT_CB or sys_exit_connect consume it. */
struct cs_fb_conn {
	__u64 connect_ns;
	__u64 syn_sent_ns;
	struct cs_task task;
	struct cs_flow flow;
	__u16 range_lo;
	__u16 range_hi;
	__u8 reported; /* connect/port_alloc already emitted by TCP_CONNECT_CB */
	__u8 pad[3];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct cs_fb_conn);
} cs_fb_conns SEC(".maps");

/* Thread id -> socket cookie of the connect() in progress (fallback). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u64);
} cs_fb_threads SEC(".maps");

/* ---- CO-RE flavors ---- */

/* Before 6.3 (commit 91d0b78c5177 "inet: Add IP_LOCAL_PORT_RANGE socket
 * option") netns_ipv4.ip_local_ports.range was int[2]; since then it is a
 * u32 holding low | high << 16. */
struct local_ports___pre63 {
	int range[2];
} __attribute__((preserve_access_index));

struct netns_ipv4___pre63 {
	struct local_ports___pre63 ip_local_ports;
} __attribute__((preserve_access_index));

struct net___pre63 {
	struct netns_ipv4___pre63 ipv4;
} __attribute__((preserve_access_index));

/* ---- helpers ---- */

/* Forces a value to be materialised here, so clang cannot sink the load
 * into a branch (and rewrite it as an offset context pointer). */
#define cs_pin(var) asm volatile("" : "+r"(var))

static __always_inline void count_map_full(void)
{
	__u32 zero = 0;
	__u64 *v = bpf_map_lookup_elem(&cs_map_full, &zero);

	if (v)
		(*v)++;
}

static __always_inline void count_lost(__u32 type)
{
	__u64 *v = bpf_map_lookup_elem(&cs_lost, &type);

	if (v)
		(*v)++;
}

/* Reserves a record and fills its header; counts the loss when full. */
static __always_inline void *reserve_event(__u32 size, __u8 type, __u8 tier)
{
	struct cs_header *h = bpf_ringbuf_reserve(&cs_events, size, 0);

	if (!h) {
		count_lost(type);
		return NULL;
	}
	h->type = type;
	h->tier = tier;
	h->flags = 0;
	h->cpu = bpf_get_smp_processor_id();
	h->ts_ns = bpf_ktime_get_ns();
	return h;
}

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

static __always_inline __u64 sk_cgroup_id(const struct sock *sk)
{
	return BPF_CORE_READ(sk, sk_cgrp_data.cgroup, kn, id);
}

static __always_inline bool is_tcp_sock(const struct sock *sk)
{
	return BPF_CORE_READ(sk, sk_protocol) == IPPROTO_TCP;
}

#endif /* CONNSCOPE_BPF_H */
