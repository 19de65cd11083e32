// SPDX-License-Identifier: GPL-2.0
//! What /proc says about processes and threads.

use std::fs;
use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

/// `PF_USER_WORKER` of include/linux/sched.h (the same in 6.12 and 7.3): a user worker, such
/// as a vhost_task.
pub const PF_USER_WORKER: u64 = 0x0000_4000;
/// `PF_KTHREAD` of include/linux/sched.h: a kernel thread.
pub const PF_KTHREAD: u64 = 0x0020_0000;

/// The namespaces a thread can be compared on.
pub const NAMESPACES: &[&str] = &["cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"];

/// A thread of a process, as /proc/<pid>/task lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thread {
    /// Its thread id.
    pub tid: i32,
    /// Its comm.
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

/// The threads of `pid` named `comm`, by tid.
pub fn threads_named(pid: i32, comm: &str) -> Vec<i32> {
    threads(pid)
        .unwrap_or_default()
        .into_iter()
        .filter(|t| t.comm == comm)
        .map(|t| t.tid)
        .collect()
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

/// What /proc/<tid>/stat says of a task, the fields the tests read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    /// Its comm (field 2), without the parentheses.
    pub comm: String,
    /// Its one-letter state (field 3).
    pub state: char,
    /// Its flags, `PF_*` (field 9).
    pub flags: u64,
    /// The clock ticks it ran in user mode (field 14).
    pub utime: u64,
    /// The clock ticks it ran in the kernel (field 15).
    pub stime: u64,
}

/// /proc/<tid>/stat of a task.
pub fn stat(tid: i32) -> io::Result<Stat> {
    let s = fs::read_to_string(format!("/proc/{tid}/stat"))?;
    parse_stat(&s).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("/proc/{tid}/stat: {s:?}"),
        )
    })
}

/// The fields of a stat line. The comm may hold spaces and parentheses: it ends at the last
/// ')'.
fn parse_stat(s: &str) -> Option<Stat> {
    let (head, rest) = s.rsplit_once(')')?;
    let comm = head.split_once(" (")?.1.to_string();
    let f: Vec<&str> = rest.split_whitespace().collect();
    let num = |field: usize| f.get(field - 3)?.parse().ok();
    Some(Stat {
        comm,
        state: f.first()?.chars().next()?,
        flags: num(9)?,
        utime: num(14)?,
        stime: num(15)?,
    })
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

/// Waits up to `timeout` until `pid` is down to one thread (its workers gone); the threads it
/// still has if it is not.
pub fn wait_single_threaded(pid: i32, timeout: Duration) -> Result<(), Vec<Thread>> {
    if wait_for(timeout, || threads(pid).is_ok_and(|t| t.len() == 1)) {
        Ok(())
    } else {
        Err(threads(pid).unwrap_or_default())
    }
}

/// Waits up to `timeout` for task `tid` to be gone; how long that took, `None` if it is not.
pub fn wait_gone(tid: i32, timeout: Duration) -> Option<Duration> {
    let t0 = Instant::now();
    wait_for(timeout, || !exists(tid)).then(|| t0.elapsed())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_found_after_a_comm_with_spaces_and_parentheses() {
        let line = "57 (vhost-55 (x) y) S 1 55 55 0 -1 4194624 0 0 0 0 7 11 0 0 20 0 1 0 \
                    300 0 0 18446744073709551615 0 0 0 0 0 0 0 2147483647 0 0 0 0 17 1 0 0";
        assert_eq!(
            parse_stat(line),
            Some(Stat {
                comm: "vhost-55 (x) y".into(),
                state: 'S',
                flags: 4194624,
                utime: 7,
                stime: 11,
            })
        );
        assert_eq!(parse_stat("57 (short) S 1"), None);
    }
}
