#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The arm64 boot of selftests/run_vm.sh --flavour arm64, which writes the
# guest script, calls this, and judges the result: run that, not this.
#
#   selftests/run_vm_arm64.sh --out DIR --kernel IMAGE [--timeout S] [--cpus N]
#       [--memory SIZE] [--append ARG]... [--cwd DIR] [--file PATH]...
#
# Boots IMAGE under qemu-system-aarch64 (TCG: an arm64 guest on this x86
# host) from an initramfs, not virtme-ng's 9p root: with -cpu max every 9p
# access is slow under TCG, and the whole guest fits in ~25 MiB. The
# initramfs is the userspace `scripts/deps.sh arm64` packs once (busybox,
# bash, python3, capsh) followed by a per-run archive holding /init,
# DIR/body.sh, and each PATH (file or directory) at its own absolute path,
# so the host paths in body.sh hold in the guest too. /init mounts proc,
# sysfs, devtmpfs and debugfs, runs `bash DIR/body.sh`, prints the files
# body.sh left in DIR (dmesg, kmemleak) between markers, and powers off.
#
# Writes DIR/serial (the console), DIR/console (it without those
# sections: boot log and the guest's output) and DIR/dmesg, DIR/kmemleak
# (the sections, when the guest printed them), DIR/qemu.err. Shows the
# guest's output as it comes. Exit status: the guest's ("vm: guest done rc=N"), 124 or 137 on
# timeout, else QEMU's.
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/scripts/env.sh"
. "$here/selftests/lib/bounded.sh"

out='' kimg='' timeout=900 cpus=2 memory=1G cwd=/
kargs=() files=()
while [ $# -gt 0 ]; do
	case "$1" in
	--out) out=$2; shift 2 ;;
	--kernel) kimg=$2; shift 2 ;;
	--timeout) timeout=$2; shift 2 ;;
	--cpus) cpus=$2; shift 2 ;;
	--memory) memory=$2; shift 2 ;;
	--append) kargs+=("$2"); shift 2 ;;
	--cwd) cwd=$2; shift 2 ;;
	--file) files+=("$2"); shift 2 ;;
	*) echo "run_vm_arm64: unknown argument $1" >&2; exit 2 ;;
	esac
done
if [ -z "$out" ] || [ ! -f "$out/body.sh" ]; then
	echo "run_vm_arm64: --out DIR must hold body.sh" >&2; exit 2
fi
[ -f "$kimg" ] || { echo "run_vm_arm64: no kernel image '$kimg'" >&2; exit 2; }
: >"$out/console"
rootfs=$CACHE/arm64/rootfs.cpio
if [ ! -f "$rootfs" ] || ! command -v qemu-system-aarch64 >/dev/null; then
	echo "run_vm_arm64: no $rootfs or qemu-system-aarch64 (run scripts/deps.sh arm64)" >&2; exit 2
fi

# Sections of the console the host splits off (dmesg and kmemleak are
# judged apart from the tests' KTAP).
begin() { echo "vm: ==== guest $1 begin ===="; }
end() { echo "vm: ==== guest $1 end ===="; }

stage=$out/initramfs
# copy_in PATH: PATH (a directory without its __pycache__) into the stage
# at the same absolute path, its parent directories with the host's modes.
copy_in() {
	local p=$1 d
	d=$(dirname "$p")
	mkdir -p "$stage$d"
	while [ "$d" != / ]; do chmod --reference="$d" "$stage$d"; d=$(dirname "$d"); done
	cp -a "$p" "$stage$p"
	[ ! -d "$p" ] || find "$stage$p" -name __pycache__ -prune -exec rm -rf {} +
}
copy_in "$out/body.sh"
for f in "${files[@]}"; do copy_in "$(realpath "$f")"; done
# shellcheck disable=SC2016 # the guest expands these
{
	echo '#!/bin/sh'
	echo '# /init of the arm64 test VM, written by selftests/run_vm_arm64.sh'
	echo 'export PATH=/sbin:/bin:/usr/sbin:/usr/bin HOME=/root'
	# busybox's applets are linked here, in the guest (bash and mountpoint
	# are files of their own and stay).
	echo '/bin/busybox --install -s /bin'
	echo 'mount -t proc proc /proc'
	echo 'mount -t sysfs sysfs /sys'
	echo 'mount -t devtmpfs devtmpfs /dev'
	echo 'mount -t debugfs debugfs /sys/kernel/debug'
	echo 'echo "vm: guest up after $(cut -d " " -f 1 /proc/uptime) s (guest clock)"'
	printf 'cd %q 2>/dev/null || cd /\n' "$cwd"
	# No console input: a test that reads stdin must not wait for it.
	printf 'bash %q </dev/null 2>&1\n' "$out/body.sh"
	for s in dmesg kmemleak; do
		printf '[ -f %q ] && { echo; echo %q; cat %q; echo %q; }\n' \
			"$out/$s" "$(begin "$s")" "$out/$s" "$(end "$s")"
	done
	echo 'poweroff -f'
} >"$stage/init"
chmod 755 "$stage/init"
# The kernel unpacks archives one after the other: the cached rootfs,
# then this run's.
if ! (cd "$stage" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) >"$out/run.cpio" ||
	! cat "$rootfs" "$out/run.cpio" >"$out/initrd.cpio"; then
	echo "run_vm_arm64: could not pack the initramfs" >&2; exit 2
fi

# -cpu max,pauth-impdef=on: BTI and pointer authentication on (the
# kernel is built with both), with QEMU's cheap PAC instead of the QARMA
# cipher, which is much slower under TCG. panic=-1 and -no-reboot: a
# panicking guest ends QEMU at once instead of waiting for the timeout.
# The console's CRs go (the verdict greps anchor at line ends); the guest's
# output is shown from init on, without the sections.
boot() {
	bounded "$timeout" "$out/vm.pid" qemu-system-aarch64 -M virt -cpu max,pauth-impdef=on \
		-m "$memory" -smp "$cpus" -nographic -no-reboot \
		-kernel "$kimg" -initrd "$out/initrd.cpio" \
		-append "console=ttyAMA0 panic=-1 quiet ${kargs[*]}" </dev/null 2>"$out/qemu.err" |
		sed -u 's/\r$//' | tee "$out/serial" |
		sed -u -n '/^vm: guest up after/,$ { /^vm: ==== guest .* begin ====$/,/^vm: ==== guest .* end ====$/d; p }'
	return "${PIPESTATUS[0]}"
}
# In the background, so that a signal to this script stops QEMU
# (selftests/lib/bounded.sh).
bounded_wait "$out/vm.pid" boot
rc=$?

awk -v out="$out" '
	/^vm: ==== guest [a-z]+ begin ====$/ { sect = out "/" $4; printf "" >sect; next }
	/^vm: ==== guest [a-z]+ end ====$/ { close(sect); sect = ""; next }
	sect != "" { print >sect; next }
	{ print >(out "/console") }' "$out/serial"

# Nothing was shown if the guest never reached /init: show how it ended.
if ! grep -q '^vm: guest up after' "$out/serial"; then
	echo "vm: the guest never reached /init; the end of its console:"
	tail -n 40 "$out/serial"
fi
if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
	exit "$rc"
fi
grc=$(sed -n 's/^vm: guest done rc=\([0-9][0-9]*\)$/\1/p' "$out/console" | tail -n 1)
exit "${grc:-$rc}"
