// SPDX-License-Identifier: GPL-2.0

//! What the vCPU handler hands over for one vCPU, and the check the new
//! kernel runs on it before giving the image to KVM.
//!
//! The handler's `u64` of handover data is the physical address of a
//! KHO-preserved blob, allocated at PREPARE and written at FREEZE:
//!
//! ```text
//! offset  size  field
//!      0     8  magic: "LUOVCPU\0"
//!      8     4  version (1)
//!     12     4  image length in bytes
//!     16        the image: KVM's own (patch 0009), versioned and checked
//!               by KVM itself
//! ```
//!
//! A blob that was never written (a kexec after PREPARE whose FREEZE did
//! not run) has no magic and is refused.
//!
//! Pure `core` code: the kernel and host tests compile this same file.

/// The envelope's magic.
pub(crate) const MAGIC: [u8; 8] = *b"LUOVCPU\0";
/// The envelope's version.
pub(crate) const VERSION: u32 = 1;
/// The envelope's size: the image follows it.
pub(crate) const HEADER_LEN: usize = 16;

/// Why a blob was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FormatError {
    /// Not a vCPU record (never written, or something else).
    Magic,
    /// A version this kernel does not read.
    Version,
    /// Empty, or longer than the blob.
    Length,
}

/// Writes the envelope of an `image_len`-byte image that follows it in
/// `blob`.
pub(crate) fn encode(blob: &mut [u8], image_len: usize) -> Result<(), FormatError> {
    let len = u32::try_from(image_len).map_err(|_| FormatError::Length)?;
    if image_len == 0 || blob.len() < HEADER_LEN || blob.len() - HEADER_LEN < image_len {
        return Err(FormatError::Length);
    }
    blob[..8].copy_from_slice(&MAGIC);
    blob[8..12].copy_from_slice(&VERSION.to_le_bytes());
    blob[12..16].copy_from_slice(&len.to_le_bytes());
    Ok(())
}

/// The image a blob holds.
pub(crate) fn decode(blob: &[u8]) -> Result<&[u8], FormatError> {
    let (head, rest) = blob
        .split_at_checked(HEADER_LEN)
        .ok_or(FormatError::Magic)?;
    if head[..8] != MAGIC {
        return Err(FormatError::Magic);
    }
    let word = |at: usize| u32::from_le_bytes([head[at], head[at + 1], head[at + 2], head[at + 3]]);
    if word(8) != VERSION {
        return Err(FormatError::Version);
    }
    let len = usize::try_from(word(12)).map_err(|_| FormatError::Length)?;
    match rest.get(..len) {
        Some(image) if len > 0 => Ok(image),
        _ => Err(FormatError::Length),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_image_round_trips() {
        let mut blob = [0xaau8; 64];
        encode(&mut blob, 40).unwrap();
        assert_eq!(&blob[..8], b"LUOVCPU\0");
        let image = decode(&blob).unwrap();
        assert_eq!(image.len(), 40);
        assert_eq!(image.as_ptr(), blob[16..].as_ptr());
        // The image exactly fills the blob.
        encode(&mut blob, 48).unwrap();
        assert_eq!(decode(&blob).unwrap().len(), 48);
    }

    #[test]
    fn a_blob_never_written_is_refused() {
        assert_eq!(decode(&[0u8; 4096]), Err(FormatError::Magic));
        assert_eq!(decode(&[]), Err(FormatError::Magic));
        assert_eq!(decode(&MAGIC), Err(FormatError::Magic));
    }

    #[test]
    fn bad_versions_and_lengths_are_refused() {
        let mut blob = [0u8; 64];
        encode(&mut blob, 8).unwrap();
        blob[8] = 2;
        assert_eq!(decode(&blob), Err(FormatError::Version));

        encode(&mut blob, 48).unwrap();
        blob[12] = 49;
        assert_eq!(decode(&blob), Err(FormatError::Length));
        blob[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode(&blob), Err(FormatError::Length));
        blob[12..16].copy_from_slice(&0u32.to_le_bytes());
        assert_eq!(decode(&blob), Err(FormatError::Length));

        assert_eq!(encode(&mut blob, 0), Err(FormatError::Length));
        assert_eq!(encode(&mut blob, 49), Err(FormatError::Length));
        assert_eq!(encode(&mut blob[..15], 0), Err(FormatError::Length));
    }
}
