// SPDX-License-Identifier: GPL-2.0
/*
 * Two-stage: a handover that fails validation is refused. Stage 1
 * preserves a session, FREEZEs, damages the published record through the
 * test control (one byte of its format string) and kexecs; the new kernel
 * must log the refusal, start NORMAL as if cold-booted, and offer no
 * session.
 */
#include "luo_test.h"

static void stage1(void)
{
	int dev = luo_open(), s, f, err;

	if (dev < 0)
		ksft_exit_fail_msg("open: %s\n", strerror(errno));
	s = luo_create_session(dev, "doomed");
	f = luo_test_file("lost", 4);
	if (s < 0 || f < 0 || luo_preserve(s, f, 1))
		ksft_exit_fail_msg("cannot preserve a test file\n");
	if ((err = luo_set_event(dev, LIVEUPDATE_EVENT_PREPARE)) ||
	    (err = luo_set_event(dev, LIVEUPDATE_EVENT_FREEZE)))
		ksft_exit_fail_msg("PREPARE/FREEZE: %s\n", strerror(-err));
	/* Only while FROZEN. */
	if ((err = luo_control("corrupt-handover")))
		ksft_exit_fail_msg("corrupt-handover: %s\n", strerror(-err));
	ksft_exit_fail_msg("kexec: %s\n", strerror(-luo_kexec("")));
}

TEST(a_damaged_handover_is_refused)
{
	char buf[16];
	int dev = luo_open();

	ASSERT_LE(0, dev);
	EXPECT_TRUE(luo_kmsg_has("refusing the incoming handover"));
	EXPECT_EQ(LIVEUPDATE_STATE_NORMAL, luo_get_state(dev));
	EXPECT_EQ(-ENOENT, luo_retrieve_session(dev, "doomed"));
	ASSERT_EQ(0, luo_status("incoming", buf, sizeof(buf)));
	EXPECT_STREQ("no", buf);
	close(dev);
}

TEST(corrupting_is_only_for_a_frozen_update)
{
	EXPECT_EQ(-EBUSY, luo_control("corrupt-handover"));
}

LUO_KEXEC_TEST_MAIN(stage1)
