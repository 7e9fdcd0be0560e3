#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Build the luo-rs kernel (toolchain first, if needed).
source "$(dirname "$0")/chroot.sh"
in_chroot /luo/src/scripts/build-kernel.sh
