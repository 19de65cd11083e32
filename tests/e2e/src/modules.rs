// SPDX-License-Identifier: GPL-2.0
//! The modular shape distributions ship: vhost, its drivers, tun and KVM as modules calling the
//! built-in vhost_task, and the user-worker abstraction driven from user space through the
//! project's Rust module `user_worker_test` (`/dev/user-worker-test`).
//!
//! `tests/guest/init.sh` loads the modules with `modprobe` at boot; the cases here unload and
//! load them again, and leave them loaded.

use crate::cases::{spawn_busy_owner_on, worker_thread};
use crate::harness::{case, ensure, fork, Case, CaseResult, Context};
use crate::ioctls;
use crate::kmsg::{self, Kmsg};
use crate::netdev::{self, Config, NetDev};
use crate::procfs::{self, PF_KTHREAD, PF_USER_WORKER};
use crate::tap::{PacketSocket, Tap};
use nix::errno::Errno;
use nix::kmod::{delete_module as nix_delete_module, finit_module, init_module as nix_init_module};
use nix::kmod::{DeleteModuleFlags, ModuleInitFlags};
use nix::sys::signal::Signal;
use std::ffi::CString;
use std::fs;
use std::io::{self, Write};
use std::os::unix::io::AsRawFd;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(10);

/// The cases of `vhost-e2e test`.
pub fn cases() -> Vec<Case> {
    vec![
        case!(vhost_tun_and_kvm_are_modules_on_the_built_in_vhost_task, 60),
        case!(the_booted_vhost_task_create_is_the_built_implementation, 60),
        case!(
            rmmod_vhost_net_with_a_device_open_is_refused_and_the_worker_serves_on,
            300
        ),
        case!(
            rmmod_vhost_right_after_close_or_sigkill_of_the_owner_x10,
            600
        ),
        case!(fork_from_owner_default_picks_the_mode_of_new_devices, 120),
        case!(
            modversions_refuse_a_vhost_ko_whose_crc_of_vhost_task_create_disagrees,
            120
        ),
        case!(
            rmmod_kvm_right_after_vms_whose_recovery_threads_ran_x10,
            600,
            crate::kvm::missing
        ),
        case!(
            user_worker_module_worker_is_a_user_worker_thread_of_the_caller,
            60
        ),
        case!(user_worker_module_poke_wakes_the_waiting_worker, 60),
        case!(user_worker_module_stop_waits_for_the_worker_to_exit, 60),
        case!(
            user_worker_module_sigkill_ends_waiting_workers_without_warning,
            60
        ),
        case!(
            user_worker_module_unloads_only_once_its_files_are_closed,
            60
        ),
        case!(
            user_worker_module_unloads_while_its_workers_still_exit_x10,
            120
        ),
    ]
}

/// The modules the guest's init loaded, and the module of each other than vhost_task's
/// users that they depend on.
const MODULES: [&str; 9] = [
    "vhost",
    "vhost_iotlb",
    "vhost_net",
    "vhost_vsock",
    "vhost_scsi",
    "tun",
    "kvm",
    "kvm_amd",
    "user_worker_test",
];

/// `/proc/modules`: name, then the rest of the line.
fn loaded() -> Result<Vec<(String, String)>, String> {
    Ok(fs::read_to_string("/proc/modules")
        .ctx("/proc/modules")?
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(n, rest)| (n.to_string(), rest.to_string()))
        .collect())
}

fn is_loaded(name: &str) -> bool {
    loaded().is_ok_and(|m| m.iter().any(|(n, _)| n == name))
}

/// Threads of user processes, vhost's and KVM's workers among them: not kthreads, which
/// module loads add and workqueues retire at their own pace.
fn user_threads() -> usize {
    procfs::threads_where(|t| procfs::is_kthread(t.tid).is_ok_and(|k| !k)).len()
}

/// `modprobe NAME`, from the host's kmod over the guest's /lib/modules.
pub fn modprobe(name: &str) -> Result<(), String> {
    run_modprobe(&[name]).map(drop)
}

