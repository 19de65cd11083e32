// SPDX-License-Identifier: GPL-2.0
//! `vhost-e2e stress [--scale S] [filter]`: systematic fault injection (faults.rs), loops and
//! races of worker creation and teardown, and at the end kmemleak and the kernel log. Meant for
//! the debug kernel (KASAN, lockdep, kmemleak, fault injection), and runs on any test kernel.
//!
//! Counts are given at full scale (`make stress`, scale 1.0) and multiplied by the scale (0.1
//! in `make test`); the case names carry the counts they ran with.

use crate::cases::{become_user, cgroup_frozen, errno_of, read_tid, set_rlimit, worker_thread};
use crate::faults;
use crate::harness::{ensure, fork, skip, Case, CaseResult, Child, Context, Noted};
use crate::ioctls;
use crate::kmsg::{self, Kmsg};
use crate::modules;
use crate::netdev::{self, Config, NetDev};
use crate::procfs;
use crate::setup;
use crate::sys::open_vhost_net;
use crate::tap::{PacketSocket, Tap};
use nix::sys::resource::Resource;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::{setpgid, Pid};
use std::fs;
use std::io::{self, PipeReader, PipeWriter, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};
use vm_memory::{MmapRegion, VolatileMemory};

static SCALE: OnceLock<f64> = OnceLock::new();
static BASELINE: OnceLock<Baseline> = OnceLock::new();

fn scale() -> f64 {
    *SCALE.get().unwrap_or(&1.0)
}

/// `full` times the scale, at least `min`.
fn scaled(full: u32, min: u32) -> u32 {
    ((f64::from(full) * scale()).round() as u32).max(min)
}

/// What the stress cases count, each at the run's scale.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Count {
    /// Open, set owner, close cycles.
    Cycles,
    /// Random races of SIGKILL, close and traffic.
    Races,
    /// Owners with traffic at once.
    Owners,
    /// How long they move frames, in seconds.
    OwnersSecs,
    /// Exhaustion loops at RLIMIT_NPROC and at pids.max.
    LimitLoops,
    /// Freeze and thaw rounds.
    Freezes,
    /// VMMs killed while the NX parameters are written.
    KvmRounds,
    /// Owners of user workers killed in their wait (modules.rs).
    UwtKills,
    /// Rounds of the module unload races (modules.rs): 1,000 at full scale, as the modules
    /// issue asks; a round loads and unloads four modules under TCG (1.9 to 3 s), so the short
    /// stress of `make test` runs a fifth of its linear share, 20 at scale 0.1.
    ModuleRounds,
}

impl Count {
    /// The count at the run's scale: the full one times the scale, at least a few.
    pub(crate) fn get(self) -> u32 {
        let (full, min) = match self {
            Count::Cycles => (10_000, 10),
            Count::Races => (1_000, 5),
            Count::Owners => (100, 4),
            Count::OwnersSecs => (20, 3),
            Count::LimitLoops => (100, 3),
            Count::Freezes => (100, 3),
            Count::KvmRounds => (1_000, 5),
            Count::UwtKills => (100, 5),
            Count::ModuleRounds if scale() < 1.0 => (200, 10),
            Count::ModuleRounds => (1_000, 10),
        };
        scaled(full, min)
    }
}

/// How long to wait for the kernel to tidy up (RCU, exiting threads) before comparing.
const SETTLE: Duration = Duration::from_secs(30);
const T: Duration = Duration::from_secs(20);

/// The arguments of `vhost-e2e stress` and `vhost-e2e list stress`, `[--scale S] [filter]`:
/// sets the scale (once, for the whole process) and returns the filter.
pub fn args(args: &[String]) -> Result<Option<String>, String> {
    let mut filter = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--scale" => match it.next().and_then(|s| s.parse::<f64>().ok()) {
                Some(s) if s > 0.0 => SCALE
                    .set(s)
                    .map_err(|_| "stress: --scale given twice".to_string())?,
                _ => return Err("stress: --scale needs a positive number".into()),
            },
            f => filter = Some(f.to_string()),
        }
    }
    Ok(filter)
}

/// `vhost-e2e stress [--scale S] [filter]`.
pub fn main(args: &[String]) -> i32 {
    let filter = match self::args(args) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{e}");
            return 2;
        }
    };
    if let Err(e) = faults::mount_debugfs() {
        println!("# debugfs: {e}");
    }
    println!(
        "# vhost_task implementation: {}",
        crate::demo::implementation()
    );
    println!("# stress scale {}", scale());
    if let Some(why) = faults::unavailable() {
        println!("# fault injection: unavailable: {why}");
    }
    run_from_baseline(&BASELINE, &all(), filter.as_deref(), "stress")
}

/// Takes the baseline into `cell`, for the case that ends the run, runs the `cases` that
/// `filter` picks, and says how long `what` took; returns the exit status.
pub(crate) fn run_from_baseline(
    cell: &OnceLock<Baseline>,
    cases: &[Case],
    filter: Option<&str>,
    what: &str,
) -> i32 {
    let b = Baseline::take();
    println!("# baseline: {}", b.describe());
    cell.set(b)
        .expect("the baseline is taken once, at the start of the run");
    let t0 = Instant::now();
    let failed = crate::harness::run(cases, filter);
    println!("# {what} took {:.0} s", t0.elapsed().as_secs_f32());
    i32::from(failed > 0)
}

fn case(name: String, run: fn() -> CaseResult, secs: f64) -> Case {
    Case {
        name: Box::leak(name.into_boxed_str()),
        run,
        timeout: Duration::from_secs_f64(secs),
        needs: crate::harness::nothing,
    }
}

