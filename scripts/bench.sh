#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# `make bench`: the same benchmark (selftests/vm/luo_bench.c) on luo-rs
# and on the upstream C LUO, each built from the same 7.3 tree without
# debug options, in the same QEMU, in one run; prints both sides and the
# ratios (scripts/bench-report.py).

source "$(dirname "$0")/chroot.sh"

for flavor in bench-rs bench-c; do
	in_chroot env LUO_FLAVOR=$flavor /luo/src/scripts/build-kernel.sh
	in_chroot env LUO_FLAVOR=$flavor /luo/src/scripts/build-tests.sh
done
mkdir -p "$LUO_WORK/logs-bench"
for flavor in bench-rs bench-c; do
	# The C LUO is off unless asked for on the command line.
	extra=
	[ "$flavor" = bench-c ] && extra=liveupdate=on
	step "VM with kexec: luo_bench on $flavor" in_chroot env LUO_FLAVOR=$flavor \
		/luo/src/scripts/run-vm.sh "/luo/work/logs-bench/$flavor.log" luo_bench $extra
done
python3 "$LUO_REPO/scripts/bench-report.py" "$LUO_WORK/logs-bench/bench-rs.log" \
	"$LUO_WORK/logs-bench/bench-c.log"
