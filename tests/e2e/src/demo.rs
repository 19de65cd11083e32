// SPDX-License-Identifier: GPL-2.0
//! `vhost-e2e demo`: what `make run` shows. A process opens /dev/vhost-net and becomes its
//! owner, once in each worker mode, and prints where the worker lives.

use crate::ioctls;
use crate::procfs;
use crate::setup;
use nix::sched::{unshare, CloneFlags};
use std::io;
use std::time::Duration;

/// Which vhost_task the running kernel has, from its symbols.
pub fn implementation() -> &'static str {
    match std::fs::read_to_string("/proc/kallsyms") {
        Ok(s) if s.contains("vhost_task_rust") => "Rust (kernel/vhost_task_rs)",
        Ok(s) if s.contains(" vhost_task_create") => "C (kernel/vhost_task.c)",
        _ => "unknown (no /proc/kallsyms)",
    }
}

/// A short list of thread ids and names.
fn list(threads: &[procfs::Thread]) -> String {
    threads
        .iter()
        .map(|t| format!("{} {}", t.tid, t.comm))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Opens /dev/vhost-net in `mode`, becomes the owner and describes the worker. Returns the
/// failed expectations.
fn show_mode(mode: u8) -> io::Result<Vec<String>> {
    let me = std::process::id() as i32;
    let name = format!("vhost-{me}");
    let fd = crate::sys::open_vhost_net().map_err(io::Error::other)?;
    ioctls::set_fork_from_owner(&fd, mode)?;
    ioctls::set_owner(&fd)?;

    let mut failed = Vec::new();
    let mut expect = |ok: bool, what: &str| {
        if !ok {
            failed.push(what.to_string());
        }
    };
    let task_mode = mode == ioctls::FORK_OWNER_TASK;
    println!(
        "\nVHOST_SET_FORK_FROM_OWNER = {mode} ({}), then VHOST_SET_OWNER:",
        if task_mode {
            "vhost_task, the default"
        } else {
            "kthread, as before 6.4"
        }
    );
    let threads = procfs::threads(me)?;
    println!("  threads of the owner {me}: {}", list(&threads));
    let worker = if task_mode {
        threads.iter().find(|t| t.comm == name).map(|t| t.tid)
    } else {
        procfs::find_by_comm(&name).first().copied()
    };
    let Some(w) = worker else {
        expect(false, &format!("no {name} worker found"));
        return Ok(failed);
    };
    let tgid = procfs::status_num(w, "Tgid")?;
    let ppid = procfs::status_num(w, "PPid")?;
    let kthread = procfs::is_kthread(w)?;
    println!(
        "  worker {w} {name}: Tgid {tgid}{}, PPid {ppid}{}, Kthread: {}",
        if tgid == me as i64 {
            " (the owner)"
        } else {
            ""
        },
        if ppid == 2 { " (kthreadd)" } else { "" },
        u8::from(kthread)
    );
    let (cg_w, cg_o) = (procfs::cgroup(w)?, procfs::cgroup(me)?);
    println!(
        "  cgroup: worker {cg_w}, owner {cg_o}: {}",
        if cg_w == cg_o { "same" } else { "different" }
    );
    let diff = procfs::ns_differences(w, me)?;
    if diff.is_empty() {
        println!("  namespaces: all the owner's");
    } else {
        println!("  namespaces: not the owner's: {}", diff.join(" "));
    }

    if task_mode {
        expect(
            threads.iter().any(|t| t.tid == w),
            "worker is a thread of the owner",
        );
        expect(tgid == me as i64, "worker's Tgid is the owner's");
        expect(!kthread, "worker is not a kthread");
        expect(cg_w == cg_o, "worker is in the owner's cgroup");
        expect(diff.is_empty(), "worker has the owner's namespaces");
    } else {
        expect(
            !threads.iter().any(|t| t.tid == w),
            "kthread is not a thread of the owner",
        );
        expect(
            kthread && ppid == 2,
            "kthread worker is a child of kthreadd",
        );
        expect(
            cg_w == cg_o,
            "kthread worker was attached to the owner's cgroup",
        );
        expect(
            !diff.is_empty(),
            "kthread worker stays in the initial namespaces",
        );
    }

    drop(fd);
    let gone = procfs::wait_for(Duration::from_secs(10), || !procfs::exists(w));
    println!(
        "  closed the device: worker {w} {}",
        if gone { "exited" } else { "STILL THERE" }
    );
    expect(gone, "worker exits when the device is closed");
    Ok(failed)
}

/// Runs the demo; the process exit status tells whether everything was as expected.
pub fn run() -> i32 {
    let me = std::process::id();
    println!("vhost_task implementation: {}", implementation());
    // A cgroup and namespaces of its own make the contrast between the modes visible.
    if let Err(e) = setup::enter_new_cgroup("vhost-demo") {
        eprintln!("demo: cannot make a cgroup: {e}");
        return 1;
    }
    if let Err(e) =
        unshare(CloneFlags::CLONE_NEWUTS | CloneFlags::CLONE_NEWIPC | CloneFlags::CLONE_NEWNET)
    {
        eprintln!("demo: cannot unshare namespaces: {e}");
        return 1;
    }
    println!("owner: pid {me}, in cgroup /vhost-demo and new uts, ipc and net namespaces");
    let mut failed = Vec::new();
    for mode in [ioctls::FORK_OWNER_TASK, ioctls::FORK_OWNER_KTHREAD] {
        match show_mode(mode) {
            Ok(f) => failed.extend(f),
            Err(e) => failed.push(format!("mode {mode}: {e}")),
        }
    }
    if failed.is_empty() {
        println!("\nOK: the vhost_task worker is a thread of its owner; the kthread is not.");
        0
    } else {
        for f in &failed {
            println!("FAILED: {f}");
        }
        1
    }
}
