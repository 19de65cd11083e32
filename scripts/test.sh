#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Run test suites and end with one line "N passed, N failed". Exits non-zero
# on any failure.
#   test.sh all | all-7.3 | SUITE...
# Suites: build-rust build-c boot-rust boot-c kunit-rust kunit-c e2e-rust e2e-c
# kunit-debug lint stress-debug stress-debug-c stress-rust stress-c lockdep-debug lockdep-debug-c
# trinity-debug trinity-debug-c,
# on the selected tree
# (TREE=, default 6.12); with a tree's suffix (kunit-rust-7.3, all-7.3) on that
# tree, so that one run can cover both. Results of another tree than 6.12 carry its name: kunit-rust-7.3.CASE.
# The stress suites run 'vhost-e2e stress' at STRESS_SCALE (default 0.1, the short
# version); STRESS_IMAGE boots another image than the variant's.
. "$(dirname "$0")/lib.sh"

# LOGS=dir keeps this run's logs apart from another run's (default build/log).
LOGS=${LOGS:-$BUILD/log}
results=${RESULTS:-$LOGS/results.txt}
mkdir -p "$LOGS"
: >"$results"

pass() { echo "PASS $1" >>"$results"; }
fail() {
	echo "FAIL $1" >>"$results"
	printf '    FAILED: %s\n' "$1" >&2
}
check() {
	local name=$1
	shift
	if "$@"; then pass "$name"; else fail "$name"; fi
}

impl_name() {
	case $1 in
	c) echo "C (kernel/vhost_task.c)" ;;
	*) echo "Rust (kernel/vhost_task_rs)" ;;
	esac
}

