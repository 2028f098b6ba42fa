#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Install everything execmem_rs needs on a Debian 12 machine: the 6.12 kernel
# source, the Rust/LLVM toolchain that builds it, virtme-ng and QEMU.
# Idempotent and quiet when everything is present; names what is missing
# when something cannot be installed.
#
#   scripts/deps.sh         everything the x86 test kernels need
#   scripts/deps.sh arm64   only what the arm64 VM adds (selftests/run_vm.sh
#                           --flavour arm64 runs it): qemu-system-arm and the
#                           guest's userspace from Debian's arm64 packages
set -euo pipefail

KSRC_PIN=${KSRC_PIN:-6.12.117-1~deb12u1}
VIRTME_NG_VERSION=1.42
DOCUTILS_VERSION=0.23
BINDGEN_VERSION=0.69.5
. "$(dirname "$0")/env.sh"

APT_PKGS=(rustc-web rust-web-src rust-web-clippy rustfmt-web clang-19 lld-19 llvm-19 libclang-19-dev
	  bc flex bison libelf-dev libssl-dev cpio kmod make python3-venv
	  qemu-system-x86 busybox-static udev xz-utils valgrind libcap2-bin)

die() { echo "deps: $*" >&2; exit 1; }
log() { echo "deps: $*"; }

need_root() {
	[ "$(id -u)" = 0 ] || die "must run as root to install: $*"
}

apt_missing() {
	local p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep "install ok installed" >/dev/null || echo "$p"
	done
}

apt_updated=
apt_update_once() {
	[ -n "$apt_updated" ] && return 0
	apt-get update -qq >/dev/null || die "apt-get update failed"
	apt_updated=1
}

apt_install() {
	need_root "$*"
	apt_update_once
	local log
	log=$(mktemp)
	if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" \
		>"$log" 2>&1; then
		cat "$log" >&2
		rm -f "$log"
		die "apt-get install failed for: $*"
	fi
	rm -f "$log"
}

# --- arm64 VM: `scripts/deps.sh arm64` only ----------------------------------
# What selftests/run_vm.sh --flavour arm64 needs on top of the x86 set, kept
# apart so x86-only runs never pay for it: QEMU's arm64 system emulator and
# a tiny arm64 userspace for the guest's initramfs. That userspace is taken
# from Debian's arm64 .debs, unpacked with dpkg-deb (no arm64 binary ever
# runs on the host): busybox-static for init and the tools, bash (plus the
# libraries it links) because the kselftests are bash scripts, python3.11
# with Debian's minimal standard library (python3.11-minimal,
# libpython3.11-minimal: os, re, subprocess, threading, random, struct...;
# math, select, _posixsubprocess and the like are built into the
# interpreter) for the Python kselftests, plus ctypes and resource alone
# from libpython3.11-stdlib (with libffi8) for the tests that call bpf(2), and
# capsh for exec_policy.py. It
# is packed once into $ARM64_DIR/rootfs-KEY.cpio, KEY made of the packages'
# versions and ARM64_RECIPE; $ARM64_DIR/rootfs.cpio links to the current
# one. The runner appends a per-run cpio (init, tests, module) to it.
ARM64_DEBS=(busybox-static bash libc6 libtinfo6
	    python3.11-minimal libpython3.11-minimal zlib1g libexpat1 libcap2-bin libcap2
	    libpython3.11-stdlib libffi8)
# Bump when the rootfs recipe below changes its output.
ARM64_RECIPE=5
# The host's Python of the guest's minor version: it byte-compiles the
# guest's standard library (.pyc files are the same on every architecture),
# so that the guest, under TCG, does not compile it at every boot.
ARM64_HOST_PY=/usr/bin/python3.11
ARM64_DIR=$CACHE/arm64

