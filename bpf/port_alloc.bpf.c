// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Port allocation family: the ephemeral-port search, inet{,6}_hash_connect,
 * as fentry/fexit (preferred) or kprobe/kretprobe (second), twins over
 * hash_enter()/hash_exit(). inet_hash_connect(death_row, sk) is hooked, not
 * __inet_hash_connect, whose signature changed several times. The fallback
 * is the connect family's (bpf/connect.bpf.c).
 */
#include "lib/common.bpf.h"
#include "lib/core_fixes.bpf.h"
#include "lib/emit.bpf.h"
#include "lib/flow.bpf.h"
#include "lib/maps.bpf.h"

static __always_inline void hash_enter(const struct sock *sk)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct cs_call c = {.start_ns = bpf_ktime_get_ns(), .sk = (__u64)sk};

	if (bpf_map_update_elem(&cs_hash_calls, &tid, &c, BPF_ANY))
		count_map_full();
}

static __always_inline void hash_exit(int ret, __u8 tier)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct cs_call *c = bpf_map_lookup_elem(&cs_hash_calls, &tid);
	const struct sock *sk;
	struct cs_flow flow = {};
	struct cs_task task = {};
	__u16 lo = 0, hi = 0;
	__u64 start;

	if (!c)
		return;
	sk = (const struct sock *)c->sk;
	start = c->start_ns;
	bpf_map_delete_elem(&cs_hash_calls, &tid);
	if (!is_tcp_sock(sk)) /* inet_hash_connect also serves DCCP */
		return;
	read_sock_flow(sk, &flow);
	if (ret < 0)
		flow.sport = 0;
	fill_current_task(&task);
	read_port_range(BPF_CORE_READ(sk, __sk_common.skc_net.net), &lo, &hi);
	emit_port_alloc(&task, &flow, start, ret < 0 ? -ret : 0, lo, hi, 0, tier);
}

SEC("fentry/inet_hash_connect")
int BPF_PROG(cs_port_alloc_v4_fentry, struct inet_timewait_death_row *death_row, struct sock *sk)
{
	hash_enter(sk);
	return 0;
}

SEC("fexit/inet_hash_connect")
int BPF_PROG(cs_port_alloc_v4_fexit, struct inet_timewait_death_row *death_row, struct sock *sk, int ret)
{
	hash_exit(ret, CS_TIER_PREFERRED);
	return 0;
}

SEC("fentry/inet6_hash_connect")
int BPF_PROG(cs_port_alloc_v6_fentry, struct inet_timewait_death_row *death_row, struct sock *sk)
{
	hash_enter(sk);
	return 0;
}

SEC("fexit/inet6_hash_connect")
int BPF_PROG(cs_port_alloc_v6_fexit, struct inet_timewait_death_row *death_row, struct sock *sk, int ret)
{
	hash_exit(ret, CS_TIER_PREFERRED);
	return 0;
}

SEC("kprobe/inet_hash_connect")
int BPF_KPROBE(cs_port_alloc_v4_kprobe, struct inet_timewait_death_row *death_row, struct sock *sk)
{
	hash_enter(sk);
	return 0;
}

SEC("kretprobe/inet_hash_connect")
int BPF_KRETPROBE(cs_port_alloc_v4_kretprobe, int ret)
{
	hash_exit(ret, CS_TIER_SECOND);
	return 0;
}

SEC("kprobe/inet6_hash_connect")
int BPF_KPROBE(cs_port_alloc_v6_kprobe, struct inet_timewait_death_row *death_row, struct sock *sk)
{
	hash_enter(sk);
	return 0;
}

SEC("kretprobe/inet6_hash_connect")
int BPF_KRETPROBE(cs_port_alloc_v6_kretprobe, int ret)
{
	hash_exit(ret, CS_TIER_SECOND);
	return 0;
}
