// SPDX-License-Identifier: GPL-2.0
//! A small KTAP harness: every case runs in a child process of its own (a fresh vhost owner),
//! under a time limit, and its result is one "ok"/"not ok" line.
//!
//! The output is KTAP version 1 (`Documentation/dev-tools/ktap.rst`), which the host parses with
//! the kernel's own `kunit.py parse`: a version line, the plan (`1..N`), then one result line a
//! case, `ok N name # note` or `not ok N name # why`, with `# SKIP why` for a case that cannot
//! run on this kernel. `vhost-e2e list` prints the same names, in the same order, so that the
//! host can name every case of the plan that a guest which stopped early never reported.

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, killpg, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{setpgid, ForkResult, Pid};
use std::io::{self, PipeReader, Read, Write};
use std::time::{Duration, Instant};

/// What a case returns: a note for the KTAP line, or why it failed. A note from [`skip`] makes
/// the line a KTAP `# SKIP`.
pub type CaseResult = Result<String, String>;

const SKIP: &str = "SKIP ";

/// The result of a case that cannot run on this kernel: "ok N name # SKIP why".
pub fn skip(why: impl std::fmt::Display) -> CaseResult {
    Ok(format!("{SKIP}{why}"))
}

/// A test case.
pub struct Case {
    /// Its name in the KTAP output, which says what it proves.
    pub name: &'static str,
    /// The case, run in a child process of its own.
    pub run: fn() -> CaseResult,
    /// How long the child may take before it is killed and the case fails.
    pub timeout: Duration,
    /// What the case needs of the kernel, checked first: `Some` result (a skip, or a failure
    /// that says what is missing) ends the case there.
    pub needs: fn() -> Option<CaseResult>,
}

/// A case that needs nothing.
pub fn nothing() -> Option<CaseResult> {
    None
}

/// `case!(f, secs)`: the case that runs the function `f`, named after it, with a time limit of
/// `secs` seconds; `case!(f, secs, needs)` checks `needs` first.
macro_rules! case {
    ($name:ident, $secs:expr) => {
        $crate::harness::case!($name, $secs, $crate::harness::nothing)
    };
    ($name:ident, $secs:expr, $needs:expr) => {
        $crate::harness::Case {
            name: stringify!($name),
            run: $name,
            timeout: ::std::time::Duration::from_secs($secs),
            needs: $needs,
        }
    };
}
pub(crate) use case;

/// A child process.
pub struct Child {
    /// Its pid, in the pid namespace of the process that forked it.
    pub pid: i32,
    reaped: Option<WaitStatus>,
}

/// Forks; the child runs `f` and exits with its return value.
pub fn fork(f: impl FnOnce() -> i32) -> io::Result<Child> {
    io::stdout().flush()?;
    // SAFETY: in the guest the processes of the harness are single-threaded when they fork (the
    // cases that start threads join them before they return), so the child cannot inherit a
    // lock that another thread holds. The unit tests fork from a test thread of libtest, one
    // test at a time (e2e-unit passes --test-threads=1): the other threads then wait for that
    // test, holding no lock but their own, and the children only allocate (glibc's fork resets
    // its malloc locks), flush stdout and make system calls. Either child runs `f` and exits.
    match unsafe { nix::unistd::fork() }? {
        ForkResult::Child => {
            let code = f();
            // The note of a case is on stdout: a failed flush would lose it, and there is
            // nothing left to tell it to but the exit status.
            let code = if io::stdout().flush().is_err() {
                2
            } else {
                code
            };
            // SAFETY: `_exit` ends this child at once, without the atexit handlers and stdio
            // buffers it inherited from the parent, which are the parent's to run and flush.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => Ok(Child {
            pid: child.as_raw(),
            reaped: None,
        }),
    }
}

impl Child {
    /// Its pid as nix takes it.
    fn nix_pid(&self) -> Pid {
        Pid::from_raw(self.pid)
    }

