#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# The static instruction counts of BENCHMARKS.md's "Where Rust and C differ": for each tree,
# every function of the C kernel's kernel/vhost_task.o, and of the Rust kernel the C ABI,
# the CWork instances of the vhost layer and the kernel crate's user_worker functions, from
# llvm-objdump -d of the objects in build/obj-c* and build/obj-rust* (built by make bench),
# the Rust names demangled by llvm-cxxfilt.
#
#   scripts/bench-insns.sh            both trees (TREE= for one)
explicit_tree=${TREE:-}
. "$(dirname "$0")/lib.sh"

od=$(command -v llvm-objdump-22 || command -v llvm-objdump) ||
	die "no llvm-objdump (run 'make setup')"
# Instructions per function of object $1 whose (mangled) name matches $2.
count() {
	[ -f "$1" ] || die "no $1: build the kernel first (make bench)"
	"$od" -d --no-show-raw-insn "$1" | awk -v pat="$2" '
		/^[0-9a-f]+ <.*>:$/ { name = $2; on = (name ~ pat) }
		on && /^ +[0-9a-f]+:/ { n[name]++ }
		END { for (k in n) printf "%5d %s\n", n[k], k }' | sort -k2 | demangle
}
# Rust's v0 symbols in a form a reader knows, as llvm-cxxfilt gives them.
demangle() {
	local f
	f=$(command -v llvm-cxxfilt-22 || command -v llvm-cxxfilt) || {
		cat
		return
	}
	sed 's/^\( *[0-9]*\) <\(.*\)>:$/\1 \2/' | "$f"
}
for t in ${explicit_tree:-${SUPPORTED_TREES[*]}}; do
	select_tree "$t" ""
	echo "### Linux $t, C: kernel/vhost_task.o"
	count "$(objdir c)/kernel/vhost_task.o" '.'
	echo "### Linux $t, Rust: the C ABI and the CWork instances"
	count "$(objdir rust)/kernel/vhost_task_rs/src/vhost_task_rust.o" \
		'^<vhost_task_(create|start|stop|wake)>|CWork'
	echo "### Linux $t, Rust: the kernel crate's user_worker"
	count "$(objdir rust)/rust/kernel.o" 'user_worker'
done
