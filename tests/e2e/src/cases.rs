// SPDX-License-Identifier: GPL-2.0
//! The end-to-end cases: what a vhost owner in user space can see of its worker.
//!
//! Errnos of refused `VHOST_SET_OWNER` calls: `vhost_task_create()` fails with `EAGAIN` at
//! `RLIMIT_NPROC` or `pids.max` (copy_process()), but `vhost_worker_create()` turns any failure
//! into NULL and `vhost_dev_set_owner()` reports `ENOMEM`. That is what upstream 6.12 returns
//! to user space, with the C and the Rust vhost_task alike.

use crate::harness::{case, ensure, exit_code, fork, killed_by, Case, CaseResult, Child, Context};
use crate::ioctls;
use crate::kmsg;
use crate::netdev::{self, Config, NetDev};
use crate::procfs::{self, self_pid};
use crate::scsi;
use crate::setup;
use crate::sys::{self, open_vhost_net};
use crate::tap::{PacketSocket, Tap};
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::sched::{unshare, CloneFlags};
use nix::sys::resource::{setrlimit, Resource, RLIM_INFINITY};
use nix::sys::signal::{self, SigHandler, Signal};
use nix::sys::wait::WaitStatus;
use nix::unistd::{setgroups, sethostname, setresgid, setresuid, Gid, Uid};
use std::fs;
use std::io::{PipeReader, Read, Write};
use std::os::unix::io::AsRawFd;
use std::time::{Duration, Instant};
use vhost::vhost_kern::vsock::Vsock;
use vhost::vsock::VhostVsock;
use vhost::VhostBackend;

const T: Duration = Duration::from_secs(10);

/// Every case, in the order they run.
pub fn all() -> Vec<Case> {
    let mut v = vec![
        case!(worker_is_a_thread_of_the_owner, 60),
        case!(worker_shares_fresh_user_net_uts_pid_namespaces, 60),
        case!(traffic_10000_frames_each_way_mrg_rxbuf_off, 900),
        case!(traffic_10000_frames_each_way_mrg_rxbuf_on, 900),
        case!(rlimit_nproc_refuses_set_owner_until_raised, 60),
        case!(pids_max_refuses_set_owner_until_raised, 60),
        case!(close_of_the_fd_stops_the_worker, 60),
        case!(sigkill_of_owner_mid_traffic_is_reaped_promptly, 120),
        case!(owner_exit_while_idle_ends_the_worker, 60),
        case!(owner_exec_ends_the_worker, 60),
        case!(second_set_owner_fails_with_ebusy, 60),
        case!(ioctl_from_non_owner_fails_with_eperm, 60),
        case!(freezer_freezes_worker_and_thaw_resumes_stream, 300),
        case!(coredump_by_sigsegv_during_traffic_completes, 180),
        case!(coredump_by_sigquit_during_traffic_completes, 180),
        case!(kthread_mode_worker_is_a_kthread_and_traffic_flows, 300),
        case!(kthread_mode_invalid_value_is_einval, 60),
        case!(multi_worker_queues_on_own_workers_then_freed, 300),
        case!(vhost_vsock_worker_is_a_thread_of_the_owner, 60),
        case!(vhost_scsi_worker_is_a_thread_of_the_owner, 60),
        case!(qemu_vhost_net_worker_is_a_thread_of_qemu, 600),
    ];
    // KVM's NX huge page recovery thread, from a VMM on kvm-ioctls (kvm.rs).
    v.extend(crate::kvm::cases());
    // Modules: vhost and KVM unloaded and loaded again, the user-worker test module (modules.rs).
    v.extend(crate::modules::cases());
    v.push(case!(kernel_log_has_no_warnings, 60));
    v
}

/// The worker named after `owner` among the threads of `owner`, waiting for it.
pub(crate) fn worker_thread(owner: i32) -> Result<i32, String> {
    let name = format!("vhost-{owner}");
    let mut found = None;
    procfs::wait_for(T, || {
        found = procfs::threads(owner)
            .ok()
            .and_then(|ts| ts.into_iter().find(|t| t.comm == name).map(|t| t.tid));
        found.is_some()
    });
    found.ok_or_else(|| format!("no thread {name} in /proc/{owner}/task"))
}

/// All threads of `owner` named after it.
pub(crate) fn worker_threads(owner: i32) -> Vec<i32> {
    procfs::threads_named(owner, &format!("vhost-{owner}"))
}

