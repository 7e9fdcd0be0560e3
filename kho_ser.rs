// SPDX-License-Identifier: GPL-2.0

//! A flattened device tree (FDT) encoder and a defensive decoder.
//!
//! luo-rs hands its state to the next kernel as one FDT blob in memory
//! preserved by Kexec HandOver. The encoder writes into caller-provided
//! buffers and the decoder reads a byte slice without allocating, so this
//! module needs only `core` and is shared by the kernel, host tests and
//! fuzzers.
//!
//! The decoder trusts nothing: every offset and length is checked against
//! the blob, every string must be NUL-terminated inside its block, node
//! nesting is bounded by [`MAX_DEPTH`], and the token walk always moves
//! forward, so a malformed blob is refused with a [`FdtError`] rather than
//! read out of bounds or looped on.

/// The FDT magic number (big-endian in the blob).
pub(crate) const FDT_MAGIC: u32 = 0xd00d_feed;
const FDT_VERSION: u32 = 17;
const FDT_LAST_COMP_VERSION: u32 = 16;
const HEADER_SIZE: usize = 40;
/// One empty memory reservation entry (the terminator) follows the header.
const RSVMAP_SIZE: usize = 16;

const FDT_BEGIN_NODE: u32 = 1;
const FDT_END_NODE: u32 = 2;
const FDT_PROP: u32 = 3;
const FDT_NOP: u32 = 4;
const FDT_END: u32 = 9;

/// Deepest node nesting the decoder accepts (the root is depth 1).
pub(crate) const MAX_DEPTH: usize = 16;

/// Why a blob could not be encoded or decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FdtError {
    /// The output buffer is too small.
    NoSpace,
    /// A name is empty, too long, or contains a NUL byte.
    BadName,
    /// END_NODE without a matching BEGIN_NODE, or `finish` with open nodes.
    Unbalanced,
    /// The blob is shorter than its header or than the header claims.
    Truncated,
    /// Wrong magic number.
    BadMagic,
    /// A version this decoder does not read.
    BadVersion,
    /// A block offset or size points outside the blob or overlaps another.
    BadLayout,
    /// An unknown token, or a token where it may not appear.
    BadToken,
    /// A string (node name or property name) is not NUL-terminated in bounds.
    BadString,
    /// Nodes nested deeper than [`MAX_DEPTH`].
    TooDeep,
    /// A property value has the wrong length for its type.
    BadValue,
}

