// SPDX-License-Identifier: GPL-2.0

//! What the iommufd handler hands over for one iommufd, and the checks the
//! new kernel runs on it before it maps anything.
//!
//! The handler's `u64` of handover data is the physical address of a
//! KHO-preserved blob, written at PREPARE (the iommufd is frozen from then
//! on, so FREEZE has nothing to add):
//!
//! ```text
//! offset  size  field
//!      0     8  magic: "LUOIOMMU"
//!      8     4  version (1)
//!     12     4  the iommufd's RLIMIT accounting mode (IOMMU_OPTION_RLIMIT_MODE)
//!     16     4  IOASes
//!     20     4  mappings
//!     24        per IOAS, by rising id:     id: u32, mappings: u32
//!               then per mapping, by IOAS then rising IOVA (32 bytes):
//!                 iova: u64, length: u64, offset in the file: u64,
//!                 file: u32 (index into the iommufd's dependencies),
//!                 prot: u32 (PROT_READ | PROT_WRITE)
//! ```
//!
//! All little-endian. Every mapping maps a memfd of the same session; the
//! file index names it among the files the iommufd depends on, in the
//! order the handover lists them. An IOAS without mappings is listed too:
//! it comes back empty, with its id.
//!
//! Pure `core` code: the kernel and host tests compile this same file.

/// The blob's magic.
pub(crate) const MAGIC: [u8; 8] = *b"LUOIOMMU";
/// The blob's version.
pub(crate) const VERSION: u32 = 1;
/// The header's size: the IOAS table follows it.
pub(crate) const HEADER_LEN: usize = 24;
/// Bytes per IOAS.
pub(crate) const IOAS_LEN: usize = 8;
/// Bytes per mapping.
pub(crate) const MAP_LEN: usize = 32;
/// The mapping can be read through (the device may read the memory).
pub(crate) const PROT_READ: u32 = 1;
/// The mapping can be written through.
pub(crate) const PROT_WRITE: u32 = 2;
/// The largest object id iommufd gives (its ids are 31-bit, from 1).
pub(crate) const MAX_ID: u32 = i32::MAX as u32;

/// One mapping of an IOAS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Mapping {
    /// Its first IOVA.
    pub(crate) iova: u64,
    /// Its length in bytes, not zero.
    pub(crate) length: u64,
    /// Where in the file it starts.
    pub(crate) offset: u64,
    /// The file, as an index into the iommufd's dependencies.
    pub(crate) file: u32,
    /// [`PROT_READ`] and/or [`PROT_WRITE`].
    pub(crate) prot: u32,
}

impl Mapping {
    /// Its last IOVA, if it does not wrap.
    fn last(&self) -> Option<u64> {
        self.iova.checked_add(self.length.checked_sub(1)?)
    }

    /// Whether this mapping could be made, alone: not empty, no wrap in
    /// IOVA or file offset, known protection bits.
    fn is_sane(&self) -> bool {
        self.last().is_some()
            && self.offset.checked_add(self.length).is_some()
            && self.prot != 0
            && self.prot & !(PROT_READ | PROT_WRITE) == 0
    }

    fn write(&self, out: &mut [u8]) {
        out[0..8].copy_from_slice(&self.iova.to_le_bytes());
        out[8..16].copy_from_slice(&self.length.to_le_bytes());
        out[16..24].copy_from_slice(&self.offset.to_le_bytes());
        out[24..28].copy_from_slice(&self.file.to_le_bytes());
        out[28..32].copy_from_slice(&self.prot.to_le_bytes());
    }

    fn read(bytes: &[u8]) -> Self {
        Self {
            iova: u64_at(bytes, 0),
            length: u64_at(bytes, 8),
            offset: u64_at(bytes, 16),
            file: u32_at(bytes, 24),
            prot: u32_at(bytes, 28),
        }
    }
}

/// One IOAS as [`encode`] takes it: its id and its mappings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ioas<'a> {
    /// Its object id in the iommufd.
    pub(crate) id: u32,
    /// Its mappings, by rising IOVA, not overlapping.
    pub(crate) mappings: &'a [Mapping],
}