/// Checks what the 6.4 series promised: the worker is a thread of `owner`, not a kthread,
/// in its cgroup and namespaces.
pub(crate) fn check_contract(owner: i32, w: i32) -> Result<(), String> {
    let tgid = procfs::status_num(w, "Tgid").ctx("worker status")?;
    ensure(tgid == owner as i64, || {
        format!("worker Tgid {tgid}, owner {owner}")
    })?;
    ensure(!procfs::is_kthread(w).ctx("worker status")?, || {
        "worker is a kthread".into()
    })?;
    let ppid = procfs::status_num(w, "PPid").ctx("worker status")?;
    let oppid = procfs::status_num(owner, "PPid").ctx("owner status")?;
    ensure(ppid == oppid && ppid != 2, || {
        format!("worker PPid {ppid}, owner's {oppid}: a child of kthreadd?")
    })?;
    let (cw, co) = (
        procfs::cgroup(w).ctx("cgroup")?,
        procfs::cgroup(owner).ctx("cgroup")?,
    );
    ensure(cw == co, || format!("worker in cgroup {cw}, owner in {co}"))?;
    let diff = procfs::ns_differences(w, owner).ctx("namespaces")?;
    ensure(diff.is_empty(), || format!("namespaces differ: {diff:?}"))?;
    Ok(())
}

fn worker_is_a_thread_of_the_owner() -> CaseResult {
    let me = self_pid();
    let (net, _mem) = NetDev::open_owned(None).ctx("VHOST_SET_OWNER")?;
    let w = worker_thread(me)?;
    check_contract(me, w)?;
    // `ps` shows kthreads in brackets: their cmdline is empty. A user thread shows the owner's.
    let cmdline = fs::read(format!("/proc/{w}/cmdline")).ctx("cmdline")?;
    ensure(!cmdline.is_empty(), || {
        "worker has no cmdline, like a kthread".into()
    })?;
    drop(net);
    Ok(format!(
        "owner {me}, worker {w} vhost-{me}: same tgid, cgroup, namespaces; not a kthread"
    ))
}

fn worker_shares_fresh_user_net_uts_pid_namespaces() -> CaseResult {
    let host_userns = procfs::ns(self_pid(), "user").ctx("user ns")?;
    unshare(
        CloneFlags::CLONE_NEWUSER
            | CloneFlags::CLONE_NEWNET
            | CloneFlags::CLONE_NEWUTS
            | CloneFlags::CLONE_NEWPID,
    )
    .ctx("unshare")?;
    // Map root to root, as a container runtime that keeps uid 0 would.
    fs::write("/proc/self/setgroups", "deny").ctx("setgroups")?;
    fs::write("/proc/self/uid_map", "0 0 1").ctx("uid_map")?;
    fs::write("/proc/self/gid_map", "0 0 1").ctx("gid_map")?;
    // The new pid namespace is for children: the owner is the first one.
    let mut child = fork(|| {
        let r = (|| -> Result<String, String> {
            let me = self_pid();
            ensure(std::process::id() == 1, || {
                "not pid 1 of the new pid namespace".into()
            })?;
            // The owner's own uts namespace: naming it proves the owner may change it.
            sethostname("vt-ns").ctx("sethostname in the new uts namespace")?;
            let (net, _mem) = NetDev::open_owned(None).ctx("VHOST_SET_OWNER")?;
            let w = worker_thread(me)?;
            check_contract(me, w)?;
            for kind in ["user", "net", "uts", "pid"] {
                let ns = procfs::ns(w, kind).ctx("ns")?;
                if kind == "user" {
                    ensure(ns != host_userns, || "worker in the initial user ns".into())?;
                }
            }
            drop(net);
            Ok(format!(
                "worker {w} shares the owner's new user, net, uts and pid namespaces"
            ))
        })();
        match r {
            Ok(s) => {
                println!("# {s}");
                0
            }
            Err(e) => {
                println!("# {e}");
                1
            }
        }
    })
    .ctx("fork")?;
    let st = child
        .wait_timeout(Duration::from_secs(50))
        .ok_or("owner hung")?;
    ensure(exit_code(st) == 0, || {
        "the owner in the new namespaces failed (see above)".into()
    })?;
    Ok("owner is pid 1 of fresh user+net+uts+pid namespaces; worker shares all".into())
}

fn traffic(mrg: bool, tapname: &str) -> CaseResult {
    let tap = Tap::new(tapname).ctx("tap")?;
    let sock = PacketSocket::new(tap.ifindex).ctx("packet socket")?;
    let mut dev = NetDev::new(&tap, Config::task(mrg)).ctx("vhost-net")?;
    let n = 10_000;
    let deadline = Instant::now() + Duration::from_secs(800);
    let start = Instant::now();
    let tx = netdev::transmit(&mut dev, &sock, n, deadline)?;
    let tx_s = start.elapsed().as_secs_f32();
    let start = Instant::now();
    let rx = netdev::receive(&mut dev, &sock, n, deadline)?;
    let rx_s = start.elapsed().as_secs_f32();
    let bytes: u64 = (0..n).map(|s| netdev::size_of_frame(s) as u64).sum();
    Ok(format!(
        "tx {tx} frames in {tx_s:.1} s, rx {rx} frames in {rx_s:.1} s, {} MiB each way, 60..65535 bytes, in order, byte for byte",
        bytes >> 20
    ))
}

fn traffic_10000_frames_each_way_mrg_rxbuf_off() -> CaseResult {
    traffic(false, "vt-traf0")
}

fn traffic_10000_frames_each_way_mrg_rxbuf_on() -> CaseResult {
    traffic(true, "vt-traf1")
}

