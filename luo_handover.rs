// SPDX-License-Identifier: GPL-2.0

//! The handover record: what one kernel tells the next through KHO.
//!
//! The record is one FDT blob (see `kho_ser`) registered with KHO under
//! [`KHO_NAME`]. Its root node carries:
//!
//! - `compatible`: [`COMPATIBLE`]; any other value is refused;
//! - `generation`: how many live updates led to the kernel that reads it
//!   (a cold boot is generation 0, so the first reader sees 1);
//! - `boot-id`: a random number the writing kernel picked at boot, so the
//!   next kernel (and a test) can tell which kernel handed over.
//!
//! Pure `core` code: the kernel and host tests compile this same file.

use crate::kho_ser::{Fdt, FdtError, FdtWriter};

/// Name of luo-rs's subtree in the KHO root FDT.
pub(crate) const KHO_NAME: &core::ffi::CStr = c"luo-rs";
/// Format of the record; bump on any incompatible change.
pub(crate) const COMPATIBLE: &str = "luo-rs,handover-v1";
/// Bytes reserved for the encoded record.
pub(crate) const MAX_SIZE: usize = 4096;

/// The decoded record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Handover {
    /// Live updates that led to the reading kernel.
    pub(crate) generation: u64,
    /// Random id of the kernel that wrote the record.
    pub(crate) boot_id: u64,
}

impl Handover {
    /// Encodes the record into `out`, returning its length.
    pub(crate) fn encode(&self, out: &mut [u8]) -> Result<usize, FdtError> {
        let mut strings = [0u8; 64];
        let mut w = FdtWriter::new(out, &mut strings)?;
        w.begin_node("")?;
        w.prop_str("compatible", COMPATIBLE)?;
        w.prop_u64("generation", self.generation)?;
        w.prop_u64("boot-id", self.boot_id)?;
        w.end_node()?;
        w.finish()
    }

    /// Decodes and validates a record found in KHO.
    pub(crate) fn decode(blob: &[u8]) -> Result<Self, FdtError> {
        let fdt = Fdt::parse(blob)?;
        if fdt.root_str("compatible")? != COMPATIBLE.as_bytes() {
            return Err(FdtError::BadValue);
        }
        Ok(Self {
            generation: fdt.root_u64("generation")?,
            boot_id: fdt.root_u64("boot-id")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let h = Handover {
            generation: 3,
            boot_id: 0x0123_4567_89ab_cdef,
        };
        let mut buf = [0u8; MAX_SIZE];
        let n = h.encode(&mut buf).unwrap();
        assert_eq!(Handover::decode(&buf[..n]), Ok(h));
    }

    #[test]
    fn other_compatible_is_refused() {
        let mut strings = [0u8; 64];
        let mut buf = [0u8; 256];
        let mut w = FdtWriter::new(&mut buf, &mut strings).unwrap();
        w.begin_node("").unwrap();
        w.prop_str("compatible", "luo-rs,handover-v0").unwrap();
        w.prop_u64("generation", 1).unwrap();
        w.prop_u64("boot-id", 1).unwrap();
        w.end_node().unwrap();
        let n = w.finish().unwrap();
        assert_eq!(Handover::decode(&buf[..n]), Err(FdtError::BadValue));
    }
}
