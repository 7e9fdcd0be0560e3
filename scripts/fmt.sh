#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Format every Rust file with the toolchain's rustfmt (kernel settings).
source "$(dirname "$0")/chroot.sh"
in_chroot bash -c 'cd /luo/src && rustfmt --edition 2021 *.rs handlers/*.rs tests/*.rs fuzz/*.rs fuzz/fuzz_targets/*.rs'
