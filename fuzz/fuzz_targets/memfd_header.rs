// SPDX-License-Identifier: GPL-2.0

//! cargo-fuzz (libFuzzer) target: the memfd handler's header decoder and
//! folio-list check on arbitrary bytes, from the very same file as the
//! kernel. What the decoder accepts must re-encode to the same bytes.

#![no_main]
#![allow(dead_code)]

#[path = "../../handlers/memfd_format.rs"]
mod memfd_format;

use memfd_format::{FolioCheck, Header, HEADER_LEN};

libfuzzer_sys::fuzz_target!(|input: &[u8]| {
    let Ok(h) = Header::decode(input) else {
        return;
    };
    let mut again = [0u8; HEADER_LEN];
    h.encode(&mut again).expect("a decoded header encodes");
    assert_eq!(Header::decode(&again), Ok(h));
    assert!(h.name().len() <= memfd_format::NAME_MAX);
    // The rest of the input as a folio list: (index, order) pairs.
    let mut check = FolioCheck::new(h.size);
    for pair in input[HEADER_LEN..].chunks_exact(9) {
        let mut index = [0u8; 8];
        index.copy_from_slice(&pair[..8]);
        let _ = check.accept(u64::from_le_bytes(index), 1u64 << (pair[8] % 64));
    }
});
