// SPDX-License-Identifier: GPL-2.0

//! The handover record: what one kernel tells the next through KHO.
//!
//! The record is one FDT blob (see `kho_ser`) registered with KHO under
//! [`KHO_NAME`]:
//!
//! ```text
//! / {
//!     compatible = "luo-rs,handover-v2";   // or -v1 (no owners);
//!                                          // anything else is refused
//!     generation = <u64>;     // live updates that led to the reader,
//!                             // below u64::MAX
//!     boot-id = <u64>;        // random id of the kernel that wrote it
//!     session@0 {
//!         session-name = "vm-1";  // 1..63 bytes, unique in the record
//!                                 // for its owner (not "name": dtc
//!                                 // wants that to match the node name)
//!         owner = <u64>;          // euid (initial user namespace) of
//!                                 // its creator, < 2^32; absent = root
//!         file@0 {
//!             compatible = "luo-rs,test-v1";  // the file handler
//!             token = <u64>;  // userspace's name for the file, unique
//!                             // in its session
//!             data = <u64>;   // the handler's own handover data
//!         };
//!     };
//!     subsystem@0 {
//!         compatible = "luo-rs,test-subsystem-v1";  // the subsystem
//!         data = <u64>;       // its one u64 of handover data
//!     };
//! };
//! ```
//!
//! [`encode`] writes it from plain slices; [`decode`] checks the schema
//! and hands sessions, files and subsystems to a [`Sink`] one by one, so
//! neither side allocates. Unknown properties are ignored (a newer writer
//! may add some); unknown nodes, missing or malformed properties,
//! duplicate names, duplicate tokens and duplicate subsystems are refused
//! (the last three by the sink, which sees everything).
//!
//! Pure `core` code: the kernel and host tests compile this same file.

use crate::kho_ser::{value_str, value_u64, Fdt, FdtError, FdtWriter, Token};
use crate::luo_uapi::Name;

/// Name of luo-rs's subtree in the KHO root FDT.
pub(crate) const KHO_NAME: &core::ffi::CStr = c"luo-rs";
/// Format of the record this kernel writes; bump on any change an older
/// reader must not accept.
///
/// v2 added session owners: a v1 reader would ignore them and let anyone
/// claim any session (and refuse two users' sessions of one name), so it
/// must refuse a v2 record instead.
pub(crate) const COMPATIBLE: &str = "luo-rs,handover-v2";
/// The first release's format: the same, without owners (its sessions
/// belong to root). Still read.
pub(crate) const COMPATIBLE_V1: &str = "luo-rs,handover-v1";
/// The version [`COMPATIBLE`] names.
pub(crate) const FORMAT: u32 = 2;
/// What every format name starts with; the version number follows.
const FORMAT_PREFIX: &[u8] = b"luo-rs,handover-v";

/// The version of the format named `compatible` if this kernel reads it;
/// `FdtError::BadVersion` for a newer one (written by a later release),
/// `FdtError::BadValue` for anything else.
pub(crate) fn format(compatible: &[u8]) -> Result<u32, FdtError> {
    if compatible == COMPATIBLE.as_bytes() {
        return Ok(FORMAT);
    }
    if compatible == COMPATIBLE_V1.as_bytes() {
        return Ok(1);
    }
    // Not one it reads: a later one is worth saying so.
    let digits = compatible
        .strip_prefix(FORMAT_PREFIX)
        .filter(|d| !d.is_empty() && d.len() <= 9 && d[0] != b'0')
        .ok_or(FdtError::BadValue)?;
    let mut version = 0u32;
    for &d in digits {
        if !d.is_ascii_digit() {
            return Err(FdtError::BadValue);
        }
        // At most 9 digits: this cannot overflow.
        version = version * 10 + u32::from(d - b'0');
    }
    Err(if version > FORMAT {
        FdtError::BadVersion
    } else {
        FdtError::BadValue
    })
}

/// Longest handler or subsystem compatible string.
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
    /// The uid (initial user namespace) of the user who created it: only
    /// that user, or `CAP_SYS_ADMIN`, may retrieve it.
    pub(crate) owner: u32,
    /// Its files.
    pub(crate) files: &'a [FileRecord<'a>],
}

/// One subsystem's handover data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SubsystemRecord<'a> {
    /// Compatible string of the subsystem.
    pub(crate) compatible: &'a [u8],
    /// Its handover data.
    pub(crate) data: u64,
}

fn valid_compatible(compatible: &[u8]) -> bool {
    !compatible.is_empty() && compatible.len() <= COMPATIBLE_MAX
}