/// A fault walk: `VHOST_SET_OWNER` or another call that makes a worker, under each fault.
fn fault_walk(path: &str, run: fn() -> CaseResult) -> Case {
    let name = format!("fault_at_each_allocation_of_{path}_fails_cleanly");
    case(name, run, 3600.0)
}

/// A case of `count` rounds, the count in its name (for `{n}`), with a time limit of `base`
/// seconds and `each` more a round.
fn rounds(name: &str, count: Count, run: fn() -> CaseResult, base: f64, each: f64) -> Case {
    let count = count.get();
    let name = name.replacen("{n}", &count.to_string(), 1);
    case(name, run, base + each * f64::from(count))
}

/// The names of the cases that run a number of rounds, `{n}` for the number.
const CYCLES: &str = "open_set_owner_close_{n}_cycles_leave_threads_and_task_structs_at_baseline";
const RACES: &str = "sigkill_vs_close_vs_traffic_{n}_random_races_all_reaped";
const RLIMIT: &str = "rlimit_nproc_exhaustion_{n}_loops_enomem_then_recovers";
const PIDS: &str = "pids_max_exhaustion_{n}_loops_enomem_then_recovers";
const FREEZES: &str = "freezer_freeze_thaw_{n}_times_owners_with_traffic_stop_and_resume";
const KVM_RACES: &str = "kvm_sigkill_of_vmms_vs_nx_parameter_writes_{n}_rounds_all_reaped";
const RMMOD_VHOST: &str =
    "rmmod_vhost_right_after_close_or_sigkill_{n}_rounds_no_module_left_in_use";
const RMMOD_KVM: &str =
    "rmmod_kvm_right_after_vm_close_or_vmm_sigkill_{n}_rounds_no_module_left_in_use";
const UWT_KILLS: &str = "user_worker_sigkill_during_wait_{n}_owners_of_8_workers_reaped_quietly";
const RMMOD_UWT: &str =
    "rmmod_user_worker_test_while_its_workers_still_exit_{n}_rounds_no_return_into_freed_text";

/// A case that needs /dev/kvm.
fn kvm(c: Case) -> Case {
    Case {
        needs: crate::kvm::missing,
        ..c
    }
}

/// Every stress case, in the order they run. Time limits are for the KASAN kernel under TCG.
/// A table, one case a line.
#[rustfmt::skip]
pub fn all() -> Vec<Case> {
    let (n, secs) = (Count::Owners.get(), Count::OwnersSecs.get());
    let owners_name = format!("{n}_owners_with_traffic_for_{secs}_s_killed_at_once_all_reaped");
    let owners_limit = 300.0 + 6.0 * f64::from(n) + f64::from(secs);
    vec![
        fault_walk("vhost_net_set_owner", faults::net_set_owner),
        fault_walk("vhost_vsock_set_owner", faults::vsock_set_owner),
        rounds(CYCLES, Count::Cycles, open_set_owner_close_cycles, 120.0, 0.3),
        rounds(RACES, Count::Races, sigkill_close_traffic_races, 120.0, 3.0),
        case(owners_name, owners_killed_at_once, owners_limit),
        rounds(RLIMIT, Count::LimitLoops, rlimit_nproc_loops, 120.0, 10.0),
        rounds(PIDS, Count::LimitLoops, pids_max_loops, 120.0, 10.0),
        rounds(FREEZES, Count::Freezes, freeze_thaw_loops, 300.0, 15.0),
        // KVM's NX huge page recovery thread: the first KVM_RUN, which creates it, under each
        // fault, and CVE-2025-40024's race of the parameter setters' wake-up with the exit of
        // a killed VMM's thread.
        fault_walk("kvm_first_run", faults::kvm_first_run),
        kvm(rounds(KVM_RACES, Count::KvmRounds, kvm_sigkill_vs_parameter_writes, 300.0, 6.0)),
        // Modules: the module unload race (rmmod right after a worker's exit), and user workers of
        // the test module killed in their wait (DEBUG_ATOMIC_SLEEP must stay quiet).
        rounds(RMMOD_VHOST, Count::ModuleRounds, modules::unload_race_stress, 300.0, 3.0),
        rounds(RMMOD_UWT, Count::ModuleRounds, modules::uwt_unload_race_stress, 120.0, 1.5),
        kvm(rounds(RMMOD_KVM, Count::ModuleRounds, modules::kvm_unload_race_stress, 300.0, 3.0)),
        rounds(UWT_KILLS, Count::UwtKills, modules::sigkill_during_wait_stress, 120.0, 3.0),
        // vhost-scsi last: its VHOST_SCSI_SET_ENDPOINT makes lockdep report a lock-order
        // problem between LIO's configfs and vhost-scsi (not vhost_task), after which lockdep
        // is off for the rest of the boot.
        fault_walk("vhost_scsi_set_owner", faults::scsi_set_owner),
        fault_walk("vhost_scsi_new_worker", faults::scsi_new_worker),
        case("no_vhost_thread_task_or_stack_left_after_stress".into(), nothing_left_behind, 120.0),
        case("kmemleak_suspects_nothing_after_stress".into(), kmemleak_clean, 1200.0),
        case("kernel_log_has_no_splat_after_stress".into(), kernel_log_clean, 60.0),
    ]
}

