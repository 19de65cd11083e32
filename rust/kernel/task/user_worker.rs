// SPDX-License-Identifier: GPL-2.0

//! User workers: kernel threads that belong to a user process.
//!
//! C header: [`include/linux/sched/task.h`](srctree/include/linux/sched/task.h)
//!
//! A user worker is made by `copy_process()` from the thread that creates it, as a
//! `PF_USER_WORKER` thread of that thread's process. It shares the process's address space,
//! credentials, cgroups, namespaces and signal handlers, shows up in `/proc/<pid>/task`, and
//! counts against `RLIMIT_NPROC` and the pids controller like any other thread of the process.
//! Unlike a user thread it never returns to user space: it runs the function it was created
//! with, then exits. vhost and io_uring run their workers this way.
//!
//! The worker has no file table (`no_files`) and is invisible to ptrace (`CLONE_UNTRACED`).
//!
//! A worker is created inactive ([`NewUserWorker`]) so that the creator can finish setting up
//! before anything runs, then [`NewUserWorker::start`] makes it a running [`UserWorker`]. It
//! runs a function on data of type `T` that the handle and the worker share, in one allocation
//! with the worker's own bookkeeping. The function gets a [`WorkerContext`]: the operations that
//! only make sense on the worker itself, such as taking its signals. It must call
//! [`WorkerContext::get_signal`] when [`WorkerContext::signal_pending`] says so, and return when
//! that reports that the process is exiting, or the process cannot finish dying.
//!
//! # Examples
//!
//! A worker that sleeps until it is told to stop, or until its process is killed:
//!
//! ```
//! use core::sync::atomic::{AtomicBool, Ordering};
//! use kernel::{c_str, prelude::*, task::user_worker::{NewUserWorker, WorkerContext}};
//!
//! #[pin_data]
//! struct Stop {
//!     stop: AtomicBool,
//! }
//!
//! fn wait_for_stop(ctx: &WorkerContext, data: &Stop) {
//!     loop {
//!         // Set the state before looking, so that a wake-up in between is not lost.
//!         ctx.set_interruptible();
//!         if data.stop.load(Ordering::Acquire) {
//!             break;
//!         }
//!         if ctx.signal_pending() && ctx.get_signal() {
//!             break; // The process is exiting.
//!         }
//!         ctx.schedule();
//!     }
//!     ctx.set_running();
//! }
//!
//! let data = try_pin_init!(Stop { stop: AtomicBool::new(false) }? Error);
//! let worker = NewUserWorker::new(c_str!("example"), data, wait_for_stop)?.start();
//! assert!(!worker.has_exited());
//!
//! worker.data().stop.store(true, Ordering::Release);
//! worker.wake_up();
//! worker.wait_exited();
//! assert!(worker.has_exited());
//! # Ok::<(), Error>(())
//! ```

use crate::{
    bindings,
    error::from_err_ptr,
    ffi::c_int,
    prelude::*,
    str::CStr,
    sync::{aref::ARef, Arc, Completion},
    task::Task,
};
use core::{
    ffi::c_void,
    marker::PhantomData,
    mem::{ManuallyDrop, MaybeUninit},
    ptr,
    sync::atomic::{AtomicBool, Ordering},
};

/// The clone flags of a user worker.
///
/// The worker is a thread of the creator's process that shares its address space, filesystem
/// information and signal handlers, and that ptrace cannot attach to.
const CLONE_FLAGS: u64 = (bindings::CLONE_FS
    | bindings::CLONE_UNTRACED
    | bindings::CLONE_VM
    | bindings::CLONE_THREAD
    | bindings::CLONE_SIGHAND) as u64;

/// What the handle and the worker thread share.
///
/// It is the only allocation a worker makes beyond its task.
#[pin_data]
struct Shared<T> {
    /// What the worker runs.
    func: fn(&WorkerContext, &T),
    /// Set before a never-started worker is woken up: it must exit without running `func`.
    cancelled: AtomicBool,
    /// Set by the worker once `func` has returned, just before it completes `exited`.
    done: AtomicBool,
    /// Completed by the worker once `func` has returned.
    #[pin]
    exited: Completion,
    /// The caller's data.
    #[pin]
    data: T,
}

