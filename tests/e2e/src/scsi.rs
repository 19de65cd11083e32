// SPDX-License-Identifier: GPL-2.0
//! vhost-scsi: a LIO target with a ramdisk LUN set up through configfs, and the driver side of
//! virtio-scsi requests on its I/O queues.

use crate::harness::{ensure, Context};
use crate::ioctls;
use crate::sys;
use crate::vring::{Buf, Vring};
use std::fs;
use std::os::unix::io::{AsRawFd, RawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};
use vhost::vhost_kern::VhostKernBackend;
use vhost::{VhostBackend, VhostUserMemoryRegionInfo};
use virtio_bindings::virtio_config::VIRTIO_F_VERSION_1;
use virtio_bindings::virtio_scsi::{virtio_scsi_cmd_req, virtio_scsi_cmd_resp};
use vm_memory::{ByteValued, Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap};
use vmm_sys_util::eventfd::EventFd;

const CONFIGFS: &str = "/sys/kernel/config";
/// The vhost WWPN of the test target, and the initiator's of its nexus.
pub const WWPN: &str = "naa.5001405000000001";
const NEXUS: &str = "naa.5001405000000002";
/// The target portal group tag, which is also the target byte of virtio-scsi LUNs.
pub const TPGT: u16 = 1;
/// The first I/O queue: 0 is the control queue, 1 the event queue.
pub const VQ_IO: usize = 2;
const QUEUE_SIZE: u16 = 64;
const MEM_SIZE: usize = 4 << 20;
const BUFS: u64 = 0x40000;
const BLOCK: usize = 512;

/// `struct virtio_scsi_cmd_req`, as guest memory holds it.
#[repr(transparent)]
#[derive(Clone, Copy, Default)]
struct CmdReq(virtio_scsi_cmd_req);

// SAFETY: a packed C struct of integers and byte arrays (51 bytes, alignment 1): it has no
// padding, and every bit pattern is a valid value of it.
unsafe impl ByteValued for CmdReq {}

/// `struct virtio_scsi_cmd_resp`, as guest memory holds it.
#[repr(transparent)]
#[derive(Clone, Copy)]
struct CmdResp(virtio_scsi_cmd_resp);

// SAFETY: a packed C struct of integers and a byte array (108 bytes, alignment 1): it has no
// padding, and every bit pattern is a valid value of it.
unsafe impl ByteValued for CmdResp {}

/// The size of a request and of a response in guest memory.
const REQ_LEN: usize = std::mem::size_of::<CmdReq>();
const RESP_LEN: usize = std::mem::size_of::<CmdResp>();

/// The LIO objects of the test target; removed again on drop.
pub struct Target {
    core: String,
    tpg: String,
    lun: String,
}

/// Mounts configfs unless it is there, and returns the vhost TPG's directory.
fn configfs_tpg() -> Result<String, String> {
    sys::mount_pseudo_fs("configfs", CONFIGFS)?;
    Ok(format!("{CONFIGFS}/target/vhost/{WWPN}/tpgt_{TPGT}"))
}

impl Target {
    /// A ramdisk backstore, the vhost WWPN and TPG with the ramdisk as LUN 0, and a nexus.
    pub fn new() -> Result<Target, String> {
        let tpg = configfs_tpg()?;
        let t = Target {
            core: format!("{CONFIGFS}/target/core/rd_mcp_0/vt_disk"),
            lun: format!("{tpg}/lun/lun_0"),
            tpg,
        };
        fs::create_dir_all(&t.core).ctx("backstore")?;
        // 256 pages of 4 KiB: a 1 MiB ramdisk.
        fs::write(format!("{}/control", t.core), "rd_pages=256").ctx("backstore control")?;
        fs::write(format!("{}/enable", t.core), "1").ctx("backstore enable")?;
        fs::create_dir_all(&t.lun).ctx("lun")?;
        std::os::unix::fs::symlink(&t.core, format!("{}/vt_port", t.lun)).ctx("lun link")?;
        fs::write(format!("{}/nexus", t.tpg), NEXUS).ctx("nexus")?;
        Ok(t)
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        // Ignored, each: the teardown goes on past a step that failed, and a drop has no one
        // to tell; what is left makes the next Target::new of this boot fail, with the reason.
        let _ = fs::write(format!("{}/nexus", self.tpg), "NULL");
        let _ = fs::remove_file(format!("{}/vt_port", self.lun));
        let _ = fs::remove_dir(&self.lun);
        let _ = fs::remove_dir(&self.tpg);
        let _ = fs::remove_dir(format!("{CONFIGFS}/target/vhost/{WWPN}"));
        let _ = fs::remove_dir(&self.core);
    }
}

