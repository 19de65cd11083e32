// SPDX-License-Identifier: GPL-2.0

//! What differs between the `kernel` crates of the trees this crate builds on, in one place.
//!
//! The rest of the crate and its tests are the same source on every tree. `src/Kbuild` probes
//! the tree for each difference and passes a `--cfg` for what the tree has:
//!
//! - `vt_init_result`: the tree has `PinInit<T, E> for Result<T, E>` (`rust/pin-init`), and
//!   [`init_value`] returns `Ok(value)`; otherwise (6.12, where `PinInit<T, E> for T` holds for
//!   any `E`) it returns `value`.
//! - `vt_kunit_tests`: the tree has `#[kunit_tests]` (`rust/macros/kunit.rs`), and the Rust
//!   KUnit cases register their own suite; otherwise (6.12) `vhost_task_kunit.c` registers
//!   them.
//! - `vt_export`: the tree has `#[export]` (`rust/macros/export.rs`), which checks the C ABI's
//!   signatures against the header's; otherwise (6.12) `c_abi` uses `#[no_mangle]`, and the
//!   check is the one below.
//!
//! What the newer `kernel` crate has and 6.12's lacks (`kernel::sync::aref`,
//! `kernel::sync::atomic`, `kernel::sync::Completion`, `kernel::miscdevice`, `kernel::fs::File`,
//! `pin_init::zeroed()`, `NotThreadSafe`, `Task::as_ptr()`, `Task::current_raw()`) is not here:
//! each is a file under `rust/backport/`, which `scripts/link-tree.sh` links into a 6.12 tree, so
//! that this crate and the user-worker abstraction use the newer API on every tree.

use kernel::prelude::*;

/// Returns an initialiser that moves `value` in and never fails, with the error type of the
/// fallible initialisers (`Error`).
#[inline]
pub fn init_value<T>(value: T) -> impl PinInit<T, Error> {
    #[cfg(vt_init_result)]
    {
        Ok::<T, Error>(value)
    }
    #[cfg(not(vt_init_result))]
    {
        value
    }
}

/// The exact types of the header's declarations, where `#[export]` does not check them: a
/// mismatch fails the build.
#[cfg(not(vt_export))]
const _: () = {
    use crate::c_abi;
    use core::ffi::c_void;
    use kernel::{bindings, ffi::c_char};
    type Create = unsafe extern "C" fn(
        Option<unsafe extern "C" fn(*mut c_void) -> bool>,
        Option<unsafe extern "C" fn(*mut c_void)>,
        *mut c_void,
        *const c_char,
    ) -> *mut bindings::vhost_task;
    type Op = unsafe extern "C" fn(*mut bindings::vhost_task);
    let _: [Create; 2] = [bindings::vhost_task_create, c_abi::vhost_task_create];
    let _: [Op; 6] = [
        bindings::vhost_task_start,
        c_abi::vhost_task_start,
        bindings::vhost_task_stop,
        c_abi::vhost_task_stop,
        bindings::vhost_task_wake,
        c_abi::vhost_task_wake,
    ];
};
