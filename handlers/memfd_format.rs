// SPDX-License-Identifier: GPL-2.0

//! What the memfd and guest_memfd handlers hand over for one file, and the
//! checks the new kernel runs on it before trusting a byte.
//!
//! A guest_memfd's record, and a memfd's with many folio runs, is a
//! KHO-preserved page whose physical address is the handler's `u64` of
//! handover data, holding a [`Header`] (little-endian):
//!
//! ```text
//! offset  size  field
//!      0     8  magic: "LUOMEMFD" (memfd) or "LUOGMEMF" (guest_memfd)
//!      8     4  version (2; 1 is still read for a memfd)
//!     12     4  flags: F_SEAL_* (memfd), GUEST_MEMFD_FLAG_* (guest_memfd)
//!     16     8  size in bytes
//!     24     8  file position
//!     32     8  number of entries in the folio list
//!     40     4  permission bits (mode & 0777)
//!     44     4  name length
//!     48    16  KHO descriptor of the folio list (struct kho_vmalloc),
//!               all zero if the list is inline or empty
//!     64   256  name (the dentry name, "memfd:..."), not NUL-terminated
//!    320        version 2: the folio list, if inline
//! ```
//!
//! A guest_memfd's record is version 2 with no name, position or mode
//! (all zero), and only order-0 folios (guest_memfd has no other).
//!
//! Version 2's folio list is made of [`Run`]s, two `u64` each: folios of
//! one size that follow each other both in the file and in physical
//! memory, in index order; with `luo-rs,memfd-v4` ([`Runs::EitherWay`])
//! a run may go down in memory as well as up. Memory written in order is
//! mostly such runs (the page allocator hands out neighbours, often from
//! high addresses down), so a 1 GiB memfd takes a few
//! KiB of list, not 4 MiB; scattered folios cost 16 bytes each, as in
//! version 1 (and as much again in the old kernel, which keeps the runs). Up to
//! [`INLINE_RUNS`] runs are kept in the header page itself (then a small
//! memfd costs one page); more go into a KHO-preserved vmalloc array.
//! Version 1 (the first release) listed every folio as a `u64` pair, its
//! physical address and page index, always in a vmalloc array. Holes have
//! no entry and cost nothing. A folio's size is what KHO preserved it
//! with, so large folios stay large; version 2 also names it, and the new
//! kernel checks the two agree.
//!
//! A memfd's record as `luo-rs,memfd-v3` hands it over is version 3 if
//! its folio list has at most [`STATE_RUNS`] runs (a memfd of a page or a
//! few, mostly) and it fits the room PRESERVE_FD counted: then it is the
//! file's state in the handover itself (`luo_handover`), 32 to 352 bytes,
//! and the handover data is 0. Any other memfd has a version 2 header
//! page, as with `luo-rs,memfd-v2`. Version 3 (little-endian):
//!
//! ```text
//! offset  size  field
//!      0     8  size in bytes
//!      8     8  file position
//!     16     8  number of runs in the folio list (1..=STATE_RUNS, or 0)
//!     24     4  F_SEAL_*
//!     28     2  permission bits (mode & 0777)
//!     30     2  name length (at most 256)
//!     32        the runs (16 bytes each)
//!               the name, not NUL-terminated; nothing after it
//! ```
//!
//! Pure `core` code: the kernel and host tests compile this same file.

/// What a record describes, named by its magic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A memfd: "LUOMEMFD".
    Memfd,
    /// A guest_memfd: "LUOGMEMF".
    GuestMemfd,
}

impl Kind {
    /// Its magic, little-endian.
    pub(crate) const fn magic(self) -> u64 {
        match self {
            Kind::Memfd => u64::from_le_bytes(*b"LUOMEMFD"),
            Kind::GuestMemfd => u64::from_le_bytes(*b"LUOGMEMF"),
        }
    }

    fn of_magic(magic: u64) -> Option<Kind> {
        [Kind::Memfd, Kind::GuestMemfd]
            .into_iter()
            .find(|k| k.magic() == magic)
    }
}