/// Becomes uid/gid `id` without capabilities: no supplementary groups, then the gids, then
/// the uids, real, effective and saved.
pub(crate) fn become_user(id: u32) -> Result<(), String> {
    setgroups(&[]).ctx("setgroups")?;
    let (g, u) = (Gid::from_raw(id), Uid::from_raw(id));
    setresgid(g, g, g).ctx(&format!("setresgid {id}"))?;
    setresuid(u, u, u).ctx(&format!("setresuid {id}"))
}

/// Sets the soft limit `res` to `v`, with no hard limit, so that it can be raised again.
pub(crate) fn set_rlimit(res: Resource, v: u64) -> Result<(), String> {
    setrlimit(res, v, RLIM_INFINITY).ctx(&format!("setrlimit {res:?} {v}"))
}

/// The errno of a failed call, `None` if it succeeded.
pub(crate) fn errno_of(r: std::io::Result<()>) -> Option<i32> {
    r.err().and_then(|e| e.raw_os_error())
}

/// At `limit`, `VHOST_SET_OWNER` works on `kthread_fd`, in kthread mode (`why` it is not
/// limited), and fails with `ENOMEM` on `task_fd`, in the default mode.
fn refused_at_limit(
    kthread_fd: &fs::File,
    task_fd: &fs::File,
    limit: &str,
    why: &str,
) -> Result<(), String> {
    ensure(ioctls::set_owner(kthread_fd).is_ok(), || {
        format!("kthread mode refused at {limit}: {why}")
    })?;
    let e = errno_of(ioctls::set_owner(task_fd));
    ensure(e == Some(libc::ENOMEM), || {
        format!("at {limit} got {e:?}, want ENOMEM")
    })
}

fn rlimit_nproc_refuses_set_owner_until_raised() -> CaseResult {
    // Opened as root, used as an unprivileged user: how QEMU gets its fds from libvirt.
    let task_fd = open_vhost_net()?;
    let kthread_fd = open_vhost_net()?;
    ioctls::set_fork_from_owner(&kthread_fd, ioctls::FORK_OWNER_KTHREAD).ctx("kthread mode")?;
    // This process will be the user's only task: a limit of 1 is full. Set while still root,
    // with no hard limit, so that the user can raise it later.
    set_rlimit(Resource::RLIMIT_NPROC, 1)?;
    become_user(4343)?;
    refused_at_limit(
        &kthread_fd,
        &task_fd,
        "RLIMIT_NPROC",
        "kthreads do not count",
    )?;
    let me = self_pid();
    ensure(worker_threads(me).is_empty(), || {
        "a refused owner has a worker".into()
    })?;
    set_rlimit(Resource::RLIMIT_NPROC, 2)?;
    ioctls::set_owner(&task_fd).ctx("VHOST_SET_OWNER after raising RLIMIT_NPROC")?;
    let w = worker_thread(me)?;
    check_contract(me, w)?;
    Ok("RLIMIT_NPROC=1: ENOMEM (kthread mode: allowed); raised to 2: worker created".into())
}

fn pids_max_refuses_set_owner_until_raised() -> CaseResult {
    setup::enable_controller("pids").ctx("enable the pids controller")?;
    let cg = setup::enter_new_cgroup("vt-pids").ctx("cgroup")?;
    let kthread_fd = open_vhost_net()?;
    ioctls::set_fork_from_owner(&kthread_fd, ioctls::FORK_OWNER_KTHREAD).ctx("kthread mode")?;
    let task_fd = open_vhost_net()?;
    fs::write(format!("{cg}/pids.max"), "1").ctx("pids.max")?;
    refused_at_limit(
        &kthread_fd,
        &task_fd,
        "pids.max",
        "it is attached, not forked",
    )?;
    let events = fs::read_to_string(format!("{cg}/pids.events")).ctx("pids.events")?;
    ensure(!events.contains("max 0"), || {
        format!("pids.events did not count the refusal: {events}")
    })?;
    fs::write(format!("{cg}/pids.max"), "max").ctx("pids.max")?;
    ioctls::set_owner(&task_fd).ctx("VHOST_SET_OWNER after raising pids.max")?;
    let me = self_pid();
    let w = worker_thread(me)?;
    check_contract(me, w)?;
    let current = fs::read_to_string(format!("{cg}/pids.current")).ctx("pids.current")?;
    Ok(format!(
        "pids.max=1: ENOMEM ({}); raised: worker created, pids.current {}",
        events.trim().replace('\n', ", "),
        current.trim()
    ))
}

fn close_of_the_fd_stops_the_worker() -> CaseResult {
    let me = self_pid();
    let (net, mem) = NetDev::open_owned(None).ctx("VHOST_SET_OWNER")?;
    let w = worker_thread(me)?;
    drop(net);
    drop(mem);
    let gone = procfs::wait_gone(w, T).ok_or("worker still there after close")?;
    Ok(format!(
        "worker {w} gone {} ms after close",
        gone.as_millis()
    ))
}

