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
//! with the worker's own bookkeeping. The handle owns that allocation: dropping either handle
//! waits until the worker's function has returned, then drops the data, in the dropping thread.
//!
//! The function gets a [`WorkerContext`]: the operations that only make sense on the worker
//! itself. It sleeps with [`WorkerContext::wait`], which takes the worker's signals, and it
//! must return once that reports that the process is exiting, or the process cannot finish
//! dying.
//!
//! All of this can be used from a module: the parts that call C functions which are not
//! exported (`copy_process()`, `wake_up_new_task()`, `get_signal()`, `do_exit()`) are not
//! generic, so they are compiled into this crate, whose symbols modules link against.
//!
//! # Examples
//!
//! A worker that sleeps until it is told to stop, or until its process is killed:
//!
//! ```
//! use kernel::{
//!     prelude::*,
//!     sync::atomic::{Atomic, Acquire, Release},
//!     task::user_worker::{NewUserWorker, Wait, WorkerContext},
//! };
//!
//! #[pin_data]
//! struct Stop {
//!     stop: Atomic<bool>,
//! }
//!
//! fn wait_for_stop(ctx: &WorkerContext<'_>, data: &Stop) {
//!     match ctx.wait(|| data.stop.load(Acquire)) {
//!         Wait::Ready => pr_info!("told to stop\n"),
//!         Wait::Exiting => pr_info!("the process is exiting\n"),
//!     }
//! }
//!
//! let data = try_pin_init!(Stop { stop: Atomic::new(false) }? Error);
//! let worker = NewUserWorker::new(c"example", data, wait_for_stop)?.start();
//! assert!(!worker.has_exited());
//!
//! worker.data().stop.store(true, Release);
//! worker.wake_up();
//! drop(worker); // Waits for the function to return.
//! # Ok::<(), Error>(())
//! ```

use crate::{
    bindings,
    error::from_err_ptr,
    ffi::{c_int, c_void},
    prelude::*,
    sync::{
        aref::ARef,
        atomic::{Acquire, Atomic, Relaxed, Release},
    },
    task::Task,
    types::{NotThreadSafe, Opaque},
};
// Later kernels' `kernel::str::CStr` is this very type; naming it keeps the source the same on
// trees whose `kernel::str::CStr` is the crate's own.
use core::{ffi::CStr, mem::ManuallyDrop, ptr, ptr::NonNull};

/// The clone flags of a user worker.
///
/// The worker is a thread of the creator's process that shares its address space, filesystem
/// information and signal handlers, and that ptrace cannot attach to.
const CLONE_FLAGS: u64 = (bindings::CLONE_FS
    | bindings::CLONE_UNTRACED
    | bindings::CLONE_VM
    | bindings::CLONE_THREAD
    | bindings::CLONE_SIGHAND) as u64;

/// [`Header::state`]: created, not woken up yet.
const CREATED: i32 = 0;
/// Woken up by [`NewUserWorker::start`]: the function runs.
const STARTED: i32 = 1;
/// Woken up by dropping the [`NewUserWorker`]: the function is not called.
const CANCELLED: i32 = 2;
/// The function has returned, or was not called; the worker is about to exit.
const EXITED: i32 = 3;

/// The part of a worker's allocation that does not depend on its data.
///
/// It comes first in [`Shared`], so that the thread's entry point, which is not generic, can
/// reach it through the pointer it is given.
///
/// # Invariants
///
/// `task` holds a reference to the worker's task from the time the handle is returned to its
/// owner until the allocation is freed, and does not change in between.
#[repr(C)]
#[pin_data]
struct Header {
    /// Runs the worker's function on its data: `run::<T>`.
    run: unsafe fn(*const Header),
    /// The worker's task.
    task: Option<ARef<Task>>,
    /// [`CREATED`], then [`STARTED`] or [`CANCELLED`], then [`EXITED`].
    state: Atomic<i32>,
    /// Completed by the worker once it is done with the allocation.
    #[pin]
    exited: Opaque<bindings::completion>,
    /// Tells lockdep that the owner's wait for the exit waits for [`WorkerContext::exit_section`].
    ///
    /// It has no size without `CONFIG_LOCKDEP`.
    #[pin]
    exit_map: Opaque<bindings::lockdep_map>,
}

