#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# 'make bench': the Rust and the C kernel side by side. Each round boots the
# Rust kernel, then the C one, once per clock, from the same initramfs; each
# boot runs the KUnit suite vt_bench (when the kernel has it) and then
# 'vhost-e2e bench'. scripts/bench-report.py turns the figures into
# build/bench/table.md and build/bench/ratios.png.
#
# Settings, from the environment:
#   BENCH_ROUNDS=5            rounds (each boots every kernel once per clock)
#   BENCH_CLOCKS="icount wall"  guest clocks: icount (scripts/vm.sh --icount:
#                             guest time counts instructions) and wall
#   BENCH_CYCLES=1000         VHOST_SET_OWNER/close cycles per boot
#   BENCH_FRAMES=20000        small frames each way per boot
#   BENCH_OWNERS=1000         owners alive at once for scale_*
#   BENCH_KUNIT="cycles=1000 pings=2000 mem_tasks=2048"
#                             parameters of vt_bench (kernel defaults if unset)
#   BENCH_DOC=1               also put the table and chart in BENCHMARKS.md
#                             and docs/benchmarks.png
#   BENCH_AA=1                A/A run: the Rust kernel on both sides, to see
#                             the noise floor of the method
. "$(dirname "$0")/lib.sh"

rounds=${BENCH_ROUNDS:-5}
clocks=${BENCH_CLOCKS:-icount wall}
cycles=${BENCH_CYCLES:-1000}
frames=${BENCH_FRAMES:-20000}
owners=${BENCH_OWNERS:-1000}
kunit=${BENCH_KUNIT:-}
for n in "$rounds" "$cycles" "$frames" "$owners"; do
	[[ $n =~ ^[1-9][0-9]*$ ]] || die "bench: '$n' is not a positive number (BENCH_* settings)"
done
for c in $clocks; do
	case $c in icount | wall) ;; *) die "bench: unknown clock '$c' in BENCH_CLOCKS (icount, wall)" ;; esac
done
[ "${BENCH_AA:-0}" != 1 ] || [ "${BENCH_DOC:-0}" != 1 ] ||
	die "bench: BENCH_AA=1 compares a kernel with itself; it does not go into BENCHMARKS.md"
image() {
	if [ "${BENCH_AA:-0}" = 1 ]; then imagefile rust; else imagefile "$1"; fi
}
for v in rust c; do
	[ -f "$(image $v)" ] || die "no kernel image $(image $v) (run 'make kernel kernel-c')"
done
# Debian's python3-matplotlib is for /usr/bin/python3, which another python3
# (pyenv, a venv) may shadow in PATH.
py=python3
"$py" -c 'import matplotlib' 2>/dev/null || py=/usr/bin/python3
"$py" -c 'import matplotlib' 2>/dev/null || die "missing python3-matplotlib (run 'make setup')"

out=$BUILD/bench
data=$out/bench.dat
mkdir -p "$out" "$BUILD/log"
"$ROOT/scripts/mk-initramfs.sh"

append="loglevel=2 kunit.enable=1 kunit.filter_glob=vt_bench*"
for kv in $kunit; do
	append="$append vt_bench.$kv"
done
{
	echo "# $rounds rounds, Rust then C, clocks: $clocks"
	echo "# vhost-e2e bench cycles=$cycles frames=$frames owners=$owners"
	echo "# vt_bench ${kunit:-with its defaults}"
	echo "# host: $(nproc) CPUs, QEMU TCG, 2 vCPUs"
	[ "${BENCH_AA:-0}" != 1 ] || echo "# A/A run: the Rust kernel on both sides"
} >"$data"

missing_kunit=0
start=$SECONDS
for r in $(seq 1 "$rounds"); do
	for clock in $clocks; do
		opts=()
		[ "$clock" = wall ] || opts=(--icount)
		for v in rust c; do
			stage "bench round $r/$rounds, $clock clock: $v kernel"
			log=$BUILD/log/bench-$clock-$v-$r.log
			if ! "$ROOT/scripts/vm.sh" --image "$(image $v)" --timeout 1800 --log "$log" \
				--append "$append" "${opts[@]}" --initramfs bench \
				"cycles=$cycles" "frames=$frames" "owners=$owners" >/dev/null 2>&1; then
				grep -E '^BENCH-ERROR|Kernel panic|BUG:' "$log" | head -n 5 >&2 || true
				die "bench run failed on the $v kernel, $clock clock (log: $log)"
			fi
			if grep -E '^KTAP +not ok ' "$log" >&2; then
				die "vt_bench failed on the $v kernel, $clock clock (log: $log)"
			fi
			sed -n "s/^BENCH \([a-z0-9_]*\) \(-\{0,1\}[0-9.]*\) \(.*\)/$r $clock $v \1 \2 \3/p" \
				"$log" >>"$data"
			k=$(sed -n "s/^KTAP *# \([a-z0-9_]*\) \(-\{0,1\}[0-9]*\) \([A-Za-z/]*\)$/$r $clock $v vt_bench.\1 \2 \3/p" "$log")
			if [ "$r" = 1 ] && [ "$v" = rust ]; then
				cs=$(sed -n 's/^BENCH-NOTE clocksource //p' "$log")
				echo "# guest clocksource with the $clock clock: ${cs:-unknown}" >>"$data"
			fi
			if [ -n "$k" ]; then
				echo "$k" >>"$data"
			else
				missing_kunit=1
			fi
		done
	done
done
if [ $missing_kunit = 1 ]; then
	info "no vt_bench figures from some boots: their kernels lack CONFIG_VHOST_TASK_BENCH"
	info "(configs/test.config sets it; rebuild with 'make kernel kernel-c')"
fi
doc=()
if [ "${BENCH_DOC:-0}" = 1 ]; then
	mkdir -p "$ROOT/docs"
	doc=(--doc "$ROOT/BENCHMARKS.md" --doc-chart "$ROOT/docs/benchmarks.png")
fi
"$py" "$ROOT/scripts/bench-report.py" "$data" "$out" "${doc[@]}"
info "$((SECONDS - start)) s; chart $out/ratios.png, table $out/table.md, figures $data"
