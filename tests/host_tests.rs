// SPDX-License-Identifier: GPL-2.0

//! Host tests of luo-rs's pure modules, compiled from the very same files
//! the kernel builds (each module's own `#[cfg(test)]` tests run here),
//! plus checks of the FDT encoder against a real FDT implementation (dtc).

#![allow(dead_code)]

#[path = "../file_deps.rs"]
mod file_deps;
#[path = "../handlers/iommufd_format.rs"]
mod iommufd_format;
#[path = "../kho_ser.rs"]
mod kho_ser;
#[path = "../handlers/kvm_vcpu_format.rs"]
mod kvm_vcpu_format;
#[path = "../luo_handover.rs"]
mod luo_handover;
#[path = "../luo_state.rs"]
mod luo_state;
#[path = "../luo_uapi.rs"]
mod luo_uapi;
#[path = "../handlers/memfd_format.rs"]
mod memfd_format;
#[path = "../handlers/vfio_pci_format.rs"]
mod vfio_pci_format;

#[cfg(test)]
mod against_dtc {
    use crate::kho_ser::FdtError;
    use crate::luo_handover::{
        decode_first, encode_part, Depends, FileRecord, Handover, Part, SessionRecord, Sink,
        SubsystemRecord,
    };
    use crate::luo_uapi::{Name, NAME_LEN};

    const MAX_SIZE: usize = 4096;

    struct Count(usize, usize, usize);

    impl Sink for Count {
        fn session(&mut self, _: Name, _: u32) -> Result<(), FdtError> {
            self.0 += 1;
            Ok(())
        }
        fn file(&mut self, _: FileRecord<'_>) -> Result<(), FdtError> {
            self.1 += 1;
            Ok(())
        }
        fn subsystem(&mut self, _: SubsystemRecord<'_>) -> Result<(), FdtError> {
            self.2 += 1;
            Ok(())
        }
    }

    fn sample(h: &Handover, out: &mut [u8]) -> usize {
        let mut field = [0u8; NAME_LEN];
        field[..4].copy_from_slice(b"vm-1");
        // The second file depends on the first (token 42).
        let depends = 42u64.to_be_bytes();
        let files = [
            FileRecord {
                compatible: b"luo-rs,test-v1",
                token: 42,
                data: 0x1234,
                depends: Depends::NONE,
                state: &[],
            },
            FileRecord {
                compatible: b"luo-rs,test-v1",
                token: 43,
                data: 0x5678,
                depends: Depends::from_bytes(&depends).unwrap(),
                state: &[],
            },
        ];
        let s = [SessionRecord {
            name: Name::parse(&field).unwrap(),
            owner: 1000,
            files: &files,
        }];
        let subsystems = [SubsystemRecord {
            compatible: b"luo-rs,test-subsystem-v1",
            data: 0xabcd,
        }];
        encode_part(h, Part::WHOLE, &[], &s, &subsystems, out).unwrap()
    }
    use std::process::Command;

    /// Runs `dtc -I dtb -O <format>` on `blob` and returns its output.
    fn dtc(blob: &[u8], format: &str) -> Vec<u8> {
        let dir = std::env::temp_dir().join(format!("luo-host-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("in-{format}.dtb"));
        std::fs::write(&path, blob).unwrap();
        let out = Command::new("dtc")
            .args(["-q", "-I", "dtb", "-O", format])
            .arg(&path)
            .output()
            .expect("dtc (device-tree-compiler) must be installed");
        std::fs::remove_file(&path).unwrap();
        assert!(
            out.status.success(),
            "dtc refused the blob: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    #[test]
    fn dtc_reads_the_handover_record() {
        let h = Handover {
            generation: 5,
            boot_id: 0x1122_3344_5566_7788,
        };
        let mut buf = [0u8; MAX_SIZE];
        let n = sample(&h, &mut buf);
        let dts = String::from_utf8(dtc(&buf[..n], "dts")).unwrap();
        assert!(
            dts.contains("compatible = \"luo-rs,handover-v4\";"),
            "{dts}"
        );
        assert!(dts.contains("generation = <0x00 0x05>;"), "{dts}");
        assert!(dts.contains("boot-id = <0x11223344 0x55667788>;"), "{dts}");
        assert!(dts.contains("session@0 {"), "{dts}");
        assert!(dts.contains("session-name = \"vm-1\";"), "{dts}");
        assert!(dts.contains("file@0 {"), "{dts}");
        assert!(dts.contains("compatible = \"luo-rs,test-v1\";"), "{dts}");
        assert!(dts.contains("token = <0x00 0x2a>;"), "{dts}");
        assert!(dts.contains("data = <0x00 0x1234>;"), "{dts}");
        assert!(dts.contains("file@1 {"), "{dts}");
        assert!(dts.contains("depends = <0x00 0x2a>;"), "{dts}");
        assert!(dts.contains("subsystem@0 {"), "{dts}");
        assert!(
            dts.contains("compatible = \"luo-rs,test-subsystem-v1\";"),
            "{dts}"
        );
        assert!(dts.contains("data = <0x00 0xabcd>;"), "{dts}");
    }

    #[test]
    fn dtc_output_round_trips_through_our_decoder() {
        // dtc re-encodes our blob; our decoder must read dtc's encoding too.
        let h = Handover {
            generation: 9,
            boot_id: 42,
        };
        let mut buf = [0u8; MAX_SIZE];
        let n = sample(&h, &mut buf);
        let mut count = Count(0, 0, 0);
        let dtb = dtc(&buf[..n], "dtb");
        let (read, parts) = decode_first(&dtb, &mut count).unwrap();
        assert_eq!((read, parts.count), (h, 1));
        assert_eq!((count.0, count.1, count.2), (1, 2, 1));
    }
}
