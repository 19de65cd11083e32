// SPDX-License-Identifier: GPL-2.0

//! Miscdevice support, with the API of later kernels' `kernel::miscdevice`.
//!
//! C header: [`include/linux/miscdevice.h`](srctree/include/linux/miscdevice.h)
//!
//! Backport for trees without it (6.12): registration, `open`, `release` and `ioctl`, which is
//! what the project's user-worker test module uses, so that its source builds here unchanged.
//! One difference: this tree's `#[vtable]` cannot name the implementing module, so an
//! implementation says whose it is with [`MiscDevice::OWNER`]; later kernels add it themselves.

use crate::{
    bindings, build_error,
    error::to_result,
    ffi::{c_int, c_long, c_uint, c_ulong},
    fs::File,
    prelude::*,
    types::{ForeignOwnable, Opaque},
    ThisModule,
};
use core::{ffi::CStr, marker::PhantomData};

/// Options for creating a misc device.
#[derive(Copy, Clone)]
pub struct MiscDeviceOptions {
    /// The name of the misc device.
    pub name: &'static CStr,
}

impl MiscDeviceOptions {
    /// Creates a raw `struct miscdevice` ready for registration.
    pub fn into_raw<T: MiscDevice>(self) -> bindings::miscdevice {
        // SAFETY: All zeroes is a valid `struct miscdevice`: null pointers and zero integers.
        let mut result: bindings::miscdevice = unsafe { core::mem::zeroed() };
        result.minor = bindings::MISC_DYNAMIC_MINOR as c_int;
        result.name = self.name.as_ptr().cast();
        result.fops = &MiscdeviceVTable::<T>::VTABLE;
        result
    }
}

/// A registration of a misc device.
///
/// # Invariants
///
/// `inner` is a `struct miscdevice` registered with `misc_register()`, deregistered exactly once,
/// when this is dropped.
#[repr(transparent)]
#[pin_data(PinnedDrop)]
pub struct MiscDeviceRegistration<T> {
    #[pin]
    inner: Opaque<bindings::miscdevice>,
    _t: PhantomData<T>,
}

// SAFETY: `misc_deregister()` may be called from another thread than `misc_register()`.
unsafe impl<T> Send for MiscDeviceRegistration<T> {}
// SAFETY: The `&self` methods may be called concurrently.
unsafe impl<T> Sync for MiscDeviceRegistration<T> {}

impl<T: MiscDevice> MiscDeviceRegistration<T> {
    /// Registers a misc device.
    pub fn register(opts: MiscDeviceOptions) -> impl PinInit<Self, Error> {
        let init = move |this: *mut Self| {
            // SAFETY: `this` is valid for writes, as `pin_init_from_closure()` promises.
            let slot = Opaque::raw_get(unsafe { core::ptr::addr_of!((*this).inner) });
            // SAFETY: The initialiser may write to `slot`.
            unsafe { slot.write(opts.into_raw::<T>()) };
            // SAFETY: `slot` holds the options just written; it is pinned, and dropping the
            // registration deregisters it before the memory goes.
            // INVARIANT: On success, `slot` is registered.
            to_result(unsafe { bindings::misc_register(slot) })
        };
        // SAFETY: On success `init` initialised every field (`_t` is a ZST), and on failure
        // nothing needs dropping: the device is not registered.
        unsafe { crate::init::pin_init_from_closure(init) }
    }

    /// Returns a raw pointer to the misc device.
    pub fn as_raw(&self) -> *mut bindings::miscdevice {
        self.inner.get()
    }
}

#[pinned_drop]
impl<T> PinnedDrop for MiscDeviceRegistration<T> {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: By the type invariant the device is registered.
        unsafe { bindings::misc_deregister(self.inner.get()) };
    }
}

/// The private data of an open misc device.
#[vtable]
pub trait MiscDevice: Sized {
    /// What kind of pointer `Self` is wrapped in.
    type Ptr: ForeignOwnable + Send + Sync;

    /// The module the device belongs to, which cannot be unloaded while the device is open.
    const OWNER: &'static ThisModule;

