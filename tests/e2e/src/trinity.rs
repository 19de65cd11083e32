// SPDX-License-Identifier: GPL-2.0
//! `vhost-e2e trinity`: Dave Jones's system call fuzzer, trinity, against vhost and KVM.
//!
//! Trinity chooses an ioctl's command from the ioctls of the fd's driver, which it knows by the
//! device's name, only for the fds of its DRM provider: the files of its `-V` directory and its
//! test files go to its vfs, ext and btrfs groups whatever they are. So the DRM provider gets
//! the devices: a tmpfs over /dev/dri holds vhost-net, vhost-vsock, vhost-scsi and kvm nodes,
//! and trinity opens each of them once when it starts. Its pipes, sockets (Unix ones only, which
//! start faster), test files and a `-V` directory of one plain file stay enabled: trinity's fd
//! tests read the lists of those providers, and crash on the null list of one that is off.
//! Each seed is a new trinity, with new device fds.
//!
//! Trinity knows vhost-net's and KVM's ioctls by name; for vhost-vsock and vhost-scsi it has no
//! group, and sends them random commands. It never uses the fd that `KVM_CREATE_VM` returns,
//! so it never reaches `KVM_RUN` and KVM's NX recovery thread: that count is reported, not
//! required.
//!
//! It runs as nobody. A thread of this process watches its children: a child with a thread
//! besides its own (trinity's children have one) owns a vhost worker, which is counted, and the
//! child is killed with SIGKILL while the worker runs. Trinity prints every system call on its
//! stdout, which is read here and counted: the calls, and the ioctls by command and result.

use crate::harness::{ensure, Case, CaseResult};
use crate::procfs;
use crate::stress::Baseline;
use nix::mount::{mount, MsFlags};
use nix::sys::signal::{kill, Signal};
use nix::sys::stat::{makedev, mknod, Mode, SFlag};
use nix::unistd::{chown, Pid, User};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// What `vhost-e2e trinity` was asked to run.
struct Config {
    /// Where trinity and its C library are unpacked (scripts/setup.sh).
    root: String,
    /// The system calls a seed makes.
    calls: u64,
    /// The seeds, one trinity each.
    seeds: Vec<u64>,
}

static CONFIG: OnceLock<Config> = OnceLock::new();
static BASELINE: OnceLock<Baseline> = OnceLock::new();

fn config() -> &'static Config {
    CONFIG
        .get()
        .expect("the configuration is set before the cases run")
}

/// The device nodes trinity gets, by name in /proc/misc, and how many of each.
const DEVICES: &[(&str, u32)] = &[
    ("vhost-net", 48),
    ("vhost-vsock", 8),
    ("vhost-scsi", 8),
    ("kvm", 8),
];
/// Where the first case leaves what it counted for the others.
const STATS: &str = "/run/vt-trinity-stats";
const DRI: &str = "/dev/dri";
const VICTIMS: &str = "/tmp/trinity-victims";
const WORKDIR: &str = "/tmp/trinity-work";
/// The children trinity runs at once.
const CHILDREN: u32 = 4;

/// `vhost-e2e trinity [--root DIR] [--calls N] [--seeds A,B,...] [filter]`: parses the
/// arguments into [`CONFIG`]; returns the filter.
pub fn args(args: &[String]) -> Result<Option<String>, String> {
    let mut cfg = Config {
        root: String::new(),
        calls: 20_000,
        seeds: vec![1],
    };
    let mut filter = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .ok_or_else(|| format!("trinity: {a} needs a value"))
        };
        match a.as_str() {
            "--root" => cfg.root = value()?,
            "--calls" => {
                cfg.calls = value()?
                    .parse()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or("trinity: --calls needs a positive number")?
            }
            "--seeds" => {
                cfg.seeds = value()?
                    .split(',')
                    .map(str::parse)
                    .collect::<Result<_, _>>()
                    .map_err(|e| format!("trinity: --seeds needs numbers: {e}"))?
            }
            f => filter = Some(f.to_string()),
        }
    }
    if cfg.seeds.is_empty() {
        return Err("trinity: no seeds".into());
    }
    CONFIG
        .set(cfg)
        .map_err(|_| "trinity: arguments parsed twice".to_string())?;
    Ok(filter)
}

