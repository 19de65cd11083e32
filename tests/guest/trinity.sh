#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Run in the test guest (over the host's root filesystem) by scripts/test.sh's trinity suites:
# "vhost-e2e trinity", then kmemleak's scan, the warnings and errors of the whole kernel log
# and kmemleak's report, on the console for scripts/check-debug-log.sh on the host.
for arg in $(cat /proc/cmdline); do
	case $arg in
	vt.e2e=*) bin=${arg#vt.e2e=} ;;
	vt.trinity=*) root=${arg#vt.trinity=} ;;
	vt.calls=*) calls=${arg#vt.calls=} ;;
	vt.seeds=*) seeds=${arg#vt.seeds=} ;;
	esac
done
[ -x "$bin" ] || { echo "trinity: no test binary (vt.e2e=)"; exit 2; }
"$bin" trinity --root "$root" --calls "$calls" --seeds "$seeds"
rc=$?
"$bin" kmemleak-scan | grep -E 'unreferenced object|suspected leaks' | sed 's/^/# /'
dmesg --level=emerg,alert,crit,err,warn | sed 's/^/kmsg: /'
dmesg | grep -E 'kmemleak: [0-9]+ new suspected|unreferenced object' | sed 's/^/kmsg: /'
echo "kmsg: end of the kernel log"
exit $rc
