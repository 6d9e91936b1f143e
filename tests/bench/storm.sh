#!/bin/sh
# The agent's throughput cost under a saturating connect storm, the way a
# gateway loads a machine: build/storm (tests/bench/storm.c, N connecting
# and M accepting threads, closed loop) runs in a fresh network namespace
# with nothing attached, under `connscope run` (HTTP off, and with its HTTP
# on a free loopback port), under a two-probe bpftrace script, and under
# libbpf-tools' tcpstates and tcplife. Rounds are interleaved: each round
# runs every configuration once, in an order rotated per round, for each
# close variant (server closes first: TIME_WAIT on the server; client closes
# first: TIME_WAIT on the client, ports recycled with tcp_tw_reuse=1 over a
# wide ip_local_port_range). Each tool starts fresh before its storm, must be
# alive with BPF links or perf events open (else "n/a: <what it said>"), and
# stops after. Reports medians over the rounds with min..max as the machine's
# noise, each figure beside its goal: conns/s and the ratio to the baseline,
# the agent's user and system CPU per connection (/proc/PID/stat), its on-CPU
# time (/proc/PID/task/*/schedstat), peak RSS (VmHWM) and lost ring-buffer
# records (the last --json-out snapshot's health.lost_total). Then one more
# storm per variant under connscope with kernel.bpf_stats_enabled=1 (only
# then: the statistics cost two clock reads per program run, which would
# count against the agent's throughput in the rounds) gives each program's
# ns per run, runs per connection and ns per connection from bpftool.
# Every wait is bounded; the namespace and the sysctl are restored on exit.
# Needs root.
#
#   tests/bench/storm.sh [BUILD_DIR]
#   environment: STORM_ROUNDS (5), STORM_SECONDS (2, per storm), STORM_CLIENTS (2),
#   STORM_ACCEPTORS (2), STORM_CLOSE ("server client"),
#   STORM_CONFIGS ("baseline connscope connscope-http bpftrace tcpstates tcplife"),
#   STORM_SETTLE (0.5: seconds after a tool has attached before its storm)
set -eu
build=${1:-build}
rounds=${STORM_ROUNDS:-5}; seconds=${STORM_SECONDS:-2}
clients=${STORM_CLIENTS:-2}; acceptors=${STORM_ACCEPTORS:-2}
variants=${STORM_CLOSE:-server client}
configs=${STORM_CONFIGS:-baseline connscope connscope-http bpftrace tcpstates tcplife}
settle=${STORM_SETTLE:-0.5}
agent=$build/connscope; storm=$build/storm

[ "$(id -u)" = 0 ] || { echo "storm.sh: needs root (BPF, network namespaces): sudo make bench" >&2; exit 1; }
for b in "$agent" "$storm"; do [ -x "$b" ] || { echo "storm.sh: $b missing: make bench builds it" >&2; exit 1; }; done
case $rounds in '' | *[!0-9]*) echo "storm.sh: STORM_ROUNDS must be a count" >&2; exit 2 ;; esac
if [ "$rounds" -lt 1 ] || [ "$rounds" -gt 50 ]; then echo "storm.sh: STORM_ROUNDS must be 1..50" >&2; exit 2; fi
awk -v s="$seconds" 'BEGIN { exit !(s + 0 > 0 && s + 0 <= 60) }' || { echo "storm.sh: STORM_SECONDS must be in (0, 60]" >&2; exit 2; }
case " $configs " in *" baseline "*) ;; *) echo "storm.sh: STORM_CONFIGS must include baseline" >&2; exit 2 ;; esac

