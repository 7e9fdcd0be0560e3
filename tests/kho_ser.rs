// SPDX-License-Identifier: GPL-2.0

//! Host tests of `kho_ser.rs` (a child module of it, so private items
//! are in reach); compiled only with `cfg(test)`.

use super::*;

fn sample(out: &mut [u8]) -> usize {
    let mut strings = [0u8; 256];
    let mut w = FdtWriter::new(out, &mut strings).unwrap();
    w.begin_node("").unwrap();
    w.prop_str("compatible", "luo-rs,test-v1").unwrap();
    w.prop_u64("generation", 7).unwrap();
    w.begin_node("child@1").unwrap();
    w.prop_u64("generation", 8).unwrap();
    w.end_node().unwrap();
    w.end_node().unwrap();
    w.finish().unwrap()
}

#[test]
fn round_trip() {
    let mut buf = [0u8; 512];
    let n = sample(&mut buf);
    let fdt = Fdt::parse(&buf[..n]).unwrap();
    assert_eq!(fdt.root_str("compatible"), Ok(&b"luo-rs,test-v1"[..]));
    assert_eq!(fdt.root_u64("generation"), Ok(7));
    assert_eq!(fdt.root_u64("missing"), Err(FdtError::BadValue));
    let nodes = fdt
        .tokens()
        .filter(|t| matches!(t, Ok(Token::Begin { .. })))
        .count();
    assert_eq!(nodes, 2);
}

#[test]
fn property_names_are_shared() {
    let mut buf = [0u8; 512];
    let n = sample(&mut buf);
    let strings_size = be32(&buf, 32).unwrap() as usize;
    assert_eq!(strings_size, "compatible\0generation\0".len());
    assert_eq!(be32(&buf, 4).unwrap() as usize, n);
}

#[test]
fn encoder_refuses_bad_input() {
    let mut small = [0u8; 72];
    let mut strings = [0u8; 64];
    let mut w = FdtWriter::new(&mut small, &mut strings).unwrap();
    assert_eq!(w.prop_u64("x", 1), Err(FdtError::Unbalanced));
    assert_eq!(w.begin_node("notroot"), Err(FdtError::BadName));
    w.begin_node("").unwrap();
    assert_eq!(w.begin_node(""), Err(FdtError::BadName));
    assert_eq!(w.prop_u64("a\0b", 1), Err(FdtError::BadName));
    assert_eq!(w.prop_u64("big", 1), Err(FdtError::NoSpace));
    let mut tiny = [0u8; 10];
    let mut s2 = [0u8; 4];
    assert!(FdtWriter::new(&mut tiny, &mut s2).is_err());
}

#[test]
fn unbalanced_finish_is_refused() {
    let mut buf = [0u8; 256];
    let mut strings = [0u8; 64];
    let mut w = FdtWriter::new(&mut buf, &mut strings).unwrap();
    w.begin_node("").unwrap();
    assert_eq!(w.finish(), Err(FdtError::Unbalanced));
}

#[test]
fn every_truncation_is_refused() {
    let mut buf = [0u8; 512];
    let n = sample(&mut buf);
    for len in 0..n {
        assert!(Fdt::parse(&buf[..len]).is_err(), "len {len}");
    }
}

#[test]
fn corrupted_headers_are_refused() {
    let mut buf = [0u8; 512];
    let n = sample(&mut buf);
    let set = |b: &mut [u8], off: usize, v: u32| b[off..off + 4].copy_from_slice(&v.to_be_bytes());
    let cases: [(usize, u32, FdtError); 6] = [
        (0, 0x1234, FdtError::BadMagic),
        (20, 3, FdtError::BadVersion),
        (8, 0xffff_fff0, FdtError::BadLayout),
        (36, 0xffff_fff0, FdtError::BadLayout),
        (12, 0xffff_ffff, FdtError::BadLayout),
        (8, 58, FdtError::BadLayout),
    ];
    for (off, v, want) in cases {
        let mut b = buf;
        set(&mut b, off, v);
        assert_eq!(Fdt::parse(&b[..n]).err(), Some(want), "field at {off}");
    }
}

#[test]
fn bad_tokens_and_strings_are_refused() {
    let mut buf = [0u8; 512];
    let n = sample(&mut buf);
    let struct_off = be32(&buf, 8).unwrap() as usize;
    // Unknown token in place of the root BEGIN_NODE.
    let mut b = buf;
    b[struct_off..struct_off + 4].copy_from_slice(&77u32.to_be_bytes());
    assert_eq!(Fdt::parse(&b[..n]).err(), Some(FdtError::BadToken));
    // Property name offset past the strings block.
    let mut b = buf;
    let prop = struct_off + 8; // BEGIN_NODE + "" padded
    b[prop + 8..prop + 12].copy_from_slice(&0xffffu32.to_be_bytes());
    assert_eq!(Fdt::parse(&b[..n]).err(), Some(FdtError::BadString));
    // Property length past the end of the structure block.
    let mut b = buf;
    b[prop + 4..prop + 8].copy_from_slice(&0x7fff_ffffu32.to_be_bytes());
    assert_eq!(Fdt::parse(&b[..n]).err(), Some(FdtError::Truncated));
}