/// The cases, in order: the first runs trinity, the others check what it counted.
pub fn all() -> Vec<Case> {
    let cfg = config();
    let seeds: Vec<String> = cfg.seeds.iter().map(u64::to_string).collect();
    let name = format!(
        "trinity_makes_{}_system_calls_with_each_of_seeds_{}",
        cfg.calls,
        seeds.join("_")
    );
    // Measured under TCG on the KASAN kernel: about 300 calls a second; a tenth of that, and
    // ten minutes, before it counts as hung.
    let secs = 600 + cfg.calls * cfg.seeds.len() as u64 / 30;
    vec![
        Case {
            name: Box::leak(name.into_boxed_str()),
            run: fuzz,
            timeout: Duration::from_secs(secs),
            needs: crate::harness::nothing,
        },
        crate::harness::case!(vhost_set_owner_gave_trinitys_children_workers, 10),
        crate::harness::case!(owners_were_sigkilled_while_their_workers_ran, 10),
        crate::harness::case!(vhost_ioctls_were_called_by_command, 10),
        crate::harness::case!(kvm_ioctls_were_called_on_dev_kvm, 10),
        crate::harness::case!(
            no_worker_nor_trinity_process_is_left_and_tasks_are_at_baseline,
            60
        ),
    ]
}

/// `vhost-e2e trinity ...`.
pub fn main(argv: &[String]) -> i32 {
    let filter = match args(argv) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{e}");
            return 2;
        }
    };
    println!(
        "# vhost_task implementation: {}",
        crate::demo::implementation()
    );
    crate::stress::run_from_baseline(&BASELINE, &all(), filter.as_deref(), "trinity")
}

/// What the fuzzing counted, for the cases after it.
#[derive(Default, Debug)]
struct Stats {
    calls: u64,
    /// Calls, and calls that returned 0, by ioctl command.
    ioctls: BTreeMap<u32, (u64, u64)>,
    /// Threads of trinity's children besides their own, by tid: their comm.
    workers: BTreeMap<i32, String>,
    /// Children killed while such a thread ran.
    killed: u64,
}

impl Stats {
    fn save(&self) -> Result<(), String> {
        let mut s = format!("calls {}\nkilled {}\n", self.calls, self.killed);
        for (cmd, (n, ok)) in &self.ioctls {
            let _ = writeln!(s, "ioctl {cmd:#x} {n} {ok}");
        }
        for (tid, comm) in &self.workers {
            let _ = writeln!(s, "worker {tid} {comm}");
        }
        fs::write(STATS, s).map_err(|e| format!("{STATS}: {e}"))
    }

    fn load() -> Result<Stats, String> {
        let text = fs::read_to_string(STATS)
            .map_err(|e| format!("{STATS}: {e} (did the first case run?)"))?;
        let mut st = Stats::default();
        for line in text.lines() {
            let f: Vec<&str> = line.split(' ').collect();
            let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            match f[0] {
                "calls" => st.calls = num(1),
                "killed" => st.killed = num(1),
                "ioctl" => {
                    let cmd = f.get(1).and_then(|c| parse_num(c)).unwrap_or(0);
                    st.ioctls.insert(cmd, (num(2), num(3)));
                }
                "worker" => {
                    let tid = f.get(1).and_then(|t| t.parse().ok()).unwrap_or(0);
                    st.workers.insert(tid, f.get(2).unwrap_or(&"").to_string());
                }
                _ => {}
            }
        }
        Ok(st)
    }

    /// The ioctls of one type (`_IOC_TYPE`: 0xaf vhost, 0xae KVM): calls, calls that returned
    /// 0 (at least: see [`count_line`]), and "NAME calls/ok" a command, most called first.
    fn of_type(&self, ty: u32) -> (u64, u64, String) {
        let mut v: Vec<_> = self
            .ioctls
            .iter()
            .filter(|(cmd, _)| (*cmd >> 8) & 0xff == ty)
            .collect();
        v.sort_by_key(|(_, (n, _))| std::cmp::Reverse(*n));
        let (n, ok) = v
            .iter()
            .fold((0, 0), |(a, b), (_, (n, ok))| (a + n, b + ok));
        let list: Vec<String> = v
            .iter()
            .map(|(cmd, (n, ok))| format!("{} {n}/{ok}", ioctl_name(**cmd)))
            .collect();
        (n, ok, list.join(", "))
    }
}

