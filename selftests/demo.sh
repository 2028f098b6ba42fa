#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The demo the README's main command runs inside the VM.
D=/sys/kernel/debug/execmem_rs
here=$(cd "$(dirname "$0")" && pwd)
echo "== execmem_rs demo: $(uname -r), $(nproc) CPUs"
echo "== ls -l $D"
ls -l "$D"
echo "== cat $D/types"
cat "$D/types"
echo "== cat $D/selftest   (kernel's execmem path, then every type through execmem_rs)"
probe=$(cat "$D/selftest") || exit 1
echo "$probe"
grep -q '^not ok' <<<"$probe" && exit 1
python3 "$here/demo.py" || exit 1
python3 "$here/demo_consumers.py"