    /// Reaps the child if it has ended; its wait status then.
    pub fn try_wait(&mut self) -> Option<WaitStatus> {
        if self.reaped.is_none() {
            // ECHILD would mean that the child is not ours to wait for, which `fork` rules
            // out; EINTR cannot come from a WNOHANG wait. Any error is a bug of the harness.
            match waitpid(self.nix_pid(), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) => {}
                Ok(st) => self.reaped = Some(st),
                Err(e) => panic!("waitpid({}): {e}", self.pid),
            }
        }
        self.reaped
    }

    /// Waits up to `timeout` for the child to end; returns its wait status.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<WaitStatus> {
        let end = Instant::now() + timeout;
        loop {
            if let Some(st) = self.try_wait() {
                return Some(st);
            }
            if Instant::now() >= end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Sends `sig` to the child. Until it is reaped the child exists, if only as a zombie, so
    /// this fails only once it was reaped.
    pub fn kill(&self, sig: Signal) -> Result<(), String> {
        if self.reaped.is_some() {
            return Err(format!("{sig} to {}: already reaped", self.pid));
        }
        kill(self.nix_pid(), sig).map_err(|e| format!("{sig} to {}: {e}", self.pid))
    }

    /// Sends SIGKILL, waits up to `within` for the child to end, and checks that the signal
    /// ended it; how long that took.
    pub fn sigkill_and_reap(&mut self, within: Duration) -> Result<Duration, String> {
        let (st, took) = self.kill_and_wait(Signal::SIGKILL, within)?;
        ensure(killed_by(st, Signal::SIGKILL, false), || {
            format!("{} ended otherwise than by SIGKILL: {st:?}", self.pid)
        })?;
        Ok(took)
    }

    /// Sends `sig` and waits up to `within` for the child to end: its wait status, and how
    /// long it took from the signal.
    pub fn kill_and_wait(
        &mut self,
        sig: Signal,
        within: Duration,
    ) -> Result<(WaitStatus, Duration), String> {
        let t0 = Instant::now();
        self.kill(sig)?;
        let st = self.wait_timeout(within).ok_or_else(|| {
            format!(
                "{} not reaped within {} s of {sig}",
                self.pid,
                within.as_secs()
            )
        })?;
        Ok((st, t0.elapsed()))
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if self.reaped.is_none() {
            // Ignored: a child that is not reaped yet exists, so the kill cannot fail, and a
            // drop has no one to tell; the wait below reaps it.
            let _ = self.kill(Signal::SIGKILL);
            let _ = self.wait_timeout(Duration::from_secs(30));
        }
    }
}

/// The exit code of a wait status, or 128 + the signal that ended the process.
pub fn exit_code(status: WaitStatus) -> i32 {
    match status {
        WaitStatus::Exited(_, code) => code,
        WaitStatus::Signaled(_, sig, _) => 128 + sig as i32,
        // Only a wait with WUNTRACED or WCONTINUED, which the harness never makes, reports
        // anything else.
        other => panic!("wait status {other:?} of an ended process"),
    }
}

/// Whether the process ended by signal `sig`, and with a core dump if `core` says so.
pub fn killed_by(status: WaitStatus, sig: Signal, core: bool) -> bool {
    matches!(status, WaitStatus::Signaled(_, s, c) if s == sig && (c || !core))
}

/// A child that reports a note through a pipe: see [`Noted::spawn`].
pub struct Noted {
    /// The child.
    pub child: Child,
    note: PipeReader,
}

impl Noted {
    /// Forks a child that runs `f` and writes what it returns to a pipe, its note on success
    /// (and exit 0), why it failed on failure (and exit 1).
    pub fn spawn(f: impl FnOnce() -> CaseResult) -> io::Result<Noted> {
        let (note, mut w) = io::pipe()?;
        let child = fork(move || {
            let (code, text) = match f() {
                Ok(n) => (0, n),
                Err(e) => (1, e),
            };
            // A note that cannot be written is a failure: the parent would read an empty one.
            match w.write_all(text.as_bytes()) {
                Ok(()) => code,
                Err(e) => {
                    println!("# the note of {} was lost: {e}", std::process::id());
                    3
                }
            }
        })?;
        // The parent reads the note as it comes, without waiting for the end of the pipe: a
        // helper of the child that lives on may hold its write end.
        fcntl(&note, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))?;
        Ok(Noted { child, note })
    }

    /// Waits up to `timeout` for the child to end, reading its note meanwhile, so that a note
    /// larger than the pipe's buffer cannot block it. Returns the wait status (`None`: still
    /// running) and the note so far.
    pub fn wait(&mut self, timeout: Duration) -> (Option<WaitStatus>, String) {
        let end = Instant::now() + timeout;
        let mut note = Vec::new();
        let mut open = true;
        loop {
            if open {
                let mut fds = [PollFd::new(
                    std::os::fd::AsFd::as_fd(&self.note),
                    PollFlags::POLLIN,
                )];
                // EINTR only shortens the wait; the read below tells what is there.
                let _ = poll(&mut fds, PollTimeout::from(5u16));
                open = self.read_some(&mut note);
            } else {
                std::thread::sleep(Duration::from_millis(5));
            }
            let st = self.child.try_wait();
            if st.is_some() || Instant::now() >= end {
                // What the child wrote before it ended is all in the pipe.
                if open {
                    self.read_some(&mut note);
                }
                return (st, String::from_utf8_lossy(&note).into_owned());
            }
        }
    }

    /// Appends what the pipe holds now to `note`; false once the pipe is closed.
    fn read_some(&mut self, note: &mut Vec<u8>) -> bool {
        let mut buf = [0u8; 16384];
        loop {
            match self.note.read(&mut buf) {
                Ok(0) => return false,
                Ok(n) => note.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    note.extend_from_slice(format!(" (reading the note: {e})").as_bytes());
                    return false;
                }
            }
        }
    }

    /// Waits as [`wait`](Self::wait) does and turns what the child said into a result: its note,
    /// or why it failed, timed out or died.
    pub fn result(&mut self, timeout: Duration) -> CaseResult {
        let (st, note) = self.wait(timeout);
        match st.map(exit_code) {
            None => Err(format!(
                "the child {} did not finish within {} s: {note}",
                self.child.pid,
                timeout.as_secs()
            )),
            Some(0) => Ok(note),
            Some(1) => Err(note),
            Some(c) => Err(format!("the child died with status {c}: {note}")),
        }
    }
}

