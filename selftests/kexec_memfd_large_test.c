// SPDX-License-Identifier: GPL-2.0
/*
 * Two-stage, upstream-style (PRESERVE_FD, then a plain kexec: no events):
 * 256 MiB of random data crosses the kexec, checked by SHA-256, and a
 * memfd made of 2 MiB folios (shmem huge pages) comes back still made of
 * 2 MiB folios: the very same folios, not copies. A third memfd is
 * written half front to back and half back to front, so that in file
 * order its pages go up in physical memory in one half and down in the
 * other (the page allocator hands out pages in one direction): the folio
 * list has runs going both ways (luo-rs,memfd-v4), checked by SHA-256 too.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/random.h>
#include "memfd_util.h"
#include "luo_test.h"

#define MiB (1LL << 20)
#define BIG (256 * MiB)
#define HUGE (16 * MiB)
#define BOTH_WAYS (8 * MiB)
#define PAGE 4096LL
#define THP_SHMEM "/sys/kernel/mm/transparent_hugepage/shmem_enabled"

static void die(const char *what, int err)
{
	ksft_exit_fail_msg("%s: %s\n", what, strerror(err < 0 ? -err : err));
}

/*
 * Steps between neighbours in the file that go one frame up or one frame
 * down in physical memory (/proc/self/pagemap, root only).
 */
static void frame_steps(int fd, long long len, long long *up, long long *down)
{
	long long pages = len / PAGE;
	volatile uint8_t *map = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
	int pm = open("/proc/self/pagemap", O_RDONLY);
	uint64_t prev = 0;

	if (map == MAP_FAILED || pm < 0)
		die("mmap or pagemap", errno);
	*up = *down = 0;
	for (long long p = 0; p < pages; p++) {
		uint64_t e, pfn;

		(void)map[p * PAGE];
		if (pread(pm, &e, 8, ((uintptr_t)map / PAGE + p) * 8) != 8)
			die("pagemap", errno);
		pfn = e & ((1ULL << 55) - 1);
		if (!(e >> 63) || !pfn)
			die("pagemap: no frame", EINVAL);
		*up += prev && pfn == prev + 1;
		*down += prev && pfn == prev - 1;
		prev = pfn;
	}
	close(pm);
	munmap((void *)map, len);
}

/*
 * A memfd written half front to back and half back to front, preserved
 * as token 3, whose pinned pages go both up and down in file order; its
 * SHA-256 in hex. Pinning moves a page that lies in CMA memory (KHO's
 * scratch areas) to a new frame, in file order: then the memfd is given
 * up and made again, a few times.
 */
static void preserve_both_ways(int s, uint64_t seed, char hex[65])
{
	for (int attempt = 1; attempt <= 4; attempt++) {
		int fd = luo_memfd("both-ways", BOTH_WAYS), err;
		long long pages = BOTH_WAYS / PAGE, up, down;

		if (fd < 0)
			die("both-ways memfd", fd);
		for (long long p = 0; p < pages / 2; p++)
			if ((err = luo_fill(fd, p * PAGE, PAGE, seed)))
				die("fill forwards", err);
		for (long long p = pages - 1; p >= pages / 2; p--)
			if ((err = luo_fill(fd, p * PAGE, PAGE, seed)))
				die("fill backwards", err);
		if ((err = luo_sha_fd(fd, hex)) || (err = luo_preserve(s, fd, 3)))
			die("both-ways memfd", err);
		frame_steps(fd, BOTH_WAYS, &up, &down);
		printf("# both-ways memfd, pinned (attempt %d): %lld steps up, %lld down of %lld\n",
		       attempt, up, down, pages - 1);
		if (up && down)
			return;
		if ((err = luo_unpreserve(s, 3)))
			die("UNPRESERVE_FD", err);
		close(fd);
	}
	die("pinned pages never went both ways", EINVAL);
}

