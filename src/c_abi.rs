// SPDX-License-Identifier: GPL-2.0

//! The C ABI of `<linux/sched/vhost_task.h>` over [`crate::vhost_task`].
//!
//! C header: [`include/linux/sched/vhost_task.h`](srctree/include/linux/sched/vhost_task.h)
//!
//! `vhost_task_exports.c` exports these four functions with `EXPORT_SYMBOL_GPL`. Only the
//! translation between C pointers and the Rust types lives here: a `struct vhost_task *` is the
//! pointer that [`NewUserWorker::into_raw`] makes of the task's user worker with
//! `ForeignOwnable`, and it owns the worker, its one allocation and its one task reference.
//! `vhost_task_start()` and `vhost_task_stop()` take it back.

use crate::vhost_task::{NewVhostTask, VhostShared, VhostTask, VhostWork};
use core::ffi::{c_void, CStr};
use kernel::{
    bindings,
    ffi::c_char,
    prelude::*,
    task::user_worker::{NewUserWorker, UserWorker, WorkerContext},
};

/// `bool (*fn)(void *)`, the work function of the C callers.
type WorkFn = unsafe extern "C" fn(*mut c_void) -> bool;
/// `void (*handle_sigkill)(void *)`.
type KillFn = unsafe extern "C" fn(*mut c_void);

/// The work of a task made by `vhost_task_create()`: the C caller's callbacks and argument.
///
/// # Invariants
///
/// `func` and `handle_sigkill` may be called with `arg` from the worker until
/// `vhost_task_stop()` returns (the contract of `vhost_task_create()`).
struct CWork {
    func: WorkFn,
    handle_sigkill: KillFn,
    arg: *mut c_void,
}

// SAFETY: By the type invariant the callbacks may be called with `arg` from the worker thread,
// and the work is dropped in the thread that stops the task, which only drops the pointers.
unsafe impl Send for CWork {}

// SAFETY: The callbacks are only called from the worker, one at a time; sharing the pointers
// themselves is harmless.
unsafe impl Sync for CWork {}

impl VhostWork for CWork {
    fn run(&self, _ctx: &WorkerContext<'_>) -> bool {
        // SAFETY: By the type invariant `func` may be called with `arg` from the worker, which
        // this is, until `vhost_task_stop()` returns, which it has not: the worker runs.
        unsafe { (self.func)(self.arg) }
    }

    fn killed(&self) {
        // SAFETY: As for `run`.
        unsafe { (self.handle_sigkill)(self.arg) }
    }
}

/// What a `struct vhost_task *` points to.
type Shared = VhostShared<CWork>;

/// Creates an inactive vhost task named `name` in the calling thread's process.
///
/// The task will call `func(arg)` in its loop, and `handle_sigkill(arg)` if the process is
/// killed before the task is stopped. Returns it, or `ERR_PTR(-errno)`: the error of
/// `copy_process()`, `ENOMEM`, or `EINVAL` for a null `func`, `handle_sigkill` or `name`.
///
/// # Safety
///
/// `name`, if not null, must be a NUL-terminated string, valid during the call. `func` and
/// `handle_sigkill` must be callable with `arg` from the worker thread until
/// `vhost_task_stop()` returns.
#[cfg_attr(vt_export, kernel::macros::export)]
#[cfg_attr(not(vt_export), no_mangle)]
pub unsafe extern "C" fn vhost_task_create(
    func: Option<WorkFn>,
    handle_sigkill: Option<KillFn>,
    arg: *mut c_void,
    name: *const c_char,
) -> *mut bindings::vhost_task {
    let (Some(func), Some(handle_sigkill), false) = (func, handle_sigkill, name.is_null()) else {
        return EINVAL.to_ptr();
    };
    // SAFETY: `name` is not null, and the caller promises a valid C string.
    let name = unsafe { CStr::from_char_ptr(name) };
    // INVARIANT: The caller promises that the callbacks may be called until the stop.
    let work = CWork {
        func,
        handle_sigkill,
        arg,
    };
    match NewVhostTask::new(name, work) {
        Ok(task) => task.into_worker().into_raw().cast(),
        Err(e) => e.to_ptr(),
    }
}

/// Starts a task from `vhost_task_create()`: its loop runs from now on.
///
/// Starting it again only warns.
///
/// # Safety
///
/// `vtsk` must come from `vhost_task_create()` and not be stopped. No other
/// `vhost_task_start()` or `vhost_task_stop()` on it may run concurrently.
#[cfg_attr(vt_export, kernel::macros::export)]
#[cfg_attr(not(vt_export), no_mangle)]
pub unsafe extern "C" fn vhost_task_start(vtsk: *mut bindings::vhost_task) {
    // SAFETY: `vtsk` comes from `into_raw()` in `vhost_task_create()` and is handed back to it
    // below; no other start or stop runs meanwhile, as the caller promises.
    // `into_raw()` makes `vtsk` again, which owns the worker again.
    match unsafe { NewUserWorker::<Shared>::from_raw(vtsk.cast()) } {
        Ok(created) => _ = created.start().into_raw(),
        Err(started) => {
            pr_warn!("vhost_task_start() on a task that was started already\n");
            _ = started.into_raw();
        }
    }
}

/// Stops the task, waits until its worker has exited, and frees it.
///
/// `func` is not called once this returns, and `handle_sigkill` is not called for this stop.
/// A task that was never started exits without calling either.
///
/// # Safety
///
/// `vtsk` must come from `vhost_task_create()` and not be stopped before; it is freed. No
/// `vhost_task_start()` or `vhost_task_wake()` on it may run concurrently, as in C, where a wake
/// that overlaps the stop uses the task after it is freed.
#[cfg_attr(vt_export, kernel::macros::export)]
#[cfg_attr(not(vt_export), no_mangle)]
pub unsafe extern "C" fn vhost_task_stop(vtsk: *mut bindings::vhost_task) {
    // SAFETY: `vtsk` comes from `into_raw()` in `vhost_task_create()`, and is taken back once:
    // the caller does not use it after this.
    match unsafe { NewUserWorker::<Shared>::from_raw(vtsk.cast()) } {
        // Never started: its worker exits without calling either function.
        Ok(created) => drop(created),
        // Waits for the worker's exit.
        Err(started) => VhostTask::from_worker(started).stop(),
    }
}

/// Wakes the task's worker so that it calls `func` again.
///
/// # Safety
///
/// `vtsk` must come from `vhost_task_create()`, and no `vhost_task_stop()` on it may have begun.
#[cfg_attr(vt_export, kernel::macros::export)]
#[cfg_attr(not(vt_export), no_mangle)]
pub unsafe extern "C" fn vhost_task_wake(vtsk: *mut bindings::vhost_task) {
    // SAFETY: `vtsk` comes from `into_raw()` in `vhost_task_create()` and is not taken back
    // while this runs, as the caller promises.
    unsafe { UserWorker::<Shared>::wake_up_raw(vtsk.cast()) };
}
