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
//! A worker is created inactive, as a [`NewUserWorker`], so that its creator can finish setting
//! up before anything runs; [`NewUserWorker::start`] makes it a running [`UserWorker`]. It runs
//! a function on data of type `T` that the handle and the worker share, in one allocation with
//! the worker's own bookkeeping, which the handle owns. Dropping the handle waits until the
//! worker's function has returned, then drops the data in the dropping thread.
//!
//! The function gets a [`WorkerContext`]: the operations that only make sense on the worker
//! itself. It sleeps with [`WorkerContext::wait`], which takes the worker's signals, and it must
//! return once that reports that the process is exiting, or the process cannot finish dying.
//!
//! Workers are created with [`new_user_worker!`], which gives the waits for the exit of the
//! workers created at that call site a lockdep class of their own, as [`new_mutex!`] does for
//! mutexes.
//!
//! All of this can be used from a module. The parts that call C functions which are not exported
//! (`copy_process()`, `wake_up_new_task()`, `get_signal()`, `do_exit()`) are not generic, so they
//! are compiled into this crate. So is the end of every worker: once its owner can see that the
//! worker's function has returned, the worker runs only code of this crate, and the module that
//! made it may be unloaded.
//!
//! [`new_mutex!`]: crate::sync::new_mutex
//!
//! # Examples
//!
//! A worker that sleeps until it is told to stop, or until its process is killed:
//!
//! ```
//! use kernel::{
//!     prelude::*,
//!     sync::atomic::{Acquire, Atomic, Release},
//!     task::user_worker::{new_user_worker, Wait, WorkerContext},
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
//! let worker = new_user_worker!(c"example", data, wait_for_stop)?.start();
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
        atomic::{Acquire, Atomic, AtomicType, Relaxed, Release},
        Completion, LockClassKey,
    },
    task::Task,
    types::{ForeignOwnable, NotThreadSafe, Opaque},
};
// Later kernels' `kernel::str::CStr` is this very type; naming it keeps the source the same on
// trees whose `kernel::str::CStr` is the crate's own.
use core::{ffi::CStr, ptr, ptr::NonNull};

/// Creates a [`NewUserWorker`] with a lockdep class of its own for the waits for its exit.
///
/// `new_user_worker!(name, data, func)` is [`NewUserWorker::new`] with a lock class key made at
/// the call site, named `user_worker_exit:<module path>:<line>`: the workers made there share
/// it, and no others do.
///
/// # Examples
///
/// Two call sites, two lock classes: a worker of one may wait for the exit of a worker of the
/// other inside its exit section, which lockdep would report as recursive within one class.
///
/// ```
/// use kernel::{
///     prelude::*,
///     sync::atomic::{Atomic, Relaxed},
///     task::user_worker::{new_user_worker, WorkerContext},
/// };
///
/// #[pin_data]
/// struct Ran {
///     ran: Atomic<bool>,
/// }
///
/// fn run_once(_ctx: &WorkerContext<'_>, data: &Ran) {
///     data.ran.store(true, Relaxed);
/// }
///
/// let init = || try_pin_init!(Ran { ran: Atomic::new(false) }? Error);
/// let first = new_user_worker!(c"first", init(), run_once)?.start();
/// let second = new_user_worker!(c"second", init(), run_once)?.start();
/// first.wait_exited();
/// second.wait_exited();
/// assert!(first.data().ran.load(Relaxed) && second.data().ran.load(Relaxed));
/// # Ok::<(), Error>(())
/// ```
#[macro_export]
macro_rules! new_user_worker {
    ($name:expr, $data:expr, $func:expr $(,)?) => {
        $crate::task::user_worker::NewUserWorker::new(
            $name,
            $data,
            $func,
            ::core::concat!(
                "user_worker_exit:",
                ::core::module_path!(),
                ":",
                ::core::line!(),
                "\0"
            ),
            $crate::task::user_worker::StaticClassKey::pinned($crate::static_lock_class!()),
        )
    };
}
pub use new_user_worker;

