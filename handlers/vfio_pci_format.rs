// SPDX-License-Identifier: GPL-2.0

//! What the VFIO handler hands over for one vfio-pci device file, and the
//! checks the new kernel runs on it before it holds or opens anything.
//!
//! The record is the handler's state in the handover (no KHO blob of its
//! own), written at PREPARE and again at FREEZE:
//!
//! ```text
//! offset  size  field
//!      0     4  version (1)
//!      4     2  PCI segment
//!      6     1  bus
//!      7     1  device and function (devfn)
//!      8     2  vendor id         } checked against the device found at
//!     10     2  device id         } that address in the new kernel: a
//!     12     2  subsystem vendor  } record never opens another device
//!     14     2  subsystem id      }
//!     16     4  class (24 bits)
//!     20     4  the IOAS it is attached to, in its iommufd (1 ..= 2^31 - 1)
//!     24     4  flags: FLAG_MASTER (bit 0)
//! ```
//!
//! All little-endian; 28 bytes. The iommufd is the file's one dependency.
//!
//! Pure `core` code: the kernel and host tests compile this same file.

/// The record's version.
pub(crate) const VERSION: u32 = 1;
/// The record's size.
pub(crate) const LEN: usize = 28;
/// The device was allowed to master the bus (PCI_COMMAND) when recorded.
pub(crate) const FLAG_MASTER: u32 = 1;
/// The largest object id iommufd gives (its ids are 31-bit, from 1).
pub(crate) const MAX_ID: u32 = i32::MAX as u32;

/// A vfio-pci device file, as the handler records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Device {
    /// PCI segment (domain).
    pub(crate) segment: u16,
    /// Bus number.
    pub(crate) bus: u8,
    /// Device and function.
    pub(crate) devfn: u8,
    /// Vendor id.
    pub(crate) vendor: u16,
    /// Device id.
    pub(crate) device: u16,
    /// Subsystem vendor id.
    pub(crate) subsystem_vendor: u16,
    /// Subsystem id.
    pub(crate) subsystem_device: u16,
    /// Class code (24 bits).
    pub(crate) class: u32,
    /// The IOAS it is attached to.
    pub(crate) ioas_id: u32,
    /// Whether it may master the bus.
    pub(crate) master: bool,
}

/// Why a record is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FormatError {
    /// Not [`LEN`] bytes.
    Length,
    /// Another version.
    Version,
    /// A field out of its range, or an unknown flag.
    Value,
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

impl Device {
    /// The record of this device.
    pub(crate) fn encode(&self) -> [u8; LEN] {
        let mut out = [0u8; LEN];
        out[0..4].copy_from_slice(&VERSION.to_le_bytes());
        out[4..6].copy_from_slice(&self.segment.to_le_bytes());
        out[6] = self.bus;
        out[7] = self.devfn;
        out[8..10].copy_from_slice(&self.vendor.to_le_bytes());
        out[10..12].copy_from_slice(&self.device.to_le_bytes());
        out[12..14].copy_from_slice(&self.subsystem_vendor.to_le_bytes());
        out[14..16].copy_from_slice(&self.subsystem_device.to_le_bytes());
        out[16..20].copy_from_slice(&self.class.to_le_bytes());
        out[20..24].copy_from_slice(&self.ioas_id.to_le_bytes());
        let flags = if self.master { FLAG_MASTER } else { 0 };
        out[24..28].copy_from_slice(&flags.to_le_bytes());
        out
    }

    /// Reads a record, refusing what [`Device::encode`] cannot have
    /// written.
    pub(crate) fn decode(b: &[u8]) -> Result<Self, FormatError> {
        if b.len() != LEN {
            return Err(FormatError::Length);
        }
        if u32_at(b, 0) != VERSION {
            return Err(FormatError::Version);
        }
        let class = u32_at(b, 16);
        let ioas_id = u32_at(b, 20);
        let flags = u32_at(b, 24);
        if class >> 24 != 0 || ioas_id == 0 || ioas_id > MAX_ID || flags & !FLAG_MASTER != 0 {
            return Err(FormatError::Value);
        }
        Ok(Self {
            segment: u16_at(b, 4),
            bus: b[6],
            devfn: b[7],
            vendor: u16_at(b, 8),
            device: u16_at(b, 10),
            subsystem_vendor: u16_at(b, 12),
            subsystem_device: u16_at(b, 14),
            class,
            ioas_id,
            master: flags & FLAG_MASTER != 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edu() -> Device {
        Device {
            segment: 0,
            bus: 0,
            devfn: 1 << 3,
            vendor: 0x1234,
            device: 0x11e8,
            subsystem_vendor: 0x1af4,
            subsystem_device: 0x1100,
            class: 0xff_0000,
            ioas_id: 2,
            master: true,
        }
    }

    #[test]
    fn a_record_reads_back() {
        let d = edu();
        assert_eq!(Device::decode(&d.encode()), Ok(d));
        let d = Device {
            segment: 0xffff,
            bus: 0xff,
            devfn: 0xff,
            ioas_id: MAX_ID,
            master: false,
            ..edu()
        };
        assert_eq!(Device::decode(&d.encode()), Ok(d));
    }

    #[test]
    fn damaged_records_are_refused() {
        let good = edu().encode();
        assert_eq!(Device::decode(&good[..LEN - 1]), Err(FormatError::Length));
        let mut longer = [0u8; LEN + 1];
        longer[..LEN].copy_from_slice(&good);
        assert_eq!(Device::decode(&longer), Err(FormatError::Length));
        let with = |at: usize, bytes: &[u8]| {
            let mut b = good;
            b[at..at + bytes.len()].copy_from_slice(bytes);
            Device::decode(&b)
        };
        assert_eq!(with(0, &2u32.to_le_bytes()), Err(FormatError::Version));
        assert_eq!(
            with(16, &0x100_0000u32.to_le_bytes()),
            Err(FormatError::Value)
        );
        assert_eq!(with(20, &0u32.to_le_bytes()), Err(FormatError::Value));
        assert_eq!(
            with(20, &(MAX_ID + 1).to_le_bytes()),
            Err(FormatError::Value)
        );
        assert_eq!(with(24, &2u32.to_le_bytes()), Err(FormatError::Value));
    }
}
