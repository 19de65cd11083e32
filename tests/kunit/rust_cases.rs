// SPDX-License-Identifier: GPL-2.0

//! KUnit cases for the Rust layers.
//!
//! They cover [`kernel::task::user_worker`], [`crate::vhost_task`], and what [`crate::c_abi`]
//! does beyond the upstream C (argument checks, stopping a task that was never started). Built
//! into the crate with `CONFIG_VHOST_TASK_KUNIT_TEST` as the KUnit suite
//! `vhost_task_rust`: registered by `#[kunit_tests]` where the tree has it (7.3), by
//! `vhost_task_kunit.c` from `rust_cases.h` otherwise (6.12).
//!
//! A case returns `Result`. A failed [`check!`] prints what failed and returns an error, and
//! the case fails; it returns through the `Drop` of what it started, which stops its workers. A
//! KUnit assertion would abort the case's thread instead and leave them running.

use crate::{
    c_abi,
    compat::init_value,
    vhost_task::{NewVhostTask, VhostWork},
};
use core::{
    ffi::{c_void, CStr},
    marker::PhantomData,
    ptr,
};
use kernel::{
    bindings,
    ffi::{c_int, c_ulong},
    prelude::*,
    sync::{
        aref::ARef,
        atomic::{Acquire, Atomic, Full, Release},
        Arc,
    },
    task::{
        user_worker::{new_user_worker, NewUserWorker, UserWorker, Wait, WorkerContext},
        Task,
    },
};

extern "C" {
    /// Makes the calling kthread an unprivileged user whose `RLIMIT_NPROC` is `nproc`
    /// (`vhost_task_kunit.c`).
    fn vhost_task_test_become_limited_user(nproc: c_ulong) -> c_int;
}

/// Fails the case unless `$cond` holds: prints the condition and returns `EINVAL`.
macro_rules! check {
    ($cond:expr) => {
        if !$cond {
            pr_err!(
                "{}:{}: check failed: {}\n",
                file!(),
                line!(),
                stringify!($cond)
            );
            return Err(EINVAL);
        }
    };
}

/// Sleeps for `ms` milliseconds.
fn msleep(ms: u32) {
    // SAFETY: KUnit cases run in process context, where sleeping is allowed.
    unsafe { bindings::msleep(ms) };
}

/// Polls `cond` every millisecond for up to ten seconds; returns its last value.
fn wait_until(cond: impl Fn() -> bool) -> bool {
    for _ in 0..10_000 {
        if cond() {
            return true;
        }
        msleep(1);
    }
    cond()
}

/// Counts the drops of the value it is in.
struct DropCount(Arc<Atomic<i32>>);

impl Drop for DropCount {
    fn drop(&mut self) {
        self.0.fetch_add(1, Full);
    }
}

/// The data of a test user worker: what its function saw, and a drop counter.
struct Seen {
    hold_ms: u32,
    ran: Atomic<bool>,
    pid: Atomic<i32>,
    current_is_ctx_task: Atomic<bool>,
    signal_pending: Atomic<bool>,
    /// Also set when the function ran, readable after the data is gone.
    ran_out: Arc<Atomic<bool>>,
    _drops: DropCount,
}

/// What outlives a test worker's data.
struct Outside {
    drops: Arc<Atomic<i32>>,
    ran: Arc<Atomic<bool>>,
}

/// The function of a test user worker: sleeps `hold_ms`, then records what it sees.
fn record(ctx: &WorkerContext<'_>, s: &Seen) {
    msleep(s.hold_ms);
    let current = Task::current_raw();
    s.current_is_ctx_task
        .store(ctx.task().as_ptr() == current, Release);
    s.pid.store(ctx.task().pid(), Release);
    s.signal_pending.store(ctx.signal_pending(), Release);
    s.ran.store(true, Release);
    s.ran_out.store(true, Release);
}

/// The data of a worker running [`record`] after `hold_ms`, and what outlives it.
fn seen(hold_ms: u32) -> Result<(Seen, Outside)> {
    let out = Outside {
        drops: Arc::new(Atomic::new(0), GFP_KERNEL)?,
        ran: Arc::new(Atomic::new(false), GFP_KERNEL)?,
    };
    let seen = Seen {
        hold_ms,
        ran: Atomic::new(false),
        pid: Atomic::new(0),
        current_is_ctx_task: Atomic::new(false),
        signal_pending: Atomic::new(false),
        ran_out: out.ran.clone(),
        _drops: DropCount(out.drops.clone()),
    };
    Ok((seen, out))
}

