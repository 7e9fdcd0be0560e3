#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# `make demo`: build everything, boot the luo-rs kernel in QEMU, start a
# counting KVM guest on a guest_memfd and fill a memfd-backed key-value
# cache whose session comes from luod, live-update into a new kernel with
# luoctl through luod (quiesce, PREPARE, FREEZE, kexec) and show the cache
# reopening and the guest counting on from the same memory.

source "$(dirname "$0")/chroot.sh"

in_chroot /luo/src/scripts/build-kernel.sh
in_chroot /luo/src/scripts/build-tests.sh
step "boot, kexec, boot again (QEMU, TCG)" in_chroot /luo/src/scripts/run-vm.sh /luo/work/demo.log demo
log=$LUO_WORK/demo.log
echo
echo "---- what happened (from the VM's serial console) ----"
grep -E '^(demo|kvcache|vm|luod):|KHO: found|luo_rs: |kexec_core: Starting new kernel' "$log" | sed -E 's/^\[ *[0-9.]+\] //'
echo "------------------------------------------------------"
if grep -q '^LUO-RUN-END demo stage=2 exit=0' "$log"; then
	echo "demo: the cache and the guest crossed the live update. Full log: $log"
else
	echo "demo: FAILED; last lines of $log:"
	tail -40 "$log"
	exit 1
fi
