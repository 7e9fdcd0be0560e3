// SPDX-License-Identifier: GPL-2.0
/*
 * Two-stage, in the q35 machine with an emulated VT-d and QEMU's edu
 * device (scripts/run-vm.sh gives it to tests named *_vfio_*): the device
 * file itself crosses the update.
 *
 * In kernel 1 edu, bound to vfio-pci through its cdev and attached to an
 * IOAS that maps a preserved memfd, DMAs into the memfd. Its file is
 * preserved after the memfd and the iommufd; the refusals are checked
 * (a file not bound, an iommufd not in the session, a device in low
 * power); between PREPARE and CANCEL attach, detach, reset and low power
 * answer EBUSY while DMA goes on, and after CANCEL the device attaches
 * again and DMAs. In kernel 2
 * the device waits, bound to vfio-pci, for its retriever: anyone else's
 * BIND gets EBUSY. Before RETRIEVE_FD of the device, its IOAS is set to
 * small pages only: the old kernel's page table, whose leaves may be
 * large, is not adopted then, and the device gets a new one.
 * RETRIEVE_FD gives back the device file bound and attached: with no
 * BIND, no ATTACH and no config write, its DMA through the same IOVAs
 * lands in the retrieved memfd, and an unmapped IOVA still faults.
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
	int dev = luo_open(), s, other, io, m, ioas, unbound, err;
	struct vfio_pci_dev edu;
	char args[128];
	uint64_t seed;

	CHECK(dev >= 0, "open: %s\n", strerror(-dev));
	edu_setup(&seed, &m, &io, &ioas, &edu);

	s = luo_create_session(dev, "vmm");
	other = luo_create_session(dev, "other");
	CHECK(s >= 0 && other >= 0, "sessions\n");
	/* Its iommufd is not in that session. */
	err = luo_preserve(other, edu.fd, 1);
	CHECK(err == -ENOLINK, "device without its iommufd: %s\n", strerror(-err));
	CHECK(!luo_preserve(s, m, 1) && !luo_preserve(s, io, 2), "preserve\n");
	/* A second open of the cdev, never bound: nothing to carry. */
	unbound = edu_open_cdev(edu.bdf);
	CHECK(unbound >= 0, "second open: %s\n", strerror(-unbound));
	err = luo_preserve(s, unbound, 4);
	CHECK(err == -EINVAL, "unbound device file: %s\n", strerror(-err));
	close(unbound);
	/* In low power its state may be lost: not carried. */
	CHECK(!vfio_low_power(edu.fd, VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY), "low power\n");
	err = luo_preserve(s, edu.fd, 3);
	CHECK(err == -EBUSY, "device in low power: %s\n", strerror(-err));
	CHECK(!vfio_low_power(edu.fd, VFIO_DEVICE_FEATURE_LOW_POWER_EXIT), "low power exit\n");
	err = luo_preserve(s, edu.fd, 3);
	CHECK(!err, "PRESERVE_FD of the device: %s\n", strerror(-err));

	/* Frozen from PREPARE: the attachment stays, DMA goes on; CANCEL thaws. */
	CHECK(!luo_set_event(dev, LIVEUPDATE_EVENT_PREPARE), "PREPARE: %s\n", strerror(errno));
	err = vfio_detach(edu.fd);
	CHECK(err == -EBUSY, "detach while prepared: %s\n", strerror(-err));
	err = vfio_attach(edu.fd, ioas);
	CHECK(err == -EBUSY, "attach while prepared: %s\n", strerror(-err));
	err = vfio_reset(edu.fd);
	CHECK(err == -EBUSY, "reset while prepared: %s\n", strerror(-err));
	err = vfio_low_power(edu.fd, VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY);
	CHECK(err == -EBUSY, "low power while prepared: %s\n", strerror(-err));
	CHECK(!edu_dma(&edu, IOVA_A + SRC_3, EDU_BUF_LEN, false) &&
	      !edu_dma(&edu, IOVA_B + AT_3, EDU_BUF_LEN, true) && copied(m, seed, AT_3, SRC_3),
	      "DMA while prepared\n");
	CHECK(!luo_set_event(dev, LIVEUPDATE_EVENT_CANCEL), "CANCEL: %s\n", strerror(errno));
	err = vfio_attach(edu.fd, ioas);
	CHECK(!err, "attach after CANCEL: %s\n", strerror(-err));
	CHECK(!edu_dma(&edu, IOVA_A + SRC_4, EDU_BUF_LEN, false) &&
	      !edu_dma(&edu, IOVA_B + AT_4, EDU_BUF_LEN, true) && copied(m, seed, AT_4, SRC_4),
	      "DMA after CANCEL\n");

	close(edu.fd);
	close(m);
	close(io);
	close(other);
	snprintf(args, sizeof(args), "seed=%llu ioas=%d", (unsigned long long)seed, ioas);
	ksft_exit_fail_msg("kexec: %s\n", strerror(-luo_kexec(args)));
}