/// A worker running [`record`] after `hold_ms`, and what outlives its data.
fn seen_worker(hold_ms: u32) -> Result<(NewUserWorker<Seen>, Outside)> {
    let (seen, out) = seen(hold_ms)?;
    Ok((new_user_worker!(c"vt-rust", init_value(seen), record)?, out))
}

fn new_user_worker_runs_nothing_until_started() -> Result {
    let (new, _out) = seen_worker(0)?;
    msleep(50);
    check!(!new.data().ran.load(Acquire));
    let worker = new.start();
    worker.wait_exited();
    check!(worker.data().ran.load(Acquire));
    Ok(())
}

fn user_worker_function_runs_in_the_worker_task() -> Result {
    let (new, _out) = seen_worker(0)?;
    let worker = new.start();
    worker.wait_exited();
    let seen = worker.data();
    check!(seen.current_is_ctx_task.load(Acquire));
    check!(seen.pid.load(Acquire) == worker.task().pid());
    check!(worker.task().as_ptr() != Task::current_raw());
    // SAFETY: The worker's task is valid (the handle holds a reference) and `flags` is a plain
    // integer field.
    let flags = unsafe { (*worker.task().as_ptr()).flags };
    check!(flags & bindings::PF_USER_WORKER != 0);
    check!(flags & bindings::PF_KTHREAD == 0);
    Ok(())
}

fn user_worker_data_is_dropped_by_the_handle_after_the_exit() -> Result {
    let (new, out) = seen_worker(0)?;
    let worker = new.start();
    worker.wait_exited();
    check!(worker.data().ran.load(Acquire));
    // The handle still holds the data.
    msleep(20);
    check!(out.drops.load(Acquire) == 0);
    drop(worker);
    // Dropped by the drop of the handle, before it returned.
    check!(out.drops.load(Acquire) == 1);
    Ok(())
}

fn dropping_a_never_started_user_worker_runs_nothing() -> Result {
    let (new, out) = seen_worker(0)?;
    let task = ARefTask::from(new.task());
    drop(new);
    // The drop returns once the worker exited without calling its function, and drops the data.
    check!(!out.ran.load(Acquire));
    check!(out.drops.load(Acquire) == 1);
    // And the thread goes away.
    check!(wait_until(|| exit_state(&task) != 0));
    Ok(())
}

type ARefTask = ARef<Task>;

fn exit_state(task: &kernel::task::Task) -> i32 {
    // SAFETY: `task` is valid for the reference's lifetime; `exit_state` is a plain integer
    // read racily on purpose, as `READ_ONCE()` would.
    unsafe { ptr::read_volatile(&(*task.as_ptr()).exit_state) }
}

fn user_worker_has_exited_only_after_the_function_returned() -> Result {
    let (new, _out) = seen_worker(200)?;
    let worker: UserWorker<Seen> = new.start();
    msleep(20);
    check!(!worker.has_exited());
    worker.wait_exited();
    check!(worker.has_exited());
    check!(worker.data().ran.load(Acquire));
    Ok(())
}

fn user_worker_task_reference_outlives_the_thread() -> Result {
    let (new, _out) = seen_worker(0)?;
    let pid = new.task().pid();
    let worker = new.start();
    worker.wait_exited();
    check!(wait_until(|| exit_state(worker.task()) != 0));
    msleep(20);
    // The thread is gone, its task_struct is not: the handle holds a reference.
    check!(worker.task().pid() == pid);
    worker.wake_up();
    Ok(())
}

fn user_worker_context_sees_no_signal_when_none_was_sent() -> Result {
    let (new, _out) = seen_worker(0)?;
    let worker = new.start();
    worker.wait_exited();
    check!(worker.data().ran.load(Acquire));
    check!(!worker.data().signal_pending.load(Acquire));
    Ok(())
}

