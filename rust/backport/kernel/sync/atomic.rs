// SPDX-License-Identifier: GPL-2.0

//! Atomic primitives, with the API of later kernels' `kernel::sync::atomic`.
//!
//! Backport for trees without that module (6.12), written for this project: [`Atomic<T>`] for
//! every `T` that says, with [`AtomicType`], which integer (or pointer) it is stored as, with
//! `load`, `store`, `xchg`, `cmpxchg` and `fetch_add`, and the orderings [`Relaxed`],
//! [`Acquire`], [`Release`] and [`Full`]. The traits have the shape of the later module's, so that
//! a type such as a `#[repr(i32)]` enum is made atomic the same way on every tree. The operations
//! are those of `core::sync::atomic`, which compile to the same instructions on x86-64 as the
//! kernel's own.

use crate::ffi::c_void;
use core::marker::PhantomData;
use core::sync::atomic::{AtomicI32, AtomicI64, AtomicI8, AtomicPtr, Ordering as CoreOrdering};

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

    mod sealed {
        pub trait Sealed {}
        impl Sealed for super::Relaxed {}
        impl Sealed for super::Acquire {}
        impl Sealed for super::Release {}
        impl Sealed for super::Full {}
    }

    /// Any ordering, as a read-modify-write operation takes it.
    pub trait Ordering: sealed::Sealed {
        /// What it is for `core::sync::atomic`.
        #[doc(hidden)]
        const CORE: core::sync::atomic::Ordering;
    }
    /// An ordering a load may have: [`Acquire`] or [`Relaxed`].
    pub trait AcquireOrRelaxed: Ordering {}
    /// An ordering a store may have: [`Release`] or [`Relaxed`].
    pub trait ReleaseOrRelaxed: Ordering {}

    impl Ordering for Relaxed {
        const CORE: core::sync::atomic::Ordering = core::sync::atomic::Ordering::Relaxed;
    }
    impl Ordering for Acquire {
        const CORE: core::sync::atomic::Ordering = core::sync::atomic::Ordering::Acquire;
    }
    impl Ordering for Release {
        const CORE: core::sync::atomic::Ordering = core::sync::atomic::Ordering::Release;
    }
    impl Ordering for Full {
        const CORE: core::sync::atomic::Ordering = core::sync::atomic::Ordering::SeqCst;
    }
    impl AcquireOrRelaxed for Acquire {}
    impl AcquireOrRelaxed for Relaxed {}
    impl ReleaseOrRelaxed for Release {}
    impl ReleaseOrRelaxed for Relaxed {}
}

pub use ordering::{Acquire, Full, Relaxed, Release};

mod sealed {
    pub trait Sealed {}
}

/// The types that atomics are stored as: `i8`, `i32`, `i64` and `*const c_void`.
pub trait AtomicImpl: Sized + Copy + sealed::Sealed {
    /// The type of what [`Atomic::fetch_add`] adds.
    type Delta;
    /// The `core` atomic of the type.
    #[doc(hidden)]
    type Core: Send + Sync;
    #[doc(hidden)]
    fn core_new(v: Self) -> Self::Core;
    #[doc(hidden)]
    fn core_load(a: &Self::Core, o: CoreOrdering) -> Self;
    #[doc(hidden)]
    fn core_store(a: &Self::Core, v: Self, o: CoreOrdering);
    #[doc(hidden)]
    fn core_swap(a: &Self::Core, v: Self, o: CoreOrdering) -> Self;
    #[doc(hidden)]
    fn core_cmpxchg(a: &Self::Core, old: Self, new: Self, o: CoreOrdering) -> Result<Self, Self>;
}

/// The representations that [`Atomic::fetch_add`] adds to: the integers.
#[doc(hidden)]
pub trait AtomicArith: AtomicImpl {
    #[doc(hidden)]
    fn core_fetch_add(a: &Self::Core, d: Self::Delta, o: CoreOrdering) -> Self;
}

