#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# The change to the kernel tree as a patch series, prepared with b4 the way kernel
# developers prepare theirs, for TREE (default: every supported tree):
#   - the series is a 'b4 prep' branch, b4/vhost-task-rs, of a pristine copy of the tree
#     kept as a git repository in build/series/linux-source-TREE, against its commit
#     vt-base, with the cover letter in b4's format (an empty commit at its start);
#   - its revision goes up when its patches change: the previous one is kept as b4 keeps
#     a sent revision (the tag sent/CHANGE-ID-vN, so 'b4 prep --compare-to vN' works), and
#     the cover letter gets a "Changes in vN+1" section listing what changed;
#   - 'b4 prep --auto-to-cc' adds the recipients, from the tree's get_maintainer.pl;
#   - 'b4 send -o build/patches/TREE' writes the mails that would go out.
# Then it checks the series the way a maintainer would:
#   1. 'b4 prep --check' (the tree's checkpatch.pl --strict through b4) and b4's own
#      pre-flight checks (what 'b4 send' would insist on) pass;
#   2. the mails apply with 'git am' to the pristine tree, giving the branch's tree;
#   3. scripts/checkpatch.pl --strict is clean on each mail, but for the exceptions
#      listed in CHECKPATCH_IGNORE below (each with its reason);
#   4. each patch builds on its own, kernel and modules, with the Rust kernel's config;
#   5. on the whole series: make rustfmtcheck and a CLIPPY=1 build are clean;
#   6. on the whole series: the KUnit suites and the user_worker doctests pass;
#   7. on the whole series: 'make rustdoc' has no warning and documents
#      kernel::task::user_worker with its examples, and 'make htmldocs SPHINXDIRS=rust'
#      builds Documentation/rust/user_worker.rst without warning (scripts/docs.sh).
# Steps 4-6 build kernels: PATCHES_QUICK=1 skips them. The patches are signed off by the
# git identity of whoever runs this (git config user.name / user.email).
#
# b4 (scripts/setup.sh installs it in build/b4) runs offline only: this machine reaches
# no mail server and no lore archive, and the series is not to be sent from here. So no
# b4 command used here needs the network (no --manual-reroll, no -F, no --check-deps on
# remote dependencies), 'b4 send' only ever runs with -o, its mail command in the series
# tree is one that refuses, and every b4 command runs with its HTTP(S) proxy set to a
# closed port on 127.0.0.1, so that a lookup would fail at once instead of reaching out.
#
# The patches are what scripts/link-tree.sh does, part by part, with the files copied:
#   [6.12 only] rust: backport what the user-worker abstraction needs from later kernels
#   rust: helpers: add the helpers and bindings of user workers
#   rust: task: add user_worker, a safe abstraction of PF_USER_WORKER threads
#     (as it was before the next patch: scripts/series/before-lock-class.py)
#   rust: task: user_worker: a lock class per call site
#   vhost_task: add a Rust implementation
#   vhost_task: add KUnit tests and a user-worker test module
. "$(dirname "$0")/lib.sh"
need git
[ "${1:-}" != "-h" ] || { sed -n '3,40p' "$0"; exit 0; }

# checkpatch's messages that the series keeps, and why:
#   FILE_PATH_CHANGES  new files without a MAINTAINERS entry: whom the code belongs to is
#                      for the maintainers to say (docs/series.md)
#   EXPORT_SYMBOL      vhost_task_exports.c exports the four functions of the C ABI, which
#                      are defined in Rust: there is no C definition for it to follow
CHECKPATCH_IGNORE=FILE_PATH_CHANGES,EXPORT_SYMBOL

# The b4 series: its branch, and the prefix its subjects carry (an RFC: the Rust
# maintainers ask for an abstraction to come with its user, docs/series.md).
SERIES=vhost-task-rs
BRANCH=b4/$SERIES
PREFIXES=RFC
B4=$BUILD/b4/bin/b4
[ -x "$B4" ] || die "missing b4 in build/b4 (run 'make setup')"

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
rust: backport what the user-worker abstraction needs from later kernels

