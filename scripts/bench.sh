#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# 'make bench': the Rust and the C kernel side by side. Each round boots both,
# one after the other, from the same initramfs and runs 'vhost-e2e bench';
# the table compares medians and gives the spread of the per-round Rust/C
# ratios. BENCH_ROUNDS sets the number of rounds (default 5).
. "$(dirname "$0")/lib.sh"

rounds=${BENCH_ROUNDS:-5}
data=$BUILD/log/bench.dat
: >"$data"
"$ROOT/scripts/mk-initramfs.sh"
for r in $(seq 1 "$rounds"); do
	for v in rust c; do
		image=$(imagefile $v)
		stage "bench round $r/$rounds: $v kernel"
		log=$BUILD/log/bench-$v-$r.log
		"$ROOT/scripts/vm.sh" --image "$image" --timeout 900 --log "$log" \
			--append "loglevel=2" --initramfs bench >/dev/null 2>&1 ||
			die "bench run failed on the $v kernel (log: $log)"
		sed -n "s/^BENCH \([a-z_]*\) \([0-9.]*\) \(.*\)/$r $v \1 \2 \3/p" "$log" >>"$data"
	done
done
python3 - "$data" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
names = sorted({r[2] for r in rows})
print("| measurement | unit | Rust median (min-max) | C median (min-max) | Rust/C of medians | per-round Rust/C (min-max) |")
print("|---|---|---|---|---|---|")
for n in names:
    unit = next(r[4] for r in rows if r[2] == n)
    val = {v: {int(r[0]): float(r[3]) for r in rows if r[2] == n and r[1] == v} for v in ("rust", "c")}
    med = {v: statistics.median(val[v].values()) for v in val}
    ratios = [val["rust"][k] / val["c"][k] for k in val["rust"] if k in val["c"]]
    f = lambda v: f"{med[v]:.1f} ({min(val[v].values()):.1f}-{max(val[v].values()):.1f})"
    print(f"| {n} | {unit} | {f('rust')} | {f('c')} | {med['rust']/med['c']:.3f} | {min(ratios):.3f}-{max(ratios):.3f} |")
PY
