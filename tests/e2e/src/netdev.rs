// SPDX-License-Identifier: GPL-2.0
//! A vhost-net device driven through rust-vmm's `vhost` crate, with a tap backend, and the
//! traffic the tests push through it: numbered frames, checked byte for byte and in order.

use crate::harness::Context;
use crate::ioctls;
use crate::sys;
use crate::tap::{PacketSocket, Tap, ETHERTYPE};
use crate::vring::{Buf, Vring};
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};
use vhost::net::VhostNet;
use vhost::vhost_kern::net::Net;
use vhost::{VhostBackend, VhostUserMemoryRegionInfo};
use virtio_bindings::virtio_config::VIRTIO_F_VERSION_1;
use virtio_bindings::virtio_net::VIRTIO_NET_F_MRG_RXBUF;
use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion};
use vmm_sys_util::eventfd::EventFd;

/// `VHOST_NET_F_VIRTIO_NET_HDR`: vhost adds and strips the virtio-net header itself.
const VHOST_NET_F_VIRTIO_NET_HDR: u64 = 27;
/// The header with `VIRTIO_F_VERSION_1`: `struct virtio_net_hdr_v1` (12 bytes).
pub const HDR_LEN: usize = 12;
/// Ring size of both queues.
pub const QUEUE_SIZE: u16 = 256;
/// The largest frame the tests send: the 64 KiB the tap's MTU allows, minus nothing.
pub const MAX_FRAME: usize = 65535;

/// The receive queue, and the transmit queue.
pub const RX: usize = 0;
const TX: usize = 1;
/// Where each queue's ring is in guest memory, by queue.
const RING_AT: [u64; 2] = [0, 0x8000];
const MEM_SIZE: usize = 64 << 20;
/// Receive buffers: a whole frame each without mergeable buffers, 4 KiB each with.
const RX_BUFS: u64 = 0x10000;
const TX_BUFS: u64 = 0x0200_0000;
const SLOT: u64 = 0x10100;
const MRG_BUF: u32 = 4096;

/// How the device is set up.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// `VIRTIO_NET_F_MRG_RXBUF`.
    pub mrg_rxbuf: bool,
    /// `VHOST_SET_FORK_FROM_OWNER` before `VHOST_SET_OWNER`, if any.
    pub fork_owner: Option<u8>,
}

impl Config {
    /// A device whose worker is made in the default mode (a vhost_task of the owner), with
    /// mergeable receive buffers or without.
    pub fn task(mrg_rxbuf: bool) -> Config {
        Config {
            mrg_rxbuf,
            fork_owner: None,
        }
    }
}

/// A vhost-net device owned by the calling process, with its rings in `mem`.
pub struct NetDev {
    /// The device, as rust-vmm's `vhost` crate drives it.
    pub net: Net<Arc<GuestMemoryMmap>>,
    /// Its guest memory: rings and buffers.
    pub mem: Arc<GuestMemoryMmap>,
    rings: [Vring; 2],
    kick: [EventFd; 2],
    call: [EventFd; 2],
    mrg: bool,
    /// Received frames not yet returned by `recv`: buffers of a mergeable frame in progress.
    partial: Vec<u8>,
    partial_left: u16,
}

fn err(e: impl std::fmt::Debug) -> io::Error {
    io::Error::other(format!("{e:?}"))
}

