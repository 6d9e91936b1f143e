#!/usr/bin/env bash
# connscope VM tests: boot Debian's 6.1 and 6.12 kernels under qemu (TCG, no KVM)
# with a busybox initramfs and run the integration driver once per attach strategy.
#
#   tests/vm/run.sh [BUILD_DIR]          (`make test-vm` runs `tests/vm/run.sh build`)
#
# Kernels come only from the Debian archive (apt-get download + dpkg-deb -x), cached
# in BUILD_DIR/vm/<package>/.  Each kernel boots once; /init (tests/vm/init.sh) runs
# `connscope probe`, then `connscope-itest` per strategy, printing marker lines.
# Every (kernel, strategy) must report rc=0 and the guest must reach DONE.
#
# Environment (all optional):
#   CONNSCOPE_VM_KERNELS      kernels to boot: "6.1 6.12" (default) or package names
#   CONNSCOPE_VM_PKG_6_1      package for 6.1  (default: newest linux-image-6.1.0-N-amd64-unsigned)
#   CONNSCOPE_VM_PKG_6_12     package for 6.12 (default: newest linux-image-6.12.N+deb12-amd64-unsigned)
#   CONNSCOPE_VM_STRATEGIES   default "preferred second fallback auto" (auto: the
#                             agent's own choice; runs the "run: *" tests, the
#                             forced tiers run the others)
#   CONNSCOPE_VM_AGENT        agent binary  (default BUILD_DIR/connscope)
#   CONNSCOPE_VM_ITEST        test driver   (default BUILD_DIR/connscope-itest)
#   CONNSCOPE_VM_CMD          guest command run per strategy instead of /bin/connscope-itest
#                             (sh -c; CONNSCOPE_AGENT and CONNSCOPE_STRATEGY are set)
#   CONNSCOPE_VM_MODULES      kernel modules to load (dependencies are added)
#   CONNSCOPE_VM_TIMEOUT      wall-clock seconds per kernel boot (default 900)
#   CONNSCOPE_VM_STEP_TIMEOUT guest seconds per strategy, 0 = none (default 240)
#   CONNSCOPE_VM_APPEND       extra kernel command line
#   CONNSCOPE_ITEST_*         passed on to the guest (e.g. CONNSCOPE_ITEST_TIMEOUT_SCALE=2)
#   CONNSCOPE_VM_VERBOSE=1    stream the whole guest console, not just marker lines
#   CONNSCOPE_VM_SHELL=1      interactive: console on this terminal, a shell after the
#                             tests, no timeout, no verdict (debugging one kernel)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build=$(realpath -m "${1:-build}")
vmdir=$build/vm
agent=${CONNSCOPE_VM_AGENT:-$build/connscope}
itest=${CONNSCOPE_VM_ITEST:-$build/connscope-itest}
kernels=${CONNSCOPE_VM_KERNELS:-6.1 6.12}
strategies=${CONNSCOPE_VM_STRATEGIES:-preferred second fallback auto}
modules=${CONNSCOPE_VM_MODULES:-veth nf_tables nft_reject_inet nft_numgen nft_limit nft_ct sch_netem tcp_diag udp_diag}
vm_timeout=${CONNSCOPE_VM_TIMEOUT:-900}
step_timeout=${CONNSCOPE_VM_STEP_TIMEOUT:-240}
shell=${CONNSCOPE_VM_SHELL:-0}
export PATH=$PATH:/usr/sbin:/sbin

die() { echo "test-vm: $*" >&2; exit 1; }
log() { echo "test-vm: $*"; }

for tool in qemu-system-x86_64 apt-get apt-cache dpkg-deb cpio gzip xz modprobe depmod timeout flock; do
	command -v "$tool" >/dev/null || die "$tool not found (run 'make deps')"
done
if [[ ! -x /bin/busybox ]] || ldd /bin/busybox >/dev/null 2>&1; then
	die "/bin/busybox must be the static one (busybox-static)"
fi
for f in "$agent" "$itest"; do [[ -x $f ]] || die "$f is missing (build it first: make)"; done
mkdir -p "$vmdir"
# One run at a time per build dir: runs share the cache, initramfs and console
# logs, and two TCG guests on a small machine would slow each other into timeouts.
exec 9>"$vmdir/.lock"
if ! flock -n 9; then
	log "waiting for another test-vm run to finish (lock $vmdir/.lock)"
	flock 9