/// Writes the record into `out`, returning its length; `FdtError::NoSpace`
/// asks for a larger buffer.
pub(crate) fn encode(
    h: &Handover,
    sessions: &[SessionRecord<'_>],
    subsystems: &[SubsystemRecord<'_>],
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
        w.prop_u64("owner", u64::from(s.owner))?;
        for (j, f) in s.files.iter().enumerate() {
            if !valid_compatible(f.compatible) {
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
    for (i, s) in subsystems.iter().enumerate() {
        if !valid_compatible(s.compatible) {
            return Err(FdtError::BadValue);
        }
        w.begin_node_at("subsystem", i as u64)?;
        w.prop_bytes_str("compatible", s.compatible)?;
        w.prop_u64("data", s.data)?;
        w.end_node()?;
    }
    w.end_node()?;
    w.finish()
}

/// Receives what [`decode`] finds, in order: a session, then its files;
/// subsystems (in any order with sessions).
pub(crate) trait Sink {
    /// A session of `owner` starts; its files follow.
    fn session(&mut self, name: Name, owner: u32) -> Result<(), FdtError>;
    /// A file of the last session.
    fn file(&mut self, file: FileRecord<'_>) -> Result<(), FdtError>;
    /// A subsystem's handover data.
    fn subsystem(&mut self, subsystem: SubsystemRecord<'_>) -> Result<(), FdtError>;
}

/// What kind of node the decoder is in, at depth 2.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Session,
    Subsystem,
}

/// The properties of the node being read.
#[derive(Default)]
struct Props<'a> {
    name: Option<&'a [u8]>,
    owner: Option<u64>,
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
    let owners = match format(fdt.root_str("compatible")?)? {
        FORMAT => Owners::Recorded,
        1 => Owners::Root,
        _ => return Err(FdtError::BadValue),
    };
    let h = Handover {
        generation: fdt.root_u64("generation")?,
        boot_id: fdt.root_u64("boot-id")?,
    };
    // The reader hands over generation + 1: it must exist.
    if h.generation == u64::MAX {
        return Err(FdtError::BadValue);
    }
    let mut props = Props::default();
    let mut depth = 0;
    let mut kind = Kind::Session;
    for t in fdt.tokens() {
        match t? {
            Token::Begin { name, depth: d } => {
                depth = d;
                let ok = match d {
                    1 => true,
                    2 if node_is(name, b"session") => {
                        kind = Kind::Session;
                        true
                    }
                    2 if node_is(name, b"subsystem") => {
                        kind = Kind::Subsystem;
                        true
                    }
                    3 => kind == Kind::Session && node_is(name, b"file"),
                    _ => false,
                };
                if !ok {
                    return Err(FdtError::BadToken);
                }
                if d == 3 {
                    // The session's own properties come before its files.
                    session_start(&mut props, owners, sink)?;
                }
                props = Props::default();
                if d == 2 && kind == Kind::Session {
                    // Marks a session whose `name` is still to be read.
                    props.token = Some(0);
                }
            }
            Token::Prop { name, value } => match (depth, name) {
                (2, b"session-name") => props.name = Some(value_str(value)?),
                (2, b"owner") => props.owner = Some(value_u64(value)?),
                (2, b"compatible") => props.compatible = Some(value_str(value)?),
                (2, b"data") => props.data = Some(value_u64(value)?),
                (3, b"compatible") => props.compatible = Some(value_str(value)?),
                (3, b"token") => props.token = Some(value_u64(value)?),
                (3, b"data") => props.data = Some(value_u64(value)?),
                _ => {}
            },
            Token::End => {
                match depth {
                    // A session without files.
                    2 if kind == Kind::Session => session_start(&mut props, owners, sink)?,
                    2 => {
                        let (Some(compatible), Some(data)) = (props.compatible, props.data) else {
                            return Err(FdtError::BadValue);
                        };
                        if !valid_compatible(compatible) {
                            return Err(FdtError::BadValue);
                        }
                        sink.subsystem(SubsystemRecord { compatible, data })?;
                    }
                    3 => {
                        let (Some(compatible), Some(token), Some(data)) =
                            (props.compatible, props.token, props.data)
                        else {
                            return Err(FdtError::BadValue);
                        };
                        if !valid_compatible(compatible) {
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

/// Whether a record's sessions carry their owners.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Owners {
    /// v2: each session's `owner` property (root if absent).
    Recorded,
    /// v1: none; every session is root's.
    Root,
}

/// Reports the session whose properties are in `props`, once.
fn session_start(
    props: &mut Props<'_>,
    owners: Owners,
    sink: &mut impl Sink,
) -> Result<(), FdtError> {
    if props.token.take().is_none() {
        // Already reported (a file came before), nothing to do.
        return Ok(());
    }
    let raw = props.name.ok_or(FdtError::BadValue)?;
    // `value_str` found no NUL inside, so the name is exactly `raw`.
    let name = Name::from_bytes(raw).map_err(|_| FdtError::BadValue)?;
    // Sessions without owners (v1) are root's: nobody else can claim them.
    let owner = match owners {
        Owners::Recorded => props.owner.unwrap_or(0),
        Owners::Root => 0,
    };
    let owner = u32::try_from(owner).map_err(|_| FdtError::BadValue)?;
    sink.session(name, owner)
}

#[cfg(test)]
#[path = "tests/luo_handover.rs"]
mod tests;
