// SPDX-License-Identifier: GPL-2.0
/*
 * Two-stage, in the q35 machine with an emulated VT-d and QEMU's edu
 * device (scripts/run-vm.sh gives it to tests named *_vfio_*): a real
 * translating IOMMU and a device whose DMA goes through it.
 *
 * In kernel 1 edu, bound to vfio-pci and attached to an IOAS that maps a
 * preserved memfd, copies a page from IOVA A to IOVA B; a DMA to an IOVA
 * that is not mapped faults (the DMAR fault is in the log). Between
 * PREPARE and CANCEL the IOAS is frozen and DMA goes on. The memfd
 * and the iommufd cross the kexec; the device is not preserved, and the
 * new kernel finds it with bus mastering off, unable to DMA. Bound again
 * and attached to the retrieved IOAS (same id, no map call), its DMA
 * through the same IOVAs lands in the retrieved memfd, and a DMA to an
 * unmapped IOVA still faults.
 */
#define _GNU_SOURCE
#include <stdbool.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/random.h>
#include "iommufd_util.h"
#include "memfd_util.h"
#include "vfio_edu.h"
#include "luo_test.h"
#include "vfio_edu_dma.h"

static void stage1(void)
{
	int dev = luo_open(), s, io, m, ioas;
	struct vfio_pci_dev edu;
	char args[128];
	uint64_t seed;

	CHECK(dev >= 0, "open: %s\n", strerror(-dev));
	edu_setup(&seed, &m, &io, &ioas, &edu);
	/* Not mapped: VT-d refuses it and reports the fault. */
	CHECK(!edu_dma(&edu, IOVA_NONE, EDU_BUF_LEN, true), "DMA to nowhere\n");
	CHECK(write_fault_reported(), "no DMAR fault for the unmapped IOVA\n");

	s = luo_create_session(dev, "vmm");
	CHECK(s >= 0 && !luo_preserve(s, m, 1) && !luo_preserve(s, io, 2), "preserve\n");
	/* Frozen from PREPARE: no mapping changes, DMA goes on; CANCEL thaws. */
	CHECK(!luo_set_event(dev, LIVEUPDATE_EVENT_PREPARE), "PREPARE: %s\n", strerror(errno));
	CHECK(!edu_dma(&edu, IOVA_A + SRC_3, EDU_BUF_LEN, false) &&
	      !edu_dma(&edu, IOVA_B + AT_3, EDU_BUF_LEN, true) && copied(m, seed, AT_3, SRC_3),
	      "DMA while prepared\n");
	CHECK(luo_ioas_unmap(io, ioas, IOVA_A, MiB) == -EBUSY, "unmap while prepared\n");
	CHECK(!luo_set_event(dev, LIVEUPDATE_EVENT_CANCEL), "CANCEL: %s\n", strerror(errno));
	CHECK(!edu_dma(&edu, IOVA_A + SRC_4, EDU_BUF_LEN, false) &&
	      !edu_dma(&edu, IOVA_B + AT_4, EDU_BUF_LEN, true) && copied(m, seed, AT_4, SRC_4),
	      "DMA after CANCEL\n");
	close(edu.fd);
	close(m);
	close(io);
	snprintf(args, sizeof(args), "seed=%llu ioas=%d", (unsigned long long)seed, ioas);
	ksft_exit_fail_msg("kexec: %s\n", strerror(-luo_kexec(args)));
}

TEST(dma_lands_in_the_retrieved_memfd_through_the_same_iovas)
{
	uint64_t seed = luo_arg_u64("seed");
	int dev = luo_open(), s, io, m;
	char bdf[16];
	struct vfio_pci_dev edu;
	uint8_t *mem;

	ASSERT_LE(0, dev);
	/* The old kernel stopped the device: no DMA until a driver sets it up. */
	ASSERT_EQ(0, edu_find(bdf));
	EXPECT_EQ(0, edu_command(bdf) & PCI_COMMAND_MASTER);

	s = luo_retrieve_session(dev, "vmm");
	ASSERT_LE(0, s);
	io = luo_retrieve_fd(s, 2);
	ASSERT_LE(0, io) TH_LOG("RETRIEVE_FD of the iommufd: %s", strerror(-io));
	m = luo_retrieve_fd(s, 1);
	ASSERT_LE(0, m);
	mem = mmap(NULL, MEM, PROT_READ, MAP_SHARED, m, 0);
	ASSERT_NE(MAP_FAILED, mem);
	/* What edu wrote in kernel 1 is in the memfd. */
	EXPECT_TRUE(copied(m, seed, AT_1, 0));
	EXPECT_TRUE(copied(m, seed, AT_3, SRC_3));
	EXPECT_TRUE(copied(m, seed, AT_4, SRC_4));

	/* The same device, bound again, on the retrieved IOAS: no map call. */
	ASSERT_EQ(0, edu_open(&edu));
	ASSERT_EQ(0, edu_attach(&edu, io, luo_arg_u64("ioas")));
	ASSERT_EQ(0, edu_dma(&edu, IOVA_A + SRC_2, EDU_BUF_LEN, false));
	ASSERT_EQ(0, edu_dma(&edu, IOVA_B + AT_2, EDU_BUF_LEN, true));
	EXPECT_TRUE(copied(m, seed, AT_2, SRC_2));
	/* Through the mapping user space reads what the device wrote. */
	EXPECT_EQ(0, memcmp(mem + MiB + AT_2, mem + SRC_2, EDU_BUF_LEN));

	/* An IOVA the update did not map is not mapped now either. */
	EXPECT_FALSE(luo_kmsg_has("DMAR: [DMA Write"));
	ASSERT_EQ(0, edu_dma(&edu, IOVA_NONE, EDU_BUF_LEN, true));
	EXPECT_TRUE(write_fault_reported());

	EXPECT_EQ(0, luo_finish(s));
	close(edu.fd);
	munmap(mem, MEM);
	close(m);
	close(io);
	close(s);
	close(dev);
}

LUO_KEXEC_TEST_MAIN(stage1)
