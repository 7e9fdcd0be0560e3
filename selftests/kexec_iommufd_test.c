// SPDX-License-Identifier: GPL-2.0
/*
 * Two-stage: an iommufd's IOASes cross the kexec with their ids and their
 * mappings of a memfd, and DMA through the retrieved iommufd lands in the
 * retrieved memfd without a single map call. The "device" is iommufd's
 * self-test mock: its access reads and writes through an IOAS as DMA
 * would, and its mock domain is a page table whose translations the test
 * checks against the memfd's pages.
 *
 * Stage 1 also checks the refusals (a mapping of user memory, of a memfd
 * not preserved first, of a memfd that may shrink), the freeze from
 * PREPARE to CANCEL, and that a mapping added after CANCEL crosses.
 */
#define _GNU_SOURCE
#include <sys/mman.h>
#include <sys/random.h>
#include "iommufd_util.h"
#include "memfd_util.h"
#include "luo_test.h"

#define KiB (1ULL << 10)
#define MiB (1ULL << 20)
#define MEM (4 * MiB)
/* IOVAs inside the mock domain's aperture, [16 MiB, 2 GiB). */
#define IOVA_A (16 * MiB) /* memfd [0, 1 MiB), the device reads */
#define IOVA_B (32 * MiB) /* memfd [1 MiB, 2 MiB), read-write */
#define IOVA_C (16 * MiB) /* second IOAS: memfd [2 MiB, 2 MiB + 64 KiB) */
#define IOVA_D (64 * MiB) /* second IOAS, mapped after CANCEL: [3 MiB, +4 KiB) */
#define IOVA_E (80 * MiB + 100) /* second IOAS: 1000 bytes from 3 MiB + 4 KiB + 100 */
#define OFF_E (3 * MiB + 4 * KiB + 100)
#define LEN_E 1000
#define IOVA_F (96 * MiB) /* fourth IOAS: a copy of B's [64 KiB, 128 KiB) */
#define IOVA_NONE (48 * MiB) /* never mapped */
#define DMA_AT (8 * KiB) /* where in B the device wrote in kernel 1 */
#define SEALS (F_SEAL_SHRINK | F_SEAL_GROW)

/* A memfd of MEM bytes of stream seed, sealed with seals. */
static int memfd_of(const char *name, uint64_t seed, int seals)
{
	int fd = luo_memfd(name, MEM);

	CHECK(fd >= 0 && !luo_fill(fd, 0, MEM, seed), "memfd %s\n", name);
	CHECK(!seals || !fcntl(fd, F_ADD_SEALS, seals), "seal %s: %s\n", name, strerror(errno));
	return fd;
}

/* A session named name, holding nothing yet. */
static int session(int dev, const char *name)
{
	int s = luo_create_session(dev, name);

	CHECK(s >= 0, "session %s: %s\n", name, strerror(-s));
	return s;
}

