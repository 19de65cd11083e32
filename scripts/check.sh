#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Style and lint:
#   rustfmt     the in-kernel Rust, with the kernel's .rustfmt.toml
#   clippy      our crate and the kernel crate (with kernel::task::user_worker and, on 6.12,
#               the backports) through 'make CLIPPY=1', the kernel's lint set
#   checkpatch  the C and Rust files, as for a kernel submission
#   rustdoc     'make rustdoc' with the tree's LLVM: no warning, kernel::task::user_worker
#               documented with its examples (scripts/docs.sh)
#   htmldocs    'make htmldocs SPHINXDIRS=rust': Documentation/rust/user_worker.rst without
#               warning, in the rust toctree (scripts/docs.sh)
#   e2e-fmt     cargo fmt on the userspace crate
#   e2e-clippy  cargo clippy -D warnings on the userspace crate
#   check.sh [PART...]   (all parts by default)
. "$(dirname "$0")/lib.sh"

obj=$(objdir rust)

part_rustfmt() {
	rustfmt --check --config-path "$KDIR/.rustfmt.toml" --edition 2021 \
		"$ROOT"/src/*.rs "$ROOT"/tests/kunit/*.rs "$ROOT"/tests/module/*.rs \
		"$ROOT"/rust/kernel/task/*.rs "$ROOT"/rust/backport/kernel/*.rs \
		"$ROOT"/rust/backport/kernel/sync/*.rs
}

part_clippy() {
	[ -f "$obj/vmlinux" ] || "$ROOT/scripts/build-kernel.sh" rust
	# Rebuild the kernel crate and ours under clippy-driver; the next build relinks.
	local m=kernel/vhost_task_rs/tests/module/user_worker_test.o
	rm -f "$obj/rust/kernel.o" "$obj/kernel/vhost_task_rs/src/vhost_task_rust.o" "$obj/$m"
	kmake "$obj" CLIPPY=1 rust/kernel.o kernel/vhost_task_rs/src/vhost_task_rust.o "$m" \
		>"$BUILD/log/clippy.log" 2>&1 || {
		cat "$BUILD/log/clippy.log" >&2
		return 1
	}
	# Ours are kernel/vhost_task_rs and what link-tree.sh links into rust/kernel; the
	# kernel crate's own code is upstream's to lint.
	if grep -E '^ *--> .*(vhost_task_rs/|task/user_worker\.rs|sync/(aref|atomic|completion)\.rs|kernel/(miscdevice|fs|pin_init_backport|str_backport|task_backport|types_backport)\.rs|task\.rs)' \
		"$BUILD/log/clippy.log" >/dev/null; then
		grep -v '^make' "$BUILD/log/clippy.log" >&2
		return 1
	fi
}

part_checkpatch() {
	local f ok=0 ignore out
	for f in "$ROOT"/src/*.c "$ROOT"/src/*.rs "$ROOT"/tests/kunit/*.[ch] "$ROOT"/tests/kunit/*.rs \
		"$ROOT"/rust/helpers/*.c "$ROOT"/rust/kernel/task/*.rs "$ROOT"/rust/backport/*/*.c \
		"$ROOT"/rust/backport/kernel/*.rs "$ROOT"/rust/backport/kernel/sync/*.rs \
		"$ROOT"/tests/module/*.rs; do
		ignore=()
		# The exported functions are defined in Rust: no C definition for the export to follow.
		case $f in */vhost_task_exports.c) ignore=(--ignore EXPORT_SYMBOL) ;; esac
		out=$("$KDIR/scripts/checkpatch.pl" --no-tree --quiet --show-types "${ignore[@]}" -f "$f" 2>&1) || {
			ok=1
			echo "$out" >&2
		}
	done
	return $ok
}

# The doc examples of the vhost crate, which the kernel's doctests do not run, are the same as
# their twins in the KUnit cases, which do run.
# The rst page of the abstraction shows the example of its module's documentation, which runs as
# a doctest; and no page names an item of the abstraction or of the vhost crate that is gone.
part_doc-examples() {
	python3 "$ROOT/scripts/doc-examples.py" "$ROOT/src/vhost_task.rs" "$ROOT/tests/kunit/rust_cases.rs" &&
		python3 "$ROOT/scripts/doc-examples.py" --rst "$ROOT/Documentation/rust/user_worker.rst" \
			"$ROOT/rust/kernel/task/user_worker.rs" &&
		python3 "$ROOT/scripts/doc-names.py" "$ROOT" "$KDIR"
}

# In the Rust kernel's build directory, whose objects rustdoc leaves alone (its pages go to
# Documentation/output/, beside Sphinx's).
part_rustdoc() {
	[ -f "$obj/vmlinux" ] || "$ROOT/scripts/build-kernel.sh" rust
	"$ROOT/scripts/docs.sh" rustdoc "$obj"
}

part_htmldocs() {
	mkdir -p "$obj"
	"$ROOT/scripts/docs.sh" htmldocs "$obj"
}

part_e2e-fmt() {
	cargo fmt --manifest-path "$ROOT/Cargo.toml" --all -- --check
}

part_e2e-clippy() {
	cargo clippy --manifest-path "$ROOT/Cargo.toml" --locked --all-targets -q -- -D warnings
}

parts=("$@")
[ ${#parts[@]} -gt 0 ] || parts=(rustfmt clippy checkpatch doc-examples rustdoc htmldocs e2e-fmt e2e-clippy)
"$ROOT/scripts/get-tree.sh"
"$ROOT/scripts/link-tree.sh"
failed=()
for p in "${parts[@]}"; do
	declare -F "part_$p" >/dev/null || die "unknown check '$p'"
	"part_$p" || failed+=("$p")
done
[ ${#failed[@]} -eq 0 ] || die "check failed: ${failed[*]} (see above)"
