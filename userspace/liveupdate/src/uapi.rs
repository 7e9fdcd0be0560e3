// SPDX-License-Identifier: GPL-2.0

//! The uAPI of `include/uapi/linux/liveupdate.h`, as bindgen made it at
//! build time (see `build.rs`), and the ioctl command numbers the header
//! defines with `_IO()`, which bindgen cannot evaluate: direction none,
//! size 0, type [`LIVEUPDATE_IOCTL_TYPE`], number the header's `CMD_`
//! value, as in `asm-generic/ioctl.h`.

#![allow(non_camel_case_types, non_upper_case_globals, dead_code, clippy::all)]

include!(concat!(env!("OUT_DIR"), "/uapi.rs"));

/// `_IO(LIVEUPDATE_IOCTL_TYPE, nr)`.
const fn io(nr: u32) -> u64 {
    ((LIVEUPDATE_IOCTL_TYPE as u64) << 8) | nr as u64
}

pub(crate) const IOCTL_CREATE_SESSION: u64 = io(LIVEUPDATE_CMD_CREATE_SESSION);
pub(crate) const IOCTL_RETRIEVE_SESSION: u64 = io(LIVEUPDATE_CMD_RETRIEVE_SESSION);
pub(crate) const IOCTL_GET_STATE: u64 = io(LIVEUPDATE_CMD_GET_STATE);
pub(crate) const IOCTL_SET_EVENT: u64 = io(LIVEUPDATE_CMD_SET_EVENT);
pub(crate) const SESSION_PRESERVE_FD: u64 = io(LIVEUPDATE_CMD_SESSION_PRESERVE_FD);
pub(crate) const SESSION_RETRIEVE_FD: u64 = io(LIVEUPDATE_CMD_SESSION_RETRIEVE_FD);
pub(crate) const SESSION_FINISH: u64 = io(LIVEUPDATE_CMD_SESSION_FINISH);
pub(crate) const SESSION_GET_NAME: u64 = io(LIVEUPDATE_CMD_SESSION_GET_NAME);
pub(crate) const SESSION_UNPRESERVE_FD: u64 = io(LIVEUPDATE_CMD_SESSION_UNPRESERVE_FD);
pub(crate) const SESSION_GET_STATE: u64 = io(LIVEUPDATE_CMD_SESSION_GET_STATE);
pub(crate) const SESSION_SET_NAME: u64 = io(LIVEUPDATE_CMD_SESSION_SET_NAME);

#[cfg(test)]
mod tests {
    use super::*;

    /// The numbers Linux 7.3's own header gives its commands (upstream
    /// clients use them): the header promises to keep them.
    #[test]
    fn upstream_command_numbers() {
        assert_eq!(IOCTL_CREATE_SESSION, 0xba00);
        assert_eq!(IOCTL_RETRIEVE_SESSION, 0xba01);
        assert_eq!(SESSION_PRESERVE_FD, 0xba40);
        assert_eq!(SESSION_RETRIEVE_FD, 0xba41);
        assert_eq!(SESSION_FINISH, 0xba42);
        assert_eq!(SESSION_GET_NAME, 0xba43);
    }

    #[test]
    fn every_struct_starts_with_its_size() {
        assert_eq!(core::mem::offset_of!(liveupdate_ioctl_get_state, size), 0);
        assert_eq!(
            core::mem::offset_of!(liveupdate_session_preserve_fd, size),
            0
        );
        assert_eq!(core::mem::offset_of!(liveupdate_session_get_state, size), 0);
    }
}