/// A user worker that was created but has not run yet.
///
/// Dropping it without [`start`](Self::start) is sound: the thread is then woken up only to
/// exit without calling its function, and the drop returns once it has done so.
///
/// # Examples
///
/// ```
/// use core::sync::atomic::{AtomicU32, Ordering};
/// use kernel::{c_str, prelude::*, task::user_worker::{NewUserWorker, WorkerContext}};
///
/// #[pin_data]
/// struct Count {
///     n: AtomicU32,
/// }
///
/// fn count(_ctx: &WorkerContext, data: &Count) {
///     data.n.fetch_add(1, Ordering::Relaxed);
/// }
///
/// let init = || try_pin_init!(Count { n: AtomicU32::new(0) }? Error);
///
/// // Dropped before it starts: the thread exits without calling `count`.
/// let new = NewUserWorker::new(c_str!("example"), init(), count)?;
/// assert_eq!(new.data().n.load(Ordering::Relaxed), 0);
/// drop(new);
///
/// // Started: `count` runs once in the worker, then the worker exits.
/// let worker = NewUserWorker::new(c_str!("example"), init(), count)?.start();
/// worker.wait_exited();
/// assert_eq!(worker.data().n.load(Ordering::Relaxed), 1);
/// # Ok::<(), Error>(())
/// ```
///
/// # Invariants
///
/// `task` was returned by `copy_process()` for this worker and has not been passed to
/// `wake_up_new_task()` yet. Its thread function owns a reference to `shared`.
pub struct NewUserWorker<T: Send + Sync + 'static> {
    task: ARef<Task>,
    shared: Arc<Shared<T>>,
}

impl<T: Send + Sync + 'static> NewUserWorker<T> {
    /// Creates a user worker in the calling thread's process.
    ///
    /// The worker is named `name` (truncated to `TASK_COMM_LEN - 1` bytes). Once started, it runs
    /// `func` on `data`, then exits; the data lives until both the worker and the handle are gone.
    ///
    /// Fails with the error of `data`'s initialiser, `ENOMEM`, or that of `copy_process()`:
    /// `EAGAIN` at `RLIMIT_NPROC`, the thread limit or the pids controller's `pids.max`,
    /// `ERESTARTNOINTR` when the caller has a signal pending, `EINTR` when it is being killed.
    /// Nothing is leaked then.
    ///
    /// Must be called from a thread of the process that should own the worker (not from
    /// interrupt context).
    pub fn new(
        name: &CStr,
        data: impl PinInit<T, Error>,
        func: fn(&WorkerContext, &T),
    ) -> Result<Self> {
        let shared = Arc::pin_init(
            try_pin_init!(Shared {
                func,
                cancelled: AtomicBool::new(false),
                done: AtomicBool::new(false),
                exited <- Completion::new(),
                data <- data,
            }? Error),
            GFP_KERNEL,
        )?;
        // The worker's own reference, handed over to it through `fn_arg`.
        let arg = Arc::into_raw(shared.clone());

        // SAFETY: `kernel_clone_args` is a plain C struct for which all zeroes is a valid value
        // (null pointers, zero flags).
        let mut args: bindings::kernel_clone_args = unsafe { core::mem::zeroed() };
        args.flags = CLONE_FLAGS;
        args.exit_signal = 0;
        args.fn_ = Some(worker_fn::<T>);
        args.fn_arg = arg.cast_mut().cast();
        args.name = name.as_char_ptr();
        args.set_user_worker(1);
        args.set_no_files(1);

        // SAFETY: `args` is valid for the call, and `name` outlives it; `copy_process()` copies
        // the name into the new task's comm. A null pid asks for a new one.
        let task = unsafe {
            bindings::copy_process(ptr::null_mut(), 0, bindings::NUMA_NO_NODE, &mut args)
        };
        let task = match from_err_ptr(task) {
            Ok(task) => task,
            Err(e) => {
                // SAFETY: No thread was created, so the reference from `Arc::into_raw` above is
                // still ours alone.
                drop(unsafe { Arc::from_raw(arg) });
                return Err(e);
            }
        };

        // SAFETY: `copy_process()` succeeded, so `task` is a valid task. It has not been woken
        // up, so it cannot exit and drop its reference while we take ours.
        let task = ARef::from(unsafe { &*task.cast::<Task>() });

        // INVARIANT: The task is new and not woken up; `worker_fn` owns the reference `arg`.
        Ok(Self { task, shared })
    }

    /// Returns the worker's task.
    pub fn task(&self) -> &Task {
        &self.task
    }

    /// Returns the data the worker shares with this handle.
    pub fn data(&self) -> &T {
        &self.shared.data
    }

    /// Starts the worker: its function runs from now on.
    pub fn start(self) -> UserWorker<T> {
        let this = ManuallyDrop::new(self);
        // SAFETY: `this` is never used or dropped again, so each field is moved out exactly
        // once.
        let (task, shared) = unsafe { (ptr::read(&this.task), ptr::read(&this.shared)) };

        // SAFETY: By the type invariant `task` is a new task that has not been woken up, and
        // `this` is consumed, so it is woken up only this once.
        unsafe { bindings::wake_up_new_task(task.as_ptr()) };

        // INVARIANT: The task has been started and will complete `exited`.
        UserWorker { task, shared }
    }
}

