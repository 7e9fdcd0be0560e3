// SPDX-License-Identifier: GPL-2.0

//! Copying the extensible uAPI structs in and out of user memory.
//!
//! [`read`] applies the calling convention of `include/uapi/linux/liveupdate.h`
//! (decided by the pure `luo_uapi` module): it reads `size`, refuses a too
//! small or too large one, copies what both sides know and checks that any
//! bytes only the caller knows are zero. [`write`] copies a struct back, for
//! at most the caller's `size` bytes. The structs come from the uAPI header
//! through bindgen (`kernel::uapi`).

use crate::luo_uapi::{self, SizeError};
use kernel::{
    prelude::*,
    transmute::{AsBytes, FromBytes},
    uaccess::{UserPtr, UserSlice},
    uapi,
};

/// A uAPI struct that starts with `__u32 size`.
///
/// # Safety
///
/// The implementer must be a `#[repr(C)]` struct generated from the uAPI
/// header whose first field is the `__u32 size`, with no padding, so that
/// every byte pattern is valid and every byte is initialised.
pub(crate) unsafe trait UserStruct: FromBytes + AsBytes + Default {
    /// Size of the first published version of the struct.
    const MIN_SIZE: usize;
}

/// Declares a transparent wrapper of a uAPI struct that can be copied from
/// and to user memory (the orphan rule forbids implementing the kernel's
/// byte traits on `kernel::uapi` types directly).
macro_rules! user_struct {
    ($(#[$doc:meta])* $name:ident = $uapi:ident) => {
        $(#[$doc])*
        #[repr(transparent)]
        #[derive(Default)]
        pub(crate) struct $name(pub(crate) uapi::$uapi);

        // SAFETY: the uAPI struct is made of fixed-size integers laid out
        // without padding (the header uses explicit sizes and
        // `__aligned_u64`), so every byte pattern is valid.
        unsafe impl FromBytes for $name {}
        // SAFETY: as above, every byte is initialised.
        unsafe impl AsBytes for $name {}
        // SAFETY: as above; every luo-rs uAPI struct starts with `__u32 size`.
        unsafe impl UserStruct for $name {
            const MIN_SIZE: usize = core::mem::size_of::<uapi::$uapi>();
        }
    };
}

user_struct!(
    /// `struct liveupdate_ioctl_get_state`.
    GetState = liveupdate_ioctl_get_state
);

user_struct!(
    /// `struct liveupdate_ioctl_set_event`.
    SetEvent = liveupdate_ioctl_set_event
);

user_struct!(
    /// `struct liveupdate_ioctl_create_session`.
    CreateSession = liveupdate_ioctl_create_session
);

user_struct!(
    /// `struct liveupdate_ioctl_retrieve_session`.
    RetrieveSession = liveupdate_ioctl_retrieve_session
);

user_struct!(
    /// `struct liveupdate_session_finish`.
    SessionFinish = liveupdate_session_finish
);

user_struct!(
    /// `struct liveupdate_session_preserve_fd`.
    PreserveFd = liveupdate_session_preserve_fd
);

user_struct!(
    /// `struct liveupdate_session_unpreserve_fd`.
    UnpreserveFd = liveupdate_session_unpreserve_fd
);

user_struct!(
    /// `struct liveupdate_session_retrieve_fd`.
    RetrieveFd = liveupdate_session_retrieve_fd
);

/// A request whose answer is a new file descriptor.
pub(crate) trait FdAnswer: Sized {
    /// The request with its `fd` field set.
    fn with_fd(&self, fd: i32) -> Self;
}

impl FdAnswer for CreateSession {
    fn with_fd(&self, fd: i32) -> Self {
        CreateSession(uapi::liveupdate_ioctl_create_session { fd, ..self.0 })
    }
}

impl FdAnswer for RetrieveFd {
    fn with_fd(&self, fd: i32) -> Self {
        RetrieveFd(uapi::liveupdate_session_retrieve_fd { fd, ..self.0 })
    }
}

impl FdAnswer for RetrieveSession {
    fn with_fd(&self, fd: i32) -> Self {
        RetrieveSession(uapi::liveupdate_ioctl_retrieve_session { fd, ..self.0 })
    }
}

user_struct!(
    /// `struct liveupdate_session_get_name`.
    GetName = liveupdate_session_get_name
);

user_struct!(
    /// `struct liveupdate_session_get_state`.
    SessionGetState = liveupdate_session_get_state
);

user_struct!(
    /// `struct liveupdate_session_set_name`.
    SetName = liveupdate_session_set_name
);

impl From<SizeError> for Error {
    fn from(e: SizeError) -> Error {
        match e {
            SizeError::TooSmall => EINVAL,
            SizeError::TooBig => E2BIG,
        }
    }
}

/// A struct read from user memory and the size the caller declared.
pub(crate) struct Incoming<T> {
    pub(crate) value: T,
    user_size: u32,
}

/// Reads the struct at user address `arg`.
pub(crate) fn read<T: UserStruct>(arg: usize) -> Result<Incoming<T>> {
    let ptr = UserPtr::from_addr(arg);
    let user_size: u32 = UserSlice::new(ptr, core::mem::size_of::<u32>())
        .reader()
        .read()?;
    let extent = luo_uapi::extent(user_size, T::MIN_SIZE, core::mem::size_of::<T>())?;
    let mut reader = UserSlice::new(ptr, user_size as usize).reader();
    let mut value = T::default();
    reader.read_slice(&mut value.as_bytes_mut()[..extent.copy])?;
    let mut chunk = [0u8; 64];
    let mut left = extent.trailing;
    while left > 0 {
        let n = left.min(chunk.len());
        reader.read_slice(&mut chunk[..n])?;
        if !luo_uapi::all_zero(&chunk[..n]) {
            return Err(E2BIG);
        }
        left -= n;
    }
    Ok(Incoming { value, user_size })
}

/// Writes `value` back to user address `arg`, for at most the size the
/// caller declared in the struct it sent.
pub(crate) fn write<T: UserStruct>(arg: usize, incoming: &Incoming<T>, value: &T) -> Result {
    let len = (incoming.user_size as usize).min(core::mem::size_of::<T>());
    UserSlice::new(UserPtr::from_addr(arg), len)
        .writer()
        .write_slice(&value.as_bytes()[..len])
}
