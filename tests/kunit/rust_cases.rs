// SPDX-License-Identifier: GPL-2.0

//! KUnit cases for the Rust layers: [`crate::user_worker`], [`crate::vhost_task`], and what
//! [`crate::c_abi`] does beyond the upstream C (argument checks, stopping a task that was never
//! started). Built into the crate with `CONFIG_VHOST_TASK_KUNIT_TEST` and registered as the
//! `vhost_task_rust` suite by `vhost_task_kunit.c`, which lists them in `rust_cases.h`.
//!
//! Failed checks are KUnit expectations, not assertions: a case goes on to stop what it started,
//! since an aborted case would leave a worker running.

use crate::{
    c_abi,
    compat::{init_value, task_as_raw, ARef},
    user_worker::{NewUserWorker, UserWorker, WorkerContext},
    vhost_task::{NewVhostTask, VhostWork},
};
use core::{
    ffi::c_void,
    ptr,
    sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering},
};
use kernel::{
    bindings, c_str,
    ffi::{c_int, c_ulong},
    prelude::*,
    sync::Arc,
};

extern "C" {
    /// Makes the calling kthread an unprivileged user whose `RLIMIT_NPROC` is `nproc`
    /// (`vhost_task_kunit.c`).
    fn vhost_task_test_become_limited_user(nproc: c_ulong) -> c_int;
}

/// Records a failed KUnit expectation of `$cond` for `$test` and carries on.
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
            // SAFETY: the only instances are the statics below, whose pointers point to
            // immutable C strings.
            unsafe impl Sync for Location {}
            // SAFETY: as for `Location`.
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
struct DropCount(Arc<AtomicUsize>);

