// SPDX-License-Identifier: GPL-2.0

//! The C ABI of `<linux/sched/vhost_task.h>` over [`crate::vhost_task`].
//!
//! C header: [`include/linux/sched/vhost_task.h`](srctree/include/linux/sched/vhost_task.h)
//!
//! `vhost_task_exports.c` exports these four functions with `EXPORT_SYMBOL_GPL`. Only the
//! translation between C pointers and the Rust types lives here.

use crate::{
    compat::ARef,
    vhost_task::{NewVhostTask, VhostTask, VhostWork},
};
use core::{cell::UnsafeCell, ffi::c_void};
use kernel::{bindings, ffi::c_char, prelude::*, str::CStr, task::Task};

/// `bool (*fn)(void *)`, the work function of the C callers.
type WorkFn = unsafe extern "C" fn(*mut c_void) -> bool;
/// `void (*handle_sigkill)(void *)`.
type KillFn = unsafe extern "C" fn(*mut c_void);

/// The callbacks and argument a C caller passed to `vhost_task_create()`.
struct CWork {
    func: WorkFn,
    handle_sigkill: KillFn,
    arg: *mut c_void,
}

// SAFETY: `vhost_task_create()`'s contract is that `fn` and `handle_sigkill` may be called with
// `arg` from the worker thread for as long as the task exists.
unsafe impl Send for CWork {}

// SAFETY: the callbacks are only called from the worker, one at a time; sharing the pointers
// themselves is harmless.
unsafe impl Sync for CWork {}

impl VhostWork for CWork {
    fn run(&self) -> bool {
        // SAFETY: the C caller gave `func` and `arg` to be called from the worker until
        // `vhost_task_stop()` returns, which it has not yet.
        unsafe { (self.func)(self.arg) }
    }

    fn killed(&self) {
        // SAFETY: as for `run`.
        unsafe { (self.handle_sigkill)(self.arg) }
    }
}

/// The two states of a task the C side holds.
enum State {
    Created(NewVhostTask<CWork>),
    Started(VhostTask<CWork>),
}

/// What a C `struct vhost_task *` points to.
struct CVhostTask {
    /// The worker's task, for `vhost_task_wake()`, which needs nothing else.
    task: ARef<Task>,
    /// Only `vhost_task_start()` and `vhost_task_stop()` touch it, which the C callers never
    /// run concurrently with each other; `None` only while `vhost_task_start()` runs.
    state: UnsafeCell<Option<State>>,
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

/// Creates an inactive vhost task named `name` in the calling thread's process, which will
/// call `func(arg)` in its loop and `handle_sigkill(arg)` if the process is killed before the
/// task is stopped. Returns it, or `ERR_PTR(-errno)`: the error of `copy_process()`, `ENOMEM`,
/// or `EINVAL` for a null `func`, `handle_sigkill` or `name`.
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
    };
    let created = match NewVhostTask::new(name, work) {
        Ok(created) => created,
        Err(e) => return e.to_ptr(),
    };
    let vtsk = CVhostTask {
        task: created.task().into(),
        state: UnsafeCell::new(Some(State::Created(created))),
    };
    // On failure the task is dropped, which makes its worker exit without running.
    match KBox::new(vtsk, GFP_KERNEL) {
        Ok(vtsk) => KBox::into_raw(vtsk).cast(),
        Err(_) => ENOMEM.to_ptr(),
    }
}

/// Starts a task from `vhost_task_create()`: its loop runs from now on. Starting it again only
/// warns.
///
/// # Safety
///
/// `vtsk` must come from `vhost_task_create()` and not be stopped. No other
/// `vhost_task_start()` or `vhost_task_stop()` on it may run concurrently.
#[no_mangle]
pub unsafe extern "C" fn vhost_task_start(vtsk: *mut bindings::vhost_task) {
    let vtsk = vtsk.cast::<CVhostTask>();
    // SAFETY: `vtsk` is a live `CVhostTask` and nothing else touches its state meanwhile, as the
    // caller promises: only start and stop do.
    let state = unsafe { &mut *(*vtsk).state.get() };
    *state = match state.take() {
        Some(State::Created(created)) => Some(State::Started(created.start())),
        started => {
            pr_warn!("vhost_task_start() on a task that was started already\n");
            started
        }
    };
}

/// Stops the task, waits until its worker has exited and frees it. `func` is not called once
/// this returns, and `handle_sigkill` is not called for this stop. A task that was never
/// started exits without calling either.
///
/// # Safety
///
/// `vtsk` must come from `vhost_task_create()` and not be stopped before; it is freed. No
/// `vhost_task_start()` on it may run concurrently, and `vhost_task_wake()` may only until this
/// returns.
#[no_mangle]
pub unsafe extern "C" fn vhost_task_stop(vtsk: *mut bindings::vhost_task) {
    let vtsk = vtsk.cast::<CVhostTask>();
    // SAFETY: `vtsk` is live. Only a shared reference is made: `vhost_task_wake()` may read
    // `task` concurrently until the worker has exited.
    let task = unsafe { &*vtsk };
    // SAFETY: nothing else touches the state meanwhile, as the caller promises.
    match unsafe { (*task.state.get()).take() } {
        // Waits for the worker's exit.
        Some(State::Started(started)) => started.stop(),
        // Never started: its worker exits without calling either function.
        Some(State::Created(created)) => drop(created),
        None => {}
    }
    // Only now that the worker is gone, and with it any reason to wake it, free the memory, as
    // the C implementation does.
    // SAFETY: `vtsk` came from `KBox::into_raw` in `vhost_task_create()` and the caller gives
    // it back for good; `task` is not used anymore.
    drop(unsafe { KBox::from_raw(vtsk) });
}

/// Wakes the task's worker so that it calls `func` again.
///
/// # Safety
///
/// `vtsk` must come from `vhost_task_create()` and not be stopped yet.
#[no_mangle]
pub unsafe extern "C" fn vhost_task_wake(vtsk: *mut bindings::vhost_task) {
    let vtsk = vtsk.cast::<CVhostTask>();
    // SAFETY: `vtsk` is live, as the caller promises; `task` is never written after creation.
    // It holds a reference, so waking it is sound even after the worker exited; a task not
    // started yet is in TASK_NEW, which a wake-up leaves alone.
    unsafe { &(*vtsk).task }.wake_up();
}
