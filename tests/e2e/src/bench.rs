// SPDX-License-Identifier: GPL-2.0
//! `vhost-e2e bench [cycles=N] [frames=N] [owners=N]`: what vhost_task costs, seen from a vhost
//! owner. Prints one line per measurement, `BENCH <name> <value> <unit>`, for scripts/bench.sh
//! to compare kernels, after the KUnit lines the kernel logged at boot (the `vt_bench` suite,
//! when `kunit.filter_glob=vt_bench*` ran it), each as `KTAP <line>`.
//!
//! - `cycles` (default 1000): owner cycles for `set_owner`/`close` and their kthread controls;
//! - `frames` (default 20000): 60-byte frames for `tx_small_frames` and `rx_small_frames`, with
//!   the owner pinned to CPU 0 and its worker to CPU 1;
//! - `owners` (default 1000): owners alive at once in the `scale_*` measurements;
//! - `vnt` (default none): the path of upstream's `tools/virtio/vhost_net_test` to run last, with
//!   `vnt_bufs` (default 1,048,576, its own default) buffers each way, for `vhost_net_test_rx` and
//!   `vhost_net_test_tx`; `vnt_diag=1` samples its context switches as it runs; `vnt_only=1`
//!   runs it alone, and `vnt_kthread=1` as the control with vhost's kthread worker (booted with
//!   `vhost.fork_from_owner_default=0`), as `vhost_net_test_rx_kthread_control` and `_tx_...`.

use crate::kmsg::Kmsg;
use crate::netdev::{self, Config, NetDev};
use crate::sys::open_vhost_net;
use crate::tap::{PacketSocket, Tap};
use nix::pty::openpty;
use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::sys::resource::{setrlimit, Resource};
use nix::unistd::Pid;
use std::fs::File;
use std::time::{Duration, Instant};

fn report(name: &str, value: f64, unit: &str) {
    println!("BENCH {name} {value:.1} {unit}");
}

