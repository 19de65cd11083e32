#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Run test suites again and again, and count each case's passes: a case that
# depends on timing shows up here before it shows up in CI.
#   soak.sh [-n ROUNDS] [-l LOAD] SUITE...
# -n  rounds (default 20); the suites run in the order given, once a round
# -l  busy loops to run on the host meanwhile, as a loaded or noisy host
#     would (default 0)
# Per-round results go to build/log/soak/round-N.txt (logs in round-N/), the tally to
# build/log/soak/tally.txt; logs of failed rounds stay in build/log/failed/.
. "$(dirname "$0")/lib.sh"

rounds=20
load=0
while getopts n:l: opt; do
	case $opt in
	n) rounds=$OPTARG ;;
	l) load=$OPTARG ;;
	*) die "usage: soak.sh [-n ROUNDS] [-l LOAD] SUITE..." ;;
	esac
done
shift $((OPTIND - 1))
[ $# -gt 0 ] || die "usage: soak.sh [-n ROUNDS] [-l LOAD] SUITE..."

dir=$BUILD/log/soak
rm -rf "$dir"
mkdir -p "$dir"
hogs=()
stop_hogs() { [ ${#hogs[@]} -eq 0 ] || kill "${hogs[@]}" 2>/dev/null || true; }
trap stop_hogs EXIT
for _ in $(seq "$load"); do
	(while :; do :; done) &
	hogs+=($!)
done

start=$(date +%s)
for r in $(seq "$rounds"); do
	stage "soak round $r/$rounds: $* (host load: $load busy loops)"
	"$ROOT/scripts/test.sh" "$@" >"$dir/round-$r.log" 2>&1 || true
	cp "$BUILD/log/results.txt" "$dir/round-$r.txt"
	# Each round's guest consoles and what the cases kept, failed or not.
	mkdir -p "$dir/round-$r"
	for f in "$BUILD"/log/e2e-* "$BUILD"/log/kunit-*; do
		if [ -e "$f" ]; then cp -r "$f" "$dir/round-$r/"; fi
	done
	info "$(tail -n 1 "$dir/round-$r.log")"
done
stop_hogs

# One line a case: passes/rounds, failures first.
cat "$dir"/round-*.txt | awk '
	{ n[$2]++; if ($1 == "PASS") p[$2]++ }
	END { for (c in n) printf "%d/%d %s\n", p[c], n[c], c }' |
	sort -t/ -k1,1n >"$dir/tally.txt"
info "soak: $rounds rounds in $(($(date +%s) - start)) s; cases that failed at least once:"
awk -F'[/ ]' '$1 != $2' "$dir/tally.txt" | sed 's/^/    /' >&2
echo "$(awk -F'[/ ]' '$1 == $2' "$dir/tally.txt" | wc -l) cases passed every round," \
	"$(awk -F'[/ ]' '$1 != $2' "$dir/tally.txt" | wc -l) failed at least once (build/log/soak/tally.txt)"
