// SPDX-License-Identifier: GPL-2.0

//! The handover record: what one kernel tells the next through KHO.
//!
//! The record is an FDT blob (see `kho_ser`) registered with KHO under
//! [`KHO_NAME`], or, when it does not fit in the largest blob KHO can
//! preserve (4 MiB: about 23,000 small memfds), several blobs, each with its
//! share of the sessions: the first is the registered one and lists where
//! the others are (they are preserved memory, not subtrees of their own:
//! KHO's root FDT is one page, shared by every KHO user):
//!
//! ```text
//! / {
//!     compatible = "luo-rs,handover-v4";   // written; -v1, -v2, -v3 are
//!                                          // read (see below), anything
//!                                          // else is refused
//!     part = <u64>;           // a record in several blobs only: this
//!     parts = <u64>;          // blob's index, from 0, of 2..=256;
//!     part-blobs = <u64 u64 ...>;  // in blob 0: physical address and
//!                                  // length of blobs 1, 2, ...
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
//!             compatible = "luo-rs,test-v1";  // the file handler; if
//!                             // absent, that of the file before it in
//!                             // its session (never of the first file)
//!             token = <u64>;  // userspace's name for the file, unique
//!                             // in its session
//!             data = <u64>;   // the handler's own handover data; 0 if
//!                             // absent
//!             depends = <u64 ...>;  // optional: tokens of the files of
//!                                   // this session it needs, each of
//!                                   // a file before it (no cycles)
//!             state = [bytes];    // optional: the handler's own state,
//!                                 // 1..=STATE_MAX bytes
//!         };
//!     };
//!     subsystem@0 {               // in blob 0 only
//!         compatible = "luo-rs,test-subsystem-v1";  // the subsystem
//!         data = <u64>;       // its one u64 of handover data
//!     };
//! };
//! ```
//!
//! Every blob of a record carries the same generation and boot-id, and a
//! session is never split between blobs.
//!
//! Older formats, still read: v3 is v4 in several blobs (`part` and
//! `parts` always there), v2 in one, both with every file naming its
//! handler and carrying its data; v1 is v2 without owners. A small file
//! takes about 100 bytes in v4, 150 in v2 and v3.
//!
//! [`encode_part`] writes it from plain slices; [`decode_first`] and
//! [`decode_part`] check the schema
//! and hands sessions, files and subsystems to a [`Sink`] one by one, so
//! neither side allocates. Unknown properties are ignored (a newer writer
//! may add some); unknown nodes, missing or malformed properties,
//! duplicate names, duplicate tokens, duplicate subsystems and
//! dependencies on anything but an earlier file of the same session are
//! refused (the last four by the sink, which sees everything; see
//! [`dependency_position`]).
//!
//! A file's `depends` names the files of its session its handler needs
//! in the new kernel (a guest_memfd its VM, an iommufd the memfds it
//! maps). The writer puts every file after the files it depends on, so a
//! reader can rebuild a session front to back and finish it back to
//! front, and a cycle cannot even be written down. An older reader
//! ignores the property: only handlers that came with it write one.
//!
//! A file's `state` is what its handler keeps in the handover itself,
//! beside `data`, when it is too small to be worth memory of its own (a
//! memfd's size, seals, name and, when they are few, its folios: tens of
//! bytes, where a KHO-preserved page would take 4 KiB). An older reader
//! ignores it too: a handler that starts writing one takes a new
//! compatible.
//!
//! Pure `core` code: the kernel and host tests compile this same file.

use crate::kho_ser::{value_str, value_u64, Fdt, FdtError, FdtWriter, Token};
use crate::luo_uapi::{Name, NAME_LEN};

/// Name of luo-rs's subtree in the KHO root FDT.
pub(crate) const KHO_NAME: &core::ffi::CStr = c"luo-rs";
/// The format this kernel writes, in one blob or several; bump on any
/// change an older reader must not accept.
///
/// v4 leaves out a file's `compatible` when it is that of the file before
/// it in its session, and its `data` when it is 0: a v3 reader would
/// refuse such files, but it must refuse the record as a whole, by name.
pub(crate) const COMPATIBLE: &str = "luo-rs,handover-v4";
/// A record in several blobs before v4: v2 plus the root properties
/// `part` and `parts`. A v2 reader would ignore them and lose every blob
/// but the first, so it must refuse v3. Still read.
pub(crate) const COMPATIBLE_V3: &str = "luo-rs,handover-v3";
/// A record in one blob before v4. v2 added session owners: a v1 reader
/// would ignore them and let anyone claim any session (and refuse two
/// users' sessions of one name), so it must refuse a v2 record instead.
/// Still read.
pub(crate) const COMPATIBLE_V2: &str = "luo-rs,handover-v2";
/// The first release's format: v2 without owners (its sessions belong to
/// root). Still read.
pub(crate) const COMPATIBLE_V1: &str = "luo-rs,handover-v1";
/// The newest format this kernel reads ([`COMPATIBLE`]).
pub(crate) const FORMAT: u32 = 4;
/// Longest `state` a file may carry.
pub(crate) const STATE_MAX: usize = 512;
/// Most blobs a record may have: 256 of at most 4 MiB each.
pub(crate) const MAX_PARTS: u32 = 256;
/// What every format name starts with; the version number follows.
const FORMAT_PREFIX: &[u8] = b"luo-rs,handover-v";