/// Runs the host's `modprobe` with `args`; what it printed, or why it failed.
fn run_modprobe(args: &[&str]) -> Result<String, String> {
    let out = std::process::Command::new("modprobe")
        .args(args)
        .output()
        .ctx("modprobe")?;
    ensure(out.status.success(), || {
        format!(
            "modprobe {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )
    })?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `delete_module(name, O_NONBLOCK)`, what `rmmod` calls: Ok, or the errno.
pub fn delete_module(name: &str) -> Result<(), i32> {
    let c = CString::new(name).expect("module name");
    nix_delete_module(&c, DeleteModuleFlags::O_NONBLOCK).map_err(|e| e as i32)
}

/// Unloads `name`, retrying for up to 5 s while it is still in use (a release still running).
/// Returns how many refusals came first.
pub fn unload(name: &str) -> Result<u32, String> {
    let end = Instant::now() + Duration::from_secs(5);
    let mut refused = 0;
    loop {
        match delete_module(name) {
            // Not loaded (any more): nothing to unload.
            Ok(()) | Err(libc::ENOENT) => return Ok(refused),
            Err(e) if e == libc::EWOULDBLOCK && Instant::now() < end => {
                refused += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => {
                return Err(format!(
                    "rmmod {name}: {} (still in use 5 s after its last user)",
                    io::Error::from_raw_os_error(e)
                ))
            }
        }
    }
}

fn vhost_tun_and_kvm_are_modules_on_the_built_in_vhost_task() -> CaseResult {
    let mods = loaded()?;
    let missing: Vec<_> = MODULES
        .iter()
        .filter(|m| !mods.iter().any(|(n, _)| n == *m))
        .collect();
    ensure(missing.is_empty(), || format!("not loaded: {missing:?}"))?;
    // "name size refcount users state address": vhost's users are its drivers.
    let users = &mods.iter().find(|(n, _)| n == "vhost").ok_or("vhost")?.1;
    for d in ["vhost_net", "vhost_vsock", "vhost_scsi"] {
        ensure(users.split([' ', ',']).any(|u| u == d), || {
            format!("{d} does not use vhost: vhost {users}")
        })?;
    }
    // The ABI is built in: its symbols have no [module] tag in kallsyms.
    let kallsyms = fs::read_to_string("/proc/kallsyms").ctx("/proc/kallsyms")?;
    for f in [
        "vhost_task_create",
        "vhost_task_start",
        "vhost_task_stop",
        "vhost_task_wake",
    ] {
        let line = kallsyms
            .lines()
            .find(|l| l.split_whitespace().nth(2) == Some(f))
            .ok_or_else(|| format!("{f} not in /proc/kallsyms"))?;
        ensure(!line.contains('['), || {
            format!("{f} is in a module: {line}")
        })?;
    }
    Ok(format!(
        "{} modules loaded by modprobe; vhost_task_* built in",
        MODULES.len()
    ))
}

/// Address and name of every text symbol in /proc/kallsyms.
fn text_symbols() -> Result<Vec<(u64, String)>, String> {
    let k = fs::read_to_string("/proc/kallsyms").ctx("/proc/kallsyms")?;
    Ok(k.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let a = u64::from_str_radix(f.next()?, 16).ok()?;
            let t = f.next()?;
            let n = f.next()?;
            (t == "T" || t == "t").then(|| (a, n.to_string()))
        })
        .collect())
}

fn the_booted_vhost_task_create_is_the_built_implementation() -> CaseResult {
    let syms = text_symbols()?;
    let addr = |name: &str| syms.iter().find(|(_, n)| n == name).map(|(a, _)| *a);
    let create = addr("vhost_task_create").ok_or("no vhost_task_create")?;
    ensure(create != 0, || {
        "kallsyms hides addresses (kptr_restrict)".into()
    })?;
    let rust: Vec<u64> = syms
        .iter()
        .filter(|(_, n)| n.contains("vhost_task_rust"))
        .map(|(a, _)| *a)
        .collect();
    if rust.is_empty() {
        // The C implementation: vhost_task_create sits next to vhost_task_fn, kernel/vhost_task.c.
        let f = addr("vhost_task_fn").ok_or("neither Rust symbols nor vhost_task_fn")?;
        ensure(create.abs_diff(f) < 4096, || {
            format!("vhost_task_create {create:#x} is far from vhost_task_fn {f:#x}")
        })?;
        return Ok("C: vhost_task_create is kernel/vhost_task.c's, next to vhost_task_fn".into());
    }
    let (lo, hi) = (*rust.iter().min().unwrap(), *rust.iter().max().unwrap());
    ensure(lo <= create && create <= hi + 4096, || {
        format!("vhost_task_create {create:#x} outside the Rust crate's text {lo:#x}..{hi:#x}")
    })?;
    ensure(addr("vhost_task_fn").is_none(), || {
        "the C vhost_task_fn is in the kernel too".into()
    })?;
    Ok(format!(
        "Rust: vhost_task_create {create:#x} within vhost_task_rust's {} symbols",
        rust.len()
    ))
}

fn rmmod_vhost_net_with_a_device_open_is_refused_and_the_worker_serves_on() -> CaseResult {
    let tap = Tap::new("vt-rmmod").ctx("tap")?;
    let sock = PacketSocket::new(tap.ifindex).ctx("packet socket")?;
    let mut dev = NetDev::new(&tap, Config::task(true)).ctx("vhost-net")?;
    let w = worker_thread(procfs::self_pid())?;
    let deadline = Instant::now() + Duration::from_secs(200);
    let before = netdev::transmit(&mut dev, &sock, 200, deadline)?;
    let e = delete_module("vhost_net").err();
    ensure(e == Some(libc::EWOULDBLOCK), || {
        format!("delete_module(vhost_net) with a device open: {e:?}, not EWOULDBLOCK")
    })?;
    let e = delete_module("vhost").err();
    ensure(e == Some(libc::EWOULDBLOCK), || {
        format!("delete_module(vhost) while vhost_net uses it: {e:?}")
    })?;
    ensure(is_loaded("vhost_net") && procfs::exists(w), || {
        "vhost_net or its worker went away".into()
    })?;
    let tx = netdev::transmit(&mut dev, &sock, 200, deadline)?;
    let rx = netdev::receive(&mut dev, &sock, 200, deadline)?;
    Ok(format!(
        "rmmod refused (EWOULDBLOCK: in use); worker {w} served {before} frames before, {tx} tx + {rx} rx after"
    ))
}

/// The file range of the contents of section `name` of the ELF64 file `elf`, if it has one.
fn elf_section(elf: &[u8], name: &str) -> Option<std::ops::Range<usize>> {
    let u16_at = |o: usize| Some(u16::from_le_bytes(elf.get(o..o + 2)?.try_into().ok()?));
    let u32_at = |o: usize| Some(u32::from_le_bytes(elf.get(o..o + 4)?.try_into().ok()?));
    let u64_at =
        |o: usize| usize::try_from(u64::from_le_bytes(elf.get(o..o + 8)?.try_into().ok()?)).ok();
    if elf.get(..5)? != b"\x7fELF\x02" {
        return None;
    }
    // e_shoff, e_shentsize, e_shnum and e_shstrndx of the ELF header.
    let shoff = u64_at(0x28)?;
    let (entsize, num, strndx) = (u16_at(0x3a)?, u16_at(0x3c)?, u16_at(0x3e)?);
    let header = |i: u16| shoff + usize::from(i) * usize::from(entsize);
    // sh_offset and sh_size of a section header.
    let range = |i: u16| {
        let start = u64_at(header(i) + 0x18)?;
        Some(start..start.checked_add(u64_at(header(i) + 0x20)?)?)
    };
    let strtab = elf.get(range(strndx)?)?;
    (0..num)
        .find_map(|i| {
            let n = strtab.get(usize::try_from(u32_at(header(i))?).ok()?..)?;
            let n = &n[..n.iter().position(|&b| b == 0)?];
            (n == name.as_bytes()).then(|| range(i)).flatten()
        })
        .filter(|r| r.end <= elf.len())
}

/// Turns the CRC that the module file `ko` records for its import `sym` into one that
/// disagrees with the kernel's, in the extended symbol versions of 7.3's MODVERSIONS (the
/// ones the kernel checks when a module has them, kernel/module/version.c). Returns the CRC
/// it had, or None if `ko` records no extended versions.
fn spoil_crc(ko: &mut [u8], sym: &str) -> Result<Option<u32>, String> {
    let (Some(names), Some(crcs)) = (
        elf_section(ko, "__version_ext_names"),
        elf_section(ko, "__version_ext_crcs"),
    ) else {
        return Ok(None);
    };
    // The i-th name, NUL-terminated, goes with the i-th 32-bit CRC.
    let i = ko[names]
        .split(|&b| b == 0)
        .position(|n| n == sym.as_bytes())
        .ok_or_else(|| format!("no symbol version for {sym}"))?;
    let at = crcs.start + 4 * i;
    let crc = ko
        .get(at..at + 4)
        .filter(|_| at + 4 <= crcs.end)
        .ok_or("__version_ext_crcs is too short")?;
    let crc = u32::from_le_bytes(crc.try_into().expect("4 bytes"));
    ko[at..at + 4].copy_from_slice(&(!crc).to_le_bytes());
    Ok(Some(crc))
}

/// `init_module()` of a module image in memory, with no parameters: Ok, or the errno.
fn init_module(image: &[u8]) -> Result<(), i32> {
    nix_init_module(image, c"").map_err(|e| e as i32)
}

fn modversions_refuse_a_vhost_ko_whose_crc_of_vhost_task_create_disagrees() -> CaseResult {
    const SYM: &str = "vhost_task_create";
    let vhost = Loader::new("vhost")?;
    let path = vhost.file("vhost").ok_or("modprobe names no vhost.ko")?;
    let ko = fs::read(path.to_str().ctx("path")?).ctx("vhost.ko")?;
    let mut spoilt = ko.clone();
    let Some(crc) = spoil_crc(&mut spoilt, SYM)? else {
        return crate::harness::skip(
            "vhost.ko records no extended symbol versions: a kernel without MODVERSIONS (make modversions has them)",
        );
    };
    unload_vhost()?;
    let mut log = Kmsg::from_now().ctx("/dev/kmsg")?;
    let refused = init_module(&spoilt).err();
    // The file as installed loads; then the drivers, for the cases that follow.
    let as_installed = init_module(&ko);
    load_vhost(&[])?;
    ensure(refused == Some(libc::EINVAL), || {
        format!("init_module of vhost.ko with the CRC of {SYM} spoilt: {refused:?}, not EINVAL")
    })?;
    as_installed.map_err(|e| {
        format!(
            "init_module of vhost.ko as installed: {}",
            io::Error::from_raw_os_error(e)
        )
    })?;
    let why = format!("vhost: disagrees about version of symbol {SYM}");
    ensure(log.read_new().iter().any(|l| l.contains(&why)), || {
        format!("no \"{why}\" in the kernel log")
    })?;
    Ok(format!(
        "{SYM}'s CRC {crc:#010x} in vhost.ko turned to {:#010x}: EINVAL, \"{why}\"; the file as installed loads",
        !crc
    ))
}

/// The first half of a round of the module unload race: an owner with traffic through
/// `tap` closes its device, or is SIGKILLed once `kill_after` frames went out while it goes
/// on sending, and is reaped.
fn vhost_owner_goes(kill: bool, tap: &Tap, kill_after: u32) -> Result<(), String> {
    if kill {
        let (mut child, w) = spawn_busy_owner_on(tap, kill_after, || Ok(()))?;
        child
            .kill_and_wait(Signal::SIGKILL, T)
            .map_err(|e| format!("owner {e}"))?;
        ensure(!procfs::exists(w), || "worker outlived its owner".into())
    } else {
        // A socket of this round's own, which sees no frame of an earlier one.
        let sock = PacketSocket::new(tap.ifindex).ctx("packet socket")?;
        let mut dev = NetDev::new(tap, Config::task(true)).ctx("vhost-net")?;
        let end = Instant::now() + Duration::from_secs(60);
        netdev::transmit(&mut dev, &sock, 20, end).map(drop)
    }
}

/// One round of the module unload race, on a tap of its own: an owner with traffic is
/// closed (or SIGKILLed), and vhost_net and vhost are unloaded at once, then loaded again.
/// Returns the refusals seen.
pub fn unload_race_round(kill: bool, tapname: &str) -> Result<u32, String> {
    let tap = Tap::new(tapname).ctx("tap")?;
    vhost_owner_goes(kill, &tap, 200)?;
    drop(tap);
    let refused = unload_vhost();
    // Loaded again even after a failure, for the cases that follow.
    load_vhost(&[])?;
    refused
}

/// The drivers on vhost, which must go before it.
const VHOST_DRIVERS: [&str; 3] = ["vhost_net", "vhost_vsock", "vhost_scsi"];

/// Where vhost_scsi's fabric appears in LIO's configfs once a target used it: LIO holds the
/// module while the directory is there.
const VHOST_FABRIC: &str = "/sys/kernel/config/target/vhost";

/// Unloads vhost_net, then the other drivers, then vhost. Returns the refusals seen.
pub fn unload_vhost() -> Result<u32, String> {
    // Empty once the cases' targets are gone; a lasting target keeps it, and vhost_scsi.
    if std::path::Path::new(VHOST_FABRIC).exists() {
        fs::remove_dir(VHOST_FABRIC).ctx(VHOST_FABRIC)?;
    }
    let mut refused = 0;
    for m in VHOST_DRIVERS.iter().chain(&["vhost"]) {
        refused += unload(m)?;
    }
    ensure(!is_loaded("vhost_net") && !is_loaded("vhost"), || {
        "still loaded after rmmod".into()
    })?;
    Ok(refused)
}

/// Loads vhost with `params`, then its drivers.
pub fn load_vhost(params: &[&str]) -> Result<(), String> {
    run_modprobe(&[&["vhost"], params].concat())?;
    VHOST_DRIVERS.iter().try_for_each(|m| modprobe(m))
}

/// A module and those it needs, loaded the way modprobe loads them, by `finit_module()` of the
/// files `modprobe --show-depends` names, but without a modprobe process per load: the stress
/// loops load modules a thousand times.
pub struct Loader {
    /// Each module's name and file, those it needs first.
    files: Vec<(String, CString)>,
}

impl Loader {
    /// Resolves `name` and what it needs to their files under /lib/modules.
    pub fn new(name: &str) -> Result<Self, String> {
        let out = run_modprobe(&["--show-depends", name])?;
        let mut files = Vec::new();
        // "insmod /lib/modules/VERSION/kernel/drivers/vhost/vhost.ko " per module.
        for l in out.lines() {
            let Some(path) = l
                .strip_prefix("insmod ")
                .and_then(|r| r.split_whitespace().next())
            else {
                continue;
            };
            let stem = path.rsplit('/').next().unwrap_or(path);
            let m = stem
                .strip_suffix(".ko")
                .ok_or_else(|| format!("{path}: not an uncompressed .ko"))?;
            files.push((m.replace('-', "_"), CString::new(path).expect("path")));
        }
        ensure(!files.is_empty(), || format!("{name}: no module file"))?;
        Ok(Self { files })
    }

    /// The file of module `m`, one of those this loader loads.
    pub fn file(&self, m: &str) -> Option<&CString> {
        self.files.iter().find(|(n, _)| n == m).map(|(_, f)| f)
    }

    /// Loads each module that is not loaded yet.
    pub fn load(&self) -> Result<(), String> {
        for (m, path) in &self.files {
            if std::path::Path::new(&format!("/sys/module/{m}/initstate")).exists() {
                continue;
            }
            let file = fs::File::open(path.to_str().ctx("path")?).ctx(&format!("{path:?}"))?;
            match finit_module(&file, c"", ModuleInitFlags::empty()) {
                // EEXIST: loaded meanwhile (by a dependency's load, or udev).
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(format!("finit_module {path:?}: {e}")),
            }
        }
        Ok(())
    }
}

fn rmmod_vhost_right_after_close_or_sigkill_of_the_owner_x10() -> CaseResult {
    let base = user_threads();
    let mut refused = 0;
    for i in 0..10 {
        refused += unload_race_round(i % 2 == 1, "vt-unload")?;
    }
    ensure(procfs::wait_for(T, || user_threads() <= base), || {
        "user threads above the baseline".into()
    })?;
    Ok(format!(
        "10 rounds (5 closed, 5 SIGKILLed); rmmod refused {refused} times before it went"
    ))
}

/// The first half of a round of the module unload race for KVM: a VMM whose VMs' recovery threads ran
/// closes its VM (the stop path) or is SIGKILLed (the kill path).
fn kvm_owner_goes(kill: bool) -> Result<(), String> {
    if kill {
        let (mut child, ws) = crate::kvm::spawn_vmm(2, false)?;
        child
            .kill_and_wait(Signal::SIGKILL, T)
            .map_err(|e| format!("VMM {e}"))?;
        ensure(ws.iter().all(|&w| !procfs::exists(w)), || {
            "a recovery thread outlived its VMM".into()
        })?;
    } else {
        crate::kvm::in_child(T, || {
            let mut vm = crate::kvm::Vm::new()?;
            vm.run_guest().map_err(|e| format!("KVM_RUN: {e}"))?;
            let w = crate::kvm::recovery_thread(procfs::self_pid())?;
            drop(vm);
            ensure(procfs::wait_for(T, || !procfs::exists(w)), || {
                "the recovery thread outlived its VM".into()
            })?;
            Ok(String::new())
        })?;
    }
    Ok(())
}

/// The second half of a round of the module unload race: `mods` are unloaded at once, in order, and
/// `load` loads them again. Returns the refusals seen.
fn unload_and_load(
    mods: &[&str],
    load: impl FnOnce() -> Result<(), String>,
) -> Result<u32, String> {
    let refused = mods
        .iter()
        .try_fold(0, |n, m| Ok::<_, String>(n + unload(m)?));
    let last = mods.last().expect("a module to unload");
    let gone = !is_loaded(last);
    load()?;
    ensure(gone, || format!("{last} still loaded after rmmod"))?;
    refused
}

/// One round of the module unload race for KVM, with modprobe. Returns the refusals seen.
pub fn kvm_unload_race_round(kill: bool) -> Result<u32, String> {
    kvm_owner_goes(kill)?;
    unload_and_load(&["kvm_amd", "kvm"], || modprobe("kvm_amd"))
}

fn rmmod_kvm_right_after_vms_whose_recovery_threads_ran_x10() -> CaseResult {
    let base = user_threads();
    let mut refused = 0;
    for i in 0..10 {
        refused += kvm_unload_race_round(i % 2 == 1)?;
    }
    ensure(procfs::wait_for(T, || user_threads() <= base), || {
        "user threads above the baseline".into()
    })?;
    Ok(format!(
        "10 rounds (5 VMs closed, 5 VMMs SIGKILLed); rmmod refused {refused} times before it went"
    ))
}

const FORK_DEFAULT: &str = "/sys/module/vhost/parameters/fork_from_owner_default";

/// The mode of a new vhost-net device's worker, and whether its worker is a kthread.
fn new_device_mode() -> Result<(u8, bool), String> {
    let me = procfs::self_pid();
    let net = crate::sys::open_vhost_net()?;
    let mode = ioctls::get_fork_from_owner(&net).ctx("VHOST_GET_FORK_FROM_OWNER")?;
    ioctls::set_owner(&net).ctx("VHOST_SET_OWNER")?;
    let name = format!("vhost-{me}");
    let mut kthread = None;
    procfs::wait_for(T, || {
        kthread = procfs::find_by_comm(&name)
            .first()
            .and_then(|&t| procfs::is_kthread(t).ok());
        kthread.is_some()
    });
    let kthread = kthread.ok_or("no worker")?;
    drop(net);
    Ok((mode, kthread))
}

fn fork_from_owner_default_picks_the_mode_of_new_devices() -> CaseResult {
    // A read-only parameter (0444): it is set when vhost is loaded.
    let r = (|| {
        unload_vhost()?;
        load_vhost(&["fork_from_owner_default=0"])?;
        let p0 = fs::read_to_string(FORK_DEFAULT).ctx(FORK_DEFAULT)?;
        let (m0, k0) = new_device_mode()?;
        unload_vhost()?;
        load_vhost(&["fork_from_owner_default=1"])?;
        let p1 = fs::read_to_string(FORK_DEFAULT).ctx(FORK_DEFAULT)?;
        let (m1, k1) = new_device_mode()?;
        ensure(
            p0.trim() == "N" && m0 == ioctls::FORK_OWNER_KTHREAD && k0,
            || format!("fork_from_owner_default=0: parameter {p0:?}, mode {m0}, kthread {k0}"),
        )?;
        ensure(
            p1.trim() == "Y" && m1 != ioctls::FORK_OWNER_KTHREAD && !k1,
            || format!("fork_from_owner_default=1: parameter {p1:?}, mode {m1}, kthread {k1}"),
        )?;
        Ok("modprobe vhost fork_from_owner_default=0: new devices get a kthread; =1: a thread of the owner".to_string())
    })();
    // Back to the default, whatever happened. Ignored: an unload that fails leaves vhost
    // loaded with the parameter of the case, and then the load below finds it there and
    // fails, with the reason.
    let _ = unload_vhost();
    load_vhost(&[])?;
    r
}

/// The ioctls of `/dev/user-worker-test` (tests/module/user_worker_test.rs).
const fn io(nr: u64) -> u64 {
    ((b'W' as u64) << 8) | nr
}
const UWT_CREATE: u64 = io(1);
const UWT_TID: u64 = io(2);
const UWT_RUNS: u64 = io(3);
const UWT_POKE: u64 = io(4);
const UWT_STOP: u64 = io(5);
/// Makes a vhost task whose kill handler takes a lock that the module holds across
/// `vhost_task_stop()` (the lockdep case).
pub const UWT_VHOST_KILL_INVERSION: u64 = io(6);
/// `UWT_CREATE` with a worker named `exit-delay-uwt`: with `CONFIG_USER_WORKER_EXIT_DELAY_TEST`,
/// it lingers 50 ms after it reported its exit, and warns if it would return into freed text.
const UWT_CREATE_EXIT_DELAY: u64 = io(7);
/// A worker that stops a worker of another call site in its exit section; returns once both
/// have exited.
const UWT_NESTED_STOP: u64 = io(8);

/// An open `/dev/user-worker-test`.
pub struct Uwt(fs::File);

impl Uwt {
    /// Opens the module's device.
    pub fn open() -> Result<Uwt, String> {
        fs::File::options()
            .read(true)
            .write(true)
            .open("/dev/user-worker-test")
            .map(Uwt)
            .ctx("open /dev/user-worker-test")
    }

    /// Makes the module's ioctl `cmd` with the integer `arg`; what it returns.
    pub fn ioctl(&self, cmd: u64, arg: u64) -> io::Result<i64> {
        // SAFETY: the module's ioctls take an integer argument.
        let r = unsafe { libc::ioctl(self.0.as_raw_fd(), cmd as _, arg) };
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(r as i64)
        }
    }

    /// Creates a worker; returns its index and thread id.
    pub fn create(&self) -> Result<(u64, i32), String> {
        let i = self.ioctl(UWT_CREATE, 0).ctx("UWT_CREATE")? as u64;
        let tid = self.ioctl(UWT_TID, i).ctx("UWT_TID")? as i32;
        Ok((i, tid))
    }
}