# Which object of vmlinux defines the ABI, and that every caller links against it.
suite_build() {
	local v=$1 obj members defs ar nm s=build-$1$TREE_TAG
	obj=$(objdir "$1")
	ar=$(llvm_tool llvm-ar)
	nm=$(llvm_tool llvm-nm)
	stage "$s: which object provides vhost_task in vmlinux (Linux $TREE)"
	members=$(cd "$obj" && "$ar" t vmlinux.a)
	defs=$(cd "$obj" && for o in $(grep vhost_task <<<"$members"); do
		if "$nm" --defined-only "$o" 2>/dev/null | grep ' T vhost_task_create$' >/dev/null; then
			echo "$o"
		fi
	done)
	info "vhost_task_create is defined by: ${defs:-nothing}"
	if [ "$v" = c ]; then
		check "$s.vhost_task_create_is_defined_by_kernel_vhost_task_o" \
			test "$defs" = kernel/vhost_task.o
		check "$s.no_rust_vhost_task_object" \
			eval '! grep -q vhost_task_rs/src <<<"$members"'
	else
		check "$s.vhost_task_create_is_defined_by_the_rust_crate" \
			test "$defs" = kernel/vhost_task_rs/src/vhost_task_rust.o
		check "$s.no_c_vhost_task_object_in_vmlinux" \
			eval '! grep -qx kernel/vhost_task.o <<<"$members"'
	fi
	# vhost (net, vsock, scsi) and KVM's NX recovery, unchanged, call the ABI.
	local name o
	for name in vhost_core:drivers/vhost/vhost.o kvm_nx_recovery:arch/x86/kvm/mmu/mmu.o; do
		o=${name#*:}
		check "$s.${name%%:*}_calls_vhost_task_create" \
			eval "(cd '$obj' && '$nm' -u '$o' | grep ' vhost_task_create$' >/dev/null)"
	done
	# (No grep -q after a pipe here: it may end the pipe early, and pipefail then reports the
	# writer's SIGPIPE as a failure.)
	# The shape distributions ship: the users are modules, and modpost resolved the ABI for
	# them against vmlinux (Module.symvers), where vhost_task_exports.c or vhost_task.c
	# exports it.
	local ko
	for ko in drivers/vhost/vhost.ko drivers/vhost/vhost_net.ko drivers/vhost/vhost_vsock.ko \
		drivers/vhost/vhost_scsi.ko drivers/net/tun.ko arch/x86/kvm/kvm.ko arch/x86/kvm/kvm-amd.ko; do
		check "$s.$(basename "$ko" .ko | tr - _)_is_a_module" test -f "$obj/$ko"
	done
	local f
	for f in vhost_task_create vhost_task_start vhost_task_stop vhost_task_wake; do
		check "$s.modpost_resolved_${f}_from_vmlinux" \
			grep -qP "^0x[0-9a-f]+\t$f\tvmlinux\tEXPORT_SYMBOL_GPL" "$obj/Module.symvers"
		for ko in drivers/vhost/vhost.ko arch/x86/kvm/kvm.ko; do
			check "$s.$(basename "$ko" .ko)_ko_imports_$f" \
				eval "'$nm' -u '$obj/$ko' | grep ' $f\$' >/dev/null"
		done
	done
	# The Rust module links against the kernel crate only through exported symbols: none of
	# the C functions that the abstraction's non-generic part calls for it.
	if [ "$v" = modv ]; then
		# Symbol versions: gendwarfksyms gave the Rust exports a CRC, which vhost.ko records.
		for f in vhost_task_create vhost_task_start vhost_task_stop vhost_task_wake; do
			check "$s.${f}_has_a_symbol_version" \
				eval "! grep -qP '^0x0+\t$f\t' '$obj/Module.symvers'"
			check "$s.vhost_ko_records_the_version_of_$f" \
				eval "modprobe --dump-modversions '$obj/drivers/vhost/vhost.ko' | grep '[[:space:]]$f\$' >/dev/null"
		done
	fi
	ko=$obj/kernel/vhost_task_rs/tests/module/user_worker_test.ko
	check "$s.user_worker_test_is_a_module" test -f "$ko"
	check "$s.user_worker_test_imports_no_unexported_c_function" \
		eval "! '$nm' -u '$ko' | grep -wE 'copy_process|wake_up_new_task|get_signal|do_exit' >/dev/null"
	check "$s.user_worker_test_calls_the_kernel_crate_for_the_worker" \
		eval "'$nm' -u '$ko' | grep 'user_worker.*create_worker' >/dev/null"
}

# The busybox initramfs boot, plain 'qemu -kernel -initrd', running the demo.
suite_boot() {
	local v=$1 s=boot-$1$TREE_TAG rc=0
	local log=$LOGS/$s.log
	stage "$s: busybox initramfs boot of Linux $TREE and the 'make run' checks"
	# loglevel=5: a WARNING (KERN_WARNING) reaches the console, for the check below.
	"$ROOT/scripts/vm.sh" --image "$(imagefile "$v")" --timeout 300 --log "$log" \
		--append loglevel=5 --initramfs demo >/dev/null 2>&1 || rc=$?
	check "$s.guest_boots_from_initramfs_and_reports_status" test "$rc" -ne 124 -a "$rc" -ne 125
	check "$s.implementation_is_$v" grep -qF "vhost_task implementation: $(impl_name "$v")" "$log"
	check "$s.demo_worker_is_owner_thread_kthread_is_not" test "$rc" -eq 0
	if grep -q '^FAILED:' "$log"; then sed -n 's/^FAILED: /    demo: /p' "$log" >&2; fi
	check "$s.console_free_of_warnings_and_splats" "$ROOT/scripts/check-debug-log.sh" "$log"
}

# kunit.py exec of the suites matching glob $3 on kernel variant $1, parsed into results
# named "$2.<suite>.<case>"; the log and JSON are build/log/$2.{log,json}.
kunit_exec() {
	local v=$1 s=$2 glob=$3
	local json=$LOGS/$s.json log=$LOGS/$s.log
	rm -f "$json"
	kunit_py_exec "$KDIR" "$(objdir "$v")" "$glob" --json="$json" >"$log" 2>&1 || true
	# The guest's whole console, which the next kunit.py run in this build dir overwrites.
	cp "$(objdir "$v")/test.log" "$LOGS/$s.console.log" 2>/dev/null || true
	grep -E 'Testing complete|Ran [0-9]+ tests' "$log" | sed 's/^\[[0-9:]*\] /    /' >&2 || true
	if [ ! -s "$json" ]; then
		fail "$s.kunit_py_produced_results"
		tail -n 20 "$log" | sed 's/^/  | /' >&2
		return
	fi
	python3 - "$json" "$s" >>"$results" <<'PY'
import json, sys
def walk(group, prefix):
    for case in group.get("test_cases", []):
        status = case["status"]
        word = "PASS" if status == "PASS" else ("SKIP" if status == "SKIP" else "FAIL")
        print(f"{word} {prefix}.{group['name']}.{case['name']}")
    for sub in group.get("sub_groups", []):
        walk(sub, prefix)
data = json.load(open(sys.argv[1]))
for suite in data.get("sub_groups", []):
    walk(suite, sys.argv[2])
PY
}

# The KUnit suites, run and parsed by the kernel's own kunit.py; on the kernels with the
# Rust vhost_task, the doc examples of kernel::task::user_worker too.
suite_kunit() {
	local v=$1 s=kunit-$1$TREE_TAG
	stage "$s: vhost_task KUnit suites via kunit.py of Linux $TREE"
	kunit_exec "$v" "$s" 'vhost_task*'
	if [ "$v" != c ]; then
		local d=doctests-$v$TREE_TAG
		stage "$d: the doc examples of kernel::task::user_worker (rust_doctests_kernel)"
		kunit_exec "$v" "$d" 'rust_doctests_kernel.*user_worker*'
		check "$d.user_worker_examples_ran" \
			test "$(grep -c "^PASS $d\.rust_doctests_kernel\..*user_worker" "$results")" -ge 2
	fi
	# Every kernel has CONFIG_BUG: a WARN_ON() that a case hit is in the console, and fails.
	local logs=("$LOGS/$s.console.log")
	[ "$v" = c ] || logs+=("$LOGS/doctests-$v$TREE_TAG.console.log")
	check "$s.console_free_of_warnings_and_splats" "$ROOT/scripts/check-debug-log.sh" "${logs[@]}"
	if [ "$s" = kunit-debug ]; then
		# Once more with user space after the suites, to have kmemleak scan.
		local klog=$LOGS/kmemleak-debug.log rc=0
		"$ROOT/scripts/vm.sh" --image "$(imagefile debug)" --timeout 1800 --log "$klog" \
			--append "kunit.enable=1 kunit.filter_glob=vhost_task* loglevel=7" \
			--initramfs kmemleak-scan >/dev/null 2>&1 || rc=$?
		check "kunit-debug.kmemleak_boot_ran_both_suites" \
			test "$(grep -a -c '^# Totals: pass:[0-9]* fail:0 ' "$klog")" -eq 2
		check "kunit-debug.kmemleak_suspects_nothing_after_the_suites" test "$rc" -eq 0
		check "kunit-debug.log_free_of_lockdep_kasan_kmemleak_warning_bug" \
			"$ROOT/scripts/check-debug-log.sh" "$LOGS/kunit-debug.console.log" \
			"$LOGS/doctests-debug.console.log" "$klog"
	fi
	grep -E "^FAIL (kunit|doctests)-$v$TREE_TAG\." "$results" | sed 's/^FAIL /    FAILED: /' >&2 || true
}

# The KTAP of a guest's console $2 as results of suite $1, parsed by the kernel's own kunit.py
# (the JSON in $LOGS/$1.json): "ok N name # SKIP why" is neither a pass nor a failure. The
# plan, the names of the cases the guest was to run, comes from the host: "$4 list ${@:5}"
# (vhost-e2e runs on the host too), so that each case a guest that crashed, hung or was killed
# never reported fails by name. A console without KTAP (the guest's exit status was $3) fails
# "$1.suite_ran" too, and returns 1.
tap_results() {
	local s=$1 log=$2 rc=$3 e2e=$4
	shift 4
	local json=$LOGS/$s.json plan=$LOGS/$s.plan ran=1
	if ! "$e2e" list "$@" >"$plan" 2>"$LOGS/$s.plan.err" || [ ! -s "$plan" ]; then
		fail "$s.plan_is_listed_on_the_host"
		sed 's/^/  | /' "$LOGS/$s.plan.err" >&2
		return 1
	fi
	rm -f "$json"
	python3 "$KDIR/tools/testing/kunit/kunit.py" parse --json="$json" "$log" \
		>"$LOGS/$s.parse.log" 2>&1 || true
	if ! grep -qx 'KTAP version 1' "$log"; then
		ran=0
		fail "$s.suite_ran (exit status $rc)"
		tail -n 20 "$log" | sed 's/^/  | /' >&2
	fi
	python3 - "$json" "$s" "$plan" "$log" >>"$results" <<'PY'
import json, re, sys
path, suite, plan_file, log = sys.argv[1:]
plan = open(plan_file).read().split()
try:
    cases = json.load(open(path)).get("test_cases", [])
except (OSError, ValueError):
    cases = []
text = open(log, errors="replace").read()
def failed(name, why):
    print(f"FAIL {suite}.{name}")
    print(f"    FAILED: {suite}.{name} ({why})", file=sys.stderr)
for i, name in enumerate(plan):
    case = cases[i] if i < len(cases) else None
    if case is None or case["name"] == "":
        # kunit.py's "missing expected subtest": the plan had it, the guest never said.
        failed(name, "did not run: the guest stopped before it")
    elif case["name"] != name:
        failed(name, f"the guest ran {case['name']!r} in its place")
    elif case["status"] == "PASS":
        print(f"PASS {suite}.{name}")
    elif case["status"] == "SKIP":
        why = re.search(rf"^ok {i + 1} {re.escape(name)} # SKIP ?(.*)$", text, re.M)
        print(f"SKIP {suite}.{name} ({why.group(1) if why else 'skipped'})")
    else:
        print(f"FAIL {suite}.{name}")
for case in cases[len(plan):]:
    failed(case["name"] or "unnamed", "not in the plan")
PY
	[ "$ran" = 1 ]
}

# The e2e crate's own tests, #[test]s run on the host by cargo (the splat file against
# kmsg.rs and check-debug-log.sh, the demangling of fault traces, the harness, ifreq and
# /proc parsing): e2e-unit.<module>.<test> each. The tests are listed first, so that one that
# never reported (the test binary died) fails by name.
suite_e2e_unit() {
	local s=e2e-unit log=$LOGS/e2e-unit.log list=$LOGS/e2e-unit.list t
	# As scripts/build-e2e.sh builds the guests' binary (release, static, its target): the
	# crates it depends on are built once for both.
	local cargo=(env RUSTFLAGS="-C target-feature=+crt-static" cargo test --release
		--target x86_64-unknown-linux-gnu --manifest-path "$ROOT/Cargo.toml" --locked -p vhost-e2e)
	stage "$s: the #[test]s of tests/e2e on the host"
	need cargo
	if ! "${cargo[@]}" --no-run >"$log" 2>&1; then
		fail "$s.tests_build"
		tail -n 20 "$log" | sed 's/^/  | /' >&2
		return 0
	fi
	"${cargo[@]}" -q -- --list --format terse 2>>"$log" | sed -n 's/: test$//p' >"$list" || true
	check "$s.tests_are_listed" test -s "$list"
	# One at a time: the harness's tests fork.
	"${cargo[@]}" -- --test-threads=1 >>"$log" 2>&1 || true
	while read -r t; do
		if grep -qxF "test $t ... ok" "$log"; then
			pass "$s.${t//::tests::/.}"
		else
			fail "$s.${t//::tests::/.}"
			grep -A15 -F -- "---- $t stdout ----" "$log" | sed 's/^/  | /' >&2 || true
		fi
	done <"$list"
}

# The end-to-end suite: a guest over the host's root filesystem runs vhost-e2e.
suite_e2e() {
	local v=$1 s=e2e-$1$TREE_TAG rc=0
	local log=$LOGS/$s.log
	stage "$s: end-to-end suite in a guest of Linux $TREE over the host's root filesystem"
	local e2e
	e2e=$("$ROOT/scripts/build-e2e.sh")
	# The nested QEMU case boots the same kernel from the initramfs.
	"$ROOT/scripts/mk-initramfs.sh"
	local append="vt.e2e=$e2e vt.kernel=$(imagefile "$v") vt.initrd=$BUILD/initramfs.cpio.gz"
	# KVM's own nx_huge_pages_test, which two KVM cases run (tests/e2e/src/kvm.rs). A failed
	# build fails those cases, with the reason: it is in build/log/selftests-kvm-TREE.log.
	local selftest
	selftest=$("$ROOT/scripts/build-kvm-selftest.sh") || selftest=failed
	append="$append vt.kvm_selftest=$selftest"
	# The MODVERSIONS kernel: the module cases (whose names have "mod" in them).
	local filter=${E2E_FILTER:-}
	[ "$v" != modv ] || filter=${filter:-mod}
	[ -z "$filter" ] || append="$append vt.filter=$filter"
	# Files the cases keep (the nested QEMU's console, its timeline) land here.
	local logdir=$LOGS/$s
	rm -rf "$logdir"
	"$ROOT/scripts/vm.sh" --image "$(imagefile "$v")" --timeout 2400 --logdir "$logdir" \
		--log "$log" --append "$append" --hostfs "$ROOT/tests/guest/e2e.sh" \
		>/dev/null 2>&1 || rc=$?
	tap_results "$s" "$log" "$rc" "$e2e" test ${filter:+"$filter"} || return 0
	if grep -E '^not ok' "$log" | sed 's/^/    /' >&2; then
		# What the cases kept, and for the nested QEMU its last samples.
		find "$logdir" -type f | sed "s|^$ROOT/|    kept: |" >&2
		if grep -q '^not ok [0-9]* qemu_' "$log" && [ -s "$logdir/qemu-timeline.log" ]; then
			tail -n 8 "$logdir/qemu-timeline.log" | sed 's/^/    | /' >&2
		fi
	fi
	check "$s.guest_exited_cleanly" test "$rc" -eq 0 -o "$rc" -eq 1
}

# Style and lint, as scripts/check.sh (make check).
# The userspace crate's checks do not depend on the tree: only on the default one. The docs
# (scripts/docs.sh) on both: rustdoc in the built Rust kernel's directory took 105 s (6.12)
# and 184 s (7.3) beside two kernel builds (load 6, 2 Dec 2026), about a minute of CPU
# each; htmldocs SPHINXDIRS=rust 6-28 s.
suite_lint() {
	local s=lint$TREE_TAG p parts=(rustfmt clippy checkpatch doc-examples rustdoc htmldocs e2e-fmt e2e-clippy)
	[ -z "$TREE_TAG" ] || parts=(rustfmt clippy checkpatch rustdoc htmldocs)
	stage "$s: ${parts[*]} with Linux $TREE's rules (clippy through make CLIPPY=1)"
	for p in "${parts[@]}"; do
		check "$s.$p" "$ROOT/scripts/check.sh" "$p"
	done
}

# The stress suite: fault injection, loops and races in a guest over the host's root
# filesystem, then the debug kernel's log checked for splats (scripts/check-debug-log.sh).
suite_stress() {
	local v=$1 image=${STRESS_IMAGE:-$(imagefile "$1")} scale=${STRESS_SCALE:-0.1}
	local log=$LOGS/stress-$1.log rc=0 e2e start secs
	stage "stress-$v: fault injection, loops and races at scale $scale on ${image#"$ROOT"/}"
	e2e=$("$ROOT/scripts/build-e2e.sh")
	local append="vt.e2e=$e2e vt.scale=$scale log_buf_len=16M"
	[ -z "${STRESS_FILTER:-}" ] || append="$append vt.filter=$STRESS_FILTER"
	# Time limit: measured on the KASAN kernel under TCG, about 6 h at scale 1.0, with room.
	local timeout
	timeout=$(awk -v s="$scale" 'BEGIN { printf "%d", 3600 + 36000 * s }')
	start=$(date +%s)
	# The guest prints its kernel log's warnings and errors on the console.
	"$ROOT/scripts/vm.sh" --image "$image" --timeout "$timeout" \
		--log "$log" --append "$append" --hostfs "$ROOT/tests/guest/stress.sh" \
		>/dev/null 2>&1 || rc=$?
	secs=$(($(date +%s) - start))
	info "stress-$v: guest ran $((secs / 60)) min $((secs % 60)) s (exit status $rc)"
	tap_results "stress-$v" "$log" "$rc" "$e2e" stress --scale "$scale" \
		${STRESS_FILTER:+"$STRESS_FILTER"} || return 0
	grep -E '^# fault points:' "$log" | sed 's/^# /    /' >&2 || true
	grep -E '^not ok' "$log" | sed 's/^/    /' >&2 || true
	if [[ $v == debug* ]]; then
		check "stress-$v.fault_injection_is_available" \
			eval "! grep -q '^ok [0-9]* fault_.* # SKIP' '$log'"
	fi
	guest_log_checks "stress-$v" "$log" "$rc"
}

# The end of a guest whose script ends its console with the warnings and errors of the whole
# kernel log (tests/guest/stress.sh, trinity.sh): its exit status (1: a case failed), no splat
# on the console, and the log's last line there.
guest_log_checks() {
	local s=$1 log=$2 rc=$3
	check "$s.guest_exited_cleanly" test "$rc" -eq 0 -o "$rc" -eq 1
	check "$s.kernel_log_free_of_lockdep_kasan_kmemleak_warning_bug" \
		"$ROOT/scripts/check-debug-log.sh" "$log"
	check "$s.guest_printed_its_kernel_log" grep -q '^kmsg: end of the kernel log' "$log"
}

# Trinity, Dave Jones's system call fuzzer (scripts/setup.sh installs it), against vhost and KVM
# on a debug kernel (tests/e2e/src/trinity.rs): TRINITY_CALLS system calls (default 20,000, the
# short version) with each of the seeds TRINITY_SEEDS (default 1). make stress runs ten seeds
# of 100,000 calls on each implementation.
suite_trinity() {
	local v=$1 s=trinity-$1 rc=0 e2e start secs n timeout
	local calls=${TRINITY_CALLS:-20000} seeds=${TRINITY_SEEDS:-1}
	local log=$LOGS/$s.log root=$BUILD/tools/trinity
	[ -x "$root/usr/bin/trinity" ] || die "no trinity in ${root#"$ROOT"/} (run 'make setup')"
	stage "$s: trinity, $calls system calls with each of the seeds $seeds, on the $v kernel"
	e2e=$("$ROOT/scripts/build-e2e.sh")
	# Time limit: about 300 calls a second under TCG on the debug kernel; a tenth of that.
	n=$(tr ',' '\n' <<<"$seeds" | wc -l)
	timeout=$((900 + calls * n / 30))
	start=$(date +%s)
	"$ROOT/scripts/vm.sh" --image "$(imagefile "$v")" --timeout "$timeout" --log "$log" \
		--append "vt.e2e=$e2e vt.trinity=$root vt.calls=$calls vt.seeds=$seeds log_buf_len=16M" \
		--hostfs "$ROOT/tests/guest/trinity.sh" >/dev/null 2>&1 || rc=$?
	secs=$(($(date +%s) - start))
	info "$s: guest ran $((secs / 60)) min $((secs % 60)) s (exit status $rc)"
	tap_results "$s" "$log" "$rc" "$e2e" trinity --calls "$calls" --seeds "$seeds" || return 0
	grep -E '^not ok' "$log" | sed 's/^/    /' >&2 || true
	guest_log_checks "$s" "$log" "$rc"
}

# Lockdep on the stop / kill protocol: a guest of the debug kernel in which the kill handler
# of a vhost task takes a lock that the stopper holds across vhost_task_stop(). Lockdep must
# report it (and the guest must not hang); its own boot, since lockdep is off after a report.
suite_lockdep() {
	local v=$1 s=lockdep-$1 rc=0 e2e
	local log=$LOGS/$s.log
	stage "$s: lockdep reports the inversion of a lock with vhost_task_stop(), on ${v}"
	e2e=$("$ROOT/scripts/build-e2e.sh")
	"$ROOT/scripts/vm.sh" --image "$(imagefile "$v")" --timeout 900 --log "$log" \
		--append "vt.e2e=$e2e" --hostfs "$ROOT/tests/guest/lockdep.sh" >/dev/null 2>&1 || rc=$?
	tap_results "$s" "$log" "$rc" "$e2e" lockdep || return 0
	grep -E '^not ok' "$log" | sed 's/^/    /' >&2 || true
	check "$s.guest_exited_cleanly" test "$rc" -eq 0 -o "$rc" -eq 1
}

run_suite() {
	case $1 in
	build-rust | build-c | build-modv) suite_build "${1#build-}" ;;
	boot-rust | boot-c) suite_boot "${1#boot-}" ;;
	kunit-rust | kunit-c | kunit-debug) suite_kunit "${1#kunit-}" ;;
	e2e-rust | e2e-c | e2e-modv) suite_e2e "${1#e2e-}" ;;
	e2e-unit) suite_e2e_unit ;;
	lint) suite_lint ;;
	stress-rust | stress-c | stress-debug | stress-debug-c) suite_stress "${1#stress-}" ;;
	lockdep-debug | lockdep-debug-c) suite_lockdep "${1#lockdep-}" ;;
	trinity-debug | trinity-debug-c) suite_trinity "${1#trinity-}" ;;
	*) die "unknown suite '$1'" ;;
	esac
}

