// SPDX-License-Identifier: GPL-2.0
/*
 * Two-stage, upstream-style (PRESERVE_FD, then a plain kexec: no events):
 * 256 MiB of random data crosses the kexec, checked by SHA-256, and a
 * memfd made of 2 MiB folios (shmem huge pages) comes back still made of
 * 2 MiB folios: the very same folios, not copies.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/random.h>
#include "memfd_util.h"
#include "luo_test.h"

#define MiB (1LL << 20)
#define BIG (256 * MiB)
#define HUGE (16 * MiB)
#define THP_SHMEM "/sys/kernel/mm/transparent_hugepage/shmem_enabled"

static void die(const char *what, int err)
{
	ksft_exit_fail_msg("%s: %s\n", what, strerror(err < 0 ? -err : err));
}

static void stage1(void)
{
	char args[256], hex[65], hhex[65];
	int dev = luo_open(), s, big, huge, err;
	uint64_t seed;
	long long thp;

	if (dev < 0)
		die("open", errno);
	if (getrandom(&seed, sizeof(seed), 0) != sizeof(seed))
		die("getrandom", errno);
	s = luo_create_session(dev, "large");
	big = luo_memfd("big", BIG);
	if (s < 0 || big < 0)
		die("session/memfd", s < 0 ? s : big);
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
	snprintf(args, sizeof(args), "sha=%s hsha=%s", hex, hhex);
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
