// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Connect family: tcp_v{4,6}_connect as fentry/fexit (preferred) or
 * kprobe/kretprobe (second), twins over connect_enter()/connect_exit().
 * The fallback (cgroup connect4/6 -> sock_ops TCP_CONNECT_CB, or
 * syscalls:sys_exit_connect when no SYN went out) serves both the connect
 * and the port_alloc families; rodata switches say which records it emits.
 */
#include "lib/common.bpf.h"
#include "lib/emit.bpf.h"
#include "lib/flow.bpf.h"
#include "lib/maps.bpf.h"

static __always_inline void connect_enter(const struct sock *sk, const void *uaddr)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct cs_call c = {.start_ns = bpf_ktime_get_ns(), .sk = (__u64)sk, .uaddr = (__u64)uaddr};

	if (bpf_map_update_elem(&cs_connect_calls, &tid, &c, BPF_ANY))
		count_map_full();
}

static __always_inline void connect_exit(int ret, __u8 tier)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct cs_call *c = bpf_map_lookup_elem(&cs_connect_calls, &tid);
	const struct sock *sk;
	struct cs_flow flow = {};
	struct cs_task task = {};
	__u64 start;

	if (!c)
		return;
	sk = (const struct sock *)c->sk;
	start = c->start_ns;
	read_sock_flow(sk, &flow);
	/* On failure the kernel resets the destination; report what was asked. */
	read_uaddr_dest((const void *)c->uaddr, &flow);
	bpf_map_delete_elem(&cs_connect_calls, &tid);
	if (ret < 0)
		flow.sport = 0;

	fill_current_task(&task);
	emit_connect(&task, &flow, start, ret < 0 ? -ret : 0, tier);
}

SEC("fentry/tcp_v4_connect")
int BPF_PROG(cs_connect_v4_fentry, struct sock *sk, struct sockaddr *uaddr)
{
	connect_enter(sk, uaddr);
	return 0;
}

SEC("fexit/tcp_v4_connect")
int BPF_PROG(cs_connect_v4_fexit, struct sock *sk, struct sockaddr *uaddr, int addr_len, int ret)
{
	connect_exit(ret, CS_TIER_PREFERRED);
	return 0;
}

SEC("fentry/tcp_v6_connect")
int BPF_PROG(cs_connect_v6_fentry, struct sock *sk, struct sockaddr *uaddr)
{
	connect_enter(sk, uaddr);
	return 0;
}

SEC("fexit/tcp_v6_connect")
int BPF_PROG(cs_connect_v6_fexit, struct sock *sk, struct sockaddr *uaddr, int addr_len, int ret)
{
	connect_exit(ret, CS_TIER_PREFERRED);
	return 0;
}

SEC("kprobe/tcp_v4_connect")
int BPF_KPROBE(cs_connect_v4_kprobe, struct sock *sk, struct sockaddr *uaddr)
{
	connect_enter(sk, uaddr);
	return 0;
}

SEC("kretprobe/tcp_v4_connect")
int BPF_KRETPROBE(cs_connect_v4_kretprobe, int ret)
{
	connect_exit(ret, CS_TIER_SECOND);
	return 0;
}

SEC("kprobe/tcp_v6_connect")
int BPF_KPROBE(cs_connect_v6_kprobe, struct sock *sk, struct sockaddr *uaddr)
{
	connect_enter(sk, uaddr);
	return 0;
}

SEC("kretprobe/tcp_v6_connect")
int BPF_KRETPROBE(cs_connect_v6_kretprobe, int ret)
{
	connect_exit(ret, CS_TIER_SECOND);
	return 0;
}

/* ---- fallback: cgroup connect4/6 -> sock_ops TCP_CONNECT_CB / sys_exit_connect ---- */

static __always_inline int fb_connect(struct bpf_sock_addr *ctx, __u16 family)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct cs_fb_conn c = {};
	__u64 cookie;

	if (ctx->type != SOCK_STREAM || ctx->protocol != IPPROTO_TCP)
		return 1;
	cookie = bpf_get_socket_cookie(ctx);
	c.connect_ns = bpf_ktime_get_ns();
	fill_current_task(&c.task);
	c.flow.family = family;
	c.flow.dport = bpf_ntohs(ctx->user_port);
	if (family == AF_INET) {
		__u32 a = ctx->user_ip4;

		__builtin_memcpy(c.flow.daddr, &a, 4);
	} else {
		__u32 a[4];

		a[0] = ctx->user_ip6[0];
		a[1] = ctx->user_ip6[1];
		a[2] = ctx->user_ip6[2];
		a[3] = ctx->user_ip6[3];
		__builtin_memcpy(c.flow.daddr, a, 16);
	}
	if (bpf_map_update_elem(&cs_fb_conns, &cookie, &c, BPF_ANY) ||
	    bpf_map_update_elem(&cs_fb_threads, &tid, &cookie, BPF_ANY))
		count_map_full();
	return 1;
}

