#!/bin/sh
# shellcheck shell=dash
# /init of the connscope test VM (PID 1; /bin/sh is dash, tools are busybox).
# Built into the initramfs by tests/vm/mkinitramfs.sh; settings come from
# /etc/connscope-vm.conf (written by tests/vm/run.sh).  Prints the marker lines
# that run.sh parses:
#   CONNSCOPE-VM-BOOT   kernel=<uname -r> uptime=<s> btf=.. kprobe=.. lockdown=..
#   CONNSCOPE-VM-PROBE  kernel=<uname -r> rc=<exit code of `connscope probe`>
#   CONNSCOPE-VM-RESULT kernel=<uname -r> strategy=<s> rc=<exit code>
#   CONNSCOPE-VM-DONE   kernel=<uname -r>
# then powers the machine off.

export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM=linux

# The initramfs has no /dev/console node: mount devtmpfs, then reattach stdio.
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1

VM_STRATEGIES="preferred second fallback auto"
VM_CMD=""
VM_STEP_TIMEOUT=0
VM_SHELL=0
# shellcheck source=/dev/null
. /etc/connscope-vm.conf

mnt() { # mnt TYPE DIR [OPTIONS]
	mkdir -p "$2"
	mount -t "$1" ${3:+-o "$3"} "$1" "$2" || echo "connscope-vm: cannot mount $1 on $2"
}
mnt proc /proc
mnt sysfs /sys
mnt devpts /dev/pts
mnt tmpfs /dev/shm mode=1777
mnt tmpfs /run mode=0755
mnt tmpfs /tmp mode=1777
mnt securityfs /sys/kernel/security
mnt tracefs /sys/kernel/tracing
mnt debugfs /sys/kernel/debug
mnt cgroup2 /sys/fs/cgroup
mnt bpf /sys/fs/bpf
# `ip netns add` bind-mounts namespaces under /run/netns (/var/run -> /run).
mount --make-shared /run
ln -sf /proc/self/fd /dev/fd
ln -sf /proc/self/fd/0 /dev/stdin
ln -sf /proc/self/fd/1 /dev/stdout
ln -sf /proc/self/fd/2 /dev/stderr

hostname connscope-vm
ip link set lo up
ulimit -n 65536
ulimit -l unlimited

while read -r ko; do
	insmod "$ko" || echo "connscope-vm: insmod $ko failed"
done </etc/connscope-vm/modules

kver=$(uname -r)
yesno() { if [ -e "$1" ]; then echo yes; else echo no; fi; }
lockdown=$(sed -n 's/.*\[\(.*\)\].*/\1/p' /sys/kernel/security/lockdown 2>/dev/null)
echo
echo "CONNSCOPE-VM-BOOT kernel=$kver uptime=$(cut -d' ' -f1 /proc/uptime)" \
	"btf=$(yesno /sys/kernel/btf/vmlinux)" \
	"kprobe=$(yesno /sys/bus/event_source/devices/kprobe)" \
	"kprobe_events=$(yesno /sys/kernel/tracing/kprobe_events)" \
	"lockdown=${lockdown:-none}" \
	"modules=$(wc -l </proc/modules)"

cd /tmp || exit 1
echo "=== connscope probe"
/bin/connscope probe
rc=$?
echo
echo "CONNSCOPE-VM-PROBE kernel=$kver rc=$rc"

# run_step STRATEGY: run the test command in its own session (process group),
# killed whole by the watchdog when it takes more than VM_STEP_TIMEOUT seconds.
# (/bin/sh by path: busybox's own exec would pick its ash applet for "sh".)
# The probe-layer tests run once per forced strategy; the `connscope run`
# tests ("run: *", the aggregation above the probes) once, with the
# strategies the agent picks itself (STRATEGY auto). "busy host: *" runs on
# the host only (it needs build/spread and real CPU).
run_step() {
	cmd=$VM_CMD
	if [ -z "$cmd" ]; then
		if [ "$1" = auto ]; then cmd='/bin/connscope-itest -tc="run: *"'; else cmd='/bin/connscope-itest -tce="run: *,busy host: *"'; fi
	fi
	CONNSCOPE_AGENT=/bin/connscope CONNSCOPE_STRATEGY=$1 \
		setsid /bin/sh -c "$cmd" </dev/null &
	pid=$!
	if [ "$VM_STEP_TIMEOUT" -gt 0 ]; then
		(
			sleep "$VM_STEP_TIMEOUT"
			echo "connscope-vm: strategy $1 timed out after ${VM_STEP_TIMEOUT}s"
			kill -KILL -"$pid"
		) &
	fi
	wait "$pid"
	rc=$?
	# Every strategy starts clean: end whatever the step left running (and the
	# watchdog).  kill(-1) from PID 1 spares init itself.
	kill -KILL -1 2>/dev/null
	wait
	return "$rc"
}

failed=0
for s in $VM_STRATEGIES; do
	echo "=== strategy $s (uptime $(cut -d' ' -f1 /proc/uptime))"
	run_step "$s"
	rc=$?
	[ "$rc" = 0 ] || failed=1
	echo
	echo "CONNSCOPE-VM-RESULT kernel=$kver strategy=$s rc=$rc"
done

if [ "$failed" != 0 ]; then
	echo "=== dmesg (last 60 lines)"
	dmesg | tail -n 60
fi
echo "CONNSCOPE-VM-DONE kernel=$kver uptime=$(cut -d' ' -f1 /proc/uptime)"

if [ "$VM_SHELL" = 1 ]; then
	echo "connscope-vm: debug shell; exit it to power off"
	setsid cttyhack bash -l
fi
sync
poweroff -f
echo o >/proc/sysrq-trigger
