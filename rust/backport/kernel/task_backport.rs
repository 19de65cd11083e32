// SPDX-License-Identifier: GPL-2.0

//! `Task::as_ptr()` and `Task::current_raw()` of later kernels, for trees without them (6.12).

use crate::{bindings, task::Task};

impl Task {
    /// Returns the `struct task_struct` that this is.
    #[inline]
    pub fn as_ptr(&self) -> *mut bindings::task_struct {
        // CAST: `Task` is a `repr(transparent)` wrapper of `struct task_struct`.
        core::ptr::from_ref(self).cast_mut().cast()
    }

    /// Returns the current task's `struct task_struct`: what is done with it is the caller's
    /// business.
    #[inline]
    pub fn current_raw() -> *mut bindings::task_struct {
        // SAFETY: `get_current()` only reads the current CPU's `current`, in any context.
        unsafe { bindings::get_current() }
    }
}
