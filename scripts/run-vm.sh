#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Inside the toolchain chroot: boot the luo-rs kernel in QEMU (TCG) with
# the test initramfs, running the programs named in $2, and save the
# serial log in $1. Usage: run-vm.sh LOG TEST[,TEST...] [EXTRA CMDLINE]
#
# The VM ends itself (init reboots, QEMU runs with -no-reboot); a run that
# takes longer than LUO_VM_TIMEOUT seconds (default 300) is killed.
# LUO_FIRST_KERNEL boots another kernel first (the initramfs's
# /boot/bzImage, which the tests kexec into, stays the flavor's);
# LUO_VM_MEM gives the VM more memory than 1G; LUO_VM_STAMPS names a file
# where scripts/serial-stamp.py writes when benchmark markers arrived.
# Tests named *_vfio_* get a q35 machine with an emulated VT-d (interrupt
# remapping on), QEMU's edu device, a DMA engine behind it, and an igb
# behind a PCIe root port.

source "$(dirname "$0")/lib.sh"

log_file=$1 tests=$2 extra=${3:-}
luo_flavor_dirs
kernel=${LUO_FIRST_KERNEL:-$OUT/arch/x86/boot/bzImage}
if [ ! -f "$kernel" ]; then
	# The judge (scripts/ktap.py) then fails the tests of this run.
	echo "LUO-VM-NO-KERNEL $kernel" > "$log_file"
	log "VM run '$tests' not started: no kernel $kernel"
	exit 0
fi
timeout_s=${LUO_VM_TIMEOUT:-300}

cmdline="console=ttyS0 panic=-1 oops=panic loglevel=7 tsc_early_khz=2100000 tsc=reliable"
# KHO's scratch areas (memory only movable allocations may use until the
# next kernel is up) default to twice what memblock allocated at boot,
# which the big initramfs inflates to most of the VM's 1 GiB: a fixed
# 256 MiB leaves room to preserve a 256 MiB memfd (and, in make bench's
# 3 GiB VM, a 1 GiB one).
scratch=192M mem=${LUO_VM_MEM:-1G}
# The debug kernel boots after a kexec with KASAN's shadow (an eighth of
# the RAM), its 54 MiB image and the 40 MiB initrd all in scratch, and
# scratch takes memory from everything but movable pages: more of both,
# so that a 256 MiB memfd still fits.
if [ "$FLAVOR" = debug ]; then
	scratch=320M mem=${LUO_VM_MEM:-1536M}
fi
cmdline+=" kho=on kho_scratch=32M,$scratch,32M luotest.stage=1 luotest.run=$tests $extra"
# The debug kernel without 5-level paging (-cpu max offers LA57): an
# interrupt taken while start_kernel() re-identifies the boot CPU can see
# the LA57 feature bit cleared for a moment, and KASAN then reports the
# 5-level direct map as a wild access (seen in 2 of 29 cold boots, before
# any luo-rs code runs).
if [ "$FLAVOR" = debug ]; then
	cmdline+=" no5lvl"
fi

machine=()
case ",$tests," in
*_vfio_*)
	# igb behind a root port: a device with FLR and power management
	# whose registers a reset visibly clears (kexec_vfio_noreset_test).
	machine=(-machine q35 -device intel-iommu,intremap=on -device edu
		-device pcie-root-port,id=rp1,chassis=1 -device igb,bus=rp1) ;;
esac

qemu() { # SERIAL
	timeout --foreground -k 5 "$timeout_s" \
		qemu-system-x86_64 -m "$mem" -smp 2 -accel tcg -cpu max -no-reboot \
		-nographic -nodefaults -serial "$1" "${machine[@]}" \
		-kernel "$kernel" -initrd "$STAGE/initrd.cpio" \
		-append "$cmdline" </dev/null
}

rm -f "$log_file"
t0=$(date +%s)
rc=0
if [ -n "${LUO_VM_STAMPS:-}" ]; then
	qemu stdio | python3 "$(dirname "$0")/serial-stamp.py" "$log_file" "$LUO_VM_STAMPS" || {
		st=("${PIPESTATUS[@]}")
		# QEMU's status, or the stamper's if QEMU was fine.
		rc=$((st[0] ? st[0] : st[1]))
	}
else
	qemu "file:$log_file" || rc=$?
fi
dt=$(($(date +%s) - t0))
if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
	echo "LUO-VM-TIMEOUT after ${timeout_s}s" >> "$log_file"
	log "VM run '$tests' killed after ${timeout_s} s (timeout)"
else
	log "VM run '$tests' finished in $dt s (qemu exit $rc)"
fi