    /// Called when the misc device is opened; the pointer returned is the file's private data.
    fn open(_file: &File, _misc: &MiscDeviceRegistration<Self>) -> Result<Self::Ptr>;

    /// Called when the misc device is released.
    fn release(device: Self::Ptr, _file: &File) {
        drop(device);
    }

    /// Handles an ioctl.
    fn ioctl(
        _device: <Self::Ptr as ForeignOwnable>::Borrowed<'_>,
        _file: &File,
        _cmd: u32,
        _arg: usize,
    ) -> Result<isize> {
        build_error!(crate::error::VTABLE_DEFAULT_ERROR)
    }
}

/// The file operations of a Rust misc device.
struct MiscdeviceVTable<T: MiscDevice>(PhantomData<T>);

impl<T: MiscDevice> MiscdeviceVTable<T> {
    /// # Safety
    ///
    /// `inode` and `raw_file` must be those of a file of a `MiscDeviceRegistration<T>` being
    /// opened.
    unsafe extern "C" fn open(
        _inode: *mut bindings::inode,
        raw_file: *mut bindings::file,
    ) -> c_int {
        // SAFETY: `misc_open()` set the private data to the `struct miscdevice`, which it keeps
        // registered during this call, and `MiscDeviceRegistration<T>` is a transparent wrapper
        // of it.
        let misc = unsafe { &*(*raw_file).private_data.cast::<MiscDeviceRegistration<T>>() };
        // SAFETY: The file is valid for the duration of the call.
        let file = unsafe { File::from_raw_file(raw_file) };
        match T::open(file, misc) {
            Ok(ptr) => {
                // SAFETY: The open call owns the private data; the other operations below
                // read it back as `T::Ptr`.
                unsafe { (*raw_file).private_data = ptr.into_foreign().cast_mut() };
                0
            }
            Err(err) => err.to_errno(),
        }
    }

    /// # Safety
    ///
    /// `file` must be a file of a `MiscDeviceRegistration<T>` being released.
    unsafe extern "C" fn release(_inode: *mut bindings::inode, file: *mut bindings::file) -> c_int {
        // SAFETY: The release call owns the private data, which `open` set.
        let ptr = unsafe { <T::Ptr as ForeignOwnable>::from_foreign((*file).private_data) };
        // SAFETY: The file is valid for the duration of the call.
        T::release(ptr, unsafe { File::from_raw_file(file) });
        0
    }

    /// # Safety
    ///
    /// `file` must be an open file of a `MiscDeviceRegistration<T>`.
    unsafe extern "C" fn ioctl(file: *mut bindings::file, cmd: c_uint, arg: c_ulong) -> c_long {
        // SAFETY: An ioctl may borrow the private data, which `open` set and `release` takes.
        let device = unsafe { <T::Ptr as ForeignOwnable>::borrow((*file).private_data) };
        // SAFETY: The file is valid for the duration of the call.
        let file = unsafe { File::from_raw_file(file) };
        match T::ioctl(device, file, cmd, arg) {
            Ok(ret) => ret as c_long,
            Err(err) => err.to_errno() as c_long,
        }
    }

    const VTABLE: bindings::file_operations = bindings::file_operations {
        owner: T::OWNER.as_ptr(),
        open: Some(Self::open),
        release: Some(Self::release),
        unlocked_ioctl: if T::HAS_IOCTL {
            Some(Self::ioctl)
        } else {
            None
        },
        // With `CONFIG_COMPAT`, `compat_ptr_ioctl()` is a function that converts the 32-bit
        // argument and calls `unlocked_ioctl`; later kernels' `bindings` wrap it in an `Option`.
        #[cfg(CONFIG_COMPAT)]
        compat_ioctl: if T::HAS_IOCTL {
            Some(bindings::compat_ptr_ioctl)
        } else {
            None
        },
        // SAFETY: All zeroes is a valid `struct file_operations`: no operations.
        ..unsafe { core::mem::MaybeUninit::zeroed().assume_init() }
    };
}
