// SPDX-License-Identifier: GPL-2.0
//! Systematic fault injection, the way syzkaller does it: for n = 1, 2, 3, ... a fresh owner
//! process arms `/proc/thread-self/fail-nth` with n and makes the call that creates a worker,
//! so that its n-th allocation fails; when fail-nth reads back non-zero, n is past the last
//! allocation of the path and the walk ends. Every n must end in success, or in a clean errno
//! after which the same owner retries, gets its worker and moves data through it; never in a
//! hang, a splat, or a leaked thread or fd.
//!
//! The calls: `VHOST_SET_OWNER` of vhost-net, vhost-vsock and vhost-scsi, vhost-scsi's
//! `VHOST_NEW_WORKER`, and the first `KVM_RUN` of a VM, which creates KVM's NX huge page
//! recovery thread through `call_once()` and then runs the guest to its first exit: there a
//! fault after the thread was made fails the call with the thread left (call_once() is done),
//! and the retry must run the guest with that one thread.
//!
//! Needs `CONFIG_FAULT_INJECTION`, `CONFIG_FAILSLAB`, `CONFIG_FAIL_PAGE_ALLOC` and
//! `CONFIG_FAULT_INJECTION_DEBUG_FS` (the debug kernel, configs/debug.config). The plain Rust
//! and C test kernels have none of it: there the cases are TAP `# SKIP`s that say so.
//!
//! Each injected fault is logged by the kernel with a stack trace (`verbose` 2); the cases print
//! the allocation site of each n as `# site <path> <n> <outcome>: <kind> <callers>` and the
//! total as `# fault points: <path>: N`, so that two kernels' lists can be diffed
//! (scripts/fault-diff.sh).

use crate::cases::worker_thread;
use crate::harness::{ensure, exit_code, skip, CaseResult, Context, Noted};
use crate::ioctls;
use crate::kmsg::{self, Kmsg};
use crate::kvm;
use crate::netdev::{self, NetDev};
use crate::procfs;
use crate::scsi;
use crate::tap::{PacketSocket, Tap};
use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::os::unix::io::{AsRawFd, RawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};
use vhost::vhost_kern::net::Net;
use vhost::vhost_kern::vsock::Vsock;
use vhost::vsock::VhostVsock;
use vm_memory::{GuestAddress, GuestMemoryMmap};

const DEBUGFS: &str = "/sys/kernel/debug";
/// More fault points than any of the paths has: a walk that gets here never ends.
const MAX_N: u32 = 2000;
/// How long one n may take, from the fork of its owner to its reaping, on the KASAN kernel.
const WATCHDOG: Duration = Duration::from_secs(120);
const T: Duration = Duration::from_secs(20);

/// A call that creates a worker, and the device it is made on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    /// `VHOST_SET_OWNER` on /dev/vhost-net.
    NetSetOwner,
    /// `VHOST_SET_OWNER` on /dev/vhost-vsock.
    VsockSetOwner,
    /// `VHOST_SET_OWNER` on /dev/vhost-scsi.
    ScsiSetOwner,
    /// `VHOST_NEW_WORKER` on an owned /dev/vhost-scsi (in 6.12 only vhost-scsi wires it).
    ScsiNewWorker,
    /// The first `KVM_RUN` of a VM, which creates KVM's NX huge page recovery thread (and
    /// then runs the guest to its first exit).
    KvmFirstRun,
}

impl Path {
    /// The label of the `# fault points:` line.
    pub fn label(self) -> &'static str {
        match self {
            Path::NetSetOwner => "vhost-net set_owner",
            Path::VsockSetOwner => "vhost-vsock set_owner",
            Path::ScsiSetOwner => "vhost-scsi set_owner",
            Path::ScsiNewWorker => "vhost-scsi new_worker",
            Path::KvmFirstRun => "kvm first KVM_RUN",
        }
    }
}

/// Why this kernel cannot inject faults, if it cannot.
pub fn unavailable() -> Option<String> {
    if !std::path::Path::new("/proc/thread-self/fail-nth").exists() {
        return Some(
            "no /proc/thread-self/fail-nth: this kernel lacks CONFIG_FAULT_INJECTION \
             (only the debug kernel, bzImage-debug, has it)"
                .into(),
        );
    }
    if let Err(e) = mount_debugfs() {
        return Some(e);
    }
    for d in ["failslab", "fail_page_alloc"] {
        if !std::path::Path::new(&format!("{DEBUGFS}/{d}")).exists() {
            return Some(format!(
                "no {DEBUGFS}/{d}: this kernel lacks CONFIG_FAILSLAB, CONFIG_FAIL_PAGE_ALLOC \
                 or CONFIG_FAULT_INJECTION_DEBUG_FS"
            ));
        }
    }
    None
}

