// SPDX-License-Identifier: GPL-2.0

//! The C ABI of `<linux/sched/vhost_task.h>` over [`crate::vhost_task`].
//!
//! C header: [`include/linux/sched/vhost_task.h`](srctree/include/linux/sched/vhost_task.h)
//!
//! `vhost_task_exports.c` exports these four functions with `EXPORT_SYMBOL_GPL`. Only the
//! translation between C pointers and the Rust types lives here.

use crate::vhost_task::{NewVhostTask, VhostTask, VhostWork};
use core::{
    cell::UnsafeCell,
    ffi::c_void,
    ptr,
    sync::atomic::{AtomicPtr, Ordering},
};
use kernel::{bindings, ffi::c_char, prelude::*, str::CStr, task::Task};

/// `bool (*fn)(void *)`, the work function of the C callers.
type WorkFn = unsafe extern "C" fn(*mut c_void) -> bool;
/// `void (*handle_sigkill)(void *)`.
type KillFn = unsafe extern "C" fn(*mut c_void);

/// What a C `struct vhost_task *` points to: the callbacks and argument a C caller passed to
/// `vhost_task_create()`, and the handle of the task that runs them.
///
/// It is the work of that task, so it lives in the one allocation the user worker shares
/// between its handle and its thread, and it owns that handle itself, in `state`: one
/// allocation and one task reference per task, as in C. The allocation keeps itself alive
/// through that handle until `vhost_task_stop()` takes it out and drops it.
///
/// # Invariants
///
/// - `task` is set, before the pointer to this is handed out to a C caller, to the task of the
///   handle in `state`, and never changes afterwards.
/// - `state` is `Some` from then on until `vhost_task_stop()` takes it, except while
///   `vhost_task_start()` replaces it; its handle holds a reference to `task` and owns the
///   allocation this lives in.
/// - `func` and `handle_sigkill` may be called with `arg` from the worker until
///   `vhost_task_stop()` returns (the contract of `vhost_task_create()`).
struct CWork {
    func: WorkFn,
    handle_sigkill: KillFn,
    arg: *mut c_void,
    /// The worker's task, for `vhost_task_wake()`, which needs nothing else.
    ///
    /// It is set before the pointer to this is handed out and never changed afterwards; the
    /// handle in `state` holds a reference to the task.
    task: AtomicPtr<Task>,
    /// The handle of the task: created, or started.
    ///
    /// Only `vhost_task_create()` (before the pointer is handed out), `vhost_task_start()` and
    /// `vhost_task_stop()` touch it, which the C callers never run concurrently with each other;
    /// the worker never does. It is `None` only while `vhost_task_start()` runs.
    state: UnsafeCell<Option<State>>,
}

// SAFETY: `vhost_task_create()`'s contract is that `fn` and `handle_sigkill` may be called with
// `arg` from the worker thread for as long as the task exists. The handle in `state` may be
// dropped from any thread.
unsafe impl Send for CWork {}

// SAFETY: The callbacks are only called from the worker, one at a time; sharing the pointers
// themselves is harmless. `task` is atomic, and `state` is only touched by the C ABI calls that
// the C callers serialise (see its documentation).
unsafe impl Sync for CWork {}

impl VhostWork for CWork {
    fn run(&self) -> bool {
        // SAFETY: The C caller gave `func` and `arg` to be called from the worker until
        // `vhost_task_stop()` returns, which it has not yet.
        unsafe { (self.func)(self.arg) }
    }

    fn killed(&self) {
        // SAFETY: As for `run`.
        unsafe { (self.handle_sigkill)(self.arg) }
    }
}

/// The two states of a task the C side holds.
enum State {
    Created(NewVhostTask<CWork>),
    Started(VhostTask<CWork>),
}

