#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Make sure there is a kernel tree: KDIR if given, else Debian's 6.12 tree
# unpacked under build/. Prints nothing when the tree is already there.
. "$(dirname "$0")/lib.sh"

if [ "$KDIR" = "$DEFAULT_KDIR" ] && [ ! -f "$KDIR/Makefile" ]; then
	tarball=/usr/src/linux-source-6.12.tar.xz
	[ -f "$tarball" ] || die "missing $tarball (Debian package linux-source-6.12; run 'make setup')"
	stage "unpacking $tarball into build/"
	rm -rf "$KDIR.tmp"
	mkdir -p "$KDIR.tmp"
	tar -C "$KDIR.tmp" --strip-components=1 -xf "$tarball"
	mv "$KDIR.tmp" "$KDIR"
	info "Linux $(tree_version "$KDIR") from Debian's linux-source-6.12"
fi
check_tree "$KDIR" >/dev/null
