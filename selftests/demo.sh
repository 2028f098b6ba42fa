#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The demo the README's main command runs inside the VM: what execmem_rs
# does, shown through its debugfs files.
D=/sys/kernel/debug/execmem_rs
echo "== execmem_rs demo: $(uname -r), $(nproc) CPUs"
echo "== ls -l $D"
ls -l "$D"
echo "== cat $D/selftest   (execmem_alloc + set_memory_rox + text_poke_copy + call + page-table checks)"
probe=$(cat "$D/selftest") || exit 1
echo "$probe"
! grep -q '^not ok' <<<"$probe"
