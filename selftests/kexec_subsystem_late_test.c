// SPDX-License-Identifier: GPL-2.0
/*
 * Two-stage: subsystem data whose subsystem has not registered in the new
 * kernel is not thrown away when the last session is finished.
 *
 * Stage 1 hands over a session and the test subsystem's data. In stage 2
 * the session is finished before the subsystem registers: the state stays
 * UPDATED and the data waits. Once the subsystem registers, the global
 * FINISH gives it its data and the update ends.
 */
#include "luo_test.h"

#define VALUE 0x5150ULL

static void stage1(void)
{
	char cmd[64];
	int dev = luo_open(), s, f;

	snprintf(cmd, sizeof(cmd), "value %#llx", VALUE);
	if (dev < 0 || luo_control(cmd) || luo_control("register-subsystem"))
		ksft_exit_fail_msg("cannot set up the test subsystem\n");
	s = luo_create_session(dev, "early");
	f = luo_test_file("x", 1);
	if (s < 0 || f < 0 || luo_preserve(s, f, 1))
		ksft_exit_fail_msg("cannot preserve a test file\n");
	ksft_exit_fail_msg("kexec: %s\n", strerror(-luo_kexec("")));
}

TEST(data_waits_for_its_subsystem)
{
	int dev = luo_open(), s;

	ASSERT_LE(0, dev);
	EXPECT_EQ(0, luo_control_u64("subsystem"));
	s = luo_retrieve_session(dev, "early");
	ASSERT_LE(0, s);
	ASSERT_EQ(0, luo_finish(s));
	close(s);
	/* The last session is finished, but the subsystem's data is not. */
	EXPECT_EQ(LIVEUPDATE_STATE_UPDATED, luo_get_state(dev));
	EXPECT_EQ(VALUE + 1, luo_control_u64("incoming"));
	EXPECT_EQ(0, luo_control_u64("finishes"));

	ASSERT_EQ(0, luo_control("register-subsystem"));
	ASSERT_EQ(0, luo_set_event(dev, LIVEUPDATE_EVENT_FINISH));
	EXPECT_EQ(LIVEUPDATE_STATE_NORMAL, luo_get_state(dev));
	EXPECT_EQ(1, luo_control_u64("finishes"));
	EXPECT_EQ(VALUE + 1, luo_control_u64("finished"));
	close(dev);
}

LUO_KEXEC_TEST_MAIN(stage1)
