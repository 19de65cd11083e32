#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""The user-worker abstraction as it is before the patch "a lock class per call site".

scripts/patches.sh makes the abstraction's patch from the files this prints, and the next patch
from the files as they are: new_user_worker!() and its lock class per call site come in a patch
of their own. It rewrites, in a kernel tree that holds copies of them,

    rust/kernel/task/user_worker.rs     one lock class for every worker's exit, no macro
    Documentation/rust/user_worker.rst  the same, in the page and its example

and fails, naming the text it looked for, when a file no longer has it: after a change to one
of these passages, change the rewrite below to match.

    before-lock-class.py KDIR
"""
import os
import re
import sys


def cut(s, start, end, path):
    """`s` without the text from `start` up to (not including) `end`."""
    if start not in s or end not in s:
        sys.exit(f"{path}: no longer has {start[:60]!r}...{end[:40]!r}: update {sys.argv[0]}")
    a = s.index(start)
    return s[:a] + s[s.index(end, a):]


def sub(s, old, new, path):
    if old not in s:
        sys.exit(f"{path}: no longer has {old[:70]!r}: update {sys.argv[0]}")
    return s.replace(old, new)


def rust(path):
    s = open(path).read()
    s = cut(s, "//! Workers are created with [`new_user_worker!`]", "//! All of this can be used", path)
    s = sub(s, "//! [`new_mutex!`]: crate::sync::new_mutex\n//!\n", "", path)
    s = cut(s, "/// Creates a [`NewUserWorker`] with a lockdep class", "/// The clone flags", path)
    s = s.replace('new_user_worker!(c"', 'NewUserWorker::new(c"')
    s = re.sub(r"new_user_worker, (Wait, )?WorkerContext",
               lambda m: "NewUserWorker, " + (m.group(1) or "") + "WorkerContext", s)
    s = sub(s, "        Completion, LockClassKey,\n", "        Completion,\n", path)
    s = cut(s, "    /// Initialises the map with lock class `key`", "    /// Runs `f` with the map held", path)
    s = sub(s, "    /// Runs `f` with the map held", '''    /// Initialises the map: every worker's is of one lock class, whose key and name are this
    /// crate's.
    fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            map <- Opaque::ffi_init(|map| {
                #[cfg(CONFIG_LOCKDEP)]
                // SAFETY: `map` is valid for writes; the name and the key are static.
                unsafe {
                    bindings::lockdep_init_map(
                        map,
                        c"user_worker_exit".as_char_ptr(),
                        crate::static_lock_class!().as_ptr(),
                    )
                };
                #[cfg(not(CONFIG_LOCKDEP))]
                let _ = map;
            }),
        })
    }

    /// Runs `f` with the map held''', path)
    for old, new in [
        ("    fn new<'a>(\n        name: &'a CStr,\n        run: unsafe fn(*const Header),\n"
         "        class_name: &'static str,\n        key: Pin<&'static LockClassKey>,\n"
         "    ) -> impl PinInit<Self, Error> + 'a {\n",
         "    fn new<'a>(name: &'a CStr, run: unsafe fn(*const Header)) -> impl PinInit<Self, Error> + 'a {\n"),
        ("ExitMap::new(class_name, key)", "ExitMap::new()"),
        ("; [`new_user_worker!`] calls this.", "."),
        ("    /// `func` on `data`, then exits. The waits for its exit are of the lock class `key`, named\n"
         "    /// `class_name` if that ends with its only NUL (`user_worker_exit` otherwise).\n",
         "    /// `func` on `data`, then exits.\n"),
        ("        func: fn(&WorkerContext<'_>, &T),\n        class_name: &'static str,\n"
         "        key: Pin<&'static LockClassKey>,\n", "        func: fn(&WorkerContext<'_>, &T),\n"),
        ("Header::new(name, run::<T>, class_name, key)", "Header::new(name, run::<T>)"),
    ]:
        s = sub(s, old, new, path)
    if "new_user_worker" in s or "LockClassKey" in s:
        sys.exit(f"{path}: the rewrite left new_user_worker or LockClassKey: update {sys.argv[0]}")
    open(path, "w").write(s)


def rst(path):
    s = open(path).read()
    s = sub(s, '''``new_user_worker!(name, data, func)`` creates the worker, inactive: the
thread exists but has not run. It will run ``func``, a
``fn(&WorkerContext<'_>, &T)``, on ``data``, an initialiser of a ``T`` that the
worker and its handle share. The data lives in one allocation with the
worker's own bookkeeping, and the handle owns that allocation. The macro calls
``NewUserWorker::new()`` with a lock class made at the call site (see
`Lockdep`_). The creator can finish its set-up, then
``NewUserWorker::start()`` returns a running ``UserWorker``.''', '''``NewUserWorker::new(name, data, func)`` creates the worker, inactive: the
thread exists but has not run. It will run ``func``, a
``fn(&WorkerContext<'_>, &T)``, on ``data``, an initialiser of a ``T`` that the
worker and its handle share. The data lives in one allocation with the
worker's own bookkeeping, and the handle owns that allocation. The creator can
finish its set-up, then ``NewUserWorker::start()`` returns a running
``UserWorker``.''', path)
    s = sub(s, '''when the two meet. Each call site of ``new_user_worker!`` has a lock class of
its own, so a worker that waits for another kind of worker in its exit section
is not taken for recursive locking. Without ``CONFIG_LOCKDEP`` none of this
costs anything.''', '''when the two meet. The exits of all workers are of one lock class,
``user_worker_exit``. Without ``CONFIG_LOCKDEP`` none of this costs anything.''', path)
    s = sub(s, "task::user_worker::{new_user_worker, Wait, WorkerContext},",
            "task::user_worker::{NewUserWorker, Wait, WorkerContext},", path)
    s = sub(s, 'new_user_worker!(c"example", data, wait_for_stop)',
            'NewUserWorker::new(c"example", data, wait_for_stop)', path)
    s = sub(s, '''the examples of ``new_user_worker!``, ``NewUserWorker``, ``UserWorker`` and
``WorkerContext``.''', "the examples of ``NewUserWorker``, ``UserWorker`` and ``WorkerContext``.", path)
    if "new_user_worker" in s:
        sys.exit(f"{path}: the rewrite left new_user_worker: update {sys.argv[0]}")
    open(path, "w").write(s)


def main():
    kdir = sys.argv[1]
    rust(os.path.join(kdir, "rust/kernel/task/user_worker.rs"))
    rst(os.path.join(kdir, "Documentation/rust/user_worker.rst"))


if __name__ == "__main__":
    main()
