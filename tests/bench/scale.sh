#!/bin/bash
# The agent's cost at rest as held sockets grow: for each count, a fresh
# network namespace holds COUNT sockets (COUNT/2 loopback connections, both
# ends, spread over processes of at most 9000 connections: the fd limit is
# 20,000) plus 20,000 client sockets in TIME_WAIT, like a gateway's: the
# listeners on ports 20000 and up, outside the default ephemeral range
# 32768-60999 the clients' ports come from; a fresh `connscope run`
# watching that namespace (reconciliation every 5 s, its default) is left
# alone for WINDOW seconds, and the table gives its CPU (% of a core, user +
# sys, which includes the kernel's sock_diag work done for it), its peak RSS,
# and the CPU that `ss -tan` needs to dump the same table, per socket. The
# last line extrapolates the largest count's CPU to 2 M sockets (linear).
#
#   tests/bench/scale.sh [BUILD_DIR] [SOCKETS...]   (default 10000 50000 100000)
#   SCALE_WINDOW=60 SCALE_TIME_WAIT=20000 SCALE_RECONCILE=5
#   SCALE_AGENTS="build/connscope /tmp/connscope-before" (each on the same table, in turn)
set -euo pipefail
build=${1:-build}
shift || true
counts=("$@")
[ ${#counts[@]} -gt 0 ] || counts=(10000 50000 100000)
window=${SCALE_WINDOW:-60}
tw=${SCALE_TIME_WAIT:-20000}
reconcile=${SCALE_RECONCILE:-5}
agent=$build/connscope
agents=${SCALE_AGENTS:-$agent}
hold=$build/hold
[ "$(id -u)" = 0 ] || { echo "scale.sh: needs root (BPF, network namespaces): sudo make bench" >&2; exit 1; }
for b in $agents "$hold"; do [ -x "$b" ] || { echo "scale.sh: $b missing: make bench builds it" >&2; exit 1; }; done
hz=$(getconf CLK_TCK)
ns=
apid=
holders=()
cleanup() {
  [ -n "$apid" ] && kill -INT "$apid" 2>/dev/null && wait "$apid" 2>/dev/null || true
  for p in "${holders[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -n "$ns" ] && ip netns del "$ns" 2>/dev/null || true
  apid= holders=() ns=
}
trap cleanup EXIT INT TERM
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

echo "scale.sh: each count plus $tw TIME_WAIT sockets; agent at rest for ${window} s, --reconcile-interval $reconcile"
printf '%10s %10s %12s %10s %14s %14s %16s  %s\n' sockets time_wait agent_cpu_% hwm_mib agent_us_per_s ss_cpu_ms ss_ns_per_socket agent
last_cpu=0 last_total=0
for count in "${counts[@]}"; do
  ns=csscale$$-$count
  ip netns add "$ns"
  ip -n "$ns" link set lo up
  ip netns exec "$ns" sh -c 'echo "32768 60999" > /proc/sys/net/ipv4/ip_local_port_range; echo 1 > /proc/sys/net/ipv4/tcp_tw_reuse'
  conns=$((count / 2)) per=9000 i=0
  fifo_dir=$(mktemp -d)
  while [ "$conns" -gt 0 ]; do
    n=$((conns < per ? conns : per))
    mkfifo "$fifo_dir/in$i"
    # stdin from a fifo held open below: the holder exits when it closes.
    ip netns exec "$ns" "$hold" -n "$n" -p $((20000 + i)) -d 600 <"$fifo_dir/in$i" >"$fifo_dir/out$i" &
    holders+=($!)
    exec {fd}>"$fifo_dir/in$i"
    eval "fd$i=$fd"
    conns=$((conns - n)) i=$((i + 1))
  done
  for ((j = 0; j < i; j++)); do
    for _ in $(seq 300); do grep -q ready "$fifo_dir/out$j" 2>/dev/null && break; sleep 0.2; done
    grep -q ready "$fifo_dir/out$j" || { echo "scale.sh: holder $j never got ready" >&2; exit 1; }
  done
  ip netns exec "$ns" "$hold" -w -n "$tw" -p 29999 -d 120 >/dev/null
  total=$(ip netns exec "$ns" ss -tanH | wc -l)
  # ss -tan's own CPU for the same table (user + sys of the child), 3 runs, the least.
  best=
  for _ in 1 2 3; do
    c=$( { TIMEFORMAT='%U %S'; time ip netns exec "$ns" ss -tan >/dev/null; } 2>&1 | awk '{printf "%.0f", ($1 + $2) * 1000}')
    [ -z "$best" ] || [ "$c" -lt "$best" ] && best=$c
  done
  # Each agent in turn on the same held table (SCALE_AGENTS: side by side).
  for a in $agents; do
    "$a" run --netns "/run/netns/$ns" --listen off -q --reconcile-interval "$reconcile" 2>/dev/null &
    apid=$!
    sleep 8  # attach and the first census
    t0=$(ticks "$apid")
    sleep "$window"
    t1=$(ticks "$apid")
    hwm=$(awk '/VmHWM/ {print $2}' "/proc/$apid/status")
    kill -INT "$apid"
    wait "$apid" 2>/dev/null || true
    apid=
    awk -v c="$count" -v tw="$tw" -v d="$((t1 - t0))" -v hz="$hz" -v w="$window" -v hwm="$hwm" -v ss="$best" -v tot="$total" -v a="$a" 'BEGIN {
      cpu = d / hz / w * 100
      printf "%10d %10d %12.2f %10.1f %14.0f %14d %16.0f  %s\n", c, tw, cpu, hwm / 1024, d / hz / w * 1e6, ss, ss * 1e6 / tot, a
    }'
    last_cpu=$(awk -v d="$((t1 - t0))" -v hz="$hz" -v w="$window" 'BEGIN { print d / hz / w * 100 }')
  done
  last_total=$((count + tw))
  for ((j = 0; j < i; j++)); do eval "exec {fd$j}>&-"; done
  rm -rf "$fifo_dir"
  cleanup
done
awk -v cpu="$last_cpu" -v tot="$last_total" 'BEGIN {
  printf "at 2,000,000 sockets (linear from %d): about %.1f %% of a core; goal: <= 2 %% at 100,000 + 20,000 TIME_WAIT, peak RSS <= 64 MiB\n", tot, cpu * 2e6 / tot
}'