/// Sets up the vhost WWPN and TPG and a nexus, but no LUN, and leaves them for the rest of
/// the boot; a target an earlier call left is used as it is. LIO answers LUN 0 from its
/// virtual LUN 0 (read-only, empty), which is enough for `INQUIRY`.
///
/// For a lockdep kernel that must go on checking after `VHOST_SCSI_SET_ENDPOINT`: that takes
/// `tpg->tv_tpg_mutex` and then, in `configfs_depend_item()`, the inode lock of configfs'
/// `target` directory, which shares its lockdep class with every configfs directory. Mapping
/// a LUN (a symlink: a LUN directory's inode lock, then `tv_tpg_mutex` in
/// `vhost_scsi_port_link()`) or removing the target (`rmdir`: a directory's inode lock, then
/// `frag_sem`, which the nexus store holds while it takes `tv_tpg_mutex`) closes a cycle of
/// classes, so lockdep reports a deadlock between two different inodes and turns itself off
/// for the rest of the boot. Hence no LUN, and nothing is ever removed, not even on an error.
pub fn lasting_target_without_lun() -> Result<(), String> {
    let tpg = configfs_tpg()?;
    fs::create_dir_all(&tpg).ctx("tpg")?;
    // Reading `nexus` fails with ENODEV while there is none.
    if fs::read_to_string(format!("{tpg}/nexus")).is_err() {
        fs::write(format!("{tpg}/nexus"), NEXUS).ctx("nexus")?;
    }
    Ok(())
}

/// /dev/vhost-scsi, for which the `vhost` crate has no type: its generic kernel backend gives
/// it the common ioctls.
pub struct ScsiDev {
    fd: fs::File,
    mem: Arc<GuestMemoryMmap>,
    rings: Vec<(usize, Vring, EventFd, EventFd)>,
}

impl AsRawFd for ScsiDev {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl VhostKernBackend for ScsiDev {
    type AS = Arc<GuestMemoryMmap>;