/* The driver bound to the device at bdf, or "". */
static const char *driver_of(const char *bdf)
{
	static char link[256];
	char path[128];
	ssize_t n;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/driver", bdf);
	n = readlink(path, link, sizeof(link) - 1);
	link[n > 0 ? n : 0] = 0;
	return strrchr(link, '/') ? strrchr(link, '/') + 1 : link;
}

TEST(the_device_comes_back_bound_and_attached)
{
	uint64_t seed = luo_arg_u64("seed");
	int dev = luo_open(), s, io, m, fd, err;
	struct vfio_pci_dev edu = {};
	uint8_t *mem;

	ASSERT_LE(0, dev);
	ASSERT_EQ(0, edu_find(edu.bdf));
	/* Held for its retriever: vfio-pci drives it, nobody else opens it. */
	EXPECT_STREQ("vfio-pci", driver_of(edu.bdf));
	/* The old kernel stopped its DMA at shutdown. */
	EXPECT_EQ(0, edu_command(edu.bdf) & PCI_COMMAND_MASTER);

	s = luo_retrieve_session(dev, "vmm");
	ASSERT_LE(0, s);
	io = luo_retrieve_fd(s, 2);
	ASSERT_LE(0, io) TH_LOG("RETRIEVE_FD of the iommufd: %s", strerror(-io));
	fd = edu_open_cdev(edu.bdf);
	ASSERT_LE(0, fd);
	err = vfio_bind(fd, io);
	EXPECT_EQ(-EBUSY, err) TH_LOG("BIND before RETRIEVE: %s", strerror(-err));
	close(fd);

	m = luo_retrieve_fd(s, 1);
	ASSERT_LE(0, m);
	/* Areas that may be split: no adopted table, whose leaves may be large. */
	ASSERT_EQ(0, luo_ioas_huge_pages(io, luo_arg_u64("ioas") ?: 1, false));
	edu.fd = luo_retrieve_fd(s, 3);
	ASSERT_LE(0, edu.fd) TH_LOG("RETRIEVE_FD of the device: %s", strerror(-edu.fd));
	EXPECT_TRUE(luo_kmsg_has("page table cannot be adopted ("));
	mem = mmap(NULL, MEM, PROT_READ, MAP_SHARED, m, 0);
	ASSERT_NE(MAP_FAILED, mem);
	EXPECT_TRUE(copied(m, seed, AT_1, 0));
	EXPECT_TRUE(copied(m, seed, AT_3, SRC_3));
	EXPECT_TRUE(copied(m, seed, AT_4, SRC_4));

	/* Bound, attached and mastering: no BIND, ATTACH or config write. */
	EXPECT_NE(0, edu_command(edu.bdf) & PCI_COMMAND_MASTER);
	ASSERT_EQ(0, edu_regions(&edu));
	ASSERT_EQ(0, edu_dma(&edu, IOVA_A + SRC_2, EDU_BUF_LEN, false));
	ASSERT_EQ(0, edu_dma(&edu, IOVA_B + AT_2, EDU_BUF_LEN, true));
	EXPECT_TRUE(copied(m, seed, AT_2, SRC_2));
	EXPECT_EQ(0, memcmp(mem + MiB + AT_2, mem + SRC_2, EDU_BUF_LEN));
	/* An IOVA the update did not map is not mapped now either. */
	EXPECT_FALSE(luo_kmsg_has("DMAR: [DMA Write"));
	ASSERT_EQ(0, edu_dma(&edu, IOVA_NONE, EDU_BUF_LEN, true));
	EXPECT_TRUE(write_fault_reported());
	/* A retrieved device is the user's: it attaches and detaches again. */
	EXPECT_EQ(0, vfio_detach(edu.fd));
	EXPECT_EQ(0, vfio_attach(edu.fd, luo_arg_u64("ioas") ?: 1));

	EXPECT_EQ(0, luo_finish(s));
	close(edu.fd);
	/* Closed, the device is anyone's: a new opener binds it. */
	fd = edu_open_cdev(edu.bdf);
	ASSERT_LE(0, fd);
	EXPECT_EQ(0, vfio_bind(fd, io));
	close(fd);
	munmap(mem, MEM);
	close(m);
	close(io);
	close(s);
	close(dev);
}

LUO_KEXEC_TEST_MAIN(stage1)
