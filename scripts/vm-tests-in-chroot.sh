#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Inside the toolchain chroot: run every VM test and print one KTAP report.
# Programs named kexec_*_test are two-stage and get a VM (and a kexec) each;
# kexec_upgrade_*_test start on the earlier release's kernel. All other
# *_test programs share one VM. selftests/upstream/ holds the
# scripts that run upstream 7.3's own liveupdate selftests.

source "$(dirname "$0")/lib.sh"

SRC=/luo/src
luo_flavor_dirs
LOGS=/luo/work/logs-$FLAVOR
rm -rf "$LOGS"
mkdir -p "$LOGS"

plain=() kexec=()
# C tests, and scripts that run upstream's selftests.
for c in "$SRC"/selftests/*_test.c "$SRC"/selftests/upstream/*_test; do
	t=$(basename "$c" .c)
	case "$t" in
	kexec_*) kexec+=("$t") ;;
	*) plain+=("$t") ;;
	esac
done

runs=()
if [ "${#plain[@]}" -gt 0 ]; then
	list=$(IFS=,; echo "${plain[*]}")
	step "VM ($FLAVOR): ${plain[*]}" "$SRC/scripts/run-vm.sh" "$LOGS/plain.log" "$list"
	runs+=("$LOGS/plain.log:$list:1")
fi
for t in "${kexec[@]}"; do
	first= mem= timeout_s=${LUO_VM_TIMEOUT:-}
	case "$t" in
	# From the earlier release's kernel (scripts/old-kernel.sh) into this one.
	kexec_upgrade_*) first=/luo/work/build-old/arch/x86/boot/bzImage ;;
	# 100,000 memfds: 400 MiB of headers alone, and time; on the test
	# kernel only (about 15 minutes on the debug one).
	kexec_scale_*)
		[ "$FLAVOR" = test ] || continue
		mem=3G timeout_s=900
		;;
	esac
	step "VM ($FLAVOR) with kexec: $t" env LUO_FIRST_KERNEL="$first" LUO_VM_MEM="$mem" \
		LUO_VM_TIMEOUT="$timeout_s" "$SRC/scripts/run-vm.sh" "$LOGS/$t.log" "$t"
	runs+=("$LOGS/$t.log:$t:2")
done
python3 "$SRC/scripts/ktap.py" "${runs[@]}"
