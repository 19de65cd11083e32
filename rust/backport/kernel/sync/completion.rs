// SPDX-License-Identifier: GPL-2.0

//! Completions: one-shot "this has happened" events.
//!
//! C header: [`include/linux/completion.h`](srctree/include/linux/completion.h)
//!
//! Backport for trees without this module (6.12): the part of the `kernel::sync::Completion`
//! of later kernels that the user-worker abstraction (a worker's exit) and its test module use,
//! with the same API.

use crate::{bindings, prelude::*, types::Opaque};

/// A `struct completion`: threads wait until it is completed.
///
/// # Invariants
///
/// `inner` was initialised with `init_completion()`.
///
/// # Examples
///
/// ```ignore
/// let done = Arc::pin_init(Completion::new(), GFP_KERNEL)?;
/// // Another thread: done.complete_all();
/// done.wait_for_completion();
/// ```
#[pin_data]
pub struct Completion {
    #[pin]
    inner: Opaque<bindings::completion>,
}

// SAFETY: `struct completion` may be completed and waited on from any thread; it has no thread
// affinity.
unsafe impl Send for Completion {}

// SAFETY: Every operation on a `struct completion` takes its internal lock, so shared references
// may be used from several threads at once.
unsafe impl Sync for Completion {}

impl Completion {
    /// Returns an initialiser of a completion that is not completed yet.
    pub fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            // INVARIANT: `init_completion()` initialises the slot.
            inner <- Opaque::ffi_init(|slot: *mut bindings::completion| {
                // SAFETY: `slot` is valid for writes and pinned, as `ffi_init` promises.
                unsafe { bindings::init_completion(slot) }
            }),
        })
    }

    /// Completes it for good: every current and future waiter proceeds.
    pub fn complete_all(&self) {
        // SAFETY: `self.inner` is an initialised completion, by the type invariant.
        unsafe { bindings::complete_all(self.inner.get()) };
    }

    /// Waits, uninterruptibly and without a timeout, until it is completed.
    pub fn wait_for_completion(&self) {
        // SAFETY: `self.inner` is an initialised completion, by the type invariant.
        unsafe { bindings::wait_for_completion(self.inner.get()) };
    }
}
