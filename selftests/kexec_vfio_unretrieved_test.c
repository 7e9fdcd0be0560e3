// SPDX-License-Identifier: GPL-2.0
/*
 * Two-stage, in the q35 machine with an emulated VT-d and QEMU's edu
 * device (*_vfio_*): a device file preserved and never retrieved. In
 * kernel 2 the device is held for the session's retriever (a bind of its
 * cdev answers EBUSY) until the session is finished without retrieving
 * it; then the page table handed over for it is freed, and the device is
 * anyone's: bound to a new iommufd and attached to a new IOAS (a new page
 * table, not the old one), its DMA lands there.
 */
#define _GNU_SOURCE
#include <stdbool.h>
#include <stdlib.h>
#include <sys/mman.h>
#include "iommufd_util.h"
#include "memfd_util.h"
#include "vfio_edu.h"
#include "luo_test.h"

#define MiB (1ULL << 20)
#define IOVA (16 * MiB)

static void stage1(void)
{
	int dev = luo_open(), s, io, m, ioas, err;
	struct vfio_pci_dev edu;

	CHECK(dev >= 0, "open: %s\n", strerror(-dev));
	m = luo_memfd("guest", MiB);
	CHECK(m >= 0 && !luo_fill(m, 0, MiB, 1), "memfd\n");
	CHECK(!fcntl(m, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW), "seal\n");
	io = luo_iommufd_open();
	CHECK(io >= 0, "iommufd: %s\n", strerror(-io));
	ioas = luo_ioas_alloc(io);
	CHECK(ioas > 0 && !luo_ioas_map_file(io, ioas, m, 0, MiB, IOVA, LUO_IOMMU_RW), "map\n");
	err = edu_open(&edu);
	CHECK(!err, "edu through vfio-pci: %s\n", strerror(-err));
	err = edu_attach(&edu, io, ioas);
	CHECK(!err, "bind and attach: %s\n", strerror(-err));
	s = luo_create_session(dev, "vmm");
	CHECK(s >= 0 && !luo_preserve(s, m, 1) && !luo_preserve(s, io, 2) &&
	      !luo_preserve(s, edu.fd, 3), "preserve\n");
	close(edu.fd);
	close(m);
	close(io);
	ksft_exit_fail_msg("kexec: %s\n", strerror(-luo_kexec("")));
}

TEST(finish_lets_the_device_go)
{
	int dev = luo_open(), s, io, m, ioas;
	struct vfio_pci_dev edu = {};
	uint8_t page[EDU_BUF_LEN];

	ASSERT_LE(0, dev);
	ASSERT_EQ(0, edu_find(edu.bdf));
	io = luo_iommufd_open();
	ASSERT_LE(0, io);
	edu.fd = edu_open_cdev(edu.bdf);
	ASSERT_LE(0, edu.fd);
	EXPECT_EQ(-EBUSY, vfio_bind(edu.fd, io));

	/* The session is finished with its files never retrieved. */
	s = luo_retrieve_session(dev, "vmm");
	ASSERT_LE(0, s);
	ASSERT_EQ(0, luo_finish(s));
	EXPECT_TRUE(luo_kmsg_has("not adopted: "));

	/* The same open file binds now, to an iommufd of this kernel. */
	ASSERT_EQ(0, vfio_bind(edu.fd, io));
	m = luo_memfd("new", MiB);
	ASSERT_LE(0, m);
	ASSERT_EQ(0, luo_fill(m, 0, MiB, 2));
	ioas = luo_ioas_alloc(io);
	ASSERT_LT(0, ioas);
	ASSERT_EQ(0, luo_ioas_map_file(io, ioas, m, 0, MiB, IOVA, LUO_IOMMU_RW));
	ASSERT_EQ(0, vfio_attach(edu.fd, ioas));
	EXPECT_FALSE(luo_kmsg_has("adopting domain"));
	ASSERT_EQ(0, vfio_pci_enable(&edu));
	/* The first page to edu and back at 64 KiB: it lands in the new memfd. */
	ASSERT_EQ(0, edu_dma(&edu, IOVA, EDU_BUF_LEN, false));
	ASSERT_EQ(0, edu_dma(&edu, IOVA + 64 * 1024, EDU_BUF_LEN, true));
	ASSERT_EQ(sizeof(page), pread(m, page, sizeof(page), 64 * 1024));
	for (size_t i = 0; i < sizeof(page); i++)
		ASSERT_EQ(luo_byte(2, i), page[i]);
	close(edu.fd);
	close(m);
	close(io);
	close(s);
	close(dev);
}

LUO_KEXEC_TEST_MAIN(stage1)
