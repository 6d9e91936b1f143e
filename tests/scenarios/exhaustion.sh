#!/bin/sh
# A client in its own network namespace connecting to one upstream in a loop
# and closing first (so each port sits 60 s in TIME_WAIT), with a narrow
# ephemeral range, until connect() fails with EADDRNOTAVAIL. Bounded in
# count and time. Used to make tests/fixtures/exhaustion.csrec and by hand:
#
#   tests/scenarios/exhaustion.sh [-r RATE] [-p PORTS] [-w TW_REUSE] [-t TIMESTAMPS] [-- COMMAND...]
#
# COMMAND runs (in the root namespace) while the client loops, with
# CS_CLIENT_NETNS=/run/netns/<client ns> in its environment; it is stopped with
# SIGTERM when the client is done. Needs root, ip, python3.
set -eu
RATE=25; PORTS=100; REUSE=0; TS=1; EXTRA_AFTER=2
while getopts r:p:w:t: o; do
  case $o in
    r) RATE=$OPTARG ;; p) PORTS=$OPTARG ;; w) REUSE=$OPTARG ;; t) TS=$OPTARG ;;
    *) echo "usage: $0 [-r RATE] [-p PORTS] [-w TW_REUSE] [-t TIMESTAMPS] [-- COMMAND...]" >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
[ "${1:-}" = "--" ] && shift
[ "$(id -u)" = 0 ] || { echo "$0: needs root (network namespaces)" >&2; exit 1; }

tag=csx$$
C=$tag-c S=$tag-s
cleanup() {
  [ -n "${cmd_pid:-}" ] && kill -TERM "$cmd_pid" 2>/dev/null && wait "$cmd_pid" 2>/dev/null || true
  [ -n "${srv_pid:-}" ] && kill "$srv_pid" 2>/dev/null || true
  ip netns del "$C" 2>/dev/null || true
  ip netns del "$S" 2>/dev/null || true
}
trap cleanup EXIT INT TERM
ip netns add "$C"; ip netns add "$S"
ip link add "$tag-a" netns "$C" type veth peer name "$tag-b" netns "$S"
ip -n "$C" addr add 10.243.0.1/24 dev "$tag-a"; ip -n "$S" addr add 10.243.0.2/24 dev "$tag-b"
for n in "$C" "$S"; do ip -n "$n" link set lo up; done
ip -n "$C" link set "$tag-a" up; ip -n "$S" link set "$tag-b" up
lo=40000; hi=$((lo + PORTS - 1))
ip netns exec "$C" sh -c "echo '$lo $hi' > /proc/sys/net/ipv4/ip_local_port_range; echo $REUSE > /proc/sys/net/ipv4/tcp_tw_reuse; echo $TS > /proc/sys/net/ipv4/tcp_timestamps"

ip netns exec "$S" python3 -c '
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("10.243.0.2", 8080)); s.listen(512)
while True:
    c, _ = s.accept()
    c.recv(1); c.close()   # the client closes first: TIME_WAIT stays on its side
' & srv_pid=$!
sleep 0.5

if [ $# -gt 0 ]; then
  CS_CLIENT_NETNS=/run/netns/$C "$@" & cmd_pid=$!
  sleep "${CS_SCENARIO_WARMUP:-3}"
fi

# The client: RATE connections per second until EADDRNOTAVAIL, then a few
# more attempts; at most 3 * PORTS attempts and 60 s.
ip netns exec "$C" python3 -c '
import errno, socket, sys, time
rate, ports, extra = float(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
t0 = time.time(); n = 0; first_fail = None; fails = 0
while n < 3 * ports and time.time() - t0 < 60:
    n += 1
    s = socket.socket()
    try:
        s.connect(("10.243.0.2", 8080))
        s.close()
    except OSError as e:
        s.close()
        if e.errno != errno.EADDRNOTAVAIL: raise
        fails += 1
        if first_fail is None:
            first_fail = time.time()
            print("first EADDRNOTAVAIL after %d connects at %.3f" % (n - 1, first_fail), flush=True)
        if fails > extra: break
    time.sleep(max(0, t0 + n / rate - time.time()))
print("client done: %d attempts, %d EADDRNOTAVAIL" % (n, fails), flush=True)
' "$RATE" "$PORTS" "$EXTRA_AFTER"
sleep "${CS_SCENARIO_COOLDOWN:-2}"
