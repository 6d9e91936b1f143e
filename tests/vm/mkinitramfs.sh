#!/usr/bin/env bash
# Build the connscope test initramfs (cpio newc, gzip) for one unpacked Debian kernel.
#
#   tests/vm/mkinitramfs.sh OUT.cpio.gz KERNEL_ROOT KVER CONF AGENT ITEST [MODULE...]
#
# KERNEL_ROOT is a `dpkg-deb -x` tree of linux-image-KVER (with modules.dep from
# `depmod -b`), CONF the shell fragment installed as /etc/connscope-vm.conf,
# AGENT/ITEST the binaries installed as /bin/connscope and /bin/connscope-itest.
# Contents: dash as /bin/sh, bash, static busybox + applet links, AGENT, ITEST,
# the host's ip, nft, tc, ss and nstat, every shared library they need (ldd),
# the MODULEs and their dependencies (modprobe --show-depends: modules.dep and
# softdeps), decompressed, listed in load order in /etc/connscope-vm/modules,
# and tests/vm/init.sh as /init.
set -euo pipefail

[[ $# -ge 6 ]] || { sed -n '2,13s/^# \{0,1\}//p' "$0" >&2; exit 2; }
out=$1 kroot=$2 kver=$3 conf=$4 agent=$5 itest=$6
shift 6
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export PATH=$PATH:/usr/sbin:/sbin

stage=$(mktemp -d "${TMPDIR:-/tmp}/connscope-initramfs.XXXXXX")
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,etc/connscope-vm,dev,proc,sys,run,tmp,root,var}
ln -s ../run "$stage/var/run"

# install_bin SRC DEST: copy an executable and (if dynamic) its libraries and loader.
install_bin() {
	install -D -m 0755 "$1" "$stage$2"
	if ldd "$1" 2>/dev/null | grep 'not found'; then
		echo "mkinitramfs: $1 needs libraries the host lacks" >&2
		exit 1
	fi
	local lib
	for lib in $(ldd "$1" 2>/dev/null | grep -oE '/[^ ]+' || true); do
		[[ -e $stage$lib ]] && continue
		mkdir -p "$stage$(dirname "$lib")"
		cp -L "$lib" "$stage$lib"
	done
}

# /bin/sh is dash, not busybox ash: busybox-static's ash runs its own applets
# (a limited `ip`, `tc`) in preference to the real tools on PATH.
install_bin /bin/dash /bin/sh
install_bin /bin/bash /bin/bash
install_bin "$agent" /bin/connscope
install_bin "$itest" /bin/connscope-itest
for tool in /usr/sbin/ip /usr/sbin/nft /usr/sbin/tc /usr/bin/ss /usr/bin/nstat; do
	install_bin "$tool" "$tool"
done
install_bin /bin/busybox /bin/busybox
for applet in $(/bin/busybox --list); do
	[[ -e $stage/bin/$applet || -e $stage/usr/bin/$applet || -e $stage/usr/sbin/$applet ]] ||
		ln -s busybox "$stage/bin/$applet"
done

for f in /etc/protocols /etc/services /etc/iproute2; do
	if [[ -e $f ]]; then cp -r "$f" "$stage/etc/"; fi
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$stage/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$stage/etc/group"
printf '127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n' >"$stage/etc/hosts"
printf 'passwd: files\ngroup: files\nhosts: files\nservices: files\nprotocols: files\n' >"$stage/etc/nsswitch.conf"
cp "$conf" "$stage/etc/connscope-vm.conf"
install -m 0755 "$here/init.sh" "$stage/init"

# Modules, dependencies first; busybox insmod cannot read compressed modules.
: >"$stage/etc/connscope-vm/modules"
mods=$(modprobe -d "$kroot" -S "$kver" -a --show-depends "$@") ||
	{ echo "mkinitramfs: cannot resolve modules for $kver: $*" >&2; exit 1; }
mods=$(awk '$1 == "insmod" && !seen[$2]++ { print $2 }' <<<"$mods")
for ko in $mods; do
	rel=${ko#"$kroot"}
	dst=${rel%.xz}
	dst=${dst%.zst}
	mkdir -p "$stage$(dirname "$dst")"
	case $ko in
	*.xz) xz -dc "$ko" >"$stage$dst" ;;
	*.zst) zstd -qdc "$ko" >"$stage$dst" ;;
	*) cp "$ko" "$stage$dst" ;;
	esac
	echo "$dst" >>"$stage/etc/connscope-vm/modules"
done

(cd "$stage" && find . -mindepth 1 -print0 | LC_ALL=C sort -z |
	cpio --null --create --format=newc --owner=0:0 --quiet) | gzip -1 >"$out.tmp"
mv "$out.tmp" "$out"