/// Runs a vhost-net owner in a child: it pushes frames forever, and reports its worker's tid
/// through the pipe once traffic flows. `prep` runs first, in the child.
pub(crate) fn spawn_busy_owner(
    tapname: &str,
    prep: fn() -> Result<(), String>,
) -> Result<(Child, i32), String> {
    let tap = Tap::new(tapname).ctx("tap")?;
    spawn_busy_owner_on(&tap, 200, prep)
}

/// [`spawn_busy_owner`] on a tap the caller keeps: the worker's tid comes once `frames` frames
/// went out, and the owner goes on sending.
pub(crate) fn spawn_busy_owner_on(
    tap: &Tap,
    frames: u32,
    prep: fn() -> Result<(), String>,
) -> Result<(Child, i32), String> {
    let (mut r, w) = std::io::pipe().ctx("pipe")?;
    let child = fork(move || {
        let r = (|| -> Result<(), String> {
            prep()?;
            let mut dev = NetDev::new(tap, Config::task(true)).ctx("vhost-net")?;
            let me = self_pid();
            let worker = worker_thread(me)?;
            let mut seq = 0u32;
            loop {
                let f = netdev::frame(seq, netdev::size_of_frame(seq));
                if dev.send(&f).ctx("send")? {
                    seq += 1;
                    if seq == frames {
                        (&w).write_all(&worker.to_ne_bytes()).ctx("pipe")?;
                    }
                } else {
                    dev.wait_any(Duration::from_millis(10)).ctx("wait")?;
                }
            }
        })();
        if let Err(e) = r {
            println!("# busy owner: {e}");
        }
        1
    })
    .ctx("fork")?;
    Ok((child, read_tid(&mut r)?))
}

fn no_prep() -> Result<(), String> {
    Ok(())
}

fn sigkill_of_owner_mid_traffic_is_reaped_promptly() -> CaseResult {
    let (mut child, w) = spawn_busy_owner("vt-kill", no_prep)?;
    ensure(procfs::exists(w), || "no worker".into())?;
    std::thread::sleep(Duration::from_millis(100));
    let ms = child
        .sigkill_and_reap(Duration::from_secs(30))
        .map_err(|e| format!("owner {e}"))?
        .as_millis();
    ensure(!procfs::exists(w), || {
        "worker outlived its reaped owner".into()
    })?;
    ensure(ms < 10_000, || format!("reaping took {ms} ms"))?;
    Ok(format!(
        "owner killed mid-traffic, reaped with its worker in {ms} ms"
    ))
}

/// Forks an owner: it sets up a vhost-net device, reports its worker's tid, then runs `then`
/// with the device. Returns the child and the worker's tid.
fn spawn_owner(
    then: impl FnOnce(vhost::vhost_kern::net::Net<std::sync::Arc<vm_memory::GuestMemoryMmap>>) -> i32,
) -> Result<(Child, i32), String> {
    let (mut r, w) = std::io::pipe().ctx("pipe")?;
    let child = fork(move || {
        let r = (|| -> Result<_, String> {
            let (net, _mem) = NetDev::open_owned(None).ctx("VHOST_SET_OWNER")?;
            let worker = worker_thread(self_pid())?;
            (&w).write_all(&worker.to_ne_bytes()).ctx("pipe")?;
            Ok(net)
        })();
        match r {
            Ok(net) => then(net),
            Err(e) => {
                println!("# owner: {e}");
                1
            }
        }
    })
    .ctx("fork")?;
    Ok((child, read_tid(&mut r)?))
}

/// Reads the worker tid a child reports through the pipe `r`, whose write end the parent no
/// longer holds.
pub(crate) fn read_tid(r: &mut PipeReader) -> Result<i32, String> {
    let mut buf = [0u8; 4];
    if !sys::readable(r, Duration::from_secs(60)).ctx("poll")? {
        return Err("the owner did not report its worker".into());
    }
    r.read_exact(&mut buf)
        .ctx("the owner died before reporting its worker")?;
    Ok(i32::from_ne_bytes(buf))
}

fn owner_exit_while_idle_ends_the_worker() -> CaseResult {
    let (mut child, w) = spawn_owner(|net| {
        std::thread::sleep(Duration::from_millis(300));
        // Exit with the device still open and its worker idle.
        std::mem::forget(net);
        0
    })?;
    let t0 = Instant::now();
    let st = child.wait_timeout(T).ok_or("owner did not exit")?;
    ensure(exit_code(st) == 0, || format!("owner status {st:?}"))?;
    procfs::wait_gone(w, T).ok_or("worker outlived its owner")?;
    let ms = t0.elapsed().as_millis();
    Ok(format!(
        "owner exited with its worker idle; both gone in {ms} ms"
    ))
}

