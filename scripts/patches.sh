#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# The change to the kernel tree as a 'git format-patch' series with a cover letter, in
# build/patches/TREE/, against a pristine tree of TREE (default: every supported tree),
# then checked the way a maintainer would:
#   1. the series applies with 'git am' to the pristine tree;
#   2. scripts/checkpatch.pl --strict is clean on each patch, but for the exceptions
#      listed in CHECKPATCH_IGNORE below (each with its reason);
#   3. each patch builds on its own: the tree at each patch, with the Rust kernel's config;
#   4. on the whole series: make rustfmtcheck and a CLIPPY=1 build are clean;
#   5. on the whole series: the KUnit suites and the user_worker doctests pass.
# Steps 3-5 build kernels: PATCHES_QUICK=1 skips them. The patches are signed off by the
# git identity of whoever runs this (git config user.name / user.email).
#
# The patches are what scripts/link-tree.sh does, part by part, with the files copied:
#   [6.12 only] rust: sync, task: backport what the user-worker abstraction needs
#   rust: helpers: add the helpers and bindings of user workers
#   rust: task: add user_worker, a safe abstraction of PF_USER_WORKER threads
#   vhost_task: add a Rust implementation
#   vhost_task: add KUnit tests
. "$(dirname "$0")/lib.sh"
need git
[ "${1:-}" != "-h" ] || { sed -n '3,20p' "$0"; exit 0; }

# checkpatch's messages that the series keeps, and why:
#   FILE_PATH_CHANGES  new files without a MAINTAINERS entry: whom the code belongs to is
#                      for the maintainers to say (README, "Sending the series")
#   EXPORT_SYMBOL      vhost_task_exports.c exports the four functions of the C ABI, which
#                      are defined in Rust: there is no C definition for it to follow
CHECKPATCH_IGNORE=FILE_PATH_CHANGES,EXPORT_SYMBOL

name=$(git -C "$ROOT" config user.name || true)
email=$(git -C "$ROOT" config user.email || true)
name=${GIT_AUTHOR_NAME:-$name}
email=${GIT_AUTHOR_EMAIL:-$email}
[ -n "$name" ] && [ -n "$email" ] ||
	die "no git identity to sign the patches off with: set git config user.name and user.email"

failures=0
ok() { info "ok: $*"; }
bad() {
	printf '    FAILED: %s\n' "$*" >&2
	failures=$((failures + 1))
}

# The commit message of each part: subject, blank line, body.
message() {
	case $1 in
	backport)
		cat <<'MSG'
rust: sync, task: backport what the user-worker abstraction needs

Later kernels have kernel::sync::Completion, moved ARef and
AlwaysRefCounted to kernel::sync::aref, and have Task::as_ptr(). Add
them to this tree with the same API, so that the user-worker abstraction
of the next patches is the same source on this tree as on the newest:
Completion with the init_completion() helper, sync::aref as a re-export
of the types in kernel::types, and Task::as_ptr().
MSG
		;;
	helpers)
		cat <<'MSG'
rust: helpers: add the helpers and bindings of user workers

A user worker is created with copy_process() and wake_up_new_task(),
takes its signals with get_signal() and sleeps with set_current_state()
and schedule(). Bind the headers that declare them and vhost_task's, and
add helpers for set_current_state() and __set_current_state(), which
are macros.
MSG
		;;
	abstraction)
		cat <<'MSG'
rust: task: add user_worker, a safe abstraction of PF_USER_WORKER threads

vhost and io_uring run work for a process on threads made by
copy_process() from that process: PF_USER_WORKER threads, which share
its address space, credentials, cgroups and namespaces and count
against its limits. There is no Rust abstraction of them, nor of
kthreads.

Add kernel::task::user_worker. NewUserWorker::new() creates the worker
inactive, start() runs it, and its function runs on data shared with
the handle in one allocation. Dropping a never-started worker is sound:
the thread exits without calling the function. The function gets a
WorkerContext for what only the worker itself may do: take its signals
with get_signal(), and sleep without losing a wake-up.

The examples run as KUnit tests with CONFIG_RUST_KERNEL_DOCTESTS.
Documentation/rust/user_worker.rst describes the life cycle, errors,
signals and sleeping.
MSG
		;;
	vhost)
		cat <<'MSG'
vhost_task: add a Rust implementation

Add vhost_task in Rust, selected by CONFIG_VHOST_TASK_RUST, with the C
ABI of <linux/sched/vhost_task.h>, so that vhost-net, vhost-scsi,
vhost-vsock and KVM are unchanged. It is built on the user-worker
abstraction: the worker loop and its stop/SIGKILL protocol are safe
Rust, and a thin layer translates the four exported functions. A task
costs one allocation and one task reference, as in C.
kernel/vhost_task.c stays, and is built when the option is off.
MSG
		;;
	tests)
		cat <<'MSG'
