// SPDX-License-Identifier: GPL-2.0
/*
 * Two-stage: once the kexec is committed, nothing userspace does can
 * change the handover.
 *
 * liveupdate_reboot() publishes the handover, then the kernel shuts down
 * and jumps while userspace keeps running. Stage 1 preserves two memfds,
 * sends PREPARE and FREEZE, asks the test control to hold the committed
 * kexec open for 400 ms, and starts threads that wait for the commit
 * (test-control "kexec-window") and then hammer CANCEL, PRESERVE_FD and
 * UNPRESERVE_FD and session churn, and close a preserved session's last
 * fd, while the kexec goes on. Stage 2 checks that both
 * memfds arrived whole: a CANCEL or close that got through in the window
 * would have unpreserved their folios under the published handover.
 */
#include "luo_test.h"
#include "memfd_util.h"
#include <pthread.h>

#define SIZE (4 << 20)

static int dev, kept, closing, churn, churn_memfd;

/*
 * Waits until liveupdate_reboot() has returned its success and holds the
 * kexec (test-control "kexec-window", set whatever luo-rs's own latch
 * says, so that a kernel without the latch fails this test).
 */
static void wait_for_commit(void)
{
	while (luo_control_u64("kexec-window") != 1)
		usleep(1000);
}

static void *cancel_loop(void *arg)
{
	int first;

	wait_for_commit();
	first = luo_set_event(dev, LIVEUPDATE_EVENT_CANCEL);
	printf("# CANCEL during the kexec: %s\n", first ? strerror(-first) : "accepted");
	fflush(stdout);
	for (;;)
		luo_set_event(dev, LIVEUPDATE_EVENT_CANCEL);
	return NULL;
}

static void *preserve_loop(void *arg)
{
	wait_for_commit();
	for (;;) {
		int s = luo_create_session(dev, "churn-2");

		luo_preserve(churn, churn_memfd, 7);
		luo_unpreserve(churn, 7);
		if (s >= 0)
			close(s);
	}
	return NULL;
}

static void *close_loop(void *arg)
{
	wait_for_commit();
	close(closing);
	printf("# closed the last fd of \"closing\" during the kexec\n");
	fflush(stdout);
	return NULL;
}

static int session_with_memfd(const char *name, uint64_t seed, char sha[65])
{
	int s = luo_create_session(dev, name), m = luo_memfd(name, SIZE);

	if (s < 0 || m < 0 || luo_fill(m, 0, SIZE, seed) || luo_sha_fd(m, sha) ||
	    luo_preserve(s, m, 1))
		ksft_exit_fail_msg("%s: setup failed\n", name);
	return s;
}

static void stage1(void)
{
	char sha_kept[65], sha_closing[65], args[256];
	pthread_t t[3];

	dev = luo_open();
	if (dev < 0)
		ksft_exit_fail_msg("open: %s\n", strerror(errno));
	kept = session_with_memfd("kept", 11, sha_kept);
	closing = session_with_memfd("closing", 12, sha_closing);
	churn = luo_create_session(dev, "churn");
	churn_memfd = luo_memfd("churn", 4096);
	if (churn < 0 || churn_memfd < 0)
		ksft_exit_fail_msg("churn: setup failed\n");
	if (luo_control("kexec-window 400"))
		ksft_exit_fail_msg("test control: kexec-window\n");
	if (luo_set_event(dev, LIVEUPDATE_EVENT_PREPARE) ||
	    luo_set_event(dev, LIVEUPDATE_EVENT_FREEZE))
		ksft_exit_fail_msg("PREPARE/FREEZE failed\n");
	if (pthread_create(&t[0], NULL, cancel_loop, NULL) ||
	    pthread_create(&t[1], NULL, preserve_loop, NULL) ||
	    pthread_create(&t[2], NULL, close_loop, NULL))
		ksft_exit_fail_msg("pthread_create failed\n");
	snprintf(args, sizeof(args), "kept=%s closing=%s", sha_kept, sha_closing);
	if (luo_kexec_load(args))
		ksft_exit_fail_msg("kexec_file_load: %s\n", strerror(errno));
	reboot(LINUX_REBOOT_CMD_KEXEC);
	ksft_exit_fail_msg("kexec: %s\n", strerror(errno));
}

static void check(struct __test_metadata *_metadata, const char *name)
{
	char sha[65];
	int d = luo_open(), s, m;

	ASSERT_LE(0, d);
	s = luo_retrieve_session(d, name);
	ASSERT_LE(0, s) {
		TH_LOG("%s: %s", name, strerror(-s));
	}
	m = luo_retrieve_fd(s, 1);
	ASSERT_LE(0, m) {
		TH_LOG("%s: RETRIEVE_FD: %s", name, strerror(-m));
	}
	EXPECT_EQ(SIZE, luo_fd_size(m));
	ASSERT_EQ(0, luo_sha_fd(m, sha));
	EXPECT_STREQ(luo_arg(name), sha);
	EXPECT_EQ(0, luo_finish(s));
	close(m);
	close(s);
	close(d);
}

TEST(the_kept_session_arrived_whole)
{
	check(_metadata, "kept");
}

TEST(the_session_closed_during_the_kexec_arrived_whole)
{
	check(_metadata, "closing");
}

TEST(nothing_changed_after_the_commit)
{
	int d = luo_open();

	ASSERT_LE(0, d);
	/* "churn" held no file at FREEZE; every PRESERVE_FD after was EBUSY. */
	unsigned int nr = 99;
	int s = luo_retrieve_session(d, "churn");

	ASSERT_LE(0, s);
	EXPECT_EQ(LIVEUPDATE_SESSION_STATE_INCOMING, luo_session_state(s, &nr));
	EXPECT_EQ(0, nr);
	EXPECT_EQ(0, luo_finish(s));
	close(s);
	close(d);
}

LUO_KEXEC_TEST_MAIN(stage1)
