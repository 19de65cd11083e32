// SPDX-License-Identifier: GPL-2.0
//! The kernel log as /dev/kmsg gives it: new records since a point, the reports of injected
//! faults in them (which allocation failed, from where), and the lines that mean a splat.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;

/// The splats of the project, `tests/splats.txt`, which scripts/check-debug-log.sh reads too:
/// a kind and a text a line.
const SPLATS: &str = include_str!("../../splats.txt");

/// The kinds of splat whose names start with this are only checked where no fault is
/// injected: a stack trace, or the mere name of a debugging tool.
const STRICT: &str = "strict:";

/// The (kind, text) pairs of the splat file; with `strict`, the strict ones too.
fn patterns(strict: bool) -> impl Iterator<Item = (&'static str, &'static str)> {
    SPLATS
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once(char::is_whitespace))
        .map(|(kind, text)| (kind, text.trim()))
        .filter(move |(kind, text)| !text.is_empty() && (strict || !kind.starts_with(STRICT)))
}

/// The kind of splat `line` is, as the splat file names it, if it is one; with `strict`, the
/// strict kinds count too.
pub fn splat_kind(line: &str, strict: bool) -> Option<&'static str> {
    patterns(strict)
        .find(|(_, text)| line.contains(text))
        .map(|(kind, _)| kind)
}

/// A reader of the kernel log from the point where it was opened.
pub struct Kmsg {
    file: File,
}

impl Kmsg {
    /// Opens /dev/kmsg positioned after the last record: only what comes later is read.
    pub fn from_now() -> io::Result<Kmsg> {
        let mut k = Self::from_start()?;
        // SEEK_END on /dev/kmsg moves past the last record.
        k.file.seek(SeekFrom::End(0))?;
        Ok(k)
    }

    /// Opens /dev/kmsg at the oldest record the buffer still holds.
    pub fn from_start() -> io::Result<Kmsg> {
        let file = File::options()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open("/dev/kmsg")?;
        Ok(Kmsg { file })
    }

    /// The text lines of the records logged since the last call (or the open).
    pub fn read_new(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        let mut buf = vec![0u8; 8192];
        loop {
            match self.file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => lines.extend(record_lines(&buf[..n])),
                // EPIPE: records were overwritten before we read them; go on with the next.
                Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
                Err(_) => break,
            }
        }
        lines
    }
}

/// The text of one /dev/kmsg record ("prio,seq,usec,flags;text\n KEY=value..."), unescaped and
/// split into lines.
fn record_lines(rec: &[u8]) -> Vec<String> {
    let rec = String::from_utf8_lossy(rec);
    let first = rec.lines().next().unwrap_or("");
    let text = first.split_once(';').map_or(first, |(_, t)| t);
    unescape(text).lines().map(str::to_string).collect()
}