fn user_worker_module_worker_is_a_user_worker_thread_of_the_caller() -> CaseResult {
    let me = procfs::self_pid();
    let uwt = Uwt::open()?;
    let (_, tid) = uwt.create()?;
    ensure(
        procfs::threads(me)
            .ctx("threads")?
            .iter()
            .any(|t| t.tid == tid),
        || format!("worker {tid} is not in /proc/{me}/task"),
    )?;
    crate::cases::check_contract(me, tid)?;
    let comm = procfs::comm(tid).ctx("comm")?;
    ensure(comm == "uwt-worker", || format!("comm {comm:?}"))?;
    let flags = procfs::stat(tid).ctx("stat")?.flags;
    ensure(
        flags & PF_USER_WORKER != 0 && flags & PF_KTHREAD == 0,
        || format!("flags {flags:#x}"),
    )?;
    Ok(format!(
        "worker {tid} uwt-worker: a PF_USER_WORKER thread of {me}, not a kthread, same cgroup and namespaces"
    ))
}

fn user_worker_module_poke_wakes_the_waiting_worker() -> CaseResult {
    let uwt = Uwt::open()?;
    let (i, _) = uwt.create()?;
    for n in 1..=100 {
        uwt.ioctl(UWT_POKE, i).ctx("UWT_POKE")?;
        let ok = procfs::wait_for(T, || uwt.ioctl(UWT_RUNS, i).is_ok_and(|r| r >= n));
        ensure(ok, || format!("poke {n} not seen"))?;
    }
    Ok("100 pokes, each seen by the worker's wait".into())
}

