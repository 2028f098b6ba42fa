# SPDX-License-Identifier: GPL-2.0
#
# execmem_rs — user entry points. Everything installs and builds itself:
#
#   make            build execmem_rs.ko (and, unless KDIR= is given, the test kernel)
#   make demo       main job: build, boot the test kernel, load, run the demo
#   make check      all tests; last line "N passed, N failed"
#
#   ARCH=arm64      the module (and test kernel) for arm64: make ARCH=arm64
#   KDIR=<tree>     build against your own Rust-enabled, prepared kernel tree
#   EXECMEM_RS_TEST=y|n
#                   with or without the test harness (execmem/test/): y by
#                   default, n by default with KDIR=; check and demo need it

SHELL := /bin/bash
# Scripts (module.sh, run_vm.sh) read KDIR from the environment.
export KDIR EXECMEM_RS_TEST
# The tests and the demo drive the test harness's debugfs files.
check demo vm-test soak: export EXECMEM_RS_TEST := y
KMAKE := $(shell . scripts/env.sh && echo "$${KMAKE_ARGS[@]}")
# The test kernel `make` and `make module` build for: x86-64's base
# flavour, or the arm64 kernel with ARCH=arm64.
FLAVOUR := $(if $(filter arm64,$(ARCH)),arm64,base)

.PHONY: soak all module deps kernel kernel-debug module-debug kernel-kasan module-kasan kernel-arm64 module-arm64 clippy fmt-check host-test vm-test vm-test-arm64 check demo clean

all: module

deps:
	@scripts/deps.sh

kernel: deps
ifeq ($(KDIR),)
	@scripts/kernel.sh $(FLAVOUR)
else
	@echo "kernel: using KDIR=$(KDIR) (not built here)"
endif

# The module is always rebuilt through kbuild, which knows what changed.
module: kernel
	@scripts/module.sh $(FLAVOUR)

clippy: kernel
	@rm -f execmem_rs.o
	@scripts/module.sh base CLIPPY=1

# The debug flavour: KASAN, lockdep, kmemleak, DEBUG_VM, UBSAN.
kernel-debug: deps
	@scripts/kernel.sh debug

module-debug: kernel-debug
	@scripts/module.sh debug

# The kasan flavour: KASAN without KASAN_VMALLOC (module shadow per area).
kernel-kasan: deps
	@scripts/kernel.sh kasan

module-kasan: kernel-kasan
	@scripts/module.sh kasan

# arm64: cross-built with clang, booted under qemu-system-aarch64.
kernel-arm64: deps
	@scripts/kernel.sh arm64

module-arm64: kernel-arm64
	@scripts/module.sh arm64

fmt-check:
	@scripts/fmt-check.sh

vm-test: module
	@selftests/run_vm.sh selftests/hardening.py selftests/execmem_rs.sh selftests/ctl_abi.py \
		selftests/exec_policy.py selftests/ctl_fuzz.py selftests/stress.sh

# The slow parts on their own: 5M stress operations on the debug kernel and
# a 100k-line fuzz with another seed.
soak: module module-debug
	@selftests/run_vm.sh --flavour debug --memory 2G --timeout 3600 "selftests/stress.sh 5000000 2 7"
	@selftests/run_vm.sh "selftests/ctl_fuzz.py 100000 2"

vm-test-arm64: module-arm64
	@selftests/run_vm.sh --flavour arm64 selftests/execmem_rs.sh "selftests/stress.sh 100000 2 1"

# ARCH=arm64: the same demo on the arm64 kernel (its BPF JIT is served too).
demo: module
	@selftests/run_vm.sh --flavour $(FLAVOUR) --demo

# deps is check.sh's first counted step: a failed install still ends with
# the "N passed, N failed" line.
check:
	@scripts/check.sh

clean:
	@$(MAKE) -s -C $(or $(KDIR),$(shell scripts/kernel.sh --kdir)) M=$(CURDIR) $(KMAKE) clean 2>/dev/null || true
	@rm -rf target out
