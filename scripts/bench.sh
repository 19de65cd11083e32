#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# 'make bench': the Rust and the C kernel side by side, on each tree. Each round
# boots, for every tree and clock, both kernels from the same initramfs: Rust
# then C in odd rounds, C then Rust in even ones, so that a drift within a round
# favours neither. Each boot runs the KUnit suite vt_bench (when the kernel has
# it), then 'vhost-e2e bench', then (in the clocks of BENCH_VNT_CLOCKS) upstream's
# tools/virtio/vhost_net_test of that tree. scripts/bench-report.py turns the
# figures into build/bench/table.md and build/bench/ratios.png.
#
# It boots copies of the images that are there, taken when it starts; 'make bench' builds
# them first.
#
# A quick run to iterate with, 'make bench-quick' or BENCH_QUICK=1 scripts/bench.sh: vt_bench
# only, icount only, one tree (TREE=, default 6.12), 3 rounds, no vhost_net_test, and the
# same kind of table, in about 1.5 minutes on this project's 2-core machines (6 boots; 91 s
# for 6.12 beside a kernel build, which slows the boots but not the icount figures).
#
# Settings, from the environment:
#   BENCH_QUICK=1             the quick run above; BENCH_ROUNDS and BENCH_KUNIT still apply,
#                             the other settings do not
#   BENCH_TREES="6.12 7.3"    trees; default: both, or the one TREE= or KDIR= names
#   BENCH_ROUNDS=5            rounds (each boots every kernel once per tree and clock)
#   BENCH_CLOCKS="icount wall"  guest clocks: icount (scripts/vm.sh --icount:
#                             guest time counts instructions) and wall
#   BENCH_CYCLES=1000         VHOST_SET_OWNER/close cycles per boot
#   BENCH_FRAMES=20000        small frames each way per boot
#   BENCH_OWNERS=1000         owners alive at once for scale_*
#   BENCH_KUNIT="cycles=1000 pings=2000 mem_tasks=2048"
#                             parameters of vt_bench (kernel defaults if unset)
#   BENCH_VNT_CLOCKS=icount   clocks in which vhost_net_test runs ("" for none)
#   BENCH_VNT_BUFS=1048576    its buffers each way (its own default)
#   BENCH_VNT_CONTROL=0       1: also, in those clocks, a boot of each kernel with
#                             vhost.fork_from_owner_default=0 that runs vhost_net_test alone
#                             with vhost's kthread worker, which does not use vhost_task
#                             (vhost_net_test_*_kthread_control), BENCH_VNT_CONTROL_BUFS
#                             (262144) buffers each way
#   BENCH_DOC=1               also put the table and chart in BENCHMARKS.md
#                             and docs/benchmarks.png
#   BENCH_AA=1                A/A run: the Rust kernel on both sides, to see
#                             the noise floor of the method
explicit_tree=${TREE:-}${KDIR:-}
. "$(dirname "$0")/lib.sh"

rounds=${BENCH_ROUNDS:-5}
clocks=${BENCH_CLOCKS:-icount wall}
cycles=${BENCH_CYCLES:-1000}
frames=${BENCH_FRAMES:-20000}
owners=${BENCH_OWNERS:-1000}
kunit=${BENCH_KUNIT:-}
vnt_clocks=${BENCH_VNT_CLOCKS-icount}
vnt_bufs=${BENCH_VNT_BUFS:-1048576}
vnt_control=${BENCH_VNT_CONTROL:-0}
vnt_control_bufs=${BENCH_VNT_CONTROL_BUFS:-262144}
quick=${BENCH_QUICK:-0}
if [ -n "${BENCH_TREES:-}" ]; then
	trees=$BENCH_TREES
elif [ -n "$explicit_tree" ] || [ "$quick" = 1 ]; then
	trees=$TREE
else
	trees=${SUPPORTED_TREES[*]}
fi
case $quick in
0) ;;
1)
	[ "${BENCH_DOC:-0}" != 1 ] ||
		die "bench: a quick run (BENCH_QUICK=1) does not go into BENCHMARKS.md"
	[ "$(wc -w <<<"$trees")" = 1 ] ||
		die "bench: a quick run (BENCH_QUICK=1) takes one tree, not '$trees' (TREE=, BENCH_TREES=)"
	rounds=${BENCH_ROUNDS:-3}
	clocks=icount
	vnt_clocks=
	vnt_control=0
	# 'vhost-e2e bench' echoes the KTAP lines of vt_bench: it runs, as little as it can, and
	# its own figures are not kept.
	cycles=1 frames=1 owners=1
	;;