fi

# series_re SERIES: the package names of one kernel series.
series_re() {
	case $1 in
	6.1) echo '^linux-image-6\.1\.0-[0-9]+-amd64-unsigned$' ;;
	6.12) echo '^linux-image-6\.12\.[0-9]+\+deb12-amd64-unsigned$' ;;
	*) die "unknown kernel '$1' (use 6.1, 6.12 or a linux-image-* package name)" ;;
	esac
}

# kernel_pkg SERIES|PACKAGE: the Debian package to boot for one CONNSCOPE_VM_KERNELS entry:
# the override, else the newest package of the series that apt can download.
kernel_pkg() {
	local re override pkgs p cand
	case $1 in
	linux-image-*) echo "$1"; return ;;
	6.1) override=${CONNSCOPE_VM_PKG_6_1:-} ;;
	6.12) override=${CONNSCOPE_VM_PKG_6_12:-} ;;
	esac
	[[ -n ${override:-} ]] && { echo "$override"; return; }
	re=$(series_re "$1") || return 1
	pkgs=$(apt-cache search --names-only "$re" | awk '{ print $1 }' | sort -rV)
	if [[ -z $pkgs && $(id -u) == 0 ]]; then
		apt-get update -qq >&2
		pkgs=$(apt-cache search --names-only "$re" | awk '{ print $1 }' | sort -rV)
	fi
	for p in $pkgs; do
		cand=$(apt-cache policy "$p" | awk '/Candidate:/ { print $2 }')
		[[ -n $cand && $cand != "(none)" ]] && { echo "$p"; return; }
	done
	# No apt lists (non-root, never updated): fall back to the newest cached kernel.
	p=$(cached "$re" | head -n1)
	[[ -n $p ]] || die "no package matches $re (apt-get update?)"
	echo "$p"
}

# cached REGEX: unpacked kernels in the cache whose package matches, newest first.
cached() {
	find "$vmdir" -mindepth 1 -maxdepth 1 -type d -printf '%f\n' | grep -E "$1" | sort -rV || true
}