fn be32(b: &[u8], off: usize) -> Result<u32, FdtError> {
    let end = off.checked_add(4).ok_or(FdtError::Truncated)?;
    let s = b.get(off..end).ok_or(FdtError::Truncated)?;
    Ok(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

const fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// Writes an FDT into `out`, keeping property names in `strings` until
/// [`FdtWriter::finish`] appends them.
///
/// Property names are `'static` (the record's schema, not data): the
/// writer remembers where the last few went in the strings block by their
/// address, so a record of many nodes with the same few properties does
/// not search the block for every one.
pub(crate) struct FdtWriter<'a> {
    out: &'a mut [u8],
    strings: &'a mut [u8],
    pos: usize,
    strings_len: usize,
    depth: usize,
    /// The last names looked up: (address, length, offset in `strings`).
    recent: [(usize, usize, u32); RECENT_NAMES],
    /// Where in `recent` the next name found goes.
    next_recent: usize,
}

/// How many property names [`FdtWriter`] remembers: more than a node of
/// luo-rs's record uses.
const RECENT_NAMES: usize = 8;

/// Room for the token [`FdtWriter::begin_node_at`] writes.
const INDEXED_TOKEN: usize = 64;

/// The longest prefix of [`FdtWriter::begin_node_at`]: its token holds
/// FDT_BEGIN_NODE (4 bytes), the prefix, `@`, up to 16 hex digits and the
/// NUL.
pub(crate) const MAX_INDEXED_PREFIX: usize = INDEXED_TOKEN - 4 - 1 - 16 - 1;

impl<'a> FdtWriter<'a> {
    /// Starts a blob in `out`; `strings` is scratch space for property names.
    pub(crate) fn new(out: &'a mut [u8], strings: &'a mut [u8]) -> Result<Self, FdtError> {
        let start = HEADER_SIZE + RSVMAP_SIZE;
        let head = out.get_mut(..start).ok_or(FdtError::NoSpace)?;
        head.fill(0);
        Ok(Self {
            out,
            strings,
            pos: start,
            strings_len: 0,
            depth: 0,
            recent: [(0, 0, 0); RECENT_NAMES],
            next_recent: 0,
        })
    }

    fn put(&mut self, bytes: &[u8]) -> Result<(), FdtError> {
        let end = self.pos.checked_add(bytes.len()).ok_or(FdtError::NoSpace)?;
        let dst = self.out.get_mut(self.pos..end).ok_or(FdtError::NoSpace)?;
        dst.copy_from_slice(bytes);
        self.pos = end;
        Ok(())
    }

    fn put32(&mut self, v: u32) -> Result<(), FdtError> {
        self.put(&v.to_be_bytes())
    }

    fn pad(&mut self) -> Result<(), FdtError> {
        let zeros = [0u8; 3];
        let pad = zeros.get(..align4(self.pos) - self.pos);
        self.put(pad.ok_or(FdtError::NoSpace)?)
    }

    fn check_name(name: &str) -> Result<(), FdtError> {
        if name.is_empty() || name.len() > 255 || name.bytes().any(|b| b == 0) {
            return Err(FdtError::BadName);
        }
        Ok(())
    }

    /// Offset of `name` in the strings block, adding it if new; `BadName`
    /// if it is not a valid property name.
    fn string_offset(&mut self, name: &'static str) -> Result<u32, FdtError> {
        let key = (name.as_ptr() as usize, name.len());
        // A `'static` string at the same address with the same length is
        // the same name, checked and placed before.
        if let Some(&(_, _, off)) = self.recent.iter().find(|r| (r.0, r.1) == key) {
            return Ok(off);
        }
        Self::check_name(name)?;
        let off = self.find_or_add_string(name)?;
        if let Some(slot) = self.recent.get_mut(self.next_recent % RECENT_NAMES) {
            *slot = (key.0, key.1, off);
        }
        self.next_recent = self.next_recent.wrapping_add(1);
        Ok(off)
    }

    /// Offset of `name` in the strings block, searched for, then added if
    /// it is not there.
    fn find_or_add_string(&mut self, name: &str) -> Result<u32, FdtError> {
        let used = &self.strings[..self.strings_len];
        let mut off = 0;
        while off < used.len() {
            let len = used[off..]
                .iter()
                .position(|&b| b == 0)
                .unwrap_or(used.len() - off);
            if &used[off..off + len] == name.as_bytes() {
                return u32::try_from(off).map_err(|_| FdtError::NoSpace);
            }
            off += len + 1;
        }
        let start = self.strings_len;
        let end = start + name.len() + 1;
        let dst = self.strings.get_mut(start..end).ok_or(FdtError::NoSpace)?;
        dst[..name.len()].copy_from_slice(name.as_bytes());
        dst[name.len()] = 0;
        self.strings_len = end;
        u32::try_from(start).map_err(|_| FdtError::NoSpace)
    }

    /// Opens a node; the first node opened is the root and must be named "".
    pub(crate) fn begin_node(&mut self, name: &str) -> Result<(), FdtError> {
        if self.depth > 0 {
            Self::check_name(name)?;
        } else if !name.is_empty() {
            return Err(FdtError::BadName);
        }
        if self.depth >= MAX_DEPTH {
            return Err(FdtError::TooDeep);
        }
        self.put32(FDT_BEGIN_NODE)?;
        self.put(name.as_bytes())?;
        self.put(&[0])?;
        self.pad()?;
        self.depth += 1;
        Ok(())
    }

    /// Opens a node named `prefix@<index in hex>`, e.g. `session@1f`, under
    /// the root. `BadName` if `prefix` is empty, longer than
    /// [`MAX_INDEXED_PREFIX`] or holds a NUL, or if no root is open.
    pub(crate) fn begin_node_at(&mut self, prefix: &str, index: u64) -> Result<(), FdtError> {
        // The whole token at once: FDT_BEGIN_NODE, the name, its NUL and
        // the padding.
        let mut token = [0u8; INDEXED_TOKEN];
        let p = prefix.as_bytes();
        if p.len() > MAX_INDEXED_PREFIX {
            return Err(FdtError::BadName);
        }
        Self::check_name(prefix)?;
        if self.depth == 0 {
            return Err(FdtError::BadName);
        }
        if self.depth >= MAX_DEPTH {
            return Err(FdtError::TooDeep);
        }
        token[..4].copy_from_slice(&FDT_BEGIN_NODE.to_be_bytes());
        token[4..4 + p.len()].copy_from_slice(p);
        token[4 + p.len()] = b'@';
        let mut len = 4 + p.len() + 1;
        let digits = if index == 0 {
            1
        } else {
            (64 - index.leading_zeros() as usize).div_ceil(4)
        };
        for i in (0..digits).rev() {
            let nibble = ((index >> (i * 4)) & 0xf) as u8;
            token[len] = if nibble < 10 {
                b'0' + nibble
            } else {
                b'a' + nibble - 10
            };
            len += 1;
        }
        // The NUL, then zeros up to a multiple of 4 (already zero).
        let len = align4(len + 1);
        self.put(token.get(..len).ok_or(FdtError::BadName)?)?;
        self.depth += 1;
        Ok(())
    }

    /// Closes the innermost open node.
    pub(crate) fn end_node(&mut self) -> Result<(), FdtError> {
        if self.depth == 0 {
            return Err(FdtError::Unbalanced);
        }
        self.put32(FDT_END_NODE)?;
        self.depth -= 1;
        Ok(())
    }

    /// Adds a property with a raw value to the open node.
    pub(crate) fn prop(&mut self, name: &'static str, value: &[u8]) -> Result<(), FdtError> {
        if self.depth == 0 {
            return Err(FdtError::Unbalanced);
        }
        let len = u32::try_from(value.len()).map_err(|_| FdtError::NoSpace)?;
        let nameoff = self.string_offset(name)?;
        self.prop_header(len, nameoff)?;
        self.put(value)?;
        self.pad()
    }

    /// Writes FDT_PROP, the value's length and the name's offset.
    fn prop_header(&mut self, len: u32, nameoff: u32) -> Result<(), FdtError> {
        let mut head = [0u8; 12];
        head[..4].copy_from_slice(&FDT_PROP.to_be_bytes());
        head[4..8].copy_from_slice(&len.to_be_bytes());
        head[8..].copy_from_slice(&nameoff.to_be_bytes());
        self.put(&head)
    }

    /// Adds a big-endian u64 property (two FDT cells).
    pub(crate) fn prop_u64(&mut self, name: &'static str, value: u64) -> Result<(), FdtError> {
        self.prop(name, &value.to_be_bytes())
    }

    /// Adds a NUL-terminated string property.
    pub(crate) fn prop_str(&mut self, name: &'static str, value: &str) -> Result<(), FdtError> {
        self.prop_bytes_str(name, value.as_bytes())
    }

    /// Adds a NUL-terminated string property from raw bytes (which must
    /// not contain NUL).
    pub(crate) fn prop_bytes_str(
        &mut self,
        name: &'static str,
        value: &[u8],
    ) -> Result<(), FdtError> {
        if self.depth == 0 {
            return Err(FdtError::Unbalanced);
        }
        if value.contains(&0) {
            return Err(FdtError::BadValue);
        }
        let len = u32::try_from(value.len() + 1).map_err(|_| FdtError::NoSpace)?;
        let nameoff = self.string_offset(name)?;
        self.prop_header(len, nameoff)?;
        self.put(value)?;
        // The NUL, then the padding.
        let zeros = [0u8; 4];
        let end = zeros.get(..align4(self.pos + 1) - self.pos);
        self.put(end.ok_or(FdtError::NoSpace)?)
    }

    /// Ends the blob, writes the header and returns its total size.
    pub(crate) fn finish(mut self) -> Result<usize, FdtError> {
        if self.depth != 0 {
            return Err(FdtError::Unbalanced);
        }
        self.put32(FDT_END)?;
        let struct_off = HEADER_SIZE + RSVMAP_SIZE;
        let struct_size = self.pos - struct_off;
        let strings_off = self.pos;
        let strings_len = self.strings_len;
        let end = strings_off
            .checked_add(strings_len)
            .ok_or(FdtError::NoSpace)?;
        let dst = self
            .out
            .get_mut(strings_off..end)
            .ok_or(FdtError::NoSpace)?;
        dst.copy_from_slice(&self.strings[..strings_len]);
        let field = |v: usize| u32::try_from(v).map_err(|_| FdtError::NoSpace);
        let header = [
            FDT_MAGIC,
            field(end)?,
            field(struct_off)?,
            field(strings_off)?,
            field(HEADER_SIZE)?,
            FDT_VERSION,
            FDT_LAST_COMP_VERSION,
            0,
            field(strings_len)?,
            field(struct_size)?,
        ];
        for (i, v) in header.iter().enumerate() {
            self.out[i * 4..i * 4 + 4].copy_from_slice(&v.to_be_bytes());
        }
        Ok(end)
    }
}

/// One item of the structure block, as met in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Token<'a> {
    /// A node starts; `depth` is 1 for the root.
    Begin { name: &'a [u8], depth: usize },
    /// The innermost node ends.
    End,
    /// A property of the innermost open node.
    Prop { name: &'a [u8], value: &'a [u8] },
}

/// A validated view of an FDT blob.
#[derive(Clone, Copy)]
pub(crate) struct Fdt<'a> {
    structs: &'a [u8],
    strings: &'a [u8],
}

