#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Style and lint: rustfmt and clippy (the kernel's own lint set, via
# 'make CLIPPY=1' on the project's objects), checkpatch on the C and Rust
# files, and rustfmt/clippy on the userspace crate.
. "$(dirname "$0")/lib.sh"

ok=1
obj=$BUILD/obj-rust
[ -f "$obj/.config" ] || "$ROOT/scripts/build-kernel.sh" rust

stage "rustfmt (kernel's .rustfmt.toml)"
rustfmt --check --config-path "$KDIR/.rustfmt.toml" --edition 2021 \
	"$ROOT"/src/*.rs "$ROOT"/tests/kunit/*.rs || ok=0

stage "clippy on the in-kernel crate (make CLIPPY=1)"
rm -f "$obj/kernel/vhost_task_rs/src/vhost_task_rust.o"
if ! kmake "$obj" CLIPPY=1 kernel/vhost_task_rs/src/vhost_task_rust.o >"$BUILD/log/clippy.log" 2>&1; then
	ok=0
	cat "$BUILD/log/clippy.log" >&2
elif grep -q 'warning' "$BUILD/log/clippy.log"; then
	ok=0
	cat "$BUILD/log/clippy.log" >&2
fi

stage "checkpatch"
for f in "$ROOT"/src/*.c "$ROOT"/src/*.rs "$ROOT"/include/*.c "$ROOT"/tests/kunit/*.[ch] \
	"$ROOT"/tests/kunit/*.rs; do
	ignore=()
	# The exported functions are defined in Rust: no C definition for the export to follow.
	case $f in */vhost_task_exports.c) ignore=(--ignore EXPORT_SYMBOL) ;; esac
	out=$("$KDIR/scripts/checkpatch.pl" --no-tree --quiet --show-types "${ignore[@]}" -f "$f" 2>&1) || {
		ok=0
		echo "$out" >&2
	}
done

stage "rustfmt and clippy on tests/e2e"
cargo fmt --manifest-path "$ROOT/Cargo.toml" --all -- --check || ok=0
cargo clippy --manifest-path "$ROOT/Cargo.toml" --locked --all-targets -q -- -D warnings || ok=0

[ $ok = 1 ] || die "check found problems (see above)"
info "check: clean"