/// Format version of a header page; a reader refuses any but this one
/// and [`VERSION_1`].
pub(crate) const VERSION: u32 = 2;
/// The first release's format: a list of (address, index) pairs.
pub(crate) const VERSION_1: u32 = 1;
/// A memfd's record in its handover state, not a page (see above).
pub(crate) const VERSION_3: u32 = 3;
/// Most runs a version 3 record holds; a memfd with more has a page.
pub(crate) const STATE_RUNS: usize = 4;
/// Bytes of a version 3 record before its runs.
pub(crate) const STATE_FIXED: usize = 32;
/// Most bytes of a version 3 record.
pub(crate) const STATE_LEN_MAX: usize = STATE_FIXED + 16 * STATE_RUNS + NAME_MAX;
/// Bytes of a KHO vmalloc descriptor (`struct kho_vmalloc`).
pub(crate) const LIST_DESC_LEN: usize = 16;
/// Longest name kept (a dentry name is at most 255 bytes).
pub(crate) const NAME_MAX: usize = 256;
/// Bytes of a header.
pub(crate) const HEADER_LEN: usize = 64 + NAME_MAX;
/// Page size the format assumes (the handler refuses others).
pub(crate) const PAGE_SIZE: u64 = 4096;
/// Bytes of the header page.
pub(crate) const HEADER_PAGE: usize = PAGE_SIZE as usize;
/// Runs the header page holds after the header.
pub(crate) const INLINE_RUNS: usize = (HEADER_PAGE - HEADER_LEN) / 16;
/// Largest file the format describes: the kernel's `MAX_LFS_FILESIZE`.
pub(crate) const SIZE_MAX: u64 = i64::MAX as u64;

/// Folios of one order, `count` of them, that follow each other in the
/// file from page `index` and in physical memory from `phys`, going up or
/// (where the format allows it, [`Runs::EitherWay`]) down.
///
/// Encoded as two words: `phys | order` (a folio's address is aligned to
/// its size, at least a page, so the low 12 bits are free; they hold the
/// order, at most [`ORDER_MAX`], and bit 11 for a run going down), and
/// `index | (count - 1) << 52` (page indexes of the largest file fit in
/// 51 bits). `phys` is the address of the run's first folio, the one at
/// `index`, in both directions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Run {
    pub(crate) phys: u64,
    pub(crate) index: u64,
    /// Every folio spans `1 << order` pages.
    pub(crate) order: u32,
    pub(crate) count: u64,
    /// Where the next folio of the file lies in physical memory.
    pub(crate) dir: Direction,
}

/// Which way a [`Run`]'s folios go in physical memory, in file order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    /// Each folio right after the one before it.
    Up,
    /// Each folio right below the one before it: the page allocator often
    /// hands out pages from high addresses down.
    Down,
}

/// The runs a format has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Runs {
    /// Going up only: `luo-rs,memfd-v2`, `luo-rs,memfd-v3` and
    /// `luo-rs,guest-memfd-v1`.
    Ascending,
    /// Going up or down: `luo-rs,memfd-v4`.
    EitherWay,
}

/// Bits of a run's second word that hold the index.
const INDEX_BITS: u32 = 52;
/// Bits of a run's first word below the address.
const ORDER_MASK: u64 = 0xfff;
/// The bit of a run's first word that says it goes down.
const DOWN: u64 = 0x800;
/// Highest folio order a run may name (KHO's own limit is lower).
const ORDER_MAX: u32 = 31;

impl Run {
    /// Most folios in one run.
    pub(crate) const COUNT_MAX: u64 = 1 << (64 - INDEX_BITS);

    /// A run of the one folio at `phys` of `1 << order` pages at `index`.
    #[inline]
    pub(crate) fn one(phys: u64, index: u64, order: u32) -> Self {
        Run {
            phys,
            index,
            order,
            count: 1,
            dir: Direction::Up,
        }
    }

