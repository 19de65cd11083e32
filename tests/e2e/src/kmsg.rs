// SPDX-License-Identifier: GPL-2.0
//! The kernel log as /dev/kmsg gives it: new records since a point, the reports of injected
//! faults in them (which allocation failed, from where), and the lines that mean a splat.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;

/// Lines that mean the kernel found a bug: the patterns of scripts/check-debug-log.sh, which
/// the runner applies to the whole log again.
pub const SPLAT: &[&str] = &[
    "WARNING:",
    "BUG:",
    "Oops",
    "DEBUG_LOCKS_WARN_ON",
    "suspicious RCU usage",
    "KASAN:",
    "new suspected memory leaks",
    "unreferenced object",
    "blocked for more than",
    "ODEBUG",
    "Kernel panic",
];

/// A reader of the kernel log from the point where it was opened.
pub struct Kmsg {
    file: File,
}

impl Kmsg {
    /// Opens /dev/kmsg positioned after the last record: only what comes later is read.
    pub fn from_now() -> io::Result<Kmsg> {
        let k = Self::from_start()?;
        // SAFETY: lseek on a descriptor we own; SEEK_END on /dev/kmsg moves past the last record.
        if unsafe { libc::lseek(k.file.as_raw_fd(), 0, libc::SEEK_END) } < 0 {
            return Err(io::Error::last_os_error());
        }
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

/// The lines among `lines` that report a kernel bug.
pub fn splats(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter(|l| SPLAT.iter().any(|p| l.contains(p)))
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
            .map(|c| {
                c.get(..c.char_indices().nth(60).map_or(c.len(), |(i, _)| i))
                    .unwrap_or(c)
            })
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
    let base = name.split('.').next().unwrap_or(name);
    let base = base.strip_suffix("_noprof").unwrap_or(base);
    ALLOCATOR.iter().any(|a| {
        base == *a
            || base
                .strip_prefix(a)
                .is_some_and(|r| r.starts_with('_') || r.starts_with("::"))
    })
}

/// A readable form of a Rust v0 symbol (`_RNv...`): its identifiers joined by `::`, without
/// crate hashes or generic arguments. Other names are returned as they are.
pub fn demangle(sym: &str) -> String {
    let Some(mut rest) = sym.strip_prefix("_R") else {
        return sym.to_string();
    };
    let mut parts: Vec<String> = Vec::new();
    while !rest.is_empty() {
        let c = rest.as_bytes()[0];
        if c.is_ascii_digit() && c != b'0' {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            let len: usize = rest[..digits].parse().unwrap_or(0);
            let start = digits + usize::from(rest[digits..].starts_with('_'));
            if let Some(id) = rest.get(start..start + len) {
                if id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    parts.push(id.to_string());
                    rest = &rest[start + len..];
                    continue;
                }
            }
            rest = &rest[digits..];
        } else if let Some(r) = skip_base62_ref(rest) {
            // A back-reference ("B<base62>_"), a crate's disambiguator ("Cs<base62>_") or an
            // impl's ("s<base62>_"): no identifier.
            rest = r;
        } else {
            rest = &rest[1..];
        }
    }
    parts.dedup();
    if parts.is_empty() {
        sym.to_string()
    } else {
        parts.join("::")
    }
}

/// `rest` after a leading "B<base62>_", "Cs<base62>_" or "s<base62>_", if it has one.
fn skip_base62_ref(rest: &str) -> Option<&str> {
    let r = rest
        .strip_prefix("Cs")
        .or_else(|| rest.strip_prefix('B'))
        .or_else(|| rest.strip_prefix('s'))?;
    let n = r.bytes().take_while(u8::is_ascii_alphanumeric).count();
    r[n..].strip_prefix('_')
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

    #[test]
    fn rust_symbols_are_made_readable() {
        assert_eq!(
            demangle("_RNvNtCs1234abc_6kernel5alloc7realloc"),
            "kernel::alloc::realloc"
        );
        assert_eq!(
            demangle(
                "_RNvMNtCs70JDAdJlpXG_15vhost_task_rust11user_workerINtB3_13NewUserWorkerpE3new"
            ),
            "vhost_task_rust::user_worker::NewUserWorker::new"
        );
        assert!(is_allocator("kernel::alloc::allocator::Kmalloc::realloc"));
        assert!(is_allocator("kmem_cache_alloc_node_noprof"));
        assert!(!is_allocator("alloc_pid"));
        assert!(!is_allocator("xas_alloc"));
    }

    #[test]
    fn kmsg_escapes_are_undone() {
        assert_eq!(unescape("a\\x0ab"), "a\nb");
        assert_eq!(
            record_lines(b"6,10,20,-;hello\\x0aworld\n SUBSYSTEM=x\n"),
            vec!["hello", "world"]
        );
    }
}
