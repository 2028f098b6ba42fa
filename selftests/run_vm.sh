#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Boot the execmem_rs test kernel under virtme-ng, load the module, run
# something, and judge the run.
#
#   selftests/run_vm.sh [options] TEST...   run kselftest scripts (KTAP); a TEST
#                                           may carry arguments: "stress.sh 1000000"
#   selftests/run_vm.sh [options] --demo     run the demo and print it
#   selftests/run_vm.sh [options] -- CMD     run CMD with the module loaded
#
# options: --flavour base|debug|kasan|arm64
#                                 kernel flavour (default base); arm64: see below
#          --timeout SECONDS      bound on the whole VM run (default 900)
#          --no-unload            leave the module loaded at the end
#          --cpus N --memory SIZE guest shape (default 2, 1G)
#          --append ARG           extra kernel command-line argument
#          --icount               count instead of time (x86, TCG only): QEMU's
#                                 -icount shift=0, so the guest's clock
#                                 advances 1 ns per instruction executed
#                                 (and jumps over idle time): a latency
#                                 read in the guest is then an instruction
#                                 count, free of the host's load and of
#                                 TCG's own costs (its software TLB, code
#                                 translation); the vCPUs run in turns on
#                                 one host thread
#          --ko PATH              load this execmem_rs.ko (e.g. an older build,
#                                 to see a new test fail on old code)
#          --injected-alloc-failures  fault-injection runs: the kernel's own
#                                 allocation-failure reports (warn_alloc:
#                                 "page allocation failure", "vmalloc error")
#                                 are expected there and not counted as
#                                 splats, inside a run's window (between
#                                 the lines fault_inject.py writes to the
#                                 kernel log when it starts and ends)
#
# The guest's dmesg is saved and scanned for kernel splats; any splat, a
# test failure or skip (selftests/verdict.sh), a failed insmod/rmmod, a
# timeout or a crashed guest fails the run. Tests find the test kernel's
# tree (for its test modules) in $EXECMEM_RS_KDIR and the module they run
# against in $EXECMEM_RS_KO. Output: the tests' KTAP,
# then a line "vm: N passed, N failed, N skipped". Exit status: 0 only when
# everything passed.
#
# --flavour arm64 boots the arm64 test kernel under qemu-system-aarch64
# (TCG) from an initramfs instead (selftests/run_vm_arm64.sh; the packages
# it needs are installed by `scripts/deps.sh arm64`, run from here). The
# guest script, the verdict and the splat scan are the same. Differences:
# the guest has busybox, bash, capsh and python3 with Debian's minimal
# standard library plus ctypes and resource (enough for every Python test),
# and of the repository only selftests/, data/ and the module (with the
# kernel's own lib/test_kprobes.ko and lib/test_bpf.ko), copied into
# the guest at their host paths; a missing
# out/arm64/execmem_rs.ko is not an error there (the module is loaded
# only when built: tests that need it then skip, which fails the run).
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/scripts/env.sh"
. "$here/selftests/verdict.sh"
. "$here/selftests/lib/bounded.sh"

flavour=base timeout=900 unload=1 cpus=2 memory=1G mode=tests
# A log buffer that a run does not wrap (test_bpf alone prints ~110 KB,
# the default is 128 KB): the splat scan reads it at the end of the run.
tests=() cmd=() append=(--append log_buf_len=16M) injected= ko_arg= icount=
while [ $# -gt 0 ]; do
	case "$1" in
	--flavour) flavour=$2; shift 2 ;;
	--timeout) timeout=$2; shift 2 ;;
	--no-unload) unload=; shift ;;
	--cpus) cpus=$2; shift 2 ;;
	--memory) memory=$2; shift 2 ;;
	--append) append+=(--append "$2"); shift 2 ;;
	--ko) ko_arg=$2; shift 2 ;;
	--icount) icount=1; shift ;;
	--injected-alloc-failures) injected=1; shift ;;
	--demo) mode=demo; shift ;;
	--) shift; mode=cmd; cmd=("$@"); break ;;
	-*) echo "run_vm: unknown option $1" >&2; exit 2 ;;
	*) read -r t targs <<<"$1"
	   tests+=("$(cd "$(dirname "$t")" && pwd)/$(basename "$t")${targs:+ $targs}"); shift ;;
	esac
done

arch=x86
[ "$flavour" != arm64 ] || arch=arm64
kdir=${KDIR:-$("$here/scripts/kernel.sh" --kdir "$flavour")}
kimg=$kdir/arch/x86/boot/bzImage
[ "$arch" = x86 ] || kimg=$kdir/arch/arm64/boot/Image
ko=$here/execmem_rs.ko
[ "$flavour" = base ] || ko=$here/out/$flavour/execmem_rs.ko
[ -z "$ko_arg" ] || ko=$(realpath "$ko_arg")
[ -f "$kimg" ] || { echo "run_vm: no kernel at $kimg (run 'scripts/kernel.sh $flavour')" >&2; exit 2; }
with_ko=1
if [ ! -f "$ko" ]; then
	if [ "$arch" = x86 ] || [ -n "$ko_arg" ]; then
		echo "run_vm: no $ko (run 'make')" >&2; exit 2
	fi
	with_ko=
