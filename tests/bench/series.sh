#!/bin/sh
# What the agent's exports cost as destinations grow: for 256, 1000 and
# 10000 distinct destinations (loopback addresses 127.1.x.y, one connection
# each, made by build/spread in a fresh network namespace), a fresh
# `connscope run` watching that namespace is scraped two intervals later.
# Reports the Prometheus series (non-comment lines), those with a dst label,
# the distinct dst values, the /metrics size in bytes and the agent's RSS
# and peak RSS, one row per count. Counts are deterministic, so one run per
# count. Every wait is bounded. Needs root.
#
#   tests/bench/series.sh [BUILD_DIR] [DESTINATIONS...]
set -eu
build=${1:-build}; [ $# -gt 0 ] && shift
sizes=${*:-256 1000 10000}
agent=$build/connscope; spread=$build/spread
[ "$(id -u)" = 0 ] || { echo "series.sh: needs root (BPF, network namespaces): sudo make bench" >&2; exit 1; }
for b in "$agent" "$spread"; do [ -x "$b" ] || { echo "series.sh: $b missing: make bench builds it" >&2; exit 1; }; done

# The bounds come from the agent's own help, so the table says what limits it.
help=$("$agent" run --help)
default_of() { printf '%s\n' "$help" | sed -n "/$1/,/(default/ s/.*(default \([0-9.]*\)).*/\1/p" | head -1; }
top=$(default_of "--top-destinations"); interval=$(default_of "-i,--interval")
if [ -z "$top" ] || [ -z "$interval" ]; then
  echo "series.sh: cannot read the --top-destinations/--interval defaults from 'connscope run --help'" >&2; exit 1
fi

tmp=$(mktemp -d /tmp/csseries.XXXXXX)
ns=; apid=; spid=
stop_agent() {  # SIGINT, at most 15 s; the exit status in $arc
  kill -INT "$apid" 2>/dev/null || true
  i=0; while kill -0 "$apid" 2>/dev/null && [ $i -lt 150 ]; do sleep 0.1; i=$((i + 1)); done
  if kill -0 "$apid" 2>/dev/null; then kill -KILL "$apid" 2>/dev/null || true; echo "series.sh: the agent ignored SIGINT for 15 s: killed" >&2; fi
  arc=0; wait "$apid" || arc=$?; apid=
}
cleanup() {
  if [ -n "$spid" ]; then kill "$spid" 2>/dev/null || true; wait "$spid" 2>/dev/null || true; fi
  if [ -n "$apid" ]; then stop_agent; fi
  if [ -n "$ns" ]; then ip netns del "$ns" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url=http://127.0.0.1:$port

# get PATH OUT: HTTP 200 within 10 s, body to OUT, or fail
get() {
  python3 - "$url$1" "$2" <<'EOF'
import sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=10) as r:
        open(sys.argv[2], "wb").write(r.read())
except Exception as e:
    sys.exit(f"{sys.argv[1]}: {e}")
EOF
}

# count FILE: series dst_series distinct_dst bytes other
count() {
  python3 - "$1" <<'EOF'
import re, sys
data = open(sys.argv[1], "rb").read()
series = [l for l in data.decode().splitlines() if l and not l.startswith("#")]
dst = re.compile(r'[{,]dst="((?:[^"\\]|\\.)*)"')
values = [m.group(1) for m in map(dst.search, series) if m]
print(len(series), len(values), len(set(values)), len(data), "yes" if "other" in values else "no")
EOF
}

echo "series.sh: --top-destinations default $top, --interval default $interval s (connscope run --help); one connection per destination"
printf '%12s %8s %11s %13s %14s %8s %8s %6s\n' destinations series dst_series distinct_dst metrics_bytes rss_mib hwm_mib other
for n in $sizes; do
  ns=csseries$$.$n
  ip netns add "$ns"; ip -n "$ns" link set lo up
  "$agent" run --netns "/run/netns/$ns" --listen "127.0.0.1:$port" -q 2>"$tmp/agent.err" & apid=$!
  i=0
  until get /healthz "$tmp/healthz" 2>/dev/null; do
    kill -0 "$apid" 2>/dev/null || { echo "series.sh: the agent exited before /healthz answered:" >&2; tail -5 "$tmp/agent.err" >&2; exit 1; }
    [ $i -lt 300 ] || { echo "series.sh: $url/healthz not ready after 30 s" >&2; exit 1; }
    sleep 0.1; i=$((i + 1))
  done
  ip netns exec "$ns" "$spread" -n "$n" -c 1 -d 60 -q & spid=$!
  wait "$spid" || { echo "series.sh: spread -n $n failed" >&2; exit 1; }
  spid=
  sleep "$(awk -v i="$interval" 'BEGIN { print 2 * i + 0.5 }')"
  get /metrics "$tmp/metrics"
  read -r series dsts distinct bytes other <<EOF
$(count "$tmp/metrics")
EOF
  [ "$dsts" -gt 0 ] || { echo "series.sh: /metrics has no dst series after $n destinations: the agent saw nothing" >&2; exit 1; }
  rss=$(awk '/^VmRSS/ {print $2}' "/proc/$apid/status"); hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$apid/status")
  stop_agent
  [ "$arc" = 0 ] || { echo "series.sh: the agent exited $arc after SIGINT:" >&2; tail -5 "$tmp/agent.err" >&2; exit 1; }
  ip netns del "$ns"; ns=
  awk -v n="$n" -v s="$series" -v d="$dsts" -v u="$distinct" -v b="$bytes" -v r="$rss" -v h="$hwm" -v o="$other" \
    'BEGIN { printf "%12d %8d %11d %13d %14d %8.1f %8.1f %6s\n", n, s, d, u, b, r / 1024, h / 1024, o }'
done
