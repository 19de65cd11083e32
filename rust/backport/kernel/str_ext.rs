// SPDX-License-Identifier: GPL-2.0

//! What later kernels' `kernel::str::CStrExt` has and this tree lacks: `from_char_ptr()` and
//! `as_char_ptr()` on [`core::ffi::CStr`], the type of C-string literals.
//!
//! Backport for trees whose `kernel::str::CStr` is the kernel's own type (6.12). Later kernels
//! make `kernel::str::CStr` the core type, and their clippy configuration disallows
//! `CStr::from_ptr()` and `CStr::as_ptr()`, which take and return the core `c_char` rather than
//! the kernel's; this trait, which the prelude brings into scope, lets the same source build
//! here.

use crate::ffi::c_char;

/// Extensions to [`core::ffi::CStr`].
pub trait CStrExt {
    /// Wraps a raw C string pointer.
    ///
    /// # Safety
    ///
    /// `ptr` must be a valid pointer to a `NUL`-terminated C string that lasts at least `'a`
    /// and is not mutated while the returned reference is alive.
    unsafe fn from_char_ptr<'a>(ptr: *const c_char) -> &'a Self;

    /// Returns a C pointer to the string.
    fn as_char_ptr(&self) -> *const c_char;
}

impl CStrExt for core::ffi::CStr {
    #[inline]
    unsafe fn from_char_ptr<'a>(ptr: *const c_char) -> &'a Self {
        // SAFETY: The caller guarantees what `CStr::from_ptr()` requires.
        unsafe { Self::from_ptr(ptr.cast()) }
    }

    #[inline]
    fn as_char_ptr(&self) -> *const c_char {
        self.as_ptr().cast()
    }
}
