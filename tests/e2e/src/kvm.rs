// SPDX-License-Identifier: GPL-2.0
//! KVM's NX huge page recovery thread, the fourth user of vhost_task, driven by a real VMM.
//!
//! The VMM is a small one on rust-vmm's `kvm-ioctls` and `kvm-bindings` (the crates Firecracker
//! and Cloud Hypervisor are built on): a VM with 64 KiB of memory at guest address 0 and one
//! vCPU in real mode, which runs `mov dx, 0x3f8; add al, bl; add al, '0'; out dx, al; hlt`
//! with al = 2 and bl = 3: a `KVM_EXIT_IO` of "5" on port 0x3f8, then a `KVM_EXIT_HLT`.
//! Under TCG, QEMU's `-cpu max` emulates AMD SVM with nested paging, so `kvm_amd` gives the
//! test guest a /dev/kvm of its own.
//!
//! What KVM does with the thread, in 6.12.117 and 7.3.4 alike (arch/x86/kvm/mmu/mmu.c): the
//! first `KVM_RUN` of a VM creates it with `vhost_task_create()` through `call_once()`, which
//! starts over at the next `KVM_RUN` when creation failed; its comm is "kvm-nx-lpage-re"
//! ("kvm-nx-lpage-recovery" cut to 15 bytes). Its work function sleeps inside itself with
//! `schedule_timeout()` until the next recovery period, or returns false (the vhost_task then
//! sleeps until woken) when `nx_huge_pages` or `nx_huge_pages_recovery_ratio` turns recovery
//! off. The setters of `nx_huge_pages`, `_recovery_ratio` and `_recovery_period_ms` wake every
//! VM's thread (`kvm_wake_nx_recovery_thread()`): `nx_huge_pages` when its value changes, the
//! other two when recovery is on and its period got shorter. `kvm_mmu_pre_destroy_vm()` stops
//! the thread when the VM goes.
//!
//! Errnos: a refused creation is `vhost_task_create()`'s `ERR_PTR`, which KVM returns from
//! `KVM_RUN` unchanged: `EAGAIN` from `copy_process()` at `RLIMIT_NPROC` (checked at
//! `copy_creds()`, before a pid is allocated) and at `pids.max` (`cgroup_can_fork()`, after
//! `alloc_pid()`), and `-ERESTARTNOINTR` when a signal is pending, which the kernel turns into
//! a restart of the `KVM_RUN` after the signal's handler.

use crate::cases::{become_user, check_contract, read_tid, set_rlimit};
use crate::harness::{case, ensure, fork, skip, Case, CaseResult, Context, Noted};
use crate::procfs::{self, PF_KTHREAD, PF_USER_WORKER};
use crate::setup;
use crate::sys;
use kvm_bindings::{kvm_pre_fault_memory, kvm_regs, kvm_userspace_memory_region};
use kvm_ioctls::{Kvm, VcpuExit, VcpuFd, VmFd};
use nix::errno::Errno;
use nix::sched::{unshare, CloneFlags};
use nix::sys::pthread::{pthread_kill, pthread_self, Pthread};
use nix::sys::resource::Resource;
use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::os::unix::io::{AsRawFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use vm_memory::{Bytes, MmapRegion, VolatileMemory};
use vmm_sys_util::ioctl_iowr_nr;

/// The comm of KVM's NX huge page recovery thread.
pub const COMM: &str = "kvm-nx-lpage-re";
/// Where KVM's module parameters are.
pub const PARAMS: &str = "/sys/module/kvm/parameters";
/// KVM's parameter that turns NX huge pages, and their recovery, on and off.
pub const NX: &str = "nx_huge_pages";
/// KVM's recovery ratio: each period zaps 1/ratio of the huge pages split for NX (0: none).
pub const RATIO: &str = "nx_huge_pages_recovery_ratio";
/// KVM's recovery period in ms (0: KVM derives it from the ratio).
pub const PERIOD: &str = "nx_huge_pages_recovery_period_ms";

const MEM_SIZE: usize = 0x10000;
const CODE_AT: u64 = 0x1000;
const SPIN_AT: u64 = 0x1010;
/// mov dx, 0x3f8; add al, bl; add al, '0'; out dx, al; hlt
const GUEST_CODE: [u8; 9] = [0xba, 0xf8, 0x03, 0x00, 0xd8, 0x04, b'0', 0xee, 0xf4];
/// jmp $
const SPIN_CODE: [u8; 2] = [0xeb, 0xfe];
const PORT: u16 = 0x3f8;
/// Where the large slot of [`Vm::with_large_slot`] starts: 4 GiB, above anything else.
const LARGE_GPA: u64 = 4 << 30;

const T: Duration = Duration::from_secs(10);

const KVMIO: u32 = 0xAE;
ioctl_iowr_nr!(KVM_PRE_FAULT_MEMORY, KVMIO, 0xd5, kvm_pre_fault_memory);
/// `KVM_RUN`, `_IO(KVMIO, 0x80)`, as the registers of an `ioctl()` show it.
const KVM_RUN_NR: u64 = 0xae80;
/// `KVM_CAP_PRE_FAULT_MEMORY`.
const CAP_PRE_FAULT_MEMORY: libc::c_ulong = 236;

/// Anonymous memory of the VMM, mapped by vm-memory and unmapped when it is dropped.
struct Mem(MmapRegion);

impl Mem {
    /// `len` bytes; with `lazy`, MAP_NORESERVE, never touched by the VMM, so that reads map the
    /// zero page and cost no memory.
    fn new(len: usize, lazy: bool) -> Result<Mem, String> {
        let mut flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;
        if lazy {
            flags |= libc::MAP_NORESERVE;
        }
        MmapRegion::build(None, len, libc::PROT_READ | libc::PROT_WRITE, flags)
            .map(Mem)
            .map_err(|e| format!("mmap of {len} bytes: {e}"))
    }

    fn write(&self, at: u64, bytes: &[u8]) -> Result<(), String> {
        self.0
            .as_volatile_slice()
            .write_slice(bytes, at as usize)
            .map_err(|e| format!("{} bytes at {at:#x} of the VMM's memory: {e}", bytes.len()))
    }

    fn len(&self) -> usize {
        self.0.size()
    }
}

/// Why a run of the guest did not end as the program says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunError {
    /// `KVM_RUN` (or the register set-up before it) failed with this errno.
    Errno(i32),
    /// `KVM_RUN` returned an exit the program does not make.
    Exit(String),
}

impl RunError {
    /// The errno of a failed `KVM_RUN`, `None` for an unexpected exit.
    pub fn errno(&self) -> Option<i32> {
        match self {
            RunError::Errno(e) => Some(*e),
            RunError::Exit(_) => None,
        }
    }
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Errno(e) => write!(f, "{}", errno_name(*e)),
            RunError::Exit(s) => write!(f, "unexpected exit {s}"),
        }
    }
}

/// "EAGAIN (errno 11)".
pub fn errno_name(e: i32) -> String {
    let name = match e {
        libc::EAGAIN => "EAGAIN",
        libc::ENOMEM => "ENOMEM",
        libc::EINTR => "EINTR",
        libc::EFAULT => "EFAULT",
        libc::EINVAL => "EINVAL",
        libc::EIO => "EIO",
        libc::EPERM => "EPERM",
        libc::EBUSY => "EBUSY",
        513 => "ERESTARTNOINTR (a kernel-internal errno that must never reach user space)",
        _ => "",
    };
    format!("{name} (errno {e})")
}

/// A VM with its memory and one vCPU, not run yet.
pub struct Vm {
    /// Its one vCPU.
    pub vcpu: VcpuFd,
    vm: VmFd,
    _mem: Mem,
    _large: Option<Mem>,
}