/// Why a blob was refused, or could not be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FormatError {
    /// Not an iommufd record (never written, or something else).
    Magic,
    /// A version this kernel does not read.
    Version,
    /// Counts that do not fit the blob, or the room given.
    Length,
    /// IOAS ids not rising, zero, or beyond iommufd's range.
    Id,
    /// A mapping that is empty, wraps, overlaps the one before it, has
    /// unknown protection bits, or names a file the iommufd does not
    /// depend on.
    Mapping,
}

/// The bytes a record of `ioases` IOASes and `mappings` mappings takes.
pub(crate) fn len(ioases: usize, mappings: usize) -> Option<usize> {
    HEADER_LEN
        .checked_add(ioases.checked_mul(IOAS_LEN)?)?
        .checked_add(mappings.checked_mul(MAP_LEN)?)
}

/// Checks one IOAS's place after the one before (`prev`) and its
/// mappings, whose files must be below `files`.
fn check_ioas(
    prev: u32,
    id: u32,
    maps: impl Iterator<Item = Mapping>,
    files: u32,
) -> Result<(), FormatError> {
    if id <= prev || id > MAX_ID {
        return Err(FormatError::Id);
    }
    // The first IOVA the next mapping may use; `None` after a mapping
    // that ends at the top of the IOVA space.
    let mut next_free = Some(0u64);
    for m in maps {
        let last = m.last().ok_or(FormatError::Mapping)?;
        let after_prev = next_free.is_some_and(|free| m.iova >= free);
        if !after_prev || !m.is_sane() || m.file >= files {
            return Err(FormatError::Mapping);
        }
        next_free = last.checked_add(1);
    }
    Ok(())
}

/// Writes the record of an iommufd with RLIMIT mode `account_mode` and
/// `ioases` (by rising id) into `blob`, whose mappings name files below
/// `files`; returns the bytes written.
pub(crate) fn encode(
    blob: &mut [u8],
    account_mode: u32,
    ioases: &[Ioas<'_>],
    files: u32,
) -> Result<usize, FormatError> {
    let nr_maps = ioases.iter().map(|i| i.mappings.len()).sum::<usize>();
    let total = len(ioases.len(), nr_maps).ok_or(FormatError::Length)?;
    let nr_ioas = u32::try_from(ioases.len()).map_err(|_| FormatError::Length)?;
    let nr_maps32 = u32::try_from(nr_maps).map_err(|_| FormatError::Length)?;
    if blob.len() < total {
        return Err(FormatError::Length);
    }
    let mut prev = 0;
    for ioas in ioases {
        check_ioas(prev, ioas.id, ioas.mappings.iter().copied(), files)?;
        prev = ioas.id;
    }
    blob[..8].copy_from_slice(&MAGIC);
    blob[8..12].copy_from_slice(&VERSION.to_le_bytes());
    blob[12..16].copy_from_slice(&account_mode.to_le_bytes());
    blob[16..20].copy_from_slice(&nr_ioas.to_le_bytes());
    blob[20..24].copy_from_slice(&nr_maps32.to_le_bytes());
    let (table, mut maps) = blob[HEADER_LEN..total].split_at_mut(ioases.len() * IOAS_LEN);
    for (ioas, out) in ioases.iter().zip(table.chunks_exact_mut(IOAS_LEN)) {
        // Fits: the total fits a u32.
        let count = ioas.mappings.len() as u32;
        out[0..4].copy_from_slice(&ioas.id.to_le_bytes());
        out[4..8].copy_from_slice(&count.to_le_bytes());
        for m in ioas.mappings {
            let (out, rest) = maps.split_at_mut(MAP_LEN);
            m.write(out);
            maps = rest;
        }
    }
    Ok(total)
}

/// A checked record, borrowed from its blob.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Record<'a> {
    /// The iommufd's RLIMIT accounting mode.
    pub(crate) account_mode: u32,
    table: &'a [u8],
    maps: &'a [u8],
}