    /// Pages the run spans.
    #[inline]
    pub(crate) fn pages(&self) -> u64 {
        self.count << self.order
    }

    /// The page index past the run.
    #[inline]
    pub(crate) fn end(&self) -> u64 {
        self.index + self.pages()
    }

    /// Bytes of one of its folios.
    #[inline]
    fn folio_size(&self) -> u64 {
        PAGE_SIZE << self.order
    }

    /// Adds the folio at `phys` of `1 << order` pages at `index` if it
    /// continues the run, in a direction `runs` allows; whether it did. A
    /// run of one folio goes down if the second is right below it.
    #[inline]
    pub(crate) fn extend(&mut self, phys: u64, index: u64, order: u32, runs: Runs) -> bool {
        if order != self.order || self.count >= Self::COUNT_MAX || index != self.end() {
            return false;
        }
        let span = self.count * self.folio_size();
        let up = self.phys.checked_add(span) == Some(phys);
        let down = self.phys.checked_sub(span) == Some(phys);
        let continues = match self.dir {
            Direction::Up if up => true,
            Direction::Up if down && self.count == 1 && runs == Runs::EitherWay => {
                self.dir = Direction::Down;
                true
            }
            Direction::Down => down,
            Direction::Up => false,
        };
        if continues {
            self.count += 1;
        }
        continues
    }

    /// The two words it is handed over as.
    #[inline]
    pub(crate) fn encode(&self) -> [u64; 2] {
        let down = match self.dir {
            Direction::Up => 0,
            Direction::Down => DOWN,
        };
        [
            self.phys | down | u64::from(self.order),
            self.index | ((self.count - 1) << INDEX_BITS),
        ]
    }

    /// Reads back a run this kernel encoded (no checks: see
    /// [`Run::decode`] for runs from a handover).
    #[inline]
    pub(crate) fn unpack(words: [u64; 2]) -> Run {
        Run {
            phys: words[0] & !ORDER_MASK,
            index: words[1] & ((1 << INDEX_BITS) - 1),
            order: (words[0] & ORDER_MASK & !DOWN) as u32,
            count: (words[1] >> INDEX_BITS) + 1,
            dir: if words[0] & DOWN != 0 {
                Direction::Down
            } else {
                Direction::Up
            },
        }
    }

    /// Reads a run of a file of `pages` pages, in a format with `runs`,
    /// and checks it: aligned, of a plausible order, going a way the
    /// format allows, starting inside the file, naturally aligned in it,
    /// with no overflow. (Order and overlap between runs are the caller's
    /// check, [`FolioCheck`].)
    pub(crate) fn decode(words: [u64; 2], pages: u64, runs: Runs) -> Result<Run, FormatError> {
        let run = Run::unpack(words);
        let order = run.order;
        let size = PAGE_SIZE << order.min(ORDER_MAX);
        if order > ORDER_MAX || run.phys % size != 0 || run.index >= pages {
            return Err(FormatError::Folio);
        }
        if run.index % (1 << order) != 0 {
            return Err(FormatError::Folio);
        }
        // The run's last folio must be addressable.
        let span = (run.count - 1) * size;
        let last = match (run.dir, runs) {
            (Direction::Up, _) => run.phys.checked_add(span),
            (Direction::Down, Runs::EitherWay) => run.phys.checked_sub(span),
            (Direction::Down, Runs::Ascending) => None,
        };
        last.ok_or(FormatError::Folio)?;
        Ok(run)
    }

    /// Its folio `k` (below `count`): physical address and page index.
    #[inline]
    pub(crate) fn folio(&self, k: u64) -> (u64, u64) {
        let offset = k * self.folio_size();
        let phys = match self.dir {
            Direction::Up => self.phys + offset,
            Direction::Down => self.phys - offset,
        };
        (phys, self.index + (k << self.order))
    }