/// What [`static_lock_class!`](crate::static_lock_class) makes, as [`NewUserWorker::new`] takes
/// it: later kernels make a pinned reference, earlier ones a plain one.
#[doc(hidden)]
pub trait StaticClassKey {
    /// The key, pinned.
    fn pinned(self) -> Pin<&'static LockClassKey>;
}

impl StaticClassKey for &'static LockClassKey {
    #[inline]
    fn pinned(self) -> Pin<&'static LockClassKey> {
        Pin::static_ref(self)
    }
}

impl StaticClassKey for Pin<&'static LockClassKey> {
    #[inline]
    fn pinned(self) -> Pin<&'static LockClassKey> {
        self
    }
}

/// The clone flags of a user worker.
///
/// The worker is a thread of the creator's process that shares its address space, filesystem
/// information and signal handlers, and that ptrace cannot attach to.
const CLONE_FLAGS: u64 = (bindings::CLONE_FS
    | bindings::CLONE_UNTRACED
    | bindings::CLONE_VM
    | bindings::CLONE_THREAD
    | bindings::CLONE_SIGHAND) as u64;

/// Where a worker is in its life.
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
enum State {
    /// Not started: woken up, if at all, by dropping the [`NewUserWorker`], to exit unrun.
    Created,
    /// Woken up by [`NewUserWorker::start`]: the function runs.
    Started,
    /// The function has returned, or was not called; the worker is about to exit.
    Exited,
}

// SAFETY: `State` is `repr(i32)`: it has the size and alignment of `i32`, and every `State`
// transmuted to `i32` and back is the same `State`.
unsafe impl AtomicType for State {
    type Repr = i32;
}

/// The lockdep map that the owner's waits for a worker's exit acquire, and that the worker holds
/// in its exit sections. It has no size without `CONFIG_LOCKDEP`, and is then never touched.
#[pin_data]
struct ExitMap {
    #[pin]
    map: Opaque<bindings::lockdep_map>,
}

impl ExitMap {
    /// Initialises the map with lock class `key`, named `name` if that ends with its only NUL.
    fn new(name: &'static str, key: Pin<&'static LockClassKey>) -> impl PinInit<Self> {
        pin_init!(Self {
            map <- Opaque::ffi_init(move |map| {
                #[cfg(CONFIG_LOCKDEP)]
                let name = match CStr::from_bytes_with_nul(name.as_bytes()) {
                    Ok(name) => name,
                    Err(_) => c"user_worker_exit",
                };
                #[cfg(CONFIG_LOCKDEP)]
                // SAFETY: `map` is valid for writes; the name and the key are static.
                unsafe {
                    bindings::lockdep_init_map(map, name.as_char_ptr(), key.as_ptr())
                };
                #[cfg(not(CONFIG_LOCKDEP))]
                let _ = (map, name, key);
            }),
        })
    }

    /// Runs `f` with the map held, as a lock would be.
    #[inline]
    fn held<R>(&self, f: impl FnOnce() -> R) -> R {
        #[cfg(CONFIG_LOCKDEP)]
        // SAFETY: The map was initialised by `lockdep_init_map()`, and is released below.
        unsafe {
            bindings::lock_map_acquire(self.map.get())
        };
        let r = f();
        #[cfg(CONFIG_LOCKDEP)]
        // SAFETY: Acquired above, by this task.
        unsafe {
            bindings::lock_map_release(self.map.get())
        };
        r
    }
}

/// The part of a worker's allocation that does not depend on its data.
///
/// It comes first in [`Shared`], so that the thread's entry point, which is not generic, can
/// reach it through the pointer it is given.
///
/// # Invariants
///
/// `task` holds a reference to the worker's task, taken when it was created and given back when
/// the header is dropped.
#[repr(C)]
#[pin_data(PinnedDrop)]
struct Header {
    /// Runs the worker's function on its data: `run::<T>`.
    run: unsafe fn(*const Header),
    state: Atomic<State>,
    /// Completed by the worker once it is done with the allocation.
    #[pin]
    exited: Completion,
    #[pin]
    exit_map: ExitMap,
    /// The worker's task. A pointer, not an `ARef`, so that the hot paths reach it with no call.
    task: NonNull<Task>,
}

