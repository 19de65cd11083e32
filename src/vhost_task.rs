// SPDX-License-Identifier: GPL-2.0

//! vhost tasks: the worker threads of vhost and KVM.
//!
//! C header: [`include/linux/sched/vhost_task.h`](srctree/include/linux/sched/vhost_task.h)
//!
//! A vhost task is a [user worker](kernel::task::user_worker) of the process that set up the device
//! (the thread calling `VHOST_SET_OWNER`, or the VM's creator for KVM). It loops over
//! [`VhostWork::run`]: again at once while that reports work done, and asleep until
//! [`VhostTask::wake`] otherwise. It ends in one of two ways:
//!
//! - its owner stops it ([`VhostTask::stop`], or dropping it), which returns once the worker
//!   has exited; [`VhostWork::killed`] is not called;
//! - the owner's process is killed (SIGKILL, `exit_group`, `exec`, a core dump): the worker
//!   calls [`VhostWork::killed`] once, unless a stop came first, and exits. A later stop then
//!   only waits for that exit.
//!
//! Either way the work is dropped when the task is stopped (or a never-started task dropped),
//! after the worker has exited, in the thread that stops it.
//!
//! This is the semantics of the C `kernel/vhost_task.c`, line for line, with one atomic in place
//! of its `exit_mutex` and flag bits. Lockdep still sees the protocol: `run` and `killed` are
//! [exit sections](WorkerContext::exit_section) of the worker, so a lock that the stopper holds
//! while they take it is reported, as C's `exit_mutex` makes it for `killed`.
//!
//! The examples of [`VhostWork`] and [`VhostTask`] run as the KUnit cases `doc_example_*` of
//! `tests/kunit/rust_cases.rs`, which `scripts/check.sh doc-examples` keeps the same as here.

use crate::compat::init_value;
use core::cell::Cell;
use kernel::prelude::*;
use kernel::sync::atomic::{Atomic, Relaxed};
use kernel::task::user_worker::{new_user_worker, NewUserWorker, UserWorker, Wait, WorkerContext};
use kernel::task::Task;

/// The work a vhost task runs.
///
/// # Examples
///
/// A work that counts its runs, and has nothing to flush when its process is killed:
///
/// ```
/// use kernel::{prelude::*, sync::atomic::{Atomic, Full}, task::user_worker::WorkerContext};
/// use vhost_task_rust::vhost_task::{NewVhostTask, VhostWork};
///
/// struct Counter {
///     runs: Atomic<i32>,
/// }
///
/// impl VhostWork for Counter {
///     fn run(&self, _ctx: &WorkerContext<'_>) -> bool {
///         self.runs.fetch_add(1, Full);
///         false // No more work: sleep until the next wake-up.
///     }
///
///     fn killed(&self) {}
/// }
///
/// let task = NewVhostTask::new(c"example", Counter { runs: Atomic::new(0) })?.start();
/// task.wake();
/// task.stop(); // Returns once the worker has exited; `run` is not called again.
/// # Ok::<(), Error>(())
/// ```
pub trait VhostWork: Send + Sync + 'static {
    /// Runs the pending work, if any, in the worker, and returns whether it did work.
    ///
    /// If it did, it is called again at once; otherwise the worker sleeps until the next
    /// wake-up. It is called with the worker's state set to `TASK_INTERRUPTIBLE`, so that a
    /// wake-up that comes after it looked for work is not lost: work that sleeps calls
    /// [`WorkerContext::set_running`] first, as the C callers do.
    fn run(&self, ctx: &WorkerContext<'_>) -> bool;

    /// Called in the worker, once, when the owner's process is killed while the task was not
    /// stopped: the work must be flushed and no more queued, since the worker is exiting.
    fn killed(&self);
}

/// How a task ended, in [`VhostShared::end`]: not yet.
const RUNNING: i8 = 0;
/// The owner stopped it: [`VhostWork::killed`] is not called.
const STOPPED: i8 = 1;
/// The owner's process was killed first: [`VhostWork::killed`] is called.
const KILLED: i8 = 2;

/// What the owner and the worker of a vhost task share: the work, and how the task ended.
pub struct VhostShared<W> {
    work: W,
    /// [`RUNNING`], then [`STOPPED`] or [`KILLED`], whichever comes first: one exchange decides
    /// between a stop and the kill path, so that either `killed()` runs or the stop is seen,
    /// never both. The C implementation decides the same with a mutex and two flag bits.
    end: Atomic<i8>,
}

/// A vhost task that has been created but not started.
///
/// Dropping it is sound: the worker then exits without running any work, and the drop returns
/// once it has.
#[must_use = "dropping a new vhost task makes it exit unrun"]
pub struct NewVhostTask<W: VhostWork>(NewUserWorker<VhostShared<W>>);