fn user_worker_module_stop_waits_for_the_worker_to_exit() -> CaseResult {
    let uwt = Uwt::open()?;
    let (i, tid) = uwt.create()?;
    uwt.ioctl(UWT_STOP, i).ctx("UWT_STOP")?;
    // The stop returned after the exit: the thread is gone or a zombie being reaped.
    ensure(procfs::wait_for(T, || !procfs::exists(tid)), || {
        "worker still there after the stop".into()
    })?;
    ensure(uwt.ioctl(UWT_RUNS, i).is_err(), || {
        "stopped worker still listed".into()
    })?;
    Ok(format!("worker {tid} exited before UWT_STOP returned"))
}

/// Forks a process that creates `n` workers through the module, reports their tids, then sleeps.
pub fn spawn_uwt_owner(n: usize) -> Result<(crate::harness::Child, Vec<i32>), String> {
    let (mut rd, wr) = std::io::pipe().ctx("pipe")?;
    let child = fork(move || {
        let r = (|| -> Result<(), String> {
            let uwt = Uwt::open()?;
            for _ in 0..n {
                let (_, tid) = uwt.create()?;
                (&wr).write_all(&tid.to_ne_bytes()).ctx("pipe")?;
            }
            loop {
                std::thread::sleep(Duration::from_secs(60));
            }
        })();
        if let Err(e) = r {
            println!("# user-worker owner: {e}");
        }
        1
    })
    .ctx("fork")?;
    let tids = (0..n)
        .map(|_| crate::cases::read_tid(&mut rd))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((child, tids))
}