impl Drop for DropCount {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// The data of a test user worker: what its function saw, and a drop counter.
struct Seen {
    hold_ms: u32,
    ran: AtomicBool,
    pid: AtomicI32,
    current_is_ctx_task: AtomicBool,
    signal_pending: AtomicBool,
    /// Also set when the function ran, readable after the data is gone.
    ran_out: Arc<AtomicBool>,
    _drops: DropCount,
}

/// What outlives a test worker's data.
struct Outside {
    drops: Arc<AtomicUsize>,
    ran: Arc<AtomicBool>,
}

/// The function of a test user worker: sleeps `hold_ms`, then records what it sees.
fn record(ctx: &WorkerContext, s: &Seen) {
    msleep(s.hold_ms);
    // SAFETY: `get_current()` has no preconditions.
    let current = unsafe { bindings::get_current() };
    s.current_is_ctx_task
        .store(task_as_raw(ctx.task()) == current, Ordering::SeqCst);
    s.pid.store(ctx.task().pid(), Ordering::SeqCst);
    s.signal_pending
        .store(ctx.signal_pending(), Ordering::SeqCst);
    s.ran.store(true, Ordering::SeqCst);
    s.ran_out.store(true, Ordering::SeqCst);
}

/// The data of a worker running [`record`] after `hold_ms`, and what outlives it.
fn seen(hold_ms: u32) -> Result<(Seen, Outside)> {
    let out = Outside {
        drops: Arc::new(AtomicUsize::new(0), GFP_KERNEL)?,
        ran: Arc::new(AtomicBool::new(false), GFP_KERNEL)?,
    };
    let seen = Seen {
        hold_ms,
        ran: AtomicBool::new(false),
        pid: AtomicI32::new(0),
        current_is_ctx_task: AtomicBool::new(false),
        signal_pending: AtomicBool::new(false),
        ran_out: out.ran.clone(),
        _drops: DropCount(out.drops.clone()),
    };
    Ok((seen, out))
}

/// A worker running [`record`] after `hold_ms`, and what outlives its data.
fn seen_worker(hold_ms: u32) -> Result<(NewUserWorker<Seen>, Outside)> {
    let (seen, out) = seen(hold_ms)?;
    Ok((
        NewUserWorker::new(c_str!("vt-rust"), init_value(seen), record)?,
        out,
    ))
}

#[no_mangle]
extern "C" fn vhost_task_rust_test_new_user_worker_runs_nothing_until_started(
    test: *mut bindings::kunit,
) {
    let Ok((new, _out)) = seen_worker(0) else {
        return expect!(test, false);
    };
    msleep(50);
    expect!(test, !new.data().ran.load(Ordering::SeqCst));
    let worker = new.start();
    worker.wait_exited();
    expect!(test, worker.data().ran.load(Ordering::SeqCst));
}

#[no_mangle]
extern "C" fn vhost_task_rust_test_user_worker_function_runs_in_the_worker_task(
    test: *mut bindings::kunit,
) {
    let Ok((new, _out)) = seen_worker(0) else {
        return expect!(test, false);
    };
    let worker = new.start();
    worker.wait_exited();
    let seen = worker.data();
    expect!(test, seen.current_is_ctx_task.load(Ordering::SeqCst));
    expect!(test, seen.pid.load(Ordering::SeqCst) == worker.task().pid());
    // SAFETY: `get_current()` has no preconditions.
    let current = unsafe { bindings::get_current() };
    expect!(test, task_as_raw(worker.task()) != current);
    // SAFETY: the worker's task is valid (the handle holds a reference) and `flags` is a plain
    // integer field.
    let flags = unsafe { (*task_as_raw(worker.task())).flags };
    expect!(test, flags & bindings::PF_USER_WORKER != 0);
    expect!(test, flags & bindings::PF_KTHREAD == 0);
}

#[no_mangle]
extern "C" fn vhost_task_rust_test_user_worker_data_lives_until_worker_and_handle_are_gone(
    test: *mut bindings::kunit,
) {
    let Ok((new, out)) = seen_worker(0) else {
        return expect!(test, false);
    };
    let worker = new.start();
    worker.wait_exited();
    expect!(test, worker.data().ran.load(Ordering::SeqCst));
    // The handle still holds the data.
    msleep(20);
    expect!(test, out.drops.load(Ordering::SeqCst) == 0);
    drop(worker);
    // The worker drops its reference right after it has exited its function.
    expect!(test, wait_until(|| out.drops.load(Ordering::SeqCst) == 1));
}

#[no_mangle]
extern "C" fn vhost_task_rust_test_dropping_a_never_started_user_worker_runs_nothing(
    test: *mut bindings::kunit,
) {
    let Ok((new, out)) = seen_worker(0) else {
        return expect!(test, false);
    };
    let task = ARefTask::from(new.task());
    drop(new);
    // The drop returns once the worker exited without calling its function; the worker's
    // reference to the data goes right after.
    expect!(test, !out.ran.load(Ordering::SeqCst));
    expect!(test, wait_until(|| out.drops.load(Ordering::SeqCst) == 1));
    expect!(test, !out.ran.load(Ordering::SeqCst));
    // And the thread goes away.
    expect!(test, wait_until(|| exit_state(&task) != 0));
}

type ARefTask = ARef<kernel::task::Task>;

fn exit_state(task: &kernel::task::Task) -> i32 {
    // SAFETY: `task` is valid for the reference's lifetime; `exit_state` is a plain integer
    // read racily on purpose, as `READ_ONCE()` would.
    unsafe { ptr::read_volatile(&(*task_as_raw(task)).exit_state) }
}

#[no_mangle]
extern "C" fn vhost_task_rust_test_user_worker_has_exited_only_after_the_function_returned(
    test: *mut bindings::kunit,
) {
    let Ok((new, _out)) = seen_worker(200) else {
        return expect!(test, false);
    };
    let worker: UserWorker<Seen> = new.start();
    msleep(20);
    expect!(test, !worker.has_exited());
    worker.wait_exited();
    expect!(test, worker.has_exited());
    expect!(test, worker.data().ran.load(Ordering::SeqCst));
}

#[no_mangle]
extern "C" fn vhost_task_rust_test_user_worker_task_reference_outlives_the_thread(
    test: *mut bindings::kunit,
) {
    let Ok((new, _out)) = seen_worker(0) else {
        return expect!(test, false);
    };
    let pid = new.task().pid();
    let worker = new.start();
    worker.wait_exited();
    expect!(test, wait_until(|| exit_state(worker.task()) != 0));
    msleep(20);
    // The thread is gone, its task_struct is not: the handle holds a reference.
    expect!(test, worker.task().pid() == pid);
    worker.wake_up();
}

#[no_mangle]
extern "C" fn vhost_task_rust_test_user_worker_context_sees_no_signal_when_none_was_sent(
    test: *mut bindings::kunit,
) {
    let Ok((new, _out)) = seen_worker(0) else {
        return expect!(test, false);
    };
    let worker = new.start();
    worker.wait_exited();
    expect!(test, worker.data().ran.load(Ordering::SeqCst));
    expect!(test, !worker.data().signal_pending.load(Ordering::SeqCst));
}

#[no_mangle]
extern "C" fn vhost_task_rust_test_user_worker_create_failure_returns_eagain_and_frees_data(
    test: *mut bindings::kunit,
) {
    // SAFETY: the case's kthread is ours to turn into an unprivileged user.
    expect!(test, unsafe { vhost_task_test_become_limited_user(1) } == 0);
    let Ok((seen, out)) = seen(0) else {
        return expect!(test, false);
    };
    match NewUserWorker::new(c_str!("vt-rust-fail"), init_value(seen), record) {
        Err(e) => expect!(test, e == EAGAIN),
        Ok(_) => expect!(test, false),
    }
    // No thread: the data went with the failed call, unused.
    expect!(test, out.drops.load(Ordering::SeqCst) == 1);
    expect!(test, !out.ran.load(Ordering::SeqCst));
}

/// A [`VhostWork`] that counts what happens to it.
struct ProbeWork {
    runs: Arc<AtomicUsize>,
    kills: Arc<AtomicUsize>,
    _drop: DropCount,
}

impl VhostWork for ProbeWork {
    fn run(&self) -> bool {
        self.runs.fetch_add(1, Ordering::SeqCst);
        false
    }

