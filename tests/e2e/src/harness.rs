// SPDX-License-Identifier: GPL-2.0
//! A small TAP harness: every case runs in a child process of its own (a fresh vhost owner),
//! under a time limit, and its result is one "ok"/"not ok" line.

use std::io::{self, Read, Write};
use std::os::unix::io::{FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

/// What a case returns: a note for the TAP line, or why it failed. A note from [`skip`] makes
/// the line a TAP `# SKIP`.
pub type CaseResult = Result<String, String>;

const SKIP: &str = "SKIP ";

/// The result of a case that cannot run on this kernel: "ok N name # SKIP why".
pub fn skip(why: impl std::fmt::Display) -> CaseResult {
    Ok(format!("{SKIP}{why}"))
}

/// A test case.
pub struct Case {
    pub name: &'static str,
    pub run: fn() -> CaseResult,
    pub timeout: Duration,
}

/// A pipe's two ends.
pub struct Pipe {
    pub r: std::fs::File,
    pub w: std::fs::File,
}

/// `pipe2(O_CLOEXEC)`.
pub fn pipe() -> io::Result<Pipe> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors are new and owned by nothing else.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    Ok(Pipe {
        r: r.into(),
        w: w.into(),
    })
}

/// A child process.
pub struct Child {
    pub pid: i32,
    reaped: Option<i32>,
}

/// Forks; the child runs `f` and exits with its return value.
pub fn fork(f: impl FnOnce() -> i32) -> io::Result<Child> {
    io::stdout().flush()?;
    // SAFETY: the harness is single-threaded when it forks; the child only runs `f` and exits.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        let code = f();
        let _ = io::stdout().flush();
        // SAFETY: ends the child without running the parent's atexit handlers.
        unsafe { libc::_exit(code) };
    }
    Ok(Child { pid, reaped: None })
}

impl Child {
    /// Waits up to `timeout` for the child to end; returns its wait status.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<i32> {
        if let Some(s) = self.reaped {
            return Some(s);
        }
        let end = Instant::now() + timeout;
        loop {
            let mut status = 0;
            // SAFETY: waiting for our own child.
            let r = unsafe { libc::waitpid(self.pid, &mut status, libc::WNOHANG) };
            if r == self.pid {
                self.reaped = Some(status);
                return Some(status);
            }
            if Instant::now() >= end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Sends `sig`.
    pub fn kill(&self, sig: i32) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.pid, sig) };
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if self.reaped.is_none() {
            self.kill(libc::SIGKILL);
            let _ = self.wait_timeout(Duration::from_secs(30));
        }
    }
}

/// The exit code of a wait status, or 128 + the signal.
pub fn exit_code(status: i32) -> i32 {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    }
}

/// Runs `cases` whose names contain `filter`, or one of its comma-separated parts, printing
/// TAP; returns the number that failed.
pub fn run(cases: &[Case], filter: Option<&str>) -> usize {
    let selected: Vec<&Case> = cases
        .iter()
        .filter(|c| filter.is_none_or(|f| f.split(',').any(|p| c.name.contains(p))))
        .collect();
    println!("TAP version 13");
    println!("1..{}", selected.len());
    let mut failed = 0;
    for (i, case) in selected.iter().enumerate() {
        let n = i + 1;
        let start = Instant::now();
        let (ok, note) = run_one(case);
        let secs = start.elapsed().as_secs_f32();
        if ok && note.starts_with(SKIP) {
            println!("ok {n} {} # {note}", case.name);
        } else if ok {
            println!("ok {n} {} # {note} ({secs:.1} s)", case.name);
        } else {
            failed += 1;
            println!("not ok {n} {} # {note} ({secs:.1} s)", case.name);
        }
        let _ = io::stdout().flush();
    }
    println!("# {} passed, {} failed", selected.len() - failed, failed);
    failed
}

fn run_one(case: &Case) -> (bool, String) {
    let p = match pipe() {
        Ok(p) => p,
        Err(e) => return (false, format!("pipe: {e}")),
    };
    let Pipe { r: mut rd, w: wr } = p;
    let run = case.run;
    let child = fork(|| {
        // Each case in its own process group, so that its helpers die with it.
        // SAFETY: setpgid on ourselves.
        unsafe { libc::setpgid(0, 0) };
        match run() {
            Ok(note) => {
                let _ = (&wr).write_all(note.as_bytes());
                0
            }
            Err(e) => {
                let _ = (&wr).write_all(e.as_bytes());
                1
            }
        }
    });
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return (false, format!("fork: {e}")),
    };
    drop(wr);
    let status = child.wait_timeout(case.timeout);
    let Some(status) = status else {
        // SAFETY: kill the case's whole process group.
        unsafe { libc::kill(-child.pid, libc::SIGKILL) };
        return (
            false,
            format!("timed out after {} s", case.timeout.as_secs()),
        );
    };
    // SAFETY: kill helpers the case may have left behind.
    unsafe { libc::kill(-child.pid, libc::SIGKILL) };
    let mut note = String::new();
    let _ = rd.read_to_string(&mut note);
    let note = note.replace('\n', " ");
    match exit_code(status) {
        0 => (true, note),
        1 => (false, note),
        c => (false, format!("case died with status {c} {note}")),
    }
}

/// Fails with `msg` unless `cond`.
pub fn ensure(cond: bool, msg: impl FnOnce() -> String) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(msg())
    }
}

/// Turns an error into a message with context.
pub trait Context<T> {
    fn ctx(self, what: &str) -> Result<T, String>;
}

impl<T, E: std::fmt::Display> Context<T> for Result<T, E> {
    fn ctx(self, what: &str) -> Result<T, String> {
        self.map_err(|e| format!("{what}: {e}"))
    }
}
