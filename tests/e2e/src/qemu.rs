// SPDX-License-Identifier: GPL-2.0
//! QEMU as the vhost-net client: Debian's qemu-system-x86_64, run in the guest under TCG with
//! `-netdev tap,vhost=on,vhostforce=on`, boots the kernel under test once more (nested), and
//! the nested guest sends frames through its virtio-net device, that is through QEMU's vhost
//! worker, to the tap where this process counts them.

use crate::harness::{ensure, CaseResult, Context};
use crate::netdev;
use crate::procfs;
use crate::tap::{self, PacketSocket};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Frames the nested guest sends.
pub const FRAMES: u32 = 300;
const TAP: &str = "vt-qemu";

/// The sizes of the nested guest's frames: 60 to 1514 bytes, within virtio-net's MTU.
pub fn nested_size(seq: u32) -> usize {
    60 + (seq as usize * 97) % 1455
}

/// `vhost-e2e send-frames N`, in the nested guest: sends N frames out of its first Ethernet
/// interface.
pub fn send_frames(n: u32) -> i32 {
    let r = (|| -> Result<(), String> {
        let ifname = std::fs::read_dir("/sys/class/net")
            .ctx("/sys/class/net")?
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            // The virtio-net device: Ethernet (type 1) and backed by a device, unlike lo or sit0.
            .find(|n| {
                let t = std::fs::read_to_string(format!("/sys/class/net/{n}/type"));
                t.is_ok_and(|t| t.trim() == "1")
                    && std::path::Path::new(&format!("/sys/class/net/{n}/device")).exists()
            })
            .ok_or("no virtio-net interface")?;
        tap::set_up(&ifname).ctx("up")?;
        let sock = PacketSocket::new(tap::if_index(&ifname).ctx("ifindex")?).ctx("socket")?;
        std::thread::sleep(Duration::from_millis(200));
        for seq in 0..n {
            sock.send(&netdev::frame(seq, nested_size(seq)))
                .ctx("send")?;
            // Paced, so that the device's queue never overflows.
            std::thread::sleep(Duration::from_millis(2));
        }
        println!("nested guest: sent {n} frames on {ifname}");
        Ok(())
    })();
    match r {
        Ok(()) => 0,
        Err(e) => {
            println!("nested guest: {e}");
            1
        }
    }
}

pub fn run() -> CaseResult {
    let kernel = std::env::var("VT_KERNEL").map_err(|_| "VT_KERNEL is not set".to_string())?;
    let initrd = std::env::var("VT_INITRD").map_err(|_| "VT_INITRD is not set".to_string())?;
    let log = "/tmp/vt-qemu.log";
    let mut qemu = Command::new("qemu-system-x86_64")
        .args([
            "-nodefaults",
            "-nographic",
            "-no-reboot",
            "-m",
            "256M",
            "-smp",
            "1",
            "-bios",
            "qboot.rom",
            "-accel",
            "tcg",
            "-serial",
            &format!("file:{log}"),
            "-kernel",
            &kernel,
            "-initrd",
            &initrd,
            "-append",
            &format!("console=ttyS0 panic=-1 quiet rdinit=/init vt.cmd=send-frames,{FRAMES}"),
            "-netdev",
            &format!("tap,id=n0,ifname={TAP},script=no,downscript=no,vhost=on,vhostforce=on"),
            "-device",
            "virtio-net-pci,netdev=n0,romfile=",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .ctx("start qemu-system-x86_64")?;
    let qpid = qemu.id() as i32;
    let result = (|| -> CaseResult {
        ensure(
            procfs::wait_for(Duration::from_secs(60), || tap::if_index(TAP).is_ok()),
            || "QEMU did not create its tap".into(),
        )?;
        // QEMU calls VHOST_SET_OWNER from one of its threads: the worker is named after it.
        let mut worker = None;
        procfs::wait_for(Duration::from_secs(60), || {
            worker = procfs::threads(qpid)
                .unwrap_or_default()
                .into_iter()
                .find(|t| t.comm.starts_with("vhost-"));
            worker.is_some()
        });
        let w = worker.ok_or("no vhost- thread in QEMU")?;
        let tgid = procfs::status_num(w.tid, "Tgid").ctx("status")?;
        ensure(tgid == qpid as i64, || {
            format!("worker Tgid {tgid}, QEMU {qpid}")
        })?;
        ensure(!procfs::is_kthread(w.tid).ctx("status")?, || {
            "QEMU's worker is a kthread".into()
        })?;
        let diff = procfs::ns_differences(w.tid, qpid).ctx("ns")?;
        ensure(diff.is_empty(), || format!("namespaces differ: {diff:?}"))?;
        ensure(
            procfs::cgroup(w.tid).ctx("cg")? == procfs::cgroup(qpid).ctx("cg")?,
            || "cgroup differs".into(),
        )?;

        tap::set_up(TAP).ctx("tap up")?;
        let sock = PacketSocket::new(tap::if_index(TAP).ctx("ifindex")?).ctx("socket")?;
        let mut buf = vec![0u8; 65600];
        let mut next = 0u32;
        let deadline = Instant::now() + Duration::from_secs(480);
        while next < FRAMES && Instant::now() < deadline {
            let got = match sock.recv(&mut buf, Duration::from_millis(500)) {
                Ok(got) => got,
                // The tap goes down when QEMU exits: see why below.
                Err(e) if e.raw_os_error() == Some(libc::ENETDOWN) => {
                    std::thread::sleep(Duration::from_millis(200));
                    None
                }
                Err(e) => return Err(format!("recv: {e}")),
            };
            if let Some(len) = got {
                let got = &buf[..len];
                let want = netdev::frame(next, nested_size(next));
                ensure(got == want.as_slice(), || {
                    format!("frame {next} from the nested guest differs (len {len})")
                })?;
                next += 1;
            } else if let Ok(Some(_)) = qemu.try_wait() {
                break;
            }
        }
        ensure(next == FRAMES, || {
            let tail = std::fs::read_to_string(log).unwrap_or_default();
            let tail: Vec<&str> = tail.lines().rev().take(8).collect();
            format!("{next}/{FRAMES} frames from the nested guest; its console ends: {tail:?}")
        })?;
        Ok(format!(
            "QEMU {qpid}'s worker {} {} is its thread; nested guest sent {FRAMES} frames through it, all received in order",
            w.tid, w.comm
        ))
    })();
    let _ = qemu.kill();
    let _ = qemu.wait();
    result
}
