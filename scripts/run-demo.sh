#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# 'make run': boot build/bzImage (TREE=7.3: build/bzImage-7.3) from the busybox initramfs under QEMU and run
# 'vhost-e2e demo': a process becomes the owner of /dev/vhost-net, once with a
# vhost_task worker and once with a kthread, and shows where the worker lives.
. "$(dirname "$0")/lib.sh"

image=$(imagefile rust)
"$ROOT/scripts/mk-initramfs.sh"
stage "booting ${image#"$ROOT"/} (Linux $TREE) under QEMU (TCG) with the busybox initramfs"
rc=0
"$ROOT/scripts/vm.sh" --image "$image" --timeout 300 --log "$BUILD/log/run.log" \
	--append "loglevel=2" --initramfs demo | grep -v -e '^VT-EXIT=' -e '^reboot: ' || true
rc=${PIPESTATUS[0]}
[ "$rc" -eq 0 ] || die "the demo failed (exit status $rc); the guest's console is in build/log/run.log"
