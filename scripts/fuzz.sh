#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# `make fuzz`: run the cargo-fuzz targets; LUO_FUZZ_SECONDS sets how long (each).
source "$(dirname "$0")/chroot.sh"
in_chroot env LUO_FUZZ_SECONDS="${LUO_FUZZ_SECONDS:-60}" /luo/src/scripts/fuzz-in-chroot.sh
