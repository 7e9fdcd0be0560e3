// SPDX-License-Identifier: GPL-2.0

//! Checks of the extensible ioctl structs, shared by every luo-rs ioctl.
//!
//! Each struct starts with `__u32 size`, the size the caller built it with.
//! [`extent`] decides, from that size alone, how many bytes to copy in and
//! how many trailing bytes must be zero; [`all_zero`] checks those bytes.
//! The rules are those of `include/uapi/linux/liveupdate.h`:
//!
//! - a size below the struct's first published size is `EINVAL`;
//! - a size above what the kernel knows is allowed when the extra bytes are
//!   zero (`E2BIG` otherwise), up to [`MAX_STRUCT_SIZE`] (`E2BIG` beyond).
//!
//! This module uses only `core`: the kernel and the host tests compile the
//! very same file.

/// The largest `size` accepted: one page, far above any luo-rs struct.
pub(crate) const MAX_STRUCT_SIZE: usize = 4096;

/// Why a `size` field was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SizeError {
    /// Smaller than the struct's first published version: `EINVAL`.
    TooSmall,
    /// Larger than [`MAX_STRUCT_SIZE`], or non-zero unknown bytes: `E2BIG`.
    TooBig,
}

/// How to move a struct of the caller's `size` to and from the kernel's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Extent {
    /// Bytes to copy in (and at most to copy back out).
    pub(crate) copy: usize,
    /// Bytes after `copy` that the caller sent and that must all be zero.
    pub(crate) trailing: usize,
}

/// Decides how to read a struct the caller says is `user_size` bytes long,
/// where the kernel knows `known` bytes and the first published version of
/// the struct had `min` bytes.
pub(crate) const fn extent(user_size: u32, min: usize, known: usize) -> Result<Extent, SizeError> {
    let user = user_size as usize;
    if user < min {
        return Err(SizeError::TooSmall);
    }
    if user > MAX_STRUCT_SIZE {
        return Err(SizeError::TooBig);
    }
    if user <= known {
        Ok(Extent {
            copy: user,
            trailing: 0,
        })
    } else {
        Ok(Extent {
            copy: known,
            trailing: user - known,
        })
    }
}

/// Size of a session name field, including its NUL (the uAPI's
/// `LIVEUPDATE_SESSION_NAME_LENGTH`).
pub(crate) const NAME_LEN: usize = 64;

/// Why a session name was refused (`EINVAL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NameError {
    /// No NUL within the field: longer than `NAME_LEN - 1` bytes.
    Unterminated,
    /// The empty string, where a name is required.
    Empty,
}

/// A session name: up to `NAME_LEN - 1` bytes, no NUL; empty means the
/// session has no name (yet). Ordered by its bytes (zero after `len`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Name {
    bytes: [u8; NAME_LEN],
    len: usize,
}

impl Name {
    /// The empty name of an unnamed session.
    pub(crate) const NONE: Name = Name {
        bytes: [0; NAME_LEN],
        len: 0,
    };

    /// Reads a name field from userspace: everything up to the first NUL,
    /// which must be inside the field; bytes after it are ignored. An
    /// empty name is refused.
    pub(crate) fn parse(raw: &[u8; NAME_LEN]) -> Result<Name, NameError> {
        let len = raw
            .iter()
            .position(|&b| b == 0)
            .ok_or(NameError::Unterminated)?;
        if len == 0 {
            return Err(NameError::Empty);
        }
        let mut bytes = [0; NAME_LEN];
        bytes[..len].copy_from_slice(&raw[..len]);
        Ok(Name { bytes, len })
    }

    /// A name from its bytes (no NUL), as the handover decoder found it;
    /// `Unterminated` if there are `NAME_LEN` or more, `Empty` if none.
    pub(crate) fn from_bytes(bytes: &[u8]) -> Result<Name, NameError> {
        let mut field = [0u8; NAME_LEN];
        field
            .get_mut(..bytes.len())
            .ok_or(NameError::Unterminated)?
            .copy_from_slice(bytes);
        Self::parse(&field)
    }

    /// The name's bytes, without NUL.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    /// Whether the session is unnamed.
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The name as a uAPI field: the bytes, then NULs to the end.
    pub(crate) fn to_field(self) -> [u8; NAME_LEN] {
        self.bytes
    }
}

/// Whether every byte is zero (reserved fields, unknown trailing bytes).
pub(crate) fn all_zero(bytes: &[u8]) -> bool {
    bytes.iter().all(|&b| b == 0)
}

#[cfg(test)]
#[path = "tests/luo_uapi.rs"]
mod tests;