impl Header {
    /// Initialises the header of a worker that runs `run`; its exit map by [`init_exit_map`],
    /// which gives every worker's the one lock class.
    fn new(run: unsafe fn(*const Header)) -> impl PinInit<Self> {
        pin_init!(Self {
            run,
            task: None,
            state: Atomic::new(CREATED),
            // SAFETY: `slot` is valid for writes, and `init_completion()` initialises it.
            exited <- Opaque::ffi_init(|slot| unsafe { bindings::init_completion(slot) }),
            // SAFETY: `slot` is valid for writes.
            exit_map <- Opaque::ffi_init(|slot| unsafe { init_exit_map(slot) }),
        })
    }
}

/// Initialises `map` as a worker's exit map: every worker's is of one lock class, with one name.
///
/// Not inline: lockdep knows a class by its key, and warns ("found a different class ... with the
/// same key") when a map of that key comes with another pointer to the name. The closures of
/// [`Header::new`] are compiled into each crate that makes workers, each with its own copy of a
/// string literal; this function, and so the name, is in the kernel crate only.
///
/// # Safety
///
/// `map` must be valid for writes.
#[inline(never)]
unsafe fn init_exit_map(map: *mut bindings::lockdep_map) {
    let key = crate::static_lock_class!();
    // SAFETY: The caller promises that `map` is valid for writes; the name is a static string
    // and the key a static lock class. `lockdep_init_map()` initialises the map (or does nothing
    // without lockdep).
    unsafe { bindings::lockdep_init_map(map, c"user_worker_exit".as_char_ptr(), key.as_ptr()) }
}

/// What the handle and the worker thread share: the worker's only allocation beyond its task.
#[repr(C)]
#[pin_data]
struct Shared<T> {
    #[pin]
    header: Header,
    /// What the worker runs.
    func: fn(&WorkerContext<'_>, &T),
    /// The caller's data.
    #[pin]
    data: T,
}

/// The allocation of a worker, owned by its handle.
///
/// # Invariants
///
/// `ptr` comes from `KBox::into_raw()` of a pinned, initialised [`Shared<T>`] whose `header.task`
/// is set, and it is freed only when this is dropped. Its worker thread reads it until it
/// completes `header.exited`, and never after.
struct Allocation<T> {
    ptr: NonNull<Shared<T>>,
}

// SAFETY: The allocation may be freed from any thread, and `T` is `Send`.
unsafe impl<T: Send + Sync> Send for Allocation<T> {}
// SAFETY: Only shared references to the allocation are handed out, and `T` is `Sync`.
unsafe impl<T: Send + Sync> Sync for Allocation<T> {}

impl<T> Allocation<T> {
    #[inline]
    fn shared(&self) -> &Shared<T> {
        // SAFETY: By the type invariant `ptr` is valid until `self` is dropped, and only shared
        // references to it exist.
        unsafe { self.ptr.as_ref() }
    }

    #[inline]
    fn header(&self) -> &Header {
        &self.shared().header
    }

    #[inline]
    fn task(&self) -> &Task {
        match &self.header().task {
            Some(task) => task,
            // By the type invariant `task` is set.
            None => unreachable!(),
        }
    }

    /// Waits until the worker is done with the allocation.
    fn wait_exited(&self) {
        let header = self.header();
        // SAFETY: `exit_map` was initialised by `lockdep_init_map()`. Acquiring and releasing it
        // tells lockdep that this wait depends on every lock the worker takes in an exit
        // section, as `flush_work()` does for a work item.
        unsafe {
            bindings::lock_map_acquire(header.exit_map.get());
            bindings::lock_map_release(header.exit_map.get());
        }
        // SAFETY: `exited` was initialised by `init_completion()`.
        unsafe { bindings::wait_for_completion(header.exited.get()) };
    }