*) die "bench: BENCH_QUICK=$quick is neither 0 nor 1" ;;
esac
for n in "$rounds" "$cycles" "$frames" "$owners" "$vnt_bufs" "$vnt_control_bufs"; do
	[[ $n =~ ^[1-9][0-9]*$ ]] || die "bench: '$n' is not a positive number (BENCH_* settings)"
done
for c in $clocks $vnt_clocks; do
	case $c in icount | wall) ;; *) die "bench: unknown clock '$c' (icount, wall)" ;; esac
done
[ "${BENCH_AA:-0}" != 1 ] || [ "${BENCH_DOC:-0}" != 1 ] ||
	die "bench: BENCH_AA=1 compares a kernel with itself; it does not go into BENCHMARKS.md"
# KDIR= of another copy of a tree: that copy (lib.sh set KDIR to the default otherwise).
kdir_given=
[ "$KDIR" = "$DEFAULT_KDIR" ] || kdir_given=$KDIR
# Select tree $1: its KDIR, images and toolchain (lib.sh).
use_tree() {
	if [ -n "$kdir_given" ]; then
		[ "$1" = "$(kdir_series "$kdir_given")" ] ||
			die "bench: KDIR=$kdir_given is not Linux $1 (BENCH_TREES)"
		select_tree "$1" "$kdir_given"
	else
		select_tree "$1" ""
	fi
}
built_image() {
	if [ "${BENCH_AA:-0}" = 1 ]; then imagefile rust; else imagefile "$1"; fi
}
# The run boots copies of the images and their modules, taken now, under build/bench/kernels/:
# a kernel rebuilt meanwhile (the tree is shared) does not change kernels between rounds.
snap=$BUILD/bench/kernels
image() {
	local i
	i=$(built_image "$1")
	echo "$snap/${i##*/}"
}
declare -A vnt
rm -rf "$snap"
mkdir -p "$snap"
for t in $trees; do
	use_tree "$t"
	for v in rust c; do
		i=$(built_image $v)
		[ -f "$i" ] || die "no kernel image $i (run 'make bench', which builds it)"
		m=$(moddir "$i")
		[ -d "$m" ] || die "no modules of $i in $m (rebuild it with scripts/build-kernel.sh)"
		cp "$i" "$(image $v)"
		cp -a "$m" "$(moddir "$(image $v)")"
	done
	if [ -n "$vnt_clocks" ]; then
		bin=$("$ROOT/scripts/build-vhost-net-test.sh")
		d=${bin%/vhost_net_test}
		vnt[$t]=/bin/vhost_net_test${d##*/vhost_net_test}
	fi
done
# Debian's python3-matplotlib is for /usr/bin/python3, which another python3
# (pyenv, a venv) may shadow in PATH.
py=python3
"$py" -c 'import matplotlib' 2>/dev/null || py=/usr/bin/python3
"$py" -c 'import matplotlib' 2>/dev/null || die "missing python3-matplotlib (run 'make setup')"

out=$BUILD/bench
data=$out/bench.dat
mkdir -p "$out" "$BUILD/log"
# With the vhost_net_test binaries just built: the initramfs packs them.
"$ROOT/scripts/mk-initramfs.sh"

append="loglevel=2 kunit.enable=1 kunit.filter_glob=vt_bench*"
for kv in $kunit; do
	append="$append vt_bench.$kv"
done
# What a tree's kernels were built with, from the Rust kernel's configuration.
built_with() {
	local cfg
	cfg=$(objdir rust)/.config
	[ -f "$cfg" ] || return 0
	printf '%s' "$(sed -n 's/^CONFIG_CC_VERSION_TEXT="\(.*\)"/\1/p' "$cfg" | sed 's/ (.*)//')"
	if grep -q '^CONFIG_RUST_INLINE_HELPERS=y' "$cfg"; then
		printf ', Rust helpers inlined (RUST_INLINE_HELPERS)'
	else
		printf ', Rust helpers out of line'
	fi
}
{
	echo "# $rounds rounds, Rust then C in odd rounds and C then Rust in even ones, trees: $trees, clocks: $clocks"
	if [ "$quick" = 1 ]; then
		echo "# quick run (BENCH_QUICK=1): vt_bench only"
	else
		echo "# vhost-e2e bench cycles=$cycles frames=$frames owners=$owners"
	fi
	echo "# vt_bench ${kunit:-with its defaults}"
	[ -z "$vnt_clocks" ] ||
		echo "# upstream's tools/virtio/vhost_net_test of each tree, $vnt_bufs buffers each way, in clocks: $vnt_clocks"
	[ -z "$vnt_clocks" ] || [ "$vnt_control" != 1 ] ||
		echo "# its kthread control: $vnt_control_bufs buffers each way, in a boot of its own with vhost.fork_from_owner_default=0"
	echo "# host: $(nproc) CPUs, QEMU TCG, 2 vCPUs"
	[ "${BENCH_AA:-0}" != 1 ] || echo "# A/A run: the Rust kernel on both sides"
	for t in $trees; do
		use_tree "$t"
		echo "# tree $t: $(built_with)"
	done
	for t in $trees; do
		use_tree "$t"
		for v in rust c; do
			echo "# image $t $v: $(built_image $v | sed "s|^$ROOT/||"), $(date -r "$(built_image $v)" -u '+%F %T UTC')"
		done
	done
} >"$data"

missing_kunit=0
start=$SECONDS
for r in $(seq 1 "$rounds"); do
	order="rust c"
	[ $((r % 2)) = 1 ] || order="c rust"
	for t in $trees; do
		use_tree "$t"
		for clock in $clocks; do
			opts=()
			[ "$clock" = wall ] || opts=(--icount)
			args=("cycles=$cycles" "frames=$frames" "owners=$owners")
			case " $vnt_clocks " in
			*" $clock "*) args+=("vnt=${vnt[$t]}" "vnt_bufs=$vnt_bufs") ;;
			esac
			for v in $order; do
				stage "bench round $r/$rounds, Linux $t, $clock clock: $v kernel"
				log=$BUILD/log/bench-$t-$clock-$v-$r.log
				if ! "$ROOT/scripts/vm.sh" --image "$(image $v)" --timeout 3600 --log "$log" \
					--append "$append" "${opts[@]}" --initramfs bench "${args[@]}" \
					>/dev/null 2>&1; then
					grep -E '^BENCH-ERROR|Kernel panic|BUG:' "$log" | head -n 5 >&2 || true
					die "bench run failed on the $v kernel of $t, $clock clock (log: $log)"
				fi
				if grep -E '^KTAP +not ok ' "$log" >&2; then
					die "vt_bench failed on the $v kernel of $t, $clock clock (log: $log)"
				fi
				[ "$quick" = 1 ] ||
					sed -n "s/^BENCH \([a-z0-9_]*\) \(-\{0,1\}[0-9.]*\) \(.*\)/$t $r $clock $v \1 \2 \3/p" \
						"$log" >>"$data"
				k=$(sed -n "s/^KTAP *# \([a-z0-9_]*\) \(-\{0,1\}[0-9.]*\) \([A-Za-z/]*\)$/$t $r $clock $v vt_bench.\1 \2 \3/p" "$log")
				if [ "$r" = 1 ]; then
					if [ "$v" = rust ] && [ "$t" = "${trees%% *}" ]; then
						cs=$(sed -n 's/^BENCH-NOTE clocksource //p' "$log")
						echo "# guest clocksource with the $clock clock: ${cs:-unknown}" >>"$data"
					fi
					[ "$clock" != "${clocks%% *}" ] ||
						sed -n "s/^KTAP *# note \(.*\)$/# note $t $v \1/p" "$log" >>"$data"
				fi
				if [ -n "$k" ]; then
					echo "$k" >>"$data"
				elif [ "$quick" = 1 ]; then
					die "no vt_bench figures from the $v kernel of $t, and a quick run measures nothing else: it lacks CONFIG_VHOST_TASK_BENCH (configs/test.config; rebuild it) (log: $log)"
				else
					missing_kunit=1
				fi
			done
			case " $vnt_clocks " in
			*" $clock "*) [ "$vnt_control" = 1 ] || continue ;;
			*) continue ;;
			esac
			for v in $order; do
				stage "bench round $r/$rounds, Linux $t, $clock clock: $v kernel, vhost_net_test with vhost's kthread"
				log=$BUILD/log/bench-$t-$clock-$v-$r-kthread.log
				if ! "$ROOT/scripts/vm.sh" --image "$(image $v)" --timeout 3600 --log "$log" \
					--append "loglevel=2 vhost.fork_from_owner_default=0" "${opts[@]}" \
					--initramfs bench "vnt=${vnt[$t]}" "vnt_bufs=$vnt_control_bufs" vnt_only=1 \
					vnt_kthread=1 >/dev/null 2>&1; then
					grep -E '^BENCH-ERROR|Kernel panic|BUG:' "$log" | head -n 5 >&2 || true
					die "bench control run failed on the $v kernel of $t, $clock clock (log: $log)"
				fi
				sed -n "s/^BENCH \([a-z0-9_]*\) \(-\{0,1\}[0-9.]*\) \(.*\)/$t $r $clock $v \1 \2 \3/p" \
					"$log" >>"$data"
			done
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
chart=
[ ! -f "$out/ratios.png" ] || chart="chart $out/ratios.png, "
info "$((SECONDS - start)) s; ${chart}table $out/table.md, figures $data"
