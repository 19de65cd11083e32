// SPDX-License-Identifier: GPL-2.0
//! The vhost ioctls that rust-vmm's `vhost` crate does not wrap: the worker mode switch
//! (`VHOST_SET_FORK_FROM_OWNER`), the multi-worker ioctls, and vhost-scsi's endpoint.

use std::io;
use std::os::unix::io::AsRawFd;
use vmm_sys_util::ioctl::{ioctl, ioctl_with_mut_ref, ioctl_with_ref};
use vmm_sys_util::{ioctl_io_nr, ioctl_ior_nr, ioctl_iow_nr, ioctl_iowr_nr};

const VHOST_VIRTIO: u32 = 0xAF;

ioctl_io_nr!(VHOST_SET_OWNER, VHOST_VIRTIO, 0x01);
ioctl_iow_nr!(VHOST_SET_FORK_FROM_OWNER, VHOST_VIRTIO, 0x84, u8);
ioctl_ior_nr!(VHOST_GET_FORK_FROM_OWNER, VHOST_VIRTIO, 0x85, u8);
ioctl_ior_nr!(VHOST_NEW_WORKER, VHOST_VIRTIO, 0x08, WorkerState);
ioctl_iow_nr!(VHOST_FREE_WORKER, VHOST_VIRTIO, 0x09, WorkerState);
ioctl_iow_nr!(VHOST_ATTACH_VRING_WORKER, VHOST_VIRTIO, 0x15, VringWorker);
ioctl_iowr_nr!(VHOST_GET_VRING_WORKER, VHOST_VIRTIO, 0x16, VringWorker);
ioctl_iow_nr!(VHOST_SCSI_SET_ENDPOINT, VHOST_VIRTIO, 0x40, ScsiTarget);
ioctl_iow_nr!(VHOST_SCSI_CLEAR_ENDPOINT, VHOST_VIRTIO, 0x41, ScsiTarget);
ioctl_iow_nr!(VHOST_SCSI_GET_ABI_VERSION, VHOST_VIRTIO, 0x42, i32);

/// `VHOST_FORK_OWNER_KTHREAD`: the worker is a kthread, as before 6.4.
pub const FORK_OWNER_KTHREAD: u8 = 0;
/// `VHOST_FORK_OWNER_TASK`: the worker is a vhost_task of the owner (the default).
pub const FORK_OWNER_TASK: u8 = 1;

/// `struct vhost_worker_state`.
#[repr(C)]
#[derive(Default, Debug, Clone, Copy)]
pub struct WorkerState {
    /// The worker's id, as `VHOST_NEW_WORKER` returns it.
    pub worker_id: u32,
}

/// `struct vhost_vring_worker`.
#[repr(C)]
#[derive(Default, Debug, Clone, Copy)]
pub struct VringWorker {
    /// The ring.
    pub index: u32,
    /// The worker that serves it.
    pub worker_id: u32,
}

/// `struct vhost_scsi_target`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ScsiTarget {
    /// `VHOST_SCSI_ABI_VERSION`, filled in by the kernel on `VHOST_SCSI_GET_ENDPOINT`.
    pub abi_version: i32,
    /// The target's WWPN, NUL-padded.
    pub vhost_wwpn: [u8; 224],
    /// The target portal group tag.
    pub vhost_tpgt: u16,
    /// Zero.
    pub reserved: u16,
}

impl ScsiTarget {
    /// A target naming `wwpn` and `tpgt`.
    pub fn new(wwpn: &str, tpgt: u16) -> Self {
        let mut t = ScsiTarget {
            abi_version: 0,
            vhost_wwpn: [0; 224],
            vhost_tpgt: tpgt,
            reserved: 0,
        };
        t.vhost_wwpn[..wwpn.len()].copy_from_slice(wwpn.as_bytes());
        t
    }
}

fn check(ret: i32) -> io::Result<()> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `VHOST_SET_OWNER`: the calling thread becomes the owner and the worker is created.
pub fn set_owner(fd: &impl AsRawFd) -> io::Result<()> {
    // SAFETY: a valid fd and an ioctl without argument.
    check(unsafe { ioctl(fd, VHOST_SET_OWNER()) })
}

