#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Boot a test guest under QEMU (TCG: KVM hangs on these machines; VT_KVM=1
# tries it) and run one command in it. Prints the guest's console and exits
# with the command's exit status, or 124 on a timeout, 125 if the guest died
# without reporting one.
#
# --icount runs the guest with -icount shift=0,align=off,sleep=off on one
# host thread (icount rules out multi-threaded TCG): guest time counts
# executed instructions, 1 ns each, and idle time is skipped, so timings do
# not depend on the host's load. Without it, guest time is wall-clock time.
#
#   vm.sh [--image F] [--timeout S] [--log F] [--append ARGS] [--icount] --initramfs CMD...
#       boots the busybox initramfs and runs "vhost-e2e CMD..."
#   vm.sh [--image F] [--timeout S] [--log F] [--append ARGS] [--icount] --hostfs SCRIPT
#       boots over the host's root filesystem (9p, read-only) and runs SCRIPT
#   --logdir DIR  shares DIR with the guest, writable, as VT_LOG_DIR (hostfs only)
#
# The image's modules (build/modules... next to it, scripts/build-kernel.sh) are the
# guest's /lib/modules: packed into the initramfs, or linked there over the host root.
# The guest's init loads VT_MODPROBE (default: vhost_net vhost_vsock vhost_scsi tun
# kvm_amd user_worker_test) with modprobe before it runs the command; VT_MODPROBE=
# loads none.
. "$(dirname "$0")/lib.sh"

image=$(imagefile rust)
timeout=300
log=
append=
mode=
logdir=
icount=0
while [ $# -gt 0 ]; do
	case $1 in
	--image) image=$2; shift 2 ;;
	--timeout) timeout=$2; shift 2 ;;
	--log) log=$2; shift 2 ;;
	--append) append="$append $2"; shift 2 ;;
	--logdir) logdir=$2; shift 2 ;;
	--icount) icount=1; shift ;;
	--initramfs) mode=initramfs; shift; break ;;
	--hostfs) mode=hostfs; shift; break ;;
	*) die "vm.sh: unknown option $1" ;;
	esac
done
[ -n "$mode" ] || die "vm.sh: --initramfs or --hostfs is required"
[ -f "$image" ] || die "no kernel image $image (run 'make kernel')"
need qemu-system-x86_64

# q35: its ACPI tables route PCI interrupts statically. i440fx's _PRT method
# loops in AML, and a guest starved on a loaded host, or whose clock ran
# fast after a bad TSC calibration, aborts it (AE_AML_LOOP_TIMEOUT) and is
# left without virtio interrupts (issue 7).
args=(-machine q35 -kernel "$image" -m 2G -smp 2 -nographic -no-reboot -bios qboot.rom
	-device virtio-rng-pci)
if [ $icount = 1 ]; then
	args+=(-accel tcg,thread=single -cpu max -icount shift=0,align=off,sleep=off)
elif [ "${VT_KVM:-0}" = 1 ]; then
	args+=(-enable-kvm -cpu host)
else
	args+=(-accel tcg,thread=multi -cpu max)
fi
cmdline="console=ttyS0 panic=-1 loglevel=4 $append"
mods=$(moddir "$image")
[ -d "$mods/lib/modules" ] ||
	die "no modules of $image in ${mods#"$ROOT"/} (rebuild it with scripts/build-kernel.sh)"
modprobe=${VT_MODPROBE-vhost_net vhost_vsock vhost_scsi tun kvm_amd user_worker_test}
[ -z "$modprobe" ] || cmdline="$cmdline vt.modprobe=$(echo $modprobe | tr ' ' ,)"
case $mode in
initramfs)
	"$ROOT/scripts/mk-initramfs.sh"
	# The initramfs, then the image's modules: the kernel unpacks both archives.
	initrd=$mods.initramfs.cpio.gz
	if [ ! -f "$initrd" ] || [ "$BUILD/initramfs.cpio.gz" -nt "$initrd" ] || [ "$mods" -nt "$initrd" ]; then
		(cat "$BUILD/initramfs.cpio.gz" &&
			cd "$mods" && find lib | cpio -o -H newc --quiet | gzip -1) >"$initrd.tmp"
		mv "$initrd.tmp" "$initrd"
	fi
	args+=(-initrd "$initrd")
	cmdline="$cmdline rdinit=/init vt.cmd=$(IFS=,; echo "$*")"
	;;
hostfs)
	[ $# -eq 1 ] || die "vm.sh --hostfs takes one script"
	args+=(-fsdev "local,id=root,path=/,security_model=none,readonly=on,multidevs=remap"
		-device "virtio-9p-pci,fsdev=root,mount_tag=/dev/root")
	if [ -n "$logdir" ]; then
		mkdir -p "$logdir"
		args+=(-fsdev "local,id=vtlog,path=$(realpath "$logdir"),security_model=none"
			-device "virtio-9p-pci,fsdev=vtlog,mount_tag=vtlog")
		cmdline="$cmdline vt.log=1"
	fi
	cmdline="$cmdline vt.modules=$(realpath "$mods")"
	cmdline="$cmdline root=/dev/root rootfstype=9p rootflags=trans=virtio,version=9p2000.L,cache=loose,msize=512000 ro init=$ROOT/tests/guest/init.sh vt.script=$(realpath "$1")"
	;;
esac

log=${log:-$BUILD/log/vm-$$.log}
mkdir -p "$(dirname "$log")"
rc=0
timeout --foreground -k 5 "$timeout" qemu-system-x86_64 "${args[@]}" -append "$cmdline" \
	</dev/null 2>&1 | stdbuf -oL tr -d '\r' | tee "$log" || rc=$?
if grep -q '^VT-EXIT=' "$log"; then
	exit "$(sed -n 's/^VT-EXIT=\([0-9]*\).*/\1/p' "$log" | tail -n 1)"
fi
if [ "$rc" = 124 ]; then
	echo "error: the guest did not finish within ${timeout}s (log: $log)" >&2
	exit 124
fi
echo "error: the guest stopped without reporting an exit status (log: $log)" >&2
grep -E 'Kernel panic|BUG:|Oops' "$log" | head -n 5 >&2 || true
exit 125
