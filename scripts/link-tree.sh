#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Link this project into the kernel tree KDIR. Idempotent, and minimal:
#   kernel/vhost_task_rs          -> this project (its Kbuild and Kconfig)
#   kernel/Makefile               builds vhost_task.c only without VHOST_TASK_RUST
#   drivers/vhost/Kconfig         sources our Kconfig beside VHOST_TASK
#   rust/bindings/bindings_helper.h   the headers the Rust side binds
#   rust/helpers/vhost_task_rs.c  -> include/rust_helpers.c, #included by helpers.c
#   rust/helpers/completion.c     -> include/rust_helpers_completion.c, only in a tree
#                                    without one (6.12; 7.3 has it upstream)
# kernel/vhost_task.c stays, so one tree builds either implementation.
. "$(dirname "$0")/lib.sh"

# scripts/patches.sh edits a copy of just the touched files: no version to check there.
if [ "${LINK_SKIP_CHECK:-0}" = 1 ]; then version=copy; else version=$(check_tree "$KDIR"); fi
MARK="vhost-task-rs"
changed=0

# $1 file, $2 a line that must be there, then the awk program that adds it.
ensure() {
	local file=$1 probe=$2 prog=$3
	grep -qF -- "$probe" "$file" && return 0
	[ -w "$file" ] || die "cannot write $file"
	awk "$prog" "$file" >"$file.$MARK.tmp"
	grep -qF -- "$probe" "$file.$MARK.tmp" ||
		die "could not patch $file: the line it expects to follow was not found"
	mv "$file.$MARK.tmp" "$file"
	changed=1
}

link() {
	local target=$1 name=$2
	if [ "$(readlink "$name" 2>/dev/null)" != "$target" ]; then
		rm -f "$name"
		ln -s "$target" "$name"
		changed=1
	fi
}

link "$ROOT" "$KDIR/kernel/vhost_task_rs"
link "$ROOT/include/rust_helpers.c" "$KDIR/rust/helpers/vhost_task_rs.c"
# The tree's own init_completion() helper if it has one, ours otherwise.
if [ ! -f "$KDIR/rust/helpers/completion.c" ] || [ -L "$KDIR/rust/helpers/completion.c" ]; then
	link "$ROOT/include/rust_helpers_completion.c" "$KDIR/rust/helpers/completion.c"
	ensure "$KDIR/rust/helpers/helpers.c" '#include "completion.c"' '
{ print }
/^#include "uaccess.c"$/ { print "#include \"completion.c\"" }'
fi

ensure "$KDIR/kernel/Makefile" "obj-\$(CONFIG_VHOST_TASK) += vhost_task_rs/" '
/^obj-\$\(CONFIG_VHOST_TASK\) \+= vhost_task\.o$/ {
	print "# vhost_task: the C original, or the Rust one from '"$MARK"'"
	print "ifndef CONFIG_VHOST_TASK_RUST"
	print
	print "endif"
	print "obj-$(CONFIG_VHOST_TASK) += vhost_task_rs/"
	next
}
{ print }'

ensure "$KDIR/drivers/vhost/Kconfig" 'source "kernel/vhost_task_rs/Kconfig"' '
{ print }
/^config VHOST_TASK$/ { invt = 1 }
invt && /^$/ {
	print "source \"kernel/vhost_task_rs/Kconfig\""
	print ""
	invt = 0
}'

ensure "$KDIR/rust/bindings/bindings_helper.h" "#include <linux/sched/vhost_task.h>" '
{ print }
/^#include <linux\/sched.h>$/ {
	print "/* '"$MARK"' */"
	print "#include <linux/completion.h>"
	print "#include <linux/sched/signal.h>"
	print "#include <linux/sched/task.h>"
	print "#include <linux/sched/vhost_task.h>"
}'

ensure "$KDIR/rust/helpers/helpers.c" '#include "vhost_task_rs.c"' '
{ print }
/^#include "uaccess.c"$/ { print "#include \"vhost_task_rs.c\"" }'

if [ $changed -eq 1 ]; then
	info "linked into Linux $version at $KDIR"
fi