fn user_worker_module_sigkill_ends_waiting_workers_without_warning() -> CaseResult {
    let mut log = Kmsg::from_now().ctx("/dev/kmsg")?;
    let (mut child, tids) = spawn_uwt_owner(8)?;
    // Let every worker get into its wait.
    std::thread::sleep(Duration::from_millis(200));
    let (_, took) = child
        .kill_and_wait(Signal::SIGKILL, Duration::from_secs(30))
        .map_err(|e| format!("owner {e}"))?;
    let ms = took.as_millis();
    ensure(tids.iter().all(|&t| !procfs::exists(t)), || {
        "a worker outlived its owner".into()
    })?;
    let lines = log.read_new();
    let ended = tids
        .iter()
        .filter(|t| {
            let want = format!("worker {t} ends: its process is exiting");
            lines.iter().any(|l| l.contains(&want))
        })
        .count();
    ensure(ended == tids.len(), || {
        format!(
            "{ended} of {} workers logged the exit of their process",
            tids.len()
        )
    })?;
    let bad = kmsg::splats(&lines);
    ensure(bad.is_empty(), || format!("kernel log: {bad:?}"))?;
    Ok(format!(
        "8 waiting workers ended on SIGKILL, owner reaped in {ms} ms, no warning"
    ))
}