static void stage1(void)
{
	char args[384], hex[65], hhex[65], bhex[65];
	int dev = luo_open(), s, big, huge, err;
	uint64_t seed;
	long long thp;

	if (dev < 0)
		die("open", errno);
	if (getrandom(&seed, sizeof(seed), 0) != sizeof(seed))
		die("getrandom", errno);
	s = luo_create_session(dev, "large");
	if (s < 0)
		die("session", s);
	/* First, while most memory is free and little of it is CMA's. */
	preserve_both_ways(s, seed + 2, bhex);
	big = luo_memfd("big", BIG);
	if (big < 0)
		die("memfd", big);
	if ((err = luo_fill(big, 0, BIG, seed)) || (err = luo_sha_fd(big, hex)))
		die("fill", err);

	/* shmem huge pages for the next memfd (memfds use shmem's mount). */
	if ((err = luo_write_file(THP_SHMEM, "always")))
		die(THP_SHMEM, err);
	huge = luo_memfd("huge", HUGE);
	if (huge < 0 || (err = luo_fill(huge, 0, HUGE, seed + 1)) || (err = luo_sha_fd(huge, hhex)))
		die("huge memfd", huge < 0 ? huge : err);
	thp = luo_meminfo_kb("ShmemHugePages");
	printf("# ShmemHugePages before the kexec: %lld kB\n", thp);
	if (thp < HUGE / 1024)
		die("shmem did not give 2 MiB folios", EINVAL);

	if ((err = luo_preserve(s, big, 1)) || (err = luo_preserve(s, huge, 2)))
		die("PRESERVE_FD", err);
	/* No events: the kexec runs PREPARE and FREEZE itself. */
	snprintf(args, sizeof(args), "sha=%s hsha=%s bsha=%s", hex, hhex, bhex);
	ksft_exit_fail_msg("kexec: %s\n", strerror(-luo_kexec(args)));
}

/*
 * Reading and hashing 256 MiB under TCG takes longer than the harness's
 * default 30 s on the debug kernel (KASAN): give each test five minutes.
 */
FIXTURE(large) {};
FIXTURE_SETUP(large) {}
FIXTURE_TEARDOWN(large) {}

TEST_F_TIMEOUT(large, large_folios_stay_large, 300)
{
	int dev = luo_open(), s, fd;
	char hex[65];

	ASSERT_LE(0, dev);
	/* This kernel makes no huge pages of its own (shmem_enabled=never). */
	EXPECT_EQ(0, luo_meminfo_kb("ShmemHugePages"));
	s = luo_retrieve_session(dev, "large");
	ASSERT_LE(0, s);
	fd = luo_retrieve_fd(s, 2);
	ASSERT_LE(0, fd);
	EXPECT_EQ(HUGE / 1024, luo_meminfo_kb("ShmemHugePages"));
	ASSERT_EQ(0, luo_sha_fd(fd, hex));
	EXPECT_STREQ(luo_arg("hsha"), hex);
	close(fd);
	close(s);
	close(dev);
}

TEST_F_TIMEOUT(large, runs_going_down_survived, 300)
{
	int dev = luo_open(), s, fd;
	char hex[65];

	ASSERT_LE(0, dev);
	s = luo_retrieve_session(dev, "large");
	ASSERT_LE(0, s);
	fd = luo_retrieve_fd(s, 3);
	ASSERT_LE(0, fd);
	EXPECT_EQ(BOTH_WAYS, luo_fd_bytes(fd));
	ASSERT_EQ(0, luo_sha_fd(fd, hex));
	EXPECT_STREQ(luo_arg("bsha"), hex);
	close(fd);
	close(s);
	close(dev);
}

TEST_F_TIMEOUT(large, two_hundred_fifty_six_mib_survived, 300)
{
	int dev = luo_open(), s, fd;
	char hex[65];

	ASSERT_LE(0, dev);
	s = luo_retrieve_session(dev, "large");
	ASSERT_LE(0, s);
	fd = luo_retrieve_fd(s, 1);
	ASSERT_LE(0, fd);
	EXPECT_EQ(BIG, luo_fd_size(fd));
	EXPECT_EQ(BIG, luo_fd_bytes(fd));
	ASSERT_EQ(0, luo_sha_fd(fd, hex));
	EXPECT_STREQ(luo_arg("sha"), hex);
	EXPECT_EQ(0, luo_finish(s));
	EXPECT_EQ(LIVEUPDATE_STATE_NORMAL, luo_get_state(dev));
	close(fd);
	close(s);
	close(dev);
}

LUO_KEXEC_TEST_MAIN(stage1)