impl NetDev {
    /// Opens /dev/vhost-net and becomes its owner, without setting the rings up.
    pub fn open_owned(
        fork_owner: Option<u8>,
    ) -> io::Result<(Net<Arc<GuestMemoryMmap>>, Arc<GuestMemoryMmap>)> {
        let mem = Arc::new(
            GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), MEM_SIZE)]).map_err(err)?,
        );
        let net = Net::new(mem.clone()).map_err(err)?;
        if let Some(mode) = fork_owner {
            ioctls::set_fork_from_owner(&net, mode)?;
        }
        net.set_owner().map_err(|e| match e {
            vhost::Error::IoctlError(e) => e,
            e => err(e),
        })?;
        Ok((net, mem))
    }

    /// Sets up a device on `tap`: owner, features, memory, both rings, backend.
    pub fn new(tap: &Tap, cfg: Config) -> io::Result<NetDev> {
        let (net, mem) = Self::open_owned(cfg.fork_owner)?;
        let mut dev = NetDev::on(net, mem, cfg.mrg_rxbuf)?;
        dev.attach(tap)?;
        Ok(dev)
    }

    /// Sets up the rings of an owned device, without a backend.
    pub fn on(
        net: Net<Arc<GuestMemoryMmap>>,
        mem: Arc<GuestMemoryMmap>,
        mrg: bool,
    ) -> io::Result<NetDev> {
        let avail = net.get_features().map_err(err)?;
        let mut want = (1u64 << VIRTIO_F_VERSION_1) | (1u64 << VHOST_NET_F_VIRTIO_NET_HDR);
        if mrg {
            want |= 1u64 << VIRTIO_NET_F_MRG_RXBUF;
        }
        if avail & want != want {
            return Err(io::Error::other(format!(
                "vhost-net lacks features {:#x}",
                want & !avail
            )));
        }
        net.set_features(want).map_err(err)?;

        let region = mem.iter().next().unwrap();
        let host = mem.get_host_address(GuestAddress(0)).map_err(err)? as u64;
        net.set_mem_table(&[VhostUserMemoryRegionInfo {
            guest_phys_addr: 0,
            memory_size: region.len(),
            userspace_addr: host,
            mmap_offset: 0,
            mmap_handle: -1,
        }])
        .map_err(err)?;

        let rings = [RX, TX].map(|q| Vring::new(&mem, RING_AT[q], QUEUE_SIZE));
        let kick = [new_eventfd()?, new_eventfd()?];
        let call = [new_eventfd()?, new_eventfd()?];
        for q in [RX, TX] {
            crate::vring::configure(&net, q, &rings[q], &kick[q], &call[q])
                .map_err(io::Error::other)?;
        }
        let mut dev = NetDev {
            net,
            mem,
            rings,
            kick,
            call,
            mrg,
            partial: Vec::new(),
            partial_left: 0,
        };
        dev.fill_rx()?;
        Ok(dev)
    }

    /// Connects both rings to `tap`.
    pub fn attach(&mut self, tap: &Tap) -> io::Result<()> {
        for q in [RX, TX] {
            self.net.set_backend(q, Some(&tap.file)).map_err(err)?;
        }
        Ok(())
    }

    fn rx_buf_len(&self) -> u32 {
        if self.mrg {
            MRG_BUF
        } else {
            (HDR_LEN + MAX_FRAME) as u32
        }
    }

    fn rx_addr(id: u16) -> u64 {
        RX_BUFS + u64::from(id) * SLOT
    }

    fn tx_addr(id: u16) -> u64 {
        TX_BUFS + u64::from(id) * SLOT
    }

    /// Gives every free receive descriptor a buffer.
    fn fill_rx(&mut self) -> io::Result<()> {
        let len = self.rx_buf_len();
        let mut added = false;
        while let Some(ids) = self.rings[RX].alloc(1) {
            // Chains are single descriptors, each with the buffer of its id.
            let buf = Buf {
                addr: Self::rx_addr(ids[0]),
                len,
                write: true,
            };
            self.rings[RX].publish(&self.mem, &ids, &[buf]);
            added = true;
        }
        if added {
            self.kick(RX)?;
        }
        Ok(())
    }

    fn kick(&self, q: usize) -> io::Result<()> {
        self.kick[q].write(1)
    }

    /// Frees transmitted buffers; returns how many.
    pub fn reap_tx(&mut self) -> usize {
        let mut n = 0;
        while self.rings[TX].pop_used(&self.mem).is_some() {
            n += 1;
        }
        n
    }

    /// Queues `frame` for transmission and kicks; `false` if the ring is full.
    pub fn send(&mut self, frame: &[u8]) -> io::Result<bool> {
        self.reap_tx();
        let Some(ids) = self.rings[TX].alloc(1) else {
            return Ok(false);
        };
        let addr = Self::tx_addr(ids[0]);
        self.mem
            .write_slice(&[0u8; HDR_LEN], GuestAddress(addr))
            .map_err(err)?;
        self.mem
            .write_slice(frame, GuestAddress(addr + HDR_LEN as u64))
            .map_err(err)?;
        let buf = Buf {
            addr,
            len: (HDR_LEN + frame.len()) as u32,
            write: false,
        };
        self.rings[TX].publish(&self.mem, &ids, &[buf]);
        self.kick(TX)?;
        Ok(true)
    }

    /// Frames queued for transmission and not yet sent by the device.
    pub fn tx_in_flight(&self) -> usize {
        self.rings[TX].in_flight()
    }

    /// Takes the next received frame, if a whole one has arrived.
    pub fn recv(&mut self) -> io::Result<Option<Vec<u8>>> {
        loop {
            let Some((id, len)) = self.rings[RX].pop_used(&self.mem) else {
                return Ok(None);
            };
            let mut buf = vec![0u8; len as usize];
            self.mem
                .read_slice(&mut buf, GuestAddress(Self::rx_addr(id)))
                .map_err(err)?;
            let done = if !self.mrg {
                self.partial = buf[HDR_LEN.min(buf.len())..].to_vec();
                true
            } else if self.partial_left == 0 {
                // The first buffer: the header says how many buffers the frame takes.
                let nbufs = u16::from_le_bytes([buf[10], buf[11]]);
                if nbufs == 0 {
                    return Err(io::Error::other("mergeable frame with num_buffers 0"));
                }
                self.partial = buf[HDR_LEN..].to_vec();
                self.partial_left = nbufs - 1;
                self.partial_left == 0
            } else {
                self.partial.extend_from_slice(&buf);
                self.partial_left -= 1;
                self.partial_left == 0
            };
            self.fill_rx()?;
            if done {
                return Ok(Some(std::mem::take(&mut self.partial)));
            }
        }
    }

    /// Waits up to `timeout` for the device to signal a used buffer on queue `q`.
    pub fn wait_call(&self, q: usize, timeout: Duration) -> io::Result<()> {
        self.wait(&[q], timeout)
    }

    /// Waits for any signal from the device.
    pub fn wait_any(&self, timeout: Duration) -> io::Result<()> {
        self.wait(&[RX, TX], timeout)
    }

    /// Waits up to `timeout` for a signal on any of the queues `qs`, and consumes those that came.
    fn wait(&self, qs: &[usize], timeout: Duration) -> io::Result<()> {
        let fds: Vec<_> = qs.iter().map(|&q| sys::eventfd_fd(&self.call[q])).collect();
        for (&q, ready) in qs.iter().zip(sys::poll_in(&fds, timeout)?) {
            if ready {
                // The count only says that the device signalled; EAGAIN: someone read it first.
                let _ = self.call[q].read();
            }
        }
        Ok(())
    }
}

