// SPDX-License-Identifier: GPL-2.0

//! Host tests of `handlers/memfd_format.rs` (a child module of it);
//! compiled only with `cfg(test)`.

use super::*;

fn sample() -> Header {
    let mut name = [0u8; NAME_MAX];
    name[..9].copy_from_slice(b"memfd:kv1");
    Header {
        kind: Kind::Memfd,
        version: VERSION,
        flags: 0x1f,
        size: 3 * PAGE_SIZE + 1,
        pos: 77,
        nr_entries: 2,
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

/// A guest_memfd's record: version 2, no name, position or mode.
fn guest_sample() -> Header {
    Header {
        kind: Kind::GuestMemfd,
        flags: 0x3,
        pos: 0,
        mode: 0,
        name: [0; NAME_MAX],
        name_len: 0,
        ..sample()
    }
}

#[test]
fn guest_memfd_header_round_trip() {
    let mut page = [0xffu8; 4096];
    let h = guest_sample();
    h.encode(&mut page).unwrap();
    assert_eq!(&page[0..8], b"LUOGMEMF");
    assert_eq!(Header::decode(&page), Ok(h));
}

#[test]
fn guest_memfd_headers_have_no_memfd_fields() {
    let mut page = [0u8; 4096];
    guest_sample().encode(&mut page).unwrap();
    let cases: [(usize, &[u8], FormatError); 5] = [
        // Only version 2 exists for a guest_memfd.
        (8, &VERSION_1.to_le_bytes(), FormatError::Header),
        (24, &1u64.to_le_bytes(), FormatError::Field),
        (40, &0o600u32.to_le_bytes(), FormatError::Field),
        (44, &1u32.to_le_bytes(), FormatError::Field),
        (0, b"LUOGMEMX", FormatError::Header),
    ];
    for (at, bytes, want) in cases {
        let mut bad = page;
        bad[at..at + bytes.len()].copy_from_slice(bytes);
        assert_eq!(Header::decode(&bad), Err(want), "byte {at}");
    }
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
    let cases: [(usize, &[u8], FormatError); 9] = [
        (0, b"X", FormatError::Header),
        (8, &3u32.to_le_bytes(), FormatError::Header),
        (8, &0u32.to_le_bytes(), FormatError::Header),
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

#[test]
fn the_first_release_is_still_read() {
    let mut page = [0u8; 4096];
    let mut h = sample();
    h.version = VERSION_1;
    h.encode(&mut page).unwrap();
    assert_eq!(&page[8..12], &1u32.to_le_bytes());
    assert_eq!(Header::decode(&page), Ok(h));
}

#[test]
fn where_the_list_is_matches_its_length() {
    let mut page = [0u8; 4096];
    let mut h = sample();
    // Version 2: up to INLINE_RUNS runs in the header page.
    h.size = 1 << 30;
    h.list = [0; LIST_DESC_LEN];
    for (n, ok) in [
        (0, true),
        (1, true),
        (INLINE_RUNS, true),
        (INLINE_RUNS + 1, false),
    ] {
        h.nr_entries = n as u64;
        h.encode(&mut page).unwrap();
        assert_eq!(Header::decode(&page).is_ok(), ok, "{n} inline runs");
        assert_eq!(
            Header::decode(&page).map(|h| h.list_inline()),
            ok.then_some(true).ok_or(FormatError::Field)
        );
    }
    // A list of its own is never empty.
    h.list = [7; LIST_DESC_LEN];
    h.nr_entries = 0;
    h.encode(&mut page).unwrap();
    assert_eq!(Header::decode(&page), Err(FormatError::Field));
    // Version 1 has no inline list.
    h.version = VERSION_1;
    h.list = [0; LIST_DESC_LEN];
    h.nr_entries = 1;
    h.encode(&mut page).unwrap();
    assert_eq!(Header::decode(&page), Err(FormatError::Field));
    h.nr_entries = 0;
    h.encode(&mut page).unwrap();
    assert!(Header::decode(&page).is_ok());
    assert_eq!(INLINE_RUNS, 236);
}

#[test]
fn runs_grow_only_with_what_follows_them() {
    let mut r = Run::one(0x10_0000, 8, 0);
    assert!(r.extend(0x10_1000, 9, 0, Runs::Ascending));
    assert!(r.extend(0x10_2000, 10, 0, Runs::Ascending));
    assert_eq!((r.count, r.pages(), r.end()), (3, 3, 11));
    assert!(
        !r.extend(0x10_4000, 11, 0, Runs::Ascending),
        "a gap in memory"
    );
    assert!(
        !r.extend(0x10_3000, 12, 0, Runs::Ascending),
        "a gap in the file"
    );
    assert!(
        !r.extend(0x10_3000, 11, 1, Runs::Ascending),
        "another order"
    );
    assert!(!r.extend(0x10_2000, 11, 0, Runs::Ascending), "backwards");
    // Large folios: 2 MiB each.
    let mut big = Run::one(0x4000_0000, 512, 9);
    assert!(big.extend(0x4020_0000, 1024, 9, Runs::Ascending));
    assert_eq!(big.pages(), 1024);
    // At most COUNT_MAX folios a run.
    let mut full = Run::one(0, 0, 0);
    for k in 1..Run::COUNT_MAX {
        assert!(full.extend(k * PAGE_SIZE, k, 0, Runs::Ascending));
    }
    assert!(!full.extend(
        Run::COUNT_MAX * PAGE_SIZE,
        Run::COUNT_MAX,
        0,
        Runs::Ascending
    ));
    assert_eq!(full.count, Run::COUNT_MAX);
}

#[test]
fn runs_round_trip_and_list_their_folios() {
    let pages = 1 << 20;
    let mut full = Run::one(0xfff_ffff_f000, (1 << 20) - 4096, 0);
    full.count = Run::COUNT_MAX;
    for run in [
        Run::one(0x1000, 0, 0),
        Run::one(0x20_0000, 512, 9),
        Run {
            phys: 0x5000,
            index: 3,
            order: 0,
            count: 17,
            dir: Direction::Up,
        },
        full,
    ] {
        assert_eq!(Run::decode(run.encode(), pages, Runs::Ascending), Ok(run));
    }
    let r = Run {
        phys: 0x40_0000,
        index: 1024,
        order: 9,
        count: 3,
        dir: Direction::Up,
    };
    let folios: Vec<(u64, u64)> = r.folios().collect();
    assert_eq!(
        folios,
        [(0x40_0000, 1024), (0x60_0000, 1536), (0x80_0000, 2048)]
    );
}

#[test]
fn runs_may_go_down_where_the_format_allows() {
    // Pages handed out from high addresses down: one run, not three.
    let mut r = Run::one(0x10_5000, 8, 0);
    let mut ascending = r;
    assert!(!ascending.extend(0x10_4000, 9, 0, Runs::Ascending));
    assert!(r.extend(0x10_4000, 9, 0, Runs::EitherWay));
    assert_eq!(r.dir, Direction::Down);
    assert!(r.extend(0x10_3000, 10, 0, Runs::EitherWay));
    assert!(!r.extend(0x10_6000, 11, 0, Runs::EitherWay), "up again");
    assert!(
        !r.extend(0x10_1000, 11, 0, Runs::EitherWay),
        "a gap in memory"
    );
    assert!(
        !r.extend(0x10_2000, 12, 0, Runs::EitherWay),
        "a gap in the file"
    );
    assert_eq!((r.count, r.end()), (3, 11));
    let folios: Vec<(u64, u64)> = r.folios().collect();
    assert_eq!(folios, [(0x10_5000, 8), (0x10_4000, 9), (0x10_3000, 10)]);
    // A run going up stays up.
    let mut up = Run::one(0x10_5000, 8, 0);
    assert!(up.extend(0x10_6000, 9, 0, Runs::EitherWay));
    assert!(!up.extend(0x10_4000, 10, 0, Runs::EitherWay));
    // Large folios, down.
    let mut big = Run::one(0x4020_0000, 512, 9);
    assert!(big.extend(0x4000_0000, 1024, 9, Runs::EitherWay));
    assert_eq!(big.folio(1), (0x4000_0000, 1024));
    // Nothing below address 0.
    let mut low = Run::one(0, 0, 0);
    assert!(!low.extend(0u64.wrapping_sub(PAGE_SIZE), 1, 0, Runs::EitherWay));
}

#[test]
fn runs_going_down_round_trip_only_where_allowed() {
    let pages = 1 << 20;
    let mut r = Run::one(0x40_0000, 1024, 9);
    assert!(r.extend(0x20_0000, 1536, 9, Runs::EitherWay));
    assert!(r.extend(0, 2048, 9, Runs::EitherWay));
    let words = r.encode();
    assert_eq!(words[0] & 0xfff, 0x800 | 9);
    assert_eq!(Run::decode(words, pages, Runs::EitherWay), Ok(r));
    assert_eq!(
        Run::decode(words, pages, Runs::Ascending),
        Err(FormatError::Folio),
        "a format with runs going up only"
    );
    // Its last folio would lie below address 0.
    let below = Run {
        phys: 0x20_0000,
        index: 0,
        order: 9,
        count: 3,
        dir: Direction::Down,
    };
    assert_eq!(
        Run::decode(below.encode(), pages, Runs::EitherWay),
        Err(FormatError::Folio)
    );
}

#[test]
fn bad_runs_are_refused() {
    let pages = 1024;
    let ok = Run::one(0x20_0000, 512, 9).encode();
    assert!(Run::decode(ok, pages, Runs::Ascending).is_ok());
    let cases: [([u64; 2], &str); 6] = [
        ([0x20_0000 | 40, 512], "order too high"),
        ([0x20_0000 | (1 << 6) | 9, 512], "bits above the order"),
        ([0x10_0000 | 9, 512], "address not aligned to the folio"),
        ([0x20_0000 | 9, 256], "index not aligned to the folio"),
        ([0x20_0000 | 9, 1024], "starts past the end"),
        ([!0xfff, 5 << 52], "address overflows"),
    ];
    for (words, why) in cases {
        assert_eq!(
            Run::decode(words, pages, Runs::EitherWay),
            Err(FormatError::Folio),
            "{why}"
        );
    }
}

/// A memfd's version 3 record: `n` runs of one folio each.
fn state_sample(n: usize) -> (Header, Vec<[u64; 2]>) {
    let runs: Vec<[u64; 2]> = (0..n as u64)
        .map(|i| Run::one(0x10_0000 + 0x3000 * i, i, 0).encode())
        .collect();
    let h = Header {
        version: VERSION_3,
        nr_entries: n as u64,
        list: [0; LIST_DESC_LEN],
        ..sample()
    };
    (h, runs)
}

fn encoded_state(h: &Header, runs: &[[u64; 2]]) -> Vec<u8> {
    let mut out = vec![0u8; h.state_len()];
    h.encode_state(runs, &mut out).unwrap();
    out
}

#[test]
fn states_round_trip() {
    for n in 0..=STATE_RUNS {
        let (h, runs) = state_sample(n);
        let b = encoded_state(&h, &runs);
        assert_eq!(b.len(), STATE_FIXED + 16 * n + 9);
        let (back, back_runs) = Header::decode_state(&b).unwrap();
        assert_eq!(back, h);
        assert_eq!(back.name(), b"memfd:kv1");
        assert!(back.list_inline());
        assert_eq!(back_runs.pairs(), &runs[..]);
    }
    // The longest name, and none.
    for len in [NAME_MAX, 0] {
        let (mut h, runs) = state_sample(1);
        h.name = [b'n'; NAME_MAX];
        h.name_len = len;
        let b = encoded_state(&h, &runs);
        assert!(b.len() <= STATE_LEN_MAX);
        assert_eq!(Header::decode_state(&b).unwrap().0.name(), &h.name[..len]);
    }
}

#[test]
fn a_state_that_cannot_be_written_is_not() {
    let (h, runs) = state_sample(2);
    let mut out = vec![0u8; h.state_len()];
    // Runs and count disagree, too many runs, wrong room, not a memfd.
    assert!(h.encode_state(&runs[..1], &mut out).is_err());
    let (many, many_runs) = state_sample(STATE_RUNS + 1);
    let mut big = vec![0u8; many.state_len()];
    assert!(many.encode_state(&many_runs, &mut big).is_err());
    assert!(h.encode_state(&runs, &mut out[1..]).is_err());
    let guest = Header {
        kind: Kind::GuestMemfd,
        ..h
    };
    assert!(guest.encode_state(&runs, &mut out).is_err());
    assert!(h.encode_state(&runs, &mut out).is_ok());
}

#[test]
fn bad_states_are_refused() {
    let (h, runs) = state_sample(2);
    let good = encoded_state(&h, &runs);
    assert!(Header::decode_state(&good).is_ok());
    // Every truncation, and one byte more.
    for len in 0..good.len() {
        assert!(Header::decode_state(&good[..len]).is_err(), "{len}");
    }
    let mut longer = good.clone();
    longer.push(b'x');
    assert!(Header::decode_state(&longer).is_err());
    // Fields out of range: size, position, more runs than pages or than a
    // state holds, mode, name length, a NUL in the name.
    let bad: [(usize, &[u8]); 8] = [
        (0, &(SIZE_MAX + 1).to_le_bytes()),
        (8, &(SIZE_MAX + 1).to_le_bytes()),
        (16, &5u64.to_le_bytes()),
        (16, &3u64.to_le_bytes()),
        (28, &0o1000u16.to_le_bytes()),
        (30, &257u16.to_le_bytes()),
        (30, &10u16.to_le_bytes()),
        (STATE_FIXED + 32 + 3, b"\0"),
    ];
    for (at, bytes) in bad {
        let mut b = good.clone();
        b[at..at + bytes.len()].copy_from_slice(bytes);
        assert_eq!(Header::decode_state(&b), Err(FormatError::Field), "at {at}");
    }
}

/// Folios laid out at random (up, down, or anywhere), gathered into runs as
/// PRESERVE_FD does, come back from the encoded runs as they were.
#[test]
fn any_layout_round_trips_through_runs() {
    let mut seed = 12345u64;
    let mut rnd = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..200 {
        let n = 1 + rnd() % 300;
        let mut folios = Vec::new();
        let mut phys = 0x1000_0000u64 + (rnd() % 1000) * PAGE_SIZE;
        for i in 0..n {
            folios.push((phys, i));
            phys = match rnd() % 3 {
                0 => phys + PAGE_SIZE,
                1 => phys - PAGE_SIZE,
                _ => 0x1000_0000 + (rnd() % 100000) * PAGE_SIZE,
            };
        }
        let mut runs: Vec<Run> = Vec::new();
        for &(p, i) in &folios {
            if let Some(last) = runs.last_mut() {
                if last.extend(p, i, 0, Runs::EitherWay) {
                    continue;
                }
            }
            runs.push(Run::one(p, i, 0));
        }
        let mut back = Vec::new();
        for r in &runs {
            let d = Run::decode(r.encode(), 1 << 20, Runs::EitherWay).unwrap();
            assert_eq!(&d, r);
            back.extend(d.folios());
        }
        assert_eq!(back, folios);
    }
}