impl<'a> Record<'a> {
    /// Its IOASes, by rising id, each with its mappings.
    pub(crate) fn ioases(
        &self,
    ) -> impl Iterator<Item = (u32, impl Iterator<Item = Mapping> + 'a)> + 'a {
        let mut maps = self.maps;
        self.table.chunks_exact(IOAS_LEN).map(move |entry| {
            let count = u32_at(entry, 4) as usize;
            // Checked by `decode`: the counts add up to the mappings.
            let (mine, rest) = maps.split_at(count * MAP_LEN);
            maps = rest;
            (
                u32_at(entry, 0),
                mine.chunks_exact(MAP_LEN).map(Mapping::read),
            )
        })
    }
}

/// Checks the record in `blob`, whose mappings may name files below
/// `files`, and gives it.
pub(crate) fn decode(blob: &[u8], files: u32) -> Result<Record<'_>, FormatError> {
    let head = blob.get(..HEADER_LEN).ok_or(FormatError::Magic)?;
    if head[..8] != MAGIC {
        return Err(FormatError::Magic);
    }
    if u32_at(head, 8) != VERSION {
        return Err(FormatError::Version);
    }
    let nr_ioas = u32_at(head, 16) as usize;
    let nr_maps = u32_at(head, 20) as usize;
    let total = len(nr_ioas, nr_maps).ok_or(FormatError::Length)?;
    let body = blob.get(HEADER_LEN..total).ok_or(FormatError::Length)?;
    let (table, maps) = body.split_at(nr_ioas * IOAS_LEN);
    let mut counted: usize = 0;
    let mut prev = 0;
    for entry in table.chunks_exact(IOAS_LEN) {
        let count = u32_at(entry, 4) as usize;
        let start = counted;
        counted = counted.checked_add(count).ok_or(FormatError::Length)?;
        if counted > nr_maps {
            return Err(FormatError::Length);
        }
        let mine = &maps[start * MAP_LEN..counted * MAP_LEN];
        let id = u32_at(entry, 0);
        check_ioas(
            prev,
            id,
            mine.chunks_exact(MAP_LEN).map(Mapping::read),
            files,
        )?;
        prev = id;
    }
    if counted != nr_maps {
        return Err(FormatError::Length);
    }
    Ok(Record {
        account_mode: u32_at(head, 12),
        table,
        maps,
    })
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(word)
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Mapping = Mapping {
        iova: 0x10_0000,
        length: 0x10_0000,
        offset: 0,
        file: 0,
        prot: PROT_READ,
    };
    const B: Mapping = Mapping {
        iova: 0x40_0000,
        length: 0x1000,
        offset: 0x10_0000,
        file: 1,
        prot: PROT_READ | PROT_WRITE,
    };

