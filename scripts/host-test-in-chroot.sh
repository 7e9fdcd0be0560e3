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