tmp=$(mktemp -d /tmp/csstorm.XXXXXX)
ns=; tpid=; tool=; stats_old=
stop_tool() {  # SIGINT, at most 10 s, then SIGKILL
  kill -INT "$tpid" 2>/dev/null || true
  i=0; while kill -0 "$tpid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
  if kill -0 "$tpid" 2>/dev/null; then kill -KILL "$tpid" 2>/dev/null || true; echo "storm.sh: $tool (pid $tpid) ignored SIGINT for 10 s: killed" >&2; fi
  wait "$tpid" 2>/dev/null || true; tpid=
}
cleanup() {
  if [ -n "$tpid" ]; then stop_tool; fi
  if [ -n "$stats_old" ]; then sysctl -q -w kernel.bpf_stats_enabled="$stats_old" || true; fi
  if [ -n "$ns" ]; then ip netns del "$ns" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ns=csstorm$$
ip netns add "$ns"
ip -n "$ns" link set lo up
ip netns exec "$ns" sh -c 'echo "1024 65535" > /proc/sys/net/ipv4/ip_local_port_range && echo 1 > /proc/sys/net/ipv4/tcp_tw_reuse'
mountpoint -q /sys/kernel/tracing 2>/dev/null || mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null || true

# The bpftrace configuration: time spent in each TCP state as an in-kernel
# histogram (nothing is sent to user space per event), plus a retransmit count.
cat > "$tmp/states.bt" <<'EOF'
tracepoint:sock:inet_sock_set_state /args->protocol == 6/ {
  $sk = args->skaddr;
  if (@entered[$sk]) { @usecs_in_state[args->oldstate] = hist((nsecs - @entered[$sk]) / 1000); }
  if (args->newstate == 7) { delete(@entered[$sk]); } else { @entered[$sk] = nsecs; }
}
tracepoint:tcp:tcp_retransmit_skb { @retransmits = count(); }
END { clear(@entered); }
EOF

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
attached() {  # BPF links and perf events (tracepoint attachments) the process holds
  find "/proc/$1/fd" -maxdepth 1 \( -lname 'anon_inode:bpf_link' -o -lname 'anon_inode:\[perf_event\]' \) 2>/dev/null | wc -l
}
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12, $13 }'; }  # utime stime
on_cpu_ns() { cat "/proc/$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%.0f\n", s }'; }
peak_kb() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"; }

# Starts CONFIG's tool in $tpid and waits (at most 15 s) until it is alive
# and its attachments stop growing, plus $settle. Returns 1 with the reason
# in $tmp/why if it exits or never attaches.
start_tool() {
  : > "$tmp/tool.err"; : > "$tmp/tool.out"; rm -f "$tmp/agent.jsonl"
  ready=
  case $1 in
    connscope | connscope-http)
      listen=off; [ "$1" = connscope-http ] && listen=127.0.0.1:$(free_port)
      "$agent" run --netns "/run/netns/$ns" --listen "$listen" -q --json-out "$tmp/agent.jsonl" \
        >"$tmp/tool.out" 2>"$tmp/tool.err" &
      ready='programs attached' ;;
    bpftrace) bpftrace "$tmp/states.bt" >"$tmp/tool.out" 2>"$tmp/tool.err" & ready='Attaching' ;;
    tcpstates | tcplife) "$1" >/dev/null 2>"$tmp/tool.err" & ;;
  esac
  tpid=$!; tool=$1
  prev=0; i=0
  while [ $i -lt 150 ]; do
    if ! kill -0 "$tpid" 2>/dev/null; then
      rc=0; wait "$tpid" || rc=$?; tpid=
      why=$(grep -h -v -e '^[[:space:]]*$' -e 'RLIMIT_MEMLOCK' "$tmp/tool.err" "$tmp/tool.out" 2>/dev/null | tail -1 | cut -c1-160)
      echo "exited with status $rc after start: ${why:-no message}" > "$tmp/why"; return 1
    fi
    n=$(attached "$tpid")
    if [ "$n" -gt 0 ] && [ "$n" = "$prev" ] && { [ -z "$ready" ] || grep -q "$ready" "$tmp/tool.err" "$tmp/tool.out"; }; then
      sleep "$settle"; return 0
    fi
    prev=$n; sleep 0.1; i=$((i + 1))
  done
  echo "alive but no BPF link or perf event after 15 s" > "$tmp/why"
  stop_tool; return 1
}