impl<T: Send + Sync + 'static> Drop for NewUserWorker<T> {
    fn drop(&mut self) {
        // Released by `wake_up_new_task()`, which the worker's first instruction comes after.
        self.shared.cancelled.store(true, Ordering::Release);
        // SAFETY: By the type invariant the task is new and not woken up; dropping the handle
        // means it is woken up only this once.
        unsafe { bindings::wake_up_new_task(self.task.as_ptr()) };
        self.shared.exited.wait_for_completion();
    }
}

/// A running user worker.
///
/// Dropping the handle does not stop the worker, which runs until its function returns; see
/// [`wait_exited`](Self::wait_exited) to wait for that.
///
/// # Invariants
///
/// `task` has been started, and its thread completes `shared.exited` once its function has
/// returned.
pub struct UserWorker<T: Send + Sync + 'static> {
    task: ARef<Task>,
    shared: Arc<Shared<T>>,
}

impl<T: Send + Sync + 'static> UserWorker<T> {
    /// Returns the worker's task.
    ///
    /// The reference stays valid after the worker has exited.
    pub fn task(&self) -> &Task {
        &self.task
    }

    /// Returns the data the worker shares with this handle.
    pub fn data(&self) -> &T {
        &self.shared.data
    }

    /// Wakes the worker up if it is sleeping in [`WorkerContext::schedule`].
    pub fn wake_up(&self) {
        self.task.wake_up();
    }

    /// Waits until the worker's function has returned.
    pub fn wait_exited(&self) {
        self.shared.exited.wait_for_completion();
    }

    /// Returns whether the worker's function has returned.
    pub fn has_exited(&self) -> bool {
        // Pairs with the store in `run`.
        self.shared.done.load(Ordering::Acquire)
    }
}

/// What a worker's function may do to the worker itself.
///
/// Only the worker's function is given one, and it cannot be sent to another thread, so every
/// method acts on the worker thread, which is `current` when it is called.
///
/// # Invariants
///
/// It exists only on the stack of a user worker's thread, made by that thread before it calls
/// its function and gone before the thread exits: `current` is that user worker for as long as
/// a `WorkerContext` can be used.
pub struct WorkerContext {
    _not_send: PhantomData<*mut ()>,
}

impl WorkerContext {
    /// Returns the worker's task, which is the current task.
    pub fn task(&self) -> &Task {
        // SAFETY: `get_current()` has no preconditions.
        let current = unsafe { bindings::get_current() };
        // SAFETY: By the type invariant `current` is the worker, which exits only after `self`
        // is gone; the returned reference cannot outlive `self`.
        unsafe { &*current.cast::<Task>() }
    }

