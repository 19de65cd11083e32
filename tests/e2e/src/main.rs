// SPDX-License-Identifier: GPL-2.0
//! End-to-end tests of vhost_task from user space, run inside a guest booted on the kernel
//! under test: `vhost-e2e demo` for `make run`, `vhost-e2e test [filter]` for `make test`,
//! `vhost-e2e stress [--scale S] [filter]` for `make stress`, `vhost-e2e trinity [--root DIR]
//! [--calls N] [--seeds A,B,...] [filter]` for the trinity suites of both.

mod bench;
mod cases;
mod demo;
mod faults;
mod harness;
mod ioctls;
mod kmsg;
mod kvm;
mod modules;
mod netdev;
mod procfs;
mod qemu;
mod qmp;
mod scsi;
mod setup;
mod stress;
mod sys;
mod tap;
mod trinity;
mod vring;

fn usage() -> ! {
    eprintln!(
        "usage: vhost-e2e demo | test [name-filter] | lockdep | stress [--scale S] [name-filter] | trinity [--root DIR] [--calls N] [--seeds A,B,...] [name-filter] | list [test [name-filter] | lockdep | stress [--scale S] [name-filter] | trinity [...]] | bench [key=value...] | exec-probe | send-frames N [ack] | kmemleak-scan"
    );
    std::process::exit(2);
}

/// `vhost-e2e kmemleak-scan`, after the KUnit suites ran at boot on the debug kernel: asks
/// kmemleak for a scan and prints what it suspects. Fails if it suspects anything.
fn kmemleak_scan() -> i32 {
    let kmemleak = "/sys/kernel/debug/kmemleak";
    if let Err(e) = faults::mount_debugfs() {
        println!("kmemleak-scan: {e}");
        return 1;
    }
    // kmemleak only reports objects older than 5 s; scan twice, as its documentation advises.
    std::thread::sleep(std::time::Duration::from_secs(6));
    for _ in 0..2 {
        if let Err(e) = std::fs::write(kmemleak, "scan") {
            println!("kmemleak-scan: {kmemleak}: {e}");
            return 1;
        }
    }
    let report = std::fs::read_to_string(kmemleak).unwrap_or_default();
    let n = report.matches("unreferenced object").count();
    print!("{report}");
    println!("kmemleak-scan: {n} suspected leaks");
    i32::from(n > 0)
}

/// `vhost-e2e list [test [filter] | lockdep | stress [--scale S] [filter] | trinity [...]]`: the
/// names of the cases that `vhost-e2e test`, `lockdep`, `stress` or `trinity` with the same
/// arguments runs, in order, one a line. It runs on the host too, which so knows every case of
/// a guest's plan by name.
fn list(args: &[String]) -> i32 {
    match args.first().map(String::as_str) {
        None | Some("test") => harness::list(&cases::all(), args.get(1).map(String::as_str)),
        Some("lockdep") => harness::list(&modules::lockdep_cases(), None),
        Some("stress") => match stress::args(&args[1..]) {
            Ok(filter) => harness::list(&stress::all(), filter.as_deref()),
            Err(e) => {
                eprintln!("{e}");
                return 2;
            }
        },
        Some("trinity") => match trinity::args(&args[1..]) {
            Ok(filter) => harness::list(&trinity::all(), filter.as_deref()),
            Err(e) => {
                eprintln!("{e}");
                return 2;
            }
        },
        Some(_) => usage(),
    }
    0
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match args.first().map(String::as_str) {
        Some("demo") => demo::run(),
        Some("bench") => bench::run(&args[1..]),
        Some("test") => {
            println!("# vhost_task implementation: {}", demo::implementation());
            i32::from(harness::run(&cases::all(), args.get(1).map(String::as_str)) > 0)
        }
        Some("stress") => stress::main(&args[1..]),
        Some("trinity") => trinity::main(&args[1..]),
        Some("lockdep") => i32::from(harness::run(&modules::lockdep_cases(), None) > 0),
        Some("list") => list(&args[1..]),
        Some("exec-probe") => cases::exec_probe(),
        Some("kmemleak-scan") => kmemleak_scan(),
        Some("send-frames") => match args.get(1).and_then(|n| n.parse().ok()) {
            Some(n) => qemu::send_frames(n, args.get(2).is_some_and(|a| a == "ack")),
            None => usage(),
        },
        _ => usage(),
    };
    std::process::exit(code);
}
