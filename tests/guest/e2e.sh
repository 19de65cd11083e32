#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Run in the test guest (over the host's root filesystem) by scripts/test.sh:
# the end-to-end suite, with the kernel and initramfs for the nested QEMU case.
for arg in $(cat /proc/cmdline); do
	case $arg in
	vt.e2e=*) bin=${arg#vt.e2e=} ;;
	vt.kernel=*) VT_KERNEL=${arg#vt.kernel=} ;;
	vt.initrd=*) VT_INITRD=${arg#vt.initrd=} ;;
	vt.filter=*) filter=${arg#vt.filter=} ;;
	vt.nested_machine=*) export VT_NESTED_MACHINE=${arg#vt.nested_machine=} ;;
	vt.nested_icount=*) export VT_NESTED_ICOUNT=${arg#vt.nested_icount=} ;;
	vt.nested_append=*) export VT_NESTED_APPEND=${arg#vt.nested_append=} ;;
	vt.nested_ack=*) export VT_NESTED_ACK=${arg#vt.nested_ack=} ;;
	vt.kvm_selftest=*) export VT_KVM_SELFTEST=${arg#vt.kvm_selftest=} ;;
	esac
done
export VT_KERNEL VT_INITRD
[ -x "$bin" ] || { echo "e2e: no test binary (vt.e2e=)"; exit 2; }
"$bin" test $filter