fn user_worker_create_failure_returns_eagain_and_frees_data() -> Result {
    // SAFETY: The case's kthread is ours to turn into an unprivileged user.
    check!(unsafe { vhost_task_test_become_limited_user(1) } == 0);
    let (seen, out) = seen(0)?;
    let result = new_user_worker!(c"vt-rust-fail", init_value(seen), record);
    check!(matches!(result, Err(e) if e == EAGAIN));
    // No thread: the data went with the failed call, unused.
    check!(out.drops.load(Acquire) == 1);
    check!(!out.ran.load(Acquire));
    Ok(())
}

/// Records the thread that drops the value it is in.
struct DropBy(Arc<Atomic<*mut bindings::task_struct>>);

impl Drop for DropBy {
    fn drop(&mut self) {
        self.0.store(Task::current_raw(), Release);
    }
}

/// The data of a worker that waits for `go`, then records how the wait ended.
#[pin_data]
struct Waiter {
    go: Atomic<bool>,
    rounds: Atomic<i32>,
    ready: Atomic<bool>,
}

fn wait_for_go(ctx: &WorkerContext<'_>, w: &Waiter) {
    let wait = ctx.wait(|| {
        w.rounds.fetch_add(1, Full);
        w.go.load(Acquire)
    });
    w.ready.store(wait == Wait::Ready, Release);
}

fn user_worker_wait_sleeps_until_woken_with_the_condition_true() -> Result {
    let init = try_pin_init!(Waiter {
        go: Atomic::new(false),
        rounds: Atomic::new(0),
        ready: Atomic::new(false),
    }? Error);
    let worker = new_user_worker!(c"vt-wait", init, wait_for_go)?.start();
    check!(wait_until(|| worker.data().rounds.load(Acquire) >= 1));
    // Asleep: a wake-up with the condition still false only makes it look again.
    worker.wake_up();
    check!(wait_until(|| worker.data().rounds.load(Acquire) >= 2));
    msleep(50);
    check!(!worker.has_exited());
    worker.data().go.store(true, Release);
    worker.wake_up();
    worker.wait_exited();
    check!(worker.data().ready.load(Acquire));
    Ok(())
}

/// A [`VhostWork`] that sleeps in its `run`, as KVM's does: three times, then no more work.
struct SleepyWork {
    runs: Arc<Atomic<i32>>,
}

impl VhostWork for SleepyWork {
    fn run(&self, ctx: &WorkerContext<'_>) -> bool {
        if self.runs.load(Acquire) >= 3 {
            return false;
        }
        ctx.set_running();
        msleep(5);
        self.runs.fetch_add(1, Full);
        true
    }

    fn killed(&self) {}
}

fn vhost_work_may_sleep_after_set_running() -> Result {
    let runs = Arc::new(Atomic::new(0), GFP_KERNEL)?;
    let work = SleepyWork { runs: runs.clone() };
    let task = NewVhostTask::new(c"vt-sleepy", work)?.start();
    // Called again at once while it reports work done, without a wake-up.
    check!(wait_until(|| runs.load(Acquire) == 3));
    task.stop();
    check!(runs.load(Acquire) == 3);
    Ok(())
}

/// A [`VhostWork`] that counts what happens to it.
struct ProbeWork {
    runs: Arc<Atomic<i32>>,
    kills: Arc<Atomic<i32>>,
    _drop: DropCount,
    _drop_by: DropBy,
}

impl VhostWork for ProbeWork {
    fn run(&self, _ctx: &WorkerContext<'_>) -> bool {
        self.runs.fetch_add(1, Full);
        false
    }

    fn killed(&self) {
        self.kills.fetch_add(1, Full);
    }
}

struct Probe {
    runs: Arc<Atomic<i32>>,
    kills: Arc<Atomic<i32>>,
    drops: Arc<Atomic<i32>>,
    dropped_by: Arc<Atomic<*mut bindings::task_struct>>,
}

fn probe_task() -> Result<(NewVhostTask<ProbeWork>, Probe)> {
    let probe = Probe {
        runs: Arc::new(Atomic::new(0), GFP_KERNEL)?,
        kills: Arc::new(Atomic::new(0), GFP_KERNEL)?,
        drops: Arc::new(Atomic::new(0), GFP_KERNEL)?,
        dropped_by: Arc::new(Atomic::new(ptr::null_mut()), GFP_KERNEL)?,
    };
    let work = ProbeWork {
        runs: probe.runs.clone(),
        kills: probe.kills.clone(),
        _drop: DropCount(probe.drops.clone()),
        _drop_by: DropBy(probe.dropped_by.clone()),
    };
    Ok((NewVhostTask::new(c"vt-rust-vhost", work)?, probe))
}

