// SPDX-License-Identifier: GPL-2.0

//! Atomic primitives, with the API of later kernels' `kernel::sync::atomic`.
//!
//! Backport for trees without that module (6.12): the subset that the user-worker abstraction
//! and the vhost task use, [`Atomic<T>`] of `i8`, `i32`, `bool` and `*mut T` with `load`,
//! `store`, `xchg`, `cmpxchg` (and `fetch_add` of `i32`) and the orderings [`Relaxed`],
//! [`Acquire`], [`Release`] and [`Full`],
//! implemented on `core::sync::atomic`, which compiles to the same instructions on x86-64.
//! Code written against the newer module builds unchanged here.

use core::sync::atomic::{AtomicBool, AtomicI32, AtomicI8, AtomicPtr, Ordering as CoreOrdering};

/// The orderings of atomic operations.
pub mod ordering {
    /// No ordering: only atomicity.
    pub struct Relaxed;
    /// Acquire: later accesses are not reordered before this load.
    pub struct Acquire;
    /// Release: earlier accesses are not reordered after this store.
    pub struct Release;
    /// Fully ordered, like the kernel's value-returning atomic operations.
    pub struct Full;

    mod internal {
        pub trait Sealed {}
        impl Sealed for super::Relaxed {}
        impl Sealed for super::Acquire {}
        impl Sealed for super::Release {}
        impl Sealed for super::Full {}
    }

    /// An ordering of a read-modify-write operation.
    pub trait Ordering: internal::Sealed {
        /// The `core` ordering of a read-modify-write operation with it.
        #[doc(hidden)]
        const RMW: core::sync::atomic::Ordering;
    }
    /// An ordering of a load: [`Acquire`] or [`Relaxed`].
    pub trait AcquireOrRelaxed: Ordering {}
    /// An ordering of a store: [`Release`] or [`Relaxed`].
    pub trait ReleaseOrRelaxed: Ordering {}

    impl Ordering for Relaxed {
        const RMW: core::sync::atomic::Ordering = core::sync::atomic::Ordering::Relaxed;
    }
    impl Ordering for Acquire {
        const RMW: core::sync::atomic::Ordering = core::sync::atomic::Ordering::Acquire;
    }
    impl Ordering for Release {
        const RMW: core::sync::atomic::Ordering = core::sync::atomic::Ordering::Release;
    }
    impl Ordering for Full {
        const RMW: core::sync::atomic::Ordering = core::sync::atomic::Ordering::SeqCst;
    }
    impl AcquireOrRelaxed for Acquire {}
    impl AcquireOrRelaxed for Relaxed {}
    impl ReleaseOrRelaxed for Release {}
    impl ReleaseOrRelaxed for Relaxed {}
}

pub use ordering::{Acquire, Full, Relaxed, Release};

/// A type that [`Atomic`] can hold, with its `core` atomic.
pub trait AtomicType: Copy {
    /// The `core` atomic of the type.
    #[doc(hidden)]
    type Core: Send + Sync;
    #[doc(hidden)]
    fn new(v: Self) -> Self::Core;
    #[doc(hidden)]
    fn load(a: &Self::Core, o: CoreOrdering) -> Self;
    #[doc(hidden)]
    fn store(a: &Self::Core, v: Self, o: CoreOrdering);
    #[doc(hidden)]
    fn swap(a: &Self::Core, v: Self, o: CoreOrdering) -> Self;
    #[doc(hidden)]
    fn compare_exchange(
        a: &Self::Core,
        old: Self,
        new: Self,
        o: CoreOrdering,
    ) -> Result<Self, Self>;
}

macro_rules! atomic_type {
    ($($t:ty => $core:ty,)*) => {$(atomic_type!(@impl [] $t => $core);)*};
    (@impl [$($g:tt)*] $t:ty => $core:ty) => {
        impl<$($g)*> AtomicType for $t {
            type Core = $core;
            #[inline(always)]
            fn new(v: Self) -> Self::Core {
                <$core>::new(v)
            }
            #[inline(always)]
            fn load(a: &Self::Core, o: CoreOrdering) -> Self {
                a.load(o)
            }
            #[inline(always)]
            fn store(a: &Self::Core, v: Self, o: CoreOrdering) {
                a.store(v, o)
            }
            #[inline(always)]
            fn swap(a: &Self::Core, v: Self, o: CoreOrdering) -> Self {
                a.swap(v, o)
            }
            #[inline(always)]
            fn compare_exchange(
                a: &Self::Core,
                old: Self,
                new: Self,
                o: CoreOrdering,
            ) -> Result<Self, Self> {
                // A failed exchange only loads, which may not be ordered as a release.
                let fail = match o {
                    CoreOrdering::Release | CoreOrdering::Relaxed => CoreOrdering::Relaxed,
                    CoreOrdering::AcqRel | CoreOrdering::Acquire => CoreOrdering::Acquire,
                    _ => CoreOrdering::SeqCst,
                };
                a.compare_exchange(old, new, o, fail)
            }
        }
    };
}

atomic_type! {
    i8 => AtomicI8,
    i32 => AtomicI32,
    bool => AtomicBool,
}
atomic_type!(@impl [T] *mut T => AtomicPtr<T>);

/// A memory location that can be read and modified atomically from several threads.
#[repr(transparent)]
pub struct Atomic<T: AtomicType>(T::Core);

impl<T: AtomicType> Atomic<T> {
    /// Creates an atomic holding `v`.
    #[inline(always)]
    pub fn new(v: T) -> Self {
        Self(T::new(v))
    }

    /// Loads the value.
    #[inline(always)]
    pub fn load<O: ordering::AcquireOrRelaxed>(&self, _: O) -> T {
        T::load(&self.0, O::RMW)
    }

    /// Stores `v`.
    #[inline(always)]
    pub fn store<O: ordering::ReleaseOrRelaxed>(&self, v: T, _: O) {
        T::store(&self.0, v, O::RMW)
    }

    /// Stores `v` and returns the old value.
    #[inline(always)]
    pub fn xchg<O: ordering::Ordering>(&self, v: T, _: O) -> T {
        T::swap(&self.0, v, O::RMW)
    }

    /// Stores `new` if the value is `old`: returns `Ok(old)` if it did, `Err(current)` if not.
    #[inline(always)]
    pub fn cmpxchg<O: ordering::Ordering>(&self, old: T, new: T, _: O) -> Result<T, T> {
        T::compare_exchange(&self.0, old, new, O::RMW)
    }
}

impl Atomic<i32> {
    /// Adds `v` (wrapping) and returns the old value.
    #[inline(always)]
    pub fn fetch_add<O: ordering::Ordering>(&self, v: i32, _: O) -> i32 {
        self.0.fetch_add(v, O::RMW)
    }
}