/// Mounts debugfs unless it is there. Without CONFIG_DEBUG_FS there is no mount point either,
/// and the error says so.
pub fn mount_debugfs() -> Result<(), String> {
    crate::sys::mount_pseudo_fs("debugfs", DEBUGFS)
}

/// Makes every allocation of the armed task a fault point: by default both fault types skip
/// allocations that may sleep (GFP_KERNEL, most of them), and page allocations of order 0.
/// `verbose` 2 logs a stack trace for each injected fault.
fn configure() -> Result<(), String> {
    for (file, value) in [
        ("failslab/ignore-gfp-wait", "N"),
        ("failslab/verbose", "2"),
        ("fail_page_alloc/ignore-gfp-wait", "N"),
        ("fail_page_alloc/min-order", "0"),
        ("fail_page_alloc/verbose", "2"),
    ] {
        fs::write(format!("{DEBUGFS}/{file}"), value).ctx(&format!("{DEBUGFS}/{file}"))?;
    }
    Ok(())
}

/// The number of open descriptors of this process.
fn fd_count() -> usize {
    fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

/// The device a path works on, opened before fail-nth is armed.
enum Dev {
    Net(Net<Arc<GuestMemoryMmap>>, Arc<GuestMemoryMmap>),
    Vsock(Vsock<Arc<GuestMemoryMmap>>),
    Scsi(scsi::ScsiDev),
    Kvm(Box<kvm::Vm>),
}

impl Dev {
    fn open(path: Path) -> Result<Dev, String> {
        let mem = || {
            GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 64 << 20)])
                .map(Arc::new)
                .map_err(|e| format!("guest memory: {e:?}"))
        };
        Ok(match path {
            Path::NetSetOwner => {
                let m = mem()?;
                let net = Net::new(m.clone()).map_err(|e| format!("open vhost-net: {e:?}"))?;
                Dev::Net(net, m)
            }
            Path::VsockSetOwner => {
                Dev::Vsock(Vsock::new(mem()?).map_err(|e| format!("open vhost-vsock: {e:?}"))?)
            }
            Path::ScsiSetOwner => Dev::Scsi(scsi::ScsiDev::open()?),
            Path::ScsiNewWorker => {
                let d = scsi::ScsiDev::open()?;
                ioctls::set_owner(&d).ctx("VHOST_SET_OWNER")?;
                Dev::Scsi(d)
            }
            Path::KvmFirstRun => {
                let vm = kvm::Vm::new()?;
                kvm::prepare(&vm.vcpu).map_err(|e| format!("KVM_SET_REGS: {e}"))?;
                Dev::Kvm(Box::new(vm))
            }
        })
    }

    /// The call under test; for `VHOST_NEW_WORKER`, the new worker's id.
    fn call(&mut self, path: Path) -> io::Result<u32> {
        if let Dev::Kvm(vm) = self {
            return kvm::run_prepared(&mut vm.vcpu)
                .map(|()| 0)
                .map_err(|e| match e {
                    kvm::RunError::Errno(e) => io::Error::from_raw_os_error(e),
                    e => io::Error::other(e.to_string()),
                });
        }
        match path {
            Path::ScsiNewWorker => ioctls::new_worker(&*self),
            _ => ioctls::set_owner(&*self).map(|()| 0),
        }
    }

    /// Sets up the call once more after it failed (for KVM: the registers, which must not be
    /// set between the arming of fail-nth and the call).
    fn prepare_retry(&self) -> Result<(), String> {
        if let Dev::Kvm(vm) = self {
            kvm::prepare(&vm.vcpu).map_err(|e| format!("KVM_SET_REGS: {e}"))?;
        }
        Ok(())
    }
}

impl AsRawFd for Dev {
    fn as_raw_fd(&self) -> RawFd {
        match self {
            Dev::Net(n, _) => n.as_raw_fd(),
            Dev::Vsock(v) => v.as_raw_fd(),
            Dev::Scsi(s) => s.as_raw_fd(),
            Dev::Kvm(vm) => vm.vcpu.as_raw_fd(),
        }
    }
}

