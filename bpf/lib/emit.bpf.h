/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* One emitter per record type: filter, reserve, fill, submit. Every tier calls these. */
#ifndef CONNSCOPE_EMIT_BPF_H
#define CONNSCOPE_EMIT_BPF_H

#include "common.bpf.h"
#include "flow.bpf.h"
#include "maps.bpf.h"

/*
 * A record's every field is written here and only here, so the preferred,
 * second and fallback tiers of a family produce the same records by
 * construction; a tier differs only in how it gathers the arguments. Each
 * emitter applies the in-kernel filters first (filter_pass) and counts a
 * full ring buffer in cs_lost.
 */

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

/* Submit flags: no wakeup while little waits in the ring, so a busy host
 * costs the reader a bounded number of wakeups, not one per record. */
static __always_inline __u64 submit_flags(void)
{
	if (!cs_rb_wakeup_bytes)
		return 0;
	return bpf_ringbuf_query(&cs_events, BPF_RB_AVAIL_DATA) >= cs_rb_wakeup_bytes ? BPF_RB_FORCE_WAKEUP
										      : BPF_RB_NO_WAKEUP;
}

/* connect()'s synchronous part ended; err is 0 or a positive errno. */
static __always_inline void emit_connect(const struct cs_task *task, const struct cs_flow *flow, __u64 start_ns,
					 __s32 err, __u8 tier)
{
	struct cs_connect_event *e;

	if (!filter_pass(flow, task->tgid, task->cgroup_id))
		return;
	e = reserve_event(sizeof(*e), CS_EV_CONNECT, tier);
	if (!e)
		return;
	e->task = *task;
	e->flow = *flow;
	e->latency_ns = e->h.ts_ns - start_ns;
	e->err = err;
	e->pad = 0;
	bpf_ringbuf_submit(e, submit_flags());
}

/* The ephemeral-port search ended; flags: CS_PORT_ALLOC_F_*. */
static __always_inline void emit_port_alloc(const struct cs_task *task, const struct cs_flow *flow, __u64 start_ns,
					    __s32 err, __u16 range_lo, __u16 range_hi, __u16 flags, __u8 tier)
{
	struct cs_port_alloc_event *e;

	if (!filter_pass(flow, task->tgid, task->cgroup_id))
		return;
	e = reserve_event(sizeof(*e), CS_EV_PORT_ALLOC, tier);
	if (!e)
		return;
	e->h.flags = flags;
	e->task = *task;
	e->flow = *flow;
	e->duration_ns = e->h.ts_ns - start_ns;
	e->err = err;
	e->range_lo = range_lo;
	e->range_hi = range_hi;
	bpf_ringbuf_submit(e, submit_flags());
}

/* A state transition. task: who started the connection, NULL if not seen
 * (then the filters see tgid 0 and the socket's cgroup, sk_cgroup).
 * flags: CS_STATE_F_*. */
static __always_inline void emit_state(const struct cs_flow *flow, const struct cs_task *task, __u64 sk_cgroup,
				       __u64 latency_ns, __u64 duration_ns, __s32 err, __u8 oldstate, __u8 newstate,
				       __u16 flags, __u8 tier)
{
	struct cs_state_event *e;

	if (!filter_pass(flow, task ? task->tgid : 0, task ? task->cgroup_id : sk_cgroup))
		return;
	e = reserve_event(sizeof(*e), CS_EV_STATE, tier);
	if (!e)
		return;
	e->h.flags = flags;
	e->flow = *flow;
	if (task)
		e->task = *task;
	else
		__builtin_memset(&e->task, 0, sizeof(e->task));
	e->latency_ns = latency_ns;
	e->duration_ns = duration_ns;
	e->err = err;
	e->oldstate = oldstate;
	e->newstate = newstate;
	e->pad = 0;
	bpf_ringbuf_submit(e, submit_flags());
}

/* A retransmission; state: enum cs_tcp_state, kind: enum cs_retransmit_kind. */
static __always_inline void emit_retransmit(const struct cs_flow *flow, __u32 tgid, __u64 cgroup_id, __u8 state,
					    __u8 kind, __s32 err, __u8 tier)
{
	struct cs_retransmit_event *e;

	if (!filter_pass(flow, tgid, cgroup_id))
		return;
	e = reserve_event(sizeof(*e), CS_EV_RETRANSMIT, tier);
	if (!e)
		return;
	e->flow = *flow;
	e->state = state;
	e->kind = kind;
	e->pad = 0;
	e->err = err;
	bpf_ringbuf_submit(e, submit_flags());
}

/* One connection queued on, or refused by, a listener (no process: tgid 0);
 * kind: enum cs_accept_queue_kind. */
static __always_inline void emit_accept_queue(const struct cs_flow *flow, __u64 cgroup_id, __u32 backlog,
					      __u32 max_backlog, __u8 kind, __u8 tier)
{
	struct cs_accept_queue_event *e;

	if (!filter_pass(flow, 0, cgroup_id))
		return;
	e = reserve_event(sizeof(*e), CS_EV_ACCEPT_QUEUE, tier);
	if (!e)
		return;
	e->flow = *flow;
	e->backlog = backlog;
	e->max_backlog = max_backlog;
	e->count = 1;
	e->kind = kind;
	__builtin_memset(e->pad, 0, sizeof(e->pad));
	bpf_ringbuf_submit(e, submit_flags());
}

#endif /* CONNSCOPE_EMIT_BPF_H */
