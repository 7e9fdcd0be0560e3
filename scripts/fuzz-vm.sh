#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# `make fuzz-vm`: the ioctl fuzzer (selftests/kexec_fuzz_test.c) with
# LUO_FUZZ_OPS operations (default 100000) from 8 processes on the debug
# kernel (KASAN, kmemleak, lockdep, ...), then a real update. The seed is
# LUO_FUZZ_SEED, or random; it is printed, so a run can be repeated.

source "$(dirname "$0")/chroot.sh"

ops=${LUO_FUZZ_OPS:-100000}
seed=${LUO_FUZZ_SEED:-$(od -An -N6 -tu8 /dev/urandom | tr -d ' ')}
log "fuzz-vm: seed $seed, $ops operations"
step "debug kernel" in_chroot env LUO_FLAVOR=debug /luo/src/scripts/build-kernel.sh
step "test programs and initramfs" in_chroot env LUO_FLAVOR=debug /luo/src/scripts/build-tests.sh
mkdir -p "$LUO_WORK/logs-fuzz"
step "VM (debug) with kexec: kexec_fuzz_test" in_chroot env LUO_FLAVOR=debug \
	LUO_VM_TIMEOUT="${LUO_VM_TIMEOUT:-1800}" /luo/src/scripts/run-vm.sh \
	/luo/work/logs-fuzz/fuzz.log kexec_fuzz_test "luotest.fuzz_ops=$ops luotest.fuzz_seed=$seed"
grep -a "^# fuzz:" "$LUO_WORK/logs-fuzz/fuzz.log" || true
in_chroot python3 /luo/src/scripts/ktap.py /luo/work/logs-fuzz/fuzz.log:kexec_fuzz_test:2
