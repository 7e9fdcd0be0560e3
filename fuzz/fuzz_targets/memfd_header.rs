// SPDX-License-Identifier: GPL-2.0

//! cargo-fuzz (libFuzzer) target: the memfd handler's header, state and
//! run decoders and folio check on arbitrary bytes, from the very same
//! file as the kernel. What the decoders accept must re-encode to the same
//! bytes (a state, whose length is exact, to the very input).

#![no_main]
#![allow(dead_code)]

#[path = "../../handlers/memfd_format.rs"]
mod memfd_format;

use memfd_format::{FolioCheck, Header, Run, Runs, HEADER_LEN};

libfuzzer_sys::fuzz_target!(|input: &[u8]| {
    if let Ok((h, runs)) = Header::decode_state(input) {
        let mut again = vec![0u8; h.state_len()];
        h.encode_state(runs.pairs(), &mut again)
            .expect("a decoded state encodes");
        assert_eq!(&again[..], input);
        assert!(h.list_inline() && runs.pairs().len() as u64 == h.nr_entries);
    }
    let Ok(h) = Header::decode(input) else {
        return;
    };
    let mut again = [0u8; HEADER_LEN];
    h.encode(&mut again).expect("a decoded header encodes");
    assert_eq!(Header::decode(&again), Ok(h));
    assert!(h.name().len() <= memfd_format::NAME_MAX);
    // The rest of the input as runs, checked folio by folio as the
    // kernel does.
    let pages = memfd_format::pages(h.size);
    let mut check = FolioCheck::new(h.size);
    for words in input[HEADER_LEN..].chunks_exact(16).take(64) {
        let mut a = [0u8; 8];
        let mut b = [0u8; 8];
        a.copy_from_slice(&words[..8]);
        b.copy_from_slice(&words[8..]);
        let Ok(run) = Run::decode(
            [u64::from_le_bytes(a), u64::from_le_bytes(b)],
            pages,
            Runs::EitherWay,
        ) else {
            continue;
        };
        assert_eq!(Run::decode(run.encode(), pages, Runs::EitherWay), Ok(run));
        for (_, index) in run.folios().take(4096) {
            let _ = check.accept(index, 1 << run.order);
        }
    }
});