    fn killed(&self) {
        self.kills.fetch_add(1, Ordering::SeqCst);
    }
}

struct Probe {
    runs: Arc<AtomicUsize>,
    kills: Arc<AtomicUsize>,
    drops: Arc<AtomicUsize>,
}

fn probe_task() -> Result<(NewVhostTask<ProbeWork>, Probe)> {
    let probe = Probe {
        runs: Arc::new(AtomicUsize::new(0), GFP_KERNEL)?,
        kills: Arc::new(AtomicUsize::new(0), GFP_KERNEL)?,
        drops: Arc::new(AtomicUsize::new(0), GFP_KERNEL)?,
    };
    let work = ProbeWork {
        runs: probe.runs.clone(),
        kills: probe.kills.clone(),
        _drop: DropCount(probe.drops.clone()),
    };
    Ok((NewVhostTask::new(c_str!("vt-rust-vhost"), work)?, probe))
}

#[no_mangle]
extern "C" fn vhost_task_rust_test_vhost_task_wake_reruns_work(test: *mut bindings::kunit) {
    let Ok((new, probe)) = probe_task() else {
        return expect!(test, false);
    };
    let task = new.start();
    expect!(test, wait_until(|| probe.runs.load(Ordering::SeqCst) >= 1));
    for i in 2..=100 {
        task.wake();
        expect!(test, wait_until(|| probe.runs.load(Ordering::SeqCst) >= i));
    }
    task.stop();
    expect!(test, probe.kills.load(Ordering::SeqCst) == 0);
}

#[no_mangle]
extern "C" fn vhost_task_rust_test_vhost_task_drop_stops_and_waits_for_the_worker(
    test: *mut bindings::kunit,
) {
    let Ok((new, probe)) = probe_task() else {
        return expect!(test, false);
    };
    let task = new.start();
    expect!(test, wait_until(|| probe.runs.load(Ordering::SeqCst) >= 1));
    let worker = ARefTask::from(task.task());
    drop(task);
    let runs = probe.runs.load(Ordering::SeqCst);
    expect!(test, wait_until(|| exit_state(&worker) != 0));
    expect!(test, probe.runs.load(Ordering::SeqCst) == runs);
    expect!(test, probe.kills.load(Ordering::SeqCst) == 0);
}

#[no_mangle]
extern "C" fn vhost_task_rust_test_vhost_task_stop_drops_the_work_before_returning(
    test: *mut bindings::kunit,
) {
    let Ok((new, probe)) = probe_task() else {
        return expect!(test, false);
    };
    let task = new.start();
    expect!(test, wait_until(|| probe.runs.load(Ordering::SeqCst) >= 1));
    expect!(test, probe.drops.load(Ordering::SeqCst) == 0);
    task.stop();
    expect!(test, probe.drops.load(Ordering::SeqCst) == 1);
}

#[no_mangle]
extern "C" fn vhost_task_rust_test_never_started_vhost_task_drops_work_unrun(
    test: *mut bindings::kunit,
) {
    let Ok((new, probe)) = probe_task() else {
        return expect!(test, false);
    };
    expect!(test, new.work().runs.load(Ordering::SeqCst) == 0);
    drop(new);
    expect!(test, probe.runs.load(Ordering::SeqCst) == 0);
    expect!(test, probe.kills.load(Ordering::SeqCst) == 0);
    expect!(test, probe.drops.load(Ordering::SeqCst) == 1);
}

/// `fn` of the C ABI cases: counts its calls in the `AtomicUsize` `data` points to.
///
/// # Safety
///
/// `data` must point to an `AtomicUsize` that is valid for the call.
unsafe extern "C" fn count_fn(data: *mut c_void) -> bool {
    // SAFETY: the cases pass a pointer to an `AtomicUsize` that outlives the task.
    unsafe { &*data.cast::<AtomicUsize>() }.fetch_add(1, Ordering::SeqCst);
    false
}

/// `handle_sigkill` of the C ABI cases: never expected.
///
/// # Safety
///
/// As for [`count_fn`].
unsafe extern "C" fn count_kill(data: *mut c_void) {
    // SAFETY: as for `count_fn`.
    unsafe { &*data.cast::<AtomicUsize>() }.fetch_add(1000, Ordering::SeqCst);
}

/// A task from the C ABI whose `fn` counts its calls in `calls`, or `None` on failure.
///
/// # Safety
///
/// `calls` must outlive the task.
unsafe fn create_counting(
    name: &kernel::str::CStr,
    calls: &AtomicUsize,
) -> Option<*mut bindings::vhost_task> {
    let arg = ptr::from_ref(calls).cast_mut().cast::<c_void>();
    // SAFETY: valid functions and name; `arg` outlives the task, as the caller promises.
    let vtsk = unsafe {
        c_abi::vhost_task_create(Some(count_fn), Some(count_kill), arg, name.as_char_ptr())
    };
    kernel::error::from_err_ptr(vtsk).ok()
}

fn is_err_ptr<T>(p: *mut T, errno: Error) -> bool {
    p == errno.to_ptr()
}

#[no_mangle]
extern "C" fn vhost_task_rust_test_c_abi_rejects_null_arguments_with_einval(
    test: *mut bindings::kunit,
) {
    let calls = AtomicUsize::new(0);
    let arg = ptr::from_ref(&calls).cast_mut().cast::<c_void>();
    let name = c_str!("vt-null").as_char_ptr();
    // SAFETY: each call has one null argument, which is what is tested, and otherwise valid
    // ones.
    let results = unsafe {
        [
            c_abi::vhost_task_create(None, Some(count_kill), arg, name),
            c_abi::vhost_task_create(Some(count_fn), None, arg, name),
            c_abi::vhost_task_create(Some(count_fn), Some(count_kill), arg, ptr::null()),
        ]
    };
    for r in results {
        expect!(test, is_err_ptr(r, EINVAL));
    }
    expect!(test, calls.load(Ordering::SeqCst) == 0);
}

#[no_mangle]
extern "C" fn vhost_task_rust_test_c_abi_stop_of_a_never_started_task_returns(
    test: *mut bindings::kunit,
) {
    let calls = AtomicUsize::new(0);
    // SAFETY: `calls` outlives the task, which is stopped below.
    let Some(vtsk) = (unsafe { create_counting(c_str!("vt-nostart"), &calls) }) else {
        return expect!(test, false);
    };
    // Upstream would wait forever here; the Rust one lets the worker exit unrun.
    // SAFETY: `vtsk` came from `vhost_task_create()` and is not used afterwards.
    unsafe { c_abi::vhost_task_stop(vtsk) };
    expect!(test, calls.load(Ordering::SeqCst) == 0);
}

#[no_mangle]
extern "C" fn vhost_task_rust_test_c_abi_start_twice_is_ignored(test: *mut bindings::kunit) {
    let calls = AtomicUsize::new(0);
    // SAFETY: `calls` outlives the task, which is stopped below.
    let Some(vtsk) = (unsafe { create_counting(c_str!("vt-twice"), &calls) }) else {
        return expect!(test, false);
    };
    // SAFETY: `vtsk` is live; nothing else uses it concurrently.
    unsafe { c_abi::vhost_task_start(vtsk) };
    expect!(test, wait_until(|| calls.load(Ordering::SeqCst) >= 1));
    // SAFETY: as above; the second start is the misuse under test.
    unsafe { c_abi::vhost_task_start(vtsk) };
    // SAFETY: as above.
    unsafe { c_abi::vhost_task_wake(vtsk) };
    expect!(test, wait_until(|| calls.load(Ordering::SeqCst) >= 2));
    // SAFETY: `vtsk` is not used afterwards.
    unsafe { c_abi::vhost_task_stop(vtsk) };
    expect!(test, calls.load(Ordering::SeqCst) < 1000);
}