# elf_closure PKGS ROOT FILE...: copy into ROOT, at the same paths, the
# program interpreter and shared libraries FILEs need, found in the
# unpacked packages PKGS (read with the host's readelf, which reads any
# architecture's ELF).
elf_closure() {
	local pkgs=$1 root=$2 f lib d found
	shift 2
	local -a todo=("$@")
	local -A seen=()
	while [ ${#todo[@]} -gt 0 ]; do
		f=${todo[0]} todo=("${todo[@]:1}")
		for lib in $(readelf -l "$pkgs$f" 2>/dev/null |
				sed -n 's/.*Requesting program interpreter: \(.*\)]$/\1/p') \
			   $(readelf -d "$pkgs$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]$/\1/p'); do
			[ -z "${seen[$lib]:-}" ] || continue
			seen[$lib]=1
			found=
			case "$lib" in
			/*) [ -e "$pkgs$lib" ] && found=$lib ;;
			*) for d in /lib/aarch64-linux-gnu /usr/lib/aarch64-linux-gnu /lib /usr/lib; do
				[ -e "$pkgs$d/$lib" ] && { found=$d/$lib; break; }
			   done ;;
			esac
			[ -n "$found" ] || die "arm64 rootfs: $lib (needed by $f) is in none of: ${ARM64_DEBS[*]}"
			mkdir -p "$root$(dirname "$found")"
			cp -L "$pkgs$found" "$root$found"
			todo+=("$found")
		done
	done
}

# arm64_versions: "package=version" of ARM64_DEBS' arm64 candidates, one a
# line. apt-cache takes ~2 s here (docker's apt config keeps no binary
# cache), so its answer is kept in $ARM64_DIR/versions, valid as long as the
# arm64 package lists it was read from are unchanged.
arm64_versions() {
	local stamp out
	stamp=$({ echo "${ARM64_DEBS[*]}"
		  stat -c '%n %s %Y' /var/lib/apt/lists/*_binary-arm64_Packages* 2>/dev/null; } |
		sha256sum | cut -c1-16)
	if [ -f "$ARM64_DIR/versions" ] && [ "$(head -n 1 "$ARM64_DIR/versions")" = "$stamp" ]; then
		tail -n +2 "$ARM64_DIR/versions"
		return 0
	fi
	out=$(apt-cache policy "${ARM64_DEBS[@]/%/:arm64}" 2>/dev/null |
		awk '/^[^ ]/ { p = $1; sub(/:arm64:$/, "", p) }
		     $1 == "Candidate:" && $2 != "(none)" { print p "=" $2 }' | LC_ALL=C sort)
	[ -n "$out" ] || return 0
	if [ "$(wc -l <<<"$out")" = ${#ARM64_DEBS[@]} ]; then
		mkdir -p "$ARM64_DIR"
		printf '%s\n' "$stamp" "$out" >"$ARM64_DIR/versions"
	fi
	echo "$out"
}

deps_arm64() {
	local missing p v w f key cpio stage attempt root
	# The arm64 lists first, so that one apt-get update serves both the
	# QEMU install and the .debs' versions.
	if ! dpkg --print-foreign-architectures | grep -qx arm64; then
		need_root "dpkg --add-architecture arm64"
		log "adding the arm64 architecture to dpkg (for the arm64 VM's userspace .debs)"
		dpkg --add-architecture arm64
		apt_update_once
	fi
	missing=$(apt_missing qemu-system-arm binutils cpio python3.11-minimal)
	# shellcheck disable=SC2086 # one package name a word
	if [ -n "$missing" ]; then
		log "installing Debian packages:" $missing
		apt_install $missing
	fi
	command -v qemu-system-aarch64 >/dev/null || die "qemu-system-arm did not install qemu-system-aarch64"

	# Versions from the local package lists (no network); the lists are
	# refreshed only when they lack a package or its version is no longer
	# downloadable.
	for attempt in 1 2; do
		local -a want=()
		mapfile -t want < <(arm64_versions)
		if [ ${#want[@]} != ${#ARM64_DEBS[@]} ] && [ -z "$apt_updated" ]; then
			apt_update_once
			mapfile -t want < <(arm64_versions)
		fi
		[ ${#want[@]} = ${#ARM64_DEBS[@]} ] ||
			die "the package lists lack an arm64 version of one of: ${ARM64_DEBS[*]}"
		key=$(printf '%s\n' "recipe=$ARM64_RECIPE" "${want[@]}" | sha256sum | cut -c1-16)
		cpio=$ARM64_DIR/rootfs-$key.cpio
		if [ -f "$cpio" ]; then
			ln -sfn "rootfs-$key.cpio" "$ARM64_DIR/rootfs.cpio"
			return 0
		fi
		mkdir -p "$ARM64_DIR/debs"
		local -a debs=() get=()
		for w in "${want[@]}"; do
			p=${w%%=*} v=${w#*=}
			# apt-get download's file name, epoch colon escaped
			f=$ARM64_DIR/debs/${p}_${v//:/%3a}_arm64.deb
			debs+=("$f")
			[ -f "$f" ] || get+=("$p:arm64=$v")
		done
		[ ${#get[@]} -gt 0 ] || break
		log "downloading arm64 packages: ${get[*]}"
		# -o APT::Sandbox::User=root: the _apt user cannot write the cache
		if (cd "$ARM64_DIR/debs" && apt-get download -q -o APT::Sandbox::User=root "${get[@]}") \
			>"$ARM64_DIR/download.log" 2>&1; then
			rm -f "$ARM64_DIR/download.log"
			break
		fi
		if [ "$attempt" = 2 ] || [ -n "$apt_updated" ]; then
			cat "$ARM64_DIR/download.log" >&2
			die "apt-get download failed: ${get[*]}"
		fi
		log "download failed; refreshing the package lists"
		apt_update_once
	done

	need_root "mknod (the initramfs's /dev/console)"
	log "packing the arm64 guest userspace (${want[*]})"
	stage=$(mktemp -d "${TMPDIR:-/tmp}/execmem_rs-arm64.XXXXXX")
	for f in "${debs[@]}"; do
		case $f in
		# Only its ctypes is taken (below), not the whole library.
		*/libpython3.11-stdlib_*) dpkg-deb -x "$f" "$stage/stdlib" ;;
		*) dpkg-deb -x "$f" "$stage/pkgs" ;;
		esac
	done
	root=$stage/root
	mkdir -p "$root"/{bin,sbin,dev,proc,sys,tmp,root,etc}
	chmod 1777 "$root/tmp"
	cp "$stage/pkgs/bin/busybox" "$stage/pkgs/bin/bash" "$root/bin/"
	# The rest of busybox's applets are linked at boot by the guest's
	# init (busybox --install): listing them here would mean running it.
	ln -s busybox "$root/bin/sh"
	# python3: the interpreter at its Debian path, which it finds its
	# standard library from (/usr/lib/python3.11, no PYTHONHOME). The
	# minimal package's only extension modules (_ssl, _hashlib) need
	# OpenSSL and are left out (hashlib falls back to the built-in
	# hashes); lib-dynload stays (python warns if it finds none), with
	# only the two modules added below. So does sitecustomize.py (Debian's
	# link to /etc, which would only look for apport). The .pyc files are
	# unchecked-hash ones: used without comparing the source's timestamp.
	mkdir -p "$root/usr/bin" "$root/usr/lib"
	cp "$stage/pkgs/usr/bin/python3.11" "$root/usr/bin/"
	ln -s python3.11 "$root/usr/bin/python3"
	cp -a "$stage/pkgs/usr/lib/python3.11" "$root/usr/lib/"
	rm -f "$root"/usr/lib/python3.11/lib-dynload/*.so "$root/usr/lib/python3.11/sitecustomize.py"
	# What selftests/lib/bpf.py needs for bpf(2) from Python: the ctypes
	# package and its extension module, which links libffi (found by
	# elf_closure, which reads it from the unpacked packages), and the
	# resource module (RLIMIT_NOFILE, an fd per live program).
	local ext=/usr/lib/python3.11/lib-dynload mod so
	local -a stdlib_so=()
	cp -a "$stage/stdlib/usr/lib/python3.11/ctypes" "$root/usr/lib/python3.11/"
	mkdir -p "$stage/pkgs$ext"
	for mod in _ctypes resource; do
		so=$ext/$mod.cpython-311-aarch64-linux-gnu.so
		cp "$stage/stdlib$so" "$stage/pkgs$so"
		cp "$stage/stdlib$so" "$root$so"
		stdlib_so+=("$so")
	done
	"$ARM64_HOST_PY" -m compileall -q -j 0 --invalidation-mode unchecked-hash \
		-s "$root" -p / "$root/usr/lib/python3.11" >/dev/null ||
		die "arm64 rootfs: byte-compiling the guest's python3.11 standard library failed"
	# capsh (exec_policy.py drops CAP_SYS_MODULE with it).
	cp "$stage/pkgs/sbin/capsh" "$root/sbin/"
	elf_closure "$stage/pkgs" "$root" /bin/bash /bin/busybox /usr/bin/python3.11 /sbin/capsh \
		"${stdlib_so[@]}"
	# The Python kselftests start with #!/usr/bin/env python3; busybox's
	# applets are linked into /bin only.
	ln -s /bin/busybox "$root/usr/bin/env"
	# Debian's busybox has no mountpoint applet, which the kselftests use
	# (util-linux's would bring its libraries): the -q form they need.
	cat >"$root/bin/mountpoint" <<-'EOF'
	#!/bin/sh
	# mountpoint [-q] DIR (written by scripts/deps.sh arm64)
	q=
	[ "$1" = -q ] && { q=1; shift; }
	if awk -v d="$1" '$5 == d { f = 1 } END { exit !f }' /proc/self/mountinfo; then
		[ -n "$q" ] || echo "$1 is a mountpoint"
		exit 0
	fi
	[ -n "$q" ] || echo "$1 is not a mountpoint"
	exit 1
	EOF
	chmod 755 "$root/bin/mountpoint"
	# The kernel opens /dev/console for init before devtmpfs is mounted.
	mknod -m 600 "$root/dev/console" c 5 1
	mknod -m 666 "$root/dev/null" c 1 3
	(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) >"$cpio.tmp"
	mv "$cpio.tmp" "$cpio"
	rm -rf "$stage"
	ln -sfn "rootfs-$key.cpio" "$ARM64_DIR/rootfs.cpio"
	# Older keys' archives and packages are not used again.
	for f in "$ARM64_DIR"/rootfs-*.cpio "$ARM64_DIR"/debs/*.deb; do
		case " $cpio ${debs[*]} " in *" $f "*) ;; *) rm -f "$f" ;; esac
	done
	log "arm64 guest userspace: $cpio ($(du -k "$cpio" | cut -f1) KiB)"
}

case "${1:-}" in
"") ;;
arm64) deps_arm64; exit 0 ;;
*) die "unknown argument '$1' (usage: scripts/deps.sh [arm64])" ;;
esac

# --- Debian packages -------------------------------------------------------
missing=$(apt_missing "${APT_PKGS[@]}")
if [ -n "$missing" ]; then
	log "installing Debian packages:" $missing
	# shellcheck disable=SC2086
	apt_install $missing
	for p in $missing; do
		[ -z "$(apt_missing "$p")" ] || die "package $p did not install"
	done
fi

# linux-source-6.12: pin the version we measured; fall back to the newest 6.12.
if [ -z "$(apt_missing linux-source-6.12)" ]; then
	:
else
	apt_update_once
	if apt-cache madison linux-source-6.12 | awk '{print $3}' | grep -x "$KSRC_PIN" >/dev/null; then
		log "installing linux-source-6.12=$KSRC_PIN"
		apt_install "linux-source-6.12=$KSRC_PIN"
	else
		log "linux-source-6.12 $KSRC_PIN is gone from the archive; installing the newest 6.12"
		apt_install linux-source-6.12
	fi
fi
[ -f /usr/src/linux-source-6.12.tar.xz ] || die "linux-source-6.12 did not install /usr/src/linux-source-6.12.tar.xz"

# --- version checks (not assumed) -------------------------------------------
rv=$(/usr/bin/rustc --version | awk '{print $2}')
case "$rv" in 1.9[6-9]*|1.[1-9][0-9][0-9]*) ;; *) die "/usr/bin/rustc is $rv; need rustc-web >= 1.96";; esac
[ -d /usr/lib/rustlib/src/rust/library/core ] || die "rust-web-src: /usr/lib/rustlib/src/rust/library missing"
clang-19 --version | grep "version 19" >/dev/null || die "clang-19 is not version 19"
/usr/bin/clippy-driver --rustc --version 2>/dev/null | grep " $rv " >/dev/null ||
	die "/usr/bin/clippy-driver does not match rustc $rv (rust-web-clippy)"

# --- crates.io: bindgen-cli (pinned) ----------------------------------------
if ! { [ -x "$BINDGEN" ] && "$BINDGEN" --version 2>/dev/null | grep " $BINDGEN_VERSION\$" >/dev/null; }; then
	command -v cargo >/dev/null || die "cargo not found (needed to install bindgen-cli $BINDGEN_VERSION)"
	log "installing bindgen-cli $BINDGEN_VERSION into $TOOLS"
	LIBCLANG_PATH=/usr/lib/llvm-19/lib cargo install -q --locked --root "$TOOLS" \
		bindgen-cli --version "$BINDGEN_VERSION" || die "cargo install bindgen-cli failed"
fi

# --- PyPI: virtme-ng (pinned), in a venv in the cache -----------------------
VENV=$TOOLS/venv
if ! { [ -x "$VENV/bin/vng" ] && "$VENV/bin/pip" show virtme-ng 2>/dev/null | grep -x "Version: $VIRTME_NG_VERSION" >/dev/null; }; then
	log "installing virtme-ng $VIRTME_NG_VERSION into $VENV"
	python3 -m venv "$VENV" || die "python3 -m venv failed (python3-venv missing?)"
	"$VENV/bin/pip" install -q "virtme-ng==$VIRTME_NG_VERSION" || die "pip install virtme-ng failed"
fi

# --- PyPI: docutils (pinned), for the reST render check of make check -------
if ! "$VENV/bin/pip" show docutils 2>/dev/null | grep -x "Version: $DOCUTILS_VERSION" >/dev/null; then
	log "installing docutils $DOCUTILS_VERSION into $VENV"
	"$VENV/bin/pip" install -q "docutils==$DOCUTILS_VERSION" || die "pip install docutils failed"
fi
exit 0