run_storm() {  # VARIANT [SECONDS]: the storm's summary line
  ip netns exec "$ns" "$storm" -c "$1" -t "$clients" -a "$acceptors" -d "${2:-$seconds}" ||
    { echo "storm.sh: $storm -c $1 failed" >&2; exit 1; }
}
kv() { printf '%s\n' "$2" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
lost_total() {  # records lost, from the last snapshot's health section
  python3 -c '
import json, sys
last = None
for line in open(sys.argv[1]):
    if line.strip(): last = line
h = json.loads(last).get("health", {}) if last else None
print(sum(h.get("lost_total", {}).values()) if h is not None else "?")
' "$tmp/agent.jsonl" 2>/dev/null || echo "?"
}

# One result line per (variant, config, round):
#   variant config round conns_per_s conns errors errnos utime stime on_cpu_ns peak_kb lost
one() {  # VARIANT CONFIG ROUND
  if [ -f "$tmp/na.$2" ]; then return 0; fi
  if [ "$2" = baseline ]; then
    line=$(run_storm "$1")
    echo "$1 $2 $3 $(kv conns_per_s "$line") $(kv conns "$line") $(kv errors "$line") $(kv errnos "$line") - - - - -" >> "$tmp/results"
    return 0
  fi
  if ! start_tool "$2"; then cp "$tmp/why" "$tmp/na.$2"; return 0; fi
  read -r u0 s0 <<EOF
$(cpu_ticks "$tpid")
EOF
  c0=$(on_cpu_ns "$tpid")
  line=$(run_storm "$1")
  sleep 0.5  # what the tool still does for the storm's records counts too
  if ! kill -0 "$tpid" 2>/dev/null; then
    rc=0; wait "$tpid" || rc=$?; tpid=
    why=$(grep -h -v -e '^[[:space:]]*$' -e 'RLIMIT_MEMLOCK' "$tmp/tool.err" 2>/dev/null | tail -1 | cut -c1-160)
    echo "exited with status $rc during the storm (round $3, close=$1): ${why:-no message}" > "$tmp/na.$2"; return 0
  fi
  read -r u1 s1 <<EOF
$(cpu_ticks "$tpid")
EOF
  c1=$(on_cpu_ns "$tpid"); hwm=$(peak_kb "$tpid")
  stop_tool
  lost=-; case $2 in connscope*) lost=$(lost_total) ;; esac
  echo "$1 $2 $3 $(kv conns_per_s "$line") $(kv conns "$line") $(kv errors "$line") $(kv errnos "$line") $((u1 - u0)) $((s1 - s0)) $((c1 - c0)) $hwm $lost" >> "$tmp/results"
}

# Per-program cost: one storm under connscope with BPF statistics on.
bpf_stats() {  # VARIANT
  if [ -f "$tmp/na.connscope" ]; then echo "n/a: connscope did not attach" > "$tmp/bpf.$1"; return 0; fi
  stats_old=$(sysctl -n kernel.bpf_stats_enabled)
  sysctl -q -w kernel.bpf_stats_enabled=1
  if ! start_tool connscope; then sysctl -q -w kernel.bpf_stats_enabled="$stats_old"; stats_old=; echo "n/a: $(cat "$tmp/why")" > "$tmp/bpf.$1"; return 0; fi
  for f in "/proc/$tpid"/fdinfo/*; do sed -n 's/^prog_id:[[:space:]]*//p' "$f" 2>/dev/null; done | sort -un > "$tmp/ids"
  bpftool prog show -j > "$tmp/before.json"
  line=$(run_storm "$1")
  bpftool prog show -j > "$tmp/after.json"
  stop_tool
  sysctl -q -w kernel.bpf_stats_enabled="$stats_old"; stats_old=
  python3 - "$tmp/ids" "$tmp/before.json" "$tmp/after.json" "$(kv conns "$line")" > "$tmp/bpf.$1" <<'EOF'
import json, sys
ids = {int(x) for x in open(sys.argv[1]).read().split()}
def load(path):
    return {p["id"]: p for p in json.load(open(path)) if p["id"] in ids}
before, after, conns = load(sys.argv[2]), load(sys.argv[3]), int(sys.argv[4])
rows, idle = [], []
for pid, p in after.items():
    b = before.get(pid, {})
    runs = p.get("run_cnt", 0) - b.get("run_cnt", 0)
    ns = p.get("run_time_ns", 0) - b.get("run_time_ns", 0)
    name = "%s (%s)" % (p.get("name", "?"), p.get("type", "?"))
    if runs > 0: rows.append((ns / conns, name, ns / runs, runs / conns))
    else: idle.append(p.get("name", "?"))
if not rows:
    print("n/a: no run_cnt/run_time_ns from bpftool (kernel.bpf_stats_enabled had no effect?)"); sys.exit()
print("%-44s %8s %10s %9s  %s" % ("program", "ns/run", "runs/conn", "ns/conn", "goal ns/run <= 150"))
total = 0.0
for per_conn, name, per_run, runs in sorted(rows, reverse=True):
    total += per_conn
    print("%-44s %8.1f %10.2f %9.1f  %s" % (name, per_run, runs, per_conn, "ok" if per_run <= 150 else "MISS"))
print("%-44s %8s %10s %9.1f  goal sum <= 1500 ns/conn: %s" % ("sum per connection", "", "", total, "ok" if total <= 1500 else "MISS"))
if idle: print("loaded, not run during the storm: " + ", ".join(sorted(idle)))
print("(%d connections; runs include any other traffic on this host)" % conns)
EOF
}

