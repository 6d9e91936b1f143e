/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Event records shared by the BPF programs (bpf/) and the agent (agent/).
 * One definition of each record, fixed-width fields only, and of the
 * numbers inside them (TCP states, flags). The agent static_asserts the
 * sizes and offsets it decodes (agent/events/event_decoder.cpp).
 *
 * Byte order: ports are host order; addresses are network order bytes,
 * IPv4 in the first 4 bytes of the 16-byte arrays.
 */
#ifndef CONNSCOPE_EVENTS_H
#define CONNSCOPE_EVENTS_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define CS_COMM_LEN 16
#define CS_MAX_PORT_FILTER 8
/* The ring buffer's size unless --ringbuf-size says otherwise (the loader
 * rounds it up to a power of two pages). */
#define CS_RINGBUF_DEFAULT_BYTES (8u << 20)

/* Record types: the first byte of every record. */
enum cs_event_type {
	CS_EV_CONNECT = 1,
	CS_EV_PORT_ALLOC = 2,
	CS_EV_STATE = 3,
	CS_EV_RETRANSMIT = 4,
	CS_EV_ACCEPT_QUEUE = 5,
	CS_EV_TYPE_MAX = 6, /* loss counters are indexed by type, 0 = other */
};

/* Which attach tier produced a record (same meaning across tiers). */
enum cs_tier {
	CS_TIER_PREFERRED = 0, /* fentry/fexit, tp_btf */
	CS_TIER_SECOND = 1,    /* kprobe/kretprobe, raw_tp */
	CS_TIER_FALLBACK = 2,  /* cgroup sock_addr/sock_ops, classic tracepoints */
};

/* TCP states, numbered as include/net/tcp_states.h (and sock_diag's
 * idiag_state): the oldstate/newstate/state fields of the records. */
enum cs_tcp_state {
	CS_TCP_ESTABLISHED = 1,
	CS_TCP_SYN_SENT = 2,
	CS_TCP_SYN_RECV = 3,
	CS_TCP_FIN_WAIT1 = 4,
	CS_TCP_FIN_WAIT2 = 5,
	CS_TCP_TIME_WAIT = 6,
	CS_TCP_CLOSE = 7,
	CS_TCP_CLOSE_WAIT = 8,
	CS_TCP_LAST_ACK = 9,
	CS_TCP_LISTEN = 10,
	CS_TCP_CLOSING = 11,
	CS_TCP_NEW_SYN_RECV = 12,
};

enum cs_retransmit_kind {
	CS_RETRANS_DATA = 1,   /* tcp_retransmit_skb outside SYN_SENT */
	CS_RETRANS_SYN = 2,    /* tcp_retransmit_skb in SYN_SENT */
	CS_RETRANS_SYNACK = 3, /* tcp_retransmit_synack on a listener */
};

enum cs_accept_queue_kind {
	CS_AQ_QUEUED = 1,   /* a connection entered the accept queue */
	CS_AQ_OVERFLOW = 2, /* a SYN or final ACK dropped: accept queue full */
	CS_AQ_DROP = 3,	    /* other listener drop (ListenDrops delta) */
};

/* Flags on state records. */
#define CS_STATE_F_TIME_WAIT 0x1u /* active closer entering TIME_WAIT */
#define CS_STATE_F_PASSIVE 0x2u	  /* connection accepted from a listener */
#define CS_STATE_F_NO_START 0x4u  /* agent did not see the start: no latency */

/* Flags on port-allocation records. */
#define CS_PORT_ALLOC_F_APPROXIMATE 0x1u /* fallback: includes route lookup and ISN setup */

/* Flags on accept-queue records. */
#define CS_AQ_F_APPROXIMATE 0x1u /* attribution from a poll, not in-kernel */

struct cs_header {
	__u8 type;   /* enum cs_event_type */
	__u8 tier;   /* enum cs_tier */
	__u16 flags; /* per-type flags: CS_<TYPE>_F_* */
	__u32 cpu;
	__u64 ts_ns; /* bpf_ktime_get_ns(), CLOCK_MONOTONIC */
};

struct cs_task {
	__u32 pid;  /* thread id */
	__u32 tgid; /* process id */
	__u64 cgroup_id;
	char comm[CS_COMM_LEN];
};

struct cs_flow {
	__u8 saddr[16];
	__u8 daddr[16];
	__u16 sport;
	__u16 dport;
	__u16 family; /* AF_INET (2) or AF_INET6 (10) */
	__u16 pad;
	__u32 netns; /* network namespace inode number */
	__u32 pad2;
};

/* The synchronous part of connect(): tcp_v{4,6}_connect returned. */
struct cs_connect_event {
	struct cs_header h;
	struct cs_task task;
	struct cs_flow flow;
	__u64 latency_ns; /* time inside connect's synchronous part */
	__s32 err;	  /* 0 or positive errno (EADDRNOTAVAIL, ...) */
	__u32 pad;
};

/* Ephemeral port search: inet_hash_connect / inet6_hash_connect. */
struct cs_port_alloc_event {
	struct cs_header h;
	struct cs_task task;
	struct cs_flow flow; /* flow.sport is the chosen port (0 on failure) */
	__u64 duration_ns;
	__s32 err;	/* 0 or positive errno (EADDRNOTAVAIL) */
	__u16 range_lo; /* netns ip_local_port_range */
	__u16 range_hi;
};

/* Interesting TCP state transitions of one socket. */
struct cs_state_event {
	struct cs_header h;
	struct cs_task task; /* process that started the connection, if seen */
	struct cs_flow flow;
	__u64 latency_ns;  /* handshake: SYN_SENT->ESTABLISHED, SYN_RECV->EST */
	__u64 duration_ns; /* on close: life since the handshake started */
	__s32 err;	   /* sk_err at the transition (ECONNREFUSED, ETIMEDOUT) */
	__u8 oldstate;	   /* enum cs_tcp_state */
	__u8 newstate;
	__u16 pad;
};

struct cs_retransmit_event {
	struct cs_header h;
	struct cs_flow flow;
	__u8 state; /* enum cs_tcp_state of the socket */
	__u8 kind;  /* enum cs_retransmit_kind */
	__u16 pad;
	__s32 err; /* 6.17+ tracepoint err field; 0 where absent */
};

struct cs_accept_queue_event {
	struct cs_header h;
	struct cs_flow flow; /* listener: saddr/sport; daddr/dport of peer if known */
	__u32 backlog;	     /* accept queue length, this connection included */
	__u32 max_backlog;   /* sk_max_ack_backlog */
	__u32 count;	     /* events this record stands for (polls: a delta) */
	__u8 kind;	     /* enum cs_accept_queue_kind */
	__u8 pad[3];
};

/* Read-only configuration, set by the loader before load. */
struct cs_filter {
	__u32 tgid;	 /* 0 = any */
	__u32 netns;	 /* 0 = any */
	__u64 cgroup_id; /* 0 = any */
	__u16 lports[CS_MAX_PORT_FILTER];
	__u16 rports[CS_MAX_PORT_FILTER];
	__u8 n_lports;
	__u8 n_rports;
	__u8 all_states; /* emit every state transition, not only key ones */
	__u8 pad[5];
};

#endif /* CONNSCOPE_EVENTS_H */