# Run "$@" on tree $1: the selected KDIR for the selected tree, else Debian's tree.
in_tree() {
	local t=$1
	shift
	(
		[ "$t" = "$TREE" ] || select_tree "$t" ""
		"$@"
	)
}

# Every suite of a tree. 7.3 has no debug kernel yet (build time). The short stress
# (STRESS_SCALE 0.1) runs on 6.12's Rust and C kernels (about 1.5 min each; no fault
# injection there) and on the debug kernel (about 7 min: the fault walks do not scale,
# and vhost-scsi's has 800 points). The short trinity (one seed of 20,000 calls, about 3 min)
# runs on the debug kernel with each implementation.
all_suites() {
	case $1 in
	6.12) echo build-rust boot-rust kunit-rust e2e-rust stress-rust build-c boot-c kunit-c e2e-c \
		stress-c kunit-debug stress-debug lockdep-debug trinity-debug trinity-debug-c lint e2e-unit ;;
	*) echo build-rust boot-rust kunit-rust e2e-rust build-c boot-c kunit-c e2e-c lint ;;
	esac
}

# "SUITE TREE" for each requested suite: "kunit-rust-7.3" is kunit-rust on 7.3,
# "kunit-rust" on the selected tree; "all[-TREE]" is every suite of a tree.
plan=()
for arg in "${@:-all}"; do
	t=$TREE
	for st in "${SUPPORTED_TREES[@]}"; do
		case $arg in *-"$st") t=$st arg=${arg%-"$st"} ;; esac
	done
	if [ "$arg" = all ]; then
		for s in $(all_suites "$t"); do plan+=("$s $t"); done
	else
		plan+=("$arg $t")
	fi
