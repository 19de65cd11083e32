#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Link this project into the kernel tree KDIR. Idempotent and minimal, in four parts,
# which are also the patches of scripts/patches.sh:
#
# backport   only in a tree that lacks them (6.12), each from its own file under
#            rust/backport/: the newer kernel crate's sync::aref, sync::atomic and
#            sync::Completion (with rust/helpers/completion.c), pin_init::zeroed(),
#            types::NotThreadSafe, Task::as_ptr(), Task::current_raw(), CStrExt, miscdevice
#            and fs::File, so that the abstraction is one source, written against the newest
#            API. This script adds only the lines that declare or re-export them, and the
#            __rust_helper marker, to the tree's files.
# helpers    rust/helpers/user_worker.c (set_current_state()), #included by helpers.c, and
#            the headers the abstraction binds in rust/bindings/bindings_helper.h
# abstraction  rust/kernel/task/user_worker.rs, declared in rust/kernel/task.rs, and its
#            documentation, Documentation/rust/user_worker.rst
# vhost      kernel/vhost_task_rs -> this project (its Kbuild and Kconfig: the Rust
#            vhost_task and its tests); kernel/Makefile builds vhost_task.c only without
#            VHOST_TASK_RUST; drivers/vhost/Kconfig sources our Kconfig beside VHOST_TASK
#
# kernel/vhost_task.c stays, so one tree builds either implementation.
#
# Environment: LINK_PARTS picks parts (default: all four); LINK_COPY=1 copies the
# project's files instead of linking them (scripts/patches.sh), and LINK_NO_TESTS=1
# leaves the tests out of that copy.
. "$(dirname "$0")/lib.sh"

version=$(check_tree "$KDIR")
parts=${LINK_PARTS:-backport helpers abstraction vhost}
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

# Make $2 a link to $1 (a copy with LINK_COPY=1).
link() {
	local target=$1 name=$2
	mkdir -p "$(dirname "$name")"
	if [ "${LINK_COPY:-0}" = 1 ]; then
		rm -rf "$name"
		cp -r "$target" "$name"
		changed=1
	elif [ "$(readlink "$name" 2>/dev/null)" != "$target" ]; then
		rm -f "$name"
		ln -s "$target" "$name"
		changed=1
	fi
}

# Whether the tree lacks file $1 of the newer kernel (a link of ours counts as lacking it).
lacks() { [ ! -e "$KDIR/$1" ] || [ -L "$KDIR/$1" ]; }

