// SPDX-License-Identifier: GPL-2.0
/*
 * Two-stage, upstream-style: a session and a subsystem cross a plain
 * kexec (no events; luo-rs runs PREPARE and FREEZE itself). In stage 2,
 * finishing the last session ends the update for the subsystem too: its
 * finish() runs and the state returns to NORMAL.
 */
#include "luo_test.h"

#define VALUE 0x7700ULL

static void stage1(void)
{
	char cmd[64];
	int dev = luo_open();
	int s, f;

	if (dev < 0)
		ksft_exit_fail_msg("open: %s\n", strerror(errno));
	snprintf(cmd, sizeof(cmd), "value %#llx", VALUE);
	if (luo_control(cmd) || luo_control("register-subsystem"))
		ksft_exit_fail_msg("cannot set up the test subsystem\n");
	s = luo_create_session(dev, "with-subsystem");
	f = luo_test_file("kept", 4);
	if (s < 0 || f < 0 || luo_preserve(s, f, 1))
		ksft_exit_fail_msg("cannot preserve a test file\n");
	ksft_exit_fail_msg("kexec: %s\n", strerror(-luo_kexec("")));
}

TEST(finishing_the_last_session_finishes_the_subsystem)
{
	char buf[8] = { 0 };
	int dev = luo_open();
	int s, f;

	ASSERT_LE(0, dev);
	EXPECT_EQ(LIVEUPDATE_STATE_UPDATED, luo_get_state(dev));
	EXPECT_EQ(VALUE + 1, luo_control_u64("incoming"));
	ASSERT_EQ(0, luo_control("register-subsystem"));
	s = luo_retrieve_session(dev, "with-subsystem");
	ASSERT_LE(0, s);
	f = luo_retrieve_fd(s, 1);
	ASSERT_LE(0, f);
	EXPECT_EQ(4, luo_test_read(f, buf, sizeof(buf)));
	EXPECT_STREQ("kept", buf);
	EXPECT_EQ(0, luo_control_u64("finishes"));
	ASSERT_EQ(0, luo_finish(s));
	EXPECT_EQ(LIVEUPDATE_STATE_NORMAL, luo_get_state(dev));
	EXPECT_EQ(1, luo_control_u64("finishes"));
	EXPECT_EQ(VALUE + 1, luo_control_u64("finished"));
	close(f);
	close(s);
	close(dev);
}

LUO_KEXEC_TEST_MAIN(stage1)
