// SPDX-License-Identifier: GPL-2.0

//! Kernel file systems: the file type that later kernels' `kernel::fs` has.
//!
//! Backport for trees without `kernel::fs` (6.12): the part of [`File`] that
//! [`kernel::miscdevice`](crate::miscdevice) hands to its callbacks, so that code written
//! against the newer API builds here. C header: [`include/linux/fs.h`](srctree/include/linux/fs.h)

use crate::{bindings, types::Opaque};

/// An open file, borrowed for the duration of a file operation.
///
/// # Invariants
///
/// Instances are valid `struct file`s, for at least as long as the reference to them.
#[repr(transparent)]
pub struct File(Opaque<bindings::file>);

// SAFETY: A `struct file` may be used from any thread; this type only reads it.
unsafe impl Sync for File {}

impl File {
    /// Borrows the file at `ptr`.
    ///
    /// # Safety
    ///
    /// `ptr` must point to a valid file for the lifetime `'a`.
    #[inline]
    pub unsafe fn from_raw_file<'a>(ptr: *const bindings::file) -> &'a File {
        // SAFETY: `File` is a transparent wrapper of the file, which is valid for `'a`, as the
        // caller promises.
        unsafe { &*ptr.cast() }
    }

    /// Returns a raw pointer to the file.
    #[inline]
    pub fn as_ptr(&self) -> *mut bindings::file {
        self.0.get()
    }

    /// Returns the file's flags (`O_*`).
    #[inline]
    pub fn flags(&self) -> u32 {
        // SAFETY: By the type invariant the file is valid; `f_flags` is a plain integer read
        // once, as C's `READ_ONCE()` would.
        unsafe { core::ptr::addr_of!((*self.as_ptr()).f_flags).read_volatile() }
    }
}
