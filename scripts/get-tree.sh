#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Make sure there is a kernel tree: KDIR if given, else the Debian tree of
# TREE unpacked under build/linux-source-TREE. Prints nothing when the tree
# is already there.
#   6.12  /usr/src/linux-source-6.12.tar.xz, from bookworm's linux-source-6.12
#         (installed by scripts/setup.sh)
#   7.3   linux-source-7.3 from trixie-backports, fetched with a private apt
#         configuration under build/apt-7.3 (the system's sources are left
#         alone); apt checks the package against the signed index, and so
#         does this script, once more, before unpacking it.
. "$(dirname "$0")/lib.sh"

# The Debian package of a tree, and the suite it comes from ("" for the system's).
deb_suite() {
	case $1 in
	6.12) echo "" ;;
	7.3) echo "trixie-backports" ;;
	esac
}

# GET_TREE_DEST=dir unpacks a pristine copy of Debian's tree there instead (scripts/patches.sh),
# from the package fetched before if there is one.
dest=${GET_TREE_DEST:-$KDIR}
if { [ "$KDIR" = "$DEFAULT_KDIR" ] || [ -n "${GET_TREE_DEST:-}" ]; } && [ ! -f "$dest/Makefile" ]; then
	suite=$(deb_suite "$TREE")
	rm -rf "$dest.tmp"
	mkdir -p "$dest.tmp"
	if [ -z "$suite" ]; then
		tarball=/usr/src/linux-source-$TREE.tar.xz
		[ -f "$tarball" ] || die "missing $tarball (Debian package linux-source-$TREE; run 'make setup')"
		from="Debian's linux-source-$TREE"
	else
		deb=$(ls "$BUILD/apt-$TREE/deb/"*.deb 2>/dev/null | head -n 1 || true)
		[ -n "${GET_TREE_DEST:-}" ] && [ -n "$deb" ] ||
			deb=$(apt_fetch "$BUILD/apt-$TREE" "$suite" "linux-source-$TREE")
		rm -rf "$BUILD/apt-$TREE/x"
		dpkg-deb -x "$deb" "$BUILD/apt-$TREE/x"
		tarball=$BUILD/apt-$TREE/x/usr/src/linux-source-$TREE.tar.xz
		[ -f "$tarball" ] || die "$deb has no usr/src/linux-source-$TREE.tar.xz"
		from="Debian's $(basename "$deb" _all.deb) ($suite)"
	fi
	stage "unpacking $(basename "$tarball") into ${dest#"$ROOT"/}"
	tar -C "$dest.tmp" --strip-components=1 -xf "$tarball"
	rm -rf "$BUILD/apt-$TREE/x"
	mkdir -p "$(dirname "$dest")"
	mv "$dest.tmp" "$dest"
	info "Linux $(tree_version "$dest") from $from"
fi
check_tree "$dest" >/dev/null