done

# The kernel variant a suite runs on ("kunit-c" on c, lint on rust), or nothing.
suite_kernel() {
	case $1 in
	lint) echo rust ;;
	build-* | boot-* | kunit-* | e2e-* | stress-* | lockdep-* | trinity-*)
		case ${1#*-} in rust | c | debug | debug-c | modv) echo "${1#*-}" ;; esac
		;;
	esac
}

# The kernels the plan needs, "VARIANT TREE", in the order its suites first need them.
kernels=()
for p in "${plan[@]}"; do
	v=$(suite_kernel "${p% *}")
	[ -n "$v" ] || continue
	case " ${kernels[*]/ /:} " in *" $v:${p#* } "*) continue ;; esac
	kernels+=("$v ${p#* }")
done

# The first kernel is built here, before any suite. The others are built meanwhile by a builder
# in the background at nice 19, in the order the suites need them, so that the builds take
# the CPU the guests leave idle and the suites start at once; a suite waits for its kernel.
# Its log: build/log/builder.log. VT_SKIP_BUILD=1 uses the images as they are.
ready=$LOGS/kernels
# The wall-clock seconds of each suite, waits for its kernel included: build/log/times.txt.
: >"$LOGS/times.txt"
rm -rf "$ready"
mkdir -p "$ready"
builder=
stop_builder() { [ -z "$builder" ] || kill -- "-$builder" 2>/dev/null || true; }
trap stop_builder EXIT
if [ "${VT_SKIP_BUILD:-0}" = 1 ]; then
	for k in "${kernels[@]}"; do touch "$ready/${k/ /-}.ok"; done