/// Arms fail-nth with `n`, makes the call, disarms. Returns the call's result and whether the
/// fault was injected (fail-nth read back 0).
fn call_with_nth_fault(
    dev: &mut Dev,
    path: Path,
    n: u32,
) -> Result<(io::Result<u32>, bool), String> {
    let mut nth = fs::File::options()
        .read(true)
        .write(true)
        .open("/proc/thread-self/fail-nth")
        .ctx("open /proc/thread-self/fail-nth")?;
    let arm = n.to_string();
    let mut back = [0u8; 32];
    // Nothing between the arming and the call: any other system call could take the fault.
    nth.write_all(arm.as_bytes()).ctx("arm fail-nth")?;
    let r = dev.call(path);
    let len = nth.read_at(&mut back, 0);
    let disarm = nth.write_all(b"0");
    let len = len.ctx("read fail-nth")?;
    disarm.ctx("disarm fail-nth")?;
    let left: u32 = String::from_utf8_lossy(&back[..len])
        .trim()
        .parse()
        .map_err(|_| "fail-nth read back garbage".to_string())?;
    Ok((r, left == 0))
}

/// What the owner of one n reports to the walk.
enum Outcome {
    /// The n-th allocation did not exist: the walk is over.
    NotReached,
    /// The fault was injected and the call failed with this errno; the retry worked.
    Failed(i32),
    /// The fault was injected and the call still succeeded (the allocation had a fallback).
    Survived,
}

impl Outcome {
    fn encode(&self) -> String {
        match self {
            Outcome::NotReached => "not-reached".into(),
            Outcome::Failed(e) => format!("failed {e}"),
            Outcome::Survived => "survived".into(),
        }
    }

    fn decode(s: &str) -> Option<Outcome> {
        match s.split_whitespace().collect::<Vec<_>>()[..] {
            ["not-reached"] => Some(Outcome::NotReached),
            ["failed", e] => e.parse().ok().map(Outcome::Failed),
            ["survived"] => Some(Outcome::Survived),
            _ => None,
        }
    }
}

/// The owner of one n: injects, checks the errno, retries, checks the worker and moves data,
/// closes, and checks that its threads and fds are back to where they were.
fn owner(path: Path, n: u32) -> Result<Outcome, String> {
    let me = procfs::self_pid();
    let fds = fd_count();
    let mut dev = Dev::open(path)?;
    let threads = procfs::threads(me).ctx("threads")?.len();
    let (r, injected) = call_with_nth_fault(&mut dev, path, n)?;
    let outcome = match (&r, injected) {
        (Ok(_), false) => Outcome::NotReached,
        (Err(e), false) => return Err(format!("failed without an injected fault: {e}")),
        (Ok(_), true) => Outcome::Survived,
        (Err(e), true) => {
            let errno = e.raw_os_error().unwrap_or(0);
            ensure(
                [libc::ENOMEM, libc::EAGAIN, libc::EINTR].contains(&errno),
                || format!("injected fault gave {e}, not ENOMEM, EAGAIN or EINTR"),
            )?;
            // A refused call leaves no thread behind (a worker that was created and then
            // given up must have exited). The first KVM_RUN may fail after it made the
            // recovery thread (call_once() is then done): one thread more, the recovery one.
            // A thread given up on the way out may take a moment to go.
            let made = || {
                if path == Path::KvmFirstRun {
                    kvm::recovery_threads(me).len()
                } else {
                    0
                }
            };
            ensure(
                procfs::wait_for(T, || {
                    let m = made();
                    m <= 1 && procfs::threads(me).map_or(0, |t| t.len()) == threads + m
                }),
                || {
                    format!(
                        "after the failed call the owner has threads {:?}",
                        procfs::threads(me).unwrap_or_default()
                    )
                },
            )?;
            Outcome::Failed(errno)
        }
    };
    let id = match r {
        Ok(id) => id,
        Err(_) => {
            dev.prepare_retry()?;
            dev.call(path)
                .map_err(|e| format!("the retry after the injected fault failed: {e}"))?
        }
    };
    use_worker(dev, path, id, me, threads)?;
    procfs::wait_single_threaded(me, T)
        .map_err(|left| format!("threads left after close: {left:?}"))?;
    let now = fd_count();
    ensure(now == fds, || {
        format!("{now} fds open after close, {fds} before")
    })?;
    Ok(outcome)
}