/// The version of the format named `compatible` if this kernel reads it;
/// `FdtError::BadVersion` for a newer one (written by a later release),
/// `FdtError::BadValue` for anything else.
pub(crate) fn format(compatible: &[u8]) -> Result<u32, FdtError> {
    for (name, version) in [
        (COMPATIBLE_V1, 1),
        (COMPATIBLE_V2, 2),
        (COMPATIBLE_V3, 3),
        (COMPATIBLE, 4),
    ] {
        if compatible == name.as_bytes() {
            return Ok(version);
        }
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

/// Most files one file may depend on.
pub(crate) const MAX_DEPENDS: usize = 256;

/// The tokens of the files a file depends on, as the handover carries
/// them: big-endian `u64`s.
///
/// # Invariants
///
/// A whole number of `u64`s, at most [`MAX_DEPENDS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Depends<'a>(&'a [u8]);

impl<'a> Depends<'a> {
    /// No dependencies.
    pub(crate) const NONE: Depends<'static> = Depends(&[]);

    /// The list in `bytes`, if it is one.
    pub(crate) fn from_bytes(bytes: &'a [u8]) -> Option<Self> {
        if bytes.len() % 8 != 0 || bytes.len() > 8 * MAX_DEPENDS {
            return None;
        }
        // INVARIANT: checked just above.
        Some(Depends(bytes))
    }

    /// The bytes of the `depends` property.
    pub(crate) fn as_bytes(&self) -> &'a [u8] {
        self.0
    }

    /// How many files are named.
    pub(crate) fn len(&self) -> usize {
        self.0.len() / 8
    }

    /// Whether none is.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The tokens named, in order.
    pub(crate) fn tokens(&self) -> impl Iterator<Item = u64> + 'a {
        self.0
            .chunks_exact(8)
            .map(|c| c.try_into().map(u64::from_be_bytes).unwrap_or(0))
    }
}

/// The position of the file `token` that the file at `position` in the
/// same session depends on, if it is before it (`None` for itself, a
/// later file or none): what keeps a record free of cycles. `tokens` are
/// the session's (token, position) pairs, sorted by token.
pub(crate) fn dependency_position(tokens: &[(u64, u32)], position: u32, token: u64) -> Option<u32> {
    let i = tokens.binary_search_by_key(&token, |&(t, _)| t).ok()?;
    tokens.get(i).map(|&(_, p)| p).filter(|&p| p < position)
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
    /// The files of the same session it depends on, each written before
    /// it.
    pub(crate) depends: Depends<'a>,
    /// The handler's state, at most [`STATE_MAX`] bytes; empty if it
    /// keeps none in the handover.
    pub(crate) state: &'a [u8],
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

/// Which blob of a record one is: `index` of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Part {
    pub(crate) index: u32,
    pub(crate) count: u32,
}

impl Part {
    /// The one blob of a record that fits in one.
    pub(crate) const WHOLE: Part = Part { index: 0, count: 1 };
}

/// Where the blobs after the first are, as blob 0 of a record in several
/// lists them: (physical address, length) for blobs 1, 2, ...
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Parts<'a> {
    /// Blobs in the record, blob 0 included.
    pub(crate) count: u32,
    /// The version of the record's format, as blob 0 names it: every
    /// blob must name the same.
    pub(crate) format: u32,
    /// The `part-blobs` property: `count - 1` pairs of big-endian u64.
    list: &'a [u8],
}

impl Parts<'_> {
    /// Physical address and length of blob `index` (1..count).
    pub(crate) fn blob(&self, index: u32) -> Option<(u64, u64)> {
        let at = usize::try_from(index.checked_sub(1)?)
            .ok()?
            .checked_mul(16)?;
        let pair = self.list.get(at..at.checked_add(16)?)?;
        let (phys, len) = pair.split_at(8);
        Some((value_u64(phys).ok()?, value_u64(len).ok()?))
    }
}

