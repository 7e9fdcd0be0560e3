// SPDX-License-Identifier: GPL-2.0

//! Host tests of `handlers/memfd_format.rs` (a child module of it);
//! compiled only with `cfg(test)`.

use super::*;

fn sample() -> Header {
    let mut name = [0u8; NAME_MAX];
    name[..9].copy_from_slice(b"memfd:kv1");
    Header {
        seals: 0x1f,
        size: 3 * PAGE_SIZE + 1,
        pos: 77,
        nr_folios: 2,
        mode: 0o600,
        list: [7; LIST_DESC_LEN],
        name,
        name_len: 9,
    }
}

#[test]
fn header_round_trip() {
    let mut page = [0xffu8; 4096];
    let h = sample();
    h.encode(&mut page).unwrap();
    let back = Header::decode(&page).unwrap();
    assert_eq!(back, h);
    assert_eq!(back.name(), b"memfd:kv1");
    assert_eq!(&page[0..8], b"LUOMEMFD");
}

#[test]
fn header_needs_room() {
    let mut small = [0u8; HEADER_LEN - 1];
    assert_eq!(sample().encode(&mut small), Err(FormatError::Field));
    assert_eq!(Header::decode(&small), Err(FormatError::Header));
}

#[test]
fn bad_headers_are_refused() {
    let mut page = [0u8; 4096];
    sample().encode(&mut page).unwrap();
    let cases: [(usize, &[u8], FormatError); 8] = [
        (0, b"X", FormatError::Header),
        (8, &2u32.to_le_bytes(), FormatError::Header),
        (16, &u64::MAX.to_le_bytes(), FormatError::Field),
        (24, &(1u64 << 63).to_le_bytes(), FormatError::Field),
        // More folios than pages.
        (32, &5u64.to_le_bytes(), FormatError::Field),
        (40, &0o1777u32.to_le_bytes(), FormatError::Field),
        (44, &257u32.to_le_bytes(), FormatError::Field),
        // A NUL inside the name.
        (66, &[0], FormatError::Field),
    ];
    for (at, bytes, want) in cases {
        let mut bad = page;
        bad[at..at + bytes.len()].copy_from_slice(bytes);
        assert_eq!(Header::decode(&bad), Err(want), "byte {at}");
    }
}

#[test]
fn every_truncation_is_refused() {
    let mut page = [0u8; HEADER_LEN];
    sample().encode(&mut page).unwrap();
    for len in 0..HEADER_LEN {
        assert!(Header::decode(&page[..len]).is_err(), "length {len}");
    }
}

#[test]
fn folios_in_order_inside_the_file() {
    // 1 GiB file.
    let mut c = FolioCheck::new(1 << 30);
    c.accept(0, 1).unwrap();
    c.accept(1, 1).unwrap();
    // A 2 MiB folio, aligned.
    c.accept(512, 512).unwrap();
    c.accept(1024, 1).unwrap();
    assert_eq!(c.accept(1024, 1), Err(FormatError::Folio), "repeated");
    assert_eq!(c.accept(1000, 1), Err(FormatError::Folio), "backwards");
    assert_eq!(c.accept(1025, 0), Err(FormatError::Folio), "empty");
    assert_eq!(c.accept(1026, 3), Err(FormatError::Folio), "not 2^n");
    assert_eq!(c.accept(1026, 4), Err(FormatError::Folio), "unaligned");
    assert_eq!(
        c.accept(262_144, 1),
        Err(FormatError::Folio),
        "past the end"
    );
    assert_eq!(c.accept(u64::MAX, 2), Err(FormatError::Folio), "overflow");
    c.accept(262_143, 1).unwrap();
}

#[test]
fn a_large_folio_may_reach_past_the_end() {
    // 4 KiB file in a 2 MiB folio, as shmem's huge=always gives.
    let mut c = FolioCheck::new(PAGE_SIZE);
    c.accept(0, 512).unwrap();
    let mut empty = FolioCheck::new(0);
    assert_eq!(empty.accept(0, 1), Err(FormatError::Folio));
}