/// Checks that the worker exists and moves data through it, then closes the device.
fn use_worker(dev: Dev, path: Path, id: u32, me: i32, threads: usize) -> Result<(), String> {
    if path == Path::ScsiNewWorker {
        let now = procfs::threads(me).ctx("threads")?.len();
        ensure(now == threads + 1, || {
            format!("VHOST_NEW_WORKER gave {now} threads, had {threads}")
        })?;
    } else if path == Path::KvmFirstRun {
        procfs::wait_for(T, || kvm::recovery_threads(me).len() == 1);
        let w = kvm::recovery_thread(me)?;
        kvm::check_worker(me, w)?;
    } else {
        let w = worker_thread(me)?;
        crate::cases::check_contract(me, w)?;
    }
    match dev {
        Dev::Net(net, mem) => {
            let tap = Tap::new(&format!("vt-fi{}", me % 100_000)).ctx("tap")?;
            let sock = PacketSocket::new(tap.ifindex).ctx("packet socket")?;
            let mut d = NetDev::on(net, mem, false).ctx("vhost-net rings")?;
            d.attach(&tap).ctx("backend")?;
            let deadline = Instant::now() + Duration::from_secs(60);
            netdev::transmit(&mut d, &sock, 4, deadline)?;
            netdev::receive(&mut d, &sock, 4, deadline)?;
        }
        Dev::Vsock(v) => {
            let cid = 3 + u64::from(me as u32);
            v.set_guest_cid(cid)
                .map_err(|e| format!("VHOST_VSOCK_SET_GUEST_CID: {e:?}"))?;
        }
        Dev::Kvm(mut vm) => {
            // The guest from its out to its hlt, then once more from the start, through the
            // vCPU whose first KVM_RUN was under the fault.
            kvm::run_to_hlt(&mut vm.vcpu).map_err(|e| format!("KVM_RUN to hlt: {e}"))?;
            vm.run_guest()
                .map_err(|e| format!("KVM_RUN of the guest again: {e}"))?;
        }
        Dev::Scsi(mut s) => {
            // An INQUIRY on the I/O queue, through the worker under test: the request, the
            // target's data and the response all pass through the worker.
            s.setup_memory()?;
            s.setup_queue(scsi::VQ_IO)?;
            if path == Path::ScsiNewWorker {
                ioctls::attach_vring_worker(&s, scsi::VQ_IO as u32, id)
                    .ctx("VHOST_ATTACH_VRING_WORKER")?;
            }
            s.set_endpoint()?;
            let vendor = s.inquiry_vendor(scsi::VQ_IO)?;
            ensure(vendor == "LIO-ORG ", || {
                format!("INQUIRY through vhost-scsi: vendor {vendor:?}, not \"LIO-ORG \"")
            })?;
            s.clear_endpoint()?;
        }
    }
    Ok(())
}

/// Tasks anywhere in the system named after `owner`'s worker, or (KVM) recovery threads of
/// the thread group `owner`.
fn stray_workers(path: Path, owner: i32) -> Vec<i32> {
    if path == Path::KvmFirstRun {
        return kvm::all_recovery_threads()
            .into_iter()
            .filter(|&t| procfs::status_num(t, "Tgid").is_ok_and(|g| g == i64::from(owner)))
            .collect();
    }
    procfs::find_by_comm(&format!("vhost-{owner}"))
}