/// Bytes a node named `<prefix>@<u64 in hex>` opens and closes with.
const fn node_room(prefix: &str) -> usize {
    // BEGIN_NODE, the name with '@', 16 hex digits and NUL padded, END_NODE.
    4 + (prefix.len() + 18).next_multiple_of(4) + 4
}

/// Bytes a property with a value of `len` bytes takes.
const fn prop_room(len: usize) -> usize {
    12 + len.next_multiple_of(4)
}

/// Bytes a blob takes besides its sessions and subsystems, at most: the
/// FDT header and reserve map, the root node and its properties, the end
/// token and the strings block.
pub(crate) const ROOT_ROOM: usize =
    40 + 16 + node_room("") + prop_room(COMPATIBLE.len() + 1) + 4 * prop_room(8) + 4 + STRINGS_ROOM;

/// Room for the property names of a blob.
const STRINGS_ROOM: usize = 128;

/// Bytes blob 0 of a record in several may take for its list of the
/// others, at most.
pub(crate) const PART_LIST_ROOM: usize = prop_room(16 * (MAX_PARTS as usize - 1));

/// Largest blob: the largest folio KHO preserves in one piece.
pub(crate) const MAX_BLOB: usize = 4 << 20;

/// Bytes a session's own node and properties take, at most.
const SESSION_BASE_ROOM: usize = node_room("session") + prop_room(NAME_LEN) + prop_room(8);

/// Most bytes one session's files may take: a session is never split, so
/// it must fit in a blob of its own (about 23,000 small memfds).
pub(crate) const MAX_FILES_ROOM: usize = MAX_BLOB - ROOT_ROOM - SESSION_BASE_ROOM;

/// Bytes a file of the handler `compatible` with up to `depends`
/// dependencies and a state of up to `state` bytes takes in a blob, at
/// most.
pub(crate) fn file_room(compatible: &[u8], depends: usize, state: usize) -> usize {
    let room = |len: usize| if len == 0 { 0 } else { prop_room(len) };
    node_room("file")
        + prop_room(compatible.len() + 1)
        + 2 * prop_room(8)
        + room(8 * depends.min(MAX_DEPENDS))
        + room(state.min(STATE_MAX))
}

/// Bytes `s` takes in a blob, at most: how records are split into blobs.
pub(crate) fn session_room(s: &SessionRecord<'_>) -> usize {
    node_room("session")
        + prop_room(s.name.as_bytes().len() + 1)
        + prop_room(8)
        + s.files
            .iter()
            .map(|f| file_room(f.compatible, f.depends.len(), f.state.len()))
            .sum::<usize>()
}

/// Bytes `s` takes in a blob, at most.
pub(crate) fn subsystem_room(s: &SubsystemRecord<'_>) -> usize {
    node_room("subsystem") + prop_room(s.compatible.len() + 1) + prop_room(8)
}