fn new_eventfd() -> io::Result<EventFd> {
    EventFd::new(libc::EFD_NONBLOCK)
}

/// The test frame number `seq` of total length `len`: broadcast, our EtherType, then the
/// number, the length and a pattern that depends on both.
pub fn frame(seq: u32, len: usize) -> Vec<u8> {
    let mut f = vec![0u8; len];
    f[..6].copy_from_slice(&[0xff; 6]);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x01]);
    f[12..14].copy_from_slice(&ETHERTYPE.to_be_bytes());
    f[14..18].copy_from_slice(&seq.to_be_bytes());
    f[18..22].copy_from_slice(&(len as u32).to_be_bytes());
    for (i, b) in f[22..].iter_mut().enumerate() {
        *b = (seq as usize).wrapping_mul(31).wrapping_add(i) as u8;
    }
    f
}

/// The sizes the traffic cycles through: minimum, around 1500, jumbo, and up to 64 KiB.
pub fn size_of_frame(seq: u32) -> usize {
    const SIZES: &[usize] = &[
        60, 64, 128, 333, 512, 1000, 1400, 1514, 2048, 4000, 4096, 8192, 9000, 16384, 32000, 32768,
        48000, 65535,
    ];
    SIZES[seq as usize % SIZES.len()]
}

/// Checks a received frame against the one numbered `want`.
pub fn check_frame(got: &[u8], want: u32) -> Result<(), String> {
    if got.len() < 22 {
        return Err(format!("frame {want}: runt of {} bytes", got.len()));
    }
    let seq = u32::from_be_bytes(got[14..18].try_into().unwrap());
    if seq != want {
        return Err(format!(
            "expected frame {want}, got frame {seq} (lost, duplicated or reordered)"
        ));
    }
    let expect = frame(want, size_of_frame(want));
    if got != expect.as_slice() {
        let at = got.iter().zip(&expect).position(|(a, b)| a != b);
        return Err(format!(
            "frame {want}: {} bytes, expected {}; first difference at {:?}",
            got.len(),
            expect.len(),
            at
        ));
    }
    Ok(())
}