/// What a leak of tasks or workers would move.
#[derive(Clone, Debug)]
pub(crate) struct Baseline {
    /// Threads of user processes (not kthreads), workers included.
    user: u64,
    /// The names of the kthreads: workqueues add and retire kworkers under load.
    kthreads: Vec<String>,
    /// Kernel stacks in kB (/proc/meminfo KernelStack).
    stack_kb: u64,
    /// Active `task_struct` objects (/proc/slabinfo), if the kernel has it, once the cache is
    /// shrunk: see [`shrink_slab_cache`].
    task_structs: Option<u64>,
    /// The same before the shrink: what KASAN's quarantine and per-CPU slabs held back.
    task_structs_unshrunk: Option<u64>,
    /// vhost workers ("vhost-<pid>"), anywhere.
    vhost: Vec<(i32, String)>,
}

/// The largest kernel stack: 16 KiB, twice that with KASAN.
const STACK_KB: u64 = 32;

impl Baseline {
    /// The numbers now.
    fn take() -> Baseline {
        let (user, kthreads) = tasks();
        let task_structs_unshrunk = slab_active("task_struct");
        shrink_slab_cache("task_struct");
        Baseline {
            user,
            kthreads,
            stack_kb: meminfo("KernelStack").unwrap_or(0),
            task_structs: slab_active("task_struct"),
            task_structs_unshrunk,
            vhost: vhost_tasks(),
        }
    }

    fn describe(&self) -> String {
        format!(
            "{} user threads, {} kthreads, KernelStack {} kB, task_struct {}, vhost workers {:?}",
            self.user,
            self.kthreads.len(),
            self.stack_kb,
            self.task_structs.map_or(
                "unknown (no /proc/slabinfo: CONFIG_SLUB_DEBUG is off)".into(),
                |n| {
                    format!(
                        "{n} active ({} before the cache was shrunk)",
                        self.task_structs_unshrunk.unwrap_or(0)
                    )
                }
            ),
            self.vhost
        )
    }

    /// Kthreads now that were not there before, by name.
    fn new_kthreads(&self, before: &Baseline) -> Vec<String> {
        let mut old = before.kthreads.clone();
        let mut new = Vec::new();
        for k in &self.kthreads {
            match old.iter().position(|o| o == k) {
                Some(i) => {
                    old.swap_remove(i);
                }
                None => new.push(k.clone()),
            }
        }
        new
    }

    /// Whether `self` (later) is back to `before`: no more user threads than `extra` (the
    /// processes of the checking case), no vhost worker, and kernel stacks and task_structs
    /// (counted once the cache is shrunk) within what new kworkers explain.
    fn back_to(&self, before: &Baseline, extra: u64) -> Result<(), String> {
        let mut bad = Vec::new();
        if self.user > before.user + extra {
            bad.push(format!("user threads {} -> {}", before.user, self.user));
        }
        let kworkers = self.new_kthreads(before);
        let slack = STACK_KB * (kworkers.len() as u64 + 4);
        if self.stack_kb > before.stack_kb + slack {
            bad.push(format!(
                "KernelStack {} -> {} kB, more than {} new kthreads {kworkers:?} explain",
                before.stack_kb,
                self.stack_kb,
                kworkers.len()
            ));
        }
        if let (Some(a), Some(b)) = (before.task_structs, self.task_structs) {
            if b > a + 16 + extra + kworkers.len() as u64 {
                bad.push(format!("task_struct {a} -> {b} active"));
            }
        }
        let new: Vec<_> = self
            .vhost
            .iter()
            .filter(|t| !before.vhost.contains(t))
            .collect();
        if !new.is_empty() {
            bad.push(format!("vhost workers left: {new:?}"));
        }
        if bad.is_empty() {
            Ok(())
        } else {
            Err(bad.join(", "))
        }
    }
}

/// What a case reports once the numbers are back to `before`: `done`, then the numbers.
fn back_to_baseline(before: &Baseline, done: String) -> CaseResult {
    let after = settle(before, 0)?;
    Ok(format!("{done}; {}", compare(before, &after)))
}

