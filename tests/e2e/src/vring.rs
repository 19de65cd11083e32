// SPDX-License-Identifier: GPL-2.0
//! The driver side of a split virtqueue in guest memory: what a guest's virtio driver does,
//! played by the test process for the vhost device it owns.

use std::sync::atomic::Ordering;
use vhost::{VhostBackend, VringConfigData};
use virtio_bindings::virtio_ring::{VRING_DESC_F_NEXT, VRING_DESC_F_WRITE};
use virtio_queue::desc::split::Descriptor;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};
use vmm_sys_util::eventfd::EventFd;

/// One buffer of a descriptor chain: guest address, length, device-writable.
#[derive(Clone, Copy, Debug)]
pub struct Buf {
    /// Its guest address.
    pub addr: u64,
    /// Its length in bytes.
    pub len: u32,
    /// Whether the device writes it (else it reads it).
    pub write: bool,
}

/// A split virtqueue of `size` entries laid out at `base`: descriptors, then the available
/// ring at +4 KiB per 256 entries, then the used ring.
pub struct Vring {
    /// Its number of entries.
    pub size: u16,
    /// The guest address of its descriptor table.
    pub desc: GuestAddress,
    /// The guest address of its available ring.
    pub avail: GuestAddress,
    /// The guest address of its used ring.
    pub used: GuestAddress,
    next_avail: u16,
    last_used: u16,
    free: Vec<u16>,
    in_flight: usize,
}

impl Vring {
    /// The ring's footprint in guest memory.
    pub fn footprint(size: u16) -> u64 {
        let s = u64::from(size);
        let desc = 16 * s;
        let avail = (6 + 2 * s).next_multiple_of(4096);
        desc.next_multiple_of(4096) + avail + (6 + 8 * s).next_multiple_of(4096)
    }

    /// An empty ring at `base`, with its memory zeroed.
    pub fn new(mem: &GuestMemoryMmap, base: u64, size: u16) -> Vring {
        let s = u64::from(size);
        let desc = GuestAddress(base);
        let avail = GuestAddress(base + (16 * s).next_multiple_of(4096));
        let used = GuestAddress(avail.0 + (6 + 2 * s).next_multiple_of(4096));
        let zero = vec![0u8; Self::footprint(size) as usize];
        mem.write_slice(&zero, desc).expect("ring memory");
        Vring {
            size,
            desc,
            avail,
            used,
            next_avail: 0,
            last_used: 0,
            free: (0..size).rev().collect(),
            in_flight: 0,
        }
    }

    /// Chains made available and not used yet.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Takes `n` free descriptors for a chain, or `None` if there are not enough.
    pub fn alloc(&mut self, n: usize) -> Option<Vec<u16>> {
        if n == 0 || n > self.free.len() {
            return None;
        }
        Some((0..n).map(|_| self.free.pop().unwrap()).collect())
    }

    /// Makes the chain of descriptors `ids` (from [`alloc`](Self::alloc)), describing `bufs`,
    /// available to the device.
    pub fn publish(&mut self, mem: &GuestMemoryMmap, ids: &[u16], bufs: &[Buf]) {
        assert_eq!(ids.len(), bufs.len());
        for (i, b) in bufs.iter().enumerate() {
            let mut flags = 0u16;
            if b.write {
                flags |= VRING_DESC_F_WRITE as u16;
            }
            let next = if i + 1 < bufs.len() {
                flags |= VRING_DESC_F_NEXT as u16;
                ids[i + 1]
            } else {
                0
            };
            let d = Descriptor::new(b.addr, b.len, flags, next);
            mem.write_obj(d, self.desc_addr(ids[i]))
                .expect("descriptor");
        }
        let slot = self.avail.0 + 4 + 2 * u64::from(self.next_avail % self.size);
        mem.write_obj(ids[0], GuestAddress(slot))
            .expect("avail ring");
        self.next_avail = self.next_avail.wrapping_add(1);
        // The descriptors and the entry must be visible before the index that publishes them.
        mem.store(
            self.next_avail,
            GuestAddress(self.avail.0 + 2),
            Ordering::Release,
        )
        .expect("avail idx");
        self.in_flight += 1;
    }

    fn desc_addr(&self, id: u16) -> GuestAddress {
        GuestAddress(self.desc.0 + 16 * u64::from(id))
    }

    /// Takes the next used chain: its head and the length the device wrote. The chain's
    /// descriptors are free again.
    pub fn pop_used(&mut self, mem: &GuestMemoryMmap) -> Option<(u16, u32)> {
        let idx: u16 = mem
            .load(GuestAddress(self.used.0 + 2), Ordering::Acquire)
            .expect("used idx");
        if idx == self.last_used {
            return None;
        }
        let elem = self.used.0 + 4 + 8 * u64::from(self.last_used % self.size);
        let id: u32 = mem.read_obj(GuestAddress(elem)).expect("used elem");
        let len: u32 = mem.read_obj(GuestAddress(elem + 4)).expect("used elem");
        self.last_used = self.last_used.wrapping_add(1);
        // Give the chain's descriptors back.
        let mut d = id as u16;
        loop {
            let desc: Descriptor = mem.read_obj(self.desc_addr(d)).expect("descriptor");
            self.free.push(d);
            if desc.flags() & VRING_DESC_F_NEXT as u16 == 0 {
                break;
            }
            d = desc.next();
        }
        self.in_flight -= 1;
        Some((id as u16, len))
    }
}

/// Gives ring `q` of a vhost device its size, addresses, start index and eventfds.
pub fn configure(
    dev: &impl VhostBackend,
    q: usize,
    ring: &Vring,
    kick: &EventFd,
    call: &EventFd,
) -> Result<(), String> {
    let vh = |r: vhost::Result<()>, what: &str| r.map_err(|e| format!("{what} {q}: {e:?}"));
    vh(dev.set_vring_num(q, ring.size), "VHOST_SET_VRING_NUM")?;
    vh(
        dev.set_vring_addr(
            q,
            &VringConfigData {
                queue_max_size: ring.size,
                queue_size: ring.size,
                flags: 0,
                desc_table_addr: ring.desc.0,
                used_ring_addr: ring.used.0,
                avail_ring_addr: ring.avail.0,
                log_addr: None,
            },
        ),
        "VHOST_SET_VRING_ADDR",
    )?;
    vh(dev.set_vring_base(q, 0), "VHOST_SET_VRING_BASE")?;
    vh(dev.set_vring_call(q, call), "VHOST_SET_VRING_CALL")?;
    vh(dev.set_vring_kick(q, kick), "VHOST_SET_VRING_KICK")
}