/// `VHOST_SET_FORK_FROM_OWNER`, before `VHOST_SET_OWNER`.
pub fn set_fork_from_owner(fd: &impl AsRawFd, mode: u8) -> io::Result<()> {
    // SAFETY: the ioctl reads one byte from the reference.
    check(unsafe { ioctl_with_ref(fd, VHOST_SET_FORK_FROM_OWNER(), &mode) })
}

/// `VHOST_GET_FORK_FROM_OWNER`.
pub fn get_fork_from_owner(fd: &impl AsRawFd) -> io::Result<u8> {
    let mut mode = 0xffu8;
    // SAFETY: the ioctl writes one byte to the reference.
    check(unsafe { ioctl_with_mut_ref(fd, VHOST_GET_FORK_FROM_OWNER(), &mut mode) })?;
    Ok(mode)
}

/// `VHOST_NEW_WORKER`: returns the new worker's id.
pub fn new_worker(fd: &impl AsRawFd) -> io::Result<u32> {
    let mut st = WorkerState::default();
    // SAFETY: the ioctl writes a `vhost_worker_state` to the reference.
    check(unsafe { ioctl_with_mut_ref(fd, VHOST_NEW_WORKER(), &mut st) })?;
    Ok(st.worker_id)
}

/// `VHOST_FREE_WORKER`.
pub fn free_worker(fd: &impl AsRawFd, worker_id: u32) -> io::Result<()> {
    let st = WorkerState { worker_id };
    // SAFETY: the ioctl reads a `vhost_worker_state` from the reference.
    check(unsafe { ioctl_with_ref(fd, VHOST_FREE_WORKER(), &st) })
}

/// `VHOST_ATTACH_VRING_WORKER`.
pub fn attach_vring_worker(fd: &impl AsRawFd, index: u32, worker_id: u32) -> io::Result<()> {
    let w = VringWorker { index, worker_id };
    // SAFETY: the ioctl reads a `vhost_vring_worker` from the reference.
    check(unsafe { ioctl_with_ref(fd, VHOST_ATTACH_VRING_WORKER(), &w) })
}

/// `VHOST_GET_VRING_WORKER`: the id of the worker of ring `index`.
pub fn get_vring_worker(fd: &impl AsRawFd, index: u32) -> io::Result<u32> {
    let mut w = VringWorker {
        index,
        worker_id: u32::MAX,
    };
    // SAFETY: the ioctl reads and writes a `vhost_vring_worker` at the reference.
    check(unsafe { ioctl_with_mut_ref(fd, VHOST_GET_VRING_WORKER(), &mut w) })?;
    Ok(w.worker_id)
}

/// `VHOST_SCSI_SET_ENDPOINT`.
pub fn scsi_set_endpoint(fd: &impl AsRawFd, t: &ScsiTarget) -> io::Result<()> {
    // SAFETY: the ioctl reads a `vhost_scsi_target` from the reference.
    check(unsafe { ioctl_with_ref(fd, VHOST_SCSI_SET_ENDPOINT(), t) })
}

/// `VHOST_SCSI_CLEAR_ENDPOINT`.
pub fn scsi_clear_endpoint(fd: &impl AsRawFd, t: &ScsiTarget) -> io::Result<()> {
    // SAFETY: the ioctl reads a `vhost_scsi_target` from the reference.
    check(unsafe { ioctl_with_ref(fd, VHOST_SCSI_CLEAR_ENDPOINT(), t) })
}

/// `VHOST_SCSI_GET_ABI_VERSION`.
pub fn scsi_abi_version(fd: &impl AsRawFd) -> io::Result<i32> {
    let mut v = -1i32;
    // SAFETY: the ioctl writes an int to the reference.
    check(unsafe { ioctl_with_mut_ref(fd, VHOST_SCSI_GET_ABI_VERSION(), &mut v) })?;
    Ok(v)
}
