#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Run in the test guest (over the host's root filesystem) by scripts/test.sh's stress
# suites: "vhost-e2e stress", then the warnings and errors of the whole kernel log, and
# kmemleak's report, on the console for scripts/check-debug-log.sh on the host (the console
# itself runs at loglevel 4, which hides warnings; the fault reports stay out: they are
# notices and info).
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
dmesg --level=emerg,alert,crit,err,warn | sed 's/^/kmsg: /'
dmesg | grep -E 'kmemleak: [0-9]+ new suspected|unreferenced object' | sed 's/^/kmsg: /'
echo "kmsg: end of the kernel log"
exit $rc
