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

# Download linux-source-$TREE with a private apt configuration into $1 and
# print the .deb's path.
fetch_deb() {
	local dir=$1 suite pkg=linux-source-$TREE apt
	suite=$(deb_suite "$TREE")
	mkdir -p "$dir/lists/partial" "$dir/cache/archives/partial" "$dir/deb"
	echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] ${DEBIAN_MIRROR:-http://deb.debian.org/debian} $suite main" \
		>"$dir/sources.list"
	apt=(-o Dir::Etc::SourceList="$dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
		-o Dir::State::Lists="$dir/lists" -o Dir::Cache="$dir/cache"
		-o Dir::State::status=/dev/null -o Debug::NoLocking=1)
	[ -f /usr/share/keyrings/debian-archive-keyring.gpg ] ||
		die "missing /usr/share/keyrings/debian-archive-keyring.gpg (run 'make setup')"
	stage "fetching $pkg from Debian $suite (private apt configuration in ${dir#"$ROOT"/})"
	logged "$dir/apt.log" apt-get "${apt[@]}" update
	local ver sha
	ver=$(apt-cache "${apt[@]}" policy "$pkg" | awk '/Candidate:/ { print $2 }')
	[ -n "$ver" ] && [ "$ver" != "(none)" ] || die "$pkg is not in Debian $suite"
	sha=$(apt-cache "${apt[@]}" show "$pkg=$ver" | awk '/^SHA256:/ { print $2; exit }')
	rm -f "$dir/deb/"*.deb
	(cd "$dir/deb" && logged "$dir/apt.log" apt-get "${apt[@]}" download "$pkg=$ver")
	local deb
	deb=$(ls "$dir/deb/"*.deb)
	# apt-get checked it already; check the file we unpack against the signed index too.
	[ "$(sha256sum <"$deb" | cut -d' ' -f1)" = "$sha" ] ||
		die "$deb does not match the SHA256 of $pkg $ver in the signed index"
	info "$pkg $ver, SHA256 $sha (matches the signed index)"
	echo "$deb"
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
		[ -n "${GET_TREE_DEST:-}" ] && [ -n "$deb" ] || deb=$(fetch_deb "$BUILD/apt-$TREE")
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