    /// Its folios: (physical address, page index) of each.
    pub(crate) fn folios(self) -> impl Iterator<Item = (u64, u64)> {
        let run = self;
        (0..run.count).map(move |k| run.folio(k))
    }
}

/// Why a handed-over memfd was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FormatError {
    /// Not a header of this format or version.
    Header,
    /// A field out of range (size, position, name, folio count), or one
    /// the kind of file has not.
    Field,
    /// A folio outside the file, overlapping another, or out of order.
    Folio,
}

/// One memfd or guest_memfd as handed over (the folio list aside).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) kind: Kind,
    /// [`VERSION`], [`VERSION_3`] (in the handover's state) or
    /// [`VERSION_1`] from the first release (both memfd only).
    pub(crate) version: u32,
    /// `F_SEAL_*` of a memfd; `GUEST_MEMFD_FLAG_*` of a guest_memfd.
    pub(crate) flags: u32,
    pub(crate) size: u64,
    pub(crate) pos: u64,
    /// Entries of the folio list: runs (versions 2 and 3) or folios
    /// (version 1).
    pub(crate) nr_entries: u64,
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
        out[0..8].copy_from_slice(&self.kind.magic().to_le_bytes());
        out[8..12].copy_from_slice(&self.version.to_le_bytes());
        out[12..16].copy_from_slice(&self.flags.to_le_bytes());
        out[16..24].copy_from_slice(&self.size.to_le_bytes());
        out[24..32].copy_from_slice(&self.pos.to_le_bytes());
        out[32..40].copy_from_slice(&self.nr_entries.to_le_bytes());
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
        let version = u32_at(b, 8);
        let kind = Kind::of_magic(u64_at(b, 0)).ok_or(FormatError::Header)?;
        let versions: &[u32] = match kind {
            Kind::Memfd => &[VERSION, VERSION_1],
            Kind::GuestMemfd => &[VERSION],
        };
        if !versions.contains(&version) {
            return Err(FormatError::Header);
        }
        let size = u64_at(b, 16);
        let pos = u64_at(b, 24);
        let nr_entries = u64_at(b, 32);
        let mode = u32_at(b, 40);
        let name_len = u32_at(b, 44) as usize;
        if size > SIZE_MAX || pos > SIZE_MAX || nr_entries > pages(size) {
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
        if kind == Kind::GuestMemfd && (pos != 0 || mode != 0 || name_len != 0) {
            return Err(FormatError::Field);
        }
        let header = Header {
            kind,
            version,
            flags: u32_at(b, 12),
            size,
            pos,
            nr_entries,
            mode,
            list,
            name,
            name_len,
        };
        // Where the list is must agree with how long it is.
        let in_page = header.list == [0; LIST_DESC_LEN];
        let fits = match version {
            VERSION_1 => nr_entries == 0,
            _ => nr_entries as usize <= INLINE_RUNS,
        };
        if (in_page && !fits) || (!in_page && nr_entries == 0) {
            return Err(FormatError::Field);
        }
        Ok(header)
    }

    /// Whether the folio list is in the header page (version 2, few runs),
    /// not in a list of its own.
    pub(crate) fn list_inline(&self) -> bool {
        self.list == [0; LIST_DESC_LEN]
    }

    /// Words of the folio list.
    pub(crate) fn list_words(&self) -> Option<usize> {
        usize::try_from(self.nr_entries).ok()?.checked_mul(2)
    }

    /// The memfd's name.
    pub(crate) fn name(&self) -> &[u8] {
        &self.name[..self.name_len.min(NAME_MAX)]
    }
}

/// The runs of a version 3 record, as read: the first `n` of `words`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StateRuns {
    words: [[u64; 2]; STATE_RUNS],
    n: usize,
}

impl StateRuns {
    /// Their word pairs, in order.
    pub(crate) fn pairs(&self) -> &[[u64; 2]] {
        &self.words[..self.n.min(STATE_RUNS)]
    }
}

impl Header {
    /// Bytes of this memfd's version 3 record.
    pub(crate) fn state_len(&self) -> usize {
        STATE_FIXED + 16 * self.nr_entries as usize + self.name_len
    }