impl Vm {
    /// A VM ready to run the guest program.
    pub fn new() -> Result<Vm, String> {
        Self::build(0)
    }

    /// The same with a second memory slot of `len` bytes at 4 GiB, backed by untouched memory.
    pub fn with_large_slot(len: usize) -> Result<Vm, String> {
        Self::build(len)
    }

    fn build(large: usize) -> Result<Vm, String> {
        let kvm = Kvm::new().map_err(|e| format!("open /dev/kvm: {e}"))?;
        let vm = kvm.create_vm().map_err(|e| format!("KVM_CREATE_VM: {e}"))?;
        let mem = Mem::new(MEM_SIZE, false)?;
        mem.write(CODE_AT, &GUEST_CODE)?;
        mem.write(SPIN_AT, &SPIN_CODE)?;
        add_slot(&vm, 0, 0, &mem)?;
        let large = if large > 0 {
            let m = Mem::new(large, true)?;
            add_slot(&vm, 1, LARGE_GPA, &m)?;
            Some(m)
        } else {
            None
        };
        let vcpu = vm
            .create_vcpu(0)
            .map_err(|e| format!("KVM_CREATE_VCPU: {e}"))?;
        let mut sregs = vcpu
            .get_sregs()
            .map_err(|e| format!("KVM_GET_SREGS: {e}"))?;
        sregs.cs.base = 0;
        sregs.cs.selector = 0;
        vcpu.set_sregs(&sregs)
            .map_err(|e| format!("KVM_SET_SREGS: {e}"))?;
        Ok(Vm {
            vcpu,
            vm,
            _mem: mem,
            _large: large,
        })
    }

    /// Runs the program from its start to its `hlt`: two `KVM_RUN`s.
    pub fn run_guest(&mut self) -> Result<(), RunError> {
        run_to_out(&mut self.vcpu)?;
        run_to_hlt(&mut self.vcpu)
    }

    /// Runs `jmp $` in the guest until `KVM_RUN` fails (a signal: `EINTR`), or forever.
    pub fn spin(&mut self) -> RunError {
        if let Err(e) = set_rip(&self.vcpu, SPIN_AT) {
            return e;
        }
        match self.vcpu.run() {
            Ok(exit) => RunError::Exit(format!("{exit:?}")),
            Err(e) => RunError::Errno(e.errno()),
        }
    }
}

fn add_slot(vm: &VmFd, slot: u32, gpa: u64, mem: &Mem) -> Result<(), String> {
    let region = kvm_userspace_memory_region {
        slot,
        flags: 0,
        guest_phys_addr: gpa,
        memory_size: mem.len() as u64,
        userspace_addr: mem.0.as_ptr() as u64,
    };
    // SAFETY: the memory is a mapping of ours that outlives the VM: `Vm` drops its vCPU and VM
    // fds before their `Mem`s (fields drop in order of declaration).
    unsafe { vm.set_user_memory_region(region) }
        .map_err(|e| format!("KVM_SET_USER_MEMORY_REGION slot {slot}: {e}"))
}

fn set_rip(vcpu: &VcpuFd, rip: u64) -> Result<(), RunError> {
    let regs = kvm_regs {
        rip,
        rax: 2,
        rbx: 3,
        rflags: 2,
        ..Default::default()
    };
    vcpu.set_regs(&regs).map_err(|e| RunError::Errno(e.errno()))
}

/// The first `KVM_RUN` of the program: from its start to the `out` of "5" to port 0x3f8.
pub fn run_to_out(vcpu: &mut VcpuFd) -> Result<(), RunError> {
    set_rip(vcpu, CODE_AT)?;
    run_prepared(vcpu)
}

/// Points the vCPU at the start of the program, for [`run_prepared`].
pub fn prepare(vcpu: &VcpuFd) -> Result<(), RunError> {
    set_rip(vcpu, CODE_AT)
}

/// The `KVM_RUN` to the `out`, and no other system call, after [`prepare`].
pub fn run_prepared(vcpu: &mut VcpuFd) -> Result<(), RunError> {
    match vcpu.run() {
        Ok(VcpuExit::IoOut(PORT, data)) if data == b"5" => Ok(()),
        Ok(exit) => Err(RunError::Exit(format!("{exit:?}"))),
        Err(e) => Err(RunError::Errno(e.errno())),
    }
}

/// The second: from after the `out` to the `hlt`.
pub fn run_to_hlt(vcpu: &mut VcpuFd) -> Result<(), RunError> {
    match vcpu.run() {
        Ok(VcpuExit::Hlt) => Ok(()),
        Ok(exit) => Err(RunError::Exit(format!("{exit:?}"))),
        Err(e) => Err(RunError::Errno(e.errno())),
    }
}

/// The recovery threads among the threads of `pid`.
pub fn recovery_threads(pid: i32) -> Vec<i32> {
    procfs::threads_named(pid, COMM)
}

/// Every recovery thread in the system.
pub fn all_recovery_threads() -> Vec<i32> {
    procfs::find_by_comm(COMM)
}

/// The one recovery thread of `pid`; fails if it has none or more.
pub fn recovery_thread(pid: i32) -> Result<i32, String> {
    match recovery_threads(pid)[..] {
        [w] => Ok(w),
        ref ws => Err(format!(
            "the VMM {pid} has {} {COMM} threads ({ws:?}), want 1; its threads: {:?}",
            ws.len(),
            procfs::threads(pid).unwrap_or_default()
        )),
    }
}

/// The task's flags (PF_*), field 9 of /proc/<tid>/stat.
pub fn task_flags(tid: i32) -> Result<u64, String> {
    procfs::stat(tid).map(|s| s.flags).ctx("stat")
}

/// What /proc/<tid>/schedstat says: time on the CPU in ns, and how many times it was
/// scheduled in.
pub fn schedstat(tid: i32) -> Result<(u64, u64), String> {
    let s = fs::read_to_string(format!("/proc/{tid}/schedstat"))
        .ctx("schedstat (CONFIG_SCHED_INFO)")?;
    let f: Vec<u64> = s
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    match f[..] {
        [run, _, slices] => Ok((run, slices)),
        _ => Err(format!("/proc/{tid}/schedstat: {s:?}")),
    }
}

/// How many times the task went to sleep of its own accord (voluntary_ctxt_switches): one
/// more after each wake-up of a sleeping thread that then sleeps again.
pub fn sleeps(tid: i32) -> Result<i64, String> {
    procfs::status_num(tid, "voluntary_ctxt_switches").ctx("status")
}

/// The one recovery thread of the VMM `me`, checked as [`check_worker`] does, and its pid in
/// the VMM's pid namespace.
fn checked_recovery_thread(me: i32) -> Result<(i32, i64), String> {
    let w = recovery_thread(me)?;
    check_worker(me, w)?;
    Ok((w, ns_tid(w)?))
}

/// The task's pid in its innermost pid namespace (the last NSpid).
pub fn ns_tid(tid: i32) -> Result<i64, String> {
    procfs::status_field(tid, "NSpid")
        .ctx("status")?
        .split_whitespace()
        .last()
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("no NSpid for {tid}"))
}

/// Checks that `w` is what vhost_task promises: a thread of `vmm`, in its cgroup and
/// namespaces, with PF_USER_WORKER and without PF_KTHREAD, and the VMM's command line.
pub fn check_worker(vmm: i32, w: i32) -> Result<(), String> {
    check_contract(vmm, w)?;
    let flags = task_flags(w)?;
    ensure(flags & PF_USER_WORKER != 0, || {
        format!("{COMM} {w}: flags {flags:#x} lack PF_USER_WORKER")
    })?;
    ensure(flags & PF_KTHREAD == 0, || {
        format!("{COMM} {w}: flags {flags:#x} have PF_KTHREAD")
    })?;
    let cmdline = fs::read(format!("/proc/{w}/cmdline")).ctx("cmdline")?;
    ensure(!cmdline.is_empty(), || {
        format!("{COMM} {w} has no cmdline, like a kthread")
    })
}