/// Owner cycles in worker `mode`: open /dev/vhost-net, `VHOST_SET_OWNER` (vhost_task_create +
/// start in task mode, timed),
/// close (vhost_task_stop, which waits for the worker's exit, and vhost-net's teardown, timed).
/// Returns the medians, in microseconds, of the two timed steps.
fn owner_cycle(n: u32, mode: u8) -> Result<(f64, f64), String> {
    let mut set_owner = Vec::new();
    let mut close = Vec::new();
    for _ in 0..n {
        let fd = open_vhost_net()?;
        crate::ioctls::set_fork_from_owner(&fd, mode).map_err(|e| format!("mode: {e}"))?;
        let t0 = Instant::now();
        crate::ioctls::set_owner(&fd).map_err(|e| format!("VHOST_SET_OWNER: {e}"))?;
        set_owner.push(t0.elapsed().as_secs_f64() * 1e6);
        let t0 = Instant::now();
        // The close: vhost's release, which stops the worker. A File drops its close's error,
        // which for a device file is always 0: release() cannot fail it.
        drop(fd);
        close.push(t0.elapsed().as_secs_f64() * 1e6);
    }
    Ok((median(&mut set_owner), median(&mut close)))
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Restricts thread `tid` (0: the calling thread) to the CPUs in `cpus`.
fn pin(tid: i32, cpus: &[usize]) -> Result<(), String> {
    let mut set = CpuSet::new();
    for &c in cpus {
        set.set(c).map_err(|e| format!("CPU {c}: {e}"))?;
    }
    sched_setaffinity(Pid::from_raw(tid), &set)
        .map_err(|e| format!("sched_setaffinity({tid}): {e}"))
}

/// The frame workloads run with the owner on CPU 0 and its worker on CPU 1, so that every
/// boot measures the same placement: left to the scheduler, where the two land differs from
/// boot to boot and moves the figures by several per cent even under -icount. Returns a guard
/// that lets the owner run anywhere again.
fn pin_owner_and_worker() -> Result<impl Drop, String> {
    struct Unpin;
    impl Drop for Unpin {
        fn drop(&mut self) {
            if let Err(e) = pin(0, &(0..64).collect::<Vec<_>>()) {
                println!("BENCH-NOTE the owner stays pinned: {e}");
            }
        }
    }
    let me = crate::procfs::self_pid();
    let worker = format!("vhost-{me}");
    let tids: Vec<i32> = crate::procfs::threads(me)
        .map_err(|e| format!("threads: {e}"))?
        .into_iter()
        .filter(|t| t.comm == worker)
        .map(|t| t.tid)
        .collect();
    let [tid] = tids[..] else {
        return Err(format!("{} threads named {worker}, not 1", tids.len()));
    };
    pin(0, &[0])?;
    pin(tid, &[1])?;
    Ok(Unpin)
}

/// What the frame workloads run on: a tap named `name`, a packet socket on it, a vhost-net
/// device (mergeable receive buffers) backed by it, and the owner and worker pinned.
fn frame_bench(name: &str) -> Result<(Tap, PacketSocket, NetDev, impl Drop), String> {
    let tap = Tap::new(name).map_err(|e| format!("tap: {e}"))?;
    let sock = PacketSocket::new(tap.ifindex).map_err(|e| format!("socket: {e}"))?;
    let dev = NetDev::new(&tap, Config::task(true)).map_err(|e| format!("vhost-net: {e}"))?;
    let pinned = pin_owner_and_worker()?;
    Ok((tap, sock, dev, pinned))
}

/// How long a frame workload may take.
const BENCH_LIMIT: Duration = Duration::from_secs(300);

/// Small frames through the transmit path: each kick wakes the worker. Frames per second.
fn tx_small(n: u32) -> Result<f64, String> {
    let (_tap, sock, mut dev, _pinned) = frame_bench("vt-bench")?;
    let mut buf = vec![0u8; 2048];
    let start = Instant::now();
    netdev::pump(
        &mut (&mut dev, &mut buf),
        (n, 128),
        start + BENCH_LIMIT,
        "tx",
        |(dev, _), seq| {
            dev.send(&netdev::frame(seq, 60))
                .map_err(|e| format!("send: {e}"))
        },
        |(_, buf), _| {
            let got = sock.recv(buf, Duration::from_millis(100));
            got.map(|f| u32::from(f.is_some()))
                .map_err(|e| format!("recv: {e}"))
        },
    )?;
    Ok(f64::from(n) / start.elapsed().as_secs_f64())
}

/// Small frames through the receive path: each frame the packet socket sends on the tap
/// wakes the worker, which copies it into the receive ring. Frames per second.
fn rx_small(n: u32) -> Result<f64, String> {
    let (_tap, sock, mut dev, _pinned) = frame_bench("vt-bench-rx")?;
    let start = Instant::now();
    // Fewer in flight than the tap's queue holds, so that none is dropped.
    netdev::pump(
        &mut dev,
        (n, 128),
        start + BENCH_LIMIT,
        "rx",
        |_, seq| {
            sock.send(&netdev::frame(seq, 60))
                .map(|()| true)
                .map_err(|e| format!("send: {e}"))
        },
        |dev, _| {
            let got = netdev::received(dev).map_err(|e| e.to_string())?.len() as u32;
            if got == 0 {
                dev.wait_call(netdev::RX, Duration::from_millis(100))
                    .map_err(|e| e.to_string())?;
            }
            Ok(got)
        },
    )?;
    Ok(f64::from(n) / start.elapsed().as_secs_f64())
}

/// The fields of /proc/meminfo the scale measurement reads, in bytes.
struct MemInfo {
    slab: i64,
    kernel_stack: i64,
    available: i64,
}

fn meminfo() -> Result<MemInfo, String> {
    let s = std::fs::read_to_string("/proc/meminfo").map_err(|e| format!("meminfo: {e}"))?;
    let field = |name: &str| -> Result<i64, String> {
        s.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse::<i64>().ok())
            .map(|kib| kib * 1024)
            .ok_or_else(|| format!("no {name} in /proc/meminfo"))
    };
    Ok(MemInfo {
        slab: field("Slab")?,
        kernel_stack: field("KernelStack")?,
        available: field("MemAvailable")?,
    })
}

