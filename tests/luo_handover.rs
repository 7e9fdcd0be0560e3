// SPDX-License-Identifier: GPL-2.0

//! Host tests of `luo_handover.rs` (a child module of it, so private items
//! are in reach); compiled only with `cfg(test)`.

use super::*;
use crate::luo_uapi::NAME_LEN;

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
        },
        FileRecord {
            compatible: b"memfd",
            token: u64::MAX,
            data: 7,
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
    let mut buf = vec![0u8; 2048];
    let mut strings = [0u8; 256];
    let mut w = FdtWriter::new(&mut buf, &mut strings).unwrap();
    w.begin_node("").unwrap();
    w.prop_str("compatible", COMPATIBLE).unwrap();
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
    let (buf, n) = record_of_version(b'3');
    assert_eq!(
        decode(&buf[..n], &mut Collect::default()),
        Err(FdtError::BadVersion)
    );
}

#[test]
fn format_names_are_read_strictly() {
    assert_eq!(format(COMPATIBLE.as_bytes()), Ok(FORMAT));
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