    /// Frees the allocation, dropping the data and the task reference.
    ///
    /// # Safety
    ///
    /// The worker must be done with the allocation: it has completed `exited`, or it never ran.
    unsafe fn free(self) {
        let this = ManuallyDrop::new(self);
        // SAFETY: By the type invariant `ptr` comes from `KBox::into_raw()`; the worker is done
        // with it, and `this` is never used again.
        drop(unsafe { KBox::from_raw(this.ptr.as_ptr()) });
    }
}

/// Creates a worker thread for the allocation at `header`, not started yet.
///
/// Not generic, so that modules can use it: `copy_process()` is not exported.
fn create_worker(name: &CStr, header: *const Header) -> Result<ARef<Task>> {
    let mut args = bindings::kernel_clone_args {
        flags: CLONE_FLAGS,
        exit_signal: 0,
        fn_: Some(worker_entry),
        fn_arg: header.cast_mut().cast(),
        name: name.as_char_ptr(),
        ..pin_init::zeroed()
    };
    args.set_user_worker(1);
    args.set_no_files(1);

    // SAFETY: `args` is valid for the call, and `name` outlives it; `copy_process()` copies the
    // name into the new task's comm. A null pid asks for a new one.
    let task = from_err_ptr(unsafe {
        bindings::copy_process(ptr::null_mut(), 0, bindings::NUMA_NO_NODE, &mut args)
    })?;
    // SAFETY: `copy_process()` succeeded, so `task` is a valid task. It has not been woken up,
    // so it cannot exit while the reference is taken.
    Ok(ARef::from(unsafe { &*task.cast::<Task>() }))
}

/// Wakes up a new worker for the first time.
///
/// Not generic, so that modules can use it: `wake_up_new_task()` is not exported.
///
/// # Safety
///
/// `task` must come from [`create_worker`] and not have been woken up before.
unsafe fn wake_up_new_worker(task: &Task) {
    // SAFETY: The caller promises that `task` is new and not woken up yet.
    unsafe { bindings::wake_up_new_task(task.as_ptr()) };
}

/// The thread function of every user worker: runs its function, then exits.
///
/// Not generic, so that modules can create workers: `do_exit()` is not exported.
///
/// # Safety
///
/// `arg` must point to the [`Header`] of a [`Shared`] whose handle waits for `exited` before
/// freeing it, and this must be called once, in the worker created for it.
unsafe extern "C" fn worker_entry(arg: *mut c_void) -> c_int {
    let header = arg.cast_const().cast::<Header>();
    // SAFETY: `header` is valid until the worker completes `exited`, which `run` does last.
    unsafe { ((*header).run)(header) };
    // SAFETY: The worker is done with the allocation, and nothing of this frame needs dropping:
    // `do_exit()` ends the thread for good.
    unsafe { bindings::do_exit(0) }
}

/// Runs the worker's function unless it was cancelled, then reports the worker as exited.
///
/// # Safety
///
/// `header` must point to the header of a `Shared<T>` that stays valid until `exited` is
/// completed, and this must be called once, in the worker created for it.
unsafe fn run<T>(header: *const Header) {
    // SAFETY: The caller promises that `header` heads a live `Shared<T>`; it is only read.
    let shared = unsafe { &*header.cast::<Shared<T>>() };
    // `wake_up_new_task()` orders the store of `start()` or of the drop before this.
    if shared.header.state.load(Relaxed) == STARTED {
        let ctx = WorkerContext {
            header: &shared.header,
            _not_send: NotThreadSafe,
        };
        (shared.func)(&ctx, &shared.data);
    }
    // Pairs with the load in `UserWorker::has_exited`.
    shared.header.state.store(EXITED, Release);
    let exited = shared.header.exited.get();
    // SAFETY: `exited` is initialised. Once it is completed, the handle may free the allocation:
    // nothing of it is touched after this.
    unsafe { bindings::complete_all(exited) };
}

/// A user worker that was created but has not run yet.
///
/// Dropping it without [`start`](Self::start) is sound: the thread is then woken up only to
/// exit without calling its function, and the drop returns once it has done so.
///
/// # Examples
///
/// ```
/// use kernel::{
///     prelude::*,
///     sync::atomic::{Atomic, Relaxed},
///     task::user_worker::{NewUserWorker, WorkerContext},
/// };
///
/// #[pin_data]
/// struct Count {
///     n: Atomic<i32>,
/// }
///
/// fn count(_ctx: &WorkerContext<'_>, data: &Count) {
///     data.n.store(data.n.load(Relaxed) + 1, Relaxed);
/// }
///
/// let init = || try_pin_init!(Count { n: Atomic::new(0) }? Error);
///
/// // Dropped before it starts: the thread exits without calling `count`.
/// let new = NewUserWorker::new(c"example", init(), count)?;
/// assert_eq!(new.data().n.load(Relaxed), 0);
/// drop(new);
///
/// // Started: `count` runs once in the worker, then the worker exits.
/// let worker = NewUserWorker::new(c"example", init(), count)?.start();
/// worker.wait_exited();
/// assert_eq!(worker.data().n.load(Relaxed), 1);
/// # Ok::<(), Error>(())
/// ```
///
/// # Invariants
///
/// The worker's task has not been passed to `wake_up_new_task()` yet.
#[must_use = "dropping a new worker makes it exit unrun"]
pub struct NewUserWorker<T: Send + Sync + 'static> {
    alloc: Allocation<T>,
}

