// SPDX-License-Identifier: GPL-2.0

//! Host tests of `luo_uapi.rs` (a child module of it, so private items
//! are in reach); compiled only with `cfg(test)`.

use super::*;

#[test]
fn exact_size_copies_everything() {
    assert_eq!(
        extent(8, 8, 8),
        Ok(Extent {
            copy: 8,
            trailing: 0
        })
    );
}

#[test]
fn below_first_version_is_einval() {
    assert_eq!(extent(0, 8, 8), Err(SizeError::TooSmall));
    assert_eq!(extent(7, 8, 8), Err(SizeError::TooSmall));
}

#[test]
fn older_caller_between_min_and_known() {
    assert_eq!(
        extent(12, 8, 16),
        Ok(Extent {
            copy: 12,
            trailing: 0
        })
    );
}

#[test]
fn newer_caller_has_trailing_bytes_to_check() {
    assert_eq!(
        extent(24, 8, 8),
        Ok(Extent {
            copy: 8,
            trailing: 16
        })
    );
}

#[test]
fn huge_sizes_are_e2big() {
    assert_eq!(extent(4097, 8, 8), Err(SizeError::TooBig));
    assert_eq!(extent(u32::MAX, 8, 8), Err(SizeError::TooBig));
    assert_eq!(
        extent(4096, 8, 8),
        Ok(Extent {
            copy: 8,
            trailing: 4088
        })
    );
}

fn field(s: &[u8]) -> [u8; NAME_LEN] {
    let mut f = [0u8; NAME_LEN];
    f[..s.len()].copy_from_slice(s);
    f
}

#[test]
fn names() {
    let n = Name::parse(&field(b"vm-42")).unwrap();
    assert_eq!(n.as_bytes(), b"vm-42");
    assert_eq!(&n.to_field()[..6], b"vm-42\0");
    assert!(n.to_field()[5..].iter().all(|&b| b == 0));
    assert_eq!(Name::parse(&field(b"")), Err(NameError::Empty));
    assert!(Name::NONE.is_empty());
}

#[test]
fn name_length_limit() {
    let longest = [b'x'; NAME_LEN - 1];
    assert_eq!(
        Name::parse(&field(&longest)).unwrap().as_bytes(),
        &longest[..]
    );
    assert_eq!(Name::parse(&[b'x'; NAME_LEN]), Err(NameError::Unterminated));
}

#[test]
fn bytes_after_the_nul_are_ignored() {
    let mut f = field(b"a");
    f[10] = b'z';
    let n = Name::parse(&f).unwrap();
    assert_eq!(n, Name::parse(&field(b"a")).unwrap());
    assert_eq!(n.to_field(), field(b"a"));
}

#[test]
fn zero_check() {
    assert!(all_zero(&[]));
    assert!(all_zero(&[0; 100]));
    let mut v = [0u8; 100];
    v[99] = 1;
    assert!(!all_zero(&v));
}

#[test]
fn names_from_bytes() {
    assert_eq!(Name::from_bytes(b"memfd").unwrap().as_bytes(), b"memfd");
    assert_eq!(Name::from_bytes(b""), Err(NameError::Empty));
    assert_eq!(
        Name::from_bytes(&[b'x'; NAME_LEN - 1])
            .unwrap()
            .as_bytes()
            .len(),
        NAME_LEN - 1
    );
    assert_eq!(
        Name::from_bytes(&[b'x'; NAME_LEN]),
        Err(NameError::Unterminated)
    );
}
