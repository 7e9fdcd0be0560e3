#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Host tests of the pure modules (no kernel, no VM).
source "$(dirname "$0")/chroot.sh"
in_chroot /luo/src/scripts/host-test-in-chroot.sh
