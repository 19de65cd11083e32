# SPDX-License-Identifier: GPL-2.0
# Common helpers for the vhost-task-rs scripts. Source it, do not run it.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}

stage() { printf '==> %s\n' "$*" >&2; }
info() { printf '    %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# The supported kernel trees, oldest first. TREE picks one (default 6.12);
# KDIR=/path uses another copy of a supported tree, whose version picks TREE.
# To add a tree, add it here and to tree_toolchain below (docs/trees.md, "Adding a
# tree").
SUPPORTED_TREES=(6.12 7.3)
DEFAULT_TREE=6.12

# Download the newest packages PKG... of Debian's SUITE (bookworm's own if empty) with a
# private apt configuration in DIR (the system's sources are left alone), and print their
# paths, one a line. apt checks each against the signed index, and so does this, once more.
#   apt_fetch DIR SUITE PKG...
apt_fetch() {
	local dir=$1 suite=$2 apt pkg ver sha deb
	shift 2
	mkdir -p "$dir/lists/partial" "$dir/cache/archives/partial" "$dir/deb"
	echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] ${DEBIAN_MIRROR:-http://deb.debian.org/debian} ${suite:-bookworm} main" \
		>"$dir/sources.list"
	apt=(-o Dir::Etc::SourceList="$dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
		-o Dir::State::Lists="$dir/lists" -o Dir::Cache="$dir/cache"
		-o Dir::State::status=/dev/null -o APT::Architecture=amd64 -o Debug::NoLocking=1)
	[ -f /usr/share/keyrings/debian-archive-keyring.gpg ] ||
		die "missing /usr/share/keyrings/debian-archive-keyring.gpg (run 'make setup')"
	stage "fetching $* from Debian ${suite:-bookworm} (private apt configuration in ${dir#"$ROOT"/})"
	logged "$dir/apt.log" apt-get "${apt[@]}" update
	rm -f "$dir/deb/"*.deb
	for pkg in "$@"; do
		ver=$(apt-cache "${apt[@]}" policy "$pkg" | awk '/Candidate:/ { print $2 }')
		[ -n "$ver" ] && [ "$ver" != "(none)" ] || die "$pkg is not in Debian ${suite:-bookworm}"
		sha=$(apt-cache "${apt[@]}" show "$pkg=$ver" | awk '/^SHA256:/ { print $2; exit }')
		(cd "$dir/deb" && logged "$dir/apt.log" apt-get "${apt[@]}" download "$pkg=$ver")
		deb=$(ls "$dir/deb/${pkg}_"*.deb)
		[ "$(sha256sum <"$deb" | cut -d' ' -f1)" = "$sha" ] ||
			die "$deb does not match the SHA256 of $pkg $ver in the signed index"
		info "$pkg $ver, SHA256 $sha (matches the signed index)"
		echo "$deb"
	done
}

# "6.12" for a tree whose top Makefile says VERSION = 6, PATCHLEVEL = 12.
kdir_series() {
	awk '/^VERSION *=/ { v = $3 } /^PATCHLEVEL *=/ { p = $3 }
		END { if (v != "" && p != "") print v "." p }' "$1/Makefile" 2>/dev/null
}

# The per-tree toolchain: each tree gets its own bindgen in build/tools[-TREE]
# and its own LLVM, so that building one never changes what the other uses
# (and never invalidates its compiler cache).
#   TOOLS          where bindgen-cli BINDGEN_VERSION is installed
#   LLVM_SUFFIX    "" for Debian's default clang, "-22" for clang-22 (LLVM=-22)
#   LIBCLANG_DIR   bindgen's libclang, the same LLVM as the compiler (LIBCLANG_PATH)
#   TREE_TAG       "" for 6.12, "-7.3" otherwise: suffix of test names, images, build dirs
tree_toolchain() {
	case $1 in
	6.12)
		TOOLS=$BUILD/tools
		BINDGEN_VERSION=0.69.5
		LLVM_SUFFIX=
		LIBCLANG_DIR=/usr/lib/llvm-14/lib
		;;
	7.3)
		# LLVM 22, the LLVM of rustc 1.95, so that CONFIG_RUST_INLINE_HELPERS can inline
		# the C helpers into Rust (configs/tree-7.3.config); libclang 22 needs bindgen
		# 0.72.1 or newer (0.71.1 loses struct fields with it).
		TOOLS=$BUILD/tools-7.3
		BINDGEN_VERSION=0.72.1
		LLVM_SUFFIX=-22
		LIBCLANG_DIR=/usr/lib/llvm-22/lib
		;;
	*) die "no toolchain known for tree '$1'" ;;
	esac
	TREE_TAG=-$1
	[ "$1" != "$DEFAULT_TREE" ] || TREE_TAG=
}

