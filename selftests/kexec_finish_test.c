// SPDX-License-Identifier: GPL-2.0
/*
 * Two-stage, the upstream-style flow: stage 1 creates sessions and kexecs
 * without sending any event (luo-rs runs PREPARE and FREEZE itself);
 * stage 2 retrieves and finishes each session, and the state returns to
 * NORMAL by itself when the last one is finished.
 */
#include "luo_test.h"

#define N 5

static void stage1(void)
{
	char name[16];
	int dev = luo_open();

	if (dev < 0)
		ksft_exit_fail_msg("open: %s\n", strerror(errno));
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "s%d", i);
		if (luo_create_session(dev, name) < 0)
			ksft_exit_fail_msg("CREATE_SESSION %s failed\n", name);
	}
	if (luo_get_state(dev) != LIVEUPDATE_STATE_NORMAL)
		ksft_exit_fail_msg("not NORMAL before the plain kexec\n");
	ksft_exit_fail_msg("kexec: %s\n", strerror(-luo_kexec("")));
}

TEST(finishing_the_last_session_ends_the_update)
{
	char name[16];
	int dev = luo_open();

	ASSERT_LE(0, dev);
	for (int i = 0; i < N; i++) {
		int s;

		EXPECT_EQ(LIVEUPDATE_STATE_UPDATED, luo_get_state(dev));
		snprintf(name, sizeof(name), "s%d", i);
		s = luo_retrieve_session(dev, name);
		ASSERT_LE(0, s) {
			TH_LOG("%s: %s", name, strerror(-s));
		}
		ASSERT_EQ(0, luo_finish(s));
		close(s);
	}
	EXPECT_EQ(LIVEUPDATE_STATE_NORMAL, luo_get_state(dev));
	close(dev);
}

LUO_KEXEC_TEST_MAIN(stage1)
