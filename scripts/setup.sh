#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Install what the project needs and is missing, and nothing else, for every
# supported tree: Debian packages (both trees' LLVM), rust-src for the pinned
# toolchain, each tree's bindgen-cli into its build/tools[-TREE], b4 into build/b4 and
# trinity into build/tools/trinity. A second run finds nothing to do and says so.
. "$(dirname "$0")/lib.sh"

TOOLCHAIN=$RUSTUP_TOOLCHAIN
[ -n "$TOOLCHAIN" ] || die "no channel in rust-toolchain.toml"

# Debian packages, and a file each one provides to tell if it is there.
PKGS=(
	# 6.12's source; 7.3's comes from trixie-backports through scripts/get-tree.sh.
	"linux-source-6.12:/usr/src/linux-source-6.12.tar.xz"
	# Debian's default LLVM (14) for 6.12; for 7.3 (which needs 17 or newer) LLVM 22 from
	# bookworm-security, the LLVM of the pinned rustc, so that 7.3 inlines its C helpers.
	"clang:/usr/bin/clang"
	"lld:/usr/bin/ld.lld"
	"llvm:/usr/bin/llvm-ar"
	"libclang-dev:/usr/lib/llvm-14/lib/libclang.so"
	"clang-22:/usr/bin/clang-22"
	"lld-22:/usr/bin/ld.lld-22"
	"llvm-22:/usr/bin/llvm-ar-22"
	"libclang-22-dev:/usr/lib/llvm-22/lib/libclang.so"
	"debian-archive-keyring:/usr/share/keyrings/debian-archive-keyring.gpg"
	"flex:/usr/bin/flex"
	"bison:/usr/bin/bison"
	"bc:/usr/bin/bc"
	"libelf-dev:/usr/include/libelf.h"
	"libssl-dev:/usr/include/openssl/ssl.h"
	# gendwarfksyms, the MODVERSIONS of Rust in 7.3 (make modversions)
	"libdw-dev:/usr/include/elfutils/libdw.h"
	"zlib1g-dev:/usr/include/zlib.h"
	"cpio:/usr/bin/cpio"
	"xz-utils:/usr/bin/xz"
	"dwarves:/usr/bin/pahole"
	"ccache:/usr/bin/ccache"
	# depmod for modules_install, modprobe/rmmod in the guests (over the host root).
	"kmod:/usr/bin/kmod"
	"qemu-system-x86:/usr/bin/qemu-system-x86_64"
	"busybox-static:/bin/busybox"
	"iproute2:/sbin/ip"
	"python3:/usr/bin/python3"
	"python3-matplotlib:/usr/lib/python3/dist-packages/matplotlib/__init__.py"
	"make:/usr/bin/make"
	"libc6-dev:/usr/lib/x86_64-linux-gnu/libc.a"
	# make patches: b4's virtual environment (below), and the docs it checks: Sphinx
	# for 'make htmldocs', PyYAML for 7.3's Documentation/conf.py (parser_yaml).
	"python3-venv:/usr/lib/python3.11/ensurepip/__init__.py"
	"python3-sphinx:/usr/bin/sphinx-build"
	"python3-yaml:/usr/lib/python3/dist-packages/yaml/__init__.py"
	# checkpatch.pl's SPDX check (scripts/spdxcheck.py), which 'b4 prep --check' runs.
	"python3-ply:/usr/lib/python3/dist-packages/ply/__init__.py"
	"python3-git:/usr/lib/python3/dist-packages/git/__init__.py"
)

did=0
missing=()
for p in "${PKGS[@]}"; do
	[ -e "${p#*:}" ] || missing+=("${p%%:*}")