Later kernels have kernel::sync::Completion, kernel::sync::atomic,
pin_init::zeroed(), types::NotThreadSafe, kernel::miscdevice with
kernel::fs::File, Task::as_ptr() and Task::current_raw(), and moved ARef
and AlwaysRefCounted to kernel::sync::aref. Add to this tree what the
user-worker abstraction, its test module and the vhost task use of
them, with the same API, so that they are the same source on this tree
as on the newest: Completion with the init_completion() helper,
sync::aref as a re-export of the types in kernel::types, Atomic<T> with
the later AtomicType { type Repr } (i8, i32, i64, bool and pointers, on
core atomics, with the later orderings), zeroed() for the one bindings
type the abstraction zeroes, miscdevice's open, release and ioctl (and
compat_ioctl with CONFIG_COMPAT), NotThreadSafe, and the two Task
methods, each in a file of its own.
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
the handle in one pinned allocation, which the handle owns: dropping it
waits for the function to return, and dropping a never-started worker
makes the thread exit without calling it. The function gets a
WorkerContext for what only the worker itself may do: wait() takes its
signals, then sleeps without losing a wake-up, and exit_section() tells
lockdep what the owner's wait for the exit waits for. The exit is
reported by the non-generic thread function after the generic part has
returned, so that a module that makes workers may be unloaded as soon
as its last worker has been seen to exit.

The examples run as KUnit tests with CONFIG_RUST_KERNEL_DOCTESTS.
Documentation/rust/user_worker.rst describes the life cycle, errors,
sleeping and signals, lockdep, modules and C callers.
MSG
		;;
	lock-class)
		cat <<'MSG'
rust: task: user_worker: a lock class per call site

The exits of all user workers share one lock class, so lockdep merges
the dependency chains of unrelated users (vhost, KVM, any module that
makes workers), and a worker that waits for the exit of another worker
inside its exit section is reported as recursive locking.

Give each call site its own class, as new_mutex!() and new_work!() do:
new_user_worker!() makes a static key, and a name of the form
user_worker_exit:<module path>:<line>, where it is called, and
NewUserWorker::new() takes them. Without CONFIG_LOCKDEP the map is not
touched.
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
vhost_task: add KUnit tests and a user-worker test module

Suite vhost_task tests the C ABI as vhost and KVM call it, against
either implementation: the worker is a user worker of the creator's
process, no wake-up is lost, stop waits for a busy function, and
creation fails cleanly at RLIMIT_NPROC or with a signal pending. Suite
vhost_task_rust tests the Rust layers. Suite vt_bench
(CONFIG_VHOST_TASK_BENCH) measures creation, wake-to-run latency and
memory per task.

Module user_worker_test (CONFIG_RUST_USER_WORKER_TEST) is a misc
device, /dev/user-worker-test, through which a user process creates,
wakes and stops user workers of its own with the safe
kernel::task::user_worker API, so that the abstraction is tested from
user space too: a worker is a thread of the process that made it, it
ends when that process is killed, a worker may stop a worker of another
call site inside its exit section, and the module may be unloaded while
its workers' threads are still exiting (with
CONFIG_USER_WORKER_EXIT_DELAY_TEST, they linger there). Built as a
module, it also shows that the abstraction links from one.
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

# The series tree: build/series/linux-source-TREE for Debian's tree, build/series/NAME-HASH for
# another git tree (lib.sh's copy build/trees/NAME-HASH of the one KDIR= names).
series_dir() {
	if [ "$KDIR" = "$DEFAULT_KDIR" ]; then
		echo "$BUILD/series/linux-source-$TREE"
	else
		echo "$BUILD/series/$(basename "$KDIR")"
	fi
}

