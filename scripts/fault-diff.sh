#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Compare the fault points of two kernels: runs the fault-injection cases of
# 'vhost-e2e stress' on each image, then prints each path's count side by side and a
# diff of the allocation sites, in order (n left out, so that one extra allocation shows
# as one line). Both images need CONFIG_FAULT_INJECTION, FAILSLAB, FAIL_PAGE_ALLOC and
# FAULT_INJECTION_DEBUG_FS, as the debug kernel has; the Rust one is the default first.
# Instead of an image, the log of an earlier run on it (build/log/stress-debug.log after
# 'make stress') compares without booting again.
#   fault-diff.sh IMAGE_A|LOG_A IMAGE_B|LOG_B [FILTER]
# FILTER picks the paths (default "fault_": all). Exits 0 if the sites are the same, 1 if
# they differ, 2 if a run failed. Logs: build/log/fault-diff/.
. "$(dirname "$0")/lib.sh"

[ $# -ge 2 ] || die "usage: fault-diff.sh IMAGE_A|LOG_A IMAGE_B|LOG_B [FILTER]"
filter=${3:-fault_}
dir=$BUILD/log/fault-diff
rm -rf "$dir"
mkdir -p "$dir"
[[ $1 == *.log && $2 == *.log ]] || e2e=$("$ROOT/scripts/build-e2e.sh")

run() {
	local image=$1 name=$2 rc=0
	[ -f "$image" ] || die "no kernel image or log $image"
	if [[ $image == *.log ]]; then
		stage "fault points of the earlier run in $image"
		cp "$image" "$dir/$name.log"
	else
		stage "fault injection on $image"
		"$ROOT/scripts/vm.sh" --image "$image" --timeout 14400 --log "$dir/$name.log" \
			--append "vt.e2e=$e2e vt.scale=1 vt.filter=$filter log_buf_len=16M" \
			--hostfs "$ROOT/tests/guest/stress.sh" >/dev/null 2>&1 || rc=$?
	fi
	if grep -q '^ok [0-9]* fault_.* # SKIP' "$dir/$name.log"; then
		grep -m1 '# SKIP' "$dir/$name.log" | sed 's/.*# SKIP /    cannot compare: /' >&2
		return 2
	fi
	grep -E '^not ok' "$dir/$name.log" | sed 's/^/    /' >&2 || true
	# The path's label has no digit; the callers are Rust paths with generics (rustc-demangle,
	# without hashes) or C functions, joined by " < ".
	sed -nE 's/^# site ([^0-9]+) [0-9]+ ([^:]*): (.*)$/\1: \2: \3/p' "$dir/$name.log" >"$dir/$name.sites"
	sed -n 's/^# fault points: //p' "$dir/$name.log" >"$dir/$name.points"
	[ -s "$dir/$name.points" ] || { info "no fault points reported (exit status $rc)"; return 2; }
}

run "$1" a || exit 2
run "$2" b || exit 2
stage "fault points: $1 | $2"
join -t: -a1 -a2 -e '-' -o 0,1.2,2.2 <(sort "$dir/a.points") <(sort "$dir/b.points") |
	awk -F: '{ printf "    %-24s %6s %6s%s\n", $1, $2, $3, ($2 != $3 ? "   differ" : "") }' >&2
# What vhost_task itself allocates, whatever n hit it: the distinct first frames of the
# failed allocations made under vhost_task_create(), per path. A frame ends at the first
# " < ": a Rust one may hold spaces ("<Box<T, A> as InPlaceInit<T>>::pin_init").
for n in a b; do
	sed -nE '/: ENOMEM: .*vhost_task_create/{s/^([^:]*): ENOMEM: ([a-z_]*) /\1: \2 /; s/ < .*//; p}' \
		"$dir/$n.sites" | sort -u >"$dir/$n.own"
done
# Whole, one a line (a Rust frame is longer than half a screen): "<" only in the first run,
# ">" only in the second, "=" in both.
stage "allocations under vhost_task_create(), distinct: < $1 | > $2"
comm "$dir/a.own" "$dir/b.own" | sed -E 's/^\t\t/    = /; t; s/^\t/    > /; t; s/^/    < /' >&2
if diff -u --label "$1" --label "$2" "$dir/a.sites" "$dir/b.sites" >"$dir/sites.diff"; then
	info "the allocation sites are the same, in the same order"
	exit 0
fi
info "the allocation sites differ ($dir/sites.diff):"
sed 's/^/    /' "$dir/sites.diff" >&2
exit 1
