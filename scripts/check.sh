#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# `make check`: every test. Host tests of the pure modules, the kernel
# build, then every VM test including the kexec ones, on the test kernel
# and again on the debug kernel; one summary at the end; exit status 0
# only if everything passed.

t0=$(date +%s)
# Sourcing creates the toolchain chroot if it is missing.
source "$(dirname "$0")/chroot.sh"

report=$(mktemp)
trap 'rm -f "$report"' EXIT
fail=0

log "== host tests =="
in_chroot /luo/src/scripts/host-test-in-chroot.sh 2>&1 | tee -a "$report" || fail=1

log "== kernel =="
step "kernel" in_chroot /luo/src/scripts/build-kernel.sh || fail=1
# The earlier release the upgrade test starts from, built on the test
# kernel's tree.
if [ "$fail" -eq 0 ]; then
	step "kernel of the earlier release" "$LUO_REPO/scripts/old-kernel.sh" || fail=1
fi

if [ "$fail" -eq 0 ]; then
	log "== VM tests =="
	step "test programs and initramfs" in_chroot /luo/src/scripts/build-tests.sh || fail=1
fi
if [ "$fail" -eq 0 ]; then
	in_chroot /luo/src/scripts/vm-tests-in-chroot.sh 2>&1 | tee -a "$report" || fail=1
fi

# The same VM tests on the debug kernel (KASAN, kmemleak, lockdep, ...).
# Built and run even if the first kernel's tests failed: its reports say
# more about why.
log "== debug kernel =="
debug=ok
step "debug kernel" in_chroot env LUO_FLAVOR=debug /luo/src/scripts/build-kernel.sh || debug=
if [ -n "$debug" ]; then
	step "debug kernel: test programs and initramfs" \
		in_chroot env LUO_FLAVOR=debug /luo/src/scripts/build-tests.sh || debug=
fi
if [ -n "$debug" ]; then
	log "== VM tests on the debug kernel =="
	in_chroot env LUO_FLAVOR=debug /luo/src/scripts/vm-tests-in-chroot.sh 2>&1 |
		tee -a "$report" || fail=1
else
	fail=1
fi

# One summary: libtest's "N passed; M failed" lines and the VM report's.
read -r hp hf < <(sed -n 's/^test result: .*\. \([0-9]*\) passed; \([0-9]*\) failed.*/\1 \2/p' "$report" | awk '{p+=$1; f+=$2} END {print p+0, f+0}')
# Python unittest: "Ran N tests", then "OK" or "FAILED (failures=F, errors=E)".
read -r pp pf < <(awk '/^Ran [0-9]+ tests? in/ {n=$2} /^FAILED \(/ {gsub(/[^0-9,]/, ""); split($0, a, ","); f=a[1]+a[2]} /^OK/ {f=0} END {print n-f+0, f+0}' "$report")
hp=$((hp + pp)) hf=$((hf + pf))
read -r vp vf vs < <(sed -n 's/^vm: \([0-9]*\) passed, \([0-9]*\) failed, \([0-9]*\) skipped$/\1 \2 \3/p' "$report" | awk '{p+=$1; f+=$2; s+=$3} END {print p+0, f+0, s+0}')
echo
log "== summary ($(($(date +%s) - t0)) s) =="
log "host tests: $hp passed, $hf failed"
log "VM tests:   $vp passed, $vf failed, $vs skipped"
if [ "$fail" -ne 0 ] && [ "$hf" -eq 0 ] && [ "$vf" -eq 0 ]; then
	# A build or runner step failed before tests could report.
	hf=$((hf + 1))
fi
echo "check: $((hp + vp)) passed, $((hf + vf)) failed, $vs skipped"
[ "$fail" -eq 0 ] && [ "$hf" -eq 0 ] && [ "$vf" -eq 0 ]
