// SPDX-License-Identifier: GPL-2.0

//! The handover record: what one kernel tells the next through KHO.
//!
//! The record is one FDT blob (see `kho_ser`) registered with KHO under
//! [`KHO_NAME`]:
//!
//! ```text
//! / {
//!     compatible = "luo-rs,handover-v1";   // anything else is refused
//!     generation = <u64>;     // live updates that led to the reader
//!     boot-id = <u64>;        // random id of the kernel that wrote it
//!     session@0 {
//!         session-name = "vm-1";  // 1..63 bytes, unique in the record
//!                                 // (not "name": dtc wants that to
//!                                 // match the node name)
//!         file@0 {
//!             compatible = "luo-rs,test-v1";  // the file handler
//!             token = <u64>;  // userspace's name for the file, unique
//!                             // in its session
//!             data = <u64>;   // the handler's own handover data
//!         };
//!     };
//! };
//! ```
//!
//! [`encode`] writes it from plain slices; [`decode`] checks the schema
//! and hands sessions and files to a [`Sink`] one by one, so neither side
//! allocates. Unknown properties are ignored (a newer writer may add
//! some); unknown nodes, missing or malformed properties, duplicate names
//! and duplicate tokens are refused.
//!
//! Pure `core` code: the kernel and host tests compile this same file.

use crate::kho_ser::{value_str, value_u64, Fdt, FdtError, FdtWriter, Token};
use crate::luo_uapi::{Name, NAME_LEN};

/// Name of luo-rs's subtree in the KHO root FDT.
pub(crate) const KHO_NAME: &core::ffi::CStr = c"luo-rs";
/// Format of the record; bump on any incompatible change.
pub(crate) const COMPATIBLE: &str = "luo-rs,handover-v1";
/// Longest handler compatible string.
pub(crate) const COMPATIBLE_MAX: usize = 63;

/// The fields of the root node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Handover {
    /// Live updates that led to the reading kernel.
    pub(crate) generation: u64,
    /// Random id of the kernel that wrote the record.
    pub(crate) boot_id: u64,
}

/// One preserved file, as handed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileRecord<'a> {
    /// Compatible string of the file handler.
    pub(crate) compatible: &'a [u8],
    /// The token userspace preserved the file with.
    pub(crate) token: u64,
    /// The handler's handover data.
    pub(crate) data: u64,
}

/// One session, as handed over.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SessionRecord<'a> {
    /// The session's name (never empty).
    pub(crate) name: Name,
    /// Its files.
    pub(crate) files: &'a [FileRecord<'a>],
}

