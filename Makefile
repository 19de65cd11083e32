# SPDX-License-Identifier: GPL-2.0
#
# vhost_task in Rust: the front door. Every target installs what it needs
# first (scripts/setup.sh), so on a fresh Debian machine 'make run' and
# 'make test' are the only commands to type.
#
# TREE=7.3 works on Debian's Linux 7.3 (linux-source-7.3 from trixie-backports,
# fetched into build/linux-source-7.3) instead of 6.12, with 7.3's toolchain;
# every target takes it. KDIR=/path/to/linux uses another copy of a supported
# tree (6.12 or 7.3). 'make test' covers both; 'make test TREE=7.3' covers 7.3 only,
# and 'scripts/test.sh all all-7.3' both.

SHELL := /bin/bash
S := scripts

.PHONY: all help setup tree kernel kernel-c kernel-debug kernel-debug-c run test kunit kunit-c \
	kunit-both e2e e2e-c test-debug stress modversions bench bench-quick check patches clean \
	distclean

all: kernel

help:
	@echo 'The two commands:'
	@echo '  make run             build the Rust kernel, boot it, show a vhost worker in its owner'
	@echo '  make test            every suite, Rust and C, on Linux 6.12 and 7.3; ends "N passed, N failed"'
	@echo
	@echo 'Kernels (make = make kernel; each is built incrementally in its own build/obj-*):'
	@echo '  make kernel          build/bzImage, with the Rust vhost_task'
	@echo '  make kernel-c        build/bzImage-c, the same kernel with kernel/vhost_task.c'
	@echo '  make kernel-debug    build/bzImage-debug, the Rust kernel with KASAN, lockdep, kmemleak'
	@echo '                       and fault injection'
	@echo '  make kernel-debug-c  build/bzImage-debug-c, the debug kernel with the C vhost_task'
	@echo '  make tree            the kernel tree, with the project linked into it (scripts/link-tree.sh'
	@echo '                       edits the tree: with KDIR=, a clone of yours in build/trees/)'
	@echo
	@echo 'Suites (each builds the kernel it needs first):'
	@echo '  make kunit           the KUnit suites and doctests via kunit.py on the Rust kernel'
	@echo '  make kunit-c         the KUnit suites on the C kernel'
	@echo '  make kunit-both      the KUnit suites on the Rust and the C kernel'
	@echo '  make e2e             the end-to-end suite in a guest on the Rust kernel'
	@echo '  make e2e-c           the end-to-end suite on the C kernel'
	@echo '  make test-debug      the KUnit suites on the debug kernel, then a kmemleak scan'
	@echo '  make stress          fault injection, loops and races at full scale on the debug kernel,'
	@echo '                       then trinity, a million system calls on each implementation'
	@echo '                       (STRESS_IMAGE= another kernel, STRESS_SCALE=0.1 the short version)'
	@echo '  make modversions     the 7.3 kernel with MODVERSIONS (gendwarfksyms) and its module cases'
	@echo '  make check           rustfmt, clippy, checkpatch, doc examples, rustdoc, htmldocs'
	@echo
	@echo 'The series and the benchmarks:'
	@echo '  make patches         the series per tree, with b4: mails in build/patches/TREE, checked'
	@echo '                       (b4 prep --check, git am, checkpatch --strict, each patch builds,'
	@echo '                       clippy, KUnit, rustdoc, htmldocs; PATCHES_QUICK=1: no kernel builds);'
	@echo '                       KDIR=/path/to/linux: against the HEAD of your git tree'
	@echo '  make bench           the Rust and the C kernels side by side, both trees;'
	@echo '                       BENCH_DOC=1 updates BENCHMARKS.md'
	@echo '  make bench-quick     a quick bench to iterate with: vt_bench only, icount, one tree (TREE=),'
	@echo '                       3 rounds, about 1.5 min once its two kernels are built'
	@echo
	@echo 'Housekeeping:'
	@echo '  make setup           install the missing tools only (for every tree); the others run it'
	@echo '  make clean           remove the build directories, images, initramfs, logs and target/'
	@echo '  make distclean       remove build/ (trees, tools, series) and target/'
	@echo '  make help            this list'
	@echo
	@echo 'TREE=6.12 (default) or TREE=7.3 picks the tree; KDIR=/path another tree of 6.12 or 7.3.'
	@echo 'Long: a cold kernel build takes 10-25 min, and so does any target that needs one;'
	@echo 'make test, stress, bench, patches and modversions take tens of minutes to over an hour'
	@echo '(docs/history.md has each run).'

setup:
	@$(S)/setup.sh

tree: setup
	@$(S)/get-tree.sh
	@$(S)/link-tree.sh

kernel: setup
	@$(S)/build-kernel.sh rust

kernel-c: setup
	@$(S)/build-kernel.sh c

kernel-debug: setup
	@$(S)/build-kernel.sh debug

# The debug kernel with the C vhost_task, to compare fault points (scripts/fault-diff.sh).
kernel-debug-c: setup
	@$(S)/build-kernel.sh debug-c

run: kernel
	@$(S)/run-demo.sh

# Every suite on both trees; with TREE= or KDIR=, on that tree only.
test: setup
	@$(S)/test.sh $(if $(TREE)$(KDIR),all,all all-7.3)

kunit: kernel
	@$(S)/test.sh kunit-rust

kunit-c: kernel-c
	@$(S)/test.sh kunit-c

kunit-both: kernel kernel-c
	@$(S)/test.sh kunit-rust kunit-c

e2e: kernel
	@$(S)/test.sh e2e-rust

e2e-c: kernel-c
	@$(S)/test.sh e2e-c

test-debug: setup
	@$(S)/test.sh kunit-debug

stress: setup
	@$(S)/stress.sh

# The 7.3 kernel with MODVERSIONS (gendwarfksyms for Rust, from DWARF), built and its module
# cases run; not part of 'make test' (its DWARF build is the slowest of all).
modversions: setup
	@$(S)/test.sh build-modv-7.3 e2e-modv-7.3

# Both trees, their four kernels built first; with TREE= or KDIR=, or BENCH_QUICK=1 (one tree),
# that tree only.
bench: setup
	@$(S)/build-kernel.sh rust && $(S)/build-kernel.sh c
	@$(if $(TREE)$(KDIR)$(filter 1,$(BENCH_QUICK)),:,TREE=7.3 $(S)/build-kernel.sh rust && TREE=7.3 $(S)/build-kernel.sh c)
	@$(S)/bench.sh

bench-quick:
	@BENCH_QUICK=1 $(MAKE) --no-print-directory bench

check: tree
	@$(S)/check.sh

# A checked series for each supported tree; with TREE= or KDIR=, for that tree only.
patches: setup
	@TREE_LIST="$(if $(TREE)$(KDIR),,6.12 7.3)" $(S)/patches.sh

clean:
	rm -rf build/obj-* build/bzImage* build/initramfs* build/log target

distclean:
	rm -rf build target
