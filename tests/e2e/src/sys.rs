// SPDX-License-Identifier: GPL-2.0
//! System-level helpers that several parts of the tests need: the vhost-net device, mounting a
//! pseudo file system, waiting on a descriptor.

use crate::harness::Context;
use nix::mount::{mount, MsFlags};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use std::fs;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::time::Duration;
use vmm_sys_util::eventfd::EventFd;

/// Opens /dev/vhost-net for reading and writing, without an owner yet.
pub fn open_vhost_net() -> Result<fs::File, String> {
    fs::File::options()
        .read(true)
        .write(true)
        .open("/dev/vhost-net")
        .ctx("open /dev/vhost-net")
}

/// Whether a file system of type `fstype` is mounted at `target`, as /proc/self/mounts says.
fn is_mounted(fstype: &str, target: &str) -> io::Result<bool> {
    Ok(fs::read_to_string("/proc/self/mounts")?.lines().any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.get(1) == Some(&target) && f.get(2) == Some(&fstype)
    }))
}

/// Mounts the pseudo file system `fstype` (debugfs, configfs) at `target` with mount(2),
/// unless it is mounted there already.
pub fn mount_pseudo_fs(fstype: &str, target: &str) -> Result<(), String> {
    if is_mounted(fstype, target).ctx("/proc/self/mounts")? {
        return Ok(());
    }
    mount(
        Some(fstype),
        target,
        Some(fstype),
        MsFlags::empty(),
        None::<&str>,
    )
    .ctx(&format!("mount -t {fstype} {fstype} {target}"))
}

/// The descriptor of an eventfd, borrowed for as long as the eventfd.
pub fn eventfd_fd(e: &EventFd) -> BorrowedFd<'_> {
    // SAFETY: an `EventFd` owns its descriptor (a `File` inside) and closes it only when it is
    // dropped, which the lifetime of the borrow rules out while the `BorrowedFd` lives.
    unsafe { BorrowedFd::borrow_raw(e.as_raw_fd()) }
}

/// Waits up to `timeout` for any of `fds` to be readable; returns which are. A signal that
/// interrupts the wait ends it early, with none readable.
pub fn poll_in(fds: &[BorrowedFd<'_>], timeout: Duration) -> io::Result<Vec<bool>> {
    let mut p: Vec<PollFd<'_>> = fds
        .iter()
        .map(|fd| PollFd::new(*fd, PollFlags::POLLIN))
        .collect();
    let t = PollTimeout::try_from(timeout).unwrap_or(PollTimeout::MAX);
    match poll(&mut p, t) {
        Ok(_) => Ok(p
            .iter()
            .map(|p| p.revents().is_some_and(|r| !r.is_empty()))
            .collect()),
        Err(nix::errno::Errno::EINTR) => Ok(vec![false; fds.len()]),
        Err(e) => Err(e.into()),
    }
}

/// Waits up to `timeout` for `fd` to be readable.
pub fn readable(fd: &impl AsFd, timeout: Duration) -> io::Result<bool> {
    Ok(poll_in(&[fd.as_fd()], timeout)?[0])
}
