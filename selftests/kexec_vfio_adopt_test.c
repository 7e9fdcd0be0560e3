// SPDX-License-Identifier: GPL-2.0
/*
 * Two-stage, in the q35 machine with an emulated VT-d and QEMU's edu
 * device (scripts/run-vm.sh gives it to tests named *_vfio_*): the new
 * kernel's VT-d driver adopts the page table of the device the update
 * carries, instead of building a new one.
 *
 * In kernel 1 edu DMAs through an IOAS that maps a preserved memfd, and
 * the test reads the device's VT-d context entry (Intel IOMMU debugfs):
 * the domain id, the address width and the page table's root. The memfd,
 * the iommufd and the device file are preserved; PREPARE hands the page
 * table over, CANCEL takes it back, and the kexec hands it over again.
 *
 * In kernel 2, before RETRIEVE, the held device's context entry is not
 * the old one: nothing translates through the old tables for a device
 * nobody has retrieved. After RETRIEVE it is the old one, bit for bit:
 * the same domain id and the very same page-table root. DMA through the
 * same IOVAs lands in the retrieved memfd, an unmapped IOVA faults, and
 * after FINISH the adopted table takes a new mapping and loses it again
 * as any other does.
 */
#define _GNU_SOURCE
#include <stdbool.h>
#include <stdlib.h>
#include <sys/random.h>
#include "iommufd_util.h"
#include "memfd_util.h"
#include "vfio_edu.h"
#include "luo_test.h"
#include "vfio_edu_dma.h"

#define VTD_DEBUGFS "/sys/kernel/debug/iommu/intel/dmar_translation_struct"
#define IOVA_C (64 * MiB) /* mapped in kernel 2, after FINISH */
#define AT_5 (448 * KiB) /* where in B the DMA from C wrote */

/* The 128-bit context entry of the device at bdf ("0000:00:03.0"). */
struct ctx {
	unsigned long long hi, lo;
};

/* 0 and the entry, or -ENOENT if the device has no present entry. */
static int context_entry(const char *bdf, struct ctx *out)
{
	unsigned int seg, bus, slot, fn, b, s, f;
	unsigned long long rhi, rlo;
	char line[512];
	FILE *fp;
	int ret = -ENOENT;

	if (sscanf(bdf, "%x:%x:%x.%x", &seg, &bus, &slot, &fn) != 4)
		return -EINVAL;
	fp = fopen(VTD_DEBUGFS, "r");
	if (!fp)
		return -errno;
	while (fgets(line, sizeof(line), fp)) {
		if (sscanf(line, "%x:%x.%x 0x%llx:0x%llx 0x%llx:0x%llx", &b, &s, &f, &rhi,
			   &rlo, &out->hi, &out->lo) == 7 &&
		    b == bus && s == slot && f == fn) {
			ret = 0;
			break;
		}
	}
	fclose(fp);
	return ret;
}

static void stage1(void)
{
	int dev = luo_open(), s, io, m, ioas, err;
	struct vfio_pci_dev edu;
	struct ctx ctx;
	char args[160];
	uint64_t seed;

	CHECK(dev >= 0, "open: %s\n", strerror(-dev));
	edu_setup(&seed, &m, &io, &ioas, &edu);
	err = context_entry(edu.bdf, &ctx);
	CHECK(!err, "context entry of %s: %s\n", edu.bdf, strerror(-err));
	/* Legacy mode: the page table's root and a domain id of its own. */
	CHECK((ctx.lo & 1) && (ctx.lo & ~0xfffULL) && (ctx.hi >> 8 & 0xffff) >= 2,
	      "context entry %#llx:%#llx\n", ctx.hi, ctx.lo);

	s = luo_create_session(dev, "vmm");
	CHECK(s >= 0, "session\n");
	CHECK(!luo_preserve(s, m, 1) && !luo_preserve(s, io, 2) && !luo_preserve(s, edu.fd, 3),
	      "preserve\n");
	CHECK(!luo_set_event(dev, LIVEUPDATE_EVENT_PREPARE), "PREPARE: %s\n", strerror(errno));
	CHECK(luo_kmsg_has("handing domain"), "PREPARE did not hand the page table over\n");
	CHECK(!edu_dma(&edu, IOVA_A + SRC_3, EDU_BUF_LEN, false) &&
	      !edu_dma(&edu, IOVA_B + AT_3, EDU_BUF_LEN, true) && copied(m, seed, AT_3, SRC_3),
	      "DMA while prepared\n");
	/* CANCEL takes the table back; the kexec hands it over again. */
	CHECK(!luo_set_event(dev, LIVEUPDATE_EVENT_CANCEL), "CANCEL: %s\n", strerror(errno));
	err = luo_ioas_unmap(io, ioas, IOVA_NONE, MiB);
	CHECK(err == -ENOENT, "unmap of nothing after CANCEL: %s\n", strerror(-err));

	close(edu.fd);
	close(m);
	close(io);
	snprintf(args, sizeof(args), "seed=%llu ioas=%d ctx_hi=%llu ctx_lo=%llu",
		 (unsigned long long)seed, ioas, ctx.hi, ctx.lo);
	ksft_exit_fail_msg("kexec: %s\n", strerror(-luo_kexec(args)));
}

