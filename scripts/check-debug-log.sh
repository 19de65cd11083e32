#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Fail if a kernel log shows a splat of tests/splats.txt (the list the e2e crate checks too):
# a WARNING, a BUG, an oops, a panic, an RCU stall, a hung task, a lockdep, KASAN or UBSAN
# report, a kmemleak suspect. Prints the offending lines. The file's strict kinds (any stack
# trace) are left out: the logs checked here carry the traces of injected faults.
#   check-debug-log.sh LOG...
# Exits 0 if no log has a splat, 1 if one has, 2 if a log cannot be read.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 LOG..." >&2; exit 2; }
splats=$(dirname "$0")/../tests/splats.txt
# The texts: the lines that are neither comments nor blank, without their kind.
patterns=$(sed -nE '/^[[:space:]]*(#|$)/d; /^strict:/d
	s/[[:space:]]+$//; s/^[^[:space:]]+[[:space:]]+//p' "$splats")
[ -n "$patterns" ] || { echo "error: no splats in $splats" >&2; exit 2; }
rc=0
grep -ahF -e "$patterns" -- "$@" >&2 || rc=$?
case $rc in
0)
	echo "error: the kernel reported the problems above" >&2
	exit 1
	;;
1) ;;
*)
	echo "error: cannot read the logs $*" >&2
	exit 2
	;;
esac
