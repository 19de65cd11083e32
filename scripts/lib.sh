# SPDX-License-Identifier: GPL-2.0
# Common helpers for the vhost-task-rs scripts. Source it, do not run it.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
TOOLS=$BUILD/tools
# The Debian tree is unpacked here unless KDIR names another tree.
DEFAULT_KDIR=$BUILD/linux-source-6.12
KDIR=${KDIR:-$DEFAULT_KDIR}
export PATH="$TOOLS/bin:$PATH"

# ccache for the C side: the cache lives outside the clone so a fresh clone
# on a machine that built before rebuilds in minutes.
export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/vhost-task-rs-ccache}
export CCACHE_BASEDIR=$BUILD
export CCACHE_NOHASHDIR=true
export CCACHE_SLOPPINESS=time_macros,include_file_mtime,include_file_ctime

JOBS=${JOBS:-$(nproc)}

# bindgen loads whichever libclang it finds first; with several LLVMs installed
# that may not be the one matching clang. Name it.
export LIBCLANG_PATH=${LIBCLANG_PATH:-/usr/lib/llvm-14/lib}

stage() { printf '==> %s\n' "$*" >&2; }
info() { printf '    %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

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

# Fail unless $1 is a kernel tree of 6.12 or newer that has vhost_task.
check_tree() {
	local k=$1 v major minor
	[ -f "$k/Makefile" ] && [ -f "$k/Kconfig" ] || die "KDIR=$k is not a kernel source tree"
	v=$(tree_version "$k") || die "cannot read the kernel version of $k"
	major=${v%%.*}
	minor=${v#*.}
	minor=${minor%%.*}
	if [ "$major" -lt 6 ] || { [ "$major" -eq 6 ] && [ "$minor" -lt 12 ]; }; then
		die "KDIR=$k is Linux $v; this project needs 6.12 or newer"
	fi
	[ -f "$k/kernel/vhost_task.c" ] && [ -f "$k/include/linux/sched/vhost_task.h" ] ||
		die "KDIR=$k has no kernel/vhost_task.c or include/linux/sched/vhost_task.h"
	echo "$v"
}

# The make invocation for a build directory of $KDIR.
kmake() {
	local obj=$1
	shift
	make -C "$KDIR" O="$obj" LLVM=1 ARCH=x86_64 -j"$JOBS" \
		CC="ccache clang" "$@"
}

# The pinned toolchain for every rustc/cargo the scripts run, wherever KDIR is.
RUSTUP_TOOLCHAIN=$(sed -n 's/^channel *= *"\(.*\)"/\1/p' "$ROOT/rust-toolchain.toml")
export RUSTUP_TOOLCHAIN

# The image a kernel variant (rust, c, debug) leaves, at the path the README names.
imagefile() {
	case $1 in
	rust) echo "$BUILD/bzImage" ;;
	*) echo "$BUILD/bzImage-$1" ;;
	esac
}

# The build directory of a kernel variant (rust, c, debug). Another KDIR gets
# directories of its own, so that switching trees never mixes their objects.
objdir() {
	if [ "$KDIR" = "$DEFAULT_KDIR" ]; then
		echo "$BUILD/obj-$1"
	else
		echo "$BUILD/obj-$1-$(realpath "$KDIR" | sha1sum | cut -c1-8)"
	fi
}