/// The exact types of the header's declarations: a mismatch fails the build.
const _: [unsafe extern "C" fn(
    Option<WorkFn>,
    Option<KillFn>,
    *mut c_void,
    *const c_char,
) -> *mut bindings::vhost_task; 2] = [bindings::vhost_task_create, vhost_task_create];
const _: [unsafe extern "C" fn(*mut bindings::vhost_task); 6] = [
    bindings::vhost_task_start,
    vhost_task_start,
    bindings::vhost_task_stop,
    vhost_task_stop,
    bindings::vhost_task_wake,
    vhost_task_wake,
];

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
#[no_mangle]
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
    let work = CWork {
        func,
        handle_sigkill,
        arg,
        task: AtomicPtr::new(ptr::null_mut()),
        state: UnsafeCell::new(None),
    };
    let created = match NewVhostTask::new(name, work) {
        Ok(created) => created,
        Err(e) => return e.to_ptr(),
    };
    let work = created.work();
    work.task
        .store(ptr::from_ref(created.task()).cast_mut(), Ordering::Relaxed);
    let vtsk = ptr::from_ref(work);
    // SAFETY: `vtsk` points into the allocation shared by `created` and its worker, which the
    // move below does not move. The worker has not started and never touches `state`, and no
    // other thread knows `vtsk` yet. From now on the allocation owns its handle.
    unsafe { *(*vtsk).state.get() = Some(State::Created(created)) };
    vtsk.cast_mut().cast()
}

/// Starts a task from `vhost_task_create()`: its loop runs from now on.
///
/// Starting it again only warns.
///
/// # Safety
///
/// `vtsk` must come from `vhost_task_create()` and not be stopped. No other
/// `vhost_task_start()` or `vhost_task_stop()` on it may run concurrently.
#[no_mangle]
pub unsafe extern "C" fn vhost_task_start(vtsk: *mut bindings::vhost_task) {
    let vtsk = vtsk.cast_const().cast::<CWork>();
    // SAFETY: `vtsk` is a live `CWork` and nothing else touches its state meanwhile, as the
    // caller promises: only start and stop do, and the worker never does.
    let state = unsafe { &mut *(*vtsk).state.get() };
    *state = match state.take() {
        Some(State::Created(created)) => Some(State::Started(created.start())),
        started => {
            pr_warn!("vhost_task_start() on a task that was started already\n");
            started
        }
    };
}

/// Stops the task, waits until its worker has exited, and frees it.
///
/// `func` is not called once this returns, and `handle_sigkill` is not called for this stop.
/// A task that was never started exits without calling either.
///
/// # Safety
///
/// `vtsk` must come from `vhost_task_create()` and not be stopped before; it is freed. No
/// `vhost_task_start()` on it may run concurrently, and `vhost_task_wake()` may only until this
/// returns.
#[no_mangle]
pub unsafe extern "C" fn vhost_task_stop(vtsk: *mut bindings::vhost_task) {
    let vtsk = vtsk.cast_const().cast::<CWork>();
    // SAFETY: `vtsk` is live, and nothing else touches its state meanwhile, as the caller
    // promises. The handle is moved out; dropping it below frees `vtsk` once the worker is gone,
    // and with it any reason to wake it, as the C implementation does. `vtsk` is not used after.
    match unsafe { (*(*vtsk).state.get()).take() } {
        // Waits for the worker's exit.
        Some(State::Started(started)) => started.stop(),
        // Never started: its worker exits without calling either function.
        Some(State::Created(created)) => drop(created),
        None => {}
    }
}

/// Wakes the task's worker so that it calls `func` again.
///
/// # Safety
///
/// `vtsk` must come from `vhost_task_create()` and not be stopped yet.
#[no_mangle]
pub unsafe extern "C" fn vhost_task_wake(vtsk: *mut bindings::vhost_task) {
    let vtsk = vtsk.cast_const().cast::<CWork>();
    // SAFETY: `vtsk` is live, as the caller promises; `task` was set before it was handed out.
    let task = unsafe { (*vtsk).task.load(Ordering::Relaxed) };
    // SAFETY: The handle in `vtsk`'s state holds a reference to the task until
    // `vhost_task_stop()` returns, so it is valid, even after the worker exited; a task not
    // started yet is in TASK_NEW, which a wake-up leaves alone.
    unsafe { &*task }.wake_up();
}
