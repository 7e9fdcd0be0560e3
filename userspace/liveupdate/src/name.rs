// SPDX-License-Identifier: GPL-2.0

//! Session names: 1 to [`MAX`] bytes without NUL, carried NUL-padded in
//! the uAPI's `name` arrays.

use crate::uapi::LIVEUPDATE_SESSION_NAME_LENGTH;

/// The bytes of a name array: `LIVEUPDATE_SESSION_NAME_LENGTH`, NUL-padded.
pub(crate) type Raw = [u8; LIVEUPDATE_SESSION_NAME_LENGTH as usize];

/// Whether `name` can be a session name: 1 to 63 bytes, without NUL.
pub fn valid(name: &str) -> bool {
    encode(name).is_some()
}

/// The longest session name, in bytes.
pub const MAX: usize = LIVEUPDATE_SESSION_NAME_LENGTH as usize - 1;

/// `name` as the kernel takes it, or `None` if it cannot be a session name.
pub(crate) fn encode(name: &str) -> Option<Raw> {
    let bytes = name.as_bytes();
    let mut raw = [0u8; LIVEUPDATE_SESSION_NAME_LENGTH as usize];
    if bytes.is_empty() || bytes.len() >= raw.len() || bytes.contains(&0) {
        return None;
    }
    raw[..bytes.len()].copy_from_slice(bytes);
    Some(raw)
}

/// The name in a NUL-padded array the kernel wrote (lossy for non-UTF-8).
pub(crate) fn decode(raw: &Raw) -> String {
    let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
    String::from_utf8_lossy(&raw[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_1_to_63_bytes() {
        assert!(encode("a").is_some());
        assert!(encode(&"x".repeat(63)).is_some());
    }

    #[test]
    fn refuses_empty_too_long_and_nul() {
        assert!(encode("").is_none());
        assert!(encode(&"x".repeat(64)).is_none());
        assert!(encode("a\0b").is_none());
    }

    #[test]
    fn round_trips() {
        let raw = encode("vmm-42").unwrap();
        assert_eq!(decode(&raw), "vmm-42");
        assert_eq!(raw[6..], [0u8; 58]);
    }

    #[test]
    fn decodes_an_unterminated_array_whole() {
        let raw = [b'z'; LIVEUPDATE_SESSION_NAME_LENGTH as usize];
        assert_eq!(decode(&raw).len(), 64);
    }
}
