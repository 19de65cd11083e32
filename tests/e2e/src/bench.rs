// SPDX-License-Identifier: GPL-2.0
//! `vhost-e2e bench`: what vhost_task costs, seen from a vhost owner. Prints one line per
//! measurement, `BENCH <name> <value> <unit>`, for scripts/bench.sh to compare kernels.

use crate::netdev::{self, Config, NetDev};
use crate::tap::{PacketSocket, Tap};
use std::time::{Duration, Instant};

fn report(name: &str, value: f64, unit: &str) {
    println!("BENCH {name} {value:.1} {unit}");
}

/// Owner cycles: open, `VHOST_SET_OWNER` (vhost_task_create + start), close (stop, which
/// waits for the worker's exit). Microseconds per cycle.
fn owner_cycle(n: u32) -> Result<f64, String> {
    let start = Instant::now();
    for _ in 0..n {
        let (net, mem) = NetDev::open_owned(None).map_err(|e| format!("owner: {e}"))?;
        drop(net);
        drop(mem);
    }
    Ok(start.elapsed().as_secs_f64() * 1e6 / f64::from(n))
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
        owner_cycle(50)?;
        report("owner_cycle", owner_cycle(1000)?, "us/cycle");
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
