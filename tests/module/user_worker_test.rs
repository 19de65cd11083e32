// SPDX-License-Identifier: GPL-2.0

//! A misc device through which user space drives `kernel::task::user_worker`.
//!
//! `/dev/user-worker-test`: each open file holds the user workers that its ioctls create, as
//! threads of the calling process, and stops them when it is closed. The end-to-end tests use it
//! to test the abstraction on its own, from the process that owns the workers:
//!
//! - `UWT_CREATE` creates and starts a worker that waits, with [`WorkerContext::wait`], to be
//!   poked or stopped, and counts the pokes it saw; it returns the worker's index in the file;
//!   `UWT_CREATE_EXIT_DELAY` does the same with a worker named `exit-delay-uwt`, which a kernel
//!   with `CONFIG_USER_WORKER_EXIT_DELAY_TEST` keeps alive 50 ms after it reported its exit, to
//!   race the module's unload against it;
//! - `UWT_TID(i)` returns its thread id, `UWT_RUNS(i)` the pokes it counted, `UWT_POKE(i)` pokes
//!   and wakes it, `UWT_STOP(i)` stops it and returns once it has exited;
//! - a worker whose process is killed returns from its wait, logs
//!   `user_worker_test: worker <tid> ends: its process is exiting`, and exits;
//! - `UWT_VHOST_KILL_INVERSION` makes a vhost task through the C ABI of
//!   `<linux/sched/vhost_task.h>` whose kill handler takes a mutex that the file's release then
//!   holds while it stops the task: the lock inversion that lockdep must report (on the Rust
//!   implementation as on C's `exit_mutex`), not hang on;
//! - `UWT_NESTED_STOP` makes a worker that, in its exit section, stops another worker made at
//!   another call site, and returns once both have exited: each call site of
//!   [`new_user_worker!`] has its own lock class, so lockdep must not report it.
//!
//! Built as a module, it is also the proof that the abstraction links from one.

use core::ffi::c_void;
use kernel::{
    bindings,
    fs::File,
    ioctl::_IO,
    miscdevice::{MiscDevice, MiscDeviceOptions, MiscDeviceRegistration},
    new_mutex,
    prelude::*,
    sync::{
        atomic::{Acquire, Atomic, Full, Relaxed, Release},
        Completion, Mutex,
    },
    task::user_worker::{new_user_worker, UserWorker, Wait, WorkerContext},
};

module! {
    type: UserWorkerTest,
    name: "user_worker_test",
    description: "Drives kernel::task::user_worker from user space",
    license: "GPL",
}

const UWT_CREATE: u32 = _IO(b'W' as u32, 1);
const UWT_TID: u32 = _IO(b'W' as u32, 2);
const UWT_RUNS: u32 = _IO(b'W' as u32, 3);
const UWT_POKE: u32 = _IO(b'W' as u32, 4);
const UWT_STOP: u32 = _IO(b'W' as u32, 5);
const UWT_VHOST_KILL_INVERSION: u32 = _IO(b'W' as u32, 6);
const UWT_CREATE_EXIT_DELAY: u32 = _IO(b'W' as u32, 7);
const UWT_NESTED_STOP: u32 = _IO(b'W' as u32, 8);

/// The most workers one open file holds.
const MAX_WORKERS: usize = 256;

/// What a worker shares with the file that made it.
#[pin_data]
struct Job {
    stop: Atomic<bool>,
    pokes: Atomic<i32>,
    runs: Atomic<i32>,
}

/// The function of every worker: counts pokes until it is stopped or its process exits.
fn job(ctx: &WorkerContext<'_>, job: &Job) {
    loop {
        let pending = || job.pokes.load(Acquire) > job.runs.load(Relaxed);
        match ctx.wait(|| job.stop.load(Acquire) || pending()) {
            Wait::Ready if job.stop.load(Acquire) => return,
            Wait::Ready => {
                job.runs.fetch_add(1, Full);
            }
            Wait::Exiting => {
                pr_info!("worker {} ends: its process is exiting\n", ctx.task().pid());
                return;
            }
        }
    }
}

/// What the outer worker of `UWT_NESTED_STOP` shares with its file: the inner worker.
#[pin_data]
struct Nest {
    #[pin]
    inner: Mutex<Option<UserWorker<Job>>>,
}

/// The function of the outer worker: stops the inner one inside an exit section, which waits for
/// the inner worker's exit while it holds the outer one's exit map.
fn stop_inner(ctx: &WorkerContext<'_>, nest: &Nest) {
    ctx.exit_section(|| {
        let inner = nest.inner.lock().take();
        if let Some(w) = inner {
            w.data().stop.store(true, Release);
            w.wake_up();
            drop(w);
        }
    });
}

/// The initialiser of a worker's [`Job`].
fn new_job() -> impl PinInit<Job, Error> {
    try_pin_init!(Job {
        stop: Atomic::new(false),
        pokes: Atomic::new(0),
        runs: Atomic::new(0),
    }? Error)
}

/// The vhost task of `UWT_VHOST_KILL_INVERSION`, kept as C keeps it.
struct CTask(*mut bindings::vhost_task);

// SAFETY: A `struct vhost_task` may be stopped from any thread.
unsafe impl Send for CTask {}

/// An open `/dev/user-worker-test`.
#[pin_data(PinnedDrop)]
struct WorkerFile {
    #[pin]
    workers: Mutex<KVec<Option<UserWorker<Job>>>>,
    /// Taken by the kill handler of the vhost task, and held by the release while it stops it.
    #[pin]
    inversion: Mutex<Option<CTask>>,
    /// Completed by the kill handler.
    #[pin]
    killed: Completion,
}

/// `fn` of the vhost task: no work, ever.
extern "C" fn no_work(_arg: *mut c_void) -> bool {
    false
}

