#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Build build/initramfs.cpio.gz: busybox, tests/guest/init.sh as /init and
# the static vhost-e2e binary (and upstream's vhost_net_test of each tree, when built), for
# plain 'qemu -kernel -initrd' boots.
. "$(dirname "$0")/lib.sh"

need cpio gzip cargo
[ -x /bin/busybox ] || die "missing /bin/busybox (Debian package busybox-static; run 'make setup')"
! ldd /bin/busybox >/dev/null 2>&1 || die "/bin/busybox is not static (install busybox-static)"

e2e=$("$ROOT/scripts/build-e2e.sh")
out=$BUILD/initramfs.cpio.gz
# Upstream's vhost_net_test of each tree, where scripts/build-vhost-net-test.sh built it
# ('make bench' does), as /bin/vhost_net_test-<tree>.
extra=()
for f in "$BUILD"/vhost_net_test-*/vhost_net_test; do
	[ ! -x "$f" ] || extra+=("$f")
done
fresh=1
for f in "$e2e" "$ROOT/tests/guest/init.sh" "${extra[@]}"; do
	[ -f "$out" ] && [ "$out" -nt "$f" ] || fresh=0
done
if [ $fresh = 1 ]; then
	exit 0
fi
stage "packing the initramfs (busybox + vhost-e2e)"
dir=$BUILD/initramfs
rm -rf "$dir"
mkdir -p "$dir"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,run,root,etc}
cp /bin/busybox "$dir/bin/busybox"
for app in $(/bin/busybox --list); do
	[ -e "$dir/bin/$app" ] || ln -s busybox "$dir/bin/$app"
done
cp "$e2e" "$dir/bin/vhost-e2e"
cp "$ROOT/tests/guest/init.sh" "$dir/init"
for f in "${extra[@]}"; do
	d=${f%/vhost_net_test}
	cp "$f" "$dir/bin/vhost_net_test${d##*/vhost_net_test}"
done
(cd "$dir" && find . | cpio -o -H newc --quiet | gzip -1) >"$out.tmp"
mv "$out.tmp" "$out"