vhost_task: add KUnit tests

Suite vhost_task tests the C ABI as vhost and KVM call it, against
either implementation: the worker is a user worker of the creator's
process, no wake-up is lost, stop waits for a busy function, and
creation fails cleanly at RLIMIT_NPROC or with a signal pending. Suite
vhost_task_rust tests the Rust layers. Suite vt_bench
(CONFIG_VHOST_TASK_BENCH) measures creation, wake-to-run latency and
memory per task.
MSG
		;;
	esac
}

# git in the series tree $tree (of the caller), as the signing identity.
g() { git -C "$tree" -c user.name="$name" -c user.email="$email" "$@"; }

# make in the series tree $tree, build directory $sobj (of the caller), into log $1.
series_make() {
	local log=$1
	shift
	KDIR=$tree logged "$log" kmake "$sobj" "$@"
}

# The pristine tree of TREE as a git repository, at build/series/linux-source-TREE: the
# same path relative to its build directory as the development tree has, so that the
# compiler cache serves both.
pristine() {
	local dir=$BUILD/series/linux-source-$TREE
	if [ ! -d "$dir/.git" ]; then
		rm -rf "$dir"
		if [ "$KDIR" = "$DEFAULT_KDIR" ]; then
			GET_TREE_DEST=$dir "$ROOT/scripts/get-tree.sh"
		else
			git -C "$KDIR" rev-parse HEAD >/dev/null 2>&1 ||
				die "KDIR=$KDIR is not a git tree: no pristine copy of it to make patches against"
			stage "cloning the pristine HEAD of $KDIR"
			git clone -q --shared "$KDIR" "$dir" >&2
		fi
		if [ ! -d "$dir/.git" ]; then
			stage "making a git repository of the pristine tree (a minute)"
			git -C "$dir" init -q
			# -f: Debian's tarball ignores everything in its top-level .gitignore.
			git -C "$dir" add -f -A
			git -C "$dir" -c user.name=base -c user.email=base@localhost \
				commit -q -m "Linux $(tree_version "$dir")"
		fi
		git -C "$dir" tag -f vt-base >/dev/null
	fi
	git -C "$dir" rev-parse -q --verify vt-base >/dev/null ||
		die "$dir has no commit vt-base: remove it and run again"
	echo "$dir"
}

# The series for the selected tree, into build/patches/TREE.
make_series() {
	local tree out version n=0 part
	tree=$(pristine)
	version=$(tree_version "$tree")
	out=$BUILD/patches/$TREE
	stage "patches for Linux $version in ${out#"$ROOT"/}"
	g checkout -q -f -B vt-series vt-base
	g clean -q -fd
	for part in backport helpers abstraction vhost tests; do
		if [ $part = tests ]; then
			KDIR=$tree LINK_PARTS=vhost LINK_COPY=1 "$ROOT/scripts/link-tree.sh"
		else
			KDIR=$tree LINK_PARTS=$part LINK_COPY=1 LINK_NO_TESTS=1 "$ROOT/scripts/link-tree.sh"
		fi
		g add -f -A
		# The backports are empty on a tree that has them all (7.3).
		g diff --cached --quiet && continue
		message $part | g commit -q -s -F -
		n=$((n + 1))
	done
	rm -rf "$out"
	g format-patch -q --cover-letter -o "$out" vt-base..vt-series
	# The cover letter, from the README's account of the project.
	local cover=$out/0000-cover-letter.patch
	python3 - "$cover" "$version" <<'PY'
import sys
path, version = sys.argv[1], sys.argv[2]
text = open(path).read()
text = text.replace("*** SUBJECT HERE ***", "vhost_task in Rust, on a user-worker abstraction")
text = text.replace("*** BLURB HERE ***", f"""\
vhost-net, vhost-scsi, vhost-vsock and KVM's NX huge page recovery run
their work on a vhost_task: a PF_USER_WORKER thread made by
copy_process() from the process that owns the device, so that it shares
that process's mm, cgroups, namespaces and credentials and counts
against its limits. This series adds a Rust implementation of
kernel/vhost_task.c with the exact C ABI of <linux/sched/vhost_task.h>,
so every caller is unchanged, and beneath it the piece other Rust code
can reuse: kernel::task::user_worker, a safe abstraction of user
workers, which rust/kernel has had neither for kthreads nor for
copy_process().

The patches, against Linux {version}:
- the helpers and bindings user workers need (on 6.12 first a backport
  of Completion, sync::aref and Task::as_ptr() from later kernels);
- kernel::task::user_worker, with doctests and
  Documentation/rust/user_worker.rst;
- the Rust vhost_task (CONFIG_VHOST_TASK_RUST): the worker loop and its
  stop/SIGKILL protocol in safe Rust, over it a thin C-ABI layer; one
  allocation and one task reference per task, as in C;
- KUnit suites: the C ABI against either implementation, and the Rust
  layers.

Tested on x86_64 under QEMU: the KUnit suites on both implementations,
the doctests, and end-to-end with QEMU, tap traffic, vhost-vsock and
vhost-scsi clients, on Linux 6.12 and 7.3.""")
open(path, "w").write(text)
PY
	info "$n patches and a cover letter:"
	ls "$out" | sed 's/^/      /' >&2
}

