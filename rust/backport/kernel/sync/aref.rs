// SPDX-License-Identifier: GPL-2.0

//! Reference-counted objects, at the path later kernels keep them.
//!
//! Backport for trees without this module (6.12): later kernels moved [`ARef`] and
//! [`AlwaysRefCounted`] from `kernel::types` to `kernel::sync::aref`. This re-exports them
//! there, so that code written against the newer path builds on the older tree too.

pub use crate::types::{ARef, AlwaysRefCounted};
