#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Build the kernel and the test programs, then run every VM test (KTAP).
source "$(dirname "$0")/chroot.sh"
in_chroot /luo/src/scripts/build-kernel.sh
in_chroot /luo/src/scripts/build-tests.sh
in_chroot /luo/src/scripts/vm-tests-in-chroot.sh