    /// Returns whether the worker has a signal to take with [`get_signal`](Self::get_signal).
    pub fn signal_pending(&self) -> bool {
        self.task().signal_pending()
    }

    /// Takes the worker's pending signals, and returns whether the process is exiting.
    ///
    /// The kernel handles them as it does for any user worker: a stop signal stops the worker
    /// (job control and the freezer); a fatal one (SIGKILL, `exit_group`, `exec`, a core dump
    /// of the process) is reported by returning `true`. The function must then return, so that
    /// the worker exits and the process can finish dying.
    pub fn get_signal(&self) -> bool {
        let mut ksig = MaybeUninit::<bindings::ksignal>::uninit();
        // SAFETY: The current task is a user worker taking its own signals, and `ksig` is valid
        // for writes.
        unsafe { bindings::get_signal(ksig.as_mut_ptr()) }
    }

    /// Marks the worker as about to sleep, as `set_current_state(TASK_INTERRUPTIBLE)` does.
    ///
    /// It comes with the full barrier that orders it before the checks that decide whether to
    /// sleep, so that a wake-up between those checks and [`schedule`](Self::schedule) is not
    /// lost.
    pub fn set_interruptible(&self) {
        // SAFETY: Setting the current task's own state has no preconditions.
        unsafe { bindings::set_current_state(bindings::TASK_INTERRUPTIBLE) };
    }

    /// Marks the worker as running again, as `__set_current_state(TASK_RUNNING)` does.
    pub fn set_running(&self) {
        // SAFETY: Setting the current task's own state has no preconditions.
        unsafe { bindings::__set_current_state(bindings::TASK_RUNNING) };
    }

    /// Sleeps until woken up if the state is not `TASK_RUNNING`; otherwise yields.
    ///
    /// Like every function of the safe API that may sleep (`Mutex::lock`, `CondVar::wait`), it
    /// must not be called in atomic context, for example while a `SpinLockGuard` is alive. The
    /// type system cannot prevent that; the kernel reports it ("scheduling while atomic", and
    /// `might_sleep()` under `CONFIG_DEBUG_ATOMIC_SLEEP`), and it is a bug but not undefined
    /// behaviour.
    pub fn schedule(&self) {
        // SAFETY: `schedule()` may be called from any task context. By the type invariant this
        // runs in the worker, a task that may sleep; sleeping in atomic context is a bug that
        // the scheduler reports, not a memory-safety violation.
        unsafe { bindings::schedule() };
    }
}

/// Runs as the worker thread's function, and never returns.
///
/// `ret_from_fork` calls it with the reference that [`NewUserWorker::new`] handed over. It ends
/// in `do_exit()`.
///
/// # Safety
///
/// `arg` must come from `Arc::<Shared<T>>::into_raw` and its reference be owned by nothing else,
/// and this must be called in the user worker it was created for.
unsafe extern "C" fn worker_fn<T: Send + Sync + 'static>(arg: *mut c_void) -> c_int {
    // SAFETY: The caller hands over the reference.
    let shared = unsafe { Arc::<Shared<T>>::from_raw(arg.cast_const().cast()) };
    run(shared);
    // SAFETY: `run` dropped the reference, and nothing of this frame needs dropping: `do_exit`
    // ends the thread for good.
    unsafe { bindings::do_exit(0) }
}

/// Runs the worker's function unless it was cancelled, then reports the worker as exited.
///
/// It completes `exited` and drops the worker's reference.
fn run<T: Send + Sync + 'static>(shared: Arc<Shared<T>>) {
    // Pairs with the store before `wake_up_new_task()` in `NewUserWorker::drop`.
    if !shared.cancelled.load(Ordering::Acquire) {
        // INVARIANT: This is the worker's thread, and the context is gone once `func` returns.
        (shared.func)(
            &WorkerContext {
                _not_send: PhantomData,
            },
            &shared.data,
        );
    }
    // Pairs with the load in `UserWorker::has_exited`.
    shared.done.store(true, Ordering::Release);
    shared.exited.complete_all();
}