/// Walks every fault point of `path`; see the module's comment.
pub fn walk(path: Path) -> CaseResult {
    if let Some(why) = unavailable() {
        return skip(why);
    }
    if path == Path::KvmFirstRun {
        if let Some(r) = kvm::missing() {
            return r;
        }
    }
    configure()?;
    let label = path.label();
    // vhost-scsi talks to a LIO target without a mapped LUN, set up once per boot and left
    // in place: a LUN or removing the target makes lockdep report configfs against
    // vhost-scsi (see `scsi::lasting_target_without_lun`), after which it would check
    // nothing more in this boot.
    if matches!(path, Path::ScsiSetOwner | Path::ScsiNewWorker) {
        scsi::lasting_target_without_lun()?;
    }
    let mut kmsg = Kmsg::from_now().ctx("/dev/kmsg")?;
    let mut errnos: BTreeMap<String, u32> = BTreeMap::new();
    let mut survived = 0;
    // A splat fails the case but not the walk, so that the count stays comparable: lockdep
    // reports once per boot, and the rest of the path deserves its faults as much.
    let mut splats: Vec<String> = Vec::new();
    let t0 = Instant::now();
    for n in 1..=MAX_N {
        let mut noted = Noted::spawn(|| owner(path, n).map(|o| o.encode())).ctx("fork")?;
        let (status, msg) = noted.wait(WATCHDOG);
        let child = &noted.child;
        let Some(status) = status else {
            let stack =
                fs::read_to_string(format!("/proc/{}/stack", child.pid)).unwrap_or_default();
            return Err(format!(
                "{label} n={n}: the owner hung for {} s; its kernel stack: {}",
                WATCHDOG.as_secs(),
                stack.replace('\n', " | ")
            ));
        };
        let lines = kmsg.read_new();
        let bad = kmsg::splats(&lines);
        if !bad.is_empty() {
            println!("# splat {label} n={n}: {}", bad.join(" | "));
            splats.push(format!("n={n}: {}", bad.join(" | ")));
        }
        let stray = stray_workers(path, child.pid);
        ensure(stray.is_empty(), || {
            format!("{label} n={n}: worker threads {stray:?} outlived their owner")
        })?;
        ensure(exit_code(status) == 0, || format!("{label} n={n}: {msg}"))?;
        let outcome = Outcome::decode(&msg).ok_or(format!("{label} n={n}: owner said {msg:?}"))?;
        let result = match outcome {
            Outcome::NotReached => {
                let points = n - 1;
                println!("# fault points: {label}: {points}");
                let errs: Vec<String> = errnos.iter().map(|(e, c)| format!("{e} x{c}")).collect();
                ensure(splats.is_empty(), || {
                    format!(
                        "{points} fault points, but the kernel log reported: {}",
                        splats.join("; ")
                    )
                })?;
                return Ok(format!(
                    "{points} fault points in {:.0} s: {}{survived} survived; each then retried: worker, data through it, closed; no thread, fd or splat left",
                    t0.elapsed().as_secs_f32(),
                    if errs.is_empty() { String::new() } else { format!("{}, ", errs.join(", ")) },
                ));
            }
            Outcome::Failed(e) => {
                let name = errno_name(e);
                *errnos.entry(name.clone()).or_default() += 1;
                name
            }
            Outcome::Survived => {
                survived += 1;
                "ok".to_string()
            }
        };
        let faults = kmsg::faults(&lines);
        let site = match faults.as_slice() {
            [] => "(no trace: a __GFP_NOWARN allocation, or verbose off)".to_string(),
            [f] => f.describe(4),
            [f, ..] => format!("{} (+{} more traces)", f.describe(4), faults.len() - 1),
        };
        println!("# site {label} {n} {result}: {site}");
    }
    Err(format!(
        "{label}: fail-nth still not past the last allocation at n={MAX_N}"
    ))
}

fn errno_name(e: i32) -> String {
    match e {
        libc::ENOMEM => "ENOMEM".into(),
        libc::EAGAIN => "EAGAIN".into(),
        libc::EINTR => "EINTR".into(),
        _ => format!("errno {e}"),
    }
}

/// `VHOST_SET_OWNER` of /dev/vhost-net under each fault.
pub fn net_set_owner() -> CaseResult {
    walk(Path::NetSetOwner)
}

/// `VHOST_SET_OWNER` of /dev/vhost-vsock under each fault.
pub fn vsock_set_owner() -> CaseResult {
    walk(Path::VsockSetOwner)
}

/// `VHOST_SET_OWNER` of /dev/vhost-scsi under each fault.
pub fn scsi_set_owner() -> CaseResult {
    walk(Path::ScsiSetOwner)
}

/// `VHOST_NEW_WORKER` of /dev/vhost-scsi under each fault.
pub fn scsi_new_worker() -> CaseResult {
    walk(Path::ScsiNewWorker)
}

/// The first `KVM_RUN` of a VM under each fault.
pub fn kvm_first_run() -> CaseResult {
    walk(Path::KvmFirstRun)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_survive_the_pipe() {
        for o in [Outcome::NotReached, Outcome::Failed(12), Outcome::Survived] {
            assert_eq!(
                Outcome::decode(&o.encode()).map(|d| d.encode()),
                Some(o.encode())
            );
        }
    }
}