fn user_worker_module_unloads_only_once_its_files_are_closed() -> CaseResult {
    let uwt = Uwt::open()?;
    let (_, tid) = uwt.create()?;
    let e = delete_module("user_worker_test").err();
    ensure(e == Some(libc::EWOULDBLOCK), || {
        format!("delete_module with a file open: {e:?}, not EWOULDBLOCK")
    })?;
    drop(uwt);
    // The release waited for the worker's function to return; the thread then exits.
    ensure(procfs::wait_for(T, || !procfs::exists(tid)), || {
        "worker outlived the file".into()
    })?;
    unload("user_worker_test")?;
    ensure(!is_loaded("user_worker_test"), || "still loaded".into())?;
    modprobe("user_worker_test")?;
    Uwt::open()?;
    Ok(
        "refused while open (EWOULDBLOCK); unloaded once closed and its worker gone; loaded again"
            .into(),
    )
}

/// Where the time of the unload race's rounds went.
#[derive(Default)]
struct Phases {
    /// Owners with traffic (or VMs that ran), closed or killed, and reaped.
    owners: Duration,
    /// The unloads, with their refusals' retries.
    unload: Duration,
    /// The loads.
    load: Duration,
}

impl Phases {
    /// Runs `f`, adding its time to `*to`.
    fn time<T>(to: &mut Duration, f: impl FnOnce() -> T) -> T {
        let t = Instant::now();
        let r = f();
        *to += t.elapsed();
        r
    }

    /// [`unload_and_load`] by `loader`, timed.
    fn unload_and_load(&mut self, mods: &[&str], loader: &Loader) -> Result<u32, String> {
        let t = Instant::now();
        unload_and_load(mods, || {
            self.unload += t.elapsed();
            Self::time(&mut self.load, || loader.load())
        })
    }
}

impl std::fmt::Display for Phases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "owners {:.0} s, rmmod {:.0} s, load {:.0} s",
            self.owners.as_secs_f32(),
            self.unload.as_secs_f32(),
            self.load.as_secs_f32()
        )
    }
}

/// How a round's owner went.
fn how(kill: bool) -> &'static str {
    if kill {
        "SIGKILL"
    } else {
        "close"
    }
}