    fn encoded(ioases: &[Ioas<'_>], files: u32) -> Vec<u8> {
        let n = ioases.iter().map(|i| i.mappings.len()).sum();
        let mut blob = vec![0xa5u8; len(ioases.len(), n).unwrap()];
        assert_eq!(encode(&mut blob, 1, ioases, files), Ok(blob.len()));
        blob
    }

    fn listed(record: &Record<'_>) -> Vec<(u32, Vec<Mapping>)> {
        record
            .ioases()
            .map(|(id, maps)| (id, maps.collect()))
            .collect()
    }

    #[test]
    fn a_record_round_trips() {
        let ioases = [
            Ioas {
                id: 1,
                mappings: &[A, B],
            },
            Ioas {
                id: 3,
                mappings: &[],
            },
            Ioas {
                id: MAX_ID,
                mappings: &[B],
            },
        ];
        let blob = encoded(&ioases, 2);
        assert_eq!(blob.len(), HEADER_LEN + 3 * IOAS_LEN + 3 * MAP_LEN);
        assert_eq!(&blob[..8], b"LUOIOMMU");
        let record = decode(&blob, 2).unwrap();
        assert_eq!(record.account_mode, 1);
        assert_eq!(
            listed(&record),
            [(1, vec![A, B]), (3, vec![]), (MAX_ID, vec![B])]
        );
        // An iommufd without IOASes.
        let blob = encoded(&[], 0);
        assert_eq!(listed(&decode(&blob, 0).unwrap()), []);
    }

    #[test]
    fn a_blob_never_written_or_cut_short_is_refused() {
        assert_eq!(decode(&[0u8; 4096], 4).unwrap_err(), FormatError::Magic);
        assert_eq!(decode(&MAGIC, 4).unwrap_err(), FormatError::Magic);
        let blob = encoded(
            &[Ioas {
                id: 1,
                mappings: &[A, B],
            }],
            2,
        );
        for cut in HEADER_LEN..blob.len() {
            assert_eq!(decode(&blob[..cut], 2).unwrap_err(), FormatError::Length);
        }
        let mut bad = blob.clone();
        bad[8] = 2;
        assert_eq!(decode(&bad, 2).unwrap_err(), FormatError::Version);
        // Counts that overflow, or disagree with the table.
        for (at, value) in [
            (16, u32::MAX),
            (20, u32::MAX),
            (20, 1),
            (20, 3),
            (28, 1),
            (28, 3),
        ] {
            let mut bad = blob.clone();
            bad[at..at + 4].copy_from_slice(&value.to_le_bytes());
            assert_eq!(
                decode(&bad, 2).unwrap_err(),
                FormatError::Length,
                "{at}={value}"
            );
        }
    }

    #[test]
    fn ids_must_rise_within_iommufds_range() {
        let blob = encoded(
            &[
                Ioas {
                    id: 2,
                    mappings: &[],
                },
                Ioas {
                    id: 5,
                    mappings: &[],
                },
            ],
            0,
        );
        for (first, second) in [(0, 5), (5, 5), (6, 5), (2, MAX_ID + 1)] {
            let mut bad = blob.clone();
            bad[24..28].copy_from_slice(&u32::to_le_bytes(first));
            bad[32..36].copy_from_slice(&u32::to_le_bytes(second));
            assert_eq!(
                decode(&bad, 0).unwrap_err(),
                FormatError::Id,
                "{first} {second}"
            );
        }
        let mut room = vec![0u8; len(2, 0).unwrap()];
        let same = [
            Ioas {
                id: 4,
                mappings: &[],
            },
            Ioas {
                id: 4,
                mappings: &[],
            },
        ];
        assert_eq!(encode(&mut room, 0, &same, 0), Err(FormatError::Id));
    }

    #[test]
    fn bad_mappings_are_refused() {
        let top = Mapping {
            iova: u64::MAX - 0xfff,
            length: 0x1000,
            ..A
        };
        // The top of the IOVA space can be mapped, once.
        let blob = encoded(
            &[Ioas {
                id: 1,
                mappings: &[A, top],
            }],
            1,
        );
        assert!(decode(&blob, 1).is_ok());
        let bad_ones = [
            vec![Mapping { length: 0, ..A }],
            vec![Mapping {
                length: 0x1001,
                ..top
            }],
            vec![Mapping {
                offset: u64::MAX,
                ..A
            }],
            vec![Mapping { prot: 0, ..A }],
            vec![Mapping { prot: 4, ..A }],
            vec![Mapping { file: 1, ..A }],
            // Overlapping, or out of order.
            vec![
                A,
                Mapping {
                    iova: A.iova + A.length - 1,
                    ..A
                },
            ],
            vec![B, A],
            vec![
                top,
                Mapping {
                    iova: u64::MAX,
                    length: 1,
                    ..A
                },
            ],
        ];
        for maps in bad_ones {
            let mut room = vec![0u8; len(1, maps.len()).unwrap()];
            let ioas = [Ioas {
                id: 1,
                mappings: &maps,
            }];
            assert_eq!(
                encode(&mut room, 0, &ioas, 1),
                Err(FormatError::Mapping),
                "{maps:?}"
            );
            // The same bytes, written by hand, are refused by the reader.
            room[..8].copy_from_slice(&MAGIC);
            room[8..12].copy_from_slice(&VERSION.to_le_bytes());
            room[16..20].copy_from_slice(&1u32.to_le_bytes());
            room[20..24].copy_from_slice(&(maps.len() as u32).to_le_bytes());
            room[24..28].copy_from_slice(&1u32.to_le_bytes());
            room[28..32].copy_from_slice(&(maps.len() as u32).to_le_bytes());
            for (m, out) in maps.iter().zip(room[32..].chunks_exact_mut(MAP_LEN)) {
                m.write(out);
            }
            assert_eq!(
                decode(&room, 1).unwrap_err(),
                FormatError::Mapping,
                "{maps:?}"
            );
        }
    }

    #[test]
    fn too_little_room_is_refused() {
        let ioases = [Ioas {
            id: 1,
            mappings: &[A],
        }];
        let mut room = vec![0u8; len(1, 1).unwrap() - 1];
        assert_eq!(encode(&mut room, 0, &ioases, 1), Err(FormatError::Length));
    }
}