fn cstr_at(b: &[u8], off: usize) -> Result<&[u8], FdtError> {
    let rest = b.get(off..).ok_or(FdtError::BadString)?;
    let len = rest
        .iter()
        .position(|&c| c == 0)
        .ok_or(FdtError::BadString)?;
    Ok(&rest[..len])
}

impl<'a> Fdt<'a> {
    /// Checks the header and block layout of `blob`, then walks the whole
    /// structure block once so later lookups meet only valid tokens.
    pub(crate) fn parse(blob: &'a [u8]) -> Result<Self, FdtError> {
        if blob.len() < HEADER_SIZE {
            return Err(FdtError::Truncated);
        }
        if be32(blob, 0)? != FDT_MAGIC {
            return Err(FdtError::BadMagic);
        }
        let total = be32(blob, 4)? as usize;
        let struct_off = be32(blob, 8)? as usize;
        let strings_off = be32(blob, 12)? as usize;
        let version = be32(blob, 20)?;
        let last_comp = be32(blob, 24)?;
        let strings_size = be32(blob, 32)? as usize;
        let struct_size = be32(blob, 36)? as usize;
        if version < FDT_VERSION || last_comp > FDT_VERSION {
            return Err(FdtError::BadVersion);
        }
        if total > blob.len() || total < HEADER_SIZE {
            return Err(FdtError::Truncated);
        }
        let struct_end = struct_off
            .checked_add(struct_size)
            .ok_or(FdtError::BadLayout)?;
        let strings_end = strings_off
            .checked_add(strings_size)
            .ok_or(FdtError::BadLayout)?;
        if struct_off < HEADER_SIZE
            || struct_off % 4 != 0
            || struct_end > total
            || strings_off < HEADER_SIZE
            || strings_end > total
            || (struct_off < strings_end && strings_off < struct_end)
        {
            return Err(FdtError::BadLayout);
        }
        let fdt = Self {
            structs: &blob[struct_off..struct_end],
            strings: &blob[strings_off..strings_end],
        };
        // Validate everything once.
        let mut it = fdt.tokens();
        for t in &mut it {
            t?;
        }
        if !it.ended {
            return Err(FdtError::Truncated);
        }
        Ok(fdt)
    }

