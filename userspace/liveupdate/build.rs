// SPDX-License-Identifier: GPL-2.0

//! Generates the uAPI bindings from the project's header with the bindgen
//! tool, so that no command number, value or struct layout is typed twice:
//! the generated code also checks each struct's size, alignment and field
//! offsets against what the C compiler made of the header.
//!
//! `LIVEUPDATE_UAPI_HEADER` names another header; `BINDGEN` another
//! bindgen.

use std::{env, path::PathBuf, process::Command};

fn main() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let header = env::var_os("LIVEUPDATE_UAPI_HEADER")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("../../include/uapi/linux/liveupdate.h"));
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets it")).join("uapi.rs");
    println!("cargo:rerun-if-changed={}", header.display());
    println!("cargo:rerun-if-env-changed=LIVEUPDATE_UAPI_HEADER");
    println!("cargo:rerun-if-env-changed=BINDGEN");

    let bindgen = env::var_os("BINDGEN").unwrap_or_else(|| "bindgen".into());
    let status = Command::new(&bindgen)
        .arg(&header)
        .arg("--output")
        .arg(&out)
        .args([
            "--allowlist-type",
            "liveupdate_.*",
            "--allowlist-var",
            "LIVEUPDATE_.*",
            "--no-prepend-enum-name",
            "--no-doc-comments",
            "--use-core",
            "--ctypes-prefix",
            "core::ffi",
        ])
        .status()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", bindgen.to_string_lossy()));
    assert!(status.success(), "bindgen failed on {}", header.display());
}