# The pristine tree of TREE as a git repository, at series_dir: the same path relative to its
# build directory as the development tree has, so that the compiler cache serves both.
pristine() {
	local dir
	dir=$(series_dir)
	if [ "$KDIR" != "$DEFAULT_KDIR" ]; then
		# The series is made against the tree's HEAD, in a directory of its own, made again
		# when that HEAD has moved.
		if [ -d "$dir/.git" ] &&
			[ "$(git -C "$dir" rev-parse -q --verify vt-base)" != "$(git -C "$KDIR" rev-parse HEAD)" ]; then
			rm -rf "$dir"
		fi
	fi
	if [ ! -d "$dir/.git" ]; then
		rm -rf "$dir"
		if [ "$KDIR" = "$DEFAULT_KDIR" ]; then
			GET_TREE_DEST=$dir "$ROOT/scripts/get-tree.sh"
		else
			git -C "$KDIR" rev-parse HEAD >/dev/null 2>&1 ||
				die "KDIR=$KDIR is not a git tree: no pristine copy of it to make patches against"
			stage "cloning the pristine HEAD of $KDIR"
			git -c init.defaultBranch=master clone -q --shared "$KDIR" "$dir" >&2
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

# b4, offline (see the header), in the series tree $tree (of the caller). Debian's python3
# first in PATH: checkpatch.pl's scripts/spdxcheck.py needs its python3-ply and python3-git.
b4_() {
	(cd "$tree" && PATH=/usr/bin:$PATH http_proxy=http://127.0.0.1:9 https_proxy=http://127.0.0.1:9 \
		HTTP_PROXY=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9 no_proxy= NO_PROXY= \
		"$B4" "$@")
}

# The series tree's own configuration for b4 (its .git/config; nothing global changes).
b4_config() {
	git -C "$tree" config user.name "$name"
	git -C "$tree" config user.email "$email"
	# 'b4 prep --check' runs b4's checkpatch command with --strict and the exceptions above.
	git -C "$tree" config b4.prep-perpatch-check-cmd \
		"$tree/scripts/checkpatch.pl -q --terse --no-summary --mailback --showfile --strict --ignore $CHECKPATCH_IGNORE"
	# A mail command that refuses: 'b4 send' without -o fails here instead of sending.
	local refuse=$BUILD/series/refuse-to-send
	printf '#!/bin/sh\necho "make patches does not send mail: b4 send -o DIR writes it" >&2\nexit 1\n' >"$refuse"
	chmod +x "$refuse"
	git -C "$tree" config sendemail.sendmailcmd "$refuse"
	# No patatt signature: that is for the real send, with the sender's key.
	git -C "$tree" config b4.send-no-patatt-sign yes
}

# A hash of the patches of git range $1: authors, messages and diffs, not commit ids.
fingerprint() {
	g log --reverse -p --format='%an <%ae>%n%B' "$1" | sha1sum | cut -d' ' -f1
}

# The commits of range $1 again, each with the same tree, author and message, on top of
# commit $2; prints the last. Exact when the range's base and $2 have the same tree (the
# cover letter commit is empty), and needs no checkout.
reparent() {
	local c parent=$2
	for c in $(g rev-list --reverse "$1"); do
		# The message as it is stored (log's %B would add a newline to it).
		parent=$(g cat-file commit "$c" | sed '1,/^$/d' |
			GIT_AUTHOR_NAME=$(g log -1 --format=%an "$c") GIT_AUTHOR_EMAIL=$(g log -1 --format=%ae "$c") \
				GIT_AUTHOR_DATE=$(g log -1 --format=%aD "$c") g commit-tree "$c^{tree}" -p "$parent" -F -)
	done
	echo "$parent"
}

# Kconfig or Kbuild $1 of the project without the lines that name tests/ and the comments
# just above them (the tests come in the last patch).
without_tests() {
	awk '/^#/ { held = held $0 "\n"; next }
		/tests\// { held = ""; next }
		{ printf "%s", held; held = ""; print }
		END { printf "%s", held }' "$1" | sed -e :a -e '/^\n*$/{$d;N;ba' -e '}'
}

# The parts as commits on the branch vt-series, from vt-base.
commit_parts() {
	local part d=$tree/kernel/vhost_task_rs
	g checkout -q -f -B vt-series vt-base
	# -x too: 6.12's make htmldocs writes Documentation/networking/netlink_spec/*.rst into
	# the source tree, which its .gitignore hides, and 'git add -f' would take them.
	g clean -q -fdx
	for part in backport helpers abstraction lock-class vhost tests; do
		if [ $part = lock-class ]; then
			KDIR=$tree LINK_PARTS=abstraction LINK_COPY=1 "$ROOT/scripts/link-tree.sh"
		elif [ $part = tests ]; then
			KDIR=$tree LINK_PARTS=vhost LINK_COPY=1 "$ROOT/scripts/link-tree.sh"
			# The Rust test module of the abstraction (tests/module), which the project's
			# Kconfig and Kbuild name, comes with the KUnit suites.
			mkdir -p "$d/tests/module"
			cp "$ROOT"/tests/module/{Kconfig,Kbuild,*.rs} "$d/tests/module/"
		else
			KDIR=$tree LINK_PARTS=$part LINK_COPY=1 LINK_NO_TESTS=1 "$ROOT/scripts/link-tree.sh"
			if [ $part = vhost ]; then
				without_tests "$ROOT/Kconfig" >"$d/Kconfig"
				without_tests "$ROOT/Kbuild" >"$d/Kbuild"
			fi
			# The abstraction as it was before the lock class per call site of the next patch.
			if [ $part = abstraction ]; then
				python3 "$ROOT/scripts/series/before-lock-class.py" "$tree" ||
					die "could not make the abstraction's patch without its lock class per call site"
			fi
		fi
		g add -f -A
		# The backports are empty on a tree that has them all (7.3).
		g diff --cached --quiet && continue
		message $part | g commit -q -s -F -
	done
}

# The cover letter's subject and text, without b4's sections, into file $1.
cover_text() {
	local n backport=
	n=$(g rev-list --count vt-base..vt-series)
	if g log --format=%s vt-base..vt-series | grep '^rust: backport ' >/dev/null; then
		backport="- a backport of what later kernels have and the abstraction uses;
"
	fi
	cat >"$1" <<COVER
vhost_task in Rust, on a user-worker abstraction

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

The $n patches, against Linux $version:
${backport}- the helpers and bindings user workers need;
- kernel::task::user_worker, with doctests and
  Documentation/rust/user_worker.rst;
- the Rust vhost_task (CONFIG_VHOST_TASK_RUST): the worker loop and its
  stop/SIGKILL protocol in safe Rust, over it a thin C-ABI layer; one
  allocation and one task reference per task, as in C;
- KUnit suites (the C ABI against either implementation, and the Rust
  layers), and a Rust module that drives the abstraction from user space.

Tested on x86_64 under QEMU, on Linux 6.12 and 7.3: the KUnit suites on
both implementations, the doctests, and end-to-end with QEMU, tap
traffic, vhost-vsock, vhost-scsi and KVM's NX recovery, with vhost,
vhost-net, vhost-vsock, vhost-scsi, tun and KVM built as modules.
COVER
}

# Edit the cover letter of the prep branch: our subject and text (file $1), then the
# To/Cc trailers that 'b4 prep --auto-to-cc' added, wherever it put them, then b4's
# "Changes in vN" sections below the "---", file $2's new one first if there is one.
# With $3 = drop, without the To/Cc trailers: a new revision gets its recipients afresh.
edit_cover() {
	local editor=$BUILD/series/edit-cover.py
	cat >"$editor" <<'PY'
import os, re, sys
path = sys.argv[1]
old = open(path).read()
is_trailer = re.compile(r"^(To|Cc): ").match
# Once each: b4 does not see the trailers above a "---" section, and adds them again.
trailers = list(dict.fromkeys(l for l in old.splitlines() if is_trailer(l)))
if os.environ.get("VT_DROP_TRAILERS") == "drop":
    trailers = []
head, sep, rest = old.partition("\n---\n")
new = open(os.environ["VT_COVER"]).read().rstrip("\n") + "\n"
if trailers:
    new += "\n" + "\n".join(trailers) + "\n"
sections = "\n".join(l for l in rest.splitlines() if not is_trailer(l))
sections = re.sub(r"\n{3,}", "\n\n", sections).strip("\n")
changes = os.environ.get("VT_CHANGES", "")
if changes and os.path.exists(changes):
    sections = (open(changes).read().strip("\n") + "\n\n" + sections).strip("\n")
if sections:
    new += "\n---\n" + sections + "\n"
if new.strip() != old.strip():
    open(path, "w").write(new)
PY
	GIT_EDITOR="python3 $editor" VT_COVER=$1 VT_CHANGES=${2:-} VT_DROP_TRAILERS=${3:-} \
		b4_ prep --edit-cover >"$BUILD/log/patches-b4-edit-cover-$TREE.log" 2>&1 || {
		cat "$BUILD/log/patches-b4-edit-cover-$TREE.log" >&2
		return 1
	}
}

# The cover letter commit of the prep branch: its first, empty, commit after vt-base.
cover_commit() {
	# (awk reads it all: with head, git would die of SIGPIPE, and pipefail with it)
	g rev-list --reverse "vt-base..$BRANCH" | awk 'NR == 1'
}

# Field $1 of the series in b4's tracking data, the JSON at the end of the cover commit.
tracking() {
	g log -1 --format=%B "$(cover_commit)" | python3 -c '
import json, sys
text = sys.stdin.read().split("--- b4-submit-tracking ---", 1)[1]
text = "\n".join(l for l in text.splitlines() if not l.startswith("#"))
print(json.loads(text)["series"][sys.argv[1]])' "$1"
}

# The series for the selected tree: the b4 prep branch, and its mails in build/patches/TREE.
make_series() {
	local version out cover rev changeid tagged changes
	tree=$(pristine)
	version=$(tree_version "$tree")
	out=$BUILD/patches/$TREE
	stage "the series for Linux $version, with b4 $("$B4" --version) (${tree#"$ROOT"/}, branch $BRANCH)"
	b4_config
	commit_parts

	if ! g rev-parse -q --verify "refs/heads/$BRANCH" >/dev/null; then
		# From the branch vt-series (b4 needs a branch to start from), at vt-base.
		b4_ prep -n "$SERIES" -f vt-base >&2
		b4_ prep --set-prefixes $PREFIXES >&2
	else
		g checkout -q -f "$BRANCH"
		# A branch whose cover commit another identity made: b4 finds it under ours only.
		[ "$(g log -1 --format=%ce "$(cover_commit)")" = "$email" ] || b4_ prep --claim >&2
	fi
	cover=$(cover_commit)
	rev=$(tracking revision)
	changeid=$(tracking change-id)
	[ "$(g rev-parse "$cover^{tree}")" = "$(g rev-parse "vt-base^{tree}")" ] ||
		die "the cover letter commit of $BRANCH is not empty: remove $tree"

	changes=$BUILD/series/changes-$TREE.txt
	rm -f "$changes"
	if [ "$(fingerprint "$cover..$BRANCH")" != "$(fingerprint vt-base..vt-series)" ]; then
		if [ -n "$(g rev-list "$cover..$BRANCH")" ]; then
			# v$rev is what build/patches/TREE has: keep it as b4 keeps a revision it sent,
			# as the tag sent/CHANGE-ID-vN of its patches on vt-base, with the cover
			# letter and base-commit/change-id lines that 'b4 prep --compare-to' reads.
			tagged=$(reparent "$cover..$BRANCH" vt-base)
			{
				g log -1 --format=%B "$cover" | sed '/^--- b4-submit-tracking ---$/,$d'
				printf -- '---\nbase-commit: %s\nchange-id: %s\n' "$(g rev-parse vt-base)" "$changeid"
			} | g tag -f -a -F - "sent/$changeid-v$rev" "$tagged" >/dev/null
			{
				echo "Changes in v$((rev + 1)):"
				g range-diff --no-color "vt-base..$tagged" vt-base..vt-series |
					sed -nE 's/^ *[0-9-]+: +[0-9a-f-]+ ([!<>]) +[0-9-]+: +[0-9a-f-]+ (.*)$/\1 \2/p' |
					sed -e 's/^! \(.*\)/- \1: changed/' -e 's/^< \(.*\)/- \1: dropped/' \
						-e 's/^> \(.*\)/- \1: new/'
				echo "- v$rev: written by make patches, not sent (b4 prep --compare-to v$rev)"
			} >"$changes"
			b4_ prep --force-revision $((rev + 1)) >&2
			rev=$((rev + 1))
			cover=$(cover_commit)
			info "the patches changed since v$((rev - 1)): the series is now v$rev"
		fi
		g update-ref "refs/heads/$BRANCH" "$(reparent vt-base..vt-series "$cover")"
		g checkout -q -f "$BRANCH"
		# The recipients of the new patches only, and the new changelog.
		cover_text "$BUILD/series/cover-$TREE.txt"
		edit_cover "$BUILD/series/cover-$TREE.txt" "$changes" drop
	fi

	logged "$BUILD/log/patches-b4-auto-to-cc-$TREE.log" b4_ prep --auto-to-cc
	# Our text (it may have changed, the series not), the trailers above the "---".
	cover_text "$BUILD/series/cover-$TREE.txt"
	edit_cover "$BUILD/series/cover-$TREE.txt"

	rm -rf "$out"
	logged "$BUILD/log/patches-b4-send-$TREE.log" b4_ send -o "$out" --no-sign
	SERIES_REV=$rev
	info "b4 send -o ${out#"$ROOT"/}: v$rev, $(mails_summary "$out")"
}

# "N mails to T addresses, Cc C" for the mails in directory $1 (the cover letter's).
mails_summary() {
	python3 - "$1" <<'PY'
import email, email.utils, glob, os, sys
files = sorted(glob.glob(os.path.join(sys.argv[1], "*.eml")))
cover = email.message_from_binary_file(open(files[0], "rb"))
to = {a for _, a in email.utils.getaddresses(cover.get_all("To", []))}
cc = {a for _, a in email.utils.getaddresses(cover.get_all("Cc", []))}
print(f"{len(files)} mails (cover letter and {len(files) - 1} patches), to {len(to)} addresses, Cc {len(cc)}")
PY
}

# The checks of the header, on the series and the mails in build/patches/TREE.
check_series() {
	local tree out p sobj start mails
	tree=$(series_dir)
	out=$BUILD/patches/$TREE
	stage "checking the series for Linux $TREE"
	mails=$(ls "$out"/*.eml | grep -v '/0000-')

	g checkout -q -f "$BRANCH"
	local b4log=$BUILD/log/patches-b4-check-$TREE.log summary
	b4_ prep --check >"$b4log" 2>&1 || true
	summary=$(grep -E '^Success: [0-9]+, Warning: [0-9]+, Error: [0-9]+$' "$b4log" || true)
	if [ -n "$summary" ] && [[ $summary == *", Warning: 0, Error: 0" ]]; then
		ok "b4 prep --check: $summary"
	else
		bad "b4 prep --check: ${summary:-no summary} (${b4log#"$ROOT"/})"
		grep -vE '^(Checking patches using:|---|  /)' "$b4log" | sed -e 's/\x1b\[[0-9;]*m//g' -e 's/^/      | /' >&2
	fi
	# What 'b4 send' checks before it sends: the cover edited, checked, recipients added.
	if b4_ prep --show-info preflight-checks-failing 2>/dev/null | grep -x False >/dev/null; then
		ok "b4's pre-flight checks pass (cover letter, checks, recipients)"
	else
		bad "b4's pre-flight checks fail:"
		b4_ prep --show-info 2>&1 | grep -E '^(needs|misplaced|preflight)' | sed 's/^/      | /' >&2
	fi

	g checkout -q -f -B vt-am vt-base
	g clean -q -fd
	# shellcheck disable=SC2086 # one mail a word
	if g am -q $mails >"$BUILD/log/patches-am-$TREE.log" 2>&1; then
		ok "the mails apply with git am to pristine Linux $TREE"
	else
		bad "git am on pristine Linux $TREE (build/log/patches-am-$TREE.log)"
		g am --abort 2>/dev/null || true
		return
	fi
	[ "$(g diff "$BRANCH" vt-am --stat | wc -l)" -eq 0 ] ||
		bad "what git am made differs from the branch $BRANCH"

	for p in $mails; do
		if (cd "$tree" && ./scripts/checkpatch.pl --strict --no-tree -q --ignore "$CHECKPATCH_IGNORE" \
			"$p") >"$BUILD/log/checkpatch-$TREE.log" 2>&1; then
			ok "checkpatch --strict: $(basename "$p")"
		else
			bad "checkpatch --strict: $(basename "$p")"
			sed 's/^/      | /' "$BUILD/log/checkpatch-$TREE.log" >&2
		fi
	done

	sobj=$BUILD/series/obj-rust$TREE_TAG
	mkdir -p "$sobj"
	if [ "${PATCHES_QUICK:-0}" = 1 ]; then
		# The docs only, on the whole series: rustdoc with the Rust kernel's config if
		# there is one already (it builds the kernel crate's dependencies, not a kernel).
		if [ -f "$(objdir rust)/.config" ]; then
			cp "$(objdir rust)/.config" "$sobj/.config"
			series_make "$BUILD/log/patches-rustdoc-$TREE.log" olddefconfig
			check_docs rustdoc
		else
			info "no $(objdir rust)/.config yet (make kernel${KDIR_GIVEN:+ KDIR=$KDIR_GIVEN} makes one): rustdoc left out"
		fi
		check_docs htmldocs
		return 0
	fi
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
			series_make "$BUILD/log/patches-build-$TREE.log" bzImage modules; then
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
	if series_make "$BUILD/log/patches-clippy-$TREE.log" CLIPPY=1 bzImage modules &&
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
	check_docs rustdoc
	check_docs htmldocs
}

# scripts/docs.sh $1 on the whole series, in its build directory $sobj (of the caller).
check_docs() {
	local line
	if line=$(KDIR=$tree DOCS_LOG=$BUILD/log/patches-$1-$TREE.log "$ROOT/scripts/docs.sh" "$1" "$sobj" 2>&1); then
		ok "${line#*ok: }"
	else
		bad "$1 on the whole series:"
		sed 's/^/      | /' <<<"$line" >&2
	fi
}

# TREE_LIST="6.12 7.3" makes a series for each (make patches without TREE or KDIR).
trees=${TREE_LIST:-$TREE}
written=()
for t in $trees; do
	[ "$t" = "$TREE" ] || select_tree "$t" ""
	make_series
	check_series
	written+=("build/patches/$TREE/: v$SERIES_REV, $(mails_summary "$BUILD/patches/$TREE")")
done
stage "the mails b4 wrote (b4 send -o), which 'git send-email' or 'b4 send' would send:"
printf '    %s\n' "${written[@]}" >&2
[ $failures -eq 0 ] || die "the series failed $failures check(s); see above"
info "the series passed every check$([ "${PATCHES_QUICK:-0}" != 1 ] || echo " of PATCHES_QUICK=1 (no kernel builds)")"