elif [ ${#kernels[@]} -gt 0 ]; then
	k=${kernels[0]}
	if in_tree "${k#* }" "$ROOT/scripts/build-kernel.sh" "${k% *}"; then
		touch "$ready/${k/ /-}.ok"
	else
		touch "$ready/${k/ /-}.failed"
	fi
	if [ ${#kernels[@]} -gt 1 ]; then
		info "building the other kernels in the background (${kernels[*]:1}; build/log/builder.log)"
		set -m
		(
			# The e2e binary and the KVM selftest first: every e2e suite needs them.
			nice -n 19 "$ROOT/scripts/build-e2e.sh" >/dev/null || true
			for k in "${kernels[@]:1}"; do
				start=$(date +%s)
				if in_tree "${k#* }" nice -n 19 "$ROOT/scripts/build-kernel.sh" "${k% *}"; then
					echo "built ${k% *} ${k#* } in $(($(date +%s) - start)) s"
					touch "$ready/${k/ /-}.ok"
				else
					touch "$ready/${k/ /-}.failed"
				fi
			done
		) >"$LOGS/builder.log" 2>&1 &
		builder=$!
		set +m
	fi
fi

# Wait until kernel "$1" is built; fail if its build failed.
await_kernel() {
	local k=${1/ /-} shown=0
	while [ ! -e "$ready/$k.ok" ] && [ ! -e "$ready/$k.failed" ]; do
		if [ $shown = 0 ]; then
			info "waiting for the ${1% *} kernel of Linux ${1#* } (build/log/builder.log)"
			shown=1
		fi
		sleep 5
	done
	[ -e "$ready/$k.ok" ]
}

for p in "${plan[@]}"; do
	v=$(suite_kernel "${p% *}")
	if [ -n "$v" ] && ! await_kernel "$v ${p#* }"; then
		fail "${p% *}$([ "${p#* }" = "$DEFAULT_TREE" ] || echo "-${p#* }").kernel_built"
		grep -E '^(error|  \|)' "$LOGS/builder.log" | tail -n 20 | sed 's/^/  | /' >&2 || true
		continue
	fi
	t0=$(date +%s)
	in_tree "${p#* }" run_suite "${p% *}"
	echo "${p% *} ${p#* } $(($(date +%s) - t0))" >>"$LOGS/times.txt"
done
wait
passed=$(grep -c '^PASS' "$results" || true)
failed=$(grep -c '^FAIL' "$results" || true)
info "results: $results"
if [ "$failed" -gt 0 ]; then
	# Keep this run's logs: the next run overwrites build/log.
	kept=$LOGS/failed/$(date +%Y%m%d-%H%M%S)
	mkdir -p "$kept"
	find "$LOGS" -mindepth 1 -maxdepth 1 ! -name failed ! -name soak -exec cp -r {} "$kept/" \;
	info "the logs of this failed run are kept in ${kept#"$ROOT"/}"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
