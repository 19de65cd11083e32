#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Run in a guest of the debug kernel by scripts/test.sh (suite lockdep-debug): the case that
# makes lockdep report a lock held across vhost_task_stop() that the kill handler takes. It
# runs alone in its boot, since lockdep switches itself off after its first report.
for arg in $(cat /proc/cmdline); do
	case $arg in
	vt.e2e=*) bin=${arg#vt.e2e=} ;;
	esac
done
[ -x "$bin" ] || { echo "lockdep: no test binary (vt.e2e=)"; exit 2; }
"$bin" lockdep
