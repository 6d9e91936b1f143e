/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Includes, kernel constants and named sizes shared by every connscope BPF file. */
#ifndef CONNSCOPE_COMMON_BPF_H
#define CONNSCOPE_COMMON_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "connscope/events.h"

/* vmlinux.h carries types, not the UAPI macros. */
#define AF_INET 2
#define AF_INET6 10
#define SOCK_STREAM 1
#define IPPROTO_TCP 6
#define EADDRNOTAVAIL 99
#define EINPROGRESS 115

/* Map sizes. */
#define CS_SOCKS_MAX 131072 /* sockets tracked from their start to CLOSE */
#define CS_CALLS_MAX 16384  /* threads inside connect() or the port search at once */

/* Forces a value to be materialised here, so clang cannot sink the load
 * into a branch (and rewrite it as an offset context pointer). */
#define cs_pin(var) asm volatile("" : "+r"(var))

/*
 * Program names: cs_<family>_<hook>_<kind>, where <family> is the family's
 * name in `probe` (connect, port_alloc, state, retransmit, accept_queue),
 * <hook> the kernel hook without the family's own words (v4/v6, set_state,
 * skb, synack, conn_request, syn_recv_v4, connect_cb, sys_exit) and <kind>
 * the attach kind, which fixes the tier: fentry/fexit/tp_btf (preferred),
 * kprobe/kretprobe/raw_tp (second), tp/cgroup/sockops (fallback). The loader
 * names them through the skeleton (agent/probes/families.cpp).
 */

#endif /* CONNSCOPE_COMMON_BPF_H */