done
if [ ${#missing[@]} -gt 0 ]; then
	[ "$(id -u)" -eq 0 ] || SUDO=sudo
	command -v apt-get >/dev/null || die "missing Debian packages (${missing[*]}) and no apt-get to install them"
	stage "installing Debian packages: ${missing[*]}"
	logged "$BUILD/log/apt.log" ${SUDO:-} apt-get update
	DEBIAN_FRONTEND=noninteractive logged "$BUILD/log/apt.log" \
		${SUDO:-} apt-get install -y --no-install-recommends "${missing[@]}"
	did=1
fi

command -v rustup >/dev/null || die "missing tool 'rustup' (install Rust with rustup first)"
if ! rustup toolchain list | grep "^$TOOLCHAIN" >/dev/null; then
	stage "installing Rust toolchain $TOOLCHAIN"
	logged "$BUILD/log/rustup.log" rustup toolchain install "$TOOLCHAIN" --profile minimal
	did=1
fi
installed=$(rustup component list --toolchain "$TOOLCHAIN" --installed)
for c in rust-src rustfmt clippy; do
	if ! grep -q "^$c" <<<"$installed"; then
		stage "installing rustup component $c for $TOOLCHAIN"
		logged "$BUILD/log/rustup.log" rustup component add "$c" --toolchain "$TOOLCHAIN"
		did=1
	fi
done

# Each tree's bindgen-cli, in its own directory: 6.12 stays on the one its
# objects were built with, 7.3 needs 0.71.1 or newer.
for t in "${SUPPORTED_TREES[@]}"; do
	tree_toolchain "$t"
	if ! "$TOOLS/bin/bindgen" --version 2>/dev/null | grep " $BINDGEN_VERSION\$" >/dev/null; then
		stage "installing bindgen-cli $BINDGEN_VERSION for Linux $t into ${TOOLS#"$ROOT"/} (a few minutes)"
		logged "$BUILD/log/bindgen-$t.log" cargo +"$TOOLCHAIN" install --locked --force \
			bindgen-cli --version "$BINDGEN_VERSION" --root "$TOOLS"
		did=1
	fi
done

# b4, which 'make patches' prepares and writes the series with, pinned, in a virtual
# environment of Debian's python3 under build/b4 (only PyPI is reached: b4 itself never
# fetches from lore nor sends mail here, see scripts/patches.sh).
B4_VERSION=0.16.0
B4_VENV=$BUILD/b4
B4=$B4_VENV/bin/b4
if ! "$B4" --version 2>/dev/null | grep -qx "$B4_VERSION"; then
	stage "installing b4 $B4_VERSION from PyPI into ${B4_VENV#"$ROOT"/}"
	rm -rf "$B4_VENV"
	logged "$BUILD/log/b4.log" /usr/bin/python3 -m venv "$B4_VENV"
	logged "$BUILD/log/b4.log" "$B4_VENV/bin/pip" install --quiet "b4==$B4_VERSION"
	did=1
fi

# trinity, Dave Jones's system call fuzzer, for the trinity suites (tests/e2e/src/trinity.rs),
# unpacked under build/tools/trinity and never installed on the system. From trixie: bookworm's
# build has no DRM fd provider, the one way to hand it device nodes that it then sends their
# driver's ioctls (the vhost and KVM nodes stand in /dev/dri in the guest). Trixie's trinity
# needs trixie's C library: unpacked beside it, and used through its own loader.
TRINITY_ROOT=$BUILD/tools/trinity
if [ ! -x "$TRINITY_ROOT/usr/bin/trinity" ]; then
	stage "installing trinity and its C library from Debian trixie into ${TRINITY_ROOT#"$ROOT"/}"
	rm -rf "$TRINITY_ROOT.tmp"
	for deb in $(apt_fetch "$BUILD/apt-trixie" trixie trinity libc6); do
		dpkg-deb -x "$deb" "$TRINITY_ROOT.tmp"
	done
	rm -rf "$TRINITY_ROOT"
	mv "$TRINITY_ROOT.tmp" "$TRINITY_ROOT"
	did=1
fi

if [ $did -eq 0 ]; then
	info "setup: nothing to do, every tool is installed"
fi
