// SPDX-License-Identifier: GPL-2.0

//! `vhost_task` in Rust: a drop-in for `kernel/vhost_task.c`.
//!
//! vhost-net, vhost-scsi, vhost-vsock and KVM's NX huge page recovery run their work on a
//! thread made by `vhost_task_create()`: a `PF_USER_WORKER` thread of the process that owns the
//! device, so that it shares that process's address space, cgroups, namespaces and credentials
//! and counts against its limits. It is built in layers:
//!
//! 1. `kernel::task::user_worker`, in the `kernel` crate: a safe abstraction over
//!    `copy_process()` for user workers, reusable by other Rust code;
//! 2. [`vhost_task`]: the vhost worker loop and its stop/kill protocol, in safe Rust over it;
//! 3. [`c_abi`]: `vhost_task_create/start/stop/wake` with the exact C ABI of
//!    `<linux/sched/vhost_task.h>`, exported by `vhost_task_exports.c`.
//!
//! [`compat`] is the one place that knows how the trees' `kernel` crates differ (6.12, 7.3).

// The `pr_*!` macros need a prefix; there is no `module!` to make one in built-in code.
const __LOG_PREFIX: &[u8] = b"vhost_task\0";

pub mod c_abi;
pub mod compat;
pub mod vhost_task;

#[cfg(CONFIG_VHOST_TASK_KUNIT_TEST)]
#[path = "../tests/kunit/rust_cases.rs"]
mod kunit_cases;