fn owner_exec_ends_the_worker() -> CaseResult {
    let exe = std::env::current_exe().ctx("current_exe")?;
    let (mut child, w) = spawn_owner(|net| {
        std::mem::forget(net);
        // exec must take the worker down with the other threads, and not hang.
        let e = std::os::unix::process::CommandExt::exec(
            std::process::Command::new(&exe).arg("exec-probe"),
        );
        println!("# exec: {e}");
        1
    })?;
    let st = child
        .wait_timeout(Duration::from_secs(30))
        .ok_or("exec hung")?;
    ensure(exit_code(st) == 0, || {
        format!(
            "the exec'd image saw other threads or failed (status {})",
            exit_code(st)
        )
    })?;
    ensure(!procfs::exists(w), || "worker survived exec".into())?;
    Ok(format!(
        "exec by the owner ended worker {w}; the new image runs alone"
    ))
}

/// `vhost-e2e exec-probe`: succeeds if this process has one thread and no vhost fd.
pub fn exec_probe() -> i32 {
    let me = self_pid();
    let threads = procfs::threads(me).unwrap_or_default();
    if threads.len() == 1 {
        0
    } else {
        println!("# after exec: threads {threads:?}");
        1
    }
}

fn second_set_owner_fails_with_ebusy() -> CaseResult {
    let (net, _mem) = NetDev::open_owned(None).ctx("VHOST_SET_OWNER")?;
    let e = errno_of(ioctls::set_owner(&net));
    ensure(e == Some(libc::EBUSY), || {
        format!("second VHOST_SET_OWNER: {e:?}, want EBUSY")
    })?;
    let me = self_pid();
    let n = worker_threads(me).len();
    ensure(n == 1, || {
        format!("{n} workers after a refused second owner")
    })?;
    Ok("second VHOST_SET_OWNER: EBUSY, still one worker".into())
}

fn ioctl_from_non_owner_fails_with_eperm() -> CaseResult {
    let (net, _mem) = NetDev::open_owned(None).ctx("VHOST_SET_OWNER")?;
    let fd = net.as_raw_fd();
    let mut child = fork(|| {
        // A forked child has the fd but another mm: it is not the owner.
        let e1 = errno_of(
            vhost::VhostBackend::set_vring_num(&net, 0, 256).map_err(|e| match e {
                vhost::Error::IoctlError(e) => e,
                e => std::io::Error::other(format!("{e:?}")),
            }),
        );
        let e2 = errno_of(ioctls::set_owner(&net));
        println!("# non-owner: VHOST_SET_VRING_NUM {e1:?}, VHOST_SET_OWNER {e2:?} (fd {fd})");
        i32::from(!(e1 == Some(libc::EPERM) && e2 == Some(libc::EBUSY)))
    })
    .ctx("fork")?;
    let st = child.wait_timeout(T).ok_or("child hung")?;
    ensure(exit_code(st) == 0, || {
        "non-owner ioctls were not refused with EPERM / EBUSY (see above)".into()
    })?;
    Ok("from a forked non-owner: VHOST_SET_VRING_NUM EPERM, VHOST_SET_OWNER EBUSY".into())
}

/// Whether the cgroup at `cg` reports itself frozen (`frozen 1` in cgroup.events).
pub(crate) fn cgroup_frozen(cg: &str) -> bool {
    fs::read_to_string(format!("{cg}/cgroup.events")).is_ok_and(|s| s.contains("frozen 1"))
}

