# SPDX-License-Identifier: GPL-2.0
#
# This directory is both the luo-rs subsystem directory of a kernel tree
# (drivers/misc/liveupdate, see patches/) and the project's checkout.

ifneq ($(KERNELRELEASE),)

# Kbuild: luo_core.rs is the crate root; it pulls in the other .rs files.
obj-$(CONFIG_LIVEUPDATE_RS) += luo_core.o luo_sysfs.o memfd_shmem.o kho_glue.o pinned_vm.o
obj-$(CONFIG_LIVEUPDATE_RS_TEST) += luo_test_boot.o
obj-$(CONFIG_LIVEUPDATE_RS_KVM) += kvm_glue.o gmem_glue.o vcpu_glue.o
obj-$(CONFIG_LIVEUPDATE_RS_IOMMUFD) += iommufd_glue.o
obj-$(CONFIG_LIVEUPDATE_RS_VFIO) += vfio_glue.o
# The memfd handler's shmem steps use mm/internal.h.
CFLAGS_memfd_shmem.o += -I$(srctree)/mm
CFLAGS_gmem_glue.o += -I$(srctree)/mm

else

# Developer targets. Everything runs in a cached Debian chroot made by
# scripts/toolchain.sh; the host needs only apt and root.
.PHONY: all check demo kernel host-test vm-test toolchain fmt fuzz fuzz-vm bench

all: kernel

toolchain:
	@scripts/toolchain.sh >/dev/null

kernel:
	@scripts/kernel.sh

host-test:
	@scripts/host-test.sh

vm-test:
	@scripts/vm-test.sh

check:
	@scripts/check.sh

demo:
	@scripts/demo.sh

fmt:
	@scripts/fmt.sh

# LUO_FUZZ_SECONDS=600 make fuzz
fuzz:
	@scripts/fuzz.sh

# LUO_FUZZ_OPS=100000 LUO_FUZZ_SEED=... make fuzz-vm
fuzz-vm:
	@scripts/fuzz-vm.sh

bench:
	@scripts/bench.sh

endif