fn vhost_task_wake_reruns_work() -> Result {
    let (new, probe) = probe_task()?;
    let task = new.start();
    check!(wait_until(|| probe.runs.load(Acquire) >= 1));
    for i in 2..=100 {
        task.wake();
        check!(wait_until(|| probe.runs.load(Acquire) >= i));
    }
    task.stop();
    check!(probe.kills.load(Acquire) == 0);
    Ok(())
}

fn vhost_task_drop_stops_and_waits_for_the_worker() -> Result {
    let (new, probe) = probe_task()?;
    let task = new.start();
    check!(wait_until(|| probe.runs.load(Acquire) >= 1));
    let worker = ARefTask::from(task.task());
    drop(task);
    let runs = probe.runs.load(Acquire);
    check!(wait_until(|| exit_state(&worker) != 0));
    check!(probe.runs.load(Acquire) == runs);
    check!(probe.kills.load(Acquire) == 0);
    Ok(())
}

fn vhost_task_work_is_dropped_by_stop_in_the_stopping_thread() -> Result {
    let (new, probe) = probe_task()?;
    let task = new.start();
    check!(wait_until(|| probe.runs.load(Acquire) >= 1));
    check!(probe.drops.load(Acquire) == 0);
    task.stop();
    // Before `stop()` returned, after the worker's exit, in this thread.
    check!(probe.drops.load(Acquire) == 1);
    check!(probe.dropped_by.load(Acquire) == Task::current_raw());
    Ok(())
}

fn never_started_vhost_task_drops_work_unrun() -> Result {
    let (new, probe) = probe_task()?;
    check!(new.work().runs.load(Acquire) == 0);
    drop(new);
    // The drop returns once the worker has exited, and drops the work.
    check!(probe.drops.load(Acquire) == 1);
    check!(probe.runs.load(Acquire) == 0);
    check!(probe.kills.load(Acquire) == 0);
    Ok(())
}

/// The doc example of [`VhostWork`](crate::vhost_task::VhostWork), run here since the kernel runs
/// the doc examples of its `kernel` crate only; `scripts/check.sh doc-examples` keeps the two
/// the same (verbatim, so not formatted).
#[rustfmt::skip]
fn doc_example_of_vhost_work() -> Result {
    use kernel::{prelude::*, sync::atomic::{Atomic, Full}, task::user_worker::WorkerContext};
    use crate::vhost_task::{NewVhostTask, VhostWork};

    struct Counter {
        runs: Atomic<i32>,
    }

    impl VhostWork for Counter {
        fn run(&self, _ctx: &WorkerContext<'_>) -> bool {
            self.runs.fetch_add(1, Full);
            false // No more work: sleep until the next wake-up.
        }

        fn killed(&self) {}
    }

    let task = NewVhostTask::new(c"example", Counter { runs: Atomic::new(0) })?.start();
    task.wake();
    task.stop(); // Returns once the worker has exited; `run` is not called again.
    Ok::<(), Error>(())
}

/// The doc example of [`VhostTask`](crate::vhost_task::VhostTask), run here since the kernel runs
/// the doc examples of its `kernel` crate only; `scripts/check.sh doc-examples` keeps the two
/// the same (verbatim, so not formatted).
#[rustfmt::skip]
fn doc_example_of_vhost_task() -> Result {
    use kernel::{prelude::*, sync::atomic::{Acquire, Atomic, Full, Release}};
    use kernel::task::user_worker::WorkerContext;
    use crate::vhost_task::{NewVhostTask, VhostWork};

    struct Queue {
        queued: Atomic<i32>,
        done: Atomic<i32>,
    }

    impl VhostWork for Queue {
        fn run(&self, _ctx: &WorkerContext<'_>) -> bool {
            if self.done.load(Acquire) == self.queued.load(Acquire) {
                return false;
            }
            self.done.fetch_add(1, Full);
            true // Did work: called again at once.
        }

        fn killed(&self) {}
    }

    let work = Queue { queued: Atomic::new(0), done: Atomic::new(0) };
    let task = NewVhostTask::new(c"example", work)?.start();
    task.work().queued.store(3, Release);
    task.wake();
    task.stop();
    Ok::<(), Error>(())
}

