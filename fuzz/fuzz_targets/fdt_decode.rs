// SPDX-License-Identifier: GPL-2.0

//! cargo-fuzz (libFuzzer) target: the handover decoder (and the FDT
//! parser under it) on arbitrary bytes. Compiled from the very same files
//! as the kernel; any panic (bounds, overflow: built with overflow checks)
//! aborts and libFuzzer reports the input. `make fuzz` runs it.

#![no_main]
#![allow(dead_code)]

#[path = "../../kho_ser.rs"]
mod kho_ser;
#[path = "../../luo_handover.rs"]
mod luo_handover;
#[path = "../../luo_uapi.rs"]
mod luo_uapi;

use kho_ser::{Fdt, FdtError};
use luo_handover::{FileRecord, Sink, SubsystemRecord};
use luo_uapi::Name;

/// Counts what the decoder reports, checking its promises on the way.
struct Check {
    sessions: usize,
    files: usize,
}

impl Sink for Check {
    fn session(&mut self, name: Name, _owner: u32) -> Result<(), FdtError> {
        assert!(!name.is_empty() && name.as_bytes().len() < luo_uapi::NAME_LEN);
        self.sessions += 1;
        Ok(())
    }

    fn file(&mut self, f: FileRecord<'_>) -> Result<(), FdtError> {
        assert!(self.sessions > 0, "a file outside a session");
        assert!(!f.compatible.is_empty() && f.compatible.len() <= luo_handover::COMPATIBLE_MAX);
        assert!(f.depends.len() <= luo_handover::MAX_DEPENDS);
        assert_eq!(f.depends.as_bytes().len(), 8 * f.depends.len());
        assert_eq!(f.depends.tokens().count(), f.depends.len());
        self.files += 1;
        Ok(())
    }

    fn subsystem(&mut self, s: SubsystemRecord<'_>) -> Result<(), FdtError> {
        assert!(!s.compatible.is_empty() && s.compatible.len() <= luo_handover::COMPATIBLE_MAX);
        Ok(())
    }
}

libfuzzer_sys::fuzz_target!(|input: &[u8]| {
    if let Ok(fdt) = Fdt::parse(input) {
        // A parsed blob's tokens are all valid.
        for t in fdt.tokens() {
            assert!(t.is_ok());
        }
    }
    let mut check = Check {
        sessions: 0,
        files: 0,
    };
    if let Ok((h, parts)) = luo_handover::decode_first(input, &mut check) {
        // Blob 0 lists the others; fed as its own second blob it is out
        // of place, whatever it says.
        let second = luo_handover::Part {
            index: 1,
            count: parts.count,
        };
        assert!(luo_handover::decode_part(input, &h, parts.format, second, &mut check).is_err());
        for i in 0..=parts.count {
            let _ = parts.blob(i);
        }
    }
});
