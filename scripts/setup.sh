#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Install what the project needs and is missing, and nothing else:
# Debian packages, rust-src for the pinned toolchain, bindgen-cli into
# build/tools. A second run finds nothing to do and says so.
. "$(dirname "$0")/lib.sh"

BINDGEN_VERSION=0.69.5
TOOLCHAIN=$RUSTUP_TOOLCHAIN
[ -n "$TOOLCHAIN" ] || die "no channel in rust-toolchain.toml"

# Debian packages, and a file each one provides to tell if it is there.
PKGS=(
	"linux-source-6.12:/usr/src/linux-source-6.12.tar.xz"
	"clang:/usr/bin/clang"
	"lld:/usr/bin/ld.lld"
	"llvm:/usr/bin/llvm-ar"
	"libclang-dev:/usr/lib/llvm-14/lib/libclang.so"
	"flex:/usr/bin/flex"
	"bison:/usr/bin/bison"
	"bc:/usr/bin/bc"
	"libelf-dev:/usr/include/libelf.h"
	"libssl-dev:/usr/include/openssl/ssl.h"
	"cpio:/usr/bin/cpio"
	"xz-utils:/usr/bin/xz"
	"dwarves:/usr/bin/pahole"
	"ccache:/usr/bin/ccache"
	"qemu-system-x86:/usr/bin/qemu-system-x86_64"
	"busybox-static:/bin/busybox"
	"iproute2:/sbin/ip"
	"python3:/usr/bin/python3"
	"python3-matplotlib:/usr/lib/python3/dist-packages/matplotlib/__init__.py"
	"make:/usr/bin/make"
	"libc6-dev:/usr/lib/x86_64-linux-gnu/libc.a"
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

if ! "$TOOLS/bin/bindgen" --version 2>/dev/null | grep " $BINDGEN_VERSION\$" >/dev/null; then
	stage "installing bindgen-cli $BINDGEN_VERSION into build/tools (a few minutes)"
	logged "$BUILD/log/bindgen.log" cargo +"$TOOLCHAIN" install --locked --force \
		bindgen-cli --version "$BINDGEN_VERSION" --root "$TOOLS"
	did=1
fi

if [ $did -eq 0 ]; then
	info "setup: nothing to do, every tool is installed"
fi
