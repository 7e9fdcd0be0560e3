// SPDX-License-Identifier: GPL-2.0

//! What the memfd handler hands over for one memfd, and the checks the
//! new kernel runs on it before trusting a byte.
//!
//! The handler's `u64` of handover data is the physical address of one
//! KHO-preserved page holding a [`Header`] (little-endian):
//!
//! ```text
//! offset  size  field
//!      0     8  magic "LUOMEMFD"
//!      8     4  version (1)
//!     12     4  seals (F_SEAL_*)
//!     16     8  size in bytes
//!     24     8  file position
//!     32     8  number of folios
//!     40     4  permission bits (mode & 0777)
//!     44     4  name length
//!     48    16  KHO descriptor of the folio list (struct kho_vmalloc)
//!     64   256  name (the dentry name, "memfd:..."), not NUL-terminated
//! ```
//!
//! The folio list is a KHO-preserved vmalloc array of `u64` pairs: the
//! physical address and the page index of every folio present in the
//! memfd, in index order. Holes have no entry and cost nothing. A folio's
//! size is what KHO preserved it with, so large folios stay large.
//!
//! Pure `core` code: the kernel and host tests compile this same file.

/// "LUOMEMFD", little-endian.
pub(crate) const MAGIC: u64 = u64::from_le_bytes(*b"LUOMEMFD");
/// Format version; a reader refuses any other.
pub(crate) const VERSION: u32 = 1;
/// Bytes of a KHO vmalloc descriptor (`struct kho_vmalloc`).
pub(crate) const LIST_DESC_LEN: usize = 16;
/// Longest name kept (a dentry name is at most 255 bytes).
pub(crate) const NAME_MAX: usize = 256;
/// Bytes of a header.
pub(crate) const HEADER_LEN: usize = 64 + NAME_MAX;
/// Page size the format assumes (the handler refuses others).
pub(crate) const PAGE_SIZE: u64 = 4096;
/// Largest file the format describes: the kernel's `MAX_LFS_FILESIZE`.
pub(crate) const SIZE_MAX: u64 = i64::MAX as u64;

/// Why a handed-over memfd was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FormatError {
    /// Not a header of this format or version.
    Header,
    /// A field out of range (size, position, name, folio count).
    Field,
    /// A folio outside the file, overlapping another, or out of order.
    Folio,
}

/// One memfd as handed over (the folio list aside).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) seals: u32,
    pub(crate) size: u64,
    pub(crate) pos: u64,
    pub(crate) nr_folios: u64,
    pub(crate) mode: u32,
    pub(crate) list: [u8; LIST_DESC_LEN],
    pub(crate) name: [u8; NAME_MAX],
    pub(crate) name_len: usize,
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut v = [0u8; 4];
    v.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(v)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(v)
}

/// Pages a file of `size` bytes spans.
pub(crate) fn pages(size: u64) -> u64 {
    size.div_ceil(PAGE_SIZE)
}

impl Header {
    /// Writes the header into `out` (at least [`HEADER_LEN`] bytes).
    pub(crate) fn encode(&self, out: &mut [u8]) -> Result<(), FormatError> {
        let out = out.get_mut(..HEADER_LEN).ok_or(FormatError::Field)?;
        out.fill(0);
        out[0..8].copy_from_slice(&MAGIC.to_le_bytes());
        out[8..12].copy_from_slice(&VERSION.to_le_bytes());
        out[12..16].copy_from_slice(&self.seals.to_le_bytes());
        out[16..24].copy_from_slice(&self.size.to_le_bytes());
        out[24..32].copy_from_slice(&self.pos.to_le_bytes());
        out[32..40].copy_from_slice(&self.nr_folios.to_le_bytes());
        out[40..44].copy_from_slice(&self.mode.to_le_bytes());
        let name_len = u32::try_from(self.name_len).map_err(|_| FormatError::Field)?;
        out[44..48].copy_from_slice(&name_len.to_le_bytes());
        out[48..64].copy_from_slice(&self.list);
        out[64..64 + NAME_MAX].copy_from_slice(&self.name);
        Ok(())
    }

    /// Reads and checks a header: magic, version, and every field in
    /// range. The folio list is checked entry by entry ([`FolioCheck`]).
    pub(crate) fn decode(b: &[u8]) -> Result<Header, FormatError> {
        let b = b.get(..HEADER_LEN).ok_or(FormatError::Header)?;
        if u64_at(b, 0) != MAGIC || u32_at(b, 8) != VERSION {
            return Err(FormatError::Header);
        }
        let size = u64_at(b, 16);
        let pos = u64_at(b, 24);
        let nr_folios = u64_at(b, 32);
        let mode = u32_at(b, 40);
        let name_len = u32_at(b, 44) as usize;
        if size > SIZE_MAX || pos > SIZE_MAX || nr_folios > pages(size) {
            return Err(FormatError::Field);
        }
        if mode & !0o777 != 0 || name_len > NAME_MAX {
            return Err(FormatError::Field);
        }
        let mut list = [0u8; LIST_DESC_LEN];
        list.copy_from_slice(&b[48..64]);
        let mut name = [0u8; NAME_MAX];
        name.copy_from_slice(&b[64..64 + NAME_MAX]);
        if name[..name_len].contains(&0) {
            return Err(FormatError::Field);
        }
        Ok(Header {
            seals: u32_at(b, 12),
            size,
            pos,
            nr_folios,
            mode,
            list,
            name,
            name_len,
        })
    }

    /// The memfd's name.
    pub(crate) fn name(&self) -> &[u8] {
        &self.name[..self.name_len.min(NAME_MAX)]
    }
}

/// Checks the folio list one entry at a time, in order: each folio must
/// start inside the file, after the previous one, naturally aligned. (A
/// large folio may reach past the end of the file, as shmem allocates
/// them.)
pub(crate) struct FolioCheck {
    pages: u64,
    next: u64,
}

impl FolioCheck {
    /// For a file of `size` bytes.
    pub(crate) fn new(size: u64) -> Self {
        FolioCheck {
            pages: pages(size),
            next: 0,
        }
    }

    /// Accepts a folio of `nr_pages` pages at page `index`, or refuses it.
    pub(crate) fn accept(&mut self, index: u64, nr_pages: u64) -> Result<(), FormatError> {
        let end = index.checked_add(nr_pages).ok_or(FormatError::Folio)?;
        if nr_pages == 0 || index < self.next || index >= self.pages {
            return Err(FormatError::Folio);
        }
        if !nr_pages.is_power_of_two() || index % nr_pages != 0 {
            // A folio is naturally aligned in the file.
            return Err(FormatError::Folio);
        }
        self.next = end;
        Ok(())
    }
}

#[cfg(test)]
#[path = "../tests/memfd_format.rs"]
mod tests;
