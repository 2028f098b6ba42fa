#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Build (or reuse) the execmem_rs test kernel and print its directory.
#
#   scripts/kernel.sh [base|debug|kasan|arm64]  build/reuse, print "KDIR=<dir>" last
#   scripts/kernel.sh --kdir [flavour] only print the directory it would use
#
# The kernel is Debian's linux-source-6.12 plus kernel/patches, configured
# from allnoconfig + kernel/execmem_rs.config (+ kernel/debug.config for the
# debug flavour, kernel/kasan.config for the kasan one, kernel/arm64.config
# and kernel/patches/series.arm64 for the arm64 kernel; a later fragment's
# line for an option overrides an earlier one). It is cached outside the repository under a key made of
# everything that changes its output (the source, the toolchain and make
# arguments, the config fragments, the patches); a changed key builds a
# new tree.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/scripts/env.sh"

print_only=
[ "${1:-}" = --kdir ] && { print_only=1; shift; }
flavour=${1:-base}
case "$flavour" in base|debug|kasan|arm64) ;; *) echo "kernel: unknown flavour '$flavour' (base|debug|kasan|arm64)" >&2; exit 2;; esac
kmake_args "$flavour"

frags=("$here/kernel/execmem_rs.config")
[ "$flavour" = base ] || frags+=("$here/kernel/$flavour.config")
patches=()
while read -r p; do [ -n "$p" ] && patches+=("$here/kernel/patches/$p"); done < <(cat "$here/kernel/patches/series"; [ "$flavour" != arm64 ] || cat "$here/kernel/patches/series.arm64")

# Bump when the build recipe below changes its output.
RECIPE=1
# toolchain: what the make arguments the kernels are built with
# (KMAKE_ARGS) choose: the versions of the compilers and bindgen they name,
# and any other argument as it is (scripts/test-kernel-key.sh).
toolchain() {
	local a llvm='' rustc='' hostrustc='' bindgen='' other=()
	for a in "${KMAKE_ARGS[@]}"; do
		case "$a" in
		LLVM=*) llvm=${a#LLVM=} ;;
		RUSTC=*) rustc=${a#RUSTC=} ;;
		HOSTRUSTC=*) hostrustc=${a#HOSTRUSTC=} ;;
		BINDGEN=*) bindgen=${a#BINDGEN=} ;;
		# Not in the kernel's build output (clippy runs only with
		# CLIPPY=1, on the module), or the flavour's (ARCH).
		CLIPPY_DRIVER=*|RUSTFMT=*|ARCH=*) ;;
		*) other+=("$a") ;;
		esac
	done
	# make's own defaults where an argument is not given.
	rustc=${rustc:-rustc} hostrustc=${hostrustc:-rustc} bindgen=${bindgen:-bindgen}
	"$rustc" --version || echo "rustc $rustc: none"
	case "$llvm" in
	'') "${CC:-gcc}" --version ;;
	1) clang --version ;;
	*/) "${llvm}clang" --version ;;
	*) "clang$llvm" --version ;;
	esac 2>/dev/null | sed -n 1p || echo "compiler of LLVM=$llvm: none"
	"$bindgen" --version || echo "bindgen $bindgen: none"
	[ "$hostrustc" = "$rustc" ] || echo "host rustc: $("$hostrustc" --version || echo none)"
	[ "${#other[@]}" = 0 ] || echo "make ${other[*]}"
}
kkey() {
	{
		echo "recipe $RECIPE flavour $flavour"
		dpkg-query -W -f='${Version}\n' linux-source-6.12
		toolchain
		grep -h -v -e '^#[^ ]' -e '^# [^C]' -e '^#$' -e '^$' "${frags[@]}"
		# Only the diffs count: a reworded commit message changes no output
		# (-s: each patch from its first diff to its own end).
		[ -n "${PATCHLESS:-}" ] || sed -s -n '/^diff --git/,$p' "${patches[@]}"
	} | sha256sum | cut -c1-16
}
key=$(kkey)
dir=$CACHE/kernel/$flavour-$key
kdir=$dir/linux
if [ -n "$print_only" ]; then echo "$kdir"; exit 0; fi

# One build per cache at a time: a second caller waits, then reuses.
mkdir -p "$CACHE/kernel"
exec 9>"$CACHE/kernel/.lock"
if ! flock -n 9; then
	echo "kernel: another build holds $CACHE/kernel/.lock; waiting"
	flock 9
fi

if [ -f "$dir/built" ]; then
	echo "kernel: reusing $flavour kernel $kdir (key $key unchanged)"
	echo "KDIR=$kdir"
	exit 0
fi

start=$(date +%s)
# Key of everything but the patches: a tree with the same base can be moved
# forward by swapping its patches and rebuilding incrementally.
basekey=$(PATCHLESS=1 kkey)
prev=
for d in "$CACHE/kernel/$flavour-"*; do
	[ -f "$d/basekey" ] && [ "$(cat "$d/basekey")" = "$basekey" ] && [ -f "$d/patches.applied" ] && prev=$d