/// Writes the record into `out`, returning its length; `FdtError::NoSpace`
/// asks for a larger buffer.
pub(crate) fn encode(
    h: &Handover,
    sessions: &[SessionRecord<'_>],
    out: &mut [u8],
) -> Result<usize, FdtError> {
    let mut strings = [0u8; 128];
    let mut w = FdtWriter::new(out, &mut strings)?;
    w.begin_node("")?;
    w.prop_str("compatible", COMPATIBLE)?;
    w.prop_u64("generation", h.generation)?;
    w.prop_u64("boot-id", h.boot_id)?;
    for (i, s) in sessions.iter().enumerate() {
        if s.name.is_empty() {
            return Err(FdtError::BadValue);
        }
        w.begin_node_at("session", i as u64)?;
        w.prop_bytes_str("session-name", s.name.as_bytes())?;
        for (j, f) in s.files.iter().enumerate() {
            if f.compatible.is_empty() || f.compatible.len() > COMPATIBLE_MAX {
                return Err(FdtError::BadValue);
            }
            w.begin_node_at("file", j as u64)?;
            w.prop_bytes_str("compatible", f.compatible)?;
            w.prop_u64("token", f.token)?;
            w.prop_u64("data", f.data)?;
            w.end_node()?;
        }
        w.end_node()?;
    }
    w.end_node()?;
    w.finish()
}

/// Receives what [`decode`] finds, in order: a session, then its files.
pub(crate) trait Sink {
    /// A session starts; its files follow.
    fn session(&mut self, name: Name) -> Result<(), FdtError>;
    /// A file of the last session.
    fn file(&mut self, file: FileRecord<'_>) -> Result<(), FdtError>;
}

/// The properties of the node being read.
#[derive(Default)]
struct Props<'a> {
    name: Option<&'a [u8]>,
    compatible: Option<&'a [u8]>,
    token: Option<u64>,
    data: Option<u64>,
}

fn node_is(name: &[u8], prefix: &[u8]) -> bool {
    name.len() > prefix.len() + 1 && name.starts_with(prefix) && name[prefix.len()] == b'@'
}

/// Validates the record and feeds its sessions and files to `sink`.
/// Returns the root fields. On error `sink` may have seen part of it.
pub(crate) fn decode(blob: &[u8], sink: &mut impl Sink) -> Result<Handover, FdtError> {
    let fdt = Fdt::parse(blob)?;
    if fdt.root_str("compatible")? != COMPATIBLE.as_bytes() {
        return Err(FdtError::BadValue);
    }
    let h = Handover {
        generation: fdt.root_u64("generation")?,
        boot_id: fdt.root_u64("boot-id")?,
    };
    let mut props = Props::default();
    let mut depth = 0;
    for t in fdt.tokens() {
        match t? {
            Token::Begin { name, depth: d } => {
                depth = d;
                let ok = match d {
                    1 => true,
                    2 => node_is(name, b"session"),
                    3 => node_is(name, b"file"),
                    _ => false,
                };
                if !ok {
                    return Err(FdtError::BadToken);
                }
                if d == 3 {
                    // The session's own properties come before its files.
                    session_start(&mut props, sink)?;
                }
                props = Props::default();
                if d == 2 {
                    // Marks a session whose `name` is still to be read.
                    props.token = Some(0);
                }
            }
            Token::Prop { name, value } => match (depth, name) {
                (2, b"session-name") => props.name = Some(value_str(value)?),
                (3, b"compatible") => props.compatible = Some(value_str(value)?),
                (3, b"token") => props.token = Some(value_u64(value)?),
                (3, b"data") => props.data = Some(value_u64(value)?),
                _ => {}
            },
            Token::End => {
                match depth {
                    // A session without files.
                    2 => session_start(&mut props, sink)?,
                    3 => {
                        let (Some(compatible), Some(token), Some(data)) =
                            (props.compatible, props.token, props.data)
                        else {
                            return Err(FdtError::BadValue);
                        };
                        if compatible.is_empty() || compatible.len() > COMPATIBLE_MAX {
                            return Err(FdtError::BadValue);
                        }
                        sink.file(FileRecord {
                            compatible,
                            token,
                            data,
                        })?;
                    }
                    _ => {}
                }
                props = Props::default();
                depth = depth.saturating_sub(1);
            }
        }
    }
    Ok(h)
}

/// Reports the session whose properties are in `props`, once.
fn session_start(props: &mut Props<'_>, sink: &mut impl Sink) -> Result<(), FdtError> {
    if props.token.take().is_none() {
        // Already reported (a file came before), nothing to do.
        return Ok(());
    }
    let raw = props.name.ok_or(FdtError::BadValue)?;
    if raw.is_empty() || raw.len() >= NAME_LEN {
        return Err(FdtError::BadValue);
    }
    let mut field = [0u8; NAME_LEN];
    field[..raw.len()].copy_from_slice(raw);
    let name = Name::parse(&field).map_err(|_| FdtError::BadValue)?;
    sink.session(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> Name {
        let mut f = [0u8; NAME_LEN];
        f[..s.len()].copy_from_slice(s.as_bytes());
        Name::parse(&f).unwrap()
    }

    /// Collects what `decode` reports, checking uniqueness like the core.
    #[derive(Default)]
    struct Collect {
        sessions: Vec<(Name, Vec<(Vec<u8>, u64, u64)>)>,
    }

    impl Sink for Collect {
        fn session(&mut self, name: Name) -> Result<(), FdtError> {
            if self.sessions.iter().any(|(n, _)| *n == name) {
                return Err(FdtError::BadValue);
            }
            self.sessions.push((name, Vec::new()));
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
                files: &a,
            },
            SessionRecord {
                name: name("empty"),
                files: &[],
            },
        ];
        encode(&H, &sessions, out).unwrap()
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
        assert!(c.sessions[1].1.is_empty());
    }

    #[test]
    fn no_sessions() {
        let mut buf = [0u8; 512];
        let n = encode(&H, &[], &mut buf).unwrap();
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
            files: &files,
        }];
        assert_eq!(encode(&H, &s, &mut buf), Err(FdtError::NoSpace));
    }

    #[test]
    fn encoder_refuses_unnamed_sessions_and_bad_compatibles() {
        let mut buf = [0u8; 1024];
        let s = [SessionRecord {
            name: Name::NONE,
            files: &[],
        }];
        assert_eq!(encode(&H, &s, &mut buf), Err(FdtError::BadValue));
        let long = [b'c'; COMPATIBLE_MAX + 1];
        let files = [FileRecord {
            compatible: &long,
            token: 1,
            data: 2,
        }];
        let s = [SessionRecord {
            name: name("s"),
            files: &files,
        }];
        assert_eq!(encode(&H, &s, &mut buf), Err(FdtError::BadValue));
    }

    #[test]
    fn duplicates_are_refused_by_the_sink() {
        let mut buf = [0u8; 1024];
        let s = [
            SessionRecord {
                name: name("same"),
                files: &[],
            },
            SessionRecord {
                name: name("same"),
                files: &[],
            },
        ];
        let n = encode(&H, &s, &mut buf).unwrap();
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
            files: &files,
        }];
        let n = encode(&H, &s, &mut buf).unwrap();
        assert_eq!(
            decode(&buf[..n], &mut Collect::default()),
            Err(FdtError::BadValue)
        );
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

    #[test]
    fn other_compatible_is_refused() {
        let mut buf = [0u8; 512];
        let n = encode(&H, &[], &mut buf).unwrap();
        let pos = buf[..n]
            .windows(COMPATIBLE.len())
            .position(|w| w == COMPATIBLE.as_bytes())
            .unwrap();
        buf[pos + COMPATIBLE.len() - 1] = b'0';
        assert_eq!(
            decode(&buf[..n], &mut Collect::default()),
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
}