impl<T: Send + Sync + 'static> NewUserWorker<T> {
    /// Creates a user worker in the calling thread's process.
    ///
    /// The worker is named `name` (truncated to `TASK_COMM_LEN - 1` bytes). Once started, it runs
    /// `func` on `data`, then exits.
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
        func: fn(&WorkerContext<'_>, &T),
    ) -> Result<Self> {
        let shared = KBox::pin_init(
            try_pin_init!(Shared {
                header <- Header::new(run::<T>),
                func,
                data <- data,
            }? Error),
            GFP_KERNEL,
        )?;
        // SAFETY: The allocation is never moved out of: it is freed in place.
        let ptr = KBox::into_raw(unsafe { Pin::into_inner_unchecked(shared) });
        // SAFETY: `ptr` is valid, and not shared with any thread yet.
        let header = unsafe { ptr::addr_of_mut!((*ptr).header) };
        match create_worker(name, header) {
            Ok(task) => {
                // SAFETY: The worker does not run until it is woken up, so nothing reads the
                // header meanwhile.
                unsafe { (*header).task = Some(task) };
                // INVARIANT: `ptr` is initialised and its task is set; the worker has not been
                // woken up.
                Ok(Self {
                    alloc: Allocation {
                        // SAFETY: `KBox::into_raw()` never returns null.
                        ptr: unsafe { NonNull::new_unchecked(ptr) },
                    },
                })
            }
            Err(e) => {
                // SAFETY: No thread was created, so the allocation is ours alone.
                drop(unsafe { KBox::from_raw(ptr) });
                Err(e)
            }
        }
    }

    /// Returns the worker's task.
    #[inline]
    pub fn task(&self) -> &Task {
        self.alloc.task()
    }

    /// Returns the data the worker shares with this handle.
    #[inline]
    pub fn data(&self) -> &T {
        &self.alloc.shared().data
    }

    /// Starts the worker: its function runs from now on.
    pub fn start(self) -> UserWorker<T> {
        let this = ManuallyDrop::new(self);
        // SAFETY: `this` is never used or dropped again, so the allocation is moved out once.
        let alloc = unsafe { ptr::read(&this.alloc) };
        // Ordered before the worker's load by `wake_up_new_task()`.
        alloc.header().state.store(STARTED, Relaxed);
        // SAFETY: By the type invariant the task has not been woken up, and `this` is consumed,
        // so it is woken up only this once.
        unsafe { wake_up_new_worker(alloc.task()) };
        // INVARIANT: The worker has been woken up and completes `exited` when it is done.
        UserWorker { alloc }
    }

    /// Hands the worker over as a pointer to its data, for code that keeps it in C.
    ///
    /// The pointer owns the worker: [`NewUserWorker::from_raw`] takes it back.
    #[inline]
    pub fn into_raw(self) -> *const T {
        let this = ManuallyDrop::new(self);
        // SAFETY: The allocation is valid; it is only read here.
        unsafe { ptr::addr_of!((*this.alloc.ptr.as_ptr()).data) }
    }

    /// Takes back a worker from [`NewUserWorker::into_raw`] or [`UserWorker::into_raw`]: as a
    /// new worker if it has not been started, as a running one otherwise.
    ///
    /// # Safety
    ///
    /// `data` must come from `into_raw()` of a worker of the same `T`, and be taken back only
    /// once per `into_raw()`. No other call on the same worker may run concurrently.
    pub unsafe fn from_raw(data: *const T) -> core::result::Result<Self, UserWorker<T>> {
        // SAFETY: `data` points to the `data` field of a `Shared<T>`, as the caller promises.
        let ptr = unsafe { data.byte_sub(core::mem::offset_of!(Shared<T>, data)) };
        // INVARIANT: The caller hands back the ownership that `into_raw()` gave.
        let alloc = Allocation {
            // SAFETY: `ptr` is within an allocation, so it is not null.
            ptr: unsafe { NonNull::new_unchecked(ptr.cast::<Shared<T>>().cast_mut()) },
        };
        // Only the owner changes the state from `CREATED`, and the caller owns the worker.
        if alloc.header().state.load(Relaxed) == CREATED {
            // INVARIANT: The worker has not been woken up.
            Ok(Self { alloc })
        } else {
            // INVARIANT: The worker has been woken up.
            Err(UserWorker { alloc })
        }
    }
}