/// A number as trinity prints it: decimal, or hexadecimal with "0x".
fn parse_num(s: &str) -> Option<u32> {
    match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok().map(|v| v as u32),
        None => s.parse::<i64>().ok().map(|v| v as u32),
    }
}

/// The name of a vhost or KVM ioctl command, else the command in hexadecimal.
fn ioctl_name(cmd: u32) -> String {
    let (ty, nr, dir) = ((cmd >> 8) & 0xff, cmd & 0xff, cmd >> 30);
    let name = match (ty, nr, dir) {
        (0xaf, 0x00, 2) => "VHOST_GET_FEATURES",
        (0xaf, 0x00, 1) => "VHOST_SET_FEATURES",
        (0xaf, 0x01, _) => "VHOST_SET_OWNER",
        (0xaf, 0x02, _) => "VHOST_RESET_OWNER",
        (0xaf, 0x03, _) => "VHOST_SET_MEM_TABLE",
        (0xaf, 0x04, _) => "VHOST_SET_LOG_BASE",
        (0xaf, 0x07, _) => "VHOST_SET_LOG_FD",
        (0xaf, 0x10, _) => "VHOST_SET_VRING_NUM",
        (0xaf, 0x11, _) => "VHOST_SET_VRING_ADDR",
        (0xaf, 0x12, 1) => "VHOST_SET_VRING_BASE",
        (0xaf, 0x12, 3) => "VHOST_GET_VRING_BASE",
        (0xaf, 0x20, _) => "VHOST_SET_VRING_KICK",
        (0xaf, 0x21, _) => "VHOST_SET_VRING_CALL",
        (0xaf, 0x22, _) => "VHOST_SET_VRING_ERR",
        (0xaf, 0x30, _) => "VHOST_NET_SET_BACKEND",
        (0xaf, 0x40, _) => "VHOST_SCSI_SET_ENDPOINT",
        (0xaf, 0x41, _) => "VHOST_SCSI_CLEAR_ENDPOINT",
        (0xaf, 0x42, _) => "VHOST_SCSI_GET_ABI_VERSION",
        (0xaf, 0x43, _) => "VHOST_SCSI_SET_EVENTS_MISSED",
        (0xaf, 0x44, _) => "VHOST_SCSI_GET_EVENTS_MISSED",
        (0xae, 0x01, _) => "KVM_CREATE_VM",
        (0xae, 0x41, _) => "KVM_CREATE_VCPU",
        (0xae, 0x80, _) => "KVM_RUN",
        _ => return format!("{cmd:#x}"),
    };
    name.to_string()
}

/// Counts one line of trinity's stdout into `st`. A system call is printed as
/// "[childN:PID] [OP] name(arg=value, ...) = result", in two writes, so that another child's
/// call can come between its two halves; a call is counted by its first half, and an ioctl as
/// succeeded where " = 0" ends the same half's line (a lower bound, then).
fn count_line(st: &mut Stats, line: &str) {
    for part in line.split("[child").skip(1) {
        let Some(call) = part.split_once("] [").map(|(_, rest)| rest) else {
            continue;
        };
        let Some((_, call)) = call.split_once("] ") else {
            continue;
        };
        let call = call.strip_prefix("[32BIT] ").unwrap_or(call);
        if !call.contains('(') {
            continue;
        }
        st.calls += 1;
        let Some(args) = call.strip_prefix("ioctl(") else {
            continue;
        };
        let cmd = args
            .split(", ")
            .find_map(|a| a.strip_prefix("cmd="))
            .and_then(parse_num);
        if let Some(cmd) = cmd {
            let e = st.ioctls.entry(cmd).or_default();
            e.0 += 1;
            if call.trim_end().ends_with(") = 0") {
                e.1 += 1;
            }
        }
    }
}