    /// Writes this memfd's version 3 record, with the folio list `runs`
    /// (encoded [`Run`]s, as many as `nr_entries` says, at most
    /// [`STATE_RUNS`]), into `out`, which must be [`Header::state_len`]
    /// bytes.
    pub(crate) fn encode_state(
        &self,
        runs: &[[u64; 2]],
        out: &mut [u8],
    ) -> Result<(), FormatError> {
        let fits = self.kind == Kind::Memfd
            && self.version == VERSION_3
            && self.size <= SIZE_MAX
            && self.pos <= SIZE_MAX
            && runs.len() <= STATE_RUNS
            && runs.len() as u64 == self.nr_entries
            && self.name_len <= NAME_MAX
            && self.mode & !0o777 == 0
            && out.len() == self.state_len();
        if !fits {
            return Err(FormatError::Field);
        }
        out[0..8].copy_from_slice(&self.size.to_le_bytes());
        out[8..16].copy_from_slice(&self.pos.to_le_bytes());
        out[16..24].copy_from_slice(&self.nr_entries.to_le_bytes());
        out[24..28].copy_from_slice(&self.flags.to_le_bytes());
        let mode = u16::try_from(self.mode).map_err(|_| FormatError::Field)?;
        let name_len = u16::try_from(self.name_len).map_err(|_| FormatError::Field)?;
        out[28..30].copy_from_slice(&mode.to_le_bytes());
        out[30..32].copy_from_slice(&name_len.to_le_bytes());
        let (list, name) = out[STATE_FIXED..].split_at_mut(16 * runs.len());
        for (&[a, b], w) in runs.iter().zip(list.chunks_exact_mut(16)) {
            w[..8].copy_from_slice(&a.to_le_bytes());
            w[8..].copy_from_slice(&b.to_le_bytes());
        }
        name.copy_from_slice(self.name());
        Ok(())
    }

    /// Reads and checks a memfd's version 3 record: every field in range,
    /// and exactly as long as they say. Its runs are checked one by one as
    /// the folios are restored ([`Run::decode`], [`FolioCheck`]).
    pub(crate) fn decode_state(b: &[u8]) -> Result<(Header, StateRuns), FormatError> {
        let fixed = b.get(..STATE_FIXED).ok_or(FormatError::Header)?;
        let size = u64_at(fixed, 0);
        let pos = u64_at(fixed, 8);
        let nr_entries = u64_at(fixed, 16);
        let mode = u32::from(u16::from_le_bytes([fixed[28], fixed[29]]));
        let name_len = usize::from(u16::from_le_bytes([fixed[30], fixed[31]]));
        if size > SIZE_MAX || pos > SIZE_MAX || nr_entries > pages(size) {
            return Err(FormatError::Field);
        }
        if nr_entries > STATE_RUNS as u64 || mode & !0o777 != 0 || name_len > NAME_MAX {
            return Err(FormatError::Field);
        }
        let n = nr_entries as usize;
        if b.len() != STATE_FIXED + 16 * n + name_len {
            return Err(FormatError::Field);
        }
        let mut words = [[0u64; 2]; STATE_RUNS];
        for (w, at) in words.iter_mut().zip((STATE_FIXED..).step_by(16)).take(n) {
            *w = [u64_at(b, at), u64_at(b, at + 8)];
        }
        let mut name = [0u8; NAME_MAX];
        name[..name_len].copy_from_slice(&b[STATE_FIXED + 16 * n..]);
        if name[..name_len].contains(&0) {
            return Err(FormatError::Field);
        }
        let header = Header {
            kind: Kind::Memfd,
            version: VERSION_3,
            flags: u32_at(fixed, 24),
            size,
            pos,
            nr_entries,
            mode,
            list: [0; LIST_DESC_LEN],
            name,
            name_len,
        };
        Ok((header, StateRuns { words, n }))
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
