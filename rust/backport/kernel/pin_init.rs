// SPDX-License-Identifier: GPL-2.0

//! What later kernels' `pin_init` crate has and this tree lacks: [`zeroed()`] as a value.
//!
//! Backport for trees without the `pin_init` crate (6.12), where `kernel::init::zeroed()` returns
//! an initialiser. Later kernels call `pin_init::zeroed()` for a zeroed C struct; this module,
//! re-exported through the prelude as `pin_init`, lets the same source build here. Only the
//! bindings types that the code written against the newer API zeroes are marked [`Zeroable`].

use crate::{bindings, init::Zeroable};

/// Returns a value of `T` with all bytes zero.
#[inline]
pub fn zeroed<T: Zeroable>() -> T {
    // SAFETY: `T: Zeroable` means that all zeroes is a valid value of `T`.
    unsafe { core::mem::zeroed() }
}

// SAFETY: `struct kernel_clone_args` is a plain C struct of integers, bit fields, pointers and
// optional function pointers, for all of which zero is a valid value (0, null, `None`).
unsafe impl Zeroable for bindings::kernel_clone_args {}