impl<T: Send + Sync + 'static> Drop for NewUserWorker<T> {
    fn drop(&mut self) {
        // Ordered before the worker's load by `wake_up_new_task()`.
        self.alloc.header().state.store(CANCELLED, Relaxed);
        // SAFETY: By the type invariant the task has not been woken up; dropping the handle
        // means it is woken up only this once.
        unsafe { wake_up_new_worker(self.alloc.task()) };
        self.alloc.wait_exited();
        // SAFETY: The worker completed `exited`, and the allocation is not used after this.
        unsafe { ptr::read(&self.alloc).free() };
    }
}

/// A running user worker.
///
/// Dropping the handle waits until the worker's function has returned, like
/// [`wait_exited`](Self::wait_exited): the function must be made to return first, for example
/// by setting a flag that it waits for with [`WorkerContext::wait`] and calling
/// [`wake_up`](Self::wake_up). The data is dropped then, in the dropping thread. A worker cannot
/// drop its own handle.
///
/// # Examples
///
/// ```
/// use kernel::{
///     prelude::*,
///     sync::atomic::{Atomic, Acquire, Relaxed, Release},
///     task::user_worker::{NewUserWorker, Wait, WorkerContext},
/// };
///
/// #[pin_data]
/// struct Job {
///     go: Atomic<bool>,
///     result: Atomic<i32>,
/// }
///
/// fn job(ctx: &WorkerContext<'_>, job: &Job) {
///     if ctx.wait(|| job.go.load(Acquire)) == Wait::Ready {
///         job.result.store(42, Relaxed);
///     }
/// }
///
/// let init = try_pin_init!(Job { go: Atomic::new(false), result: Atomic::new(0) }? Error);
/// let worker = NewUserWorker::new(c"example", init, job)?.start();
/// worker.data().go.store(true, Release);
/// worker.wake_up();
/// worker.wait_exited();
/// assert!(worker.has_exited());
/// assert_eq!(worker.data().result.load(Relaxed), 42);
/// # Ok::<(), Error>(())
/// ```
///
/// # Invariants
///
/// The worker's task has been woken up, and completes `exited` once it is done with the
/// allocation.
#[must_use = "dropping a running worker waits for its function to return"]
pub struct UserWorker<T: Send + Sync + 'static> {
    alloc: Allocation<T>,
}

