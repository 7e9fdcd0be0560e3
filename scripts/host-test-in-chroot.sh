#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Inside the toolchain chroot: build and run the host tests of the pure
# modules with Debian's rustc (libtest), and check rustfmt.
source "$(dirname "$0")/lib.sh"
SRC=/luo/src
OUT=/luo/work/host
mkdir -p "$OUT"
step "rustfmt --check" rustfmt --check --edition 2021 "$SRC"/*.rs "$SRC"/handlers/*.rs "$SRC"/tests/*.rs "$SRC"/fuzz/*.rs "$SRC"/fuzz/fuzz_targets/*.rs
step "build host tests" rustc --edition 2021 --test -O -o "$OUT/host_tests" "$SRC/tests/host_tests.rs"
"$OUT/host_tests"
step "test the VM report judge (scripts/ktap.py)" python3 "$SRC/tests/ktap_test.py"

# The user-space workspace (userspace/): its tests, and clippy, rustdoc and
# rustfmt without a warning. Dependencies as Cargo.lock has them.
cargo_env
export CARGO_TARGET_DIR=/luo/work/userspace-target
cd "$SRC/userspace"
step "cargo fetch (userspace/, crates.io)" cargo fetch --locked
step "cargo fmt --check (userspace/)" cargo fmt --check
step "cargo clippy (userspace/)" cargo clippy --locked --offline --all-targets -- -D warnings
step "cargo doc (userspace/)" env RUSTDOCFLAGS="-D warnings" cargo doc --locked --offline --no-deps
step "build userspace tests" cargo test --locked --offline --no-run
cargo test --locked --offline
