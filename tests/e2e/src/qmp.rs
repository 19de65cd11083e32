// SPDX-License-Identifier: GPL-2.0
//! A minimal QMP client: enough to ask a QEMU under test how its virtqueues look.
//!
//! QEMU's `x-query-virtio-queue-element` reads the split ring's `avail` and `used` headers
//! from guest memory, so for a device whose rings vhost runs it tells what the guest has
//! published (`avail.idx`) and what vhost has consumed (`used.idx`, and in `used.flags`
//! whether vhost asked not to be kicked, as it does while it is busy on the ring).

use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

/// A QMP connection in command mode.
pub struct Qmp {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Qmp {
    /// Connects to QEMU's `-qmp unix:<path>,server=on,wait=off` socket.
    pub fn connect(path: &str) -> io::Result<Qmp> {
        let s = UnixStream::connect(path)?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut q = Qmp {
            reader: BufReader::new(s.try_clone()?),
            writer: s,
        };
        // The greeting, then the capabilities negotiation.
        q.line()?;
        q.execute("qmp_capabilities", "")?;
        Ok(q)
    }

    fn line(&mut self) -> io::Result<String> {
        let mut l = String::new();
        if self.reader.read_line(&mut l)? == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "QMP closed"));
        }
        Ok(l.trim_end().to_string())
    }

    /// Runs `command` with `arguments` (a JSON object's members, or nothing) and returns the
    /// raw JSON of its answer, `{"return": ...}` or `{"error": ...}`; events are skipped.
    pub fn execute(&mut self, command: &str, arguments: &str) -> io::Result<String> {
        let msg = if arguments.is_empty() {
            format!("{{\"execute\": \"{command}\"}}\n")
        } else {
            format!("{{\"execute\": \"{command}\", \"arguments\": {{{arguments}}}}}\n")
        };
        self.writer.write_all(msg.as_bytes())?;
        // Events ({"timestamp": ..., "event": ...}) may come first.
        loop {
            let l = self.line()?;
            if l.starts_with("{\"return\"") || l.starts_with("{\"error\"") {
                return Ok(l);
            }
        }
    }
}

/// The number after `"key": ` in `json`, searching from the first occurrence of `within`.
pub fn number_in(json: &str, within: &str, key: &str) -> Option<u64> {
    let from = json.find(within)?;
    let rest = &json[from..];
    let at = rest.find(&format!("\"{key}\": "))? + key.len() + 4;
    let digits: String = rest[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// A split virtqueue's indices as the guest's memory holds them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingState {
    /// `avail.idx`: the buffers the driver (the guest) has made available.
    pub avail: u64,
    /// `used.idx`: the buffers the device (vhost) has consumed.
    pub used: u64,
    /// `used.flags`: 1 (`VRING_USED_F_NO_NOTIFY`) while vhost does not want kicks.
    pub used_flags: u64,
}

/// Reads `queue` of the virtio device at QOM path `path`, or why it could not.
pub fn ring_state(q: &mut Qmp, path: &str, queue: u32) -> Result<RingState, String> {
    let r = q
        .execute(
            "x-query-virtio-queue-element",
            &format!("\"path\": \"{path}\", \"queue\": {queue}"),
        )
        .map_err(|e| format!("QMP: {e}"))?;
    let get = |within, key| number_in(&r, within, key).ok_or_else(|| format!("QMP answered {r}"));
    Ok(RingState {
        avail: get("\"avail\"", "idx")?,
        used: get("\"used\"", "idx")?,
        used_flags: get("\"used\"", "flags")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_in_finds_the_key_after_its_section() {
        let j = r#"{"return": {"index": 3, "avail": {"flags": 0, "idx": 17, "ring": 5}, "used": {"flags": 1, "idx": 12}}}"#;
        assert_eq!(number_in(j, "\"avail\"", "idx"), Some(17));
        assert_eq!(number_in(j, "\"used\"", "idx"), Some(12));
        assert_eq!(number_in(j, "\"used\"", "flags"), Some(1));
        assert_eq!(number_in(j, "\"nothing\"", "idx"), None);
    }
}