TEST(the_page_table_is_adopted)
{
	uint64_t seed = luo_arg_u64("seed");
	struct ctx old = { luo_arg_u64("ctx_hi"), luo_arg_u64("ctx_lo") };
	int dev = luo_open(), s, io, m, err;
	struct vfio_pci_dev edu = {};
	struct ctx now;

	ASSERT_LE(0, dev);
	ASSERT_NE(0, old.lo);
	ASSERT_EQ(0, edu_find(edu.bdf));
	/* Held for its retriever: not through the old tables meanwhile. */
	err = context_entry(edu.bdf, &now);
	ASSERT_TRUE(!err || err == -ENOENT) TH_LOG("debugfs: %s", strerror(-err));
	EXPECT_FALSE(!err && now.lo == old.lo) TH_LOG("the old table before RETRIEVE");
	EXPECT_TRUE(luo_kmsg_has("kept for 1 device(s)"));

	s = luo_retrieve_session(dev, "vmm");
	ASSERT_LE(0, s);
	io = luo_retrieve_fd(s, 2);
	ASSERT_LE(0, io) TH_LOG("RETRIEVE_FD of the iommufd: %s", strerror(-io));
	m = luo_retrieve_fd(s, 1);
	ASSERT_LE(0, m);
	edu.fd = luo_retrieve_fd(s, 3);
	ASSERT_LE(0, edu.fd) TH_LOG("RETRIEVE_FD of the device: %s", strerror(-edu.fd));

	/* The same domain id, address width and page-table root. */
	ASSERT_EQ(0, context_entry(edu.bdf, &now));
	EXPECT_EQ(old.hi, now.hi) TH_LOG("hi %#llx, was %#llx", now.hi, old.hi);
	EXPECT_EQ(old.lo, now.lo) TH_LOG("lo %#llx, was %#llx", now.lo, old.lo);
	EXPECT_TRUE(luo_kmsg_has("adopting domain"));
	EXPECT_FALSE(luo_kmsg_has("cannot be adopted"));

	/* Through it, with no MAP: the retrieved memfd. */
	ASSERT_EQ(0, edu_regions(&edu));
	EXPECT_TRUE(copied(m, seed, AT_1, 0));
	EXPECT_TRUE(copied(m, seed, AT_3, SRC_3));
	ASSERT_EQ(0, edu_dma(&edu, IOVA_A + SRC_2, EDU_BUF_LEN, false));
	ASSERT_EQ(0, edu_dma(&edu, IOVA_B + AT_2, EDU_BUF_LEN, true));
	EXPECT_TRUE(copied(m, seed, AT_2, SRC_2));
	EXPECT_FALSE(luo_kmsg_has("DMAR: [DMA Write"));
	ASSERT_EQ(0, edu_dma(&edu, IOVA_NONE, EDU_BUF_LEN, true));
	EXPECT_TRUE(write_fault_reported());

	/* The user's now: a new mapping lands, and goes. */
	EXPECT_EQ(0, luo_finish(s));
	ASSERT_EQ(0, luo_ioas_map_file(io, luo_arg_u64("ioas"), m, 0, MiB, IOVA_C, LUO_IOMMU_RW));
	ASSERT_EQ(0, edu_dma(&edu, IOVA_C + SRC_4, EDU_BUF_LEN, false));
	ASSERT_EQ(0, edu_dma(&edu, IOVA_B + AT_5, EDU_BUF_LEN, true));
	EXPECT_TRUE(copied(m, seed, AT_5, SRC_4));
	EXPECT_EQ(MiB, luo_ioas_unmap(io, luo_arg_u64("ioas"), IOVA_C, MiB));
	EXPECT_EQ(-ENOENT, luo_ioas_unmap(io, luo_arg_u64("ioas"), IOVA_C, MiB));
	/* Still the adopted table. */
	ASSERT_EQ(0, context_entry(edu.bdf, &now));
	EXPECT_EQ(old.lo, now.lo);

	close(edu.fd);
	close(m);
	close(io);
	close(s);
	close(dev);
}

LUO_KEXEC_TEST_MAIN(stage1)