/// `fn` of the C ABI cases: counts its calls in the `Atomic<i32>` `data` points to.
///
/// # Safety
///
/// `data` must point to an `Atomic<i32>` that is valid for the call.
unsafe extern "C" fn count_fn(data: *mut c_void) -> bool {
    // SAFETY: The cases pass a pointer to an `Atomic<i32>` that outlives the task.
    unsafe { &*data.cast::<Atomic<i32>>() }.fetch_add(1, Full);
    false
}

/// `handle_sigkill` of the C ABI cases: never expected.
///
/// # Safety
///
/// As for [`count_fn`].
unsafe extern "C" fn count_kill(data: *mut c_void) {
    // SAFETY: As for `count_fn`.
    unsafe { &*data.cast::<Atomic<i32>>() }.fetch_add(1000, Full);
}

/// A task from the C ABI whose `fn` counts its calls in the `Atomic<i32>` it borrows.
///
/// Dropping it stops the task with `vhost_task_stop()`.
///
/// # Invariants
///
/// `vtsk` came from `vhost_task_create()` and is not stopped; the counter outlives the task.
struct CountingTask<'a> {
    vtsk: *mut bindings::vhost_task,
    _calls: PhantomData<&'a Atomic<i32>>,
}

impl<'a> CountingTask<'a> {
    /// Creates a task named `name` whose `fn` counts its calls in `calls`.
    fn create(name: &CStr, calls: &'a Atomic<i32>) -> Result<Self> {
        let arg = ptr::from_ref(calls).cast_mut().cast::<c_void>();
        // SAFETY: Valid functions and name; `arg` outlives the task, which `Self` borrows it
        // for.
        let vtsk = unsafe {
            c_abi::vhost_task_create(Some(count_fn), Some(count_kill), arg, name.as_char_ptr())
        };
        // INVARIANT: A task that `vhost_task_create()` returned, with `calls` borrowed.
        Ok(Self {
            vtsk: kernel::error::from_err_ptr(vtsk)?,
            _calls: PhantomData,
        })
    }

    /// Starts the task with `vhost_task_start()`.
    fn start(&self) {
        // SAFETY: By the type invariant `vtsk` is live; nothing else uses it concurrently.
        unsafe { c_abi::vhost_task_start(self.vtsk) };
    }

    /// Wakes the task with `vhost_task_wake()`.
    fn wake(&self) {
        // SAFETY: By the type invariant `vtsk` is live.
        unsafe { c_abi::vhost_task_wake(self.vtsk) };
    }
}

impl Drop for CountingTask<'_> {
    fn drop(&mut self) {
        // SAFETY: By the type invariant `vtsk` is live, and it is not used afterwards.
        unsafe { c_abi::vhost_task_stop(self.vtsk) };
    }
}

fn is_err_ptr<T>(p: *mut T, errno: Error) -> bool {
    p == errno.to_ptr()
}

fn c_abi_rejects_null_arguments_with_einval() -> Result {
    let calls = Atomic::new(0);
    let arg = ptr::from_ref(&calls).cast_mut().cast::<c_void>();
    let name = c"vt-null".as_char_ptr();
    // SAFETY: Each call has one null argument, which is what is tested, and otherwise valid
    // ones.
    let results = unsafe {
        [
            c_abi::vhost_task_create(None, Some(count_kill), arg, name),
            c_abi::vhost_task_create(Some(count_fn), None, arg, name),
            c_abi::vhost_task_create(Some(count_fn), Some(count_kill), arg, ptr::null()),
        ]
    };
    for r in results {
        check!(is_err_ptr(r, EINVAL));
    }
    check!(calls.load(Acquire) == 0);
    Ok(())
}

fn c_abi_stop_of_a_never_started_task_returns() -> Result {
    let calls = Atomic::new(0);
    let task = CountingTask::create(c"vt-nostart", &calls)?;
    // Upstream would wait forever here; the Rust one lets the worker exit unrun.
    drop(task);
    check!(calls.load(Acquire) == 0);
    Ok(())
}

