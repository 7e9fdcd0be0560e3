// SPDX-License-Identifier: GPL-2.0
/*
 * Two-stage: 100,000 files in 10,000 sessions cross a kexec.
 *
 * That is more than one handover blob holds (4 MiB, about 23,000 small
 * memfds), so the record goes in several (the kernel logs how many). Stage 1 makes
 * 10,000 sessions of 10 memfds each: empty memfds of distinct sizes (so
 * that each file is known by its size), and in every 1,000th session one
 * with a page of data; then PREPARE, FREEZE and the kexec. Stage 2
 * retrieves every session and every file and checks each size, the data
 * pages' bytes, and that the record came in several blobs. The times of
 * the steps are printed, never asserted on.
 *
 * The VM has 3 GiB for it (scripts/vm-tests-in-chroot.sh): 100,000
 * memfds, and their records (in the handover itself; before luo-rs,memfd-v3
 * each had a page of its own, 400 MiB for all of them).
 */
#include "memfd_util.h"
#include "luo_test.h"
#include <sys/resource.h>

#define SESSIONS 10000
#define FILES 10

/* The size of file j of session i: distinct for every file. */
static off_t size_of(int i, int j)
{
	return (off_t)i * 4096 * FILES + j * 4096 + 1 + j;
}

/* Whether file j of session i holds a page of data (stream i), at its
 * start (the file is larger than a page). */
static int has_data(int i, int j)
{
	return i % 1000 == 999 && j == 0;
}

static void die(const char *what, int i, int err)
{
	ksft_exit_fail_msg("%s (session %d): %s\n", what, i, strerror(err < 0 ? -err : err));
}

static void raise_nofile(void)
{
	struct rlimit r = { SESSIONS * (FILES + 1) + 1000, SESSIONS * (FILES + 1) + 1000 };

	if (setrlimit(RLIMIT_NOFILE, &r))
		die("RLIMIT_NOFILE", 0, errno);
}

static void stage1(void)
{
	int dev = luo_open(), err;
	double t = luo_ms(CLOCK_MONOTONIC);

	if (dev < 0)
		die("open", 0, errno);
	raise_nofile();
	for (int i = 0; i < SESSIONS; i++) {
		char name[32];
		int s;

		snprintf(name, sizeof(name), "s%05d", i);
		s = luo_create_session(dev, name);
		if (s < 0)
			die("CREATE_SESSION", i, s);
		for (int j = 0; j < FILES; j++) {
			int m = luo_memfd("f", size_of(i, j));

			if (m < 0)
				die("memfd", i, m);
			if (has_data(i, j) && (err = luo_fill(m, 0, 4096, i)))
				die("fill", i, err);
			if ((err = luo_preserve(s, m, j + 1)))
				die("PRESERVE_FD", i, err);
		}
	}
	printf("# %d sessions of %d memfds made and preserved in %.0f ms\n", SESSIONS, FILES,
	       luo_ms(CLOCK_MONOTONIC) - t);
	t = luo_ms(CLOCK_MONOTONIC);
	if ((err = luo_set_event(dev, LIVEUPDATE_EVENT_PREPARE)))
		die("PREPARE", 0, err);
	printf("# PREPARE: %.0f ms\n", luo_ms(CLOCK_MONOTONIC) - t);
	t = luo_ms(CLOCK_MONOTONIC);
	if ((err = luo_set_event(dev, LIVEUPDATE_EVENT_FREEZE)))
		die("FREEZE", 0, err);
	printf("# FREEZE: %.0f ms\n", luo_ms(CLOCK_MONOTONIC) - t);
	fflush(stdout);
	ksft_exit_fail_msg("kexec: %s\n", strerror(-luo_kexec("")));
}

TEST(the_record_came_in_several_blobs)
{
	EXPECT_TRUE(luo_kmsg_has("handover received: format luo-rs,handover-v4 in "));
	EXPECT_FALSE(luo_kmsg_has("format luo-rs,handover-v4 in 1 blob(s)"));
	EXPECT_TRUE(luo_kmsg_has("10000 session(s)"));
}

FIXTURE(scale) {
	int unused;
};

FIXTURE_SETUP(scale)
{
}

FIXTURE_TEARDOWN(scale)
{
}

/* About 30 s under TCG, 100 s on the debug kernel. */
TEST_F_TIMEOUT(scale, every_file_of_every_session_comes_back, 900)
{
	int dev = luo_open(), bad = 0;
	double t = luo_ms(CLOCK_MONOTONIC);

	ASSERT_LE(0, dev);
	raise_nofile();
	for (int i = 0; i < SESSIONS && bad < 10; i++) {
		char name[32];
		unsigned int nr = 0;
		int s;

		snprintf(name, sizeof(name), "s%05d", i);
		s = luo_retrieve_session(dev, name);
		ASSERT_LE(0, s) {
			TH_LOG("RETRIEVE_SESSION %s: %s", name, strerror(-s));
		}
		ASSERT_EQ(LIVEUPDATE_SESSION_STATE_INCOMING, luo_session_state(s, &nr));
		EXPECT_EQ(FILES, nr);
		for (int j = 0; j < FILES; j++) {
			int m = luo_retrieve_fd(s, j + 1);

			if (m < 0) {
				TH_LOG("session %d file %d: %s", i, j, strerror(-m));
				bad++;
			} else if (luo_fd_size(m) != size_of(i, j)) {
				TH_LOG("session %d file %d: size %lld", i, j,
				       (long long)luo_fd_size(m));
				bad++;
			} else if (has_data(i, j)) {
				for (int b = 0; b < 4096; b += 511) {
					uint8_t c;

					if (pread(m, &c, 1, b) != 1 || c != luo_byte(i, b))
						bad++;
				}
			}
			if (m >= 0)
				close(m);
		}
		EXPECT_EQ(0, luo_finish(s));
		close(s);
	}
	EXPECT_EQ(0, bad);
	EXPECT_EQ(LIVEUPDATE_STATE_NORMAL, luo_get_state(dev));
	printf("# %d sessions and %d files retrieved and finished in %.0f ms\n", SESSIONS,
	       SESSIONS * FILES, luo_ms(CLOCK_MONOTONIC) - t);
	close(dev);
}

LUO_KEXEC_TEST_MAIN(stage1)