echo "storm: $clients connecting + $acceptors accepting threads, ${seconds} s per storm, $rounds rounds, $(nproc) CPUs, kernel $(uname -r)"
for v in $variants; do run_storm "$v" 1 > /dev/null; done  # warm-up: TIME_WAIT and caches at their steady state
r=0
while [ $r -lt "$rounds" ]; do
  for v in $variants; do
    # shellcheck disable=SC2086  # the configuration list is split on purpose
    set -- $configs
    k=0; while [ $k -lt $((r % $#)) ]; do first=$1; shift; set -- "$@" "$first"; k=$((k + 1)); done
    for c in "$@"; do one "$v" "$c" "$r"; done
  done
  r=$((r + 1))
done
for v in $variants; do bpf_stats "$v"; done

# Column COL of the result lines for VARIANT CONFIG: "median min max count".
summary() {
  awk -v v="$1" -v c="$2" -v col="$3" '$1 == v && $2 == c && $col != "-" && $col != "?" { print $col }' "$tmp/results" |
    sort -g | awk '{ a[NR] = $1 } END { if (NR) printf "%s %s %s %d\n", (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2), a[1], a[NR], NR; else print "- - - 0" }'
}
# Per connection, per round: (ticks or ns) / conns, in microseconds.
per_conn() {  # VARIANT CONFIG COL SCALE_TO_US
  awk -v v="$1" -v c="$2" -v col="$3" -v s="$4" '$1 == v && $2 == c && $col != "-" && $5 > 0 { printf "%s %s %s %.4f\n", v, c, "x", $col * s / $5 }' "$tmp/results" > "$tmp/pc"
  awk '{ print $4 }' "$tmp/pc" | sort -g | awk '{ a[NR] = $1 } END { if (NR) printf "%.3f %.3f %.3f\n", (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2), a[1], a[NR]; else print "- - -" }'
}
verdict() { awk -v x="$1" -v op="$2" -v g="$3" 'BEGIN { if (x == "-" || x == "?") print "?"; else if (op == "ge") print (x + 0 >= g ? "ok" : "MISS"); else print (x + 0 <= g ? "ok" : "MISS") }'; }

tick_us=$(awk -v hz="$(getconf CLK_TCK)" 'BEGIN { print 1e6 / hz }')
for v in $variants; do
  case $v in server) what="server closes first: TIME_WAIT on the server" ;; *) what="client closes first: TIME_WAIT on the client, ports recycled" ;; esac
  echo
  echo "== close=$v ($what); medians of $rounds rounds, min..max beside"
  printf '%-15s %9s %18s %7s %15s %8s  %s\n' config conns/s min..max ratio round-ratios errors "goal ratio >= 0.95"
  read -r base _ <<EOF
$(summary "$v" baseline 4)
EOF
  for c in $configs; do
    if [ -f "$tmp/na.$c" ]; then printf '%-15s n/a: %s\n' "$c" "$(cat "$tmp/na.$c")"; continue; fi
    read -r med lo hi _ <<EOF
$(summary "$v" "$c" 4)
EOF
    errs=$(awk -v v="$v" -v c="$c" '$1 == v && $2 == c { s += $6 } END { print s + 0 }' "$tmp/results")
    errnos=$(awk -v v="$v" -v c="$c" '$1 == v && $2 == c && $7 != "-" { printf "%s%s", sep, $7; sep = "," }' "$tmp/results")
    rr=$(awk -v v="$v" -v c="$c" '$1 == v && $2 == "baseline" { b[$3] = $4 } $1 == v && $2 == c { x[$3] = $4 }
      END { lo = 1e9; hi = 0; for (r in x) if (b[r] > 0) { q = x[r] / b[r]; if (q < lo) lo = q; if (q > hi) hi = q }; if (hi > 0) printf "%.3f..%.3f", lo, hi; else print "-" }' "$tmp/results")
    ratio=$(awk -v a="$med" -v b="$base" 'BEGIN { printf "%.3f", a / b }')
    goal=; [ "$c" != baseline ] && goal=$(verdict "$ratio" ge 0.95)
    printf '%-15s %9.0f %8.0f..%-8.0f %7s %15s %8s  %s%s\n' "$c" "$med" "$lo" "$hi" "$ratio" "$rr" "$errs" "$goal" "${errnos:+  errnos: $errnos}"
  done
  echo "tools' own CPU per connection (user / system / on-CPU from schedstat, us; medians), peak RSS, lost records:"
  for c in $configs; do
    [ "$c" = baseline ] && continue
    [ -f "$tmp/na.$c" ] && continue
    read -r user ulo uhi <<EOF
$(per_conn "$v" "$c" 8 "$tick_us")
EOF
    read -r sys _ <<EOF
$(per_conn "$v" "$c" 9 "$tick_us")
EOF
    read -r oncpu olo ohi <<EOF
$(per_conn "$v" "$c" 10 0.001)
EOF
    read -r _ _ hwm _ <<EOF
$(summary "$v" "$c" 11)
EOF
    rss=$(awk -v k="$hwm" 'BEGIN { printf "%.1f", k / 1024 }')
    # /proc/PID/stat counts in clock ticks: one tick over a storm's connections
    # is the finest step of the user and sys figures.
    read -r conns _ <<EOF
$(summary "$v" "$c" 5)
EOF
    step=$(awk -v t="$tick_us" -v n="$conns" 'BEGIN { if (n > 0) printf "%.2f", t / n; else print "-" }')
    case $c in
      connscope*)
        lost=$(awk -v v="$v" -v c="$c" '$1 == v && $2 == c { if ($12 == "?") u = 1; else s += $12 } END { print u ? "?" : s + 0 }' "$tmp/results")
        printf '  %-13s user %s us/conn (%s..%s; goal <= 0.5: %s)  sys %s  (1 tick = %s)  on-CPU %s (%s..%s)  peak RSS %s MiB  lost %s over all rounds (goal 0: %s)\n' \
          "$c" "$user" "$ulo" "$uhi" "$(verdict "$user" le 0.5)" "$sys" "$step" "$oncpu" "$olo" "$ohi" "$rss" "$lost" "$(verdict "$lost" le 0)" ;;
      *)
        printf '  %-13s user %s us/conn (%s..%s)  sys %s  (1 tick = %s)  on-CPU %s (%s..%s)  peak RSS %s MiB\n' \
          "$c" "$user" "$ulo" "$uhi" "$sys" "$step" "$oncpu" "$olo" "$ohi" "$rss" ;;
    esac
  done
  echo "connscope BPF programs, one storm with kernel.bpf_stats_enabled=1:"
  sed 's/^/  /' "$tmp/bpf.$v"
done