SEC("cgroup/connect4")
int cs_connect_v4_cgroup(struct bpf_sock_addr *ctx)
{
	return fb_connect(ctx, AF_INET);
}

SEC("cgroup/connect6")
int cs_connect_v6_cgroup(struct bpf_sock_addr *ctx)
{
	return fb_connect(ctx, AF_INET6);
}

/* The connect and port_alloc records of a fallback connection: the port
 * search is timed from SYN_SENT (or connect() if the state hook missed it) to
 * TCP_CONNECT_CB, so it includes route lookup and ISN setup: approximate. */
static __always_inline void fb_emit(const struct cs_fb_conn *c, const struct cs_flow *flow, __s32 err, bool port_alloc)
{
	if (cs_fb_connect)
		emit_connect(&c->task, flow, c->connect_ns, err, CS_TIER_FALLBACK);
	if (cs_fb_port_alloc && port_alloc)
		emit_port_alloc(&c->task, flow, c->syn_sent_ns ? c->syn_sent_ns : c->connect_ns, err, c->range_lo,
				c->range_hi, CS_PORT_ALLOC_F_APPROXIMATE, CS_TIER_FALLBACK);
}

SEC("sockops")
int cs_connect_connect_cb_sockops(struct bpf_sock_ops *skops)
{
	struct cs_fb_conn *c;
	struct cs_flow flow;
	__u64 cookie;

	if (skops->op != BPF_SOCK_OPS_TCP_CONNECT_CB)
		return 1;
	cookie = bpf_get_socket_cookie(skops);
	c = bpf_map_lookup_elem(&cs_fb_conns, &cookie);
	if (!c)
		return 1;
	c->reported = 1;
	flow = c->flow;
	flow.sport = skops->local_port;
	/* Read every context field unconditionally: the verifier refuses a
	 * context pointer that clang offsets to pick one field or the other. */
	__u32 family = skops->family;
	__u32 a[4] = {skops->local_ip6[0], skops->local_ip6[1], skops->local_ip6[2], skops->local_ip6[3]};
	__u32 a4 = skops->local_ip4;

	cs_pin(a[0]);
	cs_pin(a[1]);
	cs_pin(a[2]);
	cs_pin(a[3]);
	cs_pin(a4);
	if (family == AF_INET)
		__builtin_memcpy(flow.saddr, &a4, 4);
	else
		__builtin_memcpy(flow.saddr, a, 16);
	fb_emit(c, &flow, 0, true);
	return 1;
}

/* syscalls:sys_exit_<name> records: the format is fixed by the syscall
 * tracing core (kernel/trace/trace_syscalls.c), not by any struct in BTF. */
struct cs_sys_exit_ctx {
	__u64 common;
	__s32 nr;
	__s32 pad;
	long ret;
};

SEC("tracepoint/syscalls/sys_exit_connect")
int cs_connect_sys_exit_tp(struct cs_sys_exit_ctx *ctx)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	__u64 *cookiep = bpf_map_lookup_elem(&cs_fb_threads, &tid);
	struct cs_fb_conn *c;
	long ret = ctx->ret;
	__u64 cookie;

	if (!cookiep)
		return 0;
	cookie = *cookiep;
	bpf_map_delete_elem(&cs_fb_threads, &tid);
	c = bpf_map_lookup_elem(&cs_fb_conns, &cookie);
	if (!c)
		return 0;
	if (!c->reported && ret < 0 && ret != -EINPROGRESS) {
		/* The connect failed before a SYN was sent; a port search that
		 * fails reports EADDRNOTAVAIL. */
		struct cs_flow flow = c->flow;

		if (!flow.netns) {
			struct task_struct *task = (void *)bpf_get_current_task();

			flow.netns = net_inum(BPF_CORE_READ(task, nsproxy, net_ns));
		}
		fb_emit(c, &flow, -ret, ret == -EADDRNOTAVAIL);
	}
	bpf_map_delete_elem(&cs_fb_conns, &cookie);
	return 0;
}