fn c_abi_start_twice_is_ignored() -> Result {
    let calls = Atomic::new(0);
    let task = CountingTask::create(c"vt-twice", &calls)?;
    task.start();
    check!(wait_until(|| calls.load(Acquire) >= 1));
    // The second start is the misuse under test.
    task.start();
    task.wake();
    check!(wait_until(|| calls.load(Acquire) >= 2));
    drop(task);
    check!(calls.load(Acquire) < 1000);
    Ok(())
}

/// Records a failed KUnit expectation of `$cond` for `$test` and carries on (6.12).
#[cfg(not(vt_kunit_tests))]
macro_rules! expect {
    ($test:expr, $cond:expr) => {
        'out: {
            if $cond {
                break 'out;
            }

            #[repr(transparent)]
            struct Location(bindings::kunit_loc);
            #[repr(transparent)]
            struct UnaryAssert(bindings::kunit_unary_assert);
            // SAFETY: The only instances are the statics below, whose pointers point to
            // immutable C strings.
            unsafe impl Sync for Location {}
            // SAFETY: As for `Location`.
            unsafe impl Sync for UnaryAssert {}

            // NUL-terminated byte strings: const on every tree, whatever its `CStr` is.
            static LOCATION: Location = Location(bindings::kunit_loc {
                file: concat!(file!(), "\0").as_ptr().cast(),
                line: line!() as i32,
            });
            static ASSERTION: UnaryAssert = UnaryAssert(bindings::kunit_unary_assert {
                assert: bindings::kunit_assert {},
                condition: concat!(stringify!($cond), "\0").as_ptr().cast(),
                expected_true: true,
            });

            // SAFETY: `$test` is the running case's `struct kunit`, the location and assertion
            // are statics, the format function matches the assertion type, and a null message
            // is allowed. An expectation does not abort the case.
            unsafe {
                bindings::__kunit_do_failed_assertion(
                    $test,
                    ptr::addr_of!(LOCATION.0),
                    bindings::kunit_assert_type_KUNIT_EXPECTATION,
                    ptr::addr_of!(ASSERTION.0.assert),
                    Some(bindings::kunit_unary_assert_format),
                    ptr::null(),
                )
            };
        }
    };
}

/// Registers the cases as the KUnit suite `vhost_task_rust`.
///
/// Where the tree has `#[kunit_tests]` (7.3), it registers them; otherwise (6.12) each gets an
/// exported wrapper, `vhost_task_rust_test_<case>`, that `vhost_task_kunit.c` lists.
macro_rules! vhost_task_rust_suite {
    ($($case:ident),* $(,)?) => {
        #[cfg(vt_kunit_tests)]
        #[kernel::macros::kunit_tests(vhost_task_rust)]
        mod suite {
            $(
                #[test]
                fn $case() -> kernel::error::Result {
                    super::$case()
                }
            )*
        }

        #[cfg(not(vt_kunit_tests))]
        mod suite {
            use super::*;
            $(
                #[export_name = concat!("vhost_task_rust_test_", stringify!($case))]
                extern "C" fn $case(test: *mut bindings::kunit) {
                    expect!(test, super::$case().is_ok());
                }
            )*
        }
    };
}

vhost_task_rust_suite! {
    new_user_worker_runs_nothing_until_started,
    user_worker_function_runs_in_the_worker_task,
    user_worker_data_is_dropped_by_the_handle_after_the_exit,
    dropping_a_never_started_user_worker_runs_nothing,
    user_worker_has_exited_only_after_the_function_returned,
    user_worker_task_reference_outlives_the_thread,
    user_worker_context_sees_no_signal_when_none_was_sent,
    user_worker_create_failure_returns_eagain_and_frees_data,
    user_worker_wait_sleeps_until_woken_with_the_condition_true,
    vhost_work_may_sleep_after_set_running,
    doc_example_of_vhost_work,
    doc_example_of_vhost_task,
    vhost_task_wake_reruns_work,
    vhost_task_drop_stops_and_waits_for_the_worker,
    vhost_task_work_is_dropped_by_stop_in_the_stopping_thread,
    never_started_vhost_task_drops_work_unrun,
    c_abi_rejects_null_arguments_with_einval,
    c_abi_stop_of_a_never_started_task_returns,
    c_abi_start_twice_is_ignored,
}