    fn mem(&self) -> &Self::AS {
        &self.mem
    }
}

fn vh<T>(r: vhost::Result<T>, what: &str) -> Result<T, String> {
    r.map_err(|e| format!("{what}: {e:?}"))
}

/// The result of a SCSI command.
pub struct Completion {
    /// The virtio-scsi response (`VIRTIO_SCSI_S_OK` is 0).
    pub response: u8,
    /// The SCSI status (GOOD is 0).
    pub status: u8,
    /// What the device wrote to the data-in buffer.
    pub data: Vec<u8>,
}

impl ScsiDev {
    /// Opens it, without an owner yet.
    pub fn open() -> Result<ScsiDev, String> {
        let fd = fs::File::options()
            .read(true)
            .write(true)
            .open("/dev/vhost-scsi")
            .ctx("open /dev/vhost-scsi")?;
        let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), MEM_SIZE)])
            .map_err(|e| format!("{e:?}"))?;
        Ok(ScsiDev {
            fd,
            mem: Arc::new(mem),
            rings: Vec::new(),
        })
    }

    /// Features and memory table, once the caller is the owner.
    pub fn setup_memory(&self) -> Result<(), String> {
        vh(
            self.set_features(1 << VIRTIO_F_VERSION_1),
            "VHOST_SET_FEATURES",
        )?;
        let host = self
            .mem
            .get_host_address(GuestAddress(0))
            .map_err(|e| format!("{e:?}"))?;
        vh(
            self.set_mem_table(&[VhostUserMemoryRegionInfo {
                guest_phys_addr: 0,
                memory_size: MEM_SIZE as u64,
                userspace_addr: host as u64,
                mmap_offset: 0,
                mmap_handle: -1,
            }])
            // Only a vhost-user backend in postcopy returns its mapping bases.
            .map(|_bases| ()),
            "VHOST_SET_MEM_TABLE",
        )
    }

    /// Sets up I/O queue `q` (before `VHOST_SCSI_SET_ENDPOINT`).
    pub fn setup_queue(&mut self, q: usize) -> Result<(), String> {
        let base = 0x8000 * (q as u64 - VQ_IO as u64);
        let r = Vring::new(&self.mem, base, QUEUE_SIZE);
        let kick = EventFd::new(libc::EFD_NONBLOCK).ctx("eventfd")?;
        let call = EventFd::new(libc::EFD_NONBLOCK).ctx("eventfd")?;
        crate::vring::configure(self, q, &r, &kick, &call)?;
        self.rings.push((q, r, kick, call));
        Ok(())
    }

    /// `VHOST_SCSI_SET_ENDPOINT` on the test target.
    pub fn set_endpoint(&self) -> Result<(), String> {
        ioctls::scsi_set_endpoint(self, &ioctls::ScsiTarget::new(WWPN, TPGT))
            .ctx("VHOST_SCSI_SET_ENDPOINT")
    }

    /// `VHOST_SCSI_CLEAR_ENDPOINT`.
    pub fn clear_endpoint(&self) -> Result<(), String> {
        ioctls::scsi_clear_endpoint(self, &ioctls::ScsiTarget::new(WWPN, TPGT))
            .ctx("VHOST_SCSI_CLEAR_ENDPOINT")
    }

    /// Runs one command on LUN 0 through queue `q`: `out` is written to the device, `in_len`
    /// bytes are read back.
    pub fn command(
        &mut self,
        q: usize,
        cdb: &[u8],
        out: &[u8],
        in_len: usize,
    ) -> Result<Completion, String> {
        let mem = self.mem.clone();
        let (_, ring, kick, call) = self
            .rings
            .iter_mut()
            .find(|(i, ..)| *i == q)
            .ok_or_else(|| format!("queue {q} is not set up"))?;
        let base = BUFS + 0x20000 * (q as u64 - VQ_IO as u64);
        let (req_a, out_a) = (base, base + 0x1000);
        let (resp_a, in_a) = (base + 0x10000, base + 0x11000);

        let mut req = CmdReq::default();
        // LUN: byte 0 is 1, byte 1 the target (the TPGT), then the flat LUN 0.
        req.0.lun[..4].copy_from_slice(&[1, TPGT as u8, 0x40, 0x00]);
        req.0.tag = 0x7e57u64.to_le();
        let cdb_room = req.0.cdb.len();
        req.0
            .cdb
            .get_mut(..cdb.len())
            .ok_or_else(|| format!("a CDB of {} bytes, more than {cdb_room}", cdb.len()))?
            .copy_from_slice(cdb);
        let w = |a: u64, d: &[u8]| {
            mem.write_slice(d, GuestAddress(a))
                .map_err(|e| format!("{e:?}"))
        };
        w(req_a, req.as_slice())?;
        w(out_a, out)?;
        // Not zeros, which are what a good completion writes: a field the device did not write
        // shows.
        w(resp_a, &[0xffu8; RESP_LEN])?;
        w(in_a, &vec![0xa5u8; in_len])?;

        let mut bufs = vec![Buf {
            addr: req_a,
            len: REQ_LEN as u32,
            write: false,
        }];
        if !out.is_empty() {
            bufs.push(Buf {
                addr: out_a,
                len: out.len() as u32,
                write: false,
            });
        }
        bufs.push(Buf {
            addr: resp_a,
            len: RESP_LEN as u32,
            write: true,
        });
        if in_len > 0 {
            bufs.push(Buf {
                addr: in_a,
                len: in_len as u32,
                write: true,
            });
        }
        let ids = ring.alloc(bufs.len()).ok_or("ring full")?;
        ring.publish(&mem, &ids, &bufs);
        kick.write(1).ctx("kick")?;

        let end = Instant::now() + Duration::from_secs(20);
        loop {
            if ring.pop_used(&mem).is_some() {
                break;
            }
            ensure(Instant::now() < end, || {
                format!("no completion on queue {q}")
            })?;
            if sys::readable(&sys::eventfd_fd(call), Duration::from_millis(50)).ctx("poll")? {
                // The count only says that the device signalled; the used ring says what.
                call.read().ctx("read the call eventfd")?;
            }
        }
        let resp: CmdResp = mem
            .read_obj(GuestAddress(resp_a))
            .map_err(|e| format!("{e:?}"))?;
        let mut data = vec![0u8; in_len];
        mem.read_slice(&mut data, GuestAddress(in_a))
            .map_err(|e| format!("{e:?}"))?;
        Ok(Completion {
            status: resp.0.status,
            response: resp.0.response,
            data,
        })
    }

    /// WRITE(10) of `data` at block `lba` through queue `q`.
    pub fn write_blocks(&mut self, q: usize, lba: u32, data: &[u8]) -> Result<(), String> {
        let blocks = (data.len() / BLOCK) as u16;
        let mut cdb = [0u8; 10];
        cdb[0] = 0x2a;
        cdb[2..6].copy_from_slice(&lba.to_be_bytes());
        cdb[7..9].copy_from_slice(&blocks.to_be_bytes());
        let c = self.command(q, &cdb, data, 0)?;
        ensure(c.response == 0 && c.status == 0, || {
            format!(
                "WRITE(10) at {lba}: response {} status {:#x}",
                c.response, c.status
            )
        })
    }

    /// READ(10) of `blocks` blocks at `lba` through queue `q`.
    pub fn read_blocks(&mut self, q: usize, lba: u32, blocks: u16) -> Result<Vec<u8>, String> {
        let mut cdb = [0u8; 10];
        cdb[0] = 0x28;
        cdb[2..6].copy_from_slice(&lba.to_be_bytes());
        cdb[7..9].copy_from_slice(&blocks.to_be_bytes());
        let c = self.command(q, &cdb, &[], blocks as usize * BLOCK)?;
        ensure(c.response == 0 && c.status == 0, || {
            format!(
                "READ(10) at {lba}: response {} status {:#x}",
                c.response, c.status
            )
        })?;
        Ok(c.data)
    }
}

impl ScsiDev {
    /// INQUIRY of LUN 0 through queue `q`; returns the T10 vendor identification (bytes 8-15
    /// of the standard data, "LIO-ORG " for LIO).
    pub fn inquiry_vendor(&mut self, q: usize) -> Result<String, String> {
        const LEN: u8 = 36;
        let c = self.command(q, &[0x12, 0, 0, 0, LEN, 0], &[], LEN.into())?;
        ensure(c.response == 0 && c.status == 0, || {
            format!("INQUIRY: response {} status {:#x}", c.response, c.status)
        })?;
        Ok(String::from_utf8_lossy(&c.data[8..16]).into_owned())
    }
}

/// Block contents that depend on the block number and a round.
pub fn pattern(lba: u32, blocks: usize, round: u32) -> Vec<u8> {
    (0..blocks * BLOCK)
        .map(|i| (lba as usize * 7 + i + round as usize * 13) as u8)
        .collect()
}