/// /dev/kmsg writes unprintable bytes, newlines included, as `\xNN`.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("\\x") {
        out.push_str(&rest[..i]);
        let hex = rest
            .get(i + 2..i + 4)
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex {
            Some(b) => {
                out.push(b as char);
                rest = &rest[i + 4..];
            }
            None => {
                out.push_str("\\x");
                rest = &rest[i + 2..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The lines among `lines` that report a kernel bug: the splats of the splat file, not the
/// strict ones (a log with injected faults has their stack traces).
pub fn splats(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter(|l| splat_kind(l, false).is_some())
        .cloned()
        .collect()
}

/// The same with the strict kinds too, for a log in which no fault was injected: any stack
/// trace, and any line that names lockdep, KASAN or kmemleak, is a report.
pub fn splats_strict(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter(|l| splat_kind(l, true).is_some())
        .cloned()
        .collect()
}

/// One injected fault as the kernel reported it (`verbose` 2: a line and a stack trace).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// The fault type that fired: "failslab", "fail_page_alloc", ...
    pub kind: String,
    /// The frames of the trace above the allocator, innermost first, without offsets.
    pub callers: Vec<String>,
}

impl Fault {
    /// "failslab vhost_worker_create < vhost_dev_set_owner < vhost_net_ioctl".
    pub fn describe(&self, depth: usize) -> String {
        let chain: Vec<&str> = self
            .callers
            .iter()
            .take(depth)
            .map(String::as_str)
            .collect();
        if chain.is_empty() {
            format!("{} (no frames above the allocator)", self.kind)
        } else {
            format!("{} {}", self.kind, chain.join(" < "))
        }
    }
}

/// The functions of the allocators and of fault injection itself, which a trace shows above
/// the allocation site. A name matches an entry if it is the entry, or the entry followed by
/// `_` and more ("kmem_cache_alloc" covers "kmem_cache_alloc_node_noprof").
const ALLOCATOR: &[&str] = &[
    "dump_stack",
    "dump_stack_lvl",
    "fail_dump",
    "should_fail",
    "should_fail_ex",
    "should_failslab",
    "__should_failslab",
    "should_fail_alloc_page",
    "__should_fail_alloc_page",
    "prepare_alloc_pages",
    "slab_pre_alloc_hook",
    "slab_alloc_node",
    "__slab_alloc",
    "___slab_alloc",
    "allocate_slab",
    "new_slab",
    "alloc_slab_page",
    "kmem_cache_alloc",
    "kmem_cache_zalloc",
    "__kmem_cache_alloc",
    "__kmalloc",
    "kmalloc",
    "kzalloc",
    "kcalloc",
    "krealloc",
    "__kvmalloc",
    "kvmalloc",
    "kvzalloc",
    "kmemdup",
    "kstrdup",
    "__alloc_pages",
    "alloc_pages",
    "__folio_alloc",
    "folio_alloc",
    "__alloc_frozen_pages",
    "alloc_frozen_pages",
    "__get_free_pages",
    "get_zeroed_page",
    "__vmalloc",
    "vmalloc",
    "vzalloc",
    "__get_vm_area",
    "alloc_vmap_area",
    "vm_area_alloc_pages",
    "__alloc_percpu",
    "pcpu_alloc",
    "__alloc_pages_bulk",
    "alloc_pages_bulk",
    "kasan",
    "__kasan",
    "memcg",
    "__memcg",
    "obj_cgroup",
    "rust_helper_krealloc",
    "rust_helper_kmalloc",
    "kernel::alloc",
];

fn is_allocator(name: &str) -> bool {
    // A Rust method is "<Type as Trait>::name" or "<Type>::name": the type's path decides.
    let name = name.trim_start_matches('<');
    let base = name.split('.').next().unwrap_or(name);
    let base = base.strip_suffix("_noprof").unwrap_or(base);
    ALLOCATOR.iter().any(|a| {
        base == *a
            || base
                .strip_prefix(a)
                .is_some_and(|r| r.starts_with('_') || r.starts_with("::"))
    })
}

/// A readable form of a Rust symbol (legacy `_ZN...E` or v0 `_R...`), as rustc-demangle gives
/// it without the crates' hashes: `<kernel::alloc::kvec::Vec<u8>>::push`. Other names, C
/// functions among them, are returned as they are.
pub fn demangle(sym: &str) -> String {
    match rustc_demangle::try_demangle(sym) {
        Ok(d) => format!("{d:#}"),
        Err(_) => sym.to_string(),
    }
}

/// The function of a stack trace line (" vhost_worker_create+0x8f/0x1c0"), or `None` for lines
/// that are not a reliable frame ("? ..." guesses, "<TASK>", registers).
fn frame(line: &str) -> Option<String> {
    let l = line.trim();
    if l.starts_with('?') || l.starts_with('<') {
        return None;
    }
    let (name, off) = l.split_once('+')?;
    if name.contains(' ') || !off.starts_with("0x") {
        return None;
    }
    Some(demangle(name))
}

/// The injected faults reported among `lines`, in order.
pub fn faults(lines: &[String]) -> Vec<Fault> {
    let mut out: Vec<Fault> = Vec::new();
    let mut in_trace = false;
    // Only the first trace after a report is the fault's: a failed page allocation may be
    // followed by the allocator's own "page allocation failure" trace.
    let mut traced = false;
    for l in lines {
        if l.contains("FAULT_INJECTION: forcing a failure") {
            out.push(Fault {
                kind: "unknown".into(),
                callers: Vec::new(),
            });
            in_trace = false;
            traced = false;
            continue;
        }
        let Some(f) = out.last_mut() else {
            continue;
        };
        if let Some(rest) = l.trim().strip_prefix("name ") {
            if f.kind == "unknown" {
                f.kind = rest.split(',').next().unwrap_or("unknown").to_string();
            }
        } else if l.contains("Call Trace:") {
            in_trace = !traced;
            traced = true;
        } else if l.contains("</TASK>") {
            in_trace = false;
        } else if in_trace {
            if let Some(name) = frame(l) {
                if f.callers.is_empty() && is_allocator(&name) {
                    continue;
                }
                f.callers.push(name);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(s: &str) -> Vec<String> {
        s.lines().map(str::to_string).collect()
    }

    #[test]
    fn fault_trace_gives_the_first_caller_above_the_allocator() {
        let log = lines(
            "FAULT_INJECTION: forcing a failure.
name failslab, interval 1, probability 0, space 0, times 1
CPU: 1 UID: 0 PID: 77 Comm: vhost-e2e Not tainted 6.12.117 #1
Call Trace:
 <TASK>
 dump_stack_lvl+0x5d/0x80
 should_fail_ex+0x1b2/0x1f0
 ? kasan_save_track+0x10/0x30
 should_failslab+0xc2/0x120
 __kmalloc_cache_noprof+0x6c/0x310
 vhost_worker_create+0x8f/0x1c0
 vhost_dev_set_owner+0x1ab/0x2a0
 </TASK>
vhost-e2e: page allocation failure: order:0
Call Trace:
 <TASK>
 warn_alloc+0x10/0x20
 </TASK>",
        );
        let f = faults(&log);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].kind, "failslab");
        assert_eq!(
            f[0].describe(2),
            "failslab vhost_worker_create < vhost_dev_set_owner"
        );
    }

    /// Symbols of the 6.12 Rust kernel (`llvm-nm` of build/obj-rust), whose generic arguments
    /// and back-references the hand-written demangler merged into the path.
    const NEW_USER_WORKER: &str = "_RINvMs5_NtNtCs1EKtwoKEMO2_6kernel4task11user_workerINtB6_13NewUserWorkerINtNtCs70JDAdJlpXG_15vhost_task_rust10vhost_task11VhostSharedNtNtB1d_5c_abi5CWorkEE3newB18_EB1d_";
    const NEW_VHOST_TASK: &str = "_RNvMNtCs70JDAdJlpXG_15vhost_task_rust10vhost_taskINtB2_12NewVhostTaskNtNtB4_5c_abi5CWorkE3newB4_";
    const BOX_NEW_UNINIT: &str = "_RNvMs2_NtNtCs1EKtwoKEMO2_6kernel5alloc4kboxINtB5_3BoxINtNtNtB9_4task11user_worker6SharedINtNtCs70JDAdJlpXG_15vhost_task_rust10vhost_task11VhostSharedNtNtB1t_5c_abi5CWorkEENtNtB7_9allocator7KmallocE10new_uninitB1t_";
    const REALLOC: &str = "_RNvMNtNtCs1EKtwoKEMO2_6kernel5alloc9allocatorNtB2_11ReallocFunc4call";

    #[test]
    fn rust_symbols_with_generics_are_demangled_whole() {
        assert_eq!(
            demangle(NEW_VHOST_TASK),
            "<vhost_task_rust::vhost_task::NewVhostTask<vhost_task_rust::c_abi::CWork>>::new"
        );
        assert_eq!(
            demangle(NEW_USER_WORKER),
            "<kernel::task::user_worker::NewUserWorker<vhost_task_rust::vhost_task::VhostShared<\
             vhost_task_rust::c_abi::CWork>>>::new::<vhost_task_rust::vhost_task::VhostShared<\
             vhost_task_rust::c_abi::CWork>>"
        );
        assert_eq!(
            demangle(REALLOC),
            "<kernel::alloc::allocator::ReallocFunc>::call"
        );
        assert_eq!(demangle("vhost_task_create"), "vhost_task_create");
    }

    #[test]
    fn allocators_are_told_from_their_callers_in_c_and_rust() {
        assert!(is_allocator(&demangle(REALLOC)));
        assert!(is_allocator(&demangle(BOX_NEW_UNINIT)));
        assert!(is_allocator("kernel::alloc::allocator::Kmalloc::realloc"));
        assert!(is_allocator("kmem_cache_alloc_node_noprof"));
        assert!(is_allocator("__kmalloc_cache_noprof.cold"));
        assert!(!is_allocator(&demangle(NEW_USER_WORKER)));
        assert!(!is_allocator("alloc_pid"));
        assert!(!is_allocator("xas_alloc"));
    }

    #[test]
    fn fault_trace_through_rust_generics_names_the_rust_callers() {
        let frames = [
            "dump_stack_lvl+0x5d/0x80",
            "should_fail_ex+0x1b2/0x1f0",
            "should_failslab+0xc2/0x120",
            "__kmalloc_noprof+0x9c/0x3a0",
            "krealloc_noprof+0x61/0x150",
            &format!("{REALLOC}+0x3a/0x60"),
            &format!("{BOX_NEW_UNINIT}+0x2f/0x90"),
            &format!("{NEW_USER_WORKER}+0x4b/0x2c0"),
            &format!("{NEW_VHOST_TASK}+0x33/0x1a0"),
            "vhost_task_create+0x5e/0x110",
            "vhost_worker_create+0x8f/0x1c0 [vhost]",
        ];
        let mut log = lines(
            "FAULT_INJECTION: forcing a failure.
name failslab, interval 1, probability 0, space 0, times 1
Call Trace:
 <TASK>",
        );
        log.extend(frames.iter().map(|f| format!(" {f}")));
        log.push(" </TASK>".into());
        let f = faults(&log);
        assert_eq!(f.len(), 1);
        assert_eq!(
            f[0].describe(3),
            format!(
                "failslab {} < {} < vhost_task_create",
                demangle(NEW_USER_WORKER),
                demangle(NEW_VHOST_TASK)
            )
        );
    }

    #[test]
    fn kmsg_escapes_are_undone() {
        assert_eq!(unescape("a\\x0ab"), "a\nb");
        assert_eq!(
            record_lines(b"6,10,20,-;hello\\x0aworld\n SUBSYSTEM=x\n"),
            vec!["hello", "world"]
        );
    }
    /// One line of each kind of splat, and the kind the splat file must give it. Where no
    /// real log of this project had the kind, the line is the kernel's printk format of 6.12
    /// (cited in tests/splats.txt) with values filled in.
    const SPLAT_LINES: &[(&str, &str)] = &[
        ("rcu-stall", "[  301.224018] rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:"),
        ("rcu-stall", "[  301.224130] rcu: INFO: rcu_preempt self-detected stall on CPU"),
        (
            "rcu-stall",
            "[  301.224018] rcu: INFO: rcu_preempt detected expedited stalls on CPUs/tasks: { 1-.... } 21002 jiffies s: 265 root: 0x2/.",
        ),
        ("rcu-stall", "[  301.224018] INFO: rcu_tasks detected stalls on tasks:"),
        (
            "hung-task",
            "[  245.780122] INFO: task vhost-e2e:812 blocked for more than 122 seconds.",
        ),
        ("hard-lockup", "[  88.100000] watchdog: Watchdog detected hard LOCKUP on cpu 1"),
        (
            "kasan",
            "[  120.418234] BUG: KASAN: slab-use-after-free in vhost_task_wake+0x2a/0x40",
        ),
        (
            "ubsan",
            "[   14.002211] UBSAN: array-index-out-of-bounds in drivers/vhost/vhost.c:2215:29",
        ),
        // The console of the lockdep-debug guest (the debug kernel, 6.12).
        ("lockdep", "WARNING: possible circular locking dependency detected"),
        ("lockdep", "[   33.120077] WARNING: possible recursive locking detected"),
        ("lockdep", "[   33.120077] WARNING: inconsistent lock state"),
        (
            "lockdep",
            "[   33.120077] WARNING: possible irq lock inversion dependency detected",
        ),
        ("lockdep", "[   33.120077] WARNING: bad unlock balance detected!"),
        ("lockdep", "[   33.120077] WARNING: suspicious RCU usage"),
        (
            "lockdep",
            "[   33.120077] DEBUG_LOCKS_WARN_ON(lock->magic != lock)",
        ),
        // docs/testing.md, from a run with the sleep loop the example used to teach.
        (
            "atomic-sleep",
            "[   61.904120] do not call blocking ops when !TASK_RUNNING; state=1 set at [<000000008f4c1f2e>] rust_helper_set_current_state+0x10/0x20",
        ),
        (
            "kmemleak",
            "[  612.010203] kmemleak: 2 new suspected memory leaks (see /sys/kernel/debug/kmemleak)",
        ),
        ("kmemleak", "unreferenced object 0xffff888004a1b000 (size 64):"),
        (
            "debugobjects",
            "[   70.300100] ODEBUG: free active (active state 0) object: ffff888006c3a0e0 object type: timer_list hint: vhost_poll_wakeup+0x0/0x40",
        ),
        // The console of a guest of the Rust 6.12 kernel crashed with sysrq mid-suite.
        ("panic", "Kernel panic - not syncing: sysrq triggered crash"),
        (
            "oops",
            "[   80.015002] Oops: general protection fault, probably for non-canonical address 0xdffffc0000000002: 0000 [#1] PREEMPT SMP KASAN NOPTI",
        ),
        (
            "bug",
            "[   52.500660] BUG: sleeping function called from invalid context at kernel/locking/mutex.c:585",
        ),
        (
            "bug",
            "[   99.000001] watchdog: BUG: soft lockup - CPU#0 stuck for 26s! [vhost-812:813]",
        ),
        (
            "warning",
            "[   61.904120] WARNING: CPU: 1 PID: 813 at kernel/sched/core.c:8658 __might_sleep+0x6e/0x80",
        ),
    ];

    /// Lines of a healthy kernel's log, no splat, though some name a debugging tool or show a
    /// stack trace: of the debug kernel (KASAN, lockdep, kmemleak, fault injection), and, at the
    /// end, real lines of the e2e-rust console, of the guest crashed with sysrq and of the
    /// lockdep report's header (its own lines are no splat; its "WARNING:" line is).
    const CLEAN_LINES: &[&str] = &[
        "[    0.000000] kasan: KernelAddressSanitizer initialized",
        "[    0.120000] Lock dependency validator: Copyright (c) 2006 Red Hat, Inc., Ingo Molnar",
        "[    2.000000] kmemleak: Kernel memory leak detector initialized (mem pool available: 15626)",
        "[    2.000001] kmemleak: Automatic memory scanning thread started",
        "[   40.000000] FAULT_INJECTION: forcing a failure.",
        "[   40.000001] name failslab, interval 1, probability 0, space 0, times 1",
        "[   40.000002] Call Trace:",
        "[   40.000100] vhost-e2e: page allocation failure: order:0, mode:0xcc0(GFP_KERNEL), nodemask=(null)",
        "[    0.050000] rcu: Hierarchical RCU implementation.",
        "[   10.000000] kvm: user requested TSC rate below hardware speed",
        "db_root: cannot open: /etc/target",
        "Unable to remove TCM_vhost I_T Nexus with active TPG port count: 1",
        "sysrq: Trigger a crash",
        "======================================================",
        "6.12.118 #1 Not tainted",
    ];

    #[test]
    fn splat_file_has_texts_for_every_kind_and_no_empty_one() {
        let kinds: Vec<&str> = patterns(true).map(|(k, _)| k).collect();
        for (kind, _) in SPLAT_LINES {
            assert!(kinds.contains(kind), "no {kind} in tests/splats.txt");
        }
        for kind in kinds.iter().filter(|k| !k.starts_with(STRICT)) {
            assert!(
                SPLAT_LINES.iter().any(|(k, _)| k == kind),
                "no test line of kind {kind}"
            );
        }
        let lines = SPLATS
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'));
        assert_eq!(
            lines.count(),
            patterns(true).count(),
            "a line without a text"
        );
    }

    #[test]
    fn every_kind_of_splat_is_caught_and_named() {
        for (kind, line) in SPLAT_LINES {
            assert_eq!(splat_kind(line, false), Some(*kind), "{line}");
            assert_eq!(splats(&[line.to_string()]).len(), 1, "{line}");
        }
    }

    #[test]
    fn healthy_debug_kernel_lines_are_no_splats_but_strict_checks_catch_traces() {
        let clean: Vec<String> = CLEAN_LINES.iter().map(|l| l.to_string()).collect();
        assert_eq!(splats(&clean), Vec::<String>::new());
        let strict = splats_strict(&clean);
        assert_eq!(
            strict,
            [CLEAN_LINES[2], CLEAN_LINES[3], CLEAN_LINES[6]],
            "the strict kinds catch kmemleak's lines and the trace"
        );
        assert_eq!(splat_kind("[ 1.0] Call Trace:", true), Some("strict:trace"));
    }

    /// Runs scripts/check-debug-log.sh on a log of `lines`; its exit status.
    fn check_debug_log(name: &str, lines: &[&str]) -> i32 {
        let log = std::env::temp_dir().join(format!("vt-splat-{}-{name}.log", std::process::id()));
        std::fs::write(&log, lines.join("\n") + "\n").unwrap();
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../scripts/check-debug-log.sh"
        );
        let out = std::process::Command::new(script)
            .arg(&log)
            .output()
            .unwrap();
        std::fs::remove_file(&log).unwrap();
        out.status.code().unwrap()
    }

    #[test]
    fn check_debug_log_sh_reads_the_same_splats() {
        for (i, (kind, line)) in SPLAT_LINES.iter().enumerate() {
            assert_eq!(
                check_debug_log(&i.to_string(), &[line]),
                1,
                "{kind}: {line}"
            );
        }
        assert_eq!(check_debug_log("clean", CLEAN_LINES), 0);
    }
}