fn freezer_freezes_worker_and_thaw_resumes_stream() -> CaseResult {
    const N: u32 = 4000;
    let cg = setup::cgroup("vt-freeze").ctx("cgroup")?;
    let tap = Tap::new("vt-frz").ctx("tap")?;
    let sock = PacketSocket::new(tap.ifindex).ctx("packet socket")?;
    let (mut acks_r, mut acks_w) = std::io::pipe().ctx("pipe")?;
    let (mut ready_r, ready_w) = std::io::pipe().ctx("pipe")?;
    let cg2 = cg.clone();
    // The owner borrows the tap, which this process keeps until it has read every frame: the
    // tap goes with the last of its files, and the packet socket's reads then fail (ENETDOWN).
    let tap = &tap;
    let mut child = fork(move || {
        let r = (|| -> Result<(), String> {
            fs::write(format!("{cg2}/cgroup.procs"), self_pid().to_string()).ctx("cgroup")?;
            let mut dev = NetDev::new(tap, Config::task(false)).ctx("vhost-net")?;
            let w = worker_thread(self_pid())?;
            (&ready_w).write_all(&w.to_ne_bytes()).ctx("pipe")?;
            fcntl(&acks_r, FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).ctx("O_NONBLOCK on the acks")?;
            let (mut seq, mut acked) = (0u32, 0u32);
            while seq < N {
                let mut b = [0u8; 64];
                match acks_r.read(&mut b) {
                    Ok(n) => acked += 64 * n as u32,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(format!("acks: {e}")),
                }
                if seq - acked.min(seq) >= 256 {
                    std::thread::sleep(Duration::from_millis(1));
                    continue;
                }
                let f = netdev::frame(seq, netdev::size_of_frame(seq));
                if dev.send(&f).ctx("send")? {
                    seq += 1;
                } else {
                    dev.wait_any(Duration::from_millis(10)).ctx("wait")?;
                }
            }
            while dev.tx_in_flight() > 0 {
                dev.reap_tx();
                dev.wait_any(Duration::from_millis(10)).ctx("wait")?;
            }
            Ok(())
        })();
        match r {
            Ok(()) => 0,
            Err(e) => {
                println!("# freezer owner: {e}");
                1
            }
        }
    })
    .ctx("fork")?;
    let w = read_tid(&mut ready_r)?;

    let mut buf = vec![0u8; netdev::MAX_FRAME + 64];
    let mut next = 0u32;
    let mut recv_one = |next: &mut u32, wait: Duration| -> Result<bool, String> {
        match sock.recv(&mut buf, wait).ctx("recv")? {
            Some(len) => {
                netdev::check_frame(&buf[..len], *next)?;
                *next += 1;
                if (*next).is_multiple_of(64) {
                    // Ignored: it fails only once the owner is gone, which its wait reports.
                    let _ = acks_w.write_all(&[0]);
                }
                Ok(true)
            }
            None => Ok(false),
        }
    };
    let deadline = Instant::now() + Duration::from_secs(200);
    while next < 500 {
        ensure(Instant::now() < deadline, || {
            format!("stream stalled at {next} before freezing")
        })?;
        recv_one(&mut next, Duration::from_millis(200))?;
    }
    fs::write(format!("{cg}/cgroup.freeze"), "1").ctx("freeze")?;
    let frozen = procfs::wait_for(Duration::from_secs(20), || cgroup_frozen(&cg));
    let wstate = procfs::state(w).unwrap_or_default();
    if !frozen {
        // Ignored: the case fails anyway, with the reason below; this only tries to thaw.
        let _ = fs::write(format!("{cg}/cgroup.freeze"), "0");
        return Err(format!(
            "cgroup never reported frozen; worker state {wstate}"
        ));
    }
    // Whatever was already in flight arrives; then nothing may.
    while recv_one(&mut next, Duration::from_millis(300))? {}
    let at_freeze = next;
    std::thread::sleep(Duration::from_secs(1));
    let moved = recv_one(&mut next, Duration::from_millis(500))?;
    fs::write(format!("{cg}/cgroup.freeze"), "0").ctx("thaw")?;
    ensure(!moved, || format!("frame {at_freeze} arrived while frozen"))?;
    while next < N {
        ensure(Instant::now() < deadline, || {
            format!("stream stalled at {next} after thawing")
        })?;
        recv_one(&mut next, Duration::from_millis(200))?;
    }
    let st = child
        .wait_timeout(Duration::from_secs(30))
        .ok_or("owner hung after thaw")?;
    ensure(exit_code(st) == 0, || "owner failed (see above)".into())?;
    Ok(format!(
        "frozen at frame {at_freeze} (worker state {wstate}, cgroup frozen 1), nothing for 1 s; thawed: all {N} frames in order"
    ))
}

fn coredump_during_traffic(sig: Signal, tapname: &str) -> CaseResult {
    fs::write("/proc/sys/kernel/core_pattern", "/tmp/vt-core.%p").ctx("core_pattern")?;
    fn prep() -> Result<(), String> {
        set_rlimit(Resource::RLIMIT_CORE, RLIM_INFINITY)?;
        // The Rust runtime catches SIGSEGV to report stack overflows: give it back the
        // default action, a core dump.
        for sig in [Signal::SIGSEGV, Signal::SIGQUIT] {
            // SAFETY: SIG_DFL installs no handler, so no code of ours can run in a signal
            // context; the handler it replaces (the runtime's) is not used again.
            unsafe { signal::signal(sig, SigHandler::SigDfl) }
                .ctx(&format!("signal({sig}, SIG_DFL)"))?;
        }
        nix::sys::prctl::set_dumpable(true).ctx("prctl(PR_SET_DUMPABLE, 1)")
    }
    let (mut child, w) = spawn_busy_owner(tapname, prep)?;
    let t0 = Instant::now();
    child.kill(sig)?;
    let st = child
        .wait_timeout(Duration::from_secs(120))
        .ok_or("owner still dumping core after 120 s: hung")?;
    let ms = t0.elapsed().as_millis();
    ensure(killed_by(st, sig, false), || format!("status {st:?}"))?;
    ensure(matches!(st, WaitStatus::Signaled(_, _, true)), || {
        "no core dumped".into()
    })?;
    let core = format!("/tmp/vt-core.{}", child.pid);
    let size = fs::metadata(&core).map(|m| m.len()).unwrap_or(0);
    // Ignored: a core left behind only takes room in the guest's /tmp, which dies with it.
    let _ = fs::remove_file(&core);
    ensure(size > 0, || format!("{core} is empty or missing"))?;
    ensure(!procfs::exists(w), || "worker outlived the dump".into())?;
    Ok(format!(
        "core of {} KiB dumped and owner reaped in {ms} ms",
        size >> 10
    ))
}