/// KVM's three NX huge page parameters as they were, written back on drop.
pub struct Params {
    saved: Vec<(&'static str, String)>,
}

impl Params {
    /// The parameters as they are now.
    pub fn save() -> Result<Params, String> {
        let mut saved = Vec::new();
        for name in [NX, RATIO, PERIOD] {
            let v = fs::read_to_string(format!("{PARAMS}/{name}"))
                .map_err(|e| format!("{PARAMS}/{name}: {e}"))?;
            saved.push((name, v.trim().to_string()));
        }
        Ok(Params { saved })
    }

    /// "nx_huge_pages=Y nx_huge_pages_recovery_ratio=60 ...".
    pub fn describe(&self) -> String {
        self.saved
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

impl Drop for Params {
    fn drop(&mut self) {
        for (name, v) in self.saved.iter().rev() {
            if let Err(e) = fs::write(format!("{PARAMS}/{name}"), v) {
                println!("# could not restore {name}={v}: {e}");
            }
        }
    }
}

/// Writes KVM's parameter `name`.
pub fn set_param(name: &str, value: &str) -> Result<(), String> {
    fs::write(format!("{PARAMS}/{name}"), value)
        .map_err(|e| format!("write {value} to {PARAMS}/{name}: {e}"))
}

/// `None` if /dev/kvm is there. Without it: a skip if the CPU cannot virtualise at all, else
/// a failure that says what is missing.
pub fn missing() -> Option<CaseResult> {
    if Path::new("/dev/kvm").exists() {
        return None;
    }
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let flags = cpuinfo
        .lines()
        .find(|l| l.starts_with("flags"))
        .unwrap_or("");
    let virt: Vec<&str> = flags
        .split_whitespace()
        .filter(|f| *f == "svm" || *f == "vmx")
        .collect();
    if virt.is_empty() {
        return Some(skip(
            "no /dev/kvm: the CPU has neither svm nor vmx (QEMU TCG emulates svm with -cpu max)",
        ));
    }
    let modules: Vec<String> = fs::read_to_string("/proc/modules")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|m| m.starts_with("kvm"))
        .collect();
    Some(Err(format!(
        "no /dev/kvm, but the CPU has {}: kvm_amd (or kvm_intel) is not loaded (kvm modules: {modules:?}; see 'init: modprobe' on the console)",
        virt.join(" ")
    )))
}

/// Runs `f` in a child process and returns its result.
pub fn in_child(timeout: Duration, f: impl FnOnce() -> CaseResult) -> CaseResult {
    Noted::spawn(f).ctx("fork")?.result(timeout)
}

/// Runs `f` as pid 1 of a new pid namespace.
pub fn in_new_pid_ns(timeout: Duration, f: impl FnOnce() -> CaseResult) -> CaseResult {
    in_child(timeout, move || {
        unshare(CloneFlags::CLONE_NEWPID).ctx("unshare(CLONE_NEWPID)")?;
        in_child(timeout, move || {
            ensure(std::process::id() == 1, || {
                format!("pid {} in the new pid namespace, not 1", std::process::id())
            })?;
            f()
        })
    })
}

/// The cases of the e2e suite, in the order they run.
pub fn cases() -> Vec<Case> {
    vec![
        case!(
            kvm_no_recovery_thread_until_first_run_then_one_user_worker_of_the_vmm,
            120,
            missing
        ),
        case!(
            kvm_rlimit_nproc_fails_first_run_with_eagain_until_raised,
            120,
            missing
        ),
        case!(
            kvm_pids_max_fails_first_run_with_eagain_until_raised,
            120,
            missing
        ),
        case!(
            kvm_signal_pending_at_thread_creation_restarts_first_run,
            600,
            missing
        ),
        case!(
            kvm_recovery_thread_runs_every_period_while_the_vmm_sleeps,
            120,
            missing
        ),
        case!(
            kvm_parameter_writes_by_another_process_wake_every_recovery_thread,
            180,
            missing
        ),
        case!(kvm_close_of_the_vm_stops_its_recovery_thread, 120, missing),
        case!(
            kvm_sigkill_of_a_running_vmm_reaps_it_with_its_recovery_thread,
            120,
            missing
        ),
        case!(
            kvm_64_vms_in_one_vmm_have_64_recovery_threads_gone_after_close,
            300,
            missing
        ),
        case!(kvm_upstream_nx_huge_pages_test_sh_passes, 600, missing),
        case!(
            kvm_upstream_nx_huge_pages_test_without_cap_sys_boot_passes,
            600,
            missing
        ),
    ]
}

fn kvm_no_recovery_thread_until_first_run_then_one_user_worker_of_the_vmm() -> CaseResult {
    let cg = setup::enter_new_cgroup("vt-kvm").ctx("cgroup")?;
    let cg = cg.trim_start_matches(setup::CGROUP_ROOT).to_string();
    unshare(
        CloneFlags::CLONE_NEWPID
            | CloneFlags::CLONE_NEWUTS
            | CloneFlags::CLONE_NEWIPC
            | CloneFlags::CLONE_NEWNET,
    )
    .ctx("unshare")?;
    in_child(Duration::from_secs(100), move || {
        ensure(std::process::id() == 1, || {
            "not pid 1 of the new pid namespace".into()
        })?;
        let me = procfs::self_pid();
        let mut vm = Vm::new()?;
        let before = procfs::threads(me).ctx("threads")?;
        ensure(before.len() == 1, || {
            format!(
                "the VMM has threads {before:?} before its first KVM_RUN; crosvm needs it single-threaded"
            )
        })?;
        vm.run_guest()
            .map_err(|e| format!("the first KVM_RUN: {e}"))?;
        let (w, nstid) = checked_recovery_thread(me)?;
        for i in 0..3 {
            vm.run_guest()
                .map_err(|e| format!("KVM_RUN {} of the guest: {e}", i + 2))?;
        }
        let again = recovery_threads(me);
        ensure(again == [w], || {
            format!("after 3 more runs the {COMM} threads are {again:?}, were [{w}]")
        })?;
        let n = procfs::threads(me).ctx("threads")?.len();
        ensure(n == 2, || format!("the VMM has {n} threads, want 2"))?;
        drop(vm);
        let gone = procfs::wait_gone(w, T).ok_or_else(|| {
            format!(
                "{COMM} {w} still there {} s after the VM closed",
                T.as_secs()
            )
        })?;
        Ok(format!(
            "VMM {me} (pid 1 of new pid, uts, ipc and net namespaces, in cgroup {cg}): one thread until its first KVM_RUN, then {w} {COMM} (pid {nstid} in the namespace): Tgid the VMM, PF_USER_WORKER, not PF_KTHREAD, Kthread 0, the VMM's cgroup, namespaces and cmdline; 3 more runs: the same one thread; gone {} ms after close",
            gone.as_millis()
        ))
    })
}

fn kvm_rlimit_nproc_fails_first_run_with_eagain_until_raised() -> CaseResult {
    in_new_pid_ns(Duration::from_secs(100), || {
        let me = procfs::self_pid();
        // Made as root, run as a user whose only task the VMM is: a limit of 1 is full.
        let mut vm = Vm::new()?;
        set_rlimit(Resource::RLIMIT_NPROC, 1)?;
        become_user(4344)?;
        for i in 1..=2 {
            let e = vm.run_guest().err();
            ensure(
                e.as_ref().and_then(RunError::errno) == Some(libc::EAGAIN),
                || {
                    format!(
                        "KVM_RUN {i} at RLIMIT_NPROC=1: {}, want EAGAIN",
                        e.map_or("success".to_string(), |e| e.to_string())
                    )
                },
            )?;
            let threads = procfs::threads(me).ctx("threads")?;
            ensure(threads.len() == 1, || {
                format!("after the refused KVM_RUN {i} the VMM has threads {threads:?}")
            })?;
        }
        set_rlimit(Resource::RLIMIT_NPROC, 2)?;
        vm.run_guest()
            .map_err(|e| format!("KVM_RUN after raising RLIMIT_NPROC to 2: {e}"))?;
        let (w, nstid) = checked_recovery_thread(me)?;
        ensure(nstid == 2, || {
            format!("{COMM} is pid {nstid} in the VMM's pid namespace, want 2: a refusal at RLIMIT_NPROC (copy_creds) comes before alloc_pid()")
        })?;
        let uid = procfs::status_field(w, "Uid").ctx("status")?;
        ensure(uid.split_whitespace().next() == Some("4344"), || {
            format!("{COMM} has Uid {uid}, the VMM 4344")
        })?;
        Ok(format!(
            "RLIMIT_NPROC=1: the first KVM_RUN and the next failed with EAGAIN, no thread; raised to 2: {w} {COMM}, uid 4344, pid 2 in the VMM's pid namespace (the refusals spent no pid)"
        ))
    })
}

/// `max N` of a cgroup's pids.events.
fn pids_max_events(cg: &str) -> Result<u64, String> {
    let s = fs::read_to_string(format!("{cg}/pids.events")).ctx("pids.events")?;
    s.lines()
        .find_map(|l| l.strip_prefix("max "))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| format!("no 'max' in pids.events: {s:?}"))
}

fn kvm_pids_max_fails_first_run_with_eagain_until_raised() -> CaseResult {
    setup::enable_controller("pids").ctx("enable the pids controller")?;
    in_new_pid_ns(Duration::from_secs(100), || {
        const REFUSED: u64 = 3;
        // Moves pid 1 of the namespace, this process, there.
        let cg = setup::enter_new_cgroup("vt-kvm-pids").ctx("cgroup")?;
        let me = procfs::self_pid();
        let mut vm = Vm::new()?;
        fs::write(format!("{cg}/pids.max"), "1").ctx("pids.max")?;
        let ev0 = pids_max_events(&cg)?;
        for i in 1..=REFUSED {
            let e = vm.run_guest().err();
            ensure(
                e.as_ref().and_then(RunError::errno) == Some(libc::EAGAIN),
                || {
                    // Ignored: the case fails with this message; this only lifts the limit.
                    let _ = fs::write(format!("{cg}/pids.max"), "max");
                    format!(
                        "KVM_RUN {i} at pids.max=1: {}, want EAGAIN",
                        e.map_or("success".to_string(), |e| e.to_string())
                    )
                },
            )?;
            ensure(recovery_threads(me).is_empty(), || {
                // Ignored: the case fails with this message; this only lifts the limit.
                let _ = fs::write(format!("{cg}/pids.max"), "max");
                format!("a {COMM} thread after the refused KVM_RUN {i}")
            })?;
        }
        let events = pids_max_events(&cg)? - ev0;
        fs::write(format!("{cg}/pids.max"), "max").ctx("pids.max")?;
        ensure(events == REFUSED, || {
            format!("pids.events counted {events} refusals of {REFUSED}")
        })?;
        vm.run_guest()
            .map_err(|e| format!("KVM_RUN after raising pids.max: {e}"))?;
        let (w, nstid) = checked_recovery_thread(me)?;
        ensure(nstid == 2 + REFUSED as i64, || {
            format!(
                "{COMM} is pid {nstid} in the VMM's pid namespace, want {}: each refusal at pids.max (cgroup_can_fork) comes after alloc_pid() and spends a pid",
                2 + REFUSED
            )
        })?;
        let current = fs::read_to_string(format!("{cg}/pids.current")).ctx("pids.current")?;
        ensure(current.trim() == "2", || {
            format!(
                "pids.current {} with the VMM and its thread",
                current.trim()
            )
        })?;
        Ok(format!(
            "pids.max=1: {REFUSED} KVM_RUNs failed with EAGAIN (pids.events max +{events}), no thread; raised: {w} {COMM}, pid {nstid} in the VMM's pid namespace (each refusal spent one), pids.current 2"
        ))
    })
}

/// What the SIGUSR1 handler saw of the interrupted context.
static SIG_COUNT: AtomicU64 = AtomicU64::new(0);
static SIG_RAX: AtomicU64 = AtomicU64::new(0);
static SIG_RSI: AtomicU64 = AtomicU64::new(0);
static SIG_RIP: AtomicU64 = AtomicU64::new(0);

extern "C" fn on_sigusr1(_sig: libc::c_int, _info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the third argument of an SA_SIGINFO handler is the interrupted ucontext_t.
    let uc = unsafe { &*(ctx as *const libc::ucontext_t) };
    let g = &uc.uc_mcontext.gregs;
    SIG_RAX.store(g[libc::REG_RAX as usize] as u64, Ordering::SeqCst);
    SIG_RSI.store(g[libc::REG_RSI as usize] as u64, Ordering::SeqCst);
    SIG_RIP.store(g[libc::REG_RIP as usize] as u64, Ordering::SeqCst);
    SIG_COUNT.fetch_add(1, Ordering::SeqCst);
}

fn install_sigusr1() -> Result<(), String> {
    // SA_SIGINFO (nix adds it for a SigAction handler), and no SA_RESTART: -ERESTARTNOINTR
    // restarts the call regardless of it.
    let sa = SigAction::new(
        SigHandler::SigAction(on_sigusr1),
        SaFlags::empty(),
        SigSet::empty(),
    );
    // SAFETY: the handler only reads the ucontext it is given and stores into atomics, which
    // is async-signal-safe.
    unsafe { sigaction(Signal::SIGUSR1, &sa) }
        .map(drop)
        .ctx("sigaction(SIGUSR1)")
}

/// `KVM_PRE_FAULT_MEMORY` of `len` bytes from `gpa` on the vCPU `fd`, an open vCPU
/// descriptor that another thread uses for `KVM_RUN` meanwhile.
fn pre_fault(fd: RawFd, gpa: u64, len: u64) -> Result<(), Errno> {
    let mut range = kvm_pre_fault_memory {
        gpa,
        size: len,
        ..Default::default()
    };
    // SAFETY: `fd` is a KVM vCPU descriptor that the caller keeps open across the call, and
    // the ioctl reads and updates one `kvm_pre_fault_memory`, which `range` is.
    let r = unsafe { libc::ioctl(fd, KVM_PRE_FAULT_MEMORY() as _, &mut range) };
    Errno::result(r).map(drop)
}

/// This thread's id in /proc's pid namespace (gettid() gives the one of its own).
fn thread_self_tid() -> i32 {
    fs::read_link("/proc/thread-self")
        .ok()
        .and_then(|p| p.file_name()?.to_str()?.parse().ok())
        .unwrap_or(0)
}

/// Whether thread `tid` of `pid` sleeps uninterruptibly ('D': TASK_KILLABLE, as in
/// mutex_lock_killable()) inside ioctl(fd, KVM_RUN); with what its state and
/// /proc/PID/task/TID/syscall say.
fn blocked_in_kvm_run(pid: i32, tid: i32) -> (bool, String) {
    let state = procfs::stat(tid).map_or(String::new(), |s| s.state.to_string());
    let sc = fs::read_to_string(format!("/proc/{pid}/task/{tid}/syscall")).unwrap_or_default();
    let f: Vec<&str> = sc.split_whitespace().collect();
    let blocked = state == "D"
        && f.first() == Some(&"16")
        && f.get(2) == Some(&format!("{KVM_RUN_NR:#x}").as_str());
    let seen = format!(
        "state {state}, syscall {}",
        f.iter().take(3).cloned().collect::<Vec<_>>().join(" ")
    );
    (blocked, seen)
}

/// What [`hold_and_signal`] saw.
struct Held {
    /// SIGUSR1 was sent while X held the mutex and Y waited in KVM_RUN.
    sent: bool,
    /// X still held it after the signal was sent.
    held_after: bool,
    /// Why the signal could not be sent, if it could not.
    kill_error: Option<String>,
    /// How long X's pre-fault took, and its result.
    xsecs: f32,
    xr: Result<(), Errno>,
    /// Y's KVM_RUN, and (only if it got to the guest's out) its run to hlt.
    first: Result<(), RunError>,
    second: Option<Result<(), RunError>>,
    /// What /proc said of Y while it was looked for.
    seen: std::collections::BTreeSet<String>,
    /// What the handler saw: how many times it ran, rax, rsi, rip.
    sig: (u64, u64, u64, u64),
}

/// Thread X holds the vCPU's mutex with a `KVM_PRE_FAULT_MEMORY` of `len` bytes from `gpa`,
/// which takes seconds and creates nothing; thread Y then makes a `KVM_RUN` (its registers
/// set before) and waits for the mutex in `mutex_lock_killable()`, where it sleeps in 'D'
/// and a SIGUSR1 stays pending without waking it. Once Y is seen waiting, the SIGUSR1 goes to
/// Y; when X lets go, Y's `KVM_RUN` goes on with the signal pending.
fn hold_and_signal(vcpu: &mut VcpuFd, me: i32, gpa: u64, len: u64) -> Held {
    SIG_COUNT.store(0, Ordering::SeqCst);
    let fd = vcpu.as_raw_fd();
    let x_done = AtomicBool::new(false);
    let y_thread = AtomicU64::new(0);
    let y_host_tid = AtomicI32::new(0);
    std::thread::scope(|s| {
        let x = s.spawn(|| {
            let t = Instant::now();
            let r = pre_fault(fd, gpa, len);
            x_done.store(true, Ordering::SeqCst);
            (r, t.elapsed().as_secs_f32())
        });
        // Let X take the vCPU's mutex first.
        std::thread::sleep(Duration::from_millis(200));
        let y = s.spawn(|| {
            y_thread.store(pthread_self(), Ordering::SeqCst);
            y_host_tid.store(thread_self_tid(), Ordering::SeqCst);
            let first = run_prepared(vcpu);
            let second = first.is_ok().then(|| run_to_hlt(vcpu));
            (first, second)
        });
        let mut seen = std::collections::BTreeSet::new();
        procfs::wait_for(Duration::from_secs(60), || {
            let h = y_host_tid.load(Ordering::SeqCst);
            if x_done.load(Ordering::SeqCst) || h == 0 {
                return x_done.load(Ordering::SeqCst);
            }
            let (blocked, what) = blocked_in_kvm_run(me, h);
            seen.insert(what);
            blocked
        });
        let (mut sent, mut kill_error) = (false, None);
        if !x_done.load(Ordering::SeqCst) {
            // Y is not joined before the end of the scope: its pthread_t stays valid.
            let y: Pthread = y_thread.load(Ordering::SeqCst);
            match pthread_kill(y, Signal::SIGUSR1) {
                Ok(()) => sent = true,
                Err(e) => kill_error = Some(format!("pthread_kill(Y, SIGUSR1): {e}")),
            }
        }
        let held_after = !x_done.load(Ordering::SeqCst);
        let (first, second) = y.join().expect("thread Y panicked");
        let (xr, xsecs) = x.join().expect("thread X panicked");
        Held {
            sent,
            held_after,
            kill_error,
            xsecs,
            xr,
            first,
            second,
            seen,
            sig: (
                SIG_COUNT.load(Ordering::SeqCst),
                SIG_RAX.load(Ordering::SeqCst),
                SIG_RSI.load(Ordering::SeqCst),
                SIG_RIP.load(Ordering::SeqCst),
            ),
        }
    })
}

impl Held {
    /// Why the signal did not test what it should, if it did not.
    fn missed(&self, len: u64) -> Option<String> {
        if !self.sent {
            return Some(format!(
                "missed: X's pre-fault of {} MiB ended after {:.1} s, before Y was seen waiting (Y seen: {:?})",
                len >> 20,
                self.xsecs,
                self.seen
            ));
        }
        if !self.held_after {
            return Some(format!(
                "missed: X's pre-fault of {} MiB ({:.1} s) ended while the signal was sent",
                len >> 20,
                self.xsecs
            ));
        }
        None
    }

