// SPDX-License-Identifier: GPL-2.0
//! What /proc says about processes and threads.

use std::fs;
use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

/// The namespaces a thread can be compared on.
pub const NAMESPACES: &[&str] = &["cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"];

/// A thread of a process, as /proc/<pid>/task lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thread {
    pub tid: i32,
    pub comm: String,
}

/// The threads of `pid`, sorted by tid.
pub fn threads(pid: i32) -> io::Result<Vec<Thread>> {
    let mut v = Vec::new();
    for e in fs::read_dir(format!("/proc/{pid}/task"))? {
        let e = e?;
        let Ok(tid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let comm = comm(tid).unwrap_or_default();
        v.push(Thread { tid, comm });
    }
    v.sort_by_key(|t| t.tid);
    Ok(v)
}

/// The comm of a task.
pub fn comm(tid: i32) -> io::Result<String> {
    Ok(fs::read_to_string(format!("/proc/{tid}/comm"))?
        .trim_end()
        .to_string())
}

/// A field of /proc/<tid>/status, such as "Tgid" or "Kthread".
pub fn status_field(tid: i32, field: &str) -> io::Result<String> {
    let s = fs::read_to_string(format!("/proc/{tid}/status"))?;
    s.lines()
        .find_map(|l| l.strip_prefix(field).and_then(|r| r.strip_prefix(':')))
        .map(|v| v.trim().to_string())
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no {field} in status")))
}

/// The status field as a number.
pub fn status_num(tid: i32, field: &str) -> io::Result<i64> {
    status_field(tid, field)?
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("bad {field}")))
}

/// Whether the kernel marks the task as a kthread ("Kthread: 1").
pub fn is_kthread(tid: i32) -> io::Result<bool> {
    Ok(status_field(tid, "Kthread")? == "1")
}

/// The one-letter state of a task ("S", "R", "D", "T", "Z", ...).
pub fn state(tid: i32) -> io::Result<String> {
    Ok(status_field(tid, "State")?
        .chars()
        .next()
        .map(String::from)
        .unwrap_or_default())
}

/// The task's cgroup v2 path ("0::/x" without the "0::").
pub fn cgroup(tid: i32) -> io::Result<String> {
    let s = fs::read_to_string(format!("/proc/{tid}/cgroup"))?;
    s.lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(str::to_string)
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no cgroup v2 line"))
}

/// The namespace link of a task, such as "net:[4026531840]".
pub fn ns(tid: i32, kind: &str) -> io::Result<String> {
    Ok(fs::read_link(format!("/proc/{tid}/ns/{kind}"))?
        .to_string_lossy()
        .into_owned())
}

/// The namespaces in which `a` and `b` differ, among those both have.
pub fn ns_differences(a: i32, b: i32) -> io::Result<Vec<&'static str>> {
    let mut diff = Vec::new();
    for kind in NAMESPACES {
        if !Path::new(&format!("/proc/{a}/ns/{kind}")).exists() {
            continue;
        }
        if ns(a, kind)? != ns(b, kind)? {
            diff.push(*kind);
        }
    }
    Ok(diff)
}

/// Every thread in the system (kthreads included: each is a process of its own) for which
/// `want` holds.
pub fn threads_where(want: impl Fn(&Thread) -> bool) -> Vec<Thread> {
    let mut found = Vec::new();
    let Ok(dir) = fs::read_dir("/proc") else {
        return found;
    };
    for e in dir.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        found.extend(threads(pid).unwrap_or_default().into_iter().filter(&want));
    }
    found
}

/// Every task in the system whose comm is `comm`, with its pid.
pub fn find_by_comm(comm_want: &str) -> Vec<i32> {
    let mut found: Vec<i32> = threads_where(|t| t.comm == comm_want)
        .into_iter()
        .map(|t| t.tid)
        .collect();
    found.sort();
    found.dedup();
    found
}

/// Waits until `cond` holds, polling every 10 ms for up to `timeout`.
pub fn wait_for(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Whether a task exists.
pub fn exists(tid: i32) -> bool {
    Path::new(&format!("/proc/{tid}")).exists()
}

/// This process's pid as /proc sees it, which differs from getpid() in a child pid namespace.
pub fn self_pid() -> i32 {
    fs::read_link("/proc/self")
        .ok()
        .and_then(|p| p.to_string_lossy().parse().ok())
        .unwrap_or_else(|| std::process::id() as i32)
}