fn coredump_by_sigsegv_during_traffic_completes() -> CaseResult {
    coredump_during_traffic(Signal::SIGSEGV, "vt-core0")
}

fn coredump_by_sigquit_during_traffic_completes() -> CaseResult {
    coredump_during_traffic(Signal::SIGQUIT, "vt-core1")
}

fn kthread_mode_worker_is_a_kthread_and_traffic_flows() -> CaseResult {
    let me = self_pid();
    let tap = Tap::new("vt-kth").ctx("tap")?;
    let sock = PacketSocket::new(tap.ifindex).ctx("packet socket")?;
    let mut dev = NetDev::new(
        &tap,
        Config {
            mrg_rxbuf: true,
            fork_owner: Some(ioctls::FORK_OWNER_KTHREAD),
        },
    )
    .ctx("vhost-net")?;
    let mode = ioctls::get_fork_from_owner(&dev.net).ctx("VHOST_GET_FORK_FROM_OWNER")?;
    ensure(mode == ioctls::FORK_OWNER_KTHREAD, || {
        format!("mode {mode}")
    })?;
    ensure(worker_threads(me).is_empty(), || {
        "kthread mode made a thread of the owner".into()
    })?;
    let name = format!("vhost-{me}");
    let k = *procfs::find_by_comm(&name)
        .first()
        .ok_or("no kthread worker")?;
    ensure(procfs::is_kthread(k).ctx("status")?, || {
        "worker is not a kthread".into()
    })?;
    ensure(procfs::status_num(k, "PPid").ctx("status")? == 2, || {
        "not a child of kthreadd".into()
    })?;
    let deadline = Instant::now() + Duration::from_secs(250);
    let tx = netdev::transmit(&mut dev, &sock, 1000, deadline)?;
    let rx = netdev::receive(&mut dev, &sock, 1000, deadline)?;
    Ok(format!(
        "kthread {k} {name} (PPid 2, Kthread 1); {tx} frames tx, {rx} rx"
    ))
}

fn kthread_mode_invalid_value_is_einval() -> CaseResult {
    let fd = open_vhost_net()?;
    let e = errno_of(ioctls::set_fork_from_owner(&fd, 2));
    ensure(e == Some(libc::EINVAL), || {
        format!("VHOST_SET_FORK_FROM_OWNER 2: {e:?}")
    })?;
    let mode = ioctls::get_fork_from_owner(&fd).ctx("get")?;
    ensure(mode == ioctls::FORK_OWNER_TASK, || {
        format!("mode changed to {mode}")
    })?;
    ioctls::set_owner(&fd).ctx("set_owner")?;
    let e = errno_of(ioctls::set_fork_from_owner(&fd, ioctls::FORK_OWNER_KTHREAD));
    ensure(e.is_some(), || {
        "mode switch after VHOST_SET_OWNER accepted".into()
    })?;
    Ok(format!(
        "value 2: EINVAL, mode stays task; after VHOST_SET_OWNER: errno {e:?}"
    ))
}

/// Multiple workers per device. In 6.12 only vhost-scsi wires up `VHOST_NEW_WORKER` and
/// friends (vhost-net answers ENOTTY), so the two I/O queues of a vhost-scsi device get a worker
/// each, and writes on one queue are read back through the other.
fn multi_worker_queues_on_own_workers_then_freed() -> CaseResult {
    let me = self_pid();
    let (net, _mem) = NetDev::open_owned(None).ctx("vhost-net")?;
    let e = errno_of(ioctls::new_worker(&net).map(|_| ()));
    drop(net);
    let _target = scsi::Target::new()?;
    let mut dev = scsi::ScsiDev::open()?;
    dev.set_owner()
        .map_err(|e| format!("VHOST_SET_OWNER: {e:?}"))?;
    dev.setup_memory()?;
    let (qa, qb) = (scsi::VQ_IO, scsi::VQ_IO + 1);
    dev.setup_queue(qa)?;
    dev.setup_queue(qb)?;
    let default = ioctls::get_vring_worker(&dev, qa as u32).ctx("VHOST_GET_VRING_WORKER")?;
    let wa = ioctls::new_worker(&dev).ctx("VHOST_NEW_WORKER")?;
    let wb = ioctls::new_worker(&dev).ctx("VHOST_NEW_WORKER")?;
    ioctls::attach_vring_worker(&dev, qa as u32, wa).ctx("VHOST_ATTACH_VRING_WORKER")?;
    ioctls::attach_vring_worker(&dev, qb as u32, wb).ctx("VHOST_ATTACH_VRING_WORKER")?;
    ensure(
        ioctls::get_vring_worker(&dev, qa as u32).ctx("get")? == wa,
        || "queue a not moved".into(),
    )?;
    ensure(
        ioctls::get_vring_worker(&dev, qb as u32).ctx("get")? == wb,
        || "queue b not moved".into(),
    )?;
    let ws = worker_threads(me);
    ensure(ws.len() == 3, || {
        format!("{} worker threads, want 3", ws.len())
    })?;
    for &w in &ws {
        check_contract(me, w)?;
    }
    dev.set_endpoint()?;
    // Write on queue a, read back on queue b, and the other way round.
    let rounds = 64u32;
    for i in 0..rounds {
        let lba = (i % 32) * 8;
        let (wq, rq) = if i % 2 == 0 { (qa, qb) } else { (qb, qa) };
        let data = scsi::pattern(lba, 8, i);
        dev.write_blocks(wq, lba, &data)?;
        let back = dev.read_blocks(rq, lba, 8)?;
        ensure(back == data, || {
            format!("round {i}: block {lba} read back differs")
        })?;
    }
    // A worker in use cannot be freed.
    let busy = errno_of(ioctls::free_worker(&dev, wa));
    ensure(busy == Some(libc::EBUSY), || {
        format!("freeing an attached worker: {busy:?}")
    })?;
    ioctls::attach_vring_worker(&dev, qa as u32, default).ctx("attach back")?;
    ioctls::attach_vring_worker(&dev, qb as u32, default).ctx("attach back")?;
    ioctls::free_worker(&dev, wa).ctx("VHOST_FREE_WORKER")?;
    ioctls::free_worker(&dev, wb).ctx("VHOST_FREE_WORKER")?;
    ensure(
        procfs::wait_for(T, || worker_threads(me).len() == 1),
        || format!("{} worker threads after freeing", worker_threads(me).len()),
    )?;
    dev.clear_endpoint()?;
    Ok(format!(
        "vhost-scsi: 3 worker threads of the owner, queues on workers {wa} and {wb}: {rounds} writes and reads of 4 KiB across them; freed back to 1 (vhost-net VHOST_NEW_WORKER: {e:?}, ENOTTY in 6.12)"
    ))
}

