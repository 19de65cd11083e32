// SPDX-License-Identifier: GPL-2.0

//! What differs between the `kernel` crates of the trees this crate builds on, in one place.
//!
//! The rest of the crate and its tests are the same source on every tree. `src/Kbuild` probes
//! the tree for each difference and passes a `--cfg` for what the tree has:
//!
//! | cfg | the tree has | then | otherwise (6.12) |
//! |---|---|---|---|
//! | `vt_kernel_aref` | `rust/kernel/sync/aref.rs` | `kernel::sync::aref::ARef` | `kernel::types::ARef` |
//! | `vt_kernel_completion` | `rust/kernel/sync/completion.rs` | `kernel::sync::Completion` | `crate::completion` |
//! | `vt_task_as_ptr` | `Task::as_ptr()` | it | a cast of the reference |
//! | `vt_init_result` | `PinInit<T, E> for Result<T, E>` (`rust/pin-init`) | [`init_value`] returns `Ok(value)` | `value` (6.12: `PinInit<T, E> for T` with any `E`) |
//!
//! Where the tree provides something, it is used and our fallback is not even compiled.

#[cfg(vt_kernel_aref)]
pub use kernel::sync::aref::ARef;
#[cfg(not(vt_kernel_aref))]
pub use kernel::types::ARef;

#[cfg(not(vt_kernel_completion))]
pub use crate::completion::Completion;
#[cfg(vt_kernel_completion)]
pub use kernel::sync::Completion;

use kernel::{bindings, prelude::*, task::Task};

/// Returns an initialiser that moves `value` in and never fails, with the error type of the
/// fallible initialisers (`Error`), as [`crate::user_worker::NewUserWorker::new`] takes.
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

/// Returns the raw `task_struct` behind `task`.
#[inline]
pub fn task_as_raw(task: &Task) -> *mut bindings::task_struct {
    #[cfg(vt_task_as_ptr)]
    {
        task.as_ptr()
    }
    #[cfg(not(vt_task_as_ptr))]
    {
        // `Task` is a transparent wrapper of `Opaque<task_struct>`, itself transparent.
        core::ptr::from_ref(task).cast_mut().cast()
    }
}