fi
if [ "$arch" = arm64 ]; then
	[ -z "$icount" ] || { echo "run_vm: --icount is x86-only" >&2; exit 2; }
	"$here/scripts/deps.sh" arm64 || exit 2
fi

out=$(mktemp -d "${TMPDIR:-/tmp}/execmem_rs-vm.XXXXXX")
trap 'rm -rf "$out"' EXIT

# KVM hangs at "Decompressing Linux..." on nested hosts: probe it once per
# boot of this machine with a short timeout, else use TCG.
accel_args=(--disable-kvm)
accel=tcg
probe=$CACHE/kvm-probe.$(cat /proc/sys/kernel/random/boot_id 2>/dev/null)
if [ "$arch" = arm64 ]; then
	accel="tcg (arm64 guest, -cpu max,pauth-impdef=on)"
elif [ "${EXECMEM_RS_ACCEL:-}" = tcg ]; then
	accel="tcg (EXECMEM_RS_ACCEL=tcg)"
elif [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
	if [ ! -f "$probe" ]; then
		# Bounded, and stopped by a Ctrl-C, as the VM run itself.
		kvm_probe() {
			bounded 20 "$out/vm.pid" "$VNG" --run "$kimg" --force-9p --memory 512M \
				-e true </dev/null >/dev/null 2>&1
		}
		if bounded_wait "$out/vm.pid" kvm_probe; then
			echo kvm >"$probe"
		else
			echo tcg >"$probe"
		fi
	fi
	if [ "$(cat "$probe")" = kvm ]; then
		accel_args=() accel="kvm"
	else
		accel="tcg (KVM probe failed or hung for 20 s)"
	fi
else
	accel="tcg (no usable /dev/kvm)"
fi
if [ -n "$icount" ]; then
	[ "$accel" != kvm ] || { echo "run_vm: --icount needs TCG (set EXECMEM_RS_ACCEL=tcg)" >&2; exit 2; }
	accel_args+=(--qemu-opts "-icount shift=0,sleep=on")
	accel="$accel, icount (guest clock: 1 ns per instruction)"
fi
echo "vm: kernel $kimg, accel $accel, $cpus vCPUs, $memory"

# The guest script: load, run, unload, save dmesg. Its exit status is the
# tests' verdict; markers tell the host what happened.
{
	echo 'set -u'
	echo "out=$out"
	echo "export EXECMEM_RS_KDIR=$kdir EXECMEM_RS_KO=$ko"
	echo 'mountpoint -q /sys/kernel/debug || mount -t debugfs none /sys/kernel/debug'
	echo 'dmesg -n 1 2>/dev/null'
	echo 'km=/sys/kernel/debug/kmemleak'
	echo '[ -w $km ] && echo clear >$km'
	if [ -n "$with_ko" ]; then
		echo "insmod $ko || { echo 'vm: insmod failed'; dmesg >\$out/dmesg; exit 90; }"
	else
		echo "echo 'vm: no $ko: running without the module'"
	fi
	echo 'rc=0'
	case $mode in
	tests) for t in "${tests[@]}"; do
			read -r tpath targs <<<"$t"
			# (How long each took, on a line of its own: the verdict
			# reads the exit line's end.)
			printf 's=$SECONDS; %q %s; r=$?; [ $r = 0 ] || rc=1; echo "vm: %s exit $r"; echo "vm: %s took $((SECONDS - s)) s"\n' \
				"$tpath" "$targs" "$(basename "$tpath")" "$(basename "$tpath")"
		done ;;
	demo) printf '%q || rc=1\n' "$here/selftests/demo.sh" ;;
	cmd) printf '%q ' "${cmd[@]}"; echo '|| rc=1' ;;
	esac
	if [ -n "$unload" ] && [ -n "$with_ko" ]; then
		echo "rmmod execmem_rs || { echo 'vm: rmmod failed'; rc=91; }"
	fi
	# kmemleak (debug kernel): what the module (and what it served) left
	# behind, after rmmod, or with the module loaded (--no-unload). It
	# reports nothing younger than 5 s: wait that out first.
	echo 'if [ -w $km ]; then sleep 6; echo scan >$km; sleep 1; echo scan >$km; cat $km >$out/kmemleak;'
	echo '  echo "vm: kmemleak: $(grep -c "unreferenced object" $out/kmemleak) suspected leak(s)"; fi'
	echo 'dmesg >$out/dmesg'
	echo 'echo "vm: guest done rc=$rc"'
	echo 'exit $rc'
} >"$out/body.sh"
# The guest's output also goes to the shared directory: vng's console
# stream has been seen to lose all of it on a loaded host (the guest ran
# to the end, vng exited 0, the console was empty).
{
	echo "bash $out/body.sh 2>&1 | tee $out/guest.out"
	echo 'rc=${PIPESTATUS[0]}'
	echo 'sync'
	echo 'exit $rc'
} >"$out/guest.sh"