part_backport() {
	if lacks rust/kernel/sync/aref.rs; then
		link "$ROOT/rust/backport/kernel/sync/aref.rs" "$KDIR/rust/kernel/sync/aref.rs"
		ensure "$KDIR/rust/kernel/sync.rs" 'pub mod aref;' '
{ print }
/^mod arc;$/ { print "pub mod aref;" }'
	fi
	if lacks rust/kernel/sync/completion.rs; then
		link "$ROOT/rust/backport/kernel/sync/completion.rs" "$KDIR/rust/kernel/sync/completion.rs"
		ensure "$KDIR/rust/kernel/sync.rs" 'pub mod completion;' '
{ print }
/^pub mod aref;$/ { print "pub mod completion;" }'
		ensure "$KDIR/rust/kernel/sync.rs" 'pub use completion::Completion;' '
{ print }
/^pub use arc::/ { print "pub use completion::Completion;" }'
	fi
	if lacks rust/helpers/completion.c; then
		link "$ROOT/rust/backport/helpers/completion.c" "$KDIR/rust/helpers/completion.c"
		ensure "$KDIR/rust/helpers/helpers.c" '#include "completion.c"' '
{ print }
/^#include "build_bug.c"$/ { print "#include \"completion.c\"" }'
	fi
	if lacks rust/kernel/sync/atomic.rs; then
		link "$ROOT/rust/backport/kernel/sync/atomic.rs" "$KDIR/rust/kernel/sync/atomic.rs"
		ensure "$KDIR/rust/kernel/sync.rs" 'pub mod atomic;' '
{ print }
/^pub mod aref;$/ { print "pub mod atomic;" }'
	fi
	# The pin_init crate's zeroed(), as a hidden module that the prelude re-exports as
	# pin_init (the crate root's pin_init is the pin_init! macro, which docs link to).
	if [ ! -d "$KDIR/rust/pin-init" ]; then
		# A tree linked by an older version of this script: the module had the macro's name.
		if [ -L "$KDIR/rust/kernel/pin_init.rs" ]; then
			rm "$KDIR/rust/kernel/pin_init.rs"
			sed -i '/^pub mod pin_init;$/d' "$KDIR/rust/kernel/lib.rs"
			changed=1
		fi
		link "$ROOT/rust/backport/kernel/pin_init.rs" "$KDIR/rust/kernel/pin_init_backport.rs"
		ensure "$KDIR/rust/kernel/lib.rs" 'pub mod pin_init_backport;' '
{ print }
/^pub mod page;$/ { print "#[doc(hidden)]"; print "pub mod pin_init_backport;" }'
		# Before the line it goes with: rustfmt sorts the two uses that way.
		ensure "$KDIR/rust/kernel/prelude.rs" 'pin_init_backport as pin_init' '
/^pub use super::\{init, pin_init, try_init, try_pin_init\};$/ {
	print "#[doc(hidden)]"
	print "pub use super::pin_init_backport as pin_init;"
}
{ print }'
	fi
	# CStrExt::as_char_ptr() on C-string literals, as a hidden module the prelude imports.
	if ! grep -qs 'pub trait CStrExt' "$KDIR/rust/kernel/str.rs"; then
		link "$ROOT/rust/backport/kernel/str_ext.rs" "$KDIR/rust/kernel/str_backport.rs"
		ensure "$KDIR/rust/kernel/lib.rs" 'pub mod str_backport;' '
{ print }
/^pub mod str;$/ { print "#[doc(hidden)]"; print "pub mod str_backport;" }'
		ensure "$KDIR/rust/kernel/prelude.rs" 'str_backport::CStrExt' '
/^pub use super::\{str::CStr, ThisModule\};$/ { print "pub use super::str_backport::CStrExt as _;" }
{ print }'
	fi
	# What the user-worker test module needs: kernel::miscdevice, with kernel::fs::File.
	if lacks rust/kernel/miscdevice.rs; then
		link "$ROOT/rust/backport/kernel/miscdevice.rs" "$KDIR/rust/kernel/miscdevice.rs"
		link "$ROOT/rust/backport/kernel/fs.rs" "$KDIR/rust/kernel/fs.rs"
		ensure "$KDIR/rust/kernel/lib.rs" 'pub mod miscdevice;' '
{ print }
/^pub mod list;$/ { print "pub mod miscdevice;" }'
		ensure "$KDIR/rust/kernel/lib.rs" 'pub mod fs;' '
{ print }
/^pub mod firmware;$/ { print "pub mod fs;" }'
		ensure "$KDIR/rust/bindings/bindings_helper.h" '#include <linux/miscdevice.h>' '
{ print }
/^#include <linux\/mdio.h>$/ { print "#include <linux/miscdevice.h>" }'
	fi
	# types::NotThreadSafe, from its own file, re-exported where later kernels have it.
	if ! grep -qs 'pub const NotThreadSafe' "$KDIR/rust/kernel/types.rs"; then
		link "$ROOT/rust/backport/kernel/types_backport.rs" "$KDIR/rust/kernel/types_backport.rs"
		ensure "$KDIR/rust/kernel/lib.rs" 'mod types_backport;' '
{ print }
/^pub mod types;$/ { print "#[doc(hidden)]"; print "pub mod types_backport;" }'
		ensure "$KDIR/rust/kernel/types.rs" 'pub use crate::types_backport::NotThreadSafe;' '
{ print }
/^use core::\{$/ { inuse = 1 }
inuse && /^};$/ && !done { print ""; print "pub use crate::types_backport::NotThreadSafe;"; done = 1; inuse = 0 }'
	fi
	# The helpers of later kernels are marked __rust_helper (inlined into Rust where the tree
	# can); this tree has no such marker, and its helpers are plain functions.
	ensure "$KDIR/rust/helpers/helpers.c" '#define __rust_helper' '
/^#include "/ && !done { print "#define __rust_helper"; print ""; done = 1 }
{ print }'
	# Task::as_ptr() and Task::current_raw(), from their own file: an inherent impl may live in
	# any module of the crate.
	if ! grep -qs 'pub fn current_raw()' "$KDIR/rust/kernel/task.rs"; then
		link "$ROOT/rust/backport/kernel/task_backport.rs" "$KDIR/rust/kernel/task_backport.rs"
		ensure "$KDIR/rust/kernel/lib.rs" 'mod task_backport;' '
{ print }
/^pub mod task;$/ { print "mod task_backport;" }'
	fi
}

