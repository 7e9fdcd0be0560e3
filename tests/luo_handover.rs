// SPDX-License-Identifier: GPL-2.0

//! Host tests of `luo_handover.rs` (a child module of it, so private items
//! are in reach); compiled only with `cfg(test)`.

use super::*;
use crate::luo_uapi::NAME_LEN;

/// A record in one blob.
fn encode(
    h: &Handover,
    sessions: &[SessionRecord<'_>],
    subsystems: &[SubsystemRecord<'_>],
    out: &mut [u8],
) -> Result<usize, FdtError> {
    encode_part(h, Part::WHOLE, &[], sessions, subsystems, out)
}

/// The root fields of a record in one blob (or of its first).
fn decode(blob: &[u8], sink: &mut impl Sink) -> Result<Handover, FdtError> {
    decode_first(blob, sink).map(|(h, _)| h)
}

fn name(s: &str) -> Name {
    let mut f = [0u8; NAME_LEN];
    f[..s.len()].copy_from_slice(s.as_bytes());
    Name::parse(&f).unwrap()
}

/// Collects what `decode` reports, checking uniqueness like the core.
#[derive(Default)]
struct Collect {
    sessions: Vec<(Name, Vec<(Vec<u8>, u64, u64)>)>,
    owners: Vec<u32>,
    subsystems: Vec<(Vec<u8>, u64)>,
    /// Every file's dependencies, in the order reported.
    depends: Vec<Vec<u64>>,
}

impl Sink for Collect {
    fn session(&mut self, name: Name, owner: u32) -> Result<(), FdtError> {
        let same = |(i, (n, _)): (usize, &(Name, _))| *n == name && self.owners[i] == owner;
        if self.sessions.iter().enumerate().any(same) {
            return Err(FdtError::BadValue);
        }
        self.sessions.push((name, Vec::new()));
        self.owners.push(owner);
        Ok(())
    }
    fn file(&mut self, f: FileRecord<'_>) -> Result<(), FdtError> {
        let files = &mut self.sessions.last_mut().ok_or(FdtError::BadToken)?.1;
        if files.iter().any(|(_, t, _)| *t == f.token) {
            return Err(FdtError::BadValue);
        }
        files.push((f.compatible.to_vec(), f.token, f.data));
        self.depends.push(f.depends.tokens().collect());
        Ok(())
    }
    fn subsystem(&mut self, s: SubsystemRecord<'_>) -> Result<(), FdtError> {
        if self.subsystems.iter().any(|(c, _)| c == s.compatible) {
            return Err(FdtError::BadValue);
        }
        self.subsystems.push((s.compatible.to_vec(), s.data));
        Ok(())
    }
}

const H: Handover = Handover {
    generation: 3,
    boot_id: 0x0123_4567_89ab_cdef,
};

fn sample(out: &mut [u8]) -> usize {
    let a = [
        FileRecord {
            compatible: b"luo-rs,test-v1",
            token: 0,
            data: 0x1000,
            depends: Depends::NONE,
            state: &[],
        },
        FileRecord {
            compatible: b"memfd",
            token: u64::MAX,
            data: 7,
            depends: Depends::NONE,
            state: &[],
        },
    ];
    let sessions = [
        SessionRecord {
            name: name("vm-1"),
            owner: 1000,
            files: &a,
        },
        SessionRecord {
            name: name("empty"),
            owner: 0,
            files: &[],
        },
    ];
    let subsystems = [SubsystemRecord {
        compatible: b"luo-rs,test-subsystem-v1",
        data: 0xfeed,
    }];
    encode(&H, &sessions, &subsystems, out).unwrap()
}

#[test]
fn round_trip() {
    let mut buf = [0u8; 2048];
    let n = sample(&mut buf);
    let mut c = Collect::default();
    assert_eq!(decode(&buf[..n], &mut c), Ok(H));
    assert_eq!(c.sessions.len(), 2);
    assert_eq!(c.sessions[0].0, name("vm-1"));
    assert_eq!(
        c.sessions[0].1,
        vec![
            (b"luo-rs,test-v1".to_vec(), 0, 0x1000),
            (b"memfd".to_vec(), u64::MAX, 7)
        ]
    );
    assert_eq!(c.sessions[1].0, name("empty"));
    assert_eq!(c.owners, vec![1000, 0]);
    assert!(c.sessions[1].1.is_empty());
    assert_eq!(
        c.subsystems,
        vec![(b"luo-rs,test-subsystem-v1".to_vec(), 0xfeed)]
    );
}

#[test]
fn no_sessions() {
    let mut buf = [0u8; 512];
    let n = encode(&H, &[], &[], &mut buf).unwrap();
    let mut c = Collect::default();
    assert_eq!(decode(&buf[..n], &mut c), Ok(H));
    assert!(c.sessions.is_empty());
}

#[test]
fn small_buffer_asks_for_more() {
    let mut buf = [0u8; 100];
    let files = [FileRecord {
        compatible: b"x",
        token: 1,
        data: 2,
        depends: Depends::NONE,
        state: &[],
    }];
    let s = [SessionRecord {
        name: name("s"),
        owner: 1000,
        files: &files,
    }];
    assert_eq!(encode(&H, &s, &[], &mut buf), Err(FdtError::NoSpace));
}

#[test]
fn encoder_refuses_unnamed_sessions_and_bad_compatibles() {
    let mut buf = [0u8; 1024];
    let s = [SessionRecord {
        name: Name::NONE,
        owner: 1000,
        files: &[],
    }];
    assert_eq!(encode(&H, &s, &[], &mut buf), Err(FdtError::BadValue));
    let long = [b'c'; COMPATIBLE_MAX + 1];
    let files = [FileRecord {
        compatible: &long,
        token: 1,
        data: 2,
        depends: Depends::NONE,
        state: &[],
    }];
    let s = [SessionRecord {
        name: name("s"),
        owner: 1000,
        files: &files,
    }];
    assert_eq!(encode(&H, &s, &[], &mut buf), Err(FdtError::BadValue));
}

#[test]
fn duplicates_are_refused_by_the_sink() {
    let mut buf = [0u8; 1024];
    let s = [
        SessionRecord {
            name: name("same"),
            owner: 1000,
            files: &[],
        },
        SessionRecord {
            name: name("same"),
            owner: 1000,
            files: &[],
        },
    ];
    let n = encode(&H, &s, &[], &mut buf).unwrap();
    assert_eq!(
        decode(&buf[..n], &mut Collect::default()),
        Err(FdtError::BadValue)
    );
    let f = FileRecord {
        compatible: b"x",
        token: 5,
        data: 0,
        depends: Depends::NONE,
        state: &[],
    };
    let files = [f, f];
    let s = [SessionRecord {
        name: name("s"),
        owner: 1000,
        files: &files,
    }];
    let n = encode(&H, &s, &[], &mut buf).unwrap();
    assert_eq!(
        decode(&buf[..n], &mut Collect::default()),
        Err(FdtError::BadValue)
    );
}

#[test]
fn same_name_of_two_owners_is_two_sessions() {
    let mut buf = [0u8; 1024];
    let s = [
        SessionRecord {
            name: name("vm"),
            owner: 1000,
            files: &[],
        },
        SessionRecord {
            name: name("vm"),
            owner: 1001,
            files: &[],
        },
    ];
    let n = encode(&H, &s, &[], &mut buf).unwrap();
    let mut c = Collect::default();
    assert_eq!(decode(&buf[..n], &mut c), Ok(H));
    assert_eq!(c.owners, vec![1000, 1001]);
}

#[test]
fn owner_is_root_when_absent_and_bounded_when_present() {
    let blob = handmade(|w| {
        w.begin_node_at("session", 0).unwrap();
        w.prop_str("session-name", "old").unwrap();
        w.end_node().unwrap();
    });
    let mut c = Collect::default();
    assert_eq!(
        decode(&blob, &mut c),
        Ok(Handover {
            generation: 1,
            boot_id: 2
        })
    );
    assert_eq!(c.owners, vec![0]);
    let blob = handmade(|w| {
        w.begin_node_at("session", 0).unwrap();
        w.prop_str("session-name", "big").unwrap();
        w.prop_u64("owner", 1 << 32).unwrap();
        w.end_node().unwrap();
    });
    assert_eq!(
        decode(&blob, &mut Collect::default()),
        Err(FdtError::BadValue)
    );
}

#[test]
fn the_last_generation_is_refused() {
    let mut buf = [0u8; 512];
    let last = Handover {
        generation: u64::MAX,
        boot_id: 1,
    };
    let n = encode(&last, &[], &[], &mut buf).unwrap();
    assert_eq!(
        decode(&buf[..n], &mut Collect::default()),
        Err(FdtError::BadValue)
    );
    let almost = Handover {
        generation: u64::MAX - 1,
        boot_id: 1,
    };
    let n = encode(&almost, &[], &[], &mut buf).unwrap();
    assert_eq!(decode(&buf[..n], &mut Collect::default()), Ok(almost));
}

#[test]
fn a_first_release_record_is_read_with_root_owners() {
    let mut buf = vec![0u8; 1024];
    let mut strings = [0u8; 256];
    let mut w = FdtWriter::new(&mut buf, &mut strings).unwrap();
    w.begin_node("").unwrap();
    w.prop_str("compatible", COMPATIBLE_V1).unwrap();
    w.prop_u64("generation", 4).unwrap();
    w.prop_u64("boot-id", 5).unwrap();
    w.begin_node_at("session", 0).unwrap();
    w.prop_str("session-name", "old-vm").unwrap();
    // Not a v1 property: ignored, whatever it says.
    w.prop_u64("owner", 1000).unwrap();
    w.end_node().unwrap();
    w.end_node().unwrap();
    let n = w.finish().unwrap();
    let mut c = Collect::default();
    assert_eq!(
        decode(&buf[..n], &mut c),
        Ok(Handover {
            generation: 4,
            boot_id: 5
        })
    );
    assert_eq!(c.sessions[0].0, name("old-vm"));
    assert_eq!(c.owners, vec![0]);
}

/// Builds a blob by hand, for shapes `encode` never writes.
fn handmade(build: impl FnOnce(&mut FdtWriter<'_>)) -> Vec<u8> {
    handmade_as(COMPATIBLE, build)
}

fn handmade_as(compatible: &str, build: impl FnOnce(&mut FdtWriter<'_>)) -> Vec<u8> {
    let mut buf = vec![0u8; 4096];
    let mut strings = [0u8; 256];
    let mut w = FdtWriter::new(&mut buf, &mut strings).unwrap();
    w.begin_node("").unwrap();
    w.prop_str("compatible", compatible).unwrap();
    w.prop_u64("generation", 1).unwrap();
    w.prop_u64("boot-id", 2).unwrap();
    build(&mut w);
    w.end_node().unwrap();
    let n = w.finish().unwrap();
    buf.truncate(n);
    buf
}

#[test]
fn schema_violations_are_refused() {
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "unknown node",
            handmade(|w| {
                w.begin_node("other@0").unwrap();
                w.end_node().unwrap();
            }),
        ),
        (
            "session without name",
            handmade(|w| {
                w.begin_node("session@0").unwrap();
                w.end_node().unwrap();
            }),
        ),
        (
            "name too long",
            handmade(|w| {
                w.begin_node("session@0").unwrap();
                w.prop_bytes_str("session-name", &[b'n'; NAME_LEN]).unwrap();
                w.end_node().unwrap();
            }),
        ),
        (
            "name not a string",
            handmade(|w| {
                w.begin_node("session@0").unwrap();
                w.prop("session-name", b"abc").unwrap();
                w.end_node().unwrap();
            }),
        ),
        (
            "file without token",
            handmade(|w| {
                w.begin_node("session@0").unwrap();
                w.prop_str("session-name", "s").unwrap();
                w.begin_node("file@0").unwrap();
                w.prop_str("compatible", "x").unwrap();
                w.prop_u64("data", 1).unwrap();
                w.end_node().unwrap();
                w.end_node().unwrap();
            }),
        ),
        (
            "token of the wrong size",
            handmade(|w| {
                w.begin_node("session@0").unwrap();
                w.prop_str("session-name", "s").unwrap();
                w.begin_node("file@0").unwrap();
                w.prop_str("compatible", "x").unwrap();
                w.prop("token", &[0; 4]).unwrap();
                w.prop_u64("data", 1).unwrap();
                w.end_node().unwrap();
                w.end_node().unwrap();
            }),
        ),
        (
            "file outside a session",
            handmade(|w| {
                w.begin_node("file@0").unwrap();
                w.end_node().unwrap();
            }),
        ),
        (
            "subsystem without data",
            handmade(|w| {
                w.begin_node("subsystem@0").unwrap();
                w.prop_str("compatible", "x").unwrap();
                w.end_node().unwrap();
            }),
        ),
        (
            "subsystem with an empty compatible",
            handmade(|w| {
                w.begin_node("subsystem@0").unwrap();
                w.prop_str("compatible", "").unwrap();
                w.prop_u64("data", 1).unwrap();
                w.end_node().unwrap();
            }),
        ),
        (
            "file below a subsystem",
            handmade(|w| {
                w.begin_node("subsystem@0").unwrap();
                w.prop_str("compatible", "x").unwrap();
                w.prop_u64("data", 1).unwrap();
                w.begin_node("file@0").unwrap();
                w.prop_str("compatible", "x").unwrap();
                w.prop_u64("token", 1).unwrap();
                w.prop_u64("data", 1).unwrap();
                w.end_node().unwrap();
                w.end_node().unwrap();
            }),
        ),
        (
            "the same subsystem twice",
            handmade(|w| {
                for i in 0..2 {
                    w.begin_node_at("subsystem", i).unwrap();
                    w.prop_str("compatible", "x").unwrap();
                    w.prop_u64("data", i).unwrap();
                    w.end_node().unwrap();
                }
            }),
        ),
        (
            "node below a file",
            handmade(|w| {
                w.begin_node("session@0").unwrap();
                w.prop_str("session-name", "s").unwrap();
                w.begin_node("file@0").unwrap();
                w.begin_node("file@0").unwrap();
                w.end_node().unwrap();
                w.end_node().unwrap();
                w.end_node().unwrap();
            }),
        ),
    ];
    for (what, blob) in cases {
        assert!(decode(&blob, &mut Collect::default()).is_err(), "{what}");
    }
}

#[test]
fn subsystems_and_sessions_interleave() {
    let blob = handmade(|w| {
        w.begin_node("subsystem@0").unwrap();
        w.prop_str("compatible", "a").unwrap();
        w.prop_u64("data", 1).unwrap();
        w.end_node().unwrap();
        w.begin_node("session@0").unwrap();
        w.prop_str("session-name", "s").unwrap();
        w.end_node().unwrap();
        w.begin_node("subsystem@1").unwrap();
        w.prop_str("compatible", "b").unwrap();
        w.prop_u64("data", 2).unwrap();
        w.end_node().unwrap();
    });
    let mut c = Collect::default();
    assert!(decode(&blob, &mut c).is_ok());
    assert_eq!(c.sessions.len(), 1);
    assert_eq!(c.subsystems, vec![(b"a".to_vec(), 1), (b"b".to_vec(), 2)]);
}

#[test]
fn unknown_properties_are_ignored() {
    let blob = handmade(|w| {
        w.begin_node("session@0").unwrap();
        w.prop_str("session-name", "s").unwrap();
        w.prop_u64("flags-from-the-future", 1).unwrap();
        w.end_node().unwrap();
    });
    let mut c = Collect::default();
    assert!(decode(&blob, &mut c).is_ok());
    assert_eq!(c.sessions.len(), 1);
}

/// `tokens` as a `depends` property's bytes.
fn depends_bytes(tokens: &[u64]) -> Vec<u8> {
    tokens.iter().flat_map(|t| t.to_be_bytes()).collect()
}

#[test]
fn dependencies_round_trip() {
    let (one, two) = (depends_bytes(&[7]), depends_bytes(&[7, u64::MAX]));
    let file = |token, depends| FileRecord {
        compatible: b"luo-rs,test-v1",
        token,
        data: token,
        depends,
        state: &[],
    };
    let files = [
        file(7, Depends::NONE),
        file(u64::MAX, Depends::from_bytes(&one).unwrap()),
        file(3, Depends::from_bytes(&two).unwrap()),
    ];
    let sessions = [SessionRecord {
        name: name("vm"),
        owner: 0,
        files: &files,
    }];
    let mut buf = [0u8; 2048];
    let n = encode(&H, &sessions, &[], &mut buf).unwrap();
    assert!(n <= ROOT_ROOM + session_room(&sessions[0]));
    let mut c = Collect::default();
    assert_eq!(decode(&buf[..n], &mut c), Ok(H));
    assert_eq!(c.depends, vec![vec![], vec![7], vec![7, u64::MAX]]);
}

#[test]
fn malformed_depends_are_refused() {
    for len in [1, 7, 9, 8 * MAX_DEPENDS + 8] {
        let blob = handmade(|w| {
            w.begin_node("session@0").unwrap();
            w.prop_str("session-name", "s").unwrap();
            w.begin_node("file@0").unwrap();
            w.prop_str("compatible", "c").unwrap();
            w.prop_u64("token", 1).unwrap();
            w.prop_u64("data", 1).unwrap();
            w.prop("depends", &vec![0u8; len]).unwrap();
            w.end_node().unwrap();
            w.end_node().unwrap();
        });
        let mut c = Collect::default();
        assert_eq!(decode(&blob, &mut c), Err(FdtError::BadValue), "{len}");
    }
    assert!(Depends::from_bytes(&[0u8; 8 * MAX_DEPENDS]).is_some());
    assert!(Depends::from_bytes(&[]).is_some_and(|d| d.is_empty()));
}

#[test]
fn dependencies_name_earlier_files_only() {
    // Tokens 5, 9, 2 at positions 0, 1, 2; sorted by token.
    let tokens = [(2, 2), (5, 0), (9, 1)];
    let at = |position, list: &[u64]| {
        list.iter()
            .all(|&t| dependency_position(&tokens, position, t).is_some())
    };
    assert_eq!(dependency_position(&tokens, 2, 9), Some(1));
    assert_eq!(dependency_position(&tokens, 1, 5), Some(0));
    assert!(at(0, &[]));
    assert!(at(1, &[5]));
    assert!(at(2, &[5, 9]));
    // Itself, a later file, one that is not there.
    assert!(!at(1, &[9]));
    assert!(!at(0, &[9]));
    assert!(!at(2, &[5, 4]));
    assert!(!at(2, &[u64::MAX]));
}

/// An empty record whose format name ends in `version` instead.
fn record_of_version(version: u8) -> ([u8; 512], usize) {
    let mut buf = [0u8; 512];
    let n = encode(&H, &[], &[], &mut buf).unwrap();
    let pos = buf[..n]
        .windows(COMPATIBLE.len())
        .position(|w| w == COMPATIBLE.as_bytes())
        .unwrap();
    buf[pos + COMPATIBLE.len() - 1] = version;
    (buf, n)
}

#[test]
fn other_compatible_is_refused() {
    let (buf, n) = record_of_version(b'0');
    assert_eq!(
        decode(&buf[..n], &mut Collect::default()),
        Err(FdtError::BadValue)
    );
}

#[test]
fn a_newer_format_is_refused_as_such() {
    let (buf, n) = record_of_version(b'5');
    assert_eq!(
        decode(&buf[..n], &mut Collect::default()),
        Err(FdtError::BadVersion)
    );
}

#[test]
fn format_names_are_read_strictly() {
    assert_eq!(format(COMPATIBLE.as_bytes()), Ok(FORMAT));
    assert_eq!(format(COMPATIBLE_V3.as_bytes()), Ok(3));
    assert_eq!(format(COMPATIBLE_V2.as_bytes()), Ok(2));
    assert_eq!(format(COMPATIBLE_V1.as_bytes()), Ok(1));
    assert_eq!(format(b"luo-rs,handover-v10"), Err(FdtError::BadVersion));
    assert_eq!(
        format(b"luo-rs,handover-v999999999"),
        Err(FdtError::BadVersion)
    );
    for bad in [
        &b"luo-rs,handover-v"[..],
        b"luo-rs,handover-v0",
        b"luo-rs,handover-v02",
        b"luo-rs,handover-v2x",
        b"luo-rs,handover-v+3",
        b"luo-rs,handover-v1000000000",
        b"Luo-rs,handover-v2",
        b"luo-rs,handover-",
        b"",
    ] {
        assert_eq!(format(bad), Err(FdtError::BadValue), "{bad:?}");
    }
}

/// `n` sessions "s<i>" of `files` files each, names and compatibles as
/// long as allowed; the records borrow `store`.
fn big_sessions<'a>(files: &'a [FileRecord<'a>], n: usize) -> Vec<SessionRecord<'a>> {
    (0..n)
        .map(|i| SessionRecord {
            name: name(&format!("{i:0>63}")),
            owner: 1000 + i as u32,
            files,
        })
        .collect()
}

fn long_files() -> Vec<FileRecord<'static>> {
    // Handlers alternate and no data is 0: nothing is left out.
    let compatibles: [&'static [u8]; 2] = [&[b'c'; COMPATIBLE_MAX], &[b'd'; COMPATIBLE_MAX]];
    // Every tenth file depends on as many files as allowed.
    let most: &'static [u8] = Box::leak(vec![0xffu8; 8 * MAX_DEPENDS].into_boxed_slice());
    (0..40u64)
        .map(|t| FileRecord {
            compatible: compatibles[t as usize % 2],
            token: u64::MAX - t,
            data: t + 1,
            depends: if t % 10 == 9 {
                Depends::from_bytes(most).unwrap()
            } else {
                Depends::NONE
            },
            state: if t % 7 == 3 { &[0x5a; STATE_MAX] } else { &[] },
        })
        .collect()
}

#[test]
fn rooms_bound_what_a_blob_takes() {
    let files = long_files();
    let sessions = big_sessions(&files, 300);
    let subs = [SubsystemRecord {
        compatible: &[b's'; COMPATIBLE_MAX],
        data: 1,
    }];
    let list: Vec<(u64, u64)> = (1..MAX_PARTS)
        .map(|i| (u64::MAX - u64::from(i), 1))
        .collect();
    let room = ROOT_ROOM
        + PART_LIST_ROOM
        + sessions.iter().map(session_room).sum::<usize>()
        + subs.iter().map(subsystem_room).sum::<usize>();
    let mut buf = vec![0u8; room];
    let part = Part {
        index: 0,
        count: MAX_PARTS,
    };
    let n = encode_part(&H, part, &list, &sessions, &subs, &mut buf).unwrap();
    assert!(n <= room);
    // Close: the bound wastes little (node names are counted with 16 hex
    // digits).
    assert!(room - n < room / 5, "{n} of {room}");
}

/// Encodes `shares` as the blobs of one record, blob 0 listing the others
/// at made-up addresses 1, 2, ...
fn record_in_parts(shares: &[&[SessionRecord<'_>]], subs: &[SubsystemRecord<'_>]) -> Vec<Vec<u8>> {
    let count = shares.len() as u32;
    let mut blobs = vec![Vec::new(); shares.len()];
    let mut list = Vec::new();
    for index in (1..count).rev() {
        let mut buf = vec![0u8; 1 << 20];
        let part = Part { index, count };
        let n = encode_part(&H, part, &[], shares[index as usize], &[], &mut buf).unwrap();
        buf.truncate(n);
        blobs[index as usize] = buf;
    }
    for index in 1..count {
        list.push((u64::from(index) << 12, blobs[index as usize].len() as u64));
    }
    let mut buf = vec![0u8; 1 << 20];
    let part = Part { index: 0, count };
    let n = encode_part(&H, part, &list, shares[0], subs, &mut buf).unwrap();
    buf.truncate(n);
    blobs[0] = buf;
    blobs
}

#[test]
fn a_record_in_parts_round_trips() {
    let files = long_files();
    let sessions = big_sessions(&files, 30);
    let subs = [SubsystemRecord {
        compatible: b"luo-rs,test-subsystem-v1",
        data: 9,
    }];
    let shares = [&sessions[..10], &sessions[10..25], &sessions[25..]];
    let blobs = record_in_parts(&shares, &subs);
    let mut c = Collect::default();
    let (h, parts) = decode_first(&blobs[0], &mut c).unwrap();
    assert_eq!(h, H);
    assert_eq!(parts.count, 3);
    assert_eq!(parts.blob(1), Some((1 << 12, blobs[1].len() as u64)));
    assert_eq!(parts.blob(2), Some((2 << 12, blobs[2].len() as u64)));
    assert_eq!(parts.blob(0), None);
    assert_eq!(parts.blob(3), None);
    for (index, blob) in (1u32..).zip(&blobs[1..]) {
        let part = Part { index, count: 3 };
        assert_eq!(decode_part(blob, &H, FORMAT, part, &mut c), Ok(()));
    }
    assert_eq!(c.sessions.len(), 30);
    assert_eq!(c.sessions[29].0, sessions[29].name);
    assert_eq!(c.owners[29], 1029);
    assert!(c.sessions.iter().all(|(_, f)| f.len() == 40));
    assert_eq!(c.subsystems.len(), 1);

    // A blob out of place, of another record or of another kernel.
    let other = Handover {
        boot_id: H.boot_id + 1,
        ..H
    };
    let two = Part { index: 2, count: 3 };
    let one = Part { index: 1, count: 3 };
    let four = Part { index: 1, count: 4 };
    let mut c = Collect::default();
    assert!(decode_part(&blobs[1], &H, FORMAT, two, &mut c).is_err());
    // A blob in another format than blob 0's (v3 files must be whole).
    assert!(decode_part(&blobs[1], &H, 3, one, &mut c).is_err());
    assert!(decode_part(&blobs[1], &other, FORMAT, one, &mut c).is_err());
    assert!(decode_part(&blobs[1], &H, FORMAT, four, &mut c).is_err());
    assert!(decode_first(&blobs[1], &mut c).is_err());
    assert!(decode_part(&blobs[0], &H, FORMAT, Part::WHOLE, &mut c).is_err());
    // Blob 0 as a later blob: it lists blobs, which only blob 0 does.
    assert!(decode_part(&blobs[0], &H, FORMAT, Part { index: 0, count: 3 }, &mut c).is_err());
}

#[test]
fn part_lists_and_counts_are_checked() {
    for format in [COMPATIBLE, COMPATIBLE_V3] {
        parts_are_checked(format);
    }
    // v3 without its part properties; v4 without them is one blob.
    let blob = handmade_as(COMPATIBLE_V3, |_| {});
    assert!(decode_first(&blob, &mut Collect::default()).is_err());
    let blob = handmade_as(COMPATIBLE, |_| {});
    assert!(decode_first(&blob, &mut Collect::default()).is_ok());
    // v4 with only one of them.
    for prop in ["part", "parts"] {
        let blob = handmade_as(COMPATIBLE, |w| w.prop_u64(prop, 0).unwrap());
        assert!(decode_first(&blob, &mut Collect::default()).is_err());
    }
}

/// The part properties of blobs in `format` are checked.
fn parts_are_checked(format: &str) {
    let list = |n: usize| -> Vec<u8> { vec![0x10; 16 * n] };
    for (part, count, blobs, ok) in [
        (0, 2, Some(list(1)), true),
        (1, 2, None, true),
        (0, 3, Some(list(1)), false),
        (0, 2, None, false),
        (1, 2, Some(list(1)), false),
        (2, 2, None, false),
        (0, 1, None, false),
    ] {
        let blob = handmade_as(format, |w| {
            w.prop_u64("part", part).unwrap();
            w.prop_u64("parts", count).unwrap();
            if let Some(b) = &blobs {
                w.prop("part-blobs", b).unwrap();
            }
        });
        let r = if part == 0 {
            decode_first(&blob, &mut Collect::default()).map(|_| ())
        } else {
            let part = Part {
                index: part as u32,
                count: count as u32,
            };
            decode_part(
                &blob,
                &(Handover {
                    generation: 1,
                    boot_id: 2,
                }),
                super::format(format.as_bytes()).unwrap(),
                part,
                &mut Collect::default(),
            )
        };
        assert_eq!(r.is_ok(), ok, "{format}: part {part} of {count}");
    }
    let count = u64::from(MAX_PARTS) + 1;
    let blob = handmade_as(format, |w| {
        w.prop_u64("part", 0).unwrap();
        w.prop_u64("parts", count).unwrap();
    });
    assert!(decode_first(&blob, &mut Collect::default()).is_err());
    // A subsystem belongs in blob 0.
    let blob = handmade_as(format, |w| {
        w.prop_u64("part", 1).unwrap();
        w.prop_u64("parts", 2).unwrap();
        w.begin_node("subsystem@0").unwrap();
        w.prop_str("compatible", "x").unwrap();
        w.prop_u64("data", 1).unwrap();
        w.end_node().unwrap();
    });
    let h = Handover {
        generation: 1,
        boot_id: 2,
    };
    let one = Part { index: 1, count: 2 };
    assert!(decode_part(&blob, &h, FORMAT, one, &mut Collect::default()).is_err());
    // The encoder refuses what the decoder would.
    let mut buf = [0u8; 512];
    let bad = Part { index: 2, count: 2 };
    assert_eq!(
        encode_part(&H, bad, &[], &[], &[], &mut buf),
        Err(FdtError::BadValue)
    );
    let unlisted = Part { index: 0, count: 2 };
    assert_eq!(
        encode_part(&H, unlisted, &[], &[], &[], &mut buf),
        Err(FdtError::BadValue)
    );
}

#[test]
fn every_truncation_and_every_byte_flip_is_safe() {
    let mut buf = [0u8; 2048];
    let n = sample(&mut buf);
    for len in 0..n {
        assert!(
            decode(&buf[..len], &mut Collect::default()).is_err(),
            "len {len}"
        );
    }
    // Flipping any byte must never panic (it may still decode).
    for i in 0..n {
        let mut b = buf;
        b[i] ^= 0xff;
        let _ = decode(&b[..n], &mut Collect::default());
    }
}

fn words_of(
    h: &Handover,
    sessions: &[SessionRecord<'_>],
    subs: &[SubsystemRecord<'_>],
) -> Vec<u64> {
    let mut out = Vec::new();
    record_words(h, sessions, subs, &mut |w| -> Result<(), ()> {
        out.push(w);
        Ok(())
    })
    .unwrap();
    out
}

#[test]
fn record_words_tell_records_apart() {
    let h = Handover {
        generation: 3,
        boot_id: 0xfeed,
    };
    let deps = depends_bytes(&[7]);
    let files = [
        FileRecord {
            compatible: b"luo-rs,memfd-v2",
            token: 7,
            data: 0x1000,
            depends: Depends::NONE,
            state: &[],
        },
        FileRecord {
            compatible: b"luo-rs,test-v1",
            token: 8,
            data: 0x2000,
            depends: Depends::from_bytes(&deps).unwrap(),
            state: &[],
        },
    ];
    let sessions = [SessionRecord {
        name: name("vm-1"),
        owner: 1000,
        files: &files,
    }];
    let subs = [SubsystemRecord {
        compatible: b"luo-rs,sub-v1",
        data: 0x3000,
    }];
    let base = words_of(&h, &sessions, &subs);
    // The same record, rebuilt from other memory, spells the same words.
    let compat: Vec<u8> = b"luo-rs,memfd-v2".to_vec();
    let mut same_files = files;
    same_files[0].compatible = &compat;
    let same = [SessionRecord {
        files: &same_files,
        ..sessions[0]
    }];
    assert_eq!(words_of(&h, &same, &subs), base);

    // Any one change, however small, spells other words.
    let mut variants: Vec<Vec<u64>> = Vec::new();
    let other_h = [
        Handover { generation: 4, ..h },
        Handover { boot_id: 1, ..h },
    ];
    for oh in &other_h {
        variants.push(words_of(oh, &sessions, &subs));
    }
    let other_deps = depends_bytes(&[8]);
    let file_changes: [&dyn Fn(&mut FileRecord<'_>); 8] = [
        &|f| f.token += 1,
        &|f| f.data += 1,
        &|f| f.compatible = b"luo-rs,memfd-v3",
        &|f| f.compatible = b"luo-rs,memfd-v2\0",
        &|f| f.depends = Depends::NONE,
        &|f| f.state = b"s",
        &|f| f.state = b"\0",
        &|f| f.state = b"\0\0\0\0\0\0\0\0\0",
    ];
    for change in file_changes {
        let mut fs = files;
        change(&mut fs[1]);
        let ss = [SessionRecord {
            files: &fs,
            ..sessions[0]
        }];
        variants.push(words_of(&h, &ss, &subs));
    }
    let mut fs = files;
    fs[1].depends = Depends::from_bytes(&other_deps).unwrap();
    let ss = [SessionRecord {
        files: &fs,
        ..sessions[0]
    }];
    variants.push(words_of(&h, &ss, &subs));
    // A file less, a session renamed or of another owner, one more session.
    let fewer = [SessionRecord {
        files: &files[..1],
        ..sessions[0]
    }];
    variants.push(words_of(&h, &fewer, &subs));
    let renamed = [SessionRecord {
        name: name("vm-2"),
        ..sessions[0]
    }];
    variants.push(words_of(&h, &renamed, &subs));
    let longer = [SessionRecord {
        name: name("vm-1\u{1}"),
        ..sessions[0]
    }];
    variants.push(words_of(&h, &longer, &subs));
    let other_owner = [SessionRecord {
        owner: 0,
        ..sessions[0]
    }];
    variants.push(words_of(&h, &other_owner, &subs));
    let two = [sessions[0], sessions[0]];
    variants.push(words_of(&h, &two, &subs));
    // Files moved from one session to the next.
    let split = [
        SessionRecord {
            files: &files[..1],
            ..sessions[0]
        },
        SessionRecord {
            files: &files[1..],
            ..sessions[0]
        },
    ];
    variants.push(words_of(&h, &split, &subs));
    variants.push(words_of(&h, &sessions, &[]));
    let other_sub = [SubsystemRecord {
        data: 0x3001,
        ..subs[0]
    }];
    variants.push(words_of(&h, &sessions, &other_sub));
    for (i, v) in variants.iter().enumerate() {
        assert_ne!(*v, base, "variant {i}");
    }
}

/// Collects every file's state.
#[derive(Default)]
struct States(Vec<Vec<u8>>);

impl Sink for States {
    fn session(&mut self, _: Name, _: u32) -> Result<(), FdtError> {
        Ok(())
    }
    fn file(&mut self, f: FileRecord<'_>) -> Result<(), FdtError> {
        self.0.push(f.state.to_vec());
        Ok(())
    }
    fn subsystem(&mut self, _: SubsystemRecord<'_>) -> Result<(), FdtError> {
        Ok(())
    }
}

/// A one-session record of files with `states`.
fn with_states(states: &[&[u8]], out: &mut [u8]) -> Result<usize, FdtError> {
    let files: Vec<FileRecord<'_>> = states
        .iter()
        .zip(0u64..)
        .map(|(&state, token)| FileRecord {
            compatible: b"luo-rs,memfd-v3",
            token,
            data: 0,
            depends: Depends::NONE,
            state,
        })
        .collect();
    let sessions = [SessionRecord {
        name: name("vm-1"),
        owner: 0,
        files: &files,
    }];
    encode(&H, &sessions, &[], out)
}

#[test]
fn states_round_trip() {
    let long = [0xa5u8; STATE_MAX];
    let states: [&[u8]; 4] = [b"", b"\0", b"a state of 17 byte", &long];
    let mut buf = vec![0u8; 4096];
    let n = with_states(&states, &mut buf).unwrap();
    let mut c = States::default();
    assert_eq!(decode(&buf[..n], &mut c), Ok(H));
    let want: Vec<Vec<u8>> = states.iter().map(|s| s.to_vec()).collect();
    assert_eq!(c.0, want);
}

#[test]
fn a_state_too_long_is_neither_written_nor_read() {
    let long = [0u8; STATE_MAX + 1];
    let mut buf = vec![0u8; 4096];
    assert_eq!(with_states(&[&long], &mut buf), Err(FdtError::BadValue));

    // Written by hand (the encoder refuses it): the reader refuses it too,
    // and an empty one, which no writer makes.
    for len in [STATE_MAX + 1, 0] {
        let mut strings = [0u8; STRINGS_ROOM];
        let mut w = FdtWriter::new(&mut buf, &mut strings).unwrap();
        w.begin_node("").unwrap();
        w.prop_str("compatible", COMPATIBLE).unwrap();
        w.prop_u64("generation", 1).unwrap();
        w.prop_u64("boot-id", 2).unwrap();
        w.begin_node_at("session", 0).unwrap();
        w.prop_bytes_str("session-name", b"vm-1").unwrap();
        w.begin_node_at("file", 0).unwrap();
        w.prop_bytes_str("compatible", b"luo-rs,memfd-v3").unwrap();
        w.prop_u64("token", 0).unwrap();
        w.prop_u64("data", 0).unwrap();
        w.prop("state", &long[..len]).unwrap();
        w.end_node().unwrap();
        w.end_node().unwrap();
        w.end_node().unwrap();
        let n = w.finish().unwrap();
        let mut c = States::default();
        assert_eq!(decode(&buf[..n], &mut c), Err(FdtError::BadValue), "{len}");
    }
}

#[test]
fn a_file_room_counts_its_state() {
    let bare = file_room(b"luo-rs,memfd-v3", 0, 0);
    assert_eq!(file_room(b"luo-rs,memfd-v3", 0, 1), bare + 16);
    assert_eq!(file_room(b"luo-rs,memfd-v3", 0, 5), bare + 20);
    // More than a file may carry counts as the most it may.
    assert_eq!(
        file_room(b"luo-rs,memfd-v3", 0, STATE_MAX + 100),
        file_room(b"luo-rs,memfd-v3", 0, STATE_MAX)
    );
}

/// Files of `files` in one session "s", as `encode` writes them.
fn one_session(files: &[FileRecord<'_>]) -> Vec<u8> {
    let sessions = [SessionRecord {
        name: name("s"),
        owner: 0,
        files,
    }];
    let mut buf = vec![0u8; 4096];
    let n = encode(&H, &sessions, &[], &mut buf).unwrap();
    buf.truncate(n);
    buf
}

/// How many times the file nodes of `blob` carry property `prop`.
fn file_props(blob: &[u8], prop: &[u8]) -> usize {
    let fdt = Fdt::parse(blob).unwrap();
    let mut depth = 0;
    let mut n = 0;
    for t in fdt.tokens() {
        match t.unwrap() {
            Token::Begin { depth: d, .. } => depth = d,
            Token::Prop { name, .. } if depth == 3 && name == prop => n += 1,
            Token::Prop { .. } => {}
            Token::End => depth -= 1,
        }
    }
    n
}

#[test]
fn repeated_handlers_and_zero_data_are_left_out() {
    let file = |compatible: &'static [u8], token, data| FileRecord {
        compatible,
        token,
        data,
        depends: Depends::NONE,
        state: &[],
    };
    let files = [
        file(b"luo-rs,a", 1, 0),
        file(b"luo-rs,a", 2, 5),
        file(b"luo-rs,b", 3, 0),
        file(b"luo-rs,b", 4, 0),
        file(b"luo-rs,a", 5, u64::MAX),
    ];
    let blob = one_session(&files);
    // Where the handler changes: files 1, 3 and 5; data where not 0.
    assert_eq!(file_props(&blob, b"compatible"), 3);
    assert_eq!(file_props(&blob, b"data"), 2);
    let mut c = Collect::default();
    decode(&blob, &mut c).unwrap();
    let read: Vec<_> = c.sessions[0].1.iter().cloned().collect();
    let want: Vec<_> = files
        .iter()
        .map(|f| (f.compatible.to_vec(), f.token, f.data))
        .collect();
    assert_eq!(read, want);
    // Every file of a session after the first inherits: a small file
    // takes about 100 bytes.
    let many: Vec<_> = (0..100).map(|t| file(b"luo-rs,memfd-v3", t, 0)).collect();
    let blob = one_session(&many);
    assert!(blob.len() < 100 * 60, "{} bytes", blob.len());
}

/// A session "s" of `build`'s files, in `format`.
fn files_as(format: &str, build: impl FnOnce(&mut FdtWriter<'_>)) -> Vec<u8> {
    handmade_as(format, |w| {
        w.begin_node("session@0").unwrap();
        w.prop_str("session-name", "s").unwrap();
        build(w);
        w.end_node().unwrap();
    })
}

fn file_node(w: &mut FdtWriter<'_>, i: u64, compatible: Option<&str>, data: Option<u64>) {
    w.begin_node_at("file", i).unwrap();
    if let Some(c) = compatible {
        w.prop_str("compatible", c).unwrap();
    }
    w.prop_u64("token", i).unwrap();
    if let Some(d) = data {
        w.prop_u64("data", d).unwrap();
    }
    w.end_node().unwrap();
}

#[test]
fn only_v4_files_inherit_a_handler_and_default_their_data() {
    // The first file of a session has no handler to inherit.
    let blob = files_as(COMPATIBLE, |w| file_node(w, 0, None, Some(1)));
    assert_eq!(
        decode(&blob, &mut Collect::default()),
        Err(FdtError::BadValue)
    );
    // Nor does the first file of the next session.
    let blob = handmade_as(COMPATIBLE, |w| {
        for (i, first) in [(0u64, Some("luo-rs,a")), (1, None)] {
            w.begin_node_at("session", i).unwrap();
            w.prop_str("session-name", if i == 0 { "s" } else { "t" })
                .unwrap();
            file_node(w, 0, first, None);
            w.end_node().unwrap();
        }
    });
    assert_eq!(
        decode(&blob, &mut Collect::default()),
        Err(FdtError::BadValue)
    );
    // Older formats name every handler and carry every data.
    for format in [COMPATIBLE_V1, COMPATIBLE_V2] {
        let lean = files_as(format, |w| {
            file_node(w, 0, Some("luo-rs,a"), Some(1));
            file_node(w, 1, None, Some(1));
        });
        let no_data = files_as(format, |w| file_node(w, 0, Some("luo-rs,a"), None));
        for blob in [lean, no_data] {
            assert_eq!(
                decode(&blob, &mut Collect::default()),
                Err(FdtError::BadValue),
                "{format}"
            );
        }
        // And are still read in full.
        let full = files_as(format, |w| {
            file_node(w, 0, Some("luo-rs,a"), Some(1));
            file_node(w, 1, Some("luo-rs,a"), Some(0));
        });
        let mut c = Collect::default();
        decode(&full, &mut c).unwrap();
        assert_eq!(
            c.sessions[0].1,
            vec![(b"luo-rs,a".to_vec(), 0, 1), (b"luo-rs,a".to_vec(), 1, 0)]
        );
    }
}