impl<T: Send + Sync + 'static> UserWorker<T> {
    /// Returns the worker's task.
    ///
    /// The reference stays valid after the worker has exited.
    #[inline]
    pub fn task(&self) -> &Task {
        self.alloc.task()
    }

    /// Returns the data the worker shares with this handle.
    #[inline]
    pub fn data(&self) -> &T {
        &self.alloc.shared().data
    }

    /// Wakes the worker up if it is asleep in [`WorkerContext::wait`], to look at its condition
    /// again.
    #[inline]
    pub fn wake_up(&self) {
        self.task().wake_up();
    }

    /// Waits until the worker's function has returned.
    ///
    /// Lockdep treats this as waiting for every lock that the worker takes in
    /// [`WorkerContext::exit_section`]: holding one of them here is reported, not hung.
    #[inline]
    pub fn wait_exited(&self) {
        self.alloc.wait_exited();
    }

    /// Returns whether the worker's function has returned.
    #[inline]
    #[must_use]
    pub fn has_exited(&self) -> bool {
        // Pairs with the store in `run`.
        self.alloc.header().state.load(Acquire) == EXITED
    }

    /// Hands the worker over as a pointer to its data, for code that keeps it in C.
    ///
    /// The pointer owns the worker: [`NewUserWorker::from_raw`] takes it back.
    #[inline]
    pub fn into_raw(self) -> *const T {
        let this = ManuallyDrop::new(self);
        // SAFETY: The allocation is valid; it is only read here.
        unsafe { ptr::addr_of!((*this.alloc.ptr.as_ptr()).data) }
    }

    /// Wakes up the worker of a pointer from `into_raw()` without taking it back.
    ///
    /// # Safety
    ///
    /// `data` must come from `into_raw()` of a worker of the same `T` that has not been taken
    /// back yet, and must not be taken back while this runs. The worker need not be started: a
    /// wake-up before the start does nothing.
    #[inline]
    pub unsafe fn wake_up_raw(data: *const T) {
        // SAFETY: `data` points to the `data` field of a live `Shared<T>`, as the caller
        // promises, whose header is not changed meanwhile.
        let shared = unsafe {
            &*data
                .byte_sub(core::mem::offset_of!(Shared<T>, data))
                .cast::<Shared<T>>()
        };
        match &shared.header.task {
            // A task not woken up yet is in `TASK_NEW`, which a wake-up leaves alone.
            Some(task) => task.wake_up(),
            None => unreachable!(),
        }
    }
}

impl<T: Send + Sync + 'static> Drop for UserWorker<T> {
    fn drop(&mut self) {
        self.alloc.wait_exited();
        // SAFETY: The worker completed `exited`, and the allocation is not used after this.
        unsafe { ptr::read(&self.alloc).free() };
    }
}

/// How [`WorkerContext::wait`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum Wait {
    /// The condition holds.
    Ready,
    /// The process is exiting (SIGKILL, `exit_group()`, `exec`, a core dump): the worker's
    /// function must return.
    Exiting,
}

