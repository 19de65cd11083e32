// SPDX-License-Identifier: GPL-2.0
//! Putting the test process where a case needs it: a cgroup, namespaces, limits.

use std::fs;
use std::io;

/// Where cgroup v2 is mounted in the guest.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The cgroup `name` under the root, created unless it exists (an earlier case in this boot
/// may have left it); returns its path.
pub fn cgroup(name: &str) -> io::Result<String> {
    let path = format!("{CGROUP_ROOT}/{name}");
    match fs::create_dir(&path) {
        Ok(()) => Ok(path),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(path),
        Err(e) => Err(e),
    }
}

/// Creates the cgroup `name` under the root (if needed) and moves the calling process into it.
pub fn enter_new_cgroup(name: &str) -> io::Result<String> {
    let path = cgroup(name)?;
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
