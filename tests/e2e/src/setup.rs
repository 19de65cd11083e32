// SPDX-License-Identifier: GPL-2.0
//! Putting the test process where a case needs it: a cgroup, namespaces, limits.

use std::fs;
use std::io;

/// Where cgroup v2 is mounted in the guest.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// Creates the cgroup `name` under the root (if needed) and moves the calling process into it.
pub fn enter_new_cgroup(name: &str) -> io::Result<String> {
    let path = format!("{CGROUP_ROOT}/{name}");
    match fs::create_dir(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    fs::write(
        format!("{path}/cgroup.procs"),
        std::process::id().to_string(),
    )?;
    Ok(path)
}

/// Enables a controller (such as "pids") for the children of the root cgroup.
pub fn enable_controller(name: &str) -> io::Result<()> {
    fs::write(
        format!("{CGROUP_ROOT}/cgroup.subtree_control"),
        format!("+{name}"),
    )
}

/// `unshare(2)`.
pub fn unshare(flags: libc::c_int) -> io::Result<()> {
    // SAFETY: unshare takes flags only.
    if unsafe { libc::unshare(flags) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