/// What a worker's function may do to the worker itself.
///
/// Only the worker's function is given one, and it cannot be sent to another thread, so every
/// method acts on the worker thread, which is `current` when it is called.
///
/// # Examples
///
/// A worker that handles what is pending, and returns once it is told to stop with nothing
/// pending, or once its process is exiting. The handling is an exit section, so that lockdep
/// knows that the owner's wait for the exit waits for whatever it takes:
///
/// ```
/// use kernel::{prelude::*, sync::atomic::{Acquire, Atomic, Full, Relaxed, Release}};
/// use kernel::task::user_worker::{NewUserWorker, Wait, WorkerContext};
///
/// #[pin_data]
/// struct Requests {
///     pending: Atomic<i32>,
///     handled: Atomic<i32>,
///     stop: Atomic<bool>,
/// }
///
/// fn serve(ctx: &WorkerContext<'_>, r: &Requests) {
///     loop {
///         if ctx.wait(|| r.stop.load(Acquire) || r.pending.load(Acquire) > 0) == Wait::Exiting {
///             return;
///         }
///         if r.pending.load(Acquire) == 0 {
///             return; // Told to stop, and nothing is pending.
///         }
///         ctx.exit_section(|| {
///             r.pending.fetch_add(-1, Full);
///             r.handled.fetch_add(1, Full);
///         });
///     }
/// }
///
/// let init = try_pin_init!(Requests {
///     pending: Atomic::new(0),
///     handled: Atomic::new(0),
///     stop: Atomic::new(false),
/// }? Error);
/// let worker = NewUserWorker::new(c"example", init, serve)?.start();
/// worker.data().pending.fetch_add(2, Full);
/// worker.data().stop.store(true, Release);
/// worker.wake_up();
/// worker.wait_exited();
/// assert_eq!(worker.data().handled.load(Relaxed), 2);
/// # Ok::<(), Error>(())
/// ```
///
/// # Invariants
///
/// It exists only on the stack of a user worker's thread, made by that thread before it calls
/// its function and gone before the thread exits: `current` is that user worker for as long as
/// a `WorkerContext` can be used, and `header` is that worker's header.
pub struct WorkerContext<'a> {
    header: &'a Header,
    _not_send: NotThreadSafe,
}