# boot_x86: virtme-ng, the host's root over 9p, the guest script's
# results in the shared $out.
boot_x86() {
	bounded "$timeout" "$out/vm.pid" "$VNG" --run "$kimg" "${accel_args[@]}" --force-9p \
		--cpus "$cpus" --memory "$memory" --rwdir "$out" "${append[@]}" \
		-e "bash $out/guest.sh" </dev/null 2>"$out/vng.err" | tee "$out/console"
	return "${PIPESTATUS[0]}"
}

# boot_arm64: QEMU from an initramfs; run_vm_arm64.sh leaves the same
# console, dmesg and kmemleak files in $out, split from the serial console.
boot_arm64() {
	# The guest gets the selftests (a test's helpers sit next to it), the
	# tests named from elsewhere, the module and the kernel's own test
	# modules (limits.py loads one), each at its host path.
	local t files=(--file "$here/selftests" --file "$here/data")
	for t in "${tests[@]}"; do files+=(--file "${t%% *}"); done
	[ -z "$with_ko" ] || files+=(--file "$ko")
	for t in "$kdir"/lib/test_kprobes.ko "$kdir"/lib/test_bpf.ko; do
		[ ! -f "$t" ] || files+=(--file "$t")
	done
	"$here/selftests/run_vm_arm64.sh" --out "$out" --kernel "$kimg" --timeout "$timeout" \
		--cpus "$cpus" --memory "$memory" --cwd "$PWD" "${append[@]}" "${files[@]}"
}

# Each boot in the background, waited for: an INT, TERM or HUP to this
# runner stops its VM (selftests/lib/bounded.sh).
start=$(date +%s)
if [ "$arch" = arm64 ]; then
	bounded_wait "$out/vm.pid" boot_arm64; vrc=$?
	engine=qemu errlog=$out/qemu.err
else
	bounded_wait "$out/vm.pid" boot_x86; vrc=$?
	engine=vng errlog=$out/vng.err
fi
elapsed=$(( $(date +%s) - start ))

log=$out/console
if ! grep -q '^vm: guest done' "$log" && grep -qs '^vm: guest done' "$out/guest.out"; then
	echo "vm: the console lost the guest's output (vng exit $vrc); the guest's own copy:"
	cat "$out/guest.out"
	log=$out/guest.out
	# vng's exit status travels the same lost channel (seen: 255 after the
	# guest ended with rc=0): take the guest's own.
	grc=$(sed -n 's/^vm: guest done rc=\([0-9][0-9]*\)$/\1/p' "$log" | tail -n 1)
	if [ -n "$grc" ] && [ "$vrc" != 124 ] && [ "$vrc" != 137 ]; then
		echo "vm: using the guest's exit status $grc"
		vrc=$grc
	fi
fi

fail=0
if [ "$vrc" = 124 ] || [ "$vrc" = 137 ]; then
	echo "vm: TIMEOUT after ${timeout}s"; fail=1
elif ! grep -q '^vm: guest done' "$log"; then
	echo "vm: guest did not finish ($engine exit $vrc)"; tail -n 20 "$errlog"; fail=1
elif [ "$vrc" != 0 ]; then
	fail=1
fi

if [ -f "$out/dmesg" ]; then
	cp "$out/dmesg" "${EXECMEM_RS_DMESG:-/dev/null}" 2>/dev/null
	scan=$out/dmesg
	if ! from_boot "$out/dmesg"; then
		echo "vm: the guest's dmesg lost its start (cleared, or the ring buffer wrapped): a splat before that would go unseen"
		fail=1
	fi
	if [ -n "$injected" ]; then
		# Reports of failures the test injected are expected, inside
		# its window.
		unsplat "$out/dmesg" >"$out/dmesg.scan"
		n=$(( $(grep -cE "$REPORTS" "$out/dmesg") - $(grep -cE "$REPORTS" "$out/dmesg.scan") ))
		echo "vm: $n allocation-failure report(s) of injected failures not counted as splats"
		scan=$out/dmesg.scan
	fi
	if splats "$scan" >"$out/splats"; then
		echo "vm: kernel splat in the guest's dmesg:"
		grep -E -A25 "$SPLATS" "$scan" | head -n 60
		fail=1
		keep=${TMPDIR:-/tmp}/execmem_rs-last-splat.dmesg
		cp "$out/dmesg" "$keep" && echo "vm: full dmesg kept in $keep"
	fi
else
	echo "vm: no dmesg from the guest"; fail=1
	grep -E -A25 "$SPLATS" "$out/vng.err" "$out/console" 2>/dev/null | head -n 60
fi

if [ -s "$out/kmemleak" ]; then
	echo "vm: kmemleak found leaks:"; head -n 40 "$out/kmemleak"; fail=1
fi
if [ "$mode" = tests ]; then
	judge "$log" || fail=1
else
	judge "$log" || true
fi
echo "vm: ${elapsed}s; $pass passed, $nfail failed, $skip skipped$([ $fail = 0 ] || echo ' — FAILED')"
exit $fail