/// The ordering of the load of a failed compare-exchange: never a release.
fn failure(o: CoreOrdering) -> CoreOrdering {
    match o {
        CoreOrdering::Release | CoreOrdering::Relaxed => CoreOrdering::Relaxed,
        CoreOrdering::AcqRel | CoreOrdering::Acquire => CoreOrdering::Acquire,
        _ => CoreOrdering::SeqCst,
    }
}

/// `AtomicImpl` of a representation `$t`, which its `core` atomic `$core` holds converted.
macro_rules! atomic_impl {
    ($t:ty, $core:ty, $delta:ty, |$v:ident| $to_held:expr, |$h:ident| $from_held:expr) => {
        impl sealed::Sealed for $t {}
        impl AtomicImpl for $t {
            type Delta = $delta;
            type Core = $core;
            #[inline(always)]
            fn core_new($v: Self) -> $core {
                <$core>::new($to_held)
            }
            #[inline(always)]
            fn core_load(a: &$core, o: CoreOrdering) -> Self {
                let $h = a.load(o);
                $from_held
            }
            #[inline(always)]
            fn core_store(a: &$core, $v: Self, o: CoreOrdering) {
                a.store($to_held, o)
            }
            #[inline(always)]
            fn core_swap(a: &$core, $v: Self, o: CoreOrdering) -> Self {
                let $h = a.swap($to_held, o);
                $from_held
            }
            #[inline(always)]
            fn core_cmpxchg(
                a: &$core,
                old: Self,
                new: Self,
                o: CoreOrdering,
            ) -> Result<Self, Self> {
                let held = |$v: Self| $to_held;
                match a.compare_exchange(held(old), held(new), o, failure(o)) {
                    Ok($h) => Ok($from_held),
                    Err($h) => Err($from_held),
                }
            }
        }
    };
}

/// `AtomicImpl` and `AtomicArith` of an integer, which its `core` atomic holds as it is.
macro_rules! atomic_int {
    ($($t:ty: $core:ty;)*) => {$(
        atomic_impl!($t, $core, $t, |v| v, |h| h);
        impl AtomicArith for $t {
            #[inline(always)]
            fn core_fetch_add(a: &$core, d: $t, o: CoreOrdering) -> Self {
                a.fetch_add(d, o)
            }
        }
    )*};
}

atomic_int! {
    i8: AtomicI8;
    i32: AtomicI32;
    i64: AtomicI64;
}
// `AtomicPtr` holds a `*mut`; the representation of pointers is `*const`, as in later kernels.
atomic_impl!(
    *const c_void,
    AtomicPtr<c_void>,
    isize,
    |v| v.cast_mut(),
    |h| h.cast_const()
);

/// A type that [`Atomic`] can hold, stored as its [`Repr`](Self::Repr).
///
/// # Safety
///
/// - `Self` has the size and alignment of `Self::Repr`.
/// - Every `Self` transmuted to `Self::Repr` and back is the same `Self` again.
/// - A `Self` may be used in another thread than the one that made it (raw pointers may: what
///   they point to is used through `unsafe` code, which answers for it).
pub unsafe trait AtomicType: Sized + Copy {
    /// The type it is stored as.
    type Repr: AtomicImpl;
}

/// An [`AtomicType`] to which [`Atomic::fetch_add`] adds an `Rhs`.
///
/// # Safety
///
/// Adding [`rhs_into_delta`](Self::rhs_into_delta) of any `Rhs` to the representation of a
/// `Self` gives the representation of a `Self`.
pub unsafe trait AtomicAdd<Rhs = Self>: AtomicType {
    /// Converts `rhs` into what is added to the representation.
    fn rhs_into_delta(rhs: Rhs) -> <Self::Repr as AtomicImpl>::Delta;
}

