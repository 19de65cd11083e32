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
//! This is the semantics of the C `kernel/vhost_task.c`, line for line, with one atomic in place
//! of its `exit_mutex` and flag bits.

use core::sync::atomic::{AtomicU8, Ordering};
use kernel::{
    prelude::*,
    str::CStr,
    task::{
        user_worker::{NewUserWorker, UserWorker, WorkerContext},
        Task,
    },
};

/// The work a vhost task runs.
pub trait VhostWork: Send + Sync + 'static {
    /// Runs the pending work, if any, in the worker, and returns whether it did work.
    ///
    /// If it did, it is called again at once; otherwise the worker sleeps until the next
    /// wake-up.
    ///
    /// It is called with the worker's state already set to `TASK_INTERRUPTIBLE`, so that a
    /// wake-up that comes after it looked for work is not lost; work that sleeps must set
    /// itself running first, as the C callers do.
    fn run(&self) -> bool;

    /// Called in the worker, once, when the owner's process is killed while the task was not
    /// stopped: the work must be flushed and no more queued, since the worker is exiting.
    fn killed(&self);
}

/// How a task ended, in [`Inner::end`]: not yet.
const RUNNING: u8 = 0;
/// The owner stopped it: [`VhostWork::killed`] is not called.
const STOPPED: u8 = 1;
/// The owner's process was killed first: [`VhostWork::killed`] is called.
const KILLED: u8 = 2;

/// The state the owner and the worker share.
#[pin_data]
struct Inner<W> {
    work: W,
    /// How the task ended: [`RUNNING`], then [`STOPPED`] or [`KILLED`], whichever comes first.
    ///
    /// One compare-and-exchange from [`RUNNING`] decides between a stop and the kill path, so
    /// that either `killed()` runs or the stop is seen, never both. The C implementation
    /// decides the same with a mutex and two flag bits.
    end: AtomicU8,
}

/// A vhost task that has been created but not started.
///
/// Dropping it is sound: the worker then exits without running any work.
pub struct NewVhostTask<W: VhostWork> {
    worker: NewUserWorker<Inner<W>>,
}

impl<W: VhostWork> NewVhostTask<W> {
    /// Creates a vhost task named `name` in the calling thread's process.
    ///
    /// See [`NewUserWorker::new`] for the errors.
    pub fn new(name: &CStr, work: W) -> Result<Self> {
        let inner = try_pin_init!(Inner {
            work,
            end: AtomicU8::new(RUNNING),
        }? Error);
        Ok(Self {
            worker: NewUserWorker::new(name, inner, worker_loop::<W>)?,
        })
    }

    /// The worker's task.
    pub fn task(&self) -> &Task {
        self.worker.task()
    }

    /// The work the task runs.
    pub fn work(&self) -> &W {
        &self.worker.data().work
    }

    /// Starts the worker loop.
    pub fn start(self) -> VhostTask<W> {
        VhostTask {
            worker: self.worker.start(),
        }
    }
}

/// A running vhost task.
///
/// Dropping it stops it, like [`stop`](Self::stop).
pub struct VhostTask<W: VhostWork> {
    worker: UserWorker<Inner<W>>,
}

impl<W: VhostWork> VhostTask<W> {
    /// The worker's task.
    pub fn task(&self) -> &Task {
        self.worker.task()
    }

    /// The work the task runs.
    pub fn work(&self) -> &W {
        &self.worker.data().work
    }

    /// Wakes the worker up so that it calls [`VhostWork::run`] again.
    pub fn wake(&self) {
        self.worker.wake_up();
    }

    /// Returns whether the worker has exited, which before a stop means it was killed.
    pub fn has_exited(&self) -> bool {
        self.worker.has_exited()
    }

    /// Stops the task, and returns once the worker has exited.
    ///
    /// [`VhostWork::run`] is not called afterwards. If the worker was killed meanwhile, this
    /// only waits for its exit.
    pub fn stop(self) {
        drop(self);
    }
}

impl<W: VhostWork> Drop for VhostTask<W> {
    fn drop(&mut self) {
        let inner = self.worker.data();
        // Unless the kill path came first. The full barrier of the exchange pairs with the one
        // in `set_interruptible()` in the loop: either the worker sees the stop, or this sees
        // it about to sleep and wakes it up.
        if inner
            .end
            .compare_exchange(RUNNING, STOPPED, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            self.worker.wake_up();
        }
        self.worker.wait_exited();
    }
}

/// The worker's loop, `vhost_task_fn()` of the C implementation.
fn worker_loop<W: VhostWork>(ctx: &WorkerContext, inner: &Inner<W>) {
    loop {
        if ctx.signal_pending() && ctx.get_signal() {
            break;
        }

        // The barrier pairs with `wake_up()` in `VhostTask::drop`, and with the wake-up of
        // whoever queues work after `run()` found none.
        ctx.set_interruptible();

        if inner.end.load(Ordering::SeqCst) == STOPPED {
            ctx.set_running();
            break;
        }

        if !inner.work.run() {
            ctx.schedule();
        }
    }

    // If a stop and a SIGKILL race, the SIGKILL can be ignored: the owner has already stopped
    // queueing work and flushed it when it stops the task.
    if inner
        .end
        .compare_exchange(RUNNING, KILLED, Ordering::SeqCst, Ordering::SeqCst)
        .is_ok()
    {
        inner.work.killed();
    }
}