/// The cases of `cases` whose names contain `filter`, or one of its comma-separated parts.
pub fn select<'a>(cases: &'a [Case], filter: Option<&str>) -> Vec<&'a Case> {
    cases
        .iter()
        .filter(|c| filter.is_none_or(|f| f.split(',').any(|p| c.name.contains(p))))
        .collect()
}

/// Prints the names of the cases [`run`] would run, one a line, in order.
pub fn list(cases: &[Case], filter: Option<&str>) {
    for c in select(cases, filter) {
        println!("{}", c.name);
    }
}

/// Runs `cases` whose names contain `filter`, or one of its comma-separated parts, printing
/// KTAP; returns the number that failed.
pub fn run(cases: &[Case], filter: Option<&str>) -> usize {
    let selected = select(cases, filter);
    println!("KTAP version 1");
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
        // A line that does not reach the console is a case the host reports as not run.
        if let Err(e) = io::stdout().flush() {
            eprintln!("harness: stdout: {e}");
        }
    }
    println!("# {} passed, {} failed", selected.len() - failed, failed);
    failed
}

/// Runs one case in a child of its own process group, so that its helpers die with it.
fn run_one(case: &Case) -> (bool, String) {
    let (run, needs) = (case.run, case.needs);
    let spawned = Noted::spawn(|| {
        // Only a session leader, which a forked child is not, can fail this.
        setpgid(Pid::from_raw(0), Pid::from_raw(0)).map_err(|e| format!("setpgid(0, 0): {e}"))?;
        needs().unwrap_or_else(run)
    });
    let mut noted = match spawned {
        Ok(n) => n,
        Err(e) => return (false, format!("fork: {e}")),
    };
    let (st, note) = noted.wait(case.timeout);
    let note = note.replace('\n', " ");
    // The helpers the case left behind, or the whole case if it timed out. ESRCH: nothing is
    // left of the group, which is how a case that cleaned up after itself ends.
    let group = match killpg(noted.child.nix_pid(), Signal::SIGKILL) {
        Ok(()) | Err(Errno::ESRCH) => String::new(),
        Err(e) => format!("; SIGKILL to the case's process group: {e}"),
    };
    let Some(st) = st else {
        return (
            false,
            format!("timed out after {} s {note}{group}", case.timeout.as_secs()),
        );
    };
    match exit_code(st) {
        0 if group.is_empty() => (true, note),
        0 | 1 => (false, format!("{note}{group}")),
        c => (false, format!("case died with status {c} {note}{group}")),
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
    /// The error as "what: error".
    fn ctx(self, what: &str) -> Result<T, String>;
}

impl<T, E: std::fmt::Display> Context<T> for Result<T, E> {
    fn ctx(self, what: &str) -> Result<T, String> {
        self.map_err(|e| format!("{what}: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_note_larger_than_the_pipe_buffer_arrives_whole_and_in_time() {
        // 1 MiB, 16 times a pipe's default buffer: a child that wrote it with nobody reading
        // would block until its time limit.
        let big = "0123456789abcdef".repeat(1 << 16);
        let want = big.clone();
        let mut child = Noted::spawn(move || Ok(big)).unwrap();
        let (st, note) = child.wait(Duration::from_secs(20));
        assert!(matches!(st, Some(WaitStatus::Exited(_, 0))), "{st:?}");
        assert_eq!(note.len(), want.len());
        assert!(note == want);
    }

    #[test]
    fn a_failure_and_its_reason_come_back_as_an_error() {
        let mut child = Noted::spawn(|| Err("it broke".into())).unwrap();
        assert_eq!(
            child.result(Duration::from_secs(20)),
            Err("it broke".to_string())
        );
    }

    fn sleeps_past_its_limit() -> CaseResult {
        std::thread::sleep(Duration::from_secs(30));
        Ok("woke up".into())
    }

    #[test]
    fn a_case_past_its_time_limit_is_killed_with_its_process_group() {
        let case = case!(sleeps_past_its_limit, 1);
        let start = Instant::now();
        let (ok, note) = run_one(&case);
        assert!(!ok);
        assert!(note.starts_with("timed out after 1 s"), "{note}");
        assert!(start.elapsed() < Duration::from_secs(20));
    }

    #[test]
    fn exit_codes_say_how_a_process_ended() {
        let pid = Pid::from_raw(1);
        assert_eq!(exit_code(WaitStatus::Exited(pid, 3)), 3);
        let killed = WaitStatus::Signaled(pid, Signal::SIGKILL, false);
        assert_eq!(exit_code(killed), 137);
        assert!(killed_by(killed, Signal::SIGKILL, false));
        assert!(!killed_by(killed, Signal::SIGKILL, true));
        assert!(killed_by(
            WaitStatus::Signaled(pid, Signal::SIGQUIT, true),
            Signal::SIGQUIT,
            true
        ));
    }
}