impl<W: VhostWork> NewVhostTask<W> {
    /// Creates a vhost task named `name` in the calling thread's process.
    ///
    /// See [`NewUserWorker::new`] for the errors.
    #[inline]
    pub fn new(name: &core::ffi::CStr, work: W) -> Result<Self> {
        let init = init_value(VhostShared {
            work,
            end: Atomic::new(RUNNING),
        });
        // One call site, so one lock class for the exits of every vhost task, as C's
        // `exit_mutex` has one.
        Ok(Self(new_user_worker!(name, init, worker_loop::<W>)?))
    }

    /// The work the task runs.
    pub fn work(&self) -> &W {
        &self.0.data().work
    }

    /// Starts the worker loop.
    #[inline]
    pub fn start(self) -> VhostTask<W> {
        VhostTask(self.0.start())
    }

    /// The user worker underneath, for [`crate::c_abi`], which keeps the task in C.
    ///
    /// Not public: a worker of [`VhostShared`] must be stopped as a [`VhostTask`] is, or its
    /// owner waits for it forever.
    pub(crate) fn into_worker(self) -> NewUserWorker<VhostShared<W>> {
        self.0
    }
}

/// A running vhost task.
///
/// Dropping it stops it, like [`stop`](Self::stop).
///
/// # Examples
///
/// Work is queued in the work, then the worker is woken up to run it. The stop returns once the
/// worker has exited, and drops the work; what was queued may not have run by then, so an owner
/// that needs it done flushes first, as vhost does:
///
/// ```
/// use kernel::{prelude::*, sync::atomic::{Acquire, Atomic, Full, Release}};
/// use kernel::task::user_worker::WorkerContext;
/// use vhost_task_rust::vhost_task::{NewVhostTask, VhostWork};
///
/// struct Queue {
///     queued: Atomic<i32>,
///     done: Atomic<i32>,
/// }
///
/// impl VhostWork for Queue {
///     fn run(&self, _ctx: &WorkerContext<'_>) -> bool {
///         if self.done.load(Acquire) == self.queued.load(Acquire) {
///             return false;
///         }
///         self.done.fetch_add(1, Full);
///         true // Did work: called again at once.
///     }
///
///     fn killed(&self) {}
/// }
///
/// let work = Queue { queued: Atomic::new(0), done: Atomic::new(0) };
/// let task = NewVhostTask::new(c"example", work)?.start();
/// task.work().queued.store(3, Release);
/// task.wake();
/// task.stop();
/// # Ok::<(), Error>(())
/// ```
#[must_use = "dropping a vhost task stops it"]
pub struct VhostTask<W: VhostWork>(UserWorker<VhostShared<W>>);

impl<W: VhostWork> VhostTask<W> {
    /// The worker's task.
    pub fn task(&self) -> &Task {
        self.0.task()
    }

    /// The work the task runs.
    pub fn work(&self) -> &W {
        &self.0.data().work
    }

    /// Wakes the worker up so that it calls [`VhostWork::run`] again.
    pub fn wake(&self) {
        self.0.wake_up();
    }

    /// Stops the task, and returns once the worker has exited; then drops the work.
    ///
    /// [`VhostWork::run`] is not called afterwards. If the worker was killed meanwhile, this
    /// only waits for its exit.
    pub fn stop(self) {
        drop(self);
    }

    /// The task of a user worker that was started from [`NewVhostTask::into_worker`].
    pub(crate) fn from_worker(worker: UserWorker<VhostShared<W>>) -> Self {
        Self(worker)
    }
}

impl<W: VhostWork> Drop for VhostTask<W> {
    #[inline]
    fn drop(&mut self) {
        // Unless the kill path came first. The wake-up that follows orders this store before
        // its look at the worker's state, and the worker orders its state before its load of
        // `end` (see `WorkerContext::wait`): either the worker sees the stop, or this wakes it.
        if self.0.data().end.cmpxchg(RUNNING, STOPPED, Relaxed).is_ok() {
            self.0.wake_up();
        }
    }
}

/// The worker's loop, `vhost_task_fn()` of the C implementation.
fn worker_loop<W: VhostWork>(ctx: &WorkerContext<'_>, shared: &VhostShared<W>) {
    let stopped = Cell::new(false);
    // Signals first, then `TASK_INTERRUPTIBLE`, then the stop and the work; again at once while
    // the work did some.
    let stop_or_work = || {
        stopped.set(shared.end.load(Relaxed) == STOPPED);
        stopped.get() || ctx.exit_section(|| shared.work.run(ctx))
    };
    while ctx.wait(stop_or_work) == Wait::Ready && !stopped.get() {}
    // Unless stopped, the wait returned `Wait::Exiting`: the process is exiting.
    // If a stop and a SIGKILL race, the SIGKILL can be ignored: the owner has already stopped
    // queueing work and flushed it when it stops the task.
    if !stopped.get() && shared.end.cmpxchg(RUNNING, KILLED, Relaxed).is_ok() {
        ctx.exit_section(|| shared.work.killed());
    }
}