    /// Whether the handler interrupted an ioctl(KVM_RUN) set up for a restart: rax back to
    /// the system call's number, rip back on the `syscall` instruction. Only -ERESTARTNOINTR
    /// does that to a handler without SA_RESTART.
    fn restarted(&self) -> Result<bool, String> {
        let (_, rax, rsi, rip) = self.sig;
        if rax != libc::SYS_ioctl as u64 || rsi != KVM_RUN_NR {
            return Ok(false);
        }
        // The instruction at rip, read through /proc/self/mem: a bad rip is an error there,
        // not a fault of this process.
        let mut insn = [0u8; 2];
        fs::File::open("/proc/self/mem")
            .and_then(|m| m.read_exact_at(&mut insn, rip))
            .ctx(&format!("the instruction at rip {rip:#x}"))?;
        Ok(insn == [0x0f, 0x05])
    }
}

/// One try of the signal case, in a fresh pid namespace. The first hold: Y's `KVM_RUN` is
/// the VM's first, reaches `vhost_task_create()` with the signal pending, and
/// `copy_process()` fails with `-ERESTARTNOINTR`: the handler runs, and the kernel restarts
/// the ioctl, which creates the thread and runs the guest. The control: the same once the
/// thread exists, where the pending signal makes `KVM_RUN` fail with `EINTR`
/// (`KVM_EXIT_INTR`), as for any signal. "caught ..." when both holds were hit, else
/// "missed ...".
fn restart_try(len: u64) -> CaseResult {
    install_sigusr1()?;
    let me = procfs::self_pid();
    let mut vm = Vm::with_large_slot(2 * len as usize)?;
    let cap = vm.vm.check_extension_raw(CAP_PRE_FAULT_MEMORY);
    ensure(cap > 0, || {
        "KVM_CAP_PRE_FAULT_MEMORY is missing: nothing to hold the vCPU mutex with".into()
    })?;
    // The registers now: KVM_SET_REGS takes the vCPU mutex too.
    prepare(&vm.vcpu).map_err(|e| format!("KVM_SET_REGS: {e}"))?;
    let h = hold_and_signal(&mut vm.vcpu, me, LARGE_GPA, len);
    if let Some(e) = &h.kill_error {
        return Err(e.clone());
    }
    h.xr.as_ref()
        .map_err(|e| format!("KVM_PRE_FAULT_MEMORY of {} MiB: {e}", len >> 20))?;
    h.first.clone().map_err(|e| {
        format!(
            "the first KVM_RUN, SIGUSR1 sent: {}: {e}; it must be restarted, not fail",
            h.sent
        )
    })?;
    if let Some(Err(e)) = &h.second {
        return Err(format!("the KVM_RUN to hlt: {e}"));
    }
    let (w, nstid) = checked_recovery_thread(me)?;
    if let Some(m) = h.missed(len) {
        return Ok(m);
    }
    let (count, rax, rsi, rip) = h.sig;
    ensure(count == 1, || {
        format!("the handler ran {count} times, want 1")
    })?;
    ensure(h.restarted()?, || {
        format!(
            "SIGUSR1 was pending when Y got the vCPU mutex for the VM's first KVM_RUN, but the handler saw rax {rax:#x} rsi {rsi:#x} rip {rip:#x}: the KVM_RUN was not set up for a restart (-ERESTARTNOINTR)"
        )
    })?;
    ensure(nstid == 4, || {
        format!("{COMM} is pid {nstid} in the namespace, want 4 (after the VMM, X and Y): -ERESTARTNOINTR comes before alloc_pid()")
    })?;
    // The control, on the other half of the large slot.
    prepare(&vm.vcpu).map_err(|e| format!("KVM_SET_REGS: {e}"))?;
    let c = hold_and_signal(&mut vm.vcpu, me, LARGE_GPA + len, len);
    if let Some(e) = &c.kill_error {
        return Err(format!("control: {e}"));
    }
    c.xr.as_ref()
        .map_err(|e| format!("KVM_PRE_FAULT_MEMORY of {} MiB: {e}", len >> 20))?;
    if let Some(m) = c.missed(len) {
        return Ok(format!(
            "{m} (in the control, after the first hold was caught)"
        ));
    }
    let (ccount, crax, _, _) = c.sig;
    ensure(
        c.first == Err(RunError::Errno(libc::EINTR))
            && ccount == 1
            && crax == (-libc::EINTR) as u64
            && !c.restarted()?,
        || {
            format!(
                "control: with {COMM} already there, a KVM_RUN with SIGUSR1 pending gave {:?} and the handler ({ccount} runs) saw rax {crax:#x}; want EINTR",
                c.first
            )
        },
    )?;
    let now = recovery_threads(me);
    ensure(now == [w], || {
        format!("control: {COMM} threads {now:?}, were [{w}]")
    })?;
    Ok(format!(
        "caught: SIGUSR1 queued to Y while it waited for the vCPU mutex that X held for {:.1} s ({} MiB pre-fault); the handler saw rax {rax:#x} (__NR_ioctl), rsi KVM_RUN, rip on the syscall instruction: -ERESTARTNOINTR, restarted; the restarted KVM_RUN ran the guest to hlt and made {w} {COMM} (pid {nstid}: the refused attempt spent no pid); control, the thread there: the same pending signal made KVM_RUN fail with EINTR (rax {crax:#x}), no restart, still one thread",
        h.xsecs,
        len >> 20
    ))
}

fn kvm_signal_pending_at_thread_creation_restarts_first_run() -> CaseResult {
    let mut len: u64 = 512 << 20;
    let mut tries = Vec::new();
    for _ in 0..4 {
        let r = in_new_pid_ns(Duration::from_secs(280), || restart_try(len))?;
        if r.starts_with("caught") {
            let earlier = if tries.is_empty() {
                String::new()
            } else {
                format!(" (earlier tries: {})", tries.join("; "))
            };
            return Ok(format!("{r}{earlier}"));
        }
        tries.push(r);
        len *= 2;
    }
    Err(format!(
        "the signal never reached a KVM_RUN waiting for the vCPU mutex: {}",
        tries.join("; ")
    ))
}

fn kvm_recovery_thread_runs_every_period_while_the_vmm_sleeps() -> CaseResult {
    const PERIOD_MS: u64 = 50;
    const SLEEP: Duration = Duration::from_secs(2);
    let _params = Params::save()?;
    set_param(NX, "Y")?;
    set_param(RATIO, "60")?;
    set_param(PERIOD, &PERIOD_MS.to_string())?;
    let me = procfs::self_pid();
    let mut vm = Vm::new()?;
    vm.run_guest().map_err(|e| format!("KVM_RUN: {e}"))?;
    let w = recovery_thread(me)?;
    let (rt0, n0) = schedstat(w)?;
    let t0 = Instant::now();
    std::thread::sleep(SLEEP);
    let (rt1, n1) = schedstat(w)?;
    let secs = t0.elapsed().as_secs_f64();
    let runs = n1 - n0;
    let cpu_ms = (rt1 - rt0) as f64 / 1e6;
    let expected = secs * 1000.0 / PERIOD_MS as f64;
    ensure(rt1 > rt0, || {
        format!("{COMM} {w} used no CPU in {secs:.1} s at a period of {PERIOD_MS} ms")
    })?;
    ensure((runs as f64) >= expected / 4.0, || {
        format!(
            "{COMM} {w} ran {runs} times in {secs:.1} s at a period of {PERIOD_MS} ms, about {expected:.0} expected"
        )
    })?;
    ensure(
        (runs as f64) <= expected * 4.0 && cpu_ms < secs * 500.0,
        || {
            format!(
            "{COMM} {w} ran {runs} times, {cpu_ms:.0} ms of CPU, in {secs:.1} s at a period of {PERIOD_MS} ms: it does not sleep between periods"
        )
        },
    )?;
    // Recovery off: the write wakes the thread, whose work function then returns false, and
    // it sleeps until woken again.
    set_param(NX, "N")?;
    std::thread::sleep(Duration::from_millis(300));
    let (_, n2) = schedstat(w)?;
    std::thread::sleep(Duration::from_secs(1));
    let (_, n3) = schedstat(w)?;
    ensure(n3 == n2, || {
        format!(
            "with nx_huge_pages=N, {COMM} {w} still ran {} times in 1 s",
            n3 - n2
        )
    })?;
    Ok(format!(
        "nx_huge_pages=Y, period {PERIOD_MS} ms: {w} {COMM} ran {runs} times (about {expected:.0} periods), {cpu_ms:.1} ms of CPU, in {secs:.1} s while the VMM slept; nx_huge_pages=N: 0 runs in 1 s"
    ))
}

/// Forks a VMM with `n` VMs, each run once; it reports their recovery threads, then idles
/// (or, with `spin`, spins its first guest in KVM_RUN) until killed. Returns the VMM and the
/// threads.
pub fn spawn_vmm(n: usize, spin: bool) -> Result<(crate::harness::Child, Vec<i32>), String> {
    let (mut rd, mut wr) = std::io::pipe().ctx("pipe")?;
    let child = fork(move || {
        let r = (|| -> Result<(Vec<Vm>, Vec<i32>), String> {
            let mut vms = Vec::new();
            for _ in 0..n {
                let mut vm = Vm::new()?;
                vm.run_guest().map_err(|e| format!("KVM_RUN: {e}"))?;
                vms.push(vm);
            }
            let ws = recovery_threads(procfs::self_pid());
            ensure(ws.len() == n, || format!("{} {COMM} for {n} VMs", ws.len()))?;
            Ok((vms, ws))
        })();
        let report = match &r {
            Ok((_, ws)) => ws.iter().map(i32::to_string).collect::<Vec<_>>().join(" "),
            Err(e) => format!("error {e}"),
        };
        if let Err(e) = writeln!(wr, "{report}") {
            println!("# VMM: could not report {report:?}: {e}");
            return 1;
        }
        drop(wr);
        match r {
            Ok((mut vms, _)) => {
                if spin {
                    let e = vms[0].spin();
                    println!("# VMM: the spinning KVM_RUN returned {e}");
                    return 1;
                }
                loop {
                    std::thread::sleep(Duration::from_secs(60));
                }
            }
            Err(_) => 1,
        }
    })
    .ctx("fork")?;
    if !sys::readable(&rd, Duration::from_secs(60)).ctx("poll")? {
        return Err(format!(
            "the VMM {} did not report its threads in 60 s",
            child.pid
        ));
    }
    let mut line = String::new();
    let mut b = [0u8; 1];
    while rd.read(&mut b).ctx("read")? == 1 && b[0] != b'\n' {
        line.push(b[0] as char);
    }
    if let Some(e) = line.strip_prefix("error ") {
        return Err(format!("the VMM {}: {e}", child.pid));
    }
    let ws = line
        .split_whitespace()
        .map(|t| {
            t.parse()
                .map_err(|_| format!("the VMM {} said {line:?}", child.pid))
        })
        .collect::<Result<Vec<i32>, String>>()?;
    Ok((child, ws))
}

/// Writes `value` to KVM's parameter `name` from a process of its own.
fn write_from_another_process(name: &str, value: &str) -> Result<(), String> {
    let (name, value) = (name.to_string(), value.to_string());
    in_child(T, move || set_param(&name, &value).map(|()| String::new())).map(|_| ())
}

fn kvm_parameter_writes_by_another_process_wake_every_recovery_thread() -> CaseResult {
    let _params = Params::save()?;
    // Recovery off: the threads sleep until woken. Every period below is longer than the case.
    set_param(NX, "N")?;
    set_param(RATIO, "60")?;
    set_param(PERIOD, "0")?;
    let me = procfs::self_pid();
    // The other VMM first, so that it does not inherit this one's VM fds.
    let (_other, theirs) = spawn_vmm(2, false)?;
    let mut vms = vec![Vm::new()?, Vm::new()?];
    for vm in &mut vms {
        vm.run_guest().map_err(|e| format!("KVM_RUN: {e}"))?;
    }
    let mut threads = recovery_threads(me);
    ensure(threads.len() == 2, || {
        format!("{} {COMM} for 2 VMs", threads.len())
    })?;
    threads.extend(&theirs);
    let snapshot =
        |ts: &[i32]| -> Result<Vec<i64>, String> { ts.iter().map(|&t| sleeps(t)).collect() };
    // Settle: every thread has gone to sleep after its creation.
    std::thread::sleep(Duration::from_millis(300));
    let quiet = |what: &str| -> Result<(), String> {
        let a = snapshot(&threads)?;
        std::thread::sleep(Duration::from_millis(700));
        let b = snapshot(&threads)?;
        ensure(a == b, || {
            format!("{what}: the threads {threads:?} woke up: sleeps {a:?} -> {b:?}")
        })
    };
    quiet("with recovery off and nothing written")?;
    // (parameter, value, whether KVM wakes the threads): nx_huge_pages wakes when it changes;
    // the ratio and the period when recovery is on and its period gets shorter (60 s at ratio
    // 60 and period 0, 30 s at ratio 120, then 20 s; 25 s is longer).
    let writes = [
        (NX, "Y", true),
        (RATIO, "120", true),
        (PERIOD, "20000", true),
        (PERIOD, "25000", false),
        (RATIO, "60", false),
        (NX, "Y", false),
        (NX, "N", true),
    ];
    let mut log = Vec::new();
    for (name, value, wakes) in writes {
        let before = snapshot(&threads)?;
        write_from_another_process(name, value)?;
        if wakes {
            let mut now = before.clone();
            let woke = procfs::wait_for(Duration::from_secs(10), || {
                now = snapshot(&threads).unwrap_or_default();
                now.len() == before.len() && now.iter().zip(&before).all(|(n, b)| n > b)
            });
            ensure(woke, || {
                format!(
                    "{name}={value} from another process did not wake every {COMM}: sleeps of {threads:?} {before:?} -> {now:?}"
                )
            })?;
            log.push(format!("{name}={value} woke all 4"));
            std::thread::sleep(Duration::from_millis(200));
        } else {
            quiet(&format!("{name}={value}, which must not wake"))?;
            log.push(format!("{name}={value} none"));
        }
    }
    Ok(format!(
        "{COMM} {threads:?} of two VMMs with two VMs each, writes by a third process: {}",
        log.join(", ")
    ))
}

fn kvm_close_of_the_vm_stops_its_recovery_thread() -> CaseResult {
    let _params = Params::save()?;
    let me = procfs::self_pid();
    let mut out = Vec::new();
    // Recovery off: the thread sleeps in the vhost_task loop; on: in KVM's work function,
    // in schedule_timeout() until the next period.
    for (nx, period, what) in [
        ("N", "0", "asleep in the vhost_task loop"),
        ("Y", "60000", "asleep in schedule_timeout()"),
    ] {
        set_param(NX, nx)?;
        set_param(PERIOD, period)?;
        let mut vm = Vm::new()?;
        vm.run_guest().map_err(|e| format!("KVM_RUN: {e}"))?;
        let w = recovery_thread(me)?;
        std::thread::sleep(Duration::from_millis(200));
        let state = procfs::state(w).ctx("state")?;
        drop(vm);
        let gone = procfs::wait_gone(w, T).ok_or_else(|| {
            format!(
                "{COMM} {w} ({what}) still there {} s after the VM closed",
                T.as_secs()
            )
        })?;
        let n = procfs::threads(me).ctx("threads")?.len();
        ensure(n == 1, || format!("{n} threads left in the VMM"))?;
        out.push(format!(
            "nx_huge_pages={nx}: {w} (state {state}, {what}) gone {} ms after close",
            gone.as_millis()
        ));
    }
    Ok(out.join("; "))
}

fn kvm_sigkill_of_a_running_vmm_reaps_it_with_its_recovery_thread() -> CaseResult {
    let (mut rd, wr) = std::io::pipe().ctx("pipe")?;
    let mut child = fork(move || {
        let r = (|| -> Result<RunError, String> {
            let mut vm = Vm::new()?;
            vm.run_guest().map_err(|e| format!("KVM_RUN: {e}"))?;
            let w = recovery_thread(procfs::self_pid())?;
            (&wr).write_all(&w.to_ne_bytes()).ctx("pipe")?;
            // The guest spins in KVM_RUN until the signal.
            Ok(vm.spin())
        })();
        match r {
            Ok(e) => println!("# VMM: the spinning KVM_RUN returned: {e}"),
            Err(e) => println!("# VMM: {e}"),
        }
        1
    })
    .ctx("fork")?;
    let w = read_tid(&mut rd)?;
    // Let the guest spin a little, then check that the vCPU thread is in KVM_RUN.
    std::thread::sleep(Duration::from_millis(300));
    let sc = fs::read_to_string(format!("/proc/{}/syscall", child.pid)).unwrap_or_default();
    let ms = child
        .sigkill_and_reap(Duration::from_secs(30))
        .map_err(|e| format!("the VMM {e}"))?
        .as_millis();
    ensure(!procfs::exists(w), || {
        format!("{COMM} {w} outlived its reaped VMM")
    })?;
    let left = all_recovery_threads();
    ensure(!left.contains(&w), || format!("{COMM} left: {left:?}"))?;
    Ok(format!(
        "VMM {} killed with its guest spinning in KVM_RUN (/proc/PID/syscall: {}), reaped with {w} {COMM} in {ms} ms",
        child.pid,
        sc.split_whitespace().next().unwrap_or("?")
    ))
}

fn kvm_64_vms_in_one_vmm_have_64_recovery_threads_gone_after_close() -> CaseResult {
    const N: usize = 64;
    let me = procfs::self_pid();
    let t0 = Instant::now();
    let mut vms = (0..N).map(|_| Vm::new()).collect::<Result<Vec<_>, _>>()?;
    ensure(recovery_threads(me).is_empty(), || {
        format!("{COMM} threads before any KVM_RUN")
    })?;
    for (i, vm) in vms.iter_mut().enumerate() {
        vm.run_guest()
            .map_err(|e| format!("KVM_RUN of VM {i}: {e}"))?;
    }
    let made = t0.elapsed().as_secs_f32();
    let ws = recovery_threads(me);
    ensure(ws.len() == N, || {
        format!("{} {COMM} threads for {N} VMs", ws.len())
    })?;
    for &w in &ws {
        check_worker(me, w)?;
    }
    let n = procfs::threads(me).ctx("threads")?.len();
    ensure(n == N + 1, || {
        format!("the VMM has {n} threads, want {}", N + 1)
    })?;
    drop(vms);
    let t1 = Instant::now();
    ensure(
        procfs::wait_for(Duration::from_secs(30), || {
            ws.iter().all(|&w| !procfs::exists(w))
        }),
        || {
            let left: Vec<_> = ws.iter().filter(|&&w| procfs::exists(w)).collect();
            format!("{COMM} threads {left:?} still there 30 s after the VMs closed")
        },
    )?;
    let n = procfs::threads(me).ctx("threads")?.len();
    ensure(n == 1, || format!("the VMM has {n} threads after close"))?;
    Ok(format!(
        "{N} VMs made and run in {made:.1} s: {N} {COMM} threads of the VMM, each a user worker in its cgroup and namespaces; all gone {} ms after close",
        t1.elapsed().as_millis()
    ))
}

/// Where scripts/build-kvm-selftest.sh left nx_huge_pages_test and its wrapper for the
/// running kernel's tree: $VT_KVM_SELFTEST, else build/selftests-kvm-<major.minor> of the
/// clone this binary was built in.
fn selftest_dir() -> Result<PathBuf, String> {
    match std::env::var("VT_KVM_SELFTEST").as_deref() {
        Ok("failed") => {
            return Err(
                "scripts/build-kvm-selftest.sh failed on the host (scripts/test.sh says so): see build/log/selftests-kvm-*.log".into(),
            )
        }
        Ok(d) => return Ok(d.into()),
        Err(_) => {}
    }
    let exe = std::env::current_exe().ctx("current_exe")?;
    let root = exe
        .ancestors()
        .find(|a| a.file_name().is_some_and(|n| n == "target"))
        .and_then(Path::parent)
        .ok_or_else(|| format!("{} is not under a target/ directory", exe.display()))?;
    let release = fs::read_to_string("/proc/sys/kernel/osrelease").ctx("osrelease")?;
    let series: Vec<&str> = release.trim().split(['.', '-', '+']).take(2).collect();
    Ok(root
        .join("build")
        .join(format!("selftests-kvm-{}", series.join("."))))
}

fn selftest_files() -> Result<(PathBuf, PathBuf), String> {
    let dir = selftest_dir()?;
    let (bin, sh) = (
        dir.join("nx_huge_pages_test"),
        dir.join("nx_huge_pages_test.sh"),
    );
    for f in [&bin, &sh] {
        ensure(f.is_file(), || {
            format!(
                "no {}: scripts/build-kvm-selftest.sh did not run for this tree, or failed (its log: build/log/selftests-kvm-*.log)",
                f.display()
            )
        })?;
    }
    Ok((bin, sh))
}

const HUGEPAGES: &str = "/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages";

/// Runs a selftest command, prints its output as TAP comments, returns its status and output.
fn run_selftest(cmd: &mut std::process::Command) -> Result<(i32, String), String> {
    let t0 = Instant::now();
    let out = cmd.output().ctx("run the selftest")?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for l in text.lines() {
        println!("# selftest: {l}");
    }
    let rc = out.status.code().unwrap_or_else(|| {
        128 + std::os::unix::process::ExitStatusExt::signal(&out.status).unwrap_or(0)
    });
    println!(
        "# selftest: exit status {rc} after {:.1} s",
        t0.elapsed().as_secs_f32()
    );
    Ok((rc, text))
}

/// The last line of the selftest's output that says something.
fn last_words(text: &str) -> String {
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
        .to_string()
}

fn selftest_verdict(what: &str, rc: i32, text: &str, secs: f32) -> CaseResult {
    match rc {
        0 => Ok(format!("{what}: exit 0 in {secs:.1} s")),
        4 => Err(format!(
            "{what}: skipped itself (KSFT_SKIP): {}",
            last_words(text)
        )),
        _ => Err(format!(
            "{what}: exit status {rc} in {secs:.1} s: {}",
            last_words(text)
        )),
    }
}

fn kvm_upstream_nx_huge_pages_test_sh_passes() -> CaseResult {
    let (_, sh) = selftest_files()?;
    // The wrapper restores them itself; this is for a wrapper killed halfway.
    let _params = Params::save()?;
    let pages = fs::read_to_string(HUGEPAGES).ctx(HUGEPAGES)?;
    let t0 = Instant::now();
    let r = run_selftest(std::process::Command::new("bash").arg(&sh));
    let secs = t0.elapsed().as_secs_f32();
    let restored = fs::write(HUGEPAGES, pages.trim()).ctx("restore nr_hugepages");
    let (rc, text) = r?;
    restored?;
    ensure(
        text.contains("Running test with CAP_SYS_BOOT enabled"),
        || format!("the wrapper did not run the test: {}", last_words(&text)),
    )?;
    selftest_verdict(
        &format!(
            "{} as root (-t 887563923 -p 100 -r: NX huge pages on, then disabled by KVM_CAP_VM_DISABLE_NX_HUGE_PAGES)",
            sh.display()
        ),
        rc,
        &text,
        secs,
    )
}

fn kvm_upstream_nx_huge_pages_test_without_cap_sys_boot_passes() -> CaseResult {
    const USER: u32 = 4345;
    let (bin, _) = selftest_files()?;
    // What the wrapper sets up as root, then the test as a user without CAP_SYS_BOOT: the
    // wrapper's second half, which it only runs when not root (through sudo).
    let _params = Params::save()?;
    let pages = fs::read_to_string(HUGEPAGES).ctx(HUGEPAGES)?;
    let n: u64 = pages
        .trim()
        .parse()
        .map_err(|_| format!("{HUGEPAGES}: {pages:?}"))?;
    set_param(NX, "1")?;
    set_param(RATIO, "1")?;
    set_param(PERIOD, "100")?;
    fs::write(HUGEPAGES, (n + 3).to_string()).ctx(HUGEPAGES)?;
    let kvm_mode = fs::metadata("/dev/kvm")
        .ctx("/dev/kvm")?
        .permissions()
        .mode();
    fs::set_permissions("/dev/kvm", fs::Permissions::from_mode(0o666)).ctx("chmod /dev/kvm")?;
    // std drops the supplementary groups and sets the real, effective and saved gid and uid
    // (setgroups(0), setgid, setuid as root) between the fork and the exec.
    let mut cmd = std::process::Command::new(&bin);
    cmd.args(["-t", "887563923", "-p", "100"])
        .uid(USER)
        .gid(USER);
    let t0 = Instant::now();
    let r = run_selftest(&mut cmd);
    let secs = t0.elapsed().as_secs_f32();
    let restored = fs::set_permissions("/dev/kvm", fs::Permissions::from_mode(kvm_mode & 0o7777))
        .ctx("restore the mode of /dev/kvm")
        .and_then(|()| fs::write(HUGEPAGES, pages.trim()).ctx("restore nr_hugepages"));
    let (rc, text) = r?;
    restored?;
    selftest_verdict(
        &format!(
            "{} -t 887563923 -p 100 as uid {USER} (NX huge pages on; disabling them refused with EPERM)",
            bin.display()
        ),
        rc,
        &text,
        secs,
    )
}