/// Waits up to `SETTLE` for the numbers to come back to `before`; returns the last numbers.
fn settle(before: &Baseline, extra: u64) -> Result<Baseline, String> {
    let mut now = Baseline::take();
    let end = Instant::now() + SETTLE;
    while let Err(e) = now.back_to(before, extra) {
        if Instant::now() >= end {
            return Err(format!(
                "not back to baseline after {} s: {e}",
                SETTLE.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
        now = Baseline::take();
    }
    Ok(now)
}

/// The threads of user processes, and the names of the kthreads.
fn tasks() -> (u64, Vec<String>) {
    let mut user = 0;
    let mut kthreads = Vec::new();
    for e in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        match procfs::is_kthread(pid) {
            Ok(true) => kthreads.push(procfs::comm(pid).unwrap_or_default()),
            Ok(false) => {
                user += fs::read_dir(format!("/proc/{pid}/task")).map_or(0, |d| d.count()) as u64
            }
            Err(_) => {}
        }
    }
    (user, kthreads)
}

fn meminfo(key: &str) -> Option<u64> {
    let s = fs::read_to_string("/proc/meminfo").ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

fn slab_active(cache: &str) -> Option<u64> {
    let s = fs::read_to_string("/proc/slabinfo").ok()?;
    s.lines()
        .find(|l| l.split_whitespace().next() == Some(cache))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
}

/// Returns to the slab allocator the free objects of `cache` that it holds back, where the
/// kernel has `/sys/kernel/slab` (the debug kernel; not `SLUB_TINY`).
///
/// KASAN quarantines freed objects, which `/proc/slabinfo` counts as active, and releases them
/// only when the quarantine as a whole (1/32 of memory) overflows: after a loop that frees
/// hundreds of `task_struct`s, how many of them it still holds depends on what else was freed
/// meanwhile. `kmem_cache_shrink()` (the sysfs file `shrink`) drains the cache's objects from
/// the quarantine (`kasan_cache_shrink()`) and flushes the per-CPU slabs, so that the count left
/// is the objects still in use, which is what a leak would raise.
fn shrink_slab_cache(cache: &str) {
    // Ignored: without /sys/kernel/slab (SLUB_TINY, or no SYSFS) there is nothing to shrink,
    // and the baseline says "unknown" where it cannot count.
    let _ = fs::write(format!("/sys/kernel/slab/{cache}/shrink"), "1");
}

/// Every vhost worker ("vhost-<pid>") in the system, with its name.
pub fn vhost_tasks() -> Vec<(i32, String)> {
    let mut found: Vec<(i32, String)> = procfs::threads_where(|t| {
        let owner = t.comm.strip_prefix("vhost-").unwrap_or("");
        !owner.is_empty() && owner.bytes().all(|b| b.is_ascii_digit())
    })
    .into_iter()
    .map(|t| (t.tid, t.comm))
    .collect();
    found.sort();
    found.dedup();
    found
}

/// A small xorshift generator: the races need randomness, not quality.
struct Rng(u64);

impl Rng {
    fn seeded() -> (Rng, u64) {
        let seed = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
            | 1;
        (Rng(seed), seed)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Counters in memory shared with forked children: an anonymous shared mapping by vm-memory,
/// unmapped when the last process that has it drops it or exits.
struct Counters {
    region: MmapRegion,
    n: usize,
}

impl Counters {
    fn new(n: usize) -> Result<Counters, String> {
        let len = n.max(1) * std::mem::size_of::<u64>();
        let region = MmapRegion::build(
            None,
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
        )
        .map_err(|e| format!("mmap of {len} bytes: {e}"))?;
        Ok(Counters { region, n })
    }

    fn get(&self, i: usize) -> &AtomicU64 {
        assert!(i < self.n, "counter {i} of {}", self.n);
        self.region
            .get_atomic_ref(i * std::mem::size_of::<u64>())
            .expect("an aligned counter inside the mapping")
    }

    fn snapshot(&self) -> Vec<u64> {
        (0..self.n)
            .map(|i| self.get(i).load(Ordering::Relaxed))
            .collect()
    }
}

/// The body of an owner with traffic both ways on tap `tap_name`: it sends small frames out
/// through its vhost-net device and into it through a packet socket on the tap, and counts
/// what arrives in `progress`. Once frames flow it writes its worker's tid to `ready`; after
/// `close_after` more it closes the device and idles. It runs until killed.
fn traffic_owner(
    tap_name: &str,
    progress: &AtomicU64,
    ready: &PipeWriter,
    close_after: Option<Duration>,
    cgroup: Option<&str>,
) -> Result<(), String> {
    if let Some(cg) = cgroup {
        fs::write(format!("{cg}/cgroup.procs"), procfs::self_pid().to_string())
            .ctx("cgroup.procs")?;
    }
    let tap = Tap::new(tap_name).ctx("tap")?;
    let sock = PacketSocket::new(tap.ifindex).ctx("packet socket")?;
    let mut dev = Some(NetDev::new(&tap, Config::task(true)).ctx("vhost-net")?);
    let w = worker_thread(procfs::self_pid())?;
    let mut flowing_since = None;
    let mut seq = 0u32;
    let mut buf = vec![0u8; 2048];
    loop {
        let Some(d) = dev.as_mut() else {
            std::thread::sleep(Duration::from_millis(5));
            continue;
        };
        for _ in 0..4 {
            let f = netdev::frame(seq, 60 + (seq as usize * 97) % 1400);
            if !d.send(&f).ctx("send")? {
                break;
            }
            seq = seq.wrapping_add(1);
        }
        for _ in 0..4 {
            // Ignored: the tap's queue may be full, and a dropped frame is no error here.
            let _ = sock.send(&netdev::frame(seq, 60 + (seq as usize * 89) % 1400));
            seq = seq.wrapping_add(1);
        }
        let mut got = 0;
        while d.recv().ctx("recv")?.is_some() {
            got += 1;
        }
        while sock.recv(&mut buf, Duration::ZERO).ctx("recv")?.is_some() {
            got += 1;
        }
        if got == 0 {
            d.wait_any(Duration::from_millis(5)).ctx("wait")?;
            continue;
        }
        let total = progress.fetch_add(got, Ordering::Relaxed) + got;
        if flowing_since.is_none() && total >= 16 {
            (&*ready).write_all(&w.to_ne_bytes()).ctx("ready")?;
            flowing_since = Some(Instant::now());
        }
        if let (Some(c), Some(t)) = (close_after, flowing_since) {
            if t.elapsed() >= c {
                dev = None;
            }
        }
    }
}

/// Forks a traffic owner; see [`traffic_owner`]. `pgid` puts it in that process group (0:
/// a new one of its own).
fn spawn_traffic_owner(
    tap_name: String,
    counters: &Counters,
    i: usize,
    close_after: Option<Duration>,
    cgroup: Option<&str>,
    pgid: i32,
) -> Result<(Child, PipeReader), String> {
    let (r, w) = std::io::pipe().ctx("pipe")?;
    let progress = counters.get(i);
    let group = Pid::from_raw(pgid);
    let child = fork(move || {
        let r = setpgid(Pid::from_raw(0), group)
            .ctx(&format!("setpgid(0, {pgid})"))
            .and_then(|()| traffic_owner(&tap_name, progress, &w, close_after, cgroup));
        if let Err(e) = r {
            println!("# owner {tap_name}: {e}");
        }
        1
    })
    .ctx("fork")?;
    // The same from the parent's side, so that a kill of the group cannot miss the child
    // whichever of the two runs first; the second call finds it done and succeeds too.
    let target = if pgid == 0 { child.pid } else { pgid };
    setpgid(Pid::from_raw(child.pid), Pid::from_raw(target))
        .ctx(&format!("setpgid({}, {target})", child.pid))?;
    Ok((child, r))
}

/// SIGKILL to the process group `pgid` of owners, which holds nothing else.
fn kill_owners(pgid: i32) -> Result<(), String> {
    killpg(Pid::from_raw(pgid), Signal::SIGKILL).ctx(&format!("SIGKILL to process group {pgid}"))
}

fn open_set_owner_close_cycles() -> CaseResult {
    let me = procfs::self_pid();
    let before = Baseline::take();
    let n = Count::Cycles.get();
    let t0 = Instant::now();
    for i in 0..n {
        let f = open_vhost_net()?;
        ioctls::set_owner(&f).map_err(|e| format!("cycle {i}: VHOST_SET_OWNER: {e}"))?;
        // Now and then, that a worker really was made each time.
        if i % 500 == 0 {
            worker_thread(me).map_err(|e| format!("cycle {i}: {e}"))?;
        }
        drop(f);
    }
    let secs = t0.elapsed().as_secs_f32();
    procfs::wait_single_threaded(me, T)
        .map_err(|left| format!("threads of the owner after {n} cycles: {left:?}"))?;
    back_to_baseline(
        &before,
        format!(
            "{n} cycles in {secs:.1} s ({:.2} ms each); owner back to 1 thread",
            secs * 1000.0 / n as f32
        ),
    )
}

fn compare(before: &Baseline, after: &Baseline) -> String {
    let ts = match (before.task_structs, after.task_structs) {
        (Some(a), Some(b)) => format!(
            "task_struct {a} -> {b} active ({} -> {} before the cache was shrunk)",
            before.task_structs_unshrunk.unwrap_or(0),
            after.task_structs_unshrunk.unwrap_or(0)
        ),
        _ => "task_struct: no /proc/slabinfo (CONFIG_SLUB_DEBUG off)".into(),
    };
    format!(
        "user threads {} -> {}, kthreads {} -> {}, KernelStack {} -> {} kB, {ts}",
        before.user,
        after.user,
        before.kthreads.len(),
        after.kthreads.len(),
        before.stack_kb,
        after.stack_kb
    )
}

fn sigkill_close_traffic_races() -> CaseResult {
    let before = Baseline::take();
    let counters = Counters::new(1)?;
    let (mut rng, seed) = Rng::seeded();
    let n = Count::Races.get();
    let mut during_setup = 0;
    let mut closed_first = 0;
    let mut worst = Duration::ZERO;
    let watchdog = Duration::from_secs(30);
    for i in 0..n {
        // A third of the owners are killed while they set up (VHOST_SET_OWNER may be
        // creating the worker); the others once traffic flows, with a close of the device by
        // the owner racing the kill.
        let early = rng.below(3) == 0;
        let close_ms = rng.below(30);
        let kill_ms = rng.below(30);
        let (mut child, mut p) = spawn_traffic_owner(
            format!("vtr{i}"),
            &counters,
            0,
            Some(Duration::from_millis(close_ms)),
            None,
            0,
        )?;
        let mut worker = None;
        if early {
            during_setup += 1;
            std::thread::sleep(Duration::from_millis(rng.below(50)));
        } else {
            worker = Some(read_tid(&mut p).map_err(|e| format!("race {i} (seed {seed}): {e}"))?);
            if close_ms < kill_ms {
                closed_first += 1;
            }
            std::thread::sleep(Duration::from_millis(kill_ms));
        }
        let (_, took) = child
            .kill_and_wait(Signal::SIGKILL, watchdog)
            .map_err(|e| format!("race {i} (seed {seed}): owner {e}"))?;
        worst = worst.max(took);
        if let Some(w) = worker {
            ensure(procfs::wait_for(T, || !procfs::exists(w)), || {
                format!("race {i} (seed {seed}): worker {w} outlived its reaped owner")
            })?;
        }
        let stray = procfs::find_by_comm(&format!("vhost-{}", child.pid));
        ensure(stray.is_empty(), || {
            format!("race {i} (seed {seed}): tasks {stray:?} outlived their owner")
        })?;
    }
    back_to_baseline(
        &before,
        format!(
            "{n} races (seed {seed}): {during_setup} killed during set-up, {closed_first} closed before the kill, the rest killed first; slowest reaping {} ms",
            worst.as_millis()
        ),
    )
}

fn owners_killed_at_once() -> CaseResult {
    let before = Baseline::take();
    let n = Count::Owners.get() as usize;
    let counters = Counters::new(n)?;
    let mut children = Vec::new();
    let mut pgid = 0;
    let t0 = Instant::now();
    for i in 0..n {
        let (c, p) = spawn_traffic_owner(format!("vtp{i}"), &counters, i, None, None, pgid)?;
        if pgid == 0 {
            pgid = c.pid;
        }
        children.push((c, p));
    }
    let mut workers = Vec::new();
    for (i, (_, p)) in children.iter_mut().enumerate() {
        workers.push(read_tid(p).map_err(|e| format!("owner {i}: {e}"))?);
    }
    let setup_s = t0.elapsed().as_secs_f32();
    let start = counters.snapshot();
    std::thread::sleep(Duration::from_secs(Count::OwnersSecs.get().into()));
    let end = counters.snapshot();
    let stalled: Vec<usize> = (0..n).filter(|&i| end[i] == start[i]).collect();
    let frames: u64 = end.iter().zip(&start).map(|(e, s)| e - s).sum();
    let t = Instant::now();
    kill_owners(pgid)?;
    for (i, (c, _)) in children.iter_mut().enumerate() {
        c.wait_timeout(Duration::from_secs(60))
            .ok_or_else(|| format!("owner {i} ({}) not reaped 60 s after SIGKILL", c.pid))?;
    }
    let reaped_ms = t.elapsed().as_millis();
    ensure(stalled.is_empty(), || {
        format!(
            "owners {stalled:?} moved no frame in {} s",
            Count::OwnersSecs.get()
        )
    })?;
    ensure(
        procfs::wait_for(T, || workers.iter().all(|&w| !procfs::exists(w))),
        || "workers outlived their reaped owners".into(),
    )?;
    back_to_baseline(
        &before,
        format!(
            "{n} owners up in {setup_s:.1} s, {frames} frames in {} s, every owner moving; killed at once, all reaped in {reaped_ms} ms",
            Count::OwnersSecs.get()
        ),
    )
}

/// Tasks the exhaustion loops allow: the owner and `LIMIT - 1` workers.
const LIMIT: u64 = 4;

/// `LIMIT + 1` vhost-net devices, opened (as root: /dev/vhost-net is root's) before the
/// owner drops its privileges.
fn open_devices() -> Result<Vec<fs::File>, String> {
    (0..=LIMIT).map(|_| open_vhost_net()).collect()
}

/// Makes the caller the owner of `fds` one by one until the limit refuses; checks the
/// refusal, raises the limit with `raise`, retries. Returns the number of workers made before
/// the refusal.
fn exhaust(fds: Vec<fs::File>, raise: &dyn Fn() -> Result<(), String>) -> Result<usize, String> {
    let me = procfs::self_pid();
    let mut made = 0;
    let mut refused = None;
    for (i, f) in fds.iter().enumerate() {
        match errno_of(ioctls::set_owner(f)) {
            None => made += 1,
            Some(e) => {
                refused = Some((i, e));
                break;
            }
        }
    }
    let (i, e) = refused.ok_or(format!("{made} workers and no refusal"))?;
    ensure(e == libc::ENOMEM, || {
        format!(
            "refused with {}, want ENOMEM",
            io::Error::from_raw_os_error(e)
        )
    })?;
    ensure(made as u64 == LIMIT - 1, || {
        format!("refused after {made} workers, want {}", LIMIT - 1)
    })?;
    let threads = procfs::threads(me).ctx("threads")?.len();
    ensure(threads == made + 1, || {
        format!("{threads} threads after the refusal, want {}", made + 1)
    })?;
    raise()?;
    ioctls::set_owner(&fds[i]).ctx("VHOST_SET_OWNER once the limit was raised")?;
    ensure(
        procfs::threads(me).ctx("threads")?.len() == made + 2,
        || "no new worker after raising the limit".into(),
    )?;
    drop(fds);
    procfs::wait_single_threaded(me, T)
        .map_err(|left| format!("workers left after closing every device: {left:?}"))?;
    Ok(made)
}

/// Runs `body` in a fresh child per loop, with a watchdog.
fn loops(n: u32, what: &str, body: fn(u32) -> Result<(), String>) -> Result<f32, String> {
    let t0 = Instant::now();
    for i in 0..n {
        Noted::spawn(|| body(i).map(|()| String::new()))
            .ctx("fork")?
            .result(Duration::from_secs(60))
            .map_err(|e| format!("{what} loop {i}: {e}"))?;
    }
    Ok(t0.elapsed().as_secs_f32())
}

fn rlimit_nproc_loops() -> CaseResult {
    let before = Baseline::take();
    let n = Count::LimitLoops.get();
    let secs = loops(n, "RLIMIT_NPROC", |_| {
        let fds = open_devices()?;
        set_rlimit(Resource::RLIMIT_NPROC, LIMIT)?;
        // A user of its own, with no other task: the owner is its first.
        become_user(4400)?;
        exhaust(fds, &|| set_rlimit(Resource::RLIMIT_NPROC, LIMIT + 1)).map(|_| ())
    })?;
    back_to_baseline(
        &before,
        format!(
            "{n} loops in {secs:.1} s: at RLIMIT_NPROC={LIMIT} the owner got {} workers, then ENOMEM; raised: one more; closed: none",
            LIMIT - 1
        ),
    )
}

const PIDS_CG: &str = "vt-stress-pids";

fn pids_max_loops() -> CaseResult {
    let before = Baseline::take();
    setup::enable_controller("pids").ctx("enable the pids controller")?;
    let cg = setup::cgroup(PIDS_CG).ctx("cgroup")?;
    let n = Count::LimitLoops.get();
    let events0 = pids_max_events(&cg);
    let secs = loops(n, "pids.max", |_| {
        let cg = setup::enter_new_cgroup(PIDS_CG).ctx("cgroup")?;
        fs::write(format!("{cg}/pids.max"), LIMIT.to_string()).ctx("pids.max")?;
        exhaust(open_devices()?, &|| {
            fs::write(format!("{cg}/pids.max"), "max").ctx("pids.max")
        })?;
        let cur = fs::read_to_string(format!("{cg}/pids.current")).ctx("pids.current")?;
        ensure(cur.trim() == "1", || {
            format!("pids.current {} after closing", cur.trim())
        })
    })?;
    let events = pids_max_events(&cg) - events0;
    ensure(events >= u64::from(n), || {
        format!("pids.events counted {events} refusals in {n} loops")
    })?;
    back_to_baseline(
        &before,
        format!(
            "{n} loops in {secs:.1} s: at pids.max={LIMIT} the owner got {} workers, then ENOMEM (pids.events max +{events}); raised: one more; closed: pids.current 1",
            LIMIT - 1
        ),
    )
}

fn pids_max_events(cg: &str) -> u64 {
    fs::read_to_string(format!("{cg}/pids.events"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("max "))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0)
}

const FREEZE_OWNERS: usize = 3;

fn freeze_thaw_loops() -> CaseResult {
    let before = Baseline::take();
    let cg = setup::cgroup("vt-stress-freeze").ctx("cgroup")?;
    let counters = Counters::new(FREEZE_OWNERS)?;
    let mut children = Vec::new();
    let mut pgid = 0;
    for i in 0..FREEZE_OWNERS {
        let (c, p) = spawn_traffic_owner(format!("vtf{i}"), &counters, i, None, Some(&cg), pgid)?;
        if pgid == 0 {
            pgid = c.pid;
        }
        children.push((c, p));
    }
    for (i, (_, p)) in children.iter_mut().enumerate() {
        read_tid(p).map_err(|e| format!("owner {i}: {e}"))?;
    }
    let n = Count::Freezes.get();
    let t0 = Instant::now();
    let mut worst_freeze = Duration::ZERO;
    let thaw = |why: String| -> String {
        // Ignored: the case fails with `why`; this only tries to thaw the owners.
        let _ = fs::write(format!("{cg}/cgroup.freeze"), "0");
        why
    };
    for i in 0..n {
        let t = Instant::now();
        fs::write(format!("{cg}/cgroup.freeze"), "1").ctx("freeze")?;
        if !procfs::wait_for(T, || cgroup_frozen(&cg)) {
            return Err(thaw(format!(
                "freeze {i}: cgroup not frozen after {} s",
                T.as_secs()
            )));
        }
        worst_freeze = worst_freeze.max(t.elapsed());
        let frozen = counters.snapshot();
        std::thread::sleep(Duration::from_millis(50));
        let later = counters.snapshot();
        if frozen != later {
            return Err(thaw(format!(
                "freeze {i}: frames counted while frozen: {frozen:?} -> {later:?}"
            )));
        }
        fs::write(format!("{cg}/cgroup.freeze"), "0").ctx("thaw")?;
        let moved = procfs::wait_for(T, || {
            counters
                .snapshot()
                .iter()
                .zip(&frozen)
                .all(|(now, then)| now > then)
        });
        ensure(moved, || {
            format!(
                "thaw {i}: not every owner moved frames within {} s: {frozen:?} -> {:?}",
                T.as_secs(),
                counters.snapshot()
            )
        })?;
    }
    let secs = t0.elapsed().as_secs_f32();
    kill_owners(pgid)?;
    for (i, (c, _)) in children.iter_mut().enumerate() {
        c.wait_timeout(Duration::from_secs(60))
            .ok_or_else(|| format!("owner {i} not reaped 60 s after SIGKILL"))?;
    }
    let done = back_to_baseline(
        &before,
        format!(
            "{n} freeze/thaw rounds of {FREEZE_OWNERS} owners in {secs:.1} s: frozen within {} ms at worst, nothing moved while frozen, every owner moved after each thaw",
            worst_freeze.as_millis()
        ),
    )?;
    // The owners are reaped: the cgroup is empty, and a failure to remove it is a leak.
    fs::remove_dir(&cg).ctx(&format!("rmdir {cg}"))?;
    Ok(done)
}

/// CVE-2025-40024 (fixed by afe16653e05d, "vhost: Take a reference on the task in struct
/// vhost_task"): a VMM killed with SIGKILL has its recovery thread exit at once, while the VM
/// stays on KVM's vm_list until the VMM's files are closed; a parameter setter in another
/// process that walks the list meanwhile wakes the thread through `vhost_task_wake()`, which
/// without the reference touched a freed task_struct. Each round forks a VMM with 1 to 3 VMs,
/// run once so that their threads live (and in half the rounds its first guest spinning in
/// KVM_RUN), and kills it 0 to 20 ms later, while a writer process toggles `nx_huge_pages`
/// (a wake each time) and the ratio (60 to 120 wakes, 120 to 60 does not) as fast as it can.
/// Pass: every VMM reaped with its threads, the threads of the system back at the baseline,
/// and (the runner's check of the kernel log) no KASAN, lockdep or kmemleak report.
fn kvm_sigkill_vs_parameter_writes() -> CaseResult {
    use crate::kvm::{self, NX, PERIOD, RATIO};
    let before = Baseline::take();
    let kvm_before = kvm::all_recovery_threads();
    let params = kvm::Params::save()?;
    kvm::set_param(NX, "N")?;
    kvm::set_param(RATIO, "60")?;
    kvm::set_param(PERIOD, "0")?;
    let counters = Counters::new(2)?;
    let mut writer = fork(|| {
        let seq = [(NX, "Y"), (RATIO, "120"), (RATIO, "60"), (NX, "N")];
        loop {
            for (name, value) in seq {
                let i = usize::from(kvm::set_param(name, value).is_err());
                counters.get(i).fetch_add(1, Ordering::Relaxed);
            }
        }
    })
    .ctx("fork")?;
    let (mut rng, seed) = Rng::seeded();
    let n = Count::KvmRounds.get();
    let (mut vms, mut spinning) = (0, 0);
    let mut worst = Duration::ZERO;
    let watchdog = Duration::from_secs(30);
    let t0 = Instant::now();
    let rounds = (|| -> Result<(), String> {
        for i in 0..n {
            let k = 1 + rng.below(3) as usize;
            let spin = rng.below(2) == 0;
            let (mut child, threads) =
                kvm::spawn_vmm(k, spin).map_err(|e| format!("round {i} (seed {seed}): {e}"))?;
            vms += k;
            spinning += u32::from(spin);
            std::thread::sleep(Duration::from_millis(rng.below(21)));
            let (_, took) = child
                .kill_and_wait(Signal::SIGKILL, watchdog)
                .map_err(|e| format!("round {i} (seed {seed}): VMM {e}"))?;
            worst = worst.max(took);
            ensure(
                procfs::wait_for(T, || threads.iter().all(|&w| !procfs::exists(w))),
                || format!("round {i} (seed {seed}): {threads:?} outlived their reaped VMM"),
            )?;
        }
        Ok(())
    })();
    let secs = t0.elapsed().as_secs_f32();
    writer
        .kill_and_wait(Signal::SIGKILL, T)
        .map_err(|e| format!("the parameter writer {e}"))?;
    let (writes, refused) = (
        counters.get(0).load(Ordering::Relaxed),
        counters.get(1).load(Ordering::Relaxed),
    );
    let saved = params.describe();
    drop(params);
    rounds?;
    ensure(refused == 0, || {
        format!("{refused} of the writer's parameter writes failed")
    })?;
    ensure(writes > u64::from(n), || {
        format!("the writer made only {writes} writes in {n} rounds")
    })?;
    let after = settle(&before, 0)?;
    let left = kvm::all_recovery_threads();
    ensure(left == kvm_before, || {
        format!("recovery threads {kvm_before:?} before, {left:?} after")
    })?;
    Ok(format!(
        "{n} rounds in {secs:.0} s (seed {seed}): {vms} VMs in VMMs killed with their recovery threads alive ({spinning} VMMs with a guest spinning in KVM_RUN), all reaped with their threads, slowest in {} ms, while another process made {writes} writes of nx_huge_pages and the ratio ({:.0}/s); parameters restored ({saved}); {}",
        worst.as_millis(),
        writes as f64 / f64::from(secs.max(0.001)),
        compare(&before, &after)
    ))
}

fn nothing_left_behind() -> CaseResult {
    let Some(before) = BASELINE.get() else {
        return Err("no baseline was taken".into());
    };
    nothing_left_behind_since(before)
}

/// The end of a run whose baseline `before` was taken at its start, by a case of its own:
/// threads, kernel stacks and task_structs back at `before`, and no zombie.
pub(crate) fn nothing_left_behind_since(before: &Baseline) -> CaseResult {
    // This case's own process is the one user thread more than at the start.
    let after = settle(before, 1)?;
    let zombies: Vec<i32> = fs::read_dir("/proc")
        .ctx("/proc")?
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<i32>().ok())
        .filter(|&p| procfs::state(p).is_ok_and(|s| s == "Z"))
        .collect();
    ensure(zombies.is_empty(), || format!("zombies: {zombies:?}"))?;
    Ok(format!(
        "since the start of the run: {}; no zombie",
        compare(before, &after)
    ))
}

fn kmemleak_clean() -> CaseResult {
    let path = "/sys/kernel/debug/kmemleak";
    if !std::path::Path::new(path).exists() {
        return skip("no /sys/kernel/debug/kmemleak: this kernel lacks CONFIG_DEBUG_KMEMLEAK");
    }
    // kmemleak reports objects older than 5 s, and only after a second scan finds them still
    // unreferenced: wait, scan, wait, scan.
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(6));
    fs::write(path, "scan").ctx("kmemleak scan")?;
    std::thread::sleep(Duration::from_secs(6));
    fs::write(path, "scan").ctx("kmemleak scan")?;
    let report = fs::read_to_string(path).ctx("kmemleak")?;
    let n = report.matches("unreferenced object").count();
    if n > 0 {
        for l in report.lines().take(80) {
            println!("# kmemleak: {l}");
        }
    }
    ensure(n == 0, || {
        format!("kmemleak suspects {n} objects (see above)")
    })?;
    Ok(format!(
        "two scans {:.0} s apart: no suspect",
        t0.elapsed().as_secs_f32() - 6.0
    ))
}

fn kernel_log_clean() -> CaseResult {
    let mut k = Kmsg::from_start().ctx("/dev/kmsg")?;
    let lines = k.read_new();
    let bad = kmsg::splats(&lines);
    for l in bad.iter().take(40) {
        println!("# kernel: {l}");
    }
    ensure(bad.is_empty(), || {
        format!(
            "{} lines of the kernel log report bugs (see above)",
            bad.len()
        )
    })?;
    let faults = kmsg::faults(&lines).len();
    Ok(format!(
        "{} lines, {faults} injected-fault reports, no bug report (warning, bug, oops, lockdep, KASAN, kmemleak, hung task)",
        lines.len()
    ))
}