    /// Iterates over the structure block.
    pub(crate) fn tokens(&self) -> Tokens<'a> {
        Tokens {
            fdt: *self,
            pos: 0,
            depth: 0,
            seen_root: false,
            ended: false,
            failed: false,
        }
    }

    /// The value of property `name` of the root node.
    pub(crate) fn root_prop(&self, name: &str) -> Option<&'a [u8]> {
        for t in self.tokens() {
            match t {
                Ok(Token::Prop { name: n, value }) if n == name.as_bytes() => return Some(value),
                Ok(Token::Begin { depth, .. }) if depth > 1 => return None,
                Err(_) => return None,
                _ => {}
            }
        }
        None
    }

    /// The root property `name` as a big-endian u64.
    pub(crate) fn root_u64(&self, name: &str) -> Result<u64, FdtError> {
        value_u64(self.root_prop(name).ok_or(FdtError::BadValue)?)
    }

    /// The root property `name` as a string without its NUL.
    pub(crate) fn root_str(&self, name: &str) -> Result<&'a [u8], FdtError> {
        value_str(self.root_prop(name).ok_or(FdtError::BadValue)?)
    }
}

/// A property value as a big-endian u64.
pub(crate) fn value_u64(v: &[u8]) -> Result<u64, FdtError> {
    let arr: [u8; 8] = v.try_into().map_err(|_| FdtError::BadValue)?;
    Ok(u64::from_be_bytes(arr))
}