# fetch_kernel PACKAGE: unpack it into $vmdir/PACKAGE (once) and generate modules.dep.
fetch_kernel() {
	local dir=$vmdir/$1 tmp kver
	[[ -f $dir/.complete ]] && return
	log "downloading $1 from the Debian archive"
	tmp=$(mktemp -d "$vmdir/download.XXXXXX")
	chmod 755 "$tmp"
	if ! (cd "$tmp" && apt-get download -q=2 "$1"); then
		# Stale package lists name a .deb the archive no longer has: refresh once.
		[[ $(id -u) == 0 ]] || die "apt-get download $1 failed (run 'apt-get update' as root)"
		apt-get update -qq
		(cd "$tmp" && apt-get download -q=2 "$1") || die "apt-get download $1 failed"
	fi
	rm -rf "$dir"
	dpkg-deb -x "$tmp"/*.deb "$dir"
	rm -rf "$tmp"
	kver=$(ls "$dir/lib/modules")
	depmod -b "$dir" "$kver"
	touch "$dir/.complete"
}

q() { printf "'%s'" "${1//\'/\'\\\'\'}"; } # quote for the guest's sh

rows=()   # summary table lines
failed=0

# boot PACKAGE: boot one kernel and judge its marker lines.
boot() {
	local pkg=$1 dir=$vmdir/$1 kver vmlinuz initrd conf logf start secs rc s v line boot_up
	fetch_kernel "$pkg"
	kver=$(ls "$dir/lib/modules")
	vmlinuz=$dir/boot/vmlinuz-$kver
	initrd=$vmdir/initrd-$kver.cpio.gz
	conf=$vmdir/connscope-vm-$kver.conf
	logf=$vmdir/console-$kver.log
	{
		echo "VM_STRATEGIES=$(q "$strategies")"
		echo "VM_CMD=$(q "${CONNSCOPE_VM_CMD:-}")"
		echo "VM_STEP_TIMEOUT=$(q "$step_timeout")"
		echo "VM_SHELL=$(q "$shell")"
		for v in $(compgen -e | grep -E '^CONNSCOPE_ITEST_' || true); do
			echo "export $v=$(q "${!v}")"
		done
	} >"$conf"
	# shellcheck disable=SC2086 # $modules is a word list
	"$here/mkinitramfs.sh" "$initrd" "$dir" "$kver" "$conf" "$agent" "$itest" $modules
	local -a qemu=(qemu-system-x86_64 -machine q35 -accel tcg,thread=single -cpu max -smp 2 -m 2048
		-nographic -no-reboot -nic none -kernel "$vmlinuz" -initrd "$initrd"
		-append "console=ttyS0 panic=-1 quiet ${CONNSCOPE_VM_APPEND:-}")

	if [[ $shell == 1 ]]; then
		log "booting $kver interactively (quit qemu: Ctrl-a x)"
		"${qemu[@]}"
		return
	fi
	log "booting $kver ($(du -h "$initrd" | cut -f1) initramfs, timeout ${vm_timeout}s, console log $logf)"
	start=$SECONDS
	{
		rc=0
		timeout --kill-after=10 "$vm_timeout" "${qemu[@]}" </dev/null 2>&1 || rc=$?
		echo "$rc" >"$logf.rc"
	} | sed -u 's/\r//g; s/\x1b\[[0-9;?]*[A-Za-z]//g; s/\x1bc//g' | tee "$logf" |
		if [[ ${CONNSCOPE_VM_VERBOSE:-0} == 1 ]]; then sed -u "s/^/[$kver] /"; else
			grep --line-buffered -oE 'CONNSCOPE-VM-[A-Z]+ .*' | sed -u "s/^/[$kver] /"; fi || true
	rc=$(cat "$logf.rc")
	secs=$((SECONDS - start))
	boot_up=$(grep -oE 'CONNSCOPE-VM-BOOT .*' "$logf" | grep -oE 'uptime=[0-9.]+' | head -n1 | cut -d= -f2 || true)

	local ok=1 result done=yes how="qemu rc=$rc"
	[[ $rc == 124 || $rc == 137 ]] && how="TIMEOUT after ${vm_timeout}s"
	grep -q 'CONNSCOPE-VM-DONE' "$logf" || { done=no; ok=0; }
	for s in $strategies; do
		line=$(grep -oE "CONNSCOPE-VM-RESULT kernel=[^ ]+ strategy=$s rc=[0-9]+" "$logf" | tail -n1 || true)
		if [[ -z $line ]]; then result="FAIL (no result)"; ok=0
		elif [[ ${line##*rc=} == 0 ]]; then result="pass"
		else result="FAIL (rc=${line##*rc=})"; ok=0; fi
		rows+=("$(printf '%-24s %-10s %s' "$kver" "$s" "$result")")
	done
	rows+=("$(printf '%-24s %-10s %s' "$kver" "(vm)" "${secs}s wall, /init at ${boot_up:-?}s, DONE: $done, $how")")
	if [[ $ok == 1 ]]; then
		log "$kver: ok in ${secs}s (/init at ${boot_up:-?}s guest uptime)"
	else
		failed=1
		log "$kver: FAILED ($how, DONE: $done, ${secs}s); last 300 lines of the guest console:"
		tail -n 300 "$logf" | sed 's/^/  | /'
		log "$kver: FAILED; full guest console: $logf"
	fi
}

for k in $kernels; do
	[[ $k == linux-image-* ]] || series_re "$k" >/dev/null
	pkg=$(kernel_pkg "$k") || exit 1
	boot "$pkg"
	# Keep one unpacked kernel per series: drop the ones a newer package replaced.
	if [[ $k == 6.* ]]; then
		for old in $(cached "$(series_re "$k")"); do
			[[ $old == "$pkg" ]] || { log "removing superseded $old"; rm -rf "${vmdir:?}/$old"; }
		done
	fi
done
[[ $shell == 1 ]] && exit 0

echo
echo "test-vm summary"
printf '  %-24s %-10s %s\n' kernel strategy result
printf '  %s\n' "${rows[@]}"
if [[ $failed == 0 ]]; then log "all passed"; else log "FAILED"; fi
exit "$failed"
