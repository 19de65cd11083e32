#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# The docs as a Rust-for-Linux reviewer builds them, on the tree KDIR with the build
# directory OBJ (configured with CONFIG_RUST, e.g. the Rust kernel's):
#   docs.sh rustdoc OBJ    'make LLVM=… rustdoc' (each tree's LLVM, scripts/lib.sh): no
#                          warning at all, and the kernel::task::user_worker module page
#                          has its examples (OBJ/Documentation/output/rust/rustdoc)
#   docs.sh htmldocs OBJ   'make htmldocs SPHINXDIRS=rust': Documentation/rust/user_worker.rst
#                          builds with no warning, and Documentation/rust/index.rst's
#                          toctree links it (OBJ/Documentation/output/rust)
# Used by the lint suite (scripts/check.sh rustdoc htmldocs, on the development tree) and
# by scripts/patches.sh (on the whole series). The log is build/log/DOC[-TREE].log, or
# DOCS_LOG. Sphinx itself comes from Debian (python3-sphinx, scripts/setup.sh).
. "$(dirname "$0")/lib.sh"

doc=${1:-}
obj=${2:-}
[ -n "$obj" ] || die "usage: docs.sh rustdoc|htmldocs OBJ"
obj=$(realpath -m "$obj")
log=${DOCS_LOG:-$BUILD/log/$doc$TREE_TAG.log}
mkdir -p "$(dirname "$log")"
failed=0
bad() {
	printf '    FAILED: %s\n' "$*" >&2
	failed=1
}

# rustdoc's warnings, each as "FILE:LINE: the message", from its log $1.
rustdoc_warnings() {
	awk 'prev != "" && /^ *--> / { sub(/^ *--> /, ""); print $0 ": " prev; prev = ""; next }
		prev != "" { print "(no location): " prev }
		{ prev = "" }
		/^warning: / && !/warnings? emitted$/ { prev = substr($0, 10) }' "$1"
}

case $doc in
rustdoc)
	grep -qx 'CONFIG_RUST=y' "$obj/.config" 2>/dev/null ||
		die "$obj is not a configured build directory with CONFIG_RUST=y"
	start=$(date +%s)
	if ! kmake "$obj" rustdoc >"$log" 2>&1; then
		bad "make rustdoc on Linux $TREE (${log#"$ROOT"/})"
		grep -E '^(error|warning)|-->' "$log" | head -n 20 | sed 's/^/      | /' >&2
		exit 1
	fi
	secs=$(($(date +%s) - start))
	warnings=$(rustdoc_warnings "$log")
	if [ -n "$warnings" ]; then
		bad "make rustdoc on Linux $TREE warns (${log#"$ROOT"/}):"
		sed 's/^/      | /' <<<"$warnings" >&2
	fi
	page=$obj/Documentation/output/rust/rustdoc/kernel/task/user_worker/index.html
	if [ ! -f "$page" ]; then
		bad "rustdoc made no page for kernel::task::user_worker (${page#"$ROOT"/})"
	else
		# The module's "# Examples" heading, and a Rust code block after it.
		python3 - "$page" <<'PY' || bad "the kernel::task::user_worker page has no examples"
import sys
text = open(sys.argv[1], encoding="utf-8").read()
at = text.find('id="examples"')
sys.exit(0 if at >= 0 and 'class="rust' in text[at:] else 1)
PY
	fi
	[ $failed -eq 0 ] && info "ok: make rustdoc on Linux $TREE: no warning, kernel::task::user_worker with its examples ($secs s)"
	;;
htmldocs)
	start=$(date +%s)
	marker=$obj/.htmldocs-start
	touch "$marker"
	# No LLVM or config: the docs targets need neither, and without a .config in the source
	# tree the kernel's Makefile does not run rustdoc behind Sphinx's back. -E: read every
	# page again, since Sphinx warns about a page only when it reads it.
	rc=0
	make -C "$KDIR" O="$obj" htmldocs SPHINXDIRS=rust SPHINXOPTS="-q -E" >"$log" 2>&1 || rc=$?
	secs=$(($(date +%s) - start))
	# 6.12's Documentation/Makefile writes the netlink specs' pages into the source tree
	# (Documentation/networking/netlink_spec/*.rst, hidden by a .gitignore): leave the
	# tree as it was.
	[ ! -d "$KDIR/Documentation/networking/netlink_spec" ] ||
		find "$KDIR/Documentation/networking/netlink_spec" -type f -newer "$marker" -delete
	rm -f "$marker"
	if [ $rc -ne 0 ]; then
		bad "make htmldocs SPHINXDIRS=rust on Linux $TREE (${log#"$ROOT"/})"
		tail -n 20 "$log" | sed 's/^/      | /' >&2
		exit 1
	fi
	# Ours: the page, and the toctree entry in index.rst that names it. Sphinx's other
	# warnings are upstream's (a label outside SPHINXDIRS=rust, dot(1) not installed).
	ours=$(grep -E 'WARNING|ERROR' "$log" | grep -E 'user_worker' || true)
	others=$(grep -cE 'WARNING|ERROR' "$log" || true)
	if [ -n "$ours" ]; then
		bad "make htmldocs warns about Documentation/rust/user_worker.rst (${log#"$ROOT"/}):"
		sed 's/^/      | /' <<<"$ours" >&2
	fi
	out=$obj/Documentation/output/rust
	[ -f "$out/user_worker.html" ] || bad "htmldocs made no rust/user_worker.html"
	grep -q 'href="user_worker.html"' "$out/index.html" 2>/dev/null ||
		bad "Documentation/rust/index.rst's toctree does not link user_worker"
	[ $failed -eq 0 ] && info "ok: make htmldocs SPHINXDIRS=rust on Linux $TREE: user_worker.rst with no warning, in rust/index.rst's toctree ($secs s; $others upstream warning(s) in ${log#"$ROOT"/})"
	;;
*) die "usage: docs.sh rustdoc|htmldocs OBJ" ;;
esac
exit $failed