/// Moves `n` frames: keeps up to `window` of them in flight with `send`, which sends frame
/// number `seq` and says whether it went (false: no room now, try later), and counts those that
/// `recv` says arrived (given the number of the next one it expects) until all `n` did, or fails
/// at `deadline`. `what` names the direction in messages. Returns the frames that arrived.
pub fn pump<S>(
    state: &mut S,
    (n, window): (u32, u32),
    deadline: Instant,
    what: &str,
    send: impl Fn(&mut S, u32) -> Result<bool, String>,
    recv: impl Fn(&mut S, u32) -> Result<u32, String>,
) -> Result<u32, String> {
    let (mut sent, mut got) = (0u32, 0u32);
    while got < n {
        if Instant::now() > deadline {
            return Err(format!("{what}: timed out after {got}/{n} frames"));
        }
        while sent < n && sent - got < window {
            if !send(state, sent).map_err(|e| format!("{what}: {e}"))? {
                break;
            }
            sent += 1;
        }
        got += recv(state, got).map_err(|e| format!("{what}: {e}"))?;
    }
    Ok(got)
}

/// Sends `n` frames from the device through the tap to `sock`, checking each as it arrives.
pub fn transmit(
    dev: &mut NetDev,
    sock: &PacketSocket,
    n: u32,
    deadline: Instant,
) -> Result<u32, String> {
    let buf = vec![0u8; MAX_FRAME + 64];
    // A window small enough that the packet socket is never overrun.
    pump(
        &mut (dev, buf),
        (n, 64),
        deadline,
        "tx",
        |(dev, _), seq| dev.send(&frame(seq, size_of_frame(seq))).ctx("send"),
        |(dev, buf), next| match sock.recv(buf, Duration::from_millis(200)).ctx("recv")? {
            Some(len) => check_frame(&buf[..len], next).map(|()| 1),
            None => {
                dev.reap_tx();
                Ok(0)
            }
        },
    )
}

/// The frames of the test EtherType that the device has received, whole: the host stack talks
/// on the tap too (IPv6 neighbour discovery).
pub fn received(dev: &mut NetDev) -> io::Result<Vec<Vec<u8>>> {
    let mut ours = Vec::new();
    while let Some(f) = dev.recv()? {
        if f.len() >= 14 && f[12..14] == ETHERTYPE.to_be_bytes() {
            ours.push(f);
        }
    }
    Ok(ours)
}

/// Sends `n` frames from `sock` through the tap into the device's receive ring, checking each.
pub fn receive(
    dev: &mut NetDev,
    sock: &PacketSocket,
    n: u32,
    deadline: Instant,
) -> Result<u32, String> {
    // Fewer in flight than the tap's queue holds, so that none is dropped.
    pump(
        dev,
        (n, 32),
        deadline,
        "rx",
        |_, seq| {
            sock.send(&frame(seq, size_of_frame(seq)))
                .ctx("send")
                .map(|()| true)
        },
        |dev, next| {
            let frames = received(dev).ctx("recv")?;
            for (i, f) in frames.iter().enumerate() {
                check_frame(f, next + i as u32)?;
            }
            if frames.is_empty() {
                dev.wait_call(RX, Duration::from_millis(100)).ctx("wait")?;
            }
            Ok(frames.len() as u32)
        },
    )
}