/// `make stress`: the module unload race at scale (1,000 rounds at scale 1.0), halves closed and killed.
/// vhost_vsock and vhost_scsi, which use vhost too, are unloaded for the loop, so that each
/// round unloads exactly vhost_net and vhost and loads them again, by `finit_module()`.
pub fn unload_race_stress() -> CaseResult {
    let n = crate::stress::Count::ModuleRounds.get();
    let base = user_threads();
    unload_vhost().map_err(|e| format!("before the rounds: {e}"))?;
    let net = Loader::new("vhost_net")?;
    net.load()?;
    // One tap for every round: its creation and removal are not the race.
    let tap = Tap::new("vt-unload").ctx("tap")?;
    let (mut refused, mut ph) = (0, Phases::default());
    let t0 = Instant::now();
    for i in 0..n {
        let kill = i % 2 == 1;
        Phases::time(&mut ph.owners, || vhost_owner_goes(kill, &tap, 20))
            .and_then(|()| ph.unload_and_load(&["vhost_net", "vhost"], &net))
            .map(|r| refused += r)
            .map_err(|e| format!("round {i} ({}): {e}", how(kill)))?;
    }
    let secs = t0.elapsed().as_secs_f32();
    drop(tap);
    ensure(procfs::wait_for(T, || user_threads() <= base), || {
        "user threads above the baseline".into()
    })?;
    // The drivers back, for the cases that follow.
    load_vhost(&[])?;
    Ok(format!(
        "{n} rounds in {secs:.0} s ({ph}); rmmod refused {refused} times (a release still running) before it went"
    ))
}

/// `make stress`: the module unload race for KVM at scale (1,000 rounds at scale 1.0), loading by
/// `finit_module()`.
pub fn kvm_unload_race_stress() -> CaseResult {
    let n = crate::stress::Count::ModuleRounds.get();
    let base = user_threads();
    let kvm = Loader::new("kvm_amd")?;
    let (mut refused, mut ph) = (0, Phases::default());
    let t0 = Instant::now();
    for i in 0..n {
        let kill = i % 2 == 1;
        Phases::time(&mut ph.owners, || kvm_owner_goes(kill))
            .and_then(|()| ph.unload_and_load(&["kvm_amd", "kvm"], &kvm))
            .map(|r| refused += r)
            .map_err(|e| format!("round {i} ({}): {e}", how(kill)))?;
    }
    ensure(procfs::wait_for(T, || user_threads() <= base), || {
        "user threads above the baseline".into()
    })?;
    Ok(format!(
        "{n} rounds in {:.0} s ({ph}); rmmod refused {refused} times before it went",
        t0.elapsed().as_secs_f32()
    ))
}

/// `make stress`: owners of 8 waiting user workers, SIGKILLed, reaped with their workers.
pub fn sigkill_during_wait_stress() -> CaseResult {
    let n = crate::stress::Count::UwtKills.get();
    let mut log = Kmsg::from_now().ctx("/dev/kmsg")?;
    let mut slowest = 0;
    for i in 0..n {
        let (mut child, tids) = spawn_uwt_owner(8)?;
        let (_, took) = child
            .kill_and_wait(Signal::SIGKILL, Duration::from_secs(30))
            .map_err(|e| format!("round {i}: owner {e}"))?;
        slowest = slowest.max(took.as_millis());
        ensure(tids.iter().all(|&t| !procfs::exists(t)), || {
            format!("round {i}: a worker outlived its owner")
        })?;
    }
    let lines = log.read_new();
    let bad = kmsg::splats(&lines);
    ensure(bad.is_empty(), || {
        format!("kernel log: {:?}", &bad[..bad.len().min(5)])
    })?;
    Ok(format!(
        "{n} owners killed mid-wait, slowest reaped in {slowest} ms, no warning"
    ))
}

/// What the kernel says when a user worker would return into the text of a module that was
/// unloaded after the worker reported its exit (`CONFIG_USER_WORKER_EXIT_DELAY_TEST`).
const RETURN_INTO_FREED_TEXT: &str = "after its exit, which is no longer kernel or module text";

/// Whether the kernel widens the window after a worker's reported exit for the workers named
/// `exit-delay...` (`CONFIG_USER_WORKER_EXIT_DELAY_TEST`).
fn exit_delay_hook() -> Result<bool, String> {
    let syms = fs::read_to_string("/proc/kallsyms").ctx("/proc/kallsyms")?;
    Ok(syms.contains(" rust_helper_user_worker_exit_delay_test"))
}

/// `n` rounds of the test module's unload race: a worker named `exit-delay-uwt`, its file
/// closed (which stops the worker and returns once the worker has reported its exit), then the
/// module unloaded at once, while the worker's thread still exits, and loaded again by
/// `finit_module()`. Fails on a kernel log line of a worker that would have returned into the
/// freed module, or on any splat. Returns how often the unload was refused, and whether the
/// window was widened.
fn uwt_unload_rounds(n: u32) -> Result<(u32, bool), String> {
    let widened = exit_delay_hook()?;
    let loader = Loader::new("user_worker_test")?;
    let mut log = Kmsg::from_now().ctx("/dev/kmsg")?;
    let mut refused = 0;
    for i in 0..n {
        let round = || -> Result<u32, String> {
            let uwt = Uwt::open()?;
            uwt.ioctl(UWT_CREATE_EXIT_DELAY, 0)
                .ctx("UWT_CREATE_EXIT_DELAY")?;
            drop(uwt);
            let r = unload("user_worker_test")?;
            loader.load()?;
            Ok(r)
        };
        refused += round().map_err(|e| format!("round {i}: {e}"))?;
    }
    // The hook reports 50 ms after the last exit.
    std::thread::sleep(Duration::from_millis(200));
    let lines = log.read_new();
    if let Some(l) = lines.iter().find(|l| l.contains(RETURN_INTO_FREED_TEXT)) {
        return Err(format!("a worker outlived its module's text: {l}"));
    }
    if let Some((kind, l)) = lines
        .iter()
        .find_map(|l| kmsg::splat_kind(l, false).map(|k| (k, l)))
    {
        return Err(format!("{kind} in the kernel log: {l}"));
    }
    Ok((refused, widened))
}

