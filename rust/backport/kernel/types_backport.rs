// SPDX-License-Identifier: GPL-2.0

//! `types::NotThreadSafe` of later kernels, for trees without it (6.12); `types.rs` re-exports it.

use core::marker::PhantomData;

/// A field of this type makes the type that holds it neither [`Send`] nor [`Sync`], at no size.
pub type NotThreadSafe = PhantomData<*mut ()>;

/// The only value of [`NotThreadSafe`](type@NotThreadSafe).
#[allow(non_upper_case_globals)]
pub const NotThreadSafe: NotThreadSafe = PhantomData;