/* The refusals, each with its own iommufd, in sessions of their own. */
static void refusals(int dev, uint64_t seed)
{
	int s = session(dev, "refused"), io = luo_iommufd_open(), ioas, m, err;
	void *anon = mmap(NULL, 64 * KiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	CHECK(io >= 0 && anon != MAP_FAILED, "iommufd: %s\n", strerror(-io));
	ioas = luo_ioas_alloc(io);
	CHECK(ioas > 0 && !luo_ioas_map_user(io, ioas, anon, 64 * KiB, IOVA_A), "map user\n");
	err = luo_preserve(s, io, 1);
	CHECK(err == -EOPNOTSUPP, "iommufd mapping user memory: %s, not EOPNOTSUPP\n",
	      strerror(-err));
	close(io);

	/* A memfd that may shrink, preserved. */
	m = memfd_of("unsealed", seed, 0);
	io = luo_iommufd_open();
	ioas = luo_ioas_alloc(io);
	CHECK(!luo_preserve(s, m, 2), "PRESERVE_FD of the unsealed memfd\n");
	CHECK(!luo_ioas_map_file(io, ioas, m, 0, MEM, IOVA_A, LUO_IOMMU_RW), "map unsealed\n");
	err = luo_preserve(s, io, 3);
	CHECK(err == -EPERM, "iommufd mapping an unsealed memfd: %s, not EPERM\n",
	      strerror(-err));
	close(io);
	close(m);
	/* Closing the session unpreserves its files. */
	close(s);
}

/*
 * A session "order" whose iommufd maps a memfd preserved only after a
 * first try: nobody retrieves it in stage 2, FINISH frees it.
 */
static void order(int dev, uint64_t seed)
{
	int s = session(dev, "order"), io = luo_iommufd_open(), m = memfd_of("order", seed, SEALS);
	int ioas = luo_ioas_alloc(io), err;

	CHECK(ioas > 0 && !luo_ioas_map_file(io, ioas, m, 0, MEM, IOVA_A, LUO_IOMMU_RW),
	      "map order\n");
	err = luo_preserve(s, io, 2);
	CHECK(err == -ENOLINK, "iommufd before its memfd: %s, not ENOLINK\n", strerror(-err));
	CHECK(!luo_preserve(s, m, 1) && !luo_preserve(s, io, 2), "memfd, then iommufd\n");
	close(io);
	close(m);
}

static void stage1(void)
{
	int dev = luo_open(), s, io, m, late, a1, a2, a3, a4, access, err;
	uint8_t buf[4 * KiB], back[4 * KiB];
	char args[256];
	uint64_t seed;
	__u32 hwpt;

	CHECK(dev >= 0, "open: %s\n", strerror(-dev));
	CHECK(getrandom(&seed, sizeof(seed), 0) == sizeof(seed), "getrandom\n");
	refusals(dev, seed);
	order(dev, seed);

	s = session(dev, "vmm");
	m = memfd_of("guest", seed, SEALS);
	io = luo_iommufd_open();
	CHECK(io >= 0, "iommufd: %s\n", strerror(-io));
	/* Ids 1, 3 and later 4 cross; 2 is gone before the update. */
	a1 = luo_ioas_alloc(io);
	a2 = luo_ioas_alloc(io);
	a3 = luo_ioas_alloc(io);
	CHECK(a1 > 0 && a2 > 0 && a3 > 0 && !luo_iommufd_destroy(io, a2), "IOASes\n");
	CHECK(!luo_ioas_map_file(io, a1, m, 0, MiB, IOVA_A, IOMMU_IOAS_MAP_READABLE) &&
	      !luo_ioas_map_file(io, a1, m, MiB, MiB, IOVA_B, LUO_IOMMU_RW) &&
	      !luo_ioas_map_file(io, a3, m, 2 * MiB, 64 * KiB, IOVA_C, LUO_IOMMU_RW),
	      "map the memfd\n");

	/* A device attached (its domain pins the pages) copies A to B. */
	CHECK(!luo_mock_domain(io, a1, &hwpt), "mock domain\n");
	access = luo_access_open(io, a1);
	CHECK(access >= 0, "access: %s\n", strerror(-access));
	CHECK(!luo_access_rw(io, access, IOVA_A, buf, sizeof(buf), false) &&
	      !luo_access_rw(io, access, IOVA_B + DMA_AT, buf, sizeof(buf), true),
	      "DMA from A to B\n");
	close(access);
	CHECK(pread(m, back, sizeof(back), MiB + DMA_AT) == sizeof(back) &&
	      !memcmp(back, buf, sizeof(buf)) && buf[0] == luo_byte(seed, 0),
	      "the DMA did not land in the memfd\n");

	CHECK(!luo_preserve(s, m, 1) && !luo_preserve(s, io, 2), "PRESERVE_FD\n");

	/* From PREPARE the IOASes keep their shape; CANCEL lets them go. */
	CHECK(!luo_set_event(dev, LIVEUPDATE_EVENT_PREPARE), "PREPARE: %s\n", strerror(errno));
	CHECK(luo_ioas_map_file(io, a3, m, 3 * MiB, 4 * KiB, IOVA_D, LUO_IOMMU_RW) == -EBUSY,
	      "map while prepared\n");
	CHECK(luo_ioas_unmap(io, a1, IOVA_A, MiB) == -EBUSY, "unmap while prepared\n");
	CHECK(luo_ioas_copy(io, a3, IOVA_D, a1, IOVA_B, MiB) == -EBUSY, "copy while prepared\n");
	CHECK(luo_ioas_alloc(io) == -EBUSY, "IOAS alloc while prepared\n");
	CHECK(luo_iommufd_destroy(io, a3) == -EBUSY, "IOAS destroy while prepared\n");
	CHECK(!luo_set_event(dev, LIVEUPDATE_EVENT_CANCEL), "CANCEL: %s\n", strerror(errno));
	a4 = luo_ioas_alloc(io);
	CHECK(a4 > 0 && !luo_ioas_map_file(io, a3, m, 3 * MiB, 4 * KiB, IOVA_D, LUO_IOMMU_RW),
	      "map after CANCEL\n");
	/* Areas that do not start at the start of what they map. */
	CHECK(!luo_ioas_map_file(io, a3, m, OFF_E, LEN_E, IOVA_E, IOMMU_IOAS_MAP_READABLE),
	      "map at an unaligned offset\n");
	CHECK(!luo_ioas_copy(io, a4, IOVA_F, a1, IOVA_B + 64 * KiB, 64 * KiB),
	      "copy a part of B\n");

	/* A memfd mapped after PRESERVE_FD but never preserved. */
	late = memfd_of("late", seed, SEALS);
	CHECK(!luo_ioas_map_file(io, a4, late, 0, MiB, IOVA_A, LUO_IOMMU_RW), "map late\n");
	err = luo_set_event(dev, LIVEUPDATE_EVENT_PREPARE) ? -errno : 0;
	CHECK(err == -ENOLINK, "PREPARE with an unpreserved memfd mapped: %s, not ENOLINK\n",
	      strerror(-err));
	CHECK(luo_ioas_unmap(io, a4, IOVA_A, MiB) == MiB, "unmap after the failed PREPARE\n");
	close(late);

	/* The kexec runs PREPARE and FREEZE itself. */
	close(m);
	close(io);
	snprintf(args, sizeof(args), "seed=%llu a1=%d a2=%d a3=%d a4=%d",
		 (unsigned long long)seed, a1, a2, a3, a4);
	ksft_exit_fail_msg("kexec: %s\n", strerror(-luo_kexec(args)));
}

/* Whether buf holds bytes [at, at + len) of stream seed. */
static bool is_stream(const uint8_t *buf, size_t len, uint64_t seed, uint64_t at)
{
	for (size_t i = 0; i < len; i++)
		if (buf[i] != luo_byte(seed, at + i))
			return false;
	return true;
}

TEST(dma_lands_in_the_retrieved_memfd_without_a_map_call)
{
	uint64_t seed = luo_arg_u64("seed");
	__u32 a1 = luo_arg_u64("a1"), a2 = luo_arg_u64("a2"), hwpt;
	__u32 a3 = luo_arg_u64("a3"), a4 = luo_arg_u64("a4");
	int dev = luo_open(), s, io, m, access, access3;
	static uint8_t buf[MiB];
	uint8_t *mem;

	ASSERT_LE(0, dev);
	s = luo_retrieve_session(dev, "vmm");
	ASSERT_LE(0, s);
	/* The iommufd first: it brings its memfd, which is then the one given. */
	io = luo_retrieve_fd(s, 2);
	ASSERT_LE(0, io) TH_LOG("RETRIEVE_FD of the iommufd: %s", strerror(-io));
	m = luo_retrieve_fd(s, 1);
	ASSERT_LE(0, m);

	/* The same IOAS ids, and no other. */
	EXPECT_EQ(0, luo_ioas_ranges(io, a1));
	EXPECT_EQ(0, luo_ioas_ranges(io, a3));
	EXPECT_EQ(0, luo_ioas_ranges(io, a4));
	EXPECT_EQ(-ENOENT, luo_ioas_ranges(io, a2));

	/* What the device wrote through B in kernel 1 is there through B. */
	access = luo_access_open(io, a1);
	ASSERT_LE(0, access);
	ASSERT_EQ(0, luo_access_rw(io, access, IOVA_B + DMA_AT, buf, 4 * KiB, false));
	EXPECT_TRUE(is_stream(buf, 4 * KiB, seed, 0));
	ASSERT_EQ(0, luo_access_rw(io, access, IOVA_B, buf, DMA_AT, false));
	EXPECT_TRUE(is_stream(buf, DMA_AT, seed, MiB));
	ASSERT_EQ(0, luo_access_rw(io, access, IOVA_A, buf, MiB, false));
	EXPECT_TRUE(is_stream(buf, MiB, seed, 0));

	/* DMA now, through B, lands in the retrieved memfd. */
	memset(buf, 0x5a, 64 * KiB);
	ASSERT_EQ(0, luo_access_rw(io, access, IOVA_B, buf, 64 * KiB, true));
	mem = mmap(NULL, MEM, PROT_READ | PROT_WRITE, MAP_SHARED, m, 0);
	ASSERT_NE(MAP_FAILED, mem);
	EXPECT_EQ(0, memcmp(mem + MiB, buf, 64 * KiB));
	/* A is still read-only to the device; nothing is mapped elsewhere. */
	EXPECT_EQ(-EPERM, luo_access_rw(io, access, IOVA_A, buf, 4 * KiB, true));
	EXPECT_EQ(-ENOENT, luo_access_rw(io, access, IOVA_NONE, buf, 4 * KiB, false));

	/* The second IOAS, with the mapping made after CANCEL. */
	access3 = luo_access_open(io, a3);
	ASSERT_LE(0, access3);
	ASSERT_EQ(0, luo_access_rw(io, access3, IOVA_C, buf, 64 * KiB, false));
	EXPECT_TRUE(is_stream(buf, 64 * KiB, seed, 2 * MiB));
	ASSERT_EQ(0, luo_access_rw(io, access3, IOVA_D, buf, 4 * KiB, false));
	EXPECT_TRUE(is_stream(buf, 4 * KiB, seed, 3 * MiB));
	EXPECT_EQ(-ENOENT, luo_access_rw(io, access3, IOVA_D + 4 * KiB, buf, 4 * KiB, false));
	ASSERT_EQ(0, luo_access_rw(io, access3, IOVA_E, buf, LEN_E, false));
	EXPECT_TRUE(is_stream(buf, LEN_E, seed, OFF_E));
	EXPECT_EQ(-ENOENT, luo_access_rw(io, access3, IOVA_E, buf, LEN_E + 1, false));
	close(access3);

	/* The copy of a part of B, in the fourth IOAS. */
	access3 = luo_access_open(io, a4);
	ASSERT_LE(0, access3);
	ASSERT_EQ(0, luo_access_rw(io, access3, IOVA_F, buf, 64 * KiB, false));
	EXPECT_TRUE(is_stream(buf, 64 * KiB, seed, MiB + 64 * KiB));
	close(access3);

	/* A device's page table, made now, translates B to the memfd's pages. */
	ASSERT_EQ(0, luo_mock_domain(io, a1, &hwpt));
	EXPECT_EQ(0, luo_mock_check_map(io, hwpt, IOVA_B, mem + MiB, MiB));
	EXPECT_EQ(0, luo_mock_check_map(io, hwpt, IOVA_A, mem, MiB));
	close(access);

	/* An IOAS like any other: copy, unmap; after FINISH too. */
	EXPECT_EQ(0, luo_ioas_copy(io, a4, IOVA_B, a1, IOVA_B, MiB));
	EXPECT_EQ((long long)MiB, luo_ioas_unmap(io, a4, IOVA_B, MiB));
	EXPECT_EQ(0, luo_finish(s));
	EXPECT_EQ((long long)(64 * KiB), luo_ioas_unmap(io, a3, IOVA_C, 64 * KiB));
	EXPECT_EQ(0, luo_ioas_map_file(io, a3, m, 0, MiB, IOVA_C, LUO_IOMMU_RW));
	munmap(mem, MEM);
	close(m);
	close(io);
	close(s);
	close(dev);
}

TEST(an_unretrieved_iommufd_is_freed_at_finish)
{
	int dev = luo_open(), s;

	ASSERT_LE(0, dev);
	s = luo_retrieve_session(dev, "order");
	ASSERT_LE(0, s);
	EXPECT_EQ(2, luo_files_in(s));
	EXPECT_EQ(0, luo_finish(s));
	EXPECT_EQ(LIVEUPDATE_STATE_NORMAL, luo_get_state(dev));
	close(s);
	close(dev);
}

LUO_KEXEC_TEST_MAIN(stage1)
