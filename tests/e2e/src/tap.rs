// SPDX-License-Identifier: GPL-2.0
//! A tap device as vhost-net's backend, and a packet socket on its other side.
//!
//! Frames the vhost-net "guest" transmits come out of the tap into the host stack, where the
//! packet socket receives them; frames the packet socket sends on the tap go into the tap's
//! queue, from which vhost-net fills the guest's receive ring.

use nix::errno::Errno;
use nix::net::if_::if_nametoindex;
use nix::sys::socket::{
    bind, recvfrom, send, setsockopt, socket, sockopt, AddressFamily, LinkAddr, MsgFlags, SockFlag,
    SockType, SockaddrLike,
};
use std::fs::File;
use std::io;
use std::mem;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::Duration;

/// The EtherType of the test frames: IEEE 802 local experimental, which the stack ignores.
pub const ETHERTYPE: u16 = 0x88b5;

/// The interface ioctls of this module, each of which takes a pointer to a `struct ifreq`.
#[derive(Clone, Copy, Debug)]
enum IfReqIoctl {
    /// `TUNSETIFF` on /dev/net/tun: reads the name and flags, writes the name.
    TunSetIff,
    /// `SIOCSIFMTU`: reads the name and the MTU.
    SetMtu,
    /// `SIOCGIFFLAGS`: reads the name, writes the flags.
    GetFlags,
    /// `SIOCSIFFLAGS`: reads the name and the flags.
    SetFlags,
}

impl IfReqIoctl {
    fn request(self) -> libc::Ioctl {
        match self {
            // The libc crate encodes it with the architecture's _IOW(), unlike a literal.
            IfReqIoctl::TunSetIff => libc::TUNSETIFF,
            IfReqIoctl::SetMtu => libc::SIOCSIFMTU as libc::Ioctl,
            IfReqIoctl::GetFlags => libc::SIOCGIFFLAGS as libc::Ioctl,
            IfReqIoctl::SetFlags => libc::SIOCSIFFLAGS as libc::Ioctl,
        }
    }
}

/// A `struct ifreq` naming interface `name`, with `ifru` as its argument. The name must leave
/// room for its NUL within `IFNAMSIZ` (16) bytes: at most 15 bytes, and no NUL of its own.
fn ifreq(name: &str, ifru: libc::__c_anonymous_ifr_ifru) -> io::Result<libc::ifreq> {
    let bytes = name.as_bytes();
    if bytes.len() >= libc::IFNAMSIZ || bytes.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "interface name {name:?}: at most {} bytes and no NUL",
                libc::IFNAMSIZ - 1
            ),
        ));
    }
    let mut ifr_name = [0 as libc::c_char; libc::IFNAMSIZ];
    for (d, s) in ifr_name.iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    Ok(libc::ifreq {
        ifr_name,
        ifr_ifru: ifru,
    })
}

/// Makes `op` on `fd` with `req`.
fn ifreq_ioctl(fd: &impl AsFd, op: IfReqIoctl, req: &mut libc::ifreq) -> io::Result<()> {
    // SAFETY: every request of `IfReqIoctl` reads, and some write, one `struct ifreq` at the
    // pointer, and `req` is one, valid for reads and writes for the duration of the call;
    // `fd` is an open descriptor for as long as the borrow.
    let r = unsafe {
        libc::ioctl(
            fd.as_fd().as_raw_fd(),
            op.request(),
            req as *mut libc::ifreq,
        )
    };
    Errno::result(r)
        .map(drop)
        .map_err(|e| io::Error::other(format!("{op:?} on {:?}: {e}", req_name(req))))
}

/// The name of a `struct ifreq`, for messages.
fn req_name(req: &libc::ifreq) -> String {
    req.ifr_name
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8 as char)
        .collect()
}

/// A tap device, up, with the largest MTU it allows.
pub struct Tap {
    /// The open /dev/net/tun, attached to the tap: closing it removes the tap.
    pub file: File,
    /// The interface index of the tap.
    pub ifindex: i32,
}

impl Tap {
    /// Creates tap `name` (no packet information, no vnet header: vhost-net provides it).
    pub fn new(name: &str) -> io::Result<Tap> {
        let file = File::options()
            .read(true)
            .write(true)
            .open("/dev/net/tun")?;
        let flags = (libc::IFF_TAP | libc::IFF_NO_PI) as libc::c_short;
        let mut req = ifreq(name, libc::__c_anonymous_ifr_ifru { ifru_flags: flags })?;
        ifreq_ioctl(&file, IfReqIoctl::TunSetIff, &mut req)?;
        let ifindex = if_index(name)?;
        // The largest a tap allows: 65535 bytes per frame with the Ethernet header.
        set_mtu(name, 65521)?;
        set_up(name)?;
        Ok(Tap { file, ifindex })
    }
}

/// A socket for interface ioctls.
fn ctl_socket() -> io::Result<OwnedFd> {
    Ok(socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?)
}