/// `handle_sigkill` of the vhost task: takes the file's `inversion` lock.
///
/// # Safety
///
/// `arg` must point to the `WorkerFile` that made the task, which outlives it.
unsafe extern "C" fn kill_takes_the_lock(arg: *mut c_void) {
    // SAFETY: The file stops the task before it is freed, as the caller promises.
    let file = unsafe { &*arg.cast::<WorkerFile>() };
    drop(file.inversion.lock());
    file.killed.complete_all();
}

impl WorkerFile {
    fn worker<R>(&self, i: usize, f: impl FnOnce(&UserWorker<Job>) -> R) -> Result<R> {
        match self.workers.lock().get(i) {
            Some(Some(w)) => Ok(f(w)),
            _ => Err(ENOENT),
        }
    }

    fn create(&self, exit_delay: bool) -> Result<isize> {
        let mut workers = self.workers.lock();
        if workers.len() >= MAX_WORKERS {
            return Err(ENOSPC);
        }
        let name = if exit_delay {
            c"exit-delay-uwt"
        } else {
            c"uwt-worker"
        };
        let worker = new_user_worker!(name, new_job(), job)?.start();
        workers.push(Some(worker), GFP_KERNEL)?;
        Ok(workers.len() as isize - 1)
    }

    fn nested_stop() -> Result<isize> {
        let inner = new_user_worker!(c"uwt-inner", new_job(), job)?.start();
        let init = try_pin_init!(Nest {
            inner <- new_mutex!(Some(inner)),
        }? Error);
        let outer = new_user_worker!(c"uwt-outer", init, stop_inner)?.start();
        outer.wait_exited();
        // The outer worker took the inner one, and dropped it once it had exited.
        let taken = outer.data().inner.lock().is_none();
        if taken {
            Ok(0)
        } else {
            Err(EIO)
        }
    }

    fn stop(&self, i: usize) -> Result<isize> {
        let worker = self.workers.lock().get_mut(i).and_then(Option::take);
        let worker = worker.ok_or(ENOENT)?;
        worker.data().stop.store(true, Release);
        worker.wake_up();
        // Waits for the exit.
        drop(worker);
        Ok(0)
    }

    fn vhost_kill_inversion(&self) -> Result<isize> {
        let mut task = self.inversion.lock();
        if task.is_some() {
            return Err(EBUSY);
        }
        let arg = core::ptr::from_ref(self).cast_mut().cast();
        // SAFETY: The callbacks may be called with `arg` until the stop in `drop`, which comes
        // before the file is freed.
        let vtsk = unsafe {
            bindings::vhost_task_create(
                Some(no_work),
                Some(kill_takes_the_lock),
                arg,
                c"uwt-vhost".as_char_ptr(),
            )
        };
        let vtsk = kernel::error::from_err_ptr(vtsk)?;
        // SAFETY: `vtsk` was just created and is started once.
        unsafe { bindings::vhost_task_start(vtsk) };
        *task = Some(CTask(vtsk));
        Ok(0)
    }
}

#[pinned_drop]
impl PinnedDrop for WorkerFile {
    fn drop(self: Pin<&mut Self>) {
        // Each worker is stopped, and waited for, as it is dropped.
        for w in self.workers.lock().iter_mut().filter_map(Option::take) {
            w.data().stop.store(true, Release);
            w.wake_up();
        }
        let task = self.inversion.lock().take();
        if let Some(CTask(vtsk)) = task {
            // Only once the kill handler ran (its process is exiting, or the file would not be
            // released): then the stop below does not wait for it, and lockdep sees both orders
            // without a hang.
            self.killed.wait_for_completion();
            let _held = self.inversion.lock();
            // SAFETY: `vtsk` was created and started by this file, and is stopped once.
            unsafe { bindings::vhost_task_stop(vtsk) };
        }
    }
}

#[vtable]
impl MiscDevice for WorkerFile {
    type Ptr = Pin<KBox<Self>>;

    // Trees whose `#[vtable]` does not name the module itself (6.12's backport).
    #[cfg(not(vt_owner_module))]
    const OWNER: &'static ThisModule = &THIS_MODULE;

    fn open(_file: &File, _misc: &MiscDeviceRegistration<Self>) -> Result<Pin<KBox<Self>>> {
        KBox::pin_init(
            try_pin_init!(WorkerFile {
                workers <- new_mutex!(KVec::new()),
                inversion <- new_mutex!(None),
                killed <- Completion::new(),
            }? Error),
            GFP_KERNEL,
        )
    }

    fn ioctl(me: Pin<&WorkerFile>, _file: &File, cmd: u32, arg: usize) -> Result<isize> {
        match cmd {
            UWT_CREATE => me.create(false),
            UWT_CREATE_EXIT_DELAY => me.create(true),
            UWT_NESTED_STOP => WorkerFile::nested_stop(),
            UWT_TID => me.worker(arg, |w| w.task().pid() as isize),
            UWT_RUNS => me.worker(arg, |w| w.data().runs.load(Acquire) as isize),
            UWT_POKE => me.worker(arg, |w| {
                w.data().pokes.fetch_add(1, Full);
                w.wake_up();
                0
            }),
            UWT_STOP => me.stop(arg),
            UWT_VHOST_KILL_INVERSION => me.vhost_kill_inversion(),
            _ => Err(ENOTTY),
        }
    }
}

struct UserWorkerTest {
    _dev: Pin<KBox<MiscDeviceRegistration<WorkerFile>>>,
}

impl kernel::Module for UserWorkerTest {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let opts = MiscDeviceOptions {
            name: c"user-worker-test",
        };
        Ok(UserWorkerTest {
            _dev: KBox::pin_init(MiscDeviceRegistration::register(opts), GFP_KERNEL)?,
        })
    }
}