done
if [ -n "$prev" ]; then
	echo "kernel: building $flavour kernel incrementally in the tree of $(basename "$prev") (same source, toolchain and config; patches swapped), key $key"
	rm -f "$prev/built"
	# Put back the pristine copy of every file either series touches
	# (reverting patch by patch fails where a later patch edits an earlier
	# one's lines); files the source does not have are removed. Only those
	# files get new timestamps, so kbuild rebuilds only what they feed.
	touched=$(cat "$prev/patches.applied" "${patches[@]}" |
		sed -n -e 's#^--- a/##p' -e 's#^+++ b/##p' | sed 's/\t.*//' | sort -u)
	pristine=$dir.pristine
	rm -rf "$pristine" && mkdir -p "$pristine"
	# shellcheck disable=SC2086 # one member per word
	tar -C "$pristine" -xf /usr/src/linux-source-6.12.tar.xz \
		$(printf 'linux-source-6.12/%s ' $touched) 2>/dev/null || true
	for f in $touched; do
		if [ -f "$pristine/linux-source-6.12/$f" ]; then
			cp "$pristine/linux-source-6.12/$f" "$prev/linux/$f"
		else
			rm -f "$prev/linux/$f"
		fi
		rm -f "$prev/linux/$f.rej" "$prev/linux/$f.orig"
	done
	rm -rf "$pristine" "$prev/patches.applied"
	[ "$prev" = "$dir" ] || { rm -rf "$dir"; mv "$prev" "$dir"; }
else
	if ls "$CACHE/kernel" 2>/dev/null | grep "^$flavour-" >/dev/null; then
		echo "kernel: building $flavour kernel from scratch: key $key; cached" \
			"$(ls "$CACHE/kernel" | grep "^$flavour-" | tr '\n' ' ')differ in source, toolchain or config"
	else
		echo "kernel: building $flavour kernel from scratch: nothing cached under $CACHE/kernel"
	fi
	rm -rf "$dir"
	mkdir -p "$dir"
	tar -C "$dir" -xf /usr/src/linux-source-6.12.tar.xz
	mv "$dir"/linux-source-6.12 "$kdir"
fi
echo "$basekey" >"$dir/basekey"
cat "${patches[@]}" >"$dir/patches.new"
patch -s -p1 -d "$kdir" <"$dir/patches.new" || { echo "kernel: the patch series does not apply" >&2; exit 1; }
mv "$dir/patches.new" "$dir/patches.applied"

km=(make -s -C "$kdir" "${KMAKE_ARGS[@]}")
"${km[@]}" rustavailable >/dev/null || { echo "kernel: Rust is not available for the kernel build" >&2; exit 1; }
cat "${frags[@]}" >"$dir/fragment.config"
# Same base key means the same config: keep .config (and its timestamps) as is.
# (Kconfig warns on stderr for each option a later fragment overrides: intended.)
[ -f "$kdir/.config" ] || "${km[@]}" KCONFIG_ALLCONFIG="$dir/fragment.config" allnoconfig 2>&1 >/dev/null |
	{ grep -v 'warning: override: reassigning to symbol' >&2 || true; }

# Every option the fragment asks for must have survived dependency resolution;
# where fragments disagree, the last line for an option is what was asked.
wanted() {
	awk '/^CONFIG_[A-Za-z0-9_]*=/ { o = $0; sub(/=.*/, "", o) }
	     /^# CONFIG_[A-Za-z0-9_]* is not set/ { o = $2 }
	     o != "" { last[o] = $0; if (!(o in seen)) { seen[o] = 1; order[n++] = o } o = "" }
	     END { for (i = 0; i < n; i++) print last[order[i]] }' "$1"
}
bad=0
while IFS= read -r line; do
	case "$line" in
	CONFIG_*=*)
		grep -qx "$line" "$kdir/.config" || { echo "kernel: config wants '$line', got '$(grep "^${line%%=*}=" "$kdir/.config" || echo unset)'" >&2; bad=1; } ;;
	"# CONFIG_"*" is not set")
		opt=${line#\# }; opt=${opt%% *}
		! grep -q "^$opt=" "$kdir/.config" || { echo "kernel: config wants $opt unset" >&2; bad=1; } ;;
	esac
done < <(wanted "$dir/fragment.config")
[ "$bad" = 0 ] || exit 1

echo "kernel: compiling in $kdir (log: $dir/build.log)"
# Not silent, so that the log says where the build is: a line every 30 s.
# Not make's flags either: `make -s module-arm64 CLIPPY=1` would pass -s
# and CLIPPY=1 down to the whole kernel's build through MAKEFLAGS.
env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL \
	make -C "$kdir" "${KMAKE_ARGS[@]}" -j"$(nproc)" all >"$dir/build.log" 2>&1 &
build=$!
while kill -0 "$build" 2>/dev/null; do
	for _ in $(seq 30); do kill -0 "$build" 2>/dev/null || break; sleep 1; done
	kill -0 "$build" 2>/dev/null &&
		echo "kernel: $flavour, $(( $(date +%s) - start )) s: $(tail -n1 "$dir/build.log" | sed 's/^ *//' | cut -c1-90)"
done
if ! wait "$build"; then
	tail -n 40 "$dir/build.log" >&2
	echo "kernel: build failed, full log in $dir/build.log" >&2
	exit 1
fi
echo "$key" >"$dir/built"
# Older trees of this flavour are stale now; keep the cache from growing.
for old in "$CACHE/kernel/$flavour-"*; do
	[ "$old" = "$dir" ] || rm -rf "$old"
done
echo "kernel: built $flavour kernel in $(( $(date +%s) - start )) s"
echo "KDIR=$kdir"
