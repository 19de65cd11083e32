#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Fail if a debug kernel's log shows a lockdep report, a KASAN report, a
# kmemleak suspect, a WARNING or a BUG. Prints the offending lines.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 LOG..." >&2; exit 2; }
# Lockdep and RCU-lockdep reports start with "WARNING:"; KASAN's with "BUG: KASAN:".
pattern='WARNING:|BUG:|Oops|DEBUG_LOCKS_WARN_ON|suspicious RCU usage|KASAN:|kmemleak: [0-9]+ new suspected|unreferenced object|INFO: task .* blocked|ODEBUG'
if grep -hE "$pattern" "$@" | grep -vE 'kmemleak: Kernel memory leak detector initialized|kmemleak: Automatic memory scanning thread' >&2; then
	echo "error: the debug kernel reported the problems above" >&2
	exit 1
fi