// SAFETY: The task may be woken up, and its reference given back, from any thread; lockdep keeps
// no thread affinity for the exit map; the rest is `Send`.
unsafe impl Send for Header {}
// SAFETY: The methods of `&Header` only read the task pointer and the map's address, and use
// `Atomic` and `Completion`, which may be used from several threads at once.
unsafe impl Sync for Header {}

impl Header {
    /// Initialises the header of a worker named `name` that runs `run`, and creates its thread.
    fn new<'a>(
        name: &'a CStr,
        run: unsafe fn(*const Header),
        class_name: &'static str,
        key: Pin<&'static LockClassKey>,
    ) -> impl PinInit<Self, Error> + 'a {
        try_pin_init!(&this in Self {
            run,
            state: Atomic::new(State::Created),
            exited <- Completion::new(),
            exit_map <- ExitMap::new(class_name, key),
            // Last: once the thread exists, nothing may fail.
            // INVARIANT: `into_raw()` keeps the reference that `create_worker()` took.
            task: ARef::into_raw(create_worker(name, this.as_ptr())?),
        }? Error)
    }

    /// Returns the worker's task.
    #[inline]
    fn task(&self) -> &Task {
        // SAFETY: By the type invariant the header holds a reference to the task.
        unsafe { self.task.as_ref() }
    }

    /// Returns the worker's `struct task_struct`.
    #[inline]
    fn task_ptr(&self) -> *mut bindings::task_struct {
        // CAST: `Task` is a `repr(transparent)` wrapper of `struct task_struct`.
        self.task.as_ptr().cast()
    }

    /// Wakes the worker up if it sleeps; does nothing to one not woken up for the first time yet.
    #[inline]
    fn wake_up(&self) {
        // SAFETY: The task is valid; `wake_up_process()` may be called on a task in any state.
        unsafe { bindings::wake_up_process(self.task_ptr()) };
    }

    /// Wakes up the new worker for the first time.
    ///
    /// Not generic, so that modules can use it: `wake_up_new_task()` is not exported.
    ///
    /// # Safety
    ///
    /// The worker must not have been woken up before.
    unsafe fn wake_up_new(&self) {
        // SAFETY: The task is valid, and not woken up yet, as the caller promises.
        unsafe { bindings::wake_up_new_task(self.task_ptr()) };
    }

    /// Waits until the worker is done with the allocation.
    fn wait_exited(&self) {
        // Tells lockdep that this wait depends on every lock the worker takes in an exit
        // section, as `flush_work()` does for a work item.
        self.exit_map.held(|| ());
        self.exited.wait_for_completion();
    }
}