/// Writes blob `part` of a record into `out`, returning its length: its
/// share of the sessions, and in blob 0 the subsystems and, for a record
/// in several, where the others are (`blobs`: physical address and length
/// of blobs 1, 2, ...; empty for the other blobs). A whole record
/// ([`Part::WHOLE`]) is written without `part` and `parts`.
/// `FdtError::NoSpace` asks for a larger buffer.
pub(crate) fn encode_part(
    h: &Handover,
    part: Part,
    blobs: &[(u64, u64)],
    sessions: &[SessionRecord<'_>],
    subsystems: &[SubsystemRecord<'_>],
    out: &mut [u8],
) -> Result<usize, FdtError> {
    let listed = if part.index == 0 { part.count - 1 } else { 0 };
    if part.index >= part.count || part.count > MAX_PARTS || blobs.len() != listed as usize {
        return Err(FdtError::BadValue);
    }
    if part.index > 0 && !subsystems.is_empty() {
        return Err(FdtError::BadValue);
    }
    let mut strings = [0u8; STRINGS_ROOM];
    let mut w = FdtWriter::new(out, &mut strings)?;
    w.begin_node("")?;
    w.prop_str("compatible", COMPATIBLE)?;
    if part != Part::WHOLE {
        w.prop_u64("part", u64::from(part.index))?;
        w.prop_u64("parts", u64::from(part.count))?;
    }
    if !blobs.is_empty() {
        let mut list = [0u8; 16 * (MAX_PARTS as usize - 1)];
        for (pair, (phys, len)) in list.chunks_exact_mut(16).zip(blobs) {
            pair[..8].copy_from_slice(&phys.to_be_bytes());
            pair[8..].copy_from_slice(&len.to_be_bytes());
        }
        w.prop(
            "part-blobs",
            list.get(..16 * blobs.len()).ok_or(FdtError::BadValue)?,
        )?;
    }
    w.prop_u64("generation", h.generation)?;
    w.prop_u64("boot-id", h.boot_id)?;
    for (i, s) in sessions.iter().enumerate() {
        if s.name.is_empty() {
            return Err(FdtError::BadValue);
        }
        w.begin_node_at("session", i as u64)?;
        w.prop_bytes_str("session-name", s.name.as_bytes())?;
        w.prop_u64("owner", u64::from(s.owner))?;
        let mut previous = None;
        for (j, f) in s.files.iter().enumerate() {
            if !valid_compatible(f.compatible) || f.state.len() > STATE_MAX {
                return Err(FdtError::BadValue);
            }
            w.begin_node_at("file", j as u64)?;
            if previous != Some(f.compatible) {
                w.prop_bytes_str("compatible", f.compatible)?;
            }
            previous = Some(f.compatible);
            w.prop_u64("token", f.token)?;
            if f.data != 0 {
                w.prop_u64("data", f.data)?;
            }
            if !f.depends.is_empty() {
                w.prop("depends", f.depends.as_bytes())?;
            }
            if !f.state.is_empty() {
                w.prop("state", f.state)?;
            }
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

/// Spells out everything [`encode_part`] writes of a record as `u64`
/// words, one after the other, each list preceded by its length, so that
/// two records give the same words if and only if they are the same
/// record. A caller that keeps the words of the record its blobs hold can
/// tell, without encoding again, that a new record is that one. Stops at
/// the first error `emit` returns.
pub(crate) fn record_words<E>(
    h: &Handover,
    sessions: &[SessionRecord<'_>],
    subsystems: &[SubsystemRecord<'_>],
    emit: &mut impl FnMut(u64) -> Result<(), E>,
) -> Result<(), E> {
    emit(h.generation)?;
    emit(h.boot_id)?;
    emit(sessions.len() as u64)?;
    for s in sessions {
        bytes_words(s.name.as_bytes(), emit)?;
        emit(u64::from(s.owner))?;
        emit(s.files.len() as u64)?;
        for f in s.files {
            bytes_words(f.compatible, emit)?;
            emit(f.token)?;
            emit(f.data)?;
            emit(f.depends.len() as u64)?;
            for token in f.depends.tokens() {
                emit(token)?;
            }
            bytes_words(f.state, emit)?;
        }
    }
    emit(subsystems.len() as u64)?;
    for s in subsystems {
        bytes_words(s.compatible, emit)?;
        emit(s.data)?;
    }
    Ok(())
}

/// `bytes` as [`record_words`] spells them: their length, then eight at a
/// time (the last word zero-padded).
fn bytes_words<E>(bytes: &[u8], emit: &mut impl FnMut(u64) -> Result<(), E>) -> Result<(), E> {
    emit(bytes.len() as u64)?;
    // Whole words with one load each: FREEZE spells every file's state.
    let mut whole = bytes.chunks_exact(8);
    for chunk in &mut whole {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        emit(u64::from_le_bytes(word))?;
    }
    let rest = whole.remainder();
    if !rest.is_empty() {
        let mut word = [0u8; 8];
        word[..rest.len()].copy_from_slice(rest);
        emit(u64::from_le_bytes(word))?;
    }
    Ok(())
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
    depends: Option<Depends<'a>>,
    state: Option<&'a [u8]>,
}

fn node_is(name: &[u8], prefix: &[u8]) -> bool {
    name.len() > prefix.len() + 1 && name.starts_with(prefix) && name[prefix.len()] == b'@'
}

/// Validates the record in `blob` (its first blob, if it has several) and
/// feeds its sessions and files to `sink`. Returns the root fields and
/// where the record's other blobs are. On error `sink` may have seen part
/// of it.
pub(crate) fn decode_first<'a>(
    blob: &'a [u8],
    sink: &mut impl Sink,
) -> Result<(Handover, Parts<'a>), FdtError> {
    let Root {
        header: h,
        part,
        list,
        format,
    } = decode_blob(blob, sink)?;
    if part.index != 0 {
        return Err(FdtError::BadValue);
    }
    let list = list.unwrap_or(&[]);
    if list.len() != 16 * (part.count as usize - 1) {
        return Err(FdtError::BadValue);
    }
    Ok((
        h,
        Parts {
            count: part.count,
            format,
            list,
        },
    ))
}

/// Validates blob `part` (index > 0) of the record whose first blob gave
/// `first` and named format `format` ([`Parts::format`]), and feeds its
/// sessions and files to `sink`.
pub(crate) fn decode_part(
    blob: &[u8],
    first: &Handover,
    format: u32,
    part: Part,
    sink: &mut impl Sink,
) -> Result<(), FdtError> {
    // Blob 0 said what format the record is in: a newer one here is
    // simply not that.
    let Root {
        header: h,
        part: found,
        list,
        format: mine,
    } = decode_blob(blob, sink).map_err(|e| match e {
        FdtError::BadVersion => FdtError::BadValue,
        e => e,
    })?;
    // Blobs of one record, in their places, in one format; only blob 0
    // lists blobs.
    if h != *first || mine != format || found != part || part.index == 0 || list.is_some() {
        return Err(FdtError::BadValue);
    }
    Ok(())
}

/// Which blob of its record `fdt` is: from its `part` and `parts`.
fn part_of(fdt: &Fdt<'_>) -> Result<Part, FdtError> {
    let count = u32::try_from(fdt.root_u64("parts")?).map_err(|_| FdtError::BadValue)?;
    let index = u32::try_from(fdt.root_u64("part")?).map_err(|_| FdtError::BadValue)?;
    // A record in one blob has neither: one in parts has several.
    if !(2..=MAX_PARTS).contains(&count) || index >= count {
        return Err(FdtError::BadValue);
    }
    Ok(Part { index, count })
}

/// What the root of one blob says.
struct Root<'a> {
    header: Handover,
    /// Which blob of its record it is.
    part: Part,
    /// Its `part-blobs`, if it has one.
    list: Option<&'a [u8]>,
    /// The version of its format.
    format: u32,
}

/// Decodes one blob, feeding its sessions and files to `sink`.
fn decode_blob<'a>(blob: &'a [u8], sink: &mut impl Sink) -> Result<Root<'a>, FdtError> {
    let fdt = Fdt::parse(blob)?;
    let version = format(fdt.root_str("compatible")?)?;
    let (owners, part, nodes) = match version {
        1 => (Owners::Root, Part::WHOLE, FileNodes::Full),
        2 => (Owners::Recorded, Part::WHOLE, FileNodes::Full),
        3 => (Owners::Recorded, part_of(&fdt)?, FileNodes::Full),
        _ if fdt.root_prop("part").is_none() && fdt.root_prop("parts").is_none() => {
            (Owners::Recorded, Part::WHOLE, FileNodes::Lean)
        }
        _ => (Owners::Recorded, part_of(&fdt)?, FileNodes::Lean),
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
    // The handler of the last file of the session being read.
    let mut previous = None;
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
                    // Subsystems are in blob 0.
                    2 if node_is(name, b"subsystem") && part.index == 0 => {
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
                    previous = None;
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
                (3, b"depends") => {
                    props.depends = Some(Depends::from_bytes(value).ok_or(FdtError::BadValue)?)
                }
                (3, b"state") => {
                    if value.is_empty() || value.len() > STATE_MAX {
                        return Err(FdtError::BadValue);
                    }
                    props.state = Some(value);
                }
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
                        let (compatible, data) = match nodes {
                            FileNodes::Full => (props.compatible, props.data),
                            FileNodes::Lean => {
                                (props.compatible.or(previous), Some(props.data.unwrap_or(0)))
                            }
                        };
                        let (Some(compatible), Some(token), Some(data)) =
                            (compatible, props.token, data)
                        else {
                            return Err(FdtError::BadValue);
                        };
                        if !valid_compatible(compatible) {
                            return Err(FdtError::BadValue);
                        }
                        previous = Some(compatible);
                        sink.file(FileRecord {
                            compatible,
                            token,
                            data,
                            depends: props.depends.unwrap_or(Depends::NONE),
                            state: props.state.unwrap_or(&[]),
                        })?;
                    }
                    _ => {}
                }
                props = Props::default();
                depth = depth.saturating_sub(1);
            }
        }
    }
    let list = if part.count > 1 {
        fdt.root_prop("part-blobs")
    } else {
        None
    };
    Ok(Root {
        header: h,
        part,
        list,
        format: version,
    })
}

/// How a record's file nodes are written.
#[derive(Clone, Copy, PartialEq, Eq)]
enum FileNodes {
    /// v1 to v3: every file names its handler and carries its data.
    Full,
    /// v4: a file names its handler only where it differs from that of
    /// the file before it in its session, and carries its data only when
    /// it is not 0.
    Lean,
}

/// Whether a record's sessions carry their owners.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Owners {
    /// v2 to v4: each session's `owner` property (root if absent).
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
