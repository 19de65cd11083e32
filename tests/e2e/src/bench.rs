// SPDX-License-Identifier: GPL-2.0
//! `vhost-e2e bench`: what vhost_task costs, seen from a vhost owner. Prints one line per
//! measurement, `BENCH <name> <value> <unit>`, for scripts/bench.sh to compare kernels.

use crate::netdev::{self, Config, NetDev};
use crate::tap::{PacketSocket, Tap};
use std::time::{Duration, Instant};

fn report(name: &str, value: f64, unit: &str) {
    println!("BENCH {name} {value:.1} {unit}");
}

/// Owner cycles in worker `mode`: open /dev/vhost-net, `VHOST_SET_OWNER` (vhost_task_create +
/// start in task mode, timed),
/// close (vhost_task_stop, which waits for the worker's exit, and vhost-net's teardown, timed).
/// Returns the medians, in microseconds, of the two timed steps.
fn owner_cycle(n: u32, mode: u8) -> Result<(f64, f64), String> {
    use std::os::unix::io::IntoRawFd;
    let mut set_owner = Vec::new();
    let mut close = Vec::new();
    for _ in 0..n {
        let fd = std::fs::File::options()
            .read(true)
            .write(true)
            .open("/dev/vhost-net")
            .map_err(|e| format!("open: {e}"))?;
        crate::ioctls::set_fork_from_owner(&fd, mode).map_err(|e| format!("mode: {e}"))?;
        let t0 = Instant::now();
        crate::ioctls::set_owner(&fd).map_err(|e| format!("VHOST_SET_OWNER: {e}"))?;
        set_owner.push(t0.elapsed().as_secs_f64() * 1e6);
        let raw = fd.into_raw_fd();
        let t0 = Instant::now();
        // SAFETY: closing the descriptor this function owns.
        unsafe { libc::close(raw) };
        close.push(t0.elapsed().as_secs_f64() * 1e6);
    }
    Ok((median(&mut set_owner), median(&mut close)))
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Small frames through the transmit path: each kick wakes the worker. Frames per second.
fn tx_small(n: u32) -> Result<f64, String> {
    let tap = Tap::new("vt-bench").map_err(|e| format!("tap: {e}"))?;
    let sock = PacketSocket::new(tap.ifindex).map_err(|e| format!("socket: {e}"))?;
    let mut dev = NetDev::new(
        &tap,
        Config {
            mrg_rxbuf: true,
            fork_owner: None,
        },
    )
    .map_err(|e| format!("vhost-net: {e}"))?;
    let mut buf = vec![0u8; 2048];
    let start = Instant::now();
    let mut got = 0u32;
    let mut sent = 0u32;
    let deadline = start + Duration::from_secs(300);
    while got < n {
        if Instant::now() > deadline {
            return Err(format!("tx: stalled at {got}/{n}"));
        }
        while sent < n && sent - got < 128 {
            let f = netdev::frame(sent, 60);
            if !dev.send(&f).map_err(|e| format!("send: {e}"))? {
                break;
            }
            sent += 1;
        }
        if sock
            .recv(&mut buf, Duration::from_millis(100))
            .map_err(|e| format!("recv: {e}"))?
            .is_some()
        {
            got += 1;
        }
    }
    Ok(f64::from(n) / start.elapsed().as_secs_f64())
}

/// Runs every measurement; non-zero exit on any failure.
pub fn run() -> i32 {
    println!("BENCH-IMPL {}", crate::demo::implementation());
    let r = (|| -> Result<(), String> {
        // Warm up, then measure.
        use crate::ioctls::{FORK_OWNER_KTHREAD, FORK_OWNER_TASK};
        owner_cycle(50, FORK_OWNER_TASK)?;
        let (set_owner, close) = owner_cycle(1000, FORK_OWNER_TASK)?;
        report("set_owner", set_owner, "us");
        report("close", close, "us");
        // The same with a kthread worker, which does not use vhost_task: a control for what
        // differs between the two kernels besides vhost_task.
        owner_cycle(50, FORK_OWNER_KTHREAD)?;
        let (set_owner, close) = owner_cycle(1000, FORK_OWNER_KTHREAD)?;
        report("set_owner_kthread_control", set_owner, "us");
        report("close_kthread_control", close, "us");
        report("tx_small_frames", tx_small(20_000)?, "frames/s");
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
