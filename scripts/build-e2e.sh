#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Build the static vhost-e2e binary (tests/e2e) and print its path.
. "$(dirname "$0")/lib.sh"

need cargo
target=x86_64-unknown-linux-gnu
bin=$ROOT/target/$target/release/vhost-e2e
# Static, so that it runs in the busybox initramfs as well as over the host's root.
RUSTFLAGS="-C target-feature=+crt-static" logged "$BUILD/log/e2e-build.log" \
	cargo build --manifest-path "$ROOT/Cargo.toml" --release --locked --target $target -p vhost-e2e
echo "$bin"