#[test]
fn indexed_node_names() {
    let mut buf = [0u8; 512];
    let mut strings = [0u8; 16];
    let mut w = FdtWriter::new(&mut buf, &mut strings).unwrap();
    w.begin_node("").unwrap();
    for i in [0u64, 9, 10, 0x1f, u64::MAX] {
        w.begin_node_at("s", i).unwrap();
        w.end_node().unwrap();
    }
    w.end_node().unwrap();
    let n = w.finish().unwrap();
    let fdt = Fdt::parse(&buf[..n]).unwrap();
    let names: [&[u8]; 5] = [b"s@0", b"s@9", b"s@a", b"s@1f", b"s@ffffffffffffffff"];
    let mut seen = 0;
    for t in fdt.tokens() {
        if let Ok(Token::Begin { name, depth: 2 }) = t {
            assert_eq!(name, names[seen]);
            seen += 1;
        }
    }
    assert_eq!(seen, 5);
}

#[test]
fn nesting_is_bounded() {
    // BEGIN_NODE "" repeated: deeper than MAX_DEPTH.
    let mut blob = [0u8; 1024];
    let mut s = [0u8; 8];
    let mut w = FdtWriter::new(&mut blob, &mut s).unwrap();
    w.begin_node("").unwrap();
    for _ in 1..MAX_DEPTH {
        w.begin_node("n").unwrap();
    }
    assert_eq!(w.begin_node("n"), Err(FdtError::TooDeep));
}

#[test]
fn property_names_are_stored_once_however_many_and_wherever_they_live() {
    // More names than the writer remembers, in turns, plus the same names
    // at other addresses: each is stored once, and every property reads
    // back under its own name.
    const NAMES: [&str; 12] = [
        "a", "bb", "ccc", "d", "e", "f", "g", "h", "i", "j", "k", "ll",
    ];
    let copies: Vec<&'static str> = NAMES
        .iter()
        .map(|n| &*Box::leak(String::from(*n).into_boxed_str()))
        .collect();
    let mut buf = vec![0u8; 8192];
    let mut strings = [0u8; 64];
    let mut w = FdtWriter::new(&mut buf, &mut strings).unwrap();
    w.begin_node("").unwrap();
    for round in 0..5u64 {
        w.begin_node_at("n", round).unwrap();
        for (i, name) in NAMES.iter().enumerate() {
            let name = if (i as u64 + round) % 2 == 0 {
                *name
            } else {
                copies[i]
            };
            w.prop_u64(name, round * 100 + i as u64).unwrap();
        }
        w.end_node().unwrap();
    }
    w.end_node().unwrap();
    let n = w.finish().unwrap();
    let strings_size = be32(&buf, 32).unwrap() as usize;
    assert_eq!(
        strings_size,
        NAMES.iter().map(|s| s.len() + 1).sum::<usize>()
    );
    let fdt = Fdt::parse(&buf[..n]).unwrap();
    let mut node = 0u64;
    let mut seen = 0;
    for t in fdt.tokens() {
        match t.unwrap() {
            Token::Begin { depth: 2, .. } => seen = 0,
            Token::Prop { name, value } => {
                assert_eq!(name, NAMES[seen].as_bytes());
                let want = node * 100 + seen as u64;
                assert_eq!(value, &want.to_be_bytes()[..]);
                seen += 1;
            }
            Token::End if seen == NAMES.len() => {
                node += 1;
                seen = 0;
            }
            _ => {}
        }
    }
    assert_eq!(node, 5);
}

#[test]
fn indexed_nodes_are_checked_like_others() {
    let mut buf = [0u8; 1024];
    let mut strings = [0u8; 16];
    let mut w = FdtWriter::new(&mut buf, &mut strings).unwrap();
    assert_eq!(w.begin_node_at("s", 1), Err(FdtError::BadName));
    w.begin_node("").unwrap();
    assert_eq!(w.begin_node_at("", 1), Err(FdtError::BadName));
    assert_eq!(w.begin_node_at("a\0b", 1), Err(FdtError::BadName));
    let longest = "x".repeat(MAX_INDEXED_PREFIX);
    assert_eq!(
        w.begin_node_at(&"x".repeat(MAX_INDEXED_PREFIX + 1), 1),
        Err(FdtError::BadName)
    );
    // The longest name fills the token exactly.
    w.begin_node_at(&longest, u64::MAX).unwrap();
    w.end_node().unwrap();
    for _ in 1..MAX_DEPTH {
        w.begin_node_at("n", 3).unwrap();
    }
    assert_eq!(w.begin_node_at("n", 3), Err(FdtError::TooDeep));
    for _ in 1..MAX_DEPTH {
        w.end_node().unwrap();
    }
    w.end_node().unwrap();
    let n = w.finish().unwrap();
    let fdt = Fdt::parse(&buf[..n]).unwrap();
    let want = format!("{longest}@ffffffffffffffff");
    let found = fdt
        .tokens()
        .any(|t| matches!(t, Ok(Token::Begin { name, depth: 2 }) if name == want.as_bytes()));
    assert!(found);
}

#[test]
fn properties_need_a_node() {
    let mut buf = [0u8; 256];
    let mut strings = [0u8; 64];
    let mut w = FdtWriter::new(&mut buf, &mut strings).unwrap();
    assert_eq!(w.prop_str("compatible", "x"), Err(FdtError::Unbalanced));
    assert_eq!(w.prop("raw", &[1]), Err(FdtError::Unbalanced));
}
