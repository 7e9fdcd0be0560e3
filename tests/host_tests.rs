// SPDX-License-Identifier: GPL-2.0

//! Host tests of luo-rs's pure modules, compiled from the very same files
//! the kernel builds (each module's own `#[cfg(test)]` tests run here),
//! plus checks of the FDT encoder against a real FDT implementation (dtc).

#![allow(dead_code)]

#[path = "../kho_ser.rs"]
mod kho_ser;
#[path = "../luo_handover.rs"]
mod luo_handover;
#[path = "../luo_state.rs"]
mod luo_state;
#[path = "../luo_uapi.rs"]
mod luo_uapi;

#[cfg(test)]
mod against_dtc {
    use crate::luo_handover::{Handover, MAX_SIZE};
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
        let n = h.encode(&mut buf).unwrap();
        let dts = String::from_utf8(dtc(&buf[..n], "dts")).unwrap();
        assert!(
            dts.contains("compatible = \"luo-rs,handover-v1\";"),
            "{dts}"
        );
        assert!(dts.contains("generation = <0x00 0x05>;"), "{dts}");
        assert!(dts.contains("boot-id = <0x11223344 0x55667788>;"), "{dts}");
    }

    #[test]
    fn dtc_output_round_trips_through_our_decoder() {
        // dtc re-encodes our blob; our decoder must read dtc's encoding too.
        let h = Handover {
            generation: 9,
            boot_id: 42,
        };
        let mut buf = [0u8; MAX_SIZE];
        let n = h.encode(&mut buf).unwrap();
        assert_eq!(Handover::decode(&dtc(&buf[..n], "dtb")), Ok(h));
    }
}
