#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Install everything execmem_rs needs on a Debian 12 machine: the 6.12 kernel
# source, the Rust/LLVM toolchain that builds it, virtme-ng and QEMU.
# Idempotent and quiet when everything is present; names what is missing
# when something cannot be installed.
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
