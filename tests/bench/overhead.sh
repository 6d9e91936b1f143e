#!/bin/sh
# The agent's cost on the connections it watches, measured side by side in
# one run: a loopback connect/accept/close loop in a fresh network namespace,
# first without the agent, then with `connscope run` watching that namespace,
# then with libbpf-tools' tcpconnlat (the reference tool) where this kernel
# lets it run. Reports connections/s for each and the ratios, plus the
# agent's CPU time per connection and peak memory. Bounded: N connections
# per round (default 20000), each round at most 120 s. Needs root.
#
#   tests/bench/overhead.sh [BUILD_DIR] [N]
set -eu
build=${1:-build}; n=${2:-20000}
agent=$build/connscope
[ "$(id -u)" = 0 ] || { echo "overhead.sh: needs root (BPF, network namespaces): sudo make bench" >&2; exit 1; }
[ -x "$agent" ] || { echo "overhead.sh: $agent missing: make first" >&2; exit 1; }
ns=csbench$$
cleanup() { [ -n "${apid:-}" ] && kill -INT "$apid" 2>/dev/null; wait 2>/dev/null || true; ip netns del "$ns" 2>/dev/null || true; }
trap cleanup EXIT INT TERM
ip netns add "$ns"; ip -n "$ns" link set lo up
ip netns exec "$ns" sh -c 'echo "1024 65535" > /proc/sys/net/ipv4/ip_local_port_range; echo 1 > /proc/sys/net/ipv4/tcp_tw_reuse'

loop() {  # prints connections per second
  ip netns exec "$ns" timeout 120 python3 -c '
import socket, struct, sys, threading, time
n = int(sys.argv[1])
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(4096)
port = srv.getsockname()[1]
def serve():
    while True:
        c, _ = srv.accept(); c.close()
threading.Thread(target=serve, daemon=True).start()
linger = struct.pack("ii", 1, 0)
t0 = time.perf_counter()
for _ in range(n):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)  # RST: no TIME_WAIT pile-up
    s.connect(("127.0.0.1", port)); s.close()
print("%.0f" % (n / (time.perf_counter() - t0)))
' "$n"
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

base=$(loop)
"$agent" run --netns "/run/netns/$ns" --listen off -q 2>/tmp/csbench-agent.$$ & apid=$!
sleep 2
t0=$(cpu_ticks "$apid")
with=$(loop)
t1=$(cpu_ticks "$apid")
hwm=$(awk '/VmHWM/ {print $2}' "/proc/$apid/status")
kill -INT "$apid"; wait "$apid" || true; apid=
ref="n/a"
if command -v tcpconnlat >/dev/null 2>&1; then
  tcpconnlat >/dev/null 2>&1 & rpid=$!
  sleep 2
  if kill -0 "$rpid" 2>/dev/null; then ref=$(loop); fi
  kill -INT "$rpid" 2>/dev/null || true; wait "$rpid" 2>/dev/null || true
  [ "$ref" = "n/a" ] && ref="n/a (tcpconnlat cannot attach on this kernel: it needs kprobes or fentry)"
fi
hz=$(getconf CLK_TCK)
awk -v b="$base" -v w="$with" -v r="$ref" -v t="$((t1 - t0))" -v hz="$hz" -v n="$n" -v hwm="$hwm" 'BEGIN {
  printf "connections/s without agent:  %d\n", b
  printf "connections/s with connscope: %d  (ratio %.3f)\n", w, w / b
  if (r ~ /^[0-9]+$/) printf "connections/s with tcpconnlat: %d  (ratio %.3f)\n", r, r / b
  else printf "connections/s with tcpconnlat: %s\n", r
  printf "agent CPU: %.1f us per connection (user+sys over the loop)\n", t / hz / n * 1e6
  printf "agent peak RSS: %.1f MiB\n", hwm / 1024
}'
