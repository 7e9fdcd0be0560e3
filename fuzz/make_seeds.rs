// SPDX-License-Identifier: GPL-2.0

//! Writes a seed corpus for the fuzz targets: valid handover records made
//! by the real encoder (a fuzzer cannot guess its way past the FDT header
//! checks quickly on its own). Usage: make_seeds DIR

#[path = "../kho_ser.rs"]
mod kho_ser;
#[path = "../luo_handover.rs"]
mod luo_handover;
#[path = "../luo_uapi.rs"]
mod luo_uapi;

use luo_handover::{encode, FileRecord, Handover, SessionRecord, SubsystemRecord};
use luo_uapi::{Name, NAME_LEN};

fn name(s: &str) -> Name {
    let mut f = [0u8; NAME_LEN];
    f[..s.len()].copy_from_slice(s.as_bytes());
    Name::parse(&f).expect("valid seed name")
}

fn main() {
    let dir = std::env::args().nth(1).expect("usage: make_seeds DIR");
    std::fs::create_dir_all(&dir).expect("seed directory");
    let h = Handover {
        generation: 1,
        boot_id: 0x1234,
    };
    let files = [
        FileRecord {
            compatible: b"luo-rs,test-v1",
            token: 0,
            data: 0x1000,
        },
        FileRecord {
            compatible: b"memfd",
            token: u64::MAX,
            data: 7,
        },
    ];
    let seeds: [&[SessionRecord<'_>]; 3] = [
        &[],
        &[SessionRecord {
            name: name("vm-1"),
            files: &files,
        }],
        &[
            SessionRecord {
                name: name("a"),
                files: &files[..1],
            },
            SessionRecord {
                name: name("b"),
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
        let n = encode(&h, sessions, &subsystems[..i % 2], &mut buf).expect("seed encodes");
        std::fs::write(format!("{dir}/seed-{i}"), &buf[..n]).expect("seed written");
    }
}