/// The interface index of `name`.
pub fn if_index(name: &str) -> io::Result<i32> {
    let i = if_nametoindex(name)?;
    i32::try_from(i).map_err(|_| io::Error::other(format!("{name}: ifindex {i}")))
}

/// Sets the MTU of interface `name`.
pub fn set_mtu(name: &str, mtu: i32) -> io::Result<()> {
    let s = ctl_socket()?;
    let mut req = ifreq(name, libc::__c_anonymous_ifr_ifru { ifru_mtu: mtu })?;
    ifreq_ioctl(&s, IfReqIoctl::SetMtu, &mut req)
}

/// Brings interface `name` up.
pub fn set_up(name: &str) -> io::Result<()> {
    let s = ctl_socket()?;
    let mut req = ifreq(name, libc::__c_anonymous_ifr_ifru { ifru_flags: 0 })?;
    ifreq_ioctl(&s, IfReqIoctl::GetFlags, &mut req)?;
    // SAFETY: SIOCGIFFLAGS wrote the flags, and any bits are a valid `c_short`.
    let flags = unsafe { req.ifr_ifru.ifru_flags };
    req.ifr_ifru.ifru_flags = flags | (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
    ifreq_ioctl(&s, IfReqIoctl::SetFlags, &mut req)
}

/// A packet socket bound to one interface and the test EtherType.
pub struct PacketSocket {
    fd: OwnedFd,
}

/// The address of a packet socket bound to interface `ifindex` and the test EtherType.
fn link_addr(ifindex: i32) -> LinkAddr {
    let sll = libc::sockaddr_ll {
        sll_family: libc::AF_PACKET as u16,
        sll_protocol: ETHERTYPE.to_be(),
        sll_ifindex: ifindex,
        sll_hatype: 0,
        sll_pkttype: 0,
        sll_halen: 0,
        sll_addr: [0; 8],
    };
    // SAFETY: `sll` is a whole `sockaddr_ll`, which lives across the call, and the length says
    // so; `from_raw` copies it.
    unsafe {
        LinkAddr::from_raw(
            (&sll as *const libc::sockaddr_ll).cast(),
            Some(mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t),
        )
    }
    .expect("a sockaddr_ll of family AF_PACKET is a LinkAddr")
}

impl PacketSocket {
    /// Opens it on interface `ifindex`, with large buffers so that bursts are not dropped.
    pub fn new(ifindex: i32) -> io::Result<PacketSocket> {
        // Protocol 0 receives nothing until the bind, which sets the protocol and interface.
        let fd = socket(
            AddressFamily::Packet,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            None,
        )?;
        bind(fd.as_raw_fd(), &link_addr(ifindex))?;
        let size = 32 << 20;
        setsockopt(&fd, sockopt::RcvBufForce, &size)?;
        setsockopt(&fd, sockopt::SndBufForce, &size)?;
        Ok(PacketSocket { fd })
    }

    /// Sends one frame out of the interface (into the tap's queue). A bound raw packet socket
    /// sends on its interface with its protocol; the frame carries its own header.
    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        let n = send(self.fd.as_raw_fd(), frame, MsgFlags::empty())?;
        if n != frame.len() {
            return Err(io::Error::other(format!("short send {n}/{}", frame.len())));
        }
        Ok(())
    }

    /// Receives one frame, waiting up to `timeout`; `None` on timeout. Frames the socket itself
    /// sent (outgoing) are skipped. A frame larger than `buf` is cut to its size.
    pub fn recv(&self, buf: &mut [u8], timeout: Duration) -> io::Result<Option<usize>> {
        loop {
            if !crate::sys::readable(&self.fd, timeout)? {
                return Ok(None);
            }
            let (n, from) = recvfrom::<LinkAddr>(self.fd.as_raw_fd(), buf)?;
            if from.is_some_and(|a| a.pkttype() == libc::PACKET_OUTGOING) {
                continue;
            }
            return Ok(Some(n));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name_of(name: &str) -> io::Result<Vec<u8>> {
        let r = ifreq(name, libc::__c_anonymous_ifr_ifru { ifru_flags: 0 })?;
        Ok(r.ifr_name.iter().map(|&c| c as u8).collect())
    }

    #[test]
    fn ifreq_names_end_with_a_nul_within_16_bytes() {
        let n = name_of("vt-traf0").unwrap();
        assert_eq!(&n[..9], b"vt-traf0\0");
        let longest = "a".repeat(15);
        let n = name_of(&longest).unwrap();
        assert_eq!(&n[..15], longest.as_bytes());
        assert_eq!(n[15], 0);
    }

    #[test]
    fn ifreq_refuses_names_without_room_for_the_nul() {
        for name in ["a".repeat(16), "b".repeat(40), "nul\0inside".to_string()] {
            let e = name_of(&name).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{name:?}");
        }
    }
}
