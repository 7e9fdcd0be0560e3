// SPDX-License-Identifier: GPL-2.0
/*
 * Two-stage: 1000 memfds across 100 sessions cross a plain kexec. Each
 * memfd has its own size and pseudo-random contents; stage 2 regenerates
 * them and compares SHA-256. Stage 1 closes every memfd after preserving
 * it: the sessions keep them.
 */
#define _GNU_SOURCE
#include "memfd_util.h"
#include "luo_test.h"

#define SESSIONS 100
#define PER_SESSION 10

/* Size of memfd `i`: 0 to a bit over 5 pages, odd sizes included. */
static off_t size_of(int i)
{
	return (i * 2654435761u) % (5 * 4096 + 333);
}

/* The SHA-256 memfd `i` must have. */
static void expected(int i, char hex[65])
{
	struct sha256 sh;

	sha256_init(&sh);
	for (off_t k = 0; k < size_of(i); k++) {
		uint8_t b = luo_byte(i, k);

		sha256_update(&sh, &b, 1);
	}
	sha256_hex(&sh, hex);
}

static void stage1(void)
{
	int dev = luo_open(), err;
	char name[16];

	if (dev < 0)
		ksft_exit_fail_msg("open: %s\n", strerror(errno));
	for (int s = 0; s < SESSIONS; s++) {
		int sfd;

		snprintf(name, sizeof(name), "many-%d", s);
		sfd = luo_create_session(dev, name);
		if (sfd < 0)
			ksft_exit_fail_msg("CREATE_SESSION %s: %s\n", name, strerror(-sfd));
		for (int j = 0; j < PER_SESSION; j++) {
			int i = s * PER_SESSION + j, fd = luo_memfd("m", size_of(i));

			if (fd < 0 || (err = luo_fill(fd, 0, size_of(i), i)) ||
			    (err = luo_preserve(sfd, fd, i)))
				ksft_exit_fail_msg("memfd %d: %s\n", i, strerror(fd < 0 ? -fd : -err));
			close(fd);
		}
		/* Keep the session fd: closing it in NORMAL would drop it. */
	}
	ksft_exit_fail_msg("kexec: %s\n", strerror(-luo_kexec("")));
}

TEST(a_thousand_memfds_in_a_hundred_sessions)
{
	int dev = luo_open(), bad = 0, n = 0;
	char name[16], hex[65], want[65];

	ASSERT_LE(0, dev);
	for (int s = 0; s < SESSIONS; s++) {
		int sfd;

		snprintf(name, sizeof(name), "many-%d", s);
		sfd = luo_retrieve_session(dev, name);
		ASSERT_LE(0, sfd) {
			TH_LOG("%s: %s", name, strerror(-sfd));
		}
		for (int j = 0; j < PER_SESSION; j++) {
			int i = s * PER_SESSION + j, fd = luo_retrieve_fd(sfd, i);

			ASSERT_LE(0, fd);
			expected(i, want);
			ASSERT_EQ(0, luo_sha_fd(fd, hex));
			if (luo_fd_size(fd) != size_of(i) || strcmp(hex, want)) {
				if (bad++ < 5)
					TH_LOG("memfd %d differs", i);
			}
			n++;
			close(fd);
		}
		ASSERT_EQ(0, luo_finish(sfd));
		close(sfd);
	}
	EXPECT_EQ(0, bad);
	EXPECT_EQ(SESSIONS * PER_SESSION, n);
	EXPECT_EQ(LIVEUPDATE_STATE_NORMAL, luo_get_state(dev));
	close(dev);
}

LUO_KEXEC_TEST_MAIN(stage1)