# The checks of the header, on the series in build/patches/TREE.
check_series() {
	local tree out p sobj start
	tree=$BUILD/series/linux-source-$TREE
	out=$BUILD/patches/$TREE
	stage "checking the patches for Linux $TREE"

	g checkout -q -f -B vt-am vt-base
	g clean -q -fd
	if g am -q $(ls "$out"/*.patch | grep -v 0000-cover-letter) >"$BUILD/log/patches-am-$TREE.log" 2>&1; then
		ok "the series applies with git am to pristine Linux $TREE"
	else
		bad "git am on pristine Linux $TREE (build/log/patches-am-$TREE.log)"
		g am --abort 2>/dev/null || true
		return
	fi
	[ "$(g diff vt-series vt-am --stat | wc -l)" -eq 0 ] ||
		bad "what git am made differs from the series"

	for p in $(ls "$out"/*.patch | grep -v 0000-cover-letter); do
		if (cd "$tree" && ./scripts/checkpatch.pl --strict --no-tree -q --ignore "$CHECKPATCH_IGNORE" \
			"$p") >"$BUILD/log/checkpatch-$TREE.log" 2>&1; then
			ok "checkpatch --strict: $(basename "$p")"
		else
			bad "checkpatch --strict: $(basename "$p")"
			sed 's/^/      | /' "$BUILD/log/checkpatch-$TREE.log" >&2
		fi
	done

	[ "${PATCHES_QUICK:-0}" != 1 ] || return 0
	sobj=$BUILD/series/obj-rust$TREE_TAG
	mkdir -p "$sobj"
	local config
	# The Rust kernel's config, from an up-to-date build of it.
	"$ROOT/scripts/build-kernel.sh" rust
	config=$(objdir rust)/.config
	local i=0 total c
	total=$(g rev-list --count vt-base..vt-am)
	for c in $(g rev-list --reverse vt-base..vt-am); do
		i=$((i + 1))
		g checkout -q "$c"
		start=$(date +%s)
		cp "$config" "$sobj/.config"
		if series_make "$BUILD/log/patches-build-$TREE.log" olddefconfig &&
			series_make "$BUILD/log/patches-build-$TREE.log" bzImage; then
			ok "patch $i/$total builds ($(($(date +%s) - start)) s): $(g log -1 --format=%s)"
		else
			bad "patch $i/$total does not build: $(g log -1 --format=%s) (build/log/patches-build-$TREE.log)"
			return
		fi
	done
	if series_make "$BUILD/log/patches-rustfmt-$TREE.log" rustfmtcheck; then
		ok "make rustfmtcheck on the whole series"
	else
		bad "make rustfmtcheck (build/log/patches-rustfmt-$TREE.log)"
	fi
	start=$(date +%s)
	if series_make "$BUILD/log/patches-clippy-$TREE.log" CLIPPY=1 bzImage &&
		! grep -E '^(warning|error)' "$BUILD/log/patches-clippy-$TREE.log"; then
		ok "make CLIPPY=1 on the whole series: no warning ($(($(date +%s) - start)) s)"
	else
		bad "make CLIPPY=1 (build/log/patches-clippy-$TREE.log)"
	fi
	local glob log
	for glob in 'vhost_task*' 'rust_doctests_kernel.*user_worker*'; do
		log=$BUILD/log/patches-kunit-$TREE-${glob%%[.*]*}.log
		kunit_py_exec "$tree" "$sobj" "$glob" >"$log" 2>&1 || true
		if grep -qE 'Testing complete\. Ran [0-9]+ tests: passed: [0-9]+$' "$log"; then
			ok "KUnit '$glob' on the whole series: $(grep -oE 'Ran [0-9]+ tests: passed: [0-9]+$' "$log")"
		else
			bad "KUnit '$glob' on the whole series (${log#"$ROOT"/})"
			grep -E 'Testing complete|FAILED|not ok' "$log" | tail -n 5 | sed 's/^/      | /' >&2
		fi
	done
}

# TREE_LIST="6.12 7.3" makes a series for each (make patches without TREE or KDIR).
trees=${TREE_LIST:-$TREE}
for t in $trees; do
	[ "$t" = "$TREE" ] || select_tree "$t" ""
	make_series
	check_series
done
[ $failures -eq 0 ] || die "the series failed $failures check(s); see above"
info "the series in build/patches/ passed every check"
