#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# PID 1 of the test guests (scripts/vm.sh). Mounts what the tests need (with
# busybox mount: over the host root, util-linux would read the host's /proc), runs
# the command the kernel command line names, prints its exit status as
# "VT-EXIT=<n>" for the host and powers off.
#   vt.cmd=a,b,c      run "/bin/vhost-e2e a b c" (busybox initramfs)
#   vt.script=/path   run that script (host root filesystem over 9p)
#   vt.modules=/path  the kernel's modules, /path/lib/modules/RELEASE, made the guest's
#                     /lib/modules (over the host root, which has none of its own)
#   vt.modprobe=a,b   load these modules first, with modprobe

export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
bb=/bin/busybox

$bb mount -t proc proc /proc
$bb mount -t sysfs sysfs /sys
$bb mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts /dev/shm
$bb mount -t devpts devpts /dev/pts
$bb mount -t tmpfs tmpfs /dev/shm
$bb mount -t cgroup2 cgroup2 /sys/fs/cgroup
if [ ! -w / ]; then
	# Host root over 9p, read-only: make the usual scratch directories writable
	# with an overlay, so that what the host has there (this project, if it
	# lives under /tmp or /root) stays visible.
	for d in /tmp /run /var/tmp /root; do
		o=/dev/shm/overlay$(echo "$d" | tr / _)
		mkdir -p "$o/upper" "$o/work"
		$bb mount -t overlay overlay \
			-o "lowerdir=$d,upperdir=$o/upper,workdir=$o/work" "$d" ||
			$bb mount -t tmpfs tmpfs "$d"
	done
fi
[ -e /dev/fd ] || ln -s /proc/self/fd /dev/fd

cmd=
script=
modules=
modprobe=
for arg in $(cat /proc/cmdline); do
	case $arg in
	vt.cmd=*) cmd=$(echo "${arg#vt.cmd=}" | tr , ' ') ;;
	vt.script=*) script=${arg#vt.script=} ;;
	vt.modules=*) modules=${arg#vt.modules=} ;;
	vt.modprobe=*) modprobe=$(echo "${arg#vt.modprobe=}" | tr , ' ') ;;
	esac
done

# The kernel's modules as /lib/modules (= /usr/lib/modules), through an overlay of /usr/lib:
# the host root is read-only and has no /lib/modules.
if [ -n "$modules" ] && [ ! -d /lib/modules/"$(uname -r)" ]; then
	o=/dev/shm/overlay_usr_lib
	mkdir -p "$o/upper" "$o/work"
	$bb mount -t overlay overlay -o "lowerdir=/usr/lib,upperdir=$o/upper,workdir=$o/work" /usr/lib ||
		echo "init: cannot overlay /usr/lib for the modules"
	rm -rf /usr/lib/modules
	ln -s "$modules/lib/modules" /usr/lib/modules
fi
for m in $modprobe; do
	modprobe "$m" || echo "init: modprobe $m failed"
done
# A writable directory of the host's for the tests' logs (vm.sh --logdir).
if grep -q ' vt\.log=1' /proc/cmdline; then
	mkdir -p /run/vt-log
	$bb mount -t 9p -o trans=virtio,version=9p2000.L vtlog /run/vt-log &&
		export VT_LOG_DIR=/run/vt-log
fi
hostname guest
ip link set lo up 2>/dev/null

if [ -n "$script" ]; then
	sh "$script"
	rc=$?
elif [ -n "$cmd" ]; then
	# shellcheck disable=SC2086
	/bin/vhost-e2e $cmd
	rc=$?
else
	echo "init: no vt.cmd= or vt.script= on the command line"
	rc=2
fi
echo "VT-EXIT=$rc"
$bb poweroff -f