// SAFETY: Every integer is stored as itself.
unsafe impl AtomicType for i8 {
    type Repr = i8;
}
// SAFETY: As above.
unsafe impl AtomicType for i32 {
    type Repr = i32;
}
// SAFETY: As above.
unsafe impl AtomicType for i64 {
    type Repr = i64;
}
// SAFETY: `bool` has the size and alignment of `i8`, and is 0 or 1 as one.
unsafe impl AtomicType for bool {
    type Repr = i8;
}
// SAFETY: Every pointer to a sized type has the size and alignment of `*const c_void`, and
// converts to it and back unchanged.
unsafe impl<T: Sized> AtomicType for *mut T {
    type Repr = *const c_void;
}
// SAFETY: Wrapping addition of integers gives integers.
unsafe impl AtomicAdd for i32 {
    fn rhs_into_delta(rhs: i32) -> i32 {
        rhs
    }
}
// SAFETY: As above.
unsafe impl AtomicAdd for i64 {
    fn rhs_into_delta(rhs: i64) -> i64 {
        rhs
    }
}

/// A memory location that can be read and modified atomically from several threads.
#[repr(transparent)]
pub struct Atomic<T: AtomicType>(<T::Repr as AtomicImpl>::Core, PhantomData<T>);

// SAFETY: The value is only reached through atomic operations, and `AtomicType` promises that a
// `T` may be used in another thread.
unsafe impl<T: AtomicType> Send for Atomic<T> {}
// SAFETY: As above.
unsafe impl<T: AtomicType> Sync for Atomic<T> {}

/// `v` as it is stored.
#[inline(always)]
fn into_repr<T: AtomicType>(v: T) -> T::Repr {
    // SAFETY: `AtomicType` promises that `T` and its representation have the same size.
    unsafe { core::mem::transmute_copy(&v) }
}

/// The `T` that `r`, the representation of a `T`, stands for.
#[inline(always)]
fn from_repr<T: AtomicType>(r: T::Repr) -> T {
    // SAFETY: `r` was made from a `T` (by `into_repr`, or by an addition that `AtomicAdd`
    // promises keeps it one), which `AtomicType` promises transmutes back to that `T`.
    unsafe { core::mem::transmute_copy(&r) }
}

impl<T: AtomicType> Atomic<T> {
    /// Creates an atomic holding `v`.
    #[inline(always)]
    pub fn new(v: T) -> Self {
        Self(T::Repr::core_new(into_repr(v)), PhantomData)
    }

    /// Loads the value.
    #[inline(always)]
    pub fn load<O: ordering::AcquireOrRelaxed>(&self, _: O) -> T {
        from_repr(T::Repr::core_load(&self.0, O::CORE))
    }

    /// Stores `v`.
    #[inline(always)]
    pub fn store<O: ordering::ReleaseOrRelaxed>(&self, v: T, _: O) {
        T::Repr::core_store(&self.0, into_repr(v), O::CORE)
    }

    /// Stores `v`, and returns the value it replaced.
    #[inline(always)]
    pub fn xchg<O: ordering::Ordering>(&self, v: T, _: O) -> T {
        from_repr(T::Repr::core_swap(&self.0, into_repr(v), O::CORE))
    }

    /// Stores `new` if the value is `old`: returns `Ok(old)` if it did, else `Err` of the value.
    #[inline(always)]
    pub fn cmpxchg<O: ordering::Ordering>(&self, old: T, new: T, _: O) -> Result<T, T> {
        T::Repr::core_cmpxchg(&self.0, into_repr(old), into_repr(new), O::CORE)
            .map(from_repr)
            .map_err(from_repr)
    }

    /// Adds `v` (wrapping), and returns the value before.
    #[inline(always)]
    pub fn fetch_add<Rhs, O: ordering::Ordering>(&self, v: Rhs, _: O) -> T
    where
        T: AtomicAdd<Rhs>,
        T::Repr: AtomicArith,
    {
        from_repr(T::Repr::core_fetch_add(
            &self.0,
            T::rhs_into_delta(v),
            O::CORE,
        ))
    }
}