/// The minor of a misc device, from /proc/misc.
fn misc_minor(name: &str) -> Option<u64> {
    fs::read_to_string("/proc/misc")
        .ok()?
        .lines()
        .find_map(|l| match l.split_whitespace().collect::<Vec<_>>()[..] {
            [minor, n] if n == name => minor.parse().ok(),
            _ => None,
        })
}

/// /dev/dri as a tmpfs of device nodes, the victims directory and trinity's working directory.
fn prepare(nobody: &User) -> Result<String, String> {
    fs::create_dir_all(DRI).map_err(|e| format!("{DRI}: {e}"))?;
    mount(
        Some("tmpfs"),
        DRI,
        Some("tmpfs"),
        MsFlags::empty(),
        Some("mode=755"),
    )
    .map_err(|e| format!("mount tmpfs on {DRI}: {e}"))?;
    let mut made = Vec::new();
    for &(dev, n) in DEVICES {
        let Some(minor) = misc_minor(dev) else {
            made.push(format!("no {dev}"));
            continue;
        };
        for i in 0..n {
            let path = format!("{DRI}/{dev}-{i}");
            let mode = Mode::from_bits_truncate(0o666);
            mknod(path.as_str(), SFlag::S_IFCHR, mode, makedev(10, minor))
                .map_err(|e| format!("mknod {path}: {e}"))?;
            // mknod() takes the umask off.
            fs::set_permissions(&path, fs::Permissions::from_mode(0o666))
                .map_err(|e| format!("chmod {path}: {e}"))?;
        }
        made.push(format!("{n} {dev}"));
    }
    fs::create_dir_all(VICTIMS).map_err(|e| format!("{VICTIMS}: {e}"))?;
    fs::write(format!("{VICTIMS}/file"), "trinity\n").map_err(|e| format!("{VICTIMS}: {e}"))?;
    fs::create_dir_all(WORKDIR).map_err(|e| format!("{WORKDIR}: {e}"))?;
    chown(WORKDIR, Some(nobody.uid), Some(nobody.gid)).map_err(|e| format!("{WORKDIR}: {e}"))?;
    Ok(made.join(", "))
}