impl WorkerContext<'_> {
    /// Returns the worker's task, which is the current task.
    #[inline]
    pub fn task(&self) -> &Task {
        // SAFETY: By the type invariant the current task is the worker, which exits only after
        // `self` is gone; the returned reference cannot outlive `self`.
        unsafe { &*Task::current_raw().cast::<Task>() }
    }

    /// Returns whether the worker has a signal to take with [`get_signal`](Self::get_signal).
    #[inline]
    #[must_use]
    pub fn signal_pending(&self) -> bool {
        self.task().signal_pending()
    }

    /// Takes the worker's pending signals, and returns whether the process is exiting.
    ///
    /// The kernel handles them as it does for any user worker: a stop signal stops the worker
    /// (job control and the freezer); a fatal one (SIGKILL, `exit_group`, `exec`, a core dump
    /// of the process) is reported by returning `true`. The function must then return, so that
    /// the worker exits and the process can finish dying. [`wait`](Self::wait) calls this; a
    /// function that never waits calls it between pieces of work.
    ///
    /// Taking a signal may sleep (the freezer, job control, task work), so this sets the worker
    /// running first.
    ///
    /// Not inline, so that modules can use it: `get_signal()` is not exported.
    #[must_use]
    pub fn get_signal(&self) -> bool {
        self.set_running();
        let mut ksig = core::mem::MaybeUninit::<bindings::ksignal>::uninit();
        // SAFETY: The current task is a user worker taking its own signals in task context,
        // running, with no lock held by this abstraction; `get_signal()` may sleep and run task
        // work, which a user worker may. `ksig` is valid for writes.
        unsafe { bindings::get_signal(ksig.as_mut_ptr()) }
    }

    /// Sets the worker running again, as `__set_current_state(TASK_RUNNING)` does.
    ///
    /// The condition of [`wait`](Self::wait) is called with the worker's state set to
    /// `TASK_INTERRUPTIBLE`; a condition that does work that may sleep calls this first.
    #[inline]
    pub fn set_running(&self) {
        // SAFETY: Setting the current task's own state has no preconditions.
        unsafe { bindings::__set_current_state(bindings::TASK_RUNNING) };
    }

    /// Sleeps until `condition` returns `true`, or until the process is exiting.
    ///
    /// Each round takes the worker's pending signals first ([`get_signal`](Self::get_signal)),
    /// then sets its state to `TASK_INTERRUPTIBLE`, then calls `condition`, then sleeps until a
    /// wake-up ([`UserWorker::wake_up`]) unless the condition held. Because the state is set
    /// before the condition is looked at, a wake-up that comes after the condition was found
    /// false is not lost; because signals are taken before, nothing that may sleep runs in
    /// that state. The worker is running again when this returns.
    ///
    /// The condition runs in `TASK_INTERRUPTIBLE`: a condition that sleeps calls
    /// [`set_running`](Self::set_running) first, as vhost's and KVM's work functions do.
    ///
    /// Like every function of the safe API that sleeps (`Mutex::lock`, `CondVar::wait`), it must
    /// not be called in atomic context, for example with a `SpinLockGuard` or an `rcu::Guard`
    /// alive. The type system does not prevent that. The kernel reports it ("scheduling while
    /// atomic", and `might_sleep()` under `CONFIG_DEBUG_ATOMIC_SLEEP`), but it is not always
    /// only a bug: under non-preemptible RCU, sleeping with an `rcu::Guard` alive lets the grace
    /// period end, and the references the guard protects dangle. `CondVar::wait` has the same
    /// hole.
    pub fn wait(&self, mut condition: impl FnMut() -> bool) -> Wait {
        loop {
            if self.signal_pending() && self.get_signal() {
                return Wait::Exiting;
            }
            // SAFETY: Setting the current task's own state has no preconditions. It comes with
            // a full barrier (`smp_store_mb()`) between the store of the state and the loads of
            // the condition, which pairs with the one that `try_to_wake_up()` has between the
            // waker's stores and its load of the state (`smp_mb__after_spinlock()`): either the
            // condition sees the waker's stores, or the waker sees this state and wakes us.
            unsafe { bindings::set_current_state(bindings::TASK_INTERRUPTIBLE) };
            if condition() {
                self.set_running();
                return Wait::Ready;
            }
            // SAFETY: `schedule()` may be called from any task context, and this is the worker,
            // a task that may sleep. Called in atomic context, it is a bug that the scheduler
            // reports, and, with an `rcu::Guard` alive under non-preemptible RCU, a use after
            // free of what the guard protects: the documentation above makes that the caller's
            // duty, as `CondVar::wait` does, since the type system cannot.
            unsafe { bindings::schedule() };
        }
    }

    /// Runs `f` as code that the owner's wait for the worker's exit waits for, and tells
    /// lockdep so.
    ///
    /// A lock taken in `f` that the owner holds while it waits in [`UserWorker::wait_exited`],
    /// or while it drops the handle, is a deadlock when the two meet; with lockdep, it is
    /// reported the first time both orders have been seen, as `flush_work()` does for a work
    /// item, instead of hanging once they meet.
    #[inline]
    pub fn exit_section<R>(&self, f: impl FnOnce() -> R) -> R {
        // SAFETY: `exit_map` was initialised by `lockdep_init_map()`, and is released below.
        unsafe { bindings::lock_map_acquire(self.header.exit_map.get()) };
        let r = f();
        // SAFETY: Acquired above, by this task.
        unsafe { bindings::lock_map_release(self.header.exit_map.get()) };
        r
    }
}