/// `n` owners, each with its worker, alive at once in this process: the time to give all the
/// open devices an owner (`n` vhost_task_create + start), the time to close them all (`n`
/// vhost_task_stop and vhost-net teardowns), and the memory per worker from /proc/meminfo
/// around the `VHOST_SET_OWNER`s.
fn scale(n: u32) -> Result<(), String> {
    let want = u64::from(n) + 64;
    setrlimit(Resource::RLIMIT_NOFILE, want, want)
        .map_err(|e| format!("RLIMIT_NOFILE {want}: {e}"))?;
    let fds = (0..n)
        .map(|_| open_vhost_net())
        .collect::<Result<Vec<_>, _>>()?;
    let before = meminfo()?;
    let t0 = Instant::now();
    for fd in &fds {
        crate::ioctls::set_owner(fd).map_err(|e| format!("VHOST_SET_OWNER: {e}"))?;
    }
    let create = t0.elapsed();
    let after = meminfo()?;
    let t0 = Instant::now();
    drop(fds);
    let teardown = t0.elapsed();
    let per = |d: i64| d as f64 / f64::from(n);
    report("scale_set_owner_all", create.as_secs_f64() * 1e3, "ms");
    report("scale_close_all", teardown.as_secs_f64() * 1e3, "ms");
    report("scale_slab_per_owner", per(after.slab - before.slab), "B");
    report(
        "scale_kernel_stack_per_owner",
        per(after.kernel_stack - before.kernel_stack),
        "B",
    );
    report(
        "scale_memavailable_per_owner",
        per(before.available - after.available),
        "B",
    );
    Ok(())
}

