#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# The change to the kernel tree as a 'git format-patch' series in
# build/patches/, against the pristine files of KDIR's version: what
# scripts/link-tree.sh does, with the project's files copied in instead of
# linked. Apply with 'git am' on a 6.12 tree.
. "$(dirname "$0")/lib.sh"
need git

work=$BUILD/patches/tree
out=$BUILD/patches
rm -rf "$out"
mkdir -p "$work"
version=$(check_tree "$KDIR")
touched=(kernel/Makefile drivers/vhost/Kconfig rust/bindings/bindings_helper.h rust/helpers/helpers.c)
# The tree's own completion helper (7.3), which link-tree.sh must see to leave it alone.
if [ -f "$KDIR/rust/helpers/completion.c" ] && [ ! -L "$KDIR/rust/helpers/completion.c" ]; then
	touched+=(rust/helpers/completion.c)
fi

# The pristine files: from Debian's tarball for the default tree, else from KDIR's git.
if [ "$KDIR" = "$DEFAULT_KDIR" ]; then
	# Debian's tarball: 6.12's from the installed package, 7.3's from the .deb get-tree.sh fetched.
	if [ -f "/usr/src/linux-source-$TREE.tar.xz" ]; then
		tar -C "$work" --strip-components=1 -xf "/usr/src/linux-source-$TREE.tar.xz" \
			"${touched[@]/#/linux-source-$TREE/}"
	else
		deb=$(ls "$BUILD/apt-$TREE/deb/"*.deb 2>/dev/null | head -n 1)
		[ -n "$deb" ] || die "no Debian package of $TREE under build/apt-$TREE (run scripts/get-tree.sh)"
		dpkg-deb --fsys-tarfile "$deb" | tar -xO "./usr/src/linux-source-$TREE.tar.xz" |
			tar -C "$work" --strip-components=1 -xJf - "${touched[@]/#/linux-source-$TREE/}"
	fi
else
	git -C "$KDIR" rev-parse HEAD >/dev/null 2>&1 ||
		die "KDIR=$KDIR is not a git tree: cannot tell its pristine files apart"
	for f in "${touched[@]}"; do
		mkdir -p "$work/$(dirname "$f")"
		git -C "$KDIR" show "HEAD:$f" >"$work/$f"
	done
fi

g() { git -C "$work" -c user.name="${GIT_AUTHOR_NAME:-vhost-task-rs}" \
	-c user.email="${GIT_AUTHOR_EMAIL:-vhost-task-rs@example.org}" "$@"; }
g init -q
g add -A
g commit -q -m "Linux $version (base)"

# The tree edits of link-tree.sh, applied to the copy.
KDIR=$work LINK_SKIP_CHECK=1 "$ROOT/scripts/link-tree.sh" >/dev/null
rm -f "$work/kernel/vhost_task_rs" "$work/rust/helpers/vhost_task_rs.c"

cp "$ROOT/include/rust_helpers.c" "$work/rust/helpers/vhost_task_rs.c"
# Only a tree without its own completion helper (6.12) gets ours.
if [ -L "$work/rust/helpers/completion.c" ]; then
	rm "$work/rust/helpers/completion.c"
	cp "$ROOT/include/rust_helpers_completion.c" "$work/rust/helpers/completion.c"
fi
g add rust/helpers rust/bindings
g commit -q -F - <<'MSG'
rust: helpers: add what a Rust vhost_task needs

Add helpers for set_current_state(), __set_current_state() and
init_completion(), which are macros or inlines, and bind the headers of
completions, signals, task creation and vhost_task.
MSG

mkdir -p "$work/kernel/vhost_task_rs/src"
cp "$ROOT/Kconfig" "$ROOT/Kbuild" "$work/kernel/vhost_task_rs/"
cp "$ROOT"/src/Kbuild "$ROOT"/src/*.rs "$ROOT"/src/*.c "$work/kernel/vhost_task_rs/src/"
# A tree with kernel::sync::Completion (7.3) does not need our fallback.
[ ! -f "$KDIR/rust/kernel/sync/completion.rs" ] || rm "$work/kernel/vhost_task_rs/src/completion.rs"
g add kernel drivers
g commit -q -F - <<'MSG'
sched/vhost_task: add a Rust implementation

Add vhost_task in Rust, selected by CONFIG_VHOST_TASK_RUST, with the C
ABI of <linux/sched/vhost_task.h> so that vhost and KVM are unchanged.
It is layered: a safe user-worker abstraction over copy_process() that
other Rust code can reuse, the vhost worker loop with its stop/SIGKILL
protocol over it, and the four exported C functions. kernel/vhost_task.c
stays and is built when the option is off.
MSG

mkdir -p "$work/kernel/vhost_task_rs/tests/kunit"
cp "$ROOT"/tests/kunit/{Kbuild,.kunitconfig,*.c,*.h,*.rs} "$work/kernel/vhost_task_rs/tests/kunit/"
g add kernel
g commit -q -F - <<'MSG'
sched/vhost_task: add KUnit tests

Suite vhost_task tests the C ABI as vhost and KVM call it, against
either implementation; suite vhost_task_rust tests the Rust layers.
MSG

g format-patch -q -o "$out" HEAD~3
rm -rf "$work"
info "patches for Linux $version in build/patches/:"
ls "$out" | sed 's/^/    /' >&2
