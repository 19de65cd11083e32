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
//!
//! What the newer `kernel` crate has and 6.12's lacks (`kernel::sync::aref`,
//! `kernel::sync::Completion`, `Task::as_ptr()`) is not here: `scripts/link-tree.sh` backports
//! it into a 6.12 tree from `rust/backport/`, so that this crate and the user-worker abstraction
//! use the newer API on every tree.

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