/// Watches trinity's children until `stop`: records the threads each has besides its own, and
/// kills a child that has one with SIGKILL.
fn killer(stats: Arc<Mutex<Stats>>, stop: Arc<AtomicBool>) {
    let mut killed = BTreeSet::new();
    while !stop.load(Ordering::Relaxed) {
        for child in procfs::threads_where(|t| t.comm.starts_with("trinity-c")) {
            let Ok(threads) = procfs::threads(child.tid) else {
                continue;
            };
            let others: Vec<_> = threads.into_iter().filter(|t| t.tid != child.tid).collect();
            if others.is_empty() {
                continue;
            }
            let mut st = stats.lock().unwrap_or_else(|e| e.into_inner());
            for t in &others {
                st.workers.entry(t.tid).or_insert_with(|| t.comm.clone());
            }
            // ESRCH: the child exited meanwhile, and its worker with it.
            if !killed.contains(&child.tid)
                && others.iter().any(|t| procfs::exists(t.tid))
                && kill(Pid::from_raw(child.tid), Signal::SIGKILL).is_ok()
            {
                killed.insert(child.tid);
                st.killed += 1;
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Runs trinity once a seed, as nobody, on the devices; counts, and saves what it counted.
fn fuzz() -> CaseResult {
    let cfg = config();
    let nobody = User::from_name("nobody")
        .map_err(|e| format!("nobody: {e}"))?
        .ok_or("no user nobody")?;
    let lib = format!("{}/usr/lib/x86_64-linux-gnu", cfg.root);
    let bin = format!("{}/usr/bin/trinity", cfg.root);
    let loader = format!("{lib}/ld-linux-x86-64.so.2");
    ensure(fs::metadata(&bin).is_ok(), || {
        format!("no trinity at {bin} (run 'make setup')")
    })?;
    let devices = prepare(&nobody)?;
    println!("# devices in {DRI}: {devices}");
    let stats = Arc::new(Mutex::new(Stats::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (stats, stop) = (stats.clone(), stop.clone());
        std::thread::spawn(move || killer(stats, stop))
    };
    let mut notes = Vec::new();
    let t0 = Instant::now();
    for &seed in &cfg.seeds {
        let start = Instant::now();
        let calls_before = stats.lock().unwrap_or_else(|e| e.into_inner()).calls;
        let mut child = Command::new("setpriv")
            .args(["--reuid", "nobody", "--regid", "nogroup", "--clear-groups"])
            .args([&loader, "--library-path", &lib, &bin])
            .args(["-s", &seed.to_string(), "-N", &cfg.calls.to_string()])
            .args(["-C", &CHILDREN.to_string(), "-V", VICTIMS])
            .args(["--enable-fds=drm,pipes,testfile,sockets,pseudo"])
            .args(["-c", "ioctl", "-P", "UNIX", "-l", "off"])
            .current_dir(WORKDIR)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("setpriv ... trinity: {e}"))?;
        let err = child.stderr.take().map(|mut e| {
            std::thread::spawn(move || {
                let mut s = String::new();
                // What could be read is what there is to show.
                let _ = e.read_to_string(&mut s);
                s
            })
        });
        let out = BufReader::new(child.stdout.take().ok_or("trinity: no stdout")?);
        let mut drm = 0;
        for line in out.split(b'\n') {
            let line = line.map_err(|e| format!("trinity's stdout: {e}"))?;
            let line = String::from_utf8_lossy(&line);
            if line.contains("] = drm") {
                drm += 1;
            }
            count_line(&mut stats.lock().unwrap_or_else(|e| e.into_inner()), &line);
        }
        let status = child.wait().map_err(|e| format!("trinity: {e}"))?;
        let err = err.and_then(|h| h.join().ok()).unwrap_or_default();
        let calls = stats.lock().unwrap_or_else(|e| e.into_inner()).calls - calls_before;
        let secs = start.elapsed().as_secs_f32();
        println!("# seed {seed}: {calls} calls in {secs:.0} s, {drm} device fds, {status}");
        if !status.success() {
            stop.store(true, Ordering::Relaxed);
            let tail: Vec<&str> = err.lines().rev().take(5).collect();
            return Err(format!(
                "seed {seed}: trinity {status}: {}",
                tail.join(" | ")
            ));
        }
        ensure(drm > 0, || {
            format!("seed {seed}: trinity opened none of the devices in {DRI}")
        })?;
        ensure(calls >= cfg.calls, || {
            format!("seed {seed}: {calls} calls counted, {} asked", cfg.calls)
        })?;
        notes.push(format!("seed {seed} {calls} calls"));
    }
    stop.store(true, Ordering::Relaxed);
    watcher.join().map_err(|_| "the watching thread panicked")?;
    let st = stats.lock().unwrap_or_else(|e| e.into_inner());
    st.save()?;
    for (cmd, (n, ok)) in &st.ioctls {
        if matches!((cmd >> 8) & 0xff, 0xae | 0xaf) {
            println!(
                "# ioctl {cmd:#010x} {}: {n} calls, {ok} returned 0",
                ioctl_name(*cmd)
            );
        }
    }
    Ok(format!(
        "{}; {} calls in {:.0} s",
        notes.join(", "),
        st.calls,
        t0.elapsed().as_secs_f32()
    ))
}

fn vhost_set_owner_gave_trinitys_children_workers() -> CaseResult {
    let st = Stats::load()?;
    let owner = st.ioctls.get(&0xaf01).copied().unwrap_or_default();
    let vhost = st
        .workers
        .values()
        .filter(|c| c.starts_with("vhost-"))
        .count();
    ensure(vhost > 0, || {
        format!(
            "VHOST_SET_OWNER called {} times; no vhost worker seen",
            owner.0
        )
    })?;
    // Trinity prints a call in two writes, and another child's call often comes between them:
    // a success is counted only where its result stayed on its call's line.
    Ok(format!(
        "{vhost} vhost workers seen (at least: the watcher looks every 200 ms); VHOST_SET_OWNER \
         called {} times, succeeded at least {}",
        owner.0, owner.1
    ))
}

fn owners_were_sigkilled_while_their_workers_ran() -> CaseResult {
    let st = Stats::load()?;
    ensure(st.killed > 0, || "no owner was killed".into())?;
    Ok(format!(
        "{} of trinity's children killed, each with a worker alive",
        st.killed
    ))
}

fn vhost_ioctls_were_called_by_command() -> CaseResult {
    let st = Stats::load()?;
    let (n, ok, list) = st.of_type(0xaf);
    ensure(n > 0, || "no vhost ioctl was called".into())?;
    Ok(format!(
        "{n} vhost ioctls, at least {ok} returned 0 (calls/returned 0): {list}"
    ))
}

fn kvm_ioctls_were_called_on_dev_kvm() -> CaseResult {
    let st = Stats::load()?;
    let (n, ok, _) = st.of_type(0xae);
    let nx = st
        .workers
        .values()
        .filter(|c| c.starts_with("kvm-nx"))
        .count();
    let vm = st.ioctls.get(&0xae01).copied().unwrap_or_default();
    ensure(n > 0, || "no KVM ioctl was called".into())?;
    Ok(format!(
        "{n} KVM ioctls, at least {ok} returned 0; KVM_CREATE_VM {}/{}; {nx} NX recovery threads \
         (trinity never uses a VM's fd, so never reaches KVM_RUN, which makes one)",
        vm.0, vm.1
    ))
}

fn no_worker_nor_trinity_process_is_left_and_tasks_are_at_baseline() -> CaseResult {
    let left = procfs::threads_where(|t| t.comm.starts_with("trinity"));
    ensure(left.is_empty(), || {
        format!("trinity's processes left: {left:?}")
    })?;
    let before = BASELINE.get().ok_or("no baseline was taken")?;
    crate::stress::nothing_left_behind_since(before).map(|n| format!("no trinity process; {n}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_split_by_another_childs_call_is_counted_once_each() {
        let mut st = Stats::default();
        count_line(
            &mut st,
            "[child1:333] [0] ioctl(fd=84, cmd=0xaf01, arg=0x0) [child0:332] [7] write(fd=4, buf=0x1, count=1) = -1 (Bad file descriptor)",
        );
        count_line(&mut st, "= 0");
        count_line(
            &mut st,
            "[child2:335] [3] [32BIT] ioctl(fd=85, cmd=0x4008af03, arg=16) = 0",
        );
        assert_eq!(st.calls, 3);
        assert_eq!(st.ioctls[&0xaf01], (1, 0));
        assert_eq!(st.ioctls[&0x4008af03], (1, 1));
    }

    #[test]
    fn trinitys_own_lines_are_not_calls() {
        let mut st = Stats::default();
        count_line(&mut st, "[main] fd[84] = drm");
        count_line(
            &mut st,
            "[child2:522]  start: 0x7f9b3b3bf000 size:2MB  name: anon(PROT_WRITE) global:0",
        );
        assert_eq!(st.calls, 0);
    }

    #[test]
    fn ioctl_commands_are_named_by_type_number_and_direction() {
        assert_eq!(ioctl_name(0xaf01), "VHOST_SET_OWNER");
        assert_eq!(ioctl_name(0x8008af00), "VHOST_GET_FEATURES");
        assert_eq!(ioctl_name(0x4008af00), "VHOST_SET_FEATURES");
        assert_eq!(ioctl_name(0xc008af12), "VHOST_GET_VRING_BASE");
        assert_eq!(ioctl_name(0xae01), "KVM_CREATE_VM");
        assert_eq!(ioctl_name(0x5401), "0x5401");
    }

    #[test]
    fn commands_print_in_decimal_or_hex() {
        assert_eq!(parse_num("0x4008af03"), Some(0x4008af03));
        assert_eq!(parse_num("21505"), Some(21505));
        assert_eq!(parse_num("-4"), Some(0xffff_fffc));
    }
}