/// A property value as a string without its NUL; exactly one NUL, last.
pub(crate) fn value_str(v: &[u8]) -> Result<&[u8], FdtError> {
    match v.split_last() {
        Some((0, s)) if !s.contains(&0) => Ok(s),
        _ => Err(FdtError::BadValue),
    }
}

/// Iterator over the tokens of an [`Fdt`]; yields an error once and stops.
pub(crate) struct Tokens<'a> {
    fdt: Fdt<'a>,
    pos: usize,
    depth: usize,
    seen_root: bool,
    ended: bool,
    failed: bool,
}

impl<'a> Tokens<'a> {
    fn step(&mut self) -> Result<Option<Token<'a>>, FdtError> {
        let s = self.fdt.structs;
        loop {
            let tag = be32(s, self.pos)?;
            self.pos += 4;
            match tag {
                FDT_NOP => continue,
                FDT_BEGIN_NODE => {
                    if self.depth == 0 && self.seen_root {
                        return Err(FdtError::BadToken);
                    }
                    let name = cstr_at(s, self.pos)?;
                    self.pos = align4(self.pos + name.len() + 1);
                    if self.depth >= MAX_DEPTH {
                        return Err(FdtError::TooDeep);
                    }
                    self.depth += 1;
                    self.seen_root = true;
                    return Ok(Some(Token::Begin {
                        name,
                        depth: self.depth,
                    }));
                }
                FDT_END_NODE => {
                    if self.depth == 0 {
                        return Err(FdtError::BadToken);
                    }
                    self.depth -= 1;
                    return Ok(Some(Token::End));
                }
                FDT_PROP => {
                    if self.depth == 0 {
                        return Err(FdtError::BadToken);
                    }
                    let len = be32(s, self.pos)? as usize;
                    let nameoff = be32(s, self.pos + 4)? as usize;
                    let start = self.pos + 8;
                    let end = start.checked_add(len).ok_or(FdtError::Truncated)?;
                    let value = s.get(start..end).ok_or(FdtError::Truncated)?;
                    let name = cstr_at(self.fdt.strings, nameoff)?;
                    self.pos = align4(end);
                    return Ok(Some(Token::Prop { name, value }));
                }
                FDT_END => {
                    if self.depth != 0 || !self.seen_root {
                        return Err(FdtError::Unbalanced);
                    }
                    self.ended = true;
                    return Ok(None);
                }
                _ => return Err(FdtError::BadToken),
            }
        }
    }
}

impl<'a> Iterator for Tokens<'a> {
    type Item = Result<Token<'a>, FdtError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.ended || self.failed {
            return None;
        }
        match self.step() {
            Ok(Some(t)) => Some(Ok(t)),
            Ok(None) => None,
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
#[path = "tests/kho_ser.rs"]
mod tests;