# Select tree $1 (one of SUPPORTED_TREES) with kernel tree $2 (default: the
# Debian one unpacked under build/). Sets TREE, KDIR, DEFAULT_KDIR, TOOLS and
# the rest of tree_toolchain, and puts the tree's bindgen first in PATH.
select_tree() {
	local t=$1 k=${2:-}
	case " ${SUPPORTED_TREES[*]} " in
	*" $t "*) ;;
	*) die "TREE=$t is not a supported tree (tried: ${SUPPORTED_TREES[*]})" ;;
	esac
	TREE=$t
	DEFAULT_KDIR=$BUILD/linux-source-$t
	KDIR=${k:-$DEFAULT_KDIR}
	tree_toolchain "$t"
	PATH="$TOOLS/bin:${BASE_PATH}"
	export TREE KDIR PATH
	# Always named: with libclang-22-dev installed, bindgen would pick the newest libclang
	# found, 22, for 6.12 too, whose clang-14 flags it rejects.
	export LIBCLANG_PATH=$LIBCLANG_DIR
}

# The tree to build for a tree that the user names with KDIR=. The scripts link this project
# into the tree they build (scripts/link-tree.sh edits kernel/Makefile, drivers/vhost/Kconfig
# and rust/), so they never use the user's own tree: a git tree's HEAD is cloned into
# build/trees/, and the clone follows its HEAD; another tree is refused, with the command that
# copies it. A KDIR under build/ is the project's own, and is used as it is;
# VT_KDIR_IN_PLACE=1 links into KDIR itself.
own_tree() {
	local k head copy
	k=$(realpath "$1")
	case $k in "$BUILD"/*) echo "$k" && return ;; esac
	[ "${VT_KDIR_IN_PLACE:-0}" != 1 ] || { echo "$k" && return; }
	head=$(git -C "$k" rev-parse -q --verify HEAD 2>/dev/null) ||
		die "KDIR=$k is not a git tree. The build links this project into the tree it builds, so it works on a copy: run 'mkdir -p $BUILD/trees && cp -a $k $BUILD/trees/' and pass KDIR=$BUILD/trees/$(basename "$k") (or VT_KDIR_IN_PLACE=1 to link into $k itself)"
	copy=$BUILD/trees/$(basename "$k")-$(echo "$k" | sha1sum | cut -c1-8)
	if [ ! -d "$copy/.git" ]; then
		stage "KDIR=$k: cloning its HEAD (${head:0:12}) into ${copy#"$ROOT"/}, which the build uses; KDIR itself is left alone (a few minutes)"
		rm -rf "$copy.tmp"
		mkdir -p "$BUILD/trees"
		git -c init.defaultBranch=master clone -q --shared --no-checkout "$k" "$copy.tmp" >&2 &&
			git -C "$copy.tmp" checkout -q --detach "$head" >&2 &&
			mv "$copy.tmp" "$copy" || die "could not clone KDIR=$k into $copy.tmp"
	elif [ "$(git -C "$copy" rev-parse HEAD)" != "$head" ]; then
		stage "KDIR=$k is at ${head:0:12} now: moving its copy in ${copy#"$ROOT"/} there"
		git -C "$copy" fetch -q "$k" "$head" >&2 && git -C "$copy" checkout -q -f --detach "$head" >&2 ||
			die "could not move $copy to the HEAD of KDIR=$k"
	fi
	git -C "$k" diff --quiet HEAD -- 2>/dev/null ||
		info "KDIR=$k has changes that are not committed: its copy has only its HEAD"
	echo "$copy"
}

BASE_PATH=${VT_BASE_PATH:-$PATH}
export VT_BASE_PATH=$BASE_PATH
if [ -n "${KDIR:-}" ] && [ "$KDIR" != "$BUILD/linux-source-${TREE:-$DEFAULT_TREE}" ]; then
	[ -f "$KDIR/Makefile" ] || die "KDIR=$KDIR is not a kernel source tree (no Makefile)"
	KDIR_GIVEN=$KDIR
	KDIR=$(own_tree "$KDIR")
	series=$(kdir_series "$KDIR")
	case " ${SUPPORTED_TREES[*]} " in
	*" $series "*) ;;
	*) die "KDIR=$KDIR is Linux ${series:-of unknown version}, which matches none of the supported trees (tried: ${SUPPORTED_TREES[*]})" ;;
	esac
	[ -z "${TREE:-}" ] || [ "$TREE" = "$series" ] ||
		die "KDIR=$KDIR is Linux $series but TREE=$TREE"
	select_tree "$series" "$KDIR"
else
	select_tree "${TREE:-$DEFAULT_TREE}" ""
fi

# ccache for the C side: the cache lives outside the clone so a fresh clone
# on a machine that built before rebuilds in minutes.
export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/vhost-task-rs-ccache}
export CCACHE_BASEDIR=$BUILD
export CCACHE_NOHASHDIR=true
export CCACHE_SLOPPINESS=time_macros,include_file_mtime,include_file_ctime

JOBS=${JOBS:-$(nproc)}

need() {
	local t
	for t in "$@"; do
		command -v "$t" >/dev/null 2>&1 || die "missing tool '$t' (run 'make setup')"
	done
}

# Run a long command with its output in a log; show the log's tail on failure.
logged() {
	local log=$1
	shift
	mkdir -p "$(dirname "$log")"
	if ! "$@" >"$log" 2>&1; then
		printf 'error: command failed: %s\n' "$*" >&2
		printf '  last lines of %s:\n' "$log" >&2
		# Compiler, linker and make errors, not object names such as scsi_error.o.
		grep -E '(^|[[:space:]])(error|Error|ERROR)[:[:space:]]|\*\*\*' "$log" |
			tail -n 20 | sed 's/^/  | /' >&2 || true
		tail -n 15 "$log" | sed 's/^/  | /' >&2
		return 1
	fi
}

# Kernel version of a tree as "6.12.117".
tree_version() {
	make -s -C "$1" kernelversion 2>/dev/null
}

# Fail unless $1 is a kernel tree with vhost_task; print its version.
check_tree() {
	local k=$1 v
	[ -f "$k/Makefile" ] && [ -f "$k/Kconfig" ] || die "KDIR=$k is not a kernel source tree"
	v=$(tree_version "$k") || die "cannot read the kernel version of $k"
	[ -f "$k/kernel/vhost_task.c" ] && [ -f "$k/include/linux/sched/vhost_task.h" ] ||
		die "KDIR=$k has no kernel/vhost_task.c or include/linux/sched/vhost_task.h"
	echo "$v"
}

# The LLVM tool $1 of the selected tree (llvm-nm, llvm-ar, clang...).
llvm_tool() {
	echo "$1$LLVM_SUFFIX"
}

# The make invocation for a build directory of $KDIR, with the tree's LLVM.
kmake() {
	local obj=$1
	shift
	make -C "$KDIR" O="$obj" LLVM="${LLVM_SUFFIX:-1}" ARCH=x86_64 -j"$JOBS" \
		CC="ccache clang$LLVM_SUFFIX" "$@"
}

# kunit.py exec of kernel tree $1 on the kernel built in $2, suites matching glob $3, under
# the project's QEMU (TCG only); further arguments go to kunit.py. Its output goes to stdout.
kunit_py_exec() {
	local tree=$1 build=$2 glob=$3
	shift 3
	(cd "$tree" && PATH="$ROOT/tests/kunit/bin:$PATH" python3 tools/testing/kunit/kunit.py exec \
		"$glob" --build_dir "$build" --arch x86_64 \
		--qemu_config "$ROOT/tests/kunit/qemu_x86_64.py" --timeout 1200 "$@")
}

# The pinned toolchain for every rustc/cargo the scripts run, wherever KDIR is.
RUSTUP_TOOLCHAIN=$(sed -n 's/^channel *= *"\(.*\)"/\1/p' "$ROOT/rust-toolchain.toml")
export RUSTUP_TOOLCHAIN

# What tells apart the builds of KDIR from those of the default tree: nothing
# for Debian's 6.12, "-7.3" for Debian's 7.3, a hash of the path for another
# KDIR. Switching trees never mixes their objects or images.
kdir_tag() {
	if [ "$KDIR" = "$DEFAULT_KDIR" ]; then
		echo "$TREE_TAG"
	else
		echo "-$(realpath "$KDIR" | sha1sum | cut -c1-8)"
	fi
}

# The image a kernel variant (rust, c, debug, modv) leaves, at the path docs/ names:
# build/bzImage, build/bzImage-c, build/bzImage-7.3, build/bzImage-c-7.3, ...
imagefile() {
	case $1 in
	rust) echo "$BUILD/bzImage$(kdir_tag)" ;;
	*) echo "$BUILD/bzImage-$1$(kdir_tag)" ;;
	esac
}

# Where the modules of kernel image $1 are installed (INSTALL_MOD_PATH): build/modules for
# build/bzImage, build/modules-c-7.3 for build/bzImage-c-7.3, and so on.
moddir() {
	local dir=${1%/*} base=${1##*/}
	echo "$dir/modules${base#bzImage}"
}

# The build directory of a kernel variant (rust, c, debug): build/obj-rust,
# build/obj-rust-7.3, ...
objdir() {
	echo "$BUILD/obj-$1$(kdir_tag)"
}