fn vhost_vsock_worker_is_a_thread_of_the_owner() -> CaseResult {
    let me = self_pid();
    let mem = std::sync::Arc::new(
        vm_memory::GuestMemoryMmap::<()>::from_ranges(&[(vm_memory::GuestAddress(0), 1 << 20)])
            .map_err(|e| format!("{e:?}"))?,
    );
    let vsock = Vsock::new(mem).map_err(|e| format!("open /dev/vhost-vsock: {e:?}"))?;
    vsock
        .set_owner()
        .map_err(|e| format!("VHOST_SET_OWNER: {e:?}"))?;
    let w = worker_thread(me)?;
    check_contract(me, w)?;
    let cid = 3 + u64::from(me as u32);
    vsock
        .set_guest_cid(cid)
        .map_err(|e| format!("VHOST_VSOCK_SET_GUEST_CID: {e:?}"))?;
    drop(vsock);
    ensure(procfs::wait_for(T, || !procfs::exists(w)), || {
        "worker outlived the device".into()
    })?;
    Ok(format!("worker {w}, guest cid {cid}; gone after close"))
}

fn vhost_scsi_worker_is_a_thread_of_the_owner() -> CaseResult {
    let _target = scsi::Target::new()?;
    let me = self_pid();
    let mut dev = scsi::ScsiDev::open()?;
    let abi = ioctls::scsi_abi_version(&dev).ctx("VHOST_SCSI_GET_ABI_VERSION")?;
    ensure(abi == 1, || format!("VHOST_SCSI_ABI_VERSION {abi}"))?;
    dev.set_owner()
        .map_err(|e| format!("VHOST_SET_OWNER: {e:?}"))?;
    let w = worker_thread(me)?;
    check_contract(me, w)?;
    dev.setup_memory()?;
    dev.setup_queue(scsi::VQ_IO)?;
    dev.set_endpoint()?;
    // One I/O through the worker: write blocks, read them back.
    let data = scsi::pattern(8, 8, 1);
    dev.write_blocks(scsi::VQ_IO, 8, &data)?;
    let back = dev.read_blocks(scsi::VQ_IO, 8, 8)?;
    ensure(back == data, || {
        "read back differs from what was written".into()
    })?;
    dev.clear_endpoint()?;
    drop(dev);
    ensure(procfs::wait_for(T, || !procfs::exists(w)), || {
        "worker outlived the device".into()
    })?;
    Ok(format!(
        "abi {abi}; worker {w}; endpoint {}/tpgt_{} set, 4 KiB written and read back through the worker, cleared; gone after close",
        scsi::WWPN,
        scsi::TPGT
    ))
}

fn qemu_vhost_net_worker_is_a_thread_of_qemu() -> CaseResult {
    crate::qemu::run()
}

fn kernel_log_has_no_warnings() -> CaseResult {
    let out = std::process::Command::new("dmesg").output().ctx("dmesg")?;
    let log = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<String> = log.lines().map(str::to_string).collect();
    // Strict: no fault is injected in this suite, so any stack trace is a report too.
    let bad = kmsg::splats_strict(&lines);
    ensure(bad.is_empty(), || {
        format!("kernel log: {}", bad.join(" | "))
    })?;
    Ok(format!(
        "{} lines of dmesg, no WARNING/BUG/Oops/hung task",
        log.lines().count()
    ))
}
