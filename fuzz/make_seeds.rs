// SPDX-License-Identifier: GPL-2.0

//! Writes a seed corpus for the fuzz targets: valid handover records and
//! memfd headers made by the real encoders (a fuzzer cannot guess its way
//! past the header checks quickly on its own), into DIR/fdt_decode and
//! DIR/memfd_header. Usage: make_seeds DIR

#[path = "../kho_ser.rs"]
mod kho_ser;
#[path = "../luo_handover.rs"]
mod luo_handover;
#[path = "../luo_uapi.rs"]
mod luo_uapi;
#[path = "../handlers/memfd_format.rs"]
mod memfd_format;

use luo_handover::{
    encode_part, Depends, FileRecord, Handover, Part, SessionRecord, SubsystemRecord,
};
use luo_uapi::{Name, NAME_LEN};

fn name(s: &str) -> Name {
    let mut f = [0u8; NAME_LEN];
    f[..s.len()].copy_from_slice(s.as_bytes());
    Name::parse(&f).expect("valid seed name")
}

/// The `depends` of the seed file that needs the two before it.
const NEEDS: [u8; 16] = [
    0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
];

fn main() {
    let dir = std::env::args().nth(1).expect("usage: make_seeds DIR");
    for sub in ["fdt_decode", "memfd_header"] {
        std::fs::create_dir_all(format!("{dir}/{sub}")).expect("seed directory");
    }
    let h = Handover {
        generation: 1,
        boot_id: 0x1234,
    };
    let files = [
        FileRecord {
            compatible: b"luo-rs,test-v1",
            token: 0,
            data: 0x1000,
            depends: Depends::NONE,
            state: &[],
        },
        FileRecord {
            compatible: b"memfd",
            token: u64::MAX,
            data: 7,
            depends: Depends::NONE,
            state: &[],
        },
        // Needs both files before it.
        FileRecord {
            compatible: b"luo-rs,test-v1",
            token: 5,
            data: 0x2000,
            depends: Depends::from_bytes(&NEEDS).expect("a whole number of tokens"),
            state: &[],
        },
    ];
    let seeds: [&[SessionRecord<'_>]; 3] = [
        &[],
        &[SessionRecord {
            name: name("vm-1"),
            owner: 1000,
            files: &files,
        }],
        &[
            SessionRecord {
                name: name("a"),
                owner: 1000,
                files: &files[..1],
            },
            SessionRecord {
                name: name("b"),
                owner: 1000,
                files: &[],
            },
        ],
    ];
    for (i, sessions) in seeds.iter().enumerate() {
        let mut buf = vec![0u8; 4096];
        let subsystems = [SubsystemRecord {
            compatible: b"luo-rs,test-subsystem-v1",
            data: i as u64,
        }];
        // Whole records, and the first of a record in three blobs.
        let (part, list): (_, &[(u64, u64)]) = if i % 3 == 2 {
            (Part { index: 0, count: 3 }, &[(0x1000, 64), (0x2000, 64)])
        } else {
            (Part::WHOLE, &[])
        };
        let n = encode_part(&h, part, list, sessions, &subsystems[..i % 2], &mut buf)
            .expect("seed encodes");
        std::fs::write(format!("{dir}/fdt_decode/seed-{i}"), &buf[..n]).expect("seed written");
    }
    for (i, size) in [0u64, 1, 4096, 12345, 1 << 30].into_iter().enumerate() {
        let mut name = [0u8; memfd_format::NAME_MAX];
        name[..8].copy_from_slice(b"memfd:kv");
        let h = memfd_format::Header {
            kind: memfd_format::Kind::Memfd,
            version: memfd_format::VERSION,
            flags: 0xf,
            size,
            pos: size / 2,
            nr_entries: memfd_format::pages(size).min(3),
            mode: 0o600,
            list: [0; memfd_format::LIST_DESC_LEN],
            name,
            name_len: 8,
        };
        let mut buf = vec![0u8; memfd_format::HEADER_LEN];
        h.encode(&mut buf).expect("seed encodes");
        // Inline runs of one page each.
        for index in 0..h.nr_entries {
            let run = memfd_format::Run::one(0x10_0000 + index * 0x1000, index, 0);
            for word in run.encode() {
                buf.extend_from_slice(&word.to_le_bytes());
            }
        }
        std::fs::write(format!("{dir}/memfd_header/seed-{i}"), &buf).expect("seed written");
        // The same memfd as a version 3 state, if its runs fit in one.
        let runs: Vec<[u64; 2]> = (0..h.nr_entries)
            .map(|index| memfd_format::Run::one(0x10_0000 + index * 0x1000, index, 0).encode())
            .collect();
        let state = memfd_format::Header {
            version: memfd_format::VERSION_3,
            ..h
        };
        let mut buf = vec![0u8; state.state_len()];
        state.encode_state(&runs, &mut buf).expect("seed encodes");
        std::fs::write(format!("{dir}/memfd_header/state-{i}"), &buf).expect("seed written");
    }
}