/// Upstream's vhost-net test, `tools/virtio/vhost_net_test` of the kernel's own tree, as a
/// workload: its tap and vhost-net device, `bufs` buffers received through vhost-net (it sends
/// each through a packet socket on the tap, the worker copies it into the receive ring), then
/// `bufs` transmitted (the worker sends each into the tap, a packet socket reads it back), one
/// buffer in flight at a time, each a wake-up of the worker. Returns the buffers per second of
/// each half, timed from the lines it prints at the end of each.
///
/// The test and its worker run on CPU 0 (the worker inherits the test's CPUs). The test
/// busy-polls its rings; under `-icount` QEMU runs the vCPUs in turn on one host thread, and a
/// vCPU that spins keeps its turn until its time slice ends, so with the worker on another vCPU
/// every buffer would wait for one. On one vCPU each buffer is a wake-up and a switch to the
/// worker, in both clocks.
///
/// With `diag`, it also prints the test's lines and, every tenth of a second of guest time,
/// the context switches of the test and of its worker (`BENCH-NOTE vnt ...`): what a figure
/// that moves is made of. Off in `make bench`: the sampling runs on the other vCPU, which
/// under `-icount` adds its instructions to the guest's time.
///
/// With `kthread`, the kernel was booted with `vhost.fork_from_owner_default=0`: the worker is
/// vhost's kthread, which does not use vhost_task, and which this pins to CPU 0 once it appears
/// (a kthread does not inherit the test's CPUs): a control for what differs between two kernels
/// besides vhost_task.
fn vhost_net_test(path: &str, bufs: u32, diag: bool, kthread: bool) -> Result<(f64, f64), String> {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    // A new device's first link event waits for a second after the last one (linkwatch), and
    // until it has run the tap's queue drops what the receive test sends: the frame benches'
    // taps were the last, so let a second pass, and another, idle (free under -icount).
    std::thread::sleep(Duration::from_secs(2));
    // A pseudo-terminal for its output: a child's C library buffers its output in blocks when
    // it writes to a pipe, and by lines to a terminal, so that the time each line comes in
    // can be taken.
    let pty = openpty(None, None).map_err(|e| format!("openpty: {e}"))?;
    let (master, slave) = (pty.master, pty.slave);
    let err = slave.try_clone().map_err(|e| format!("dup: {e}"))?;
    let mut cmd = Command::new(path);
    cmd.arg("--buf-num")
        .arg(bufs.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::from(slave))
        .stderr(Stdio::from(err));
    // The child runs on CPU 0: it inherits the CPUs of the thread that spawns it, this one,
    // pinned for the spawn and then let go where it was.
    let was = sched_getaffinity(Pid::from_raw(0)).map_err(|e| format!("sched_getaffinity: {e}"))?;
    pin(0, &[0])?;
    let start = Instant::now();
    let spawned = cmd.spawn();
    sched_setaffinity(Pid::from_raw(0), &was).map_err(|e| format!("sched_setaffinity: {e}"))?;
    let mut child = spawned.map_err(|e| format!("{path}: {e}"))?;
    // The slave ends are the child's now: drop ours, so that its exit ends the reads.
    drop(cmd);
    let pid = i32::try_from(child.id()).map_err(|e| format!("pid: {e}"))?;
    if kthread {
        let name = format!("vhost-{pid}");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let [t] = crate::procfs::find_by_comm(&name)[..] {
                pin(t, &[0])?;
                break;
            }
            if Instant::now() > deadline {
                // Ignored: the bench fails with the reason below; the child is reaped on exit.
                let _ = child.kill();
                return Err(format!("no kthread {name} to pin"));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = diag.then(|| {
        let done = done.clone();
        std::thread::spawn(move || {
            let field = |tid: i32, f: &str| crate::procfs::status_field(tid, f).unwrap_or_default();
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(100));
                let Ok(threads) = crate::procfs::threads(pid) else {
                    break;
                };
                let mut line = format!("BENCH-NOTE vnt t={:.1}", start.elapsed().as_secs_f64());
                for t in threads {
                    line.push_str(&format!(
                        " {}: vol {} invol {}",
                        t.comm,
                        field(t.tid, "voluntary_ctxt_switches"),
                        field(t.tid, "nonvoluntary_ctxt_switches")
                    ));
                }
                println!("{line}");
            }
        })
    });
    let (mut rx, mut tx) = (None, None);
    let mut out = String::new();
    let want = format!("started={bufs:#x} completed={bufs:#x}");
    for line in std::io::BufReader::new(File::from(master)).lines() {
        // EIO once the child has closed the slave.
        let Ok(line) = line else { break };
        let now = Instant::now();
        let line = line.trim_end().to_string();
        if line.starts_with("RX spurious") && line.ends_with(&want) {
            rx.get_or_insert(now);
        } else if line.starts_with("TX spurious") && line.ends_with(&want) {
            tx.get_or_insert(now);
        }
        out.push_str(&line);
        out.push_str("; ");
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    if let Some(t) = sampler {
        t.join()
            .map_err(|_| "the sampler thread panicked".to_string())?;
    }
    if diag {
        println!("BENCH-NOTE vnt output: {out}");
    }
    let status = child.wait().map_err(|e| format!("wait: {e}"))?;
    let (Some(rx), Some(tx), true) = (rx, tx, status.success()) else {
        return Err(format!("{path}: {status}: {out}"));
    };
    let rate = |d: Duration| f64::from(bufs) / d.as_secs_f64();
    Ok((rate(rx - start), rate(tx - rx)))
}

/// Echoes the KUnit lines of the kernel log (KTAP, as the kernel printed them at boot), so that
/// the host reads them even when the console's log level hid them.
fn echo_ktap() {
    let mut kmsg = match Kmsg::from_start() {
        Ok(k) => k,
        Err(e) => {
            println!("BENCH-NOTE no /dev/kmsg ({e}): no KUnit figures");
            return;
        }
    };
    for line in kmsg.read_new() {
        let t = line.trim_start();
        if t.starts_with("KTAP")
            || t.starts_with('#')
            || t.starts_with("ok ")
            || t.starts_with("not ok ")
            || t.starts_with("1..")
        {
            println!("KTAP {line}");
        }
    }
}

/// Settings from `key=value` arguments.
struct Params {
    cycles: u32,
    frames: u32,
    owners: u32,
    vnt: Option<String>,
    vnt_bufs: u32,
    vnt_diag: bool,
    vnt_only: bool,
    vnt_kthread: bool,
}

fn params(args: &[String]) -> Result<Params, String> {
    let mut p = Params {
        cycles: 1000,
        frames: 20_000,
        owners: 1000,
        vnt: None,
        vnt_bufs: 0x10_0000,
        vnt_diag: false,
        vnt_only: false,
        vnt_kthread: false,
    };
    for a in args {
        let (k, v) = a
            .split_once('=')
            .ok_or_else(|| format!("bench: '{a}' is not key=value"))?;
        if k == "vnt" {
            p.vnt = Some(v.to_string());
            continue;
        }
        let v: u32 = v
            .parse()
            .ok()
            .filter(|&v| v > 0)
            .ok_or_else(|| format!("bench: {k}={v} is not a positive number"))?;
        match k {
            "cycles" => p.cycles = v,
            "frames" => p.frames = v,
            "owners" => p.owners = v,
            "vnt_bufs" => p.vnt_bufs = v,
            "vnt_diag" => p.vnt_diag = v != 0,
            "vnt_only" => p.vnt_only = v != 0,
            "vnt_kthread" => p.vnt_kthread = v != 0,
            _ => return Err(format!("bench: unknown setting '{k}'")),
        }
    }
    Ok(p)
}

/// Runs every measurement; non-zero exit on any failure.
pub fn run(args: &[String]) -> i32 {
    println!("BENCH-IMPL {}", crate::demo::implementation());
    let cs = "/sys/devices/system/clocksource/clocksource0/current_clocksource";
    if let Ok(cs) = std::fs::read_to_string(cs) {
        println!("BENCH-NOTE clocksource {}", cs.trim());
    }
    echo_ktap();
    let r = (|| -> Result<(), String> {
        let p = params(args)?;
        if let (true, Some(path)) = (p.vnt_only, &p.vnt) {
            let (rx, tx) = vhost_net_test(path, p.vnt_bufs, p.vnt_diag, p.vnt_kthread)?;
            let sfx = if p.vnt_kthread {
                "_kthread_control"
            } else {
                ""
            };
            report(&format!("vhost_net_test_rx{sfx}"), rx, "buffers/s");
            report(&format!("vhost_net_test_tx{sfx}"), tx, "buffers/s");
            return Ok(());
        }
        // Warm up, then measure.
        use crate::ioctls::{FORK_OWNER_KTHREAD, FORK_OWNER_TASK};
        let warm = (p.cycles / 20).max(1);
        owner_cycle(warm, FORK_OWNER_TASK)?;
        let (set_owner, close) = owner_cycle(p.cycles, FORK_OWNER_TASK)?;
        report("set_owner", set_owner, "us");
        report("close", close, "us");
        // The same with a kthread worker, which does not use vhost_task: a control for what
        // differs between the two kernels besides vhost_task.
        owner_cycle(warm, FORK_OWNER_KTHREAD)?;
        let (set_owner, close) = owner_cycle(p.cycles, FORK_OWNER_KTHREAD)?;
        report("set_owner_kthread_control", set_owner, "us");
        report("close_kthread_control", close, "us");
        report("tx_small_frames", tx_small(p.frames)?, "frames/s");
        report("rx_small_frames", rx_small(p.frames)?, "frames/s");
        scale(p.owners)?;
        if let Some(path) = &p.vnt {
            let (rx, tx) = vhost_net_test(path, p.vnt_bufs, p.vnt_diag, false)?;
            report("vhost_net_test_rx", rx, "buffers/s");
            report("vhost_net_test_tx", tx, "buffers/s");
        }
        Ok(())
    })();
    match r {
        Ok(()) => 0,
        Err(e) => {
            println!("BENCH-ERROR {e}");
            1
        }
    }
}
