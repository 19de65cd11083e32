#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Run in the test guest (over the host's root filesystem) by scripts/test.sh's stress
# suites: "vhost-e2e stress", then the whole kernel log into the shared log directory,
# for scripts/check-debug-log.sh on the host.
scale=1
filter=
for arg in $(cat /proc/cmdline); do
	case $arg in
	vt.e2e=*) bin=${arg#vt.e2e=} ;;
	vt.scale=*) scale=${arg#vt.scale=} ;;
	vt.filter=*) filter=${arg#vt.filter=} ;;
	esac
done
[ -x "$bin" ] || { echo "stress: no test binary (vt.e2e=)"; exit 2; }
"$bin" stress --scale "$scale" $filter
rc=$?
if [ -n "$VT_LOG_DIR" ]; then
	dmesg >"$VT_LOG_DIR/dmesg.txt" 2>&1 || /bin/busybox dmesg >"$VT_LOG_DIR/dmesg.txt"
fi
exit $rc
