/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Every map and read-only switch of the connscope BPF programs, declared once. */
#ifndef CONNSCOPE_MAPS_BPF_H
#define CONNSCOPE_MAPS_BPF_H

#include "common.bpf.h"

/*
 * Each family's file includes this header; the definitions are __weak so the
 * per-family objects link (`bpftool gen object`) into one object with one
 * instance of each, which the skeleton exposes as skel->maps.X / skel->rodata->X.
 */

/* ---- configuration (read-only, set by the loader before load) ---- */

__weak const volatile struct cs_filter cs_cfg = {};
/* The accept-queue family runs as the fallback: queue length comes from the
 * LISTEN->SYN_RECV transition of the new child socket. */
__weak const volatile __u8 cs_aq_from_state = 0;
/* The connect / port_alloc families run as the fallback (cgroup connect4/6,
 * sock_ops TCP_CONNECT_CB, syscalls:sys_exit_connect). */
__weak const volatile __u8 cs_fb_connect = 0;
__weak const volatile __u8 cs_fb_port_alloc = 0;
/* Records are submitted without waking the reader until this many bytes
 * wait in the ring (then with a forced wakeup); the reader drains on its
 * own timer meanwhile. 0: wake for every record. */
__weak const volatile __u64 cs_rb_wakeup_bytes = 0;

/* ---- records out, and what got lost ---- */

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, CS_RINGBUF_DEFAULT_BYTES); /* resized by the loader (--ringbuf-size) */
} cs_events __weak SEC(".maps");

/* Ring-buffer reserve failures, per CPU, indexed by enum cs_event_type. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CS_EV_TYPE_MAX);
	__type(key, __u32);
	__type(value, __u64);
} cs_lost __weak SEC(".maps");

/* Per-socket state maps that refused an update (hash full), per CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} cs_map_full __weak SEC(".maps");

/* ---- per-socket and per-call state ---- */

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
	__uint(max_entries, CS_SOCKS_MAX);
	__type(key, __u64);
	__type(value, struct cs_sock_info);
} cs_socks __weak SEC(".maps");

/* Entry timestamp of an in-flight function call, keyed by thread id, for the
 * fentry/fexit and kprobe/kretprobe pairs. */
struct cs_call {
	__u64 start_ns;
	__u64 sk;
	__u64 uaddr;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CS_CALLS_MAX);
	__type(key, __u32);
	__type(value, struct cs_call);
} cs_connect_calls __weak SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CS_CALLS_MAX);
	__type(key, __u32);
	__type(value, struct cs_call);
} cs_hash_calls __weak SEC(".maps");

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
	__uint(max_entries, CS_CALLS_MAX);
	__type(key, __u64);
	__type(value, struct cs_fb_conn);
} cs_fb_conns __weak SEC(".maps");

/* Thread id -> socket cookie of the connect() in progress (fallback). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CS_CALLS_MAX);
	__type(key, __u32);
	__type(value, __u64);
} cs_fb_threads __weak SEC(".maps");

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

#endif /* CONNSCOPE_MAPS_BPF_H */