#[pinned_drop]
impl PinnedDrop for Header {
    fn drop(self: Pin<&mut Self>) {
        // Only the owner changes the state from `Created`, and it is dropping the worker.
        if self.state.load(Relaxed) == State::Created {
            // SAFETY: A worker still `Created` has not been woken up, and the drop wakes it
            // only this once. It finds itself not started, and exits.
            unsafe { self.wake_up_new() };
        }
        self.wait_exited();
        // SAFETY: The reference that the header holds, by the type invariant, given back once.
        drop(unsafe { ARef::from_raw(self.task) });
    }
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

/// Creates a worker thread for the allocation at `header`, not started yet.
///
/// Not generic, so that modules can use it: `copy_process()` is not exported.
fn create_worker(name: &CStr, header: *mut Header) -> Result<ARef<Task>> {
    let mut args = bindings::kernel_clone_args {
        flags: CLONE_FLAGS,
        exit_signal: 0,
        fn_: Some(worker_entry),
        fn_arg: header.cast(),
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

/// The thread function of every user worker: runs its function, reports its exit, and exits.
///
/// Not generic, so that modules can create workers: `do_exit()` is not exported. The exit is
/// reported here, after the generic part has returned, so that the worker runs no code of the
/// crate that created it once its owner may see it: the owner may then unload that module.
///
/// # Safety
///
/// `arg` must point to the [`Header`] of a [`Shared`] whose owner waits for `exited` before
/// freeing it, and this must be called once, in the worker created for it.
unsafe extern "C" fn worker_entry(arg: *mut c_void) -> c_int {
    let header = arg.cast_const().cast::<Header>();
    // SAFETY: `header` is valid until `exited` is completed below, and `run` is `run::<T>` for
    // the `Shared<T>` that it heads. The reference is last used by `complete_all()`, which
    // touches the completion only under its lock, before the owner's wait can return and free
    // it.
    let header = unsafe {
        ((*header).run)(header);
        &*header
    };
    // Pairs with the load in `UserWorker::has_exited`.
    header.state.store(State::Exited, Release);
    header.exited.complete_all();
    #[cfg(CONFIG_USER_WORKER_EXIT_DELAY_TEST)]
    // SAFETY: The test hook has no preconditions.
    unsafe {
        bindings::user_worker_exit_delay_test()
    };
    // SAFETY: Nothing of this frame needs dropping: `do_exit()` ends the thread for good.
    unsafe { bindings::do_exit(0) }
}

/// Runs the worker's function unless the worker was cancelled.
///
/// # Safety
///
/// `header` must point to the header of a `Shared<T>` that stays valid during the call.
unsafe fn run<T>(header: *const Header) {
    // SAFETY: The caller promises that `header` heads a live `Shared<T>`; it is only read.
    let shared = unsafe { &*header.cast::<Shared<T>>() };
    // `wake_up_new_task()` orders the store of `start()` before this.
    if shared.header.state.load(Relaxed) == State::Started {
        // INVARIANT: This is the worker's thread, and `ctx` is gone before it exits.
        let ctx = WorkerContext {
            header: &shared.header,
            _not_send: NotThreadSafe,
        };
        (shared.func)(&ctx, &shared.data);
    }
}

/// A user worker that was created but has not run yet.
///
/// Dropping it without [`start`](Self::start) is sound: the thread is then woken up only to exit
/// without calling its function, and the drop returns once it has done so. Leaking it, with
/// [`core::mem::forget`] or an [`into_raw`](Self::into_raw) that is never taken back, leaks a
/// thread that never runs: its process can then neither exit nor `exec`.
///
/// # Examples
///
/// ```
/// use kernel::{
///     prelude::*,
///     sync::atomic::{Atomic, Relaxed},
///     task::user_worker::{new_user_worker, WorkerContext},
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
/// let new = new_user_worker!(c"example", init(), count)?;
/// assert_eq!(new.data().n.load(Relaxed), 0);
/// drop(new);
///
/// // Started: `count` runs once in the worker, then the worker exits.
/// let worker = new_user_worker!(c"example", init(), count)?.start();
/// worker.wait_exited();
/// assert_eq!(worker.data().n.load(Relaxed), 1);
/// # Ok::<(), Error>(())
/// ```
///
/// # Invariants
///
/// The worker's task has not been passed to `wake_up_new_task()` yet.
#[must_use = "dropping a new worker makes it exit unrun"]
pub struct NewUserWorker<T: Send + Sync + 'static>(Pin<KBox<Shared<T>>>);

impl<T: Send + Sync + 'static> NewUserWorker<T> {
    /// Creates a user worker in the calling thread's process; [`new_user_worker!`] calls this.
    ///
    /// The worker is named `name` (truncated to `TASK_COMM_LEN - 1` bytes). Once started, it runs
    /// `func` on `data`, then exits. The waits for its exit are of the lock class `key`, named
    /// `class_name` if that ends with its only NUL (`user_worker_exit` otherwise).
    ///
    /// Fails with the error of `data`'s initialiser, `ENOMEM`, or that of `copy_process()`:
    /// `EAGAIN` at `RLIMIT_NPROC`, the thread limit or the pids controller's `pids.max`,
    /// `ERESTARTNOINTR` when the caller has a signal pending, `EINTR` when it is being killed.
    /// Nothing is leaked then.
    ///
    /// Must be called from a thread of the process that should own the worker (not from
    /// interrupt context).
    #[inline]
    pub fn new(
        name: &CStr,
        data: impl PinInit<T, Error>,
        func: fn(&WorkerContext<'_>, &T),
        class_name: &'static str,
        key: Pin<&'static LockClassKey>,
    ) -> Result<Self> {
        let init = try_pin_init!(Shared {
            data <- data,
            func,
            // Last: the thread is created last.
            header <- Header::new(name, run::<T>, class_name, key),
        }? Error);
        // INVARIANT: The worker was just created, and nothing has woken it up.
        Ok(Self(KBox::pin_init(init, GFP_KERNEL)?))
    }

    /// Returns the worker's task.
    #[inline]
    pub fn task(&self) -> &Task {
        self.0.header.task()
    }

    /// Returns the data the worker shares with this handle.
    #[inline]
    pub fn data(&self) -> &T {
        &self.0.data
    }

    /// Starts the worker: its function runs from now on.
    #[inline]
    pub fn start(self) -> UserWorker<T> {
        let header = &self.0.header;
        // Ordered before the worker's load by `wake_up_new_task()`.
        header.state.store(State::Started, Relaxed);
        // SAFETY: By the type invariant the task has not been woken up, and `self` is consumed,
        // so it is woken up only this once.
        unsafe { header.wake_up_new() };
        // INVARIANT: The worker has been woken up.
        UserWorker(self.0)
    }

    /// Hands the worker over as a pointer, for code that keeps it in C.
    ///
    /// The pointer owns the worker: [`NewUserWorker::from_raw`] takes it back.
    #[must_use = "the pointer owns the worker, which is leaked unless it is taken back"]
    #[inline]
    pub fn into_raw(self) -> *mut c_void {
        let ptr: *const c_void = self.0.into_foreign();
        ptr.cast_mut()
    }

    /// Takes back a worker from [`NewUserWorker::into_raw`] or [`UserWorker::into_raw`]: as a
    /// new worker if it has not been started, as a running one otherwise.
    ///
    /// # Safety
    ///
    /// `ptr` must come from `into_raw()` of a worker of the same `T`, and be taken back only
    /// once per `into_raw()`. No other call on the same worker may run concurrently.
    #[inline]
    pub unsafe fn from_raw(ptr: *mut c_void) -> Result<Self, UserWorker<T>> {
        // SAFETY: The caller promises that `ptr` comes from `into_foreign()` in `into_raw()`.
        let shared = unsafe { <Pin<KBox<Shared<T>>>>::from_foreign(ptr) };
        // Only the owner changes the state from `Created`, and the caller owns the worker.
        if shared.header.state.load(Relaxed) == State::Created {
            // INVARIANT: The worker has not been woken up.
            Ok(Self(shared))
        } else {
            // INVARIANT: The worker has been woken up.
            Err(UserWorker(shared))
        }
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
///     sync::atomic::{Acquire, Atomic, Relaxed, Release},
///     task::user_worker::{new_user_worker, Wait, WorkerContext},
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
/// let worker = new_user_worker!(c"example", init, job)?.start();
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
/// The worker's task has been woken up.
#[must_use = "dropping a running worker waits for its function to return"]
pub struct UserWorker<T: Send + Sync + 'static>(Pin<KBox<Shared<T>>>);

impl<T: Send + Sync + 'static> UserWorker<T> {
    /// Returns the worker's task.
    ///
    /// The reference stays valid after the worker has exited.
    #[inline]
    pub fn task(&self) -> &Task {
        self.0.header.task()
    }

    /// Returns the data the worker shares with this handle.
    #[inline]
    pub fn data(&self) -> &T {
        &self.0.data
    }

    /// Wakes the worker up if it is asleep in [`WorkerContext::wait`], to look at its condition
    /// again.
    #[inline]
    pub fn wake_up(&self) {
        self.0.header.wake_up();
    }

    /// Waits until the worker's function has returned.
    ///
    /// Lockdep treats this as waiting for every lock that the worker takes in
    /// [`WorkerContext::exit_section`]: holding one of them here is reported, not hung.
    #[inline]
    pub fn wait_exited(&self) {
        self.0.header.wait_exited();
    }

    /// Returns whether the worker's function has returned.
    #[inline]
    #[must_use]
    pub fn has_exited(&self) -> bool {
        // Pairs with the store in `worker_entry`.
        self.0.header.state.load(Acquire) == State::Exited
    }

    /// Hands the worker over as a pointer, for code that keeps it in C.
    ///
    /// The pointer owns the worker: [`NewUserWorker::from_raw`] takes it back.
    #[must_use = "the pointer owns the worker, which is leaked unless it is taken back"]
    #[inline]
    pub fn into_raw(self) -> *mut c_void {
        let ptr: *const c_void = self.0.into_foreign();
        ptr.cast_mut()
    }

    /// Wakes up the worker of a pointer from `into_raw()` without taking it back.
    ///
    /// # Safety
    ///
    /// `ptr` must come from `into_raw()` of a worker of the same `T` that has not been taken
    /// back yet, and must not be taken back while this runs. The worker need not be started: a
    /// wake-up before the start does nothing.
    #[inline]
    pub unsafe fn wake_up_raw(ptr: *mut c_void) {
        // SAFETY: The caller promises that `ptr` comes from `into_foreign()` in `into_raw()`,
        // and that the worker stays owned by it meanwhile.
        let shared = unsafe { <Pin<KBox<Shared<T>>>>::borrow(ptr) };
        shared.header.wake_up();
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
/// use kernel::task::user_worker::{new_user_worker, Wait, WorkerContext};
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
/// let worker = new_user_worker!(c"example", init, serve)?.start();
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
        self.header.task()
    }

    /// Returns whether the worker has a signal to take with [`get_signal`](Self::get_signal).
    #[inline]
    #[must_use]
    pub fn signal_pending(&self) -> bool {
        // SAFETY: The task is valid: it is the current task.
        unsafe { bindings::signal_pending(self.header.task_ptr()) != 0 }
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

    /// Takes the pending signals, and unless the process is exiting, sets the worker's state to
    /// `TASK_INTERRUPTIBLE`; returns whether the process is exiting.
    #[inline]
    fn prepare_to_wait(&self) -> bool {
        if self.signal_pending() && self.get_signal() {
            return true;
        }
        // SAFETY: Setting the current task's own state has no preconditions. It comes with a
        // full barrier (`smp_store_mb()`) between the store of the state and the loads of the
        // condition, which pairs with the one that `try_to_wake_up()` has between the waker's
        // stores and its load of the state (`smp_mb__after_spinlock()`): either the condition
        // sees the waker's stores, or the waker sees this state and wakes us.
        unsafe { bindings::set_current_state(bindings::TASK_INTERRUPTIBLE) };
        false
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
    /// atomic", and `might_sleep()` under `CONFIG_DEBUG_ATOMIC_SLEEP`). Under non-preemptible
    /// RCU, sleeping with an `rcu::Guard` alive also lets the grace period end, and the
    /// references the guard protects dangle: undefined behaviour that safe code can reach.
    /// `CondVar::wait` has the same hole.
    pub fn wait(&self, mut condition: impl FnMut() -> bool) -> Wait {
        loop {
            if self.prepare_to_wait() {
                return Wait::Exiting;
            }
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
        self.header.exit_map.held(f)
    }
}
