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
