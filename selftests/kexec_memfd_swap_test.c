// SPDX-License-Identifier: GPL-2.0
/*
 * Two-stage: a page written into a hole after PREPARE and then swapped
 * out still crosses the kexec.
 *
 * FREEZE must find every page that appeared since PREPARE, in the page
 * cache or in swap. Stage 1 turns on swap (zram), preserves a sparse
 * memfd of two pages, sends PREPARE, writes page 5 (a hole until then)
 * and pushes it out to swap with MADV_PAGEOUT: the memfd holds as many
 * pages in memory as at PREPARE. Then FREEZE, writes into existing pages
 * (they land in the preserved folios) and the kexec. Stage 2 checks every
 * byte, and that holes stayed holes.
 */
#include "luo_test.h"
#include "memfd_util.h"

#define PAGES 16
#define PG 4096

static void swap_on(void)
{
	int fd = open("/sys/block/zram0/disksize", O_WRONLY);

	if (fd < 0 || write(fd, "64M", 3) != 3)
		ksft_exit_fail_msg("zram0 disksize: %s\n", strerror(errno));
	close(fd);
	if (system("mkswap /dev/zram0 >/dev/null && swapon /dev/zram0"))
		ksft_exit_fail_msg("swapon /dev/zram0 failed\n");
}

static long long swap_used_kb(void)
{
	return luo_meminfo_kb("SwapTotal") - luo_meminfo_kb("SwapFree");
}

static void stage1(void)
{
	int dev, s, m;
	char sha[65], args[128], *map;
	long long before;

	swap_on();
	dev = luo_open();
	s = luo_create_session(dev, "swap");
	m = luo_memfd("swapped", PAGES * PG);
	if (dev < 0 || s < 0 || m < 0 || luo_fill(m, 0, 2 * PG, 1) || luo_preserve(s, m, 1))
		ksft_exit_fail_msg("setup failed\n");
	if (luo_set_event(dev, LIVEUPDATE_EVENT_PREPARE))
		ksft_exit_fail_msg("PREPARE failed\n");

	/* A new page in a hole after PREPARE, pushed out to swap. */
	if (luo_fill(m, 5 * PG, PG, 5))
		ksft_exit_fail_msg("write page 5: %s\n", strerror(errno));
	map = mmap(NULL, PAGES * PG, PROT_READ | PROT_WRITE, MAP_SHARED, m, 0);
	if (map == MAP_FAILED)
		ksft_exit_fail_msg("mmap: %s\n", strerror(errno));
	/* MADV_PAGEOUT reclaims what this mapping maps: map page 5 first. */
	*(volatile char *)(map + 5 * PG);
	before = swap_used_kb();
	if (madvise(map + 5 * PG, PG, MADV_PAGEOUT))
		ksft_exit_fail_msg("MADV_PAGEOUT: %s\n", strerror(errno));
	if (swap_used_kb() < before + 4)
		ksft_exit_fail_msg("page 5 did not go to swap (%lld kB used, %lld before)\n",
				   swap_used_kb(), before);
	printf("# page 5 is in swap: %lld kB of swap used\n", swap_used_kb());

	if (luo_set_event(dev, LIVEUPDATE_EVENT_FREEZE))
		ksft_exit_fail_msg("FREEZE failed\n");
	/* Existing pages take writes until the jump: they are preserved. */
	memset(map + 100, 0x17, 10);
	if (luo_fill(m, PG, 64, 9))
		ksft_exit_fail_msg("write after FREEZE: %s\n", strerror(errno));
	if (luo_sha_fd(m, sha))
		ksft_exit_fail_msg("sha: %s\n", strerror(errno));
	snprintf(args, sizeof(args), "sha=%s", sha);
	ksft_exit_fail_msg("kexec: %s\n", strerror(-luo_kexec(args)));
}

TEST(every_page_arrived)
{
	int dev = luo_open(), s, m;
	char sha[65], page[PG];

	ASSERT_LE(0, dev);
	s = luo_retrieve_session(dev, "swap");
	ASSERT_LE(0, s);
	m = luo_retrieve_fd(s, 1);
	ASSERT_LE(0, m);
	ASSERT_EQ(0, luo_sha_fd(m, sha));
	EXPECT_STREQ(luo_arg("sha"), sha);
	/* The page that was in swap at FREEZE, byte for byte. */
	ASSERT_EQ(PG, pread(m, page, PG, 5 * PG));
	for (int i = 0; i < PG; i++) {
		ASSERT_EQ(luo_byte(5, 5 * PG + i), (uint8_t)page[i]) {
			TH_LOG("page 5, byte %d", i);
		}
	}
	ASSERT_EQ(PG, pread(m, page, PG, 0));
	EXPECT_EQ(0x17, page[100]);
	/* Pages 0, 1 and 5: holes stayed holes. */
	EXPECT_EQ(3 * PG, luo_fd_bytes(m));
	EXPECT_EQ(0, luo_finish(s));
	close(m);
	close(s);
	close(dev);
}

LUO_KEXEC_TEST_MAIN(stage1)