part_helpers() {
	# A tree linked by an older version of this script: its helper had another name.
	if [ -L "$KDIR/rust/helpers/vhost_task_rs.c" ]; then
		rm "$KDIR/rust/helpers/vhost_task_rs.c"
		sed -i '/^#include "vhost_task_rs.c"$/d' "$KDIR/rust/helpers/helpers.c"
		changed=1
	fi
	link "$ROOT/rust/helpers/user_worker.c" "$KDIR/rust/helpers/user_worker.c"
	ensure "$KDIR/rust/helpers/helpers.c" '#include "user_worker.c"' '
{ print }
/^#include "uaccess.c"$/ { print "#include \"user_worker.c\"" }'
	ensure "$KDIR/rust/bindings/bindings_helper.h" "#include <linux/sched/vhost_task.h>" '
{ print }
/^#include <linux\/sched.h>$/ {
	print "#include <linux/completion.h>"
	print "#include <linux/sched/signal.h>"
	print "#include <linux/sched/task.h>"
	print "#include <linux/sched/vhost_task.h>"
}'
}

part_abstraction() {
	link "$ROOT/rust/kernel/task/user_worker.rs" "$KDIR/rust/kernel/task/user_worker.rs"
	# After the module's doc comment.
	ensure "$KDIR/rust/kernel/task.rs" 'pub mod user_worker;' '
indoc && !/^\/\/!/ && !done { print ""; print "pub mod user_worker;"; done = 1 }
/^\/\/!/ { indoc = 1 }
{ print }'
	link "$ROOT/Documentation/rust/user_worker.rst" "$KDIR/Documentation/rust/user_worker.rst"
	ensure "$KDIR/Documentation/rust/index.rst" '    user_worker' '
{ print }
/^    testing$/ { print "    user_worker" }'
}

part_vhost() {
	if [ "${LINK_COPY:-0}" = 1 ]; then
		local d=$KDIR/kernel/vhost_task_rs
		rm -rf "$d"
		mkdir -p "$d/src"
		cp "$ROOT"/src/Kbuild "$ROOT"/src/*.rs "$ROOT"/src/*.c "$d/src/"
		if [ "${LINK_NO_TESTS:-0}" = 1 ]; then
			# Without the tests, the lines that name them go too.
			grep -v 'tests/' "$ROOT/Kconfig" >"$d/Kconfig"
			grep -v 'tests/' "$ROOT/Kbuild" >"$d/Kbuild"
		else
			cp "$ROOT/Kconfig" "$ROOT/Kbuild" "$d/"
			mkdir -p "$d/tests/kunit" "$d/tests/module"
			cp "$ROOT"/tests/kunit/{Kbuild,Kconfig,.kunitconfig,*.c,*.h,*.rs} "$d/tests/kunit/"
			cp "$ROOT"/tests/module/{Kbuild,Kconfig,*.rs} "$d/tests/module/"
		fi
		changed=1
	else
		link "$ROOT" "$KDIR/kernel/vhost_task_rs"
	fi
	ensure "$KDIR/kernel/Makefile" "obj-\$(CONFIG_VHOST_TASK) += vhost_task_rs/" '
/^obj-\$\(CONFIG_VHOST_TASK\) \+= vhost_task\.o$/ {
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
}

for p in $parts; do
	case $p in
	backport | helpers | abstraction | vhost) "part_$p" ;;
	*) die "link-tree.sh: unknown part '$p' (backport, helpers, abstraction, vhost)" ;;
	esac
done

if [ $changed -eq 1 ] && [ "${LINK_COPY:-0}" != 1 ]; then
	info "linked into Linux $version at $KDIR"
fi
