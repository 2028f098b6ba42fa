# SPDX-License-Identifier: GPL-2.0
#
# execmem_rs — user entry points. Everything installs and builds itself:
#
#   make            build execmem_rs.ko (and, unless KDIR= is given, the test kernel)
#   make demo       main job: build, boot the test kernel, load, run the demo
#   make check      all tests; last line "N passed, N failed"
#
#   KDIR=<tree>     build against your own Rust-enabled, prepared kernel tree

SHELL := /bin/bash
KMAKE := $(shell . scripts/env.sh && echo "$${KMAKE_ARGS[@]}")

.PHONY: all module deps kernel clippy fmt-check host-test vm-test check demo clean

all: module

deps:
	@scripts/deps.sh

kernel: deps
ifeq ($(KDIR),)
	@scripts/kernel.sh base
else
	@echo "kernel: using KDIR=$(KDIR) (not built here)"
endif

# The module is always rebuilt through kbuild, which knows what changed.
module: kernel
	@$(MAKE) -s -C $(or $(KDIR),$(shell scripts/kernel.sh --kdir)) M=$(CURDIR) $(KMAKE) modules
	@echo "module: $(CURDIR)/execmem_rs.ko"

clippy: kernel
	@rm -f execmem_rs.o
	@$(MAKE) -s -C $(or $(KDIR),$(shell scripts/kernel.sh --kdir)) M=$(CURDIR) $(KMAKE) CLIPPY=1 modules

fmt-check:
	@scripts/fmt-check.sh

vm-test: module
	@selftests/run_vm.sh selftests/execmem_rs.sh selftests/ctl_abi.py

demo: module
	@selftests/run_vm.sh --demo

check: deps
	@scripts/check.sh

clean:
	@$(MAKE) -s -C $(or $(KDIR),$(shell scripts/kernel.sh --kdir)) M=$(CURDIR) $(KMAKE) clean 2>/dev/null || true
	@rm -rf target out