fn how_widened(widened: bool) -> &'static str {
    if widened {
        "each worker lingering 50 ms past its reported exit (CONFIG_USER_WORKER_EXIT_DELAY_TEST)"
    } else {
        "without the exit delay hook"
    }
}

fn user_worker_module_unloads_while_its_workers_still_exit_x10() -> CaseResult {
    let (refused, widened) = uwt_unload_rounds(10)?;
    Ok(format!(
        "10 rounds, {}; rmmod refused {refused} times; no worker returned into a freed module",
        how_widened(widened)
    ))
}

/// `make stress`: the test module's unload race of `uwt_unload_rounds` at scale (1,000 rounds
/// at scale 1.0).
pub fn uwt_unload_race_stress() -> CaseResult {
    let n = crate::stress::Count::ModuleRounds.get();
    let t0 = Instant::now();
    let (refused, widened) = uwt_unload_rounds(n)?;
    Ok(format!(
        "{n} rounds in {:.0} s, {}; rmmod refused {refused} times; no worker returned into a freed module",
        t0.elapsed().as_secs_f32(),
        how_widened(widened)
    ))
}

/// The cases of `vhost-e2e lockdep`, alone in a guest of a lockdep kernel, in this order:
/// first what lockdep must not report, then what it must (it switches itself off after its
/// first report).
pub fn lockdep_cases() -> Vec<Case> {
    vec![
        case!(
            lockdep_stays_quiet_when_a_worker_stops_a_worker_of_another_call_site_in_its_exit_section,
            120
        ),
        case!(
            lockdep_reports_a_lock_held_across_vhost_task_stop_that_the_kill_handler_takes,
            120
        ),
    ]
}

/// Lockdep's `debug_locks`: 1 until its first report.
fn lockdep_debug_locks() -> Result<u32, String> {
    let stats = fs::read_to_string("/proc/lockdep_stats").ctx("/proc/lockdep_stats")?;
    stats
        .lines()
        .find_map(|l| l.trim().strip_prefix("debug_locks:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| "no debug_locks in /proc/lockdep_stats".into())
}

fn lockdep_stays_quiet_when_a_worker_stops_a_worker_of_another_call_site_in_its_exit_section(
) -> CaseResult {
    if !std::path::Path::new("/proc/lockdep").exists() {
        return crate::harness::skip("not a lockdep kernel (no /proc/lockdep)");
    }
    ensure(lockdep_debug_locks()? == 1, || {
        "lockdep was already off before the case".into()
    })?;
    let mut log = Kmsg::from_now().ctx("/dev/kmsg")?;
    let uwt = Uwt::open()?;
    uwt.ioctl(UWT_NESTED_STOP, 0).ctx("UWT_NESTED_STOP")?;
    drop(uwt);
    let lines = log.read_new();
    if let Some(l) = lines
        .iter()
        .find(|l| l.contains("possible recursive locking"))
    {
        return Err(format!("lockdep took the two call sites for one lock: {l}"));
    }
    ensure(lockdep_debug_locks()? == 1, || {
        format!(
            "lockdep reported something and switched itself off: {:?}",
            &lines[..lines.len().min(10)]
        )
    })?;
    Ok(
        "the outer worker stopped the inner one in its exit section; lockdep still on, no report"
            .into(),
    )
}

fn lockdep_reports_a_lock_held_across_vhost_task_stop_that_the_kill_handler_takes() -> CaseResult {
    if !std::path::Path::new("/proc/lockdep").exists() {
        return crate::harness::skip("not a lockdep kernel (no /proc/lockdep)");
    }
    let mut log = Kmsg::from_now().ctx("/dev/kmsg")?;
    let (mut rd, wr) = std::io::pipe().ctx("pipe")?;
    let mut child = fork(move || {
        let r = Uwt::open().and_then(|uwt| {
            uwt.ioctl(UWT_VHOST_KILL_INVERSION, 0)
                .ctx("UWT_VHOST_KILL_INVERSION")?;
            (&wr).write_all(&0i32.to_ne_bytes()).ctx("pipe")?;
            Ok(uwt)
        });
        match r {
            // The file stays open, with the vhost task it made, until the SIGKILL.
            Ok(_uwt) => loop {
                std::thread::sleep(Duration::from_secs(60));
            },
            Err(e) => {
                println!("# lockdep owner: {e}");
                1
            }
        }
    })
    .ctx("fork")?;
    crate::cases::read_tid(&mut rd)?;
    child
        .kill_and_wait(Signal::SIGKILL, Duration::from_secs(60))
        .map_err(|e| {
            format!("the owner {e}: the inversion deadlocked instead of being reported")
        })?;
    let mut report = Vec::new();
    procfs::wait_for(T, || {
        report.extend(log.read_new());
        report
            .iter()
            .any(|l| l.contains("possible circular locking dependency detected"))
    });
    let found = report
        .iter()
        .any(|l| l.contains("possible circular locking dependency detected"));
    ensure(found, || {
        format!(
            "no lockdep report; kernel log: {:?}",
            &report[..report.len().min(20)]
        )
    })?;
    // The wait of the stop is what lockdep sees: the Rust exit map, or C's exit_mutex.
    let via = ["user_worker_exit", "exit_mutex"]
        .into_iter()
        .find(|w| report.iter().any(|l| l.contains(w)))
        .ok_or("the report names neither user_worker_exit nor exit_mutex")?;
    Ok(format!(
        "reported, not hung: a circular dependency through {via}"
    ))
}
