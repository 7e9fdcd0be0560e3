// SPDX-License-Identifier: GPL-2.0
/*
 * Two-stage: a subsystem's one u64 crosses the kexec with no session at
 * all. Stage 1 registers the test subsystem and sends PREPARE and FREEZE;
 * stage 2 finds the system UPDATED for the subsystem's sake, gives the
 * data to the subsystem once it registers, and the global FINISH calls
 * its finish() and returns to NORMAL.
 */
#include "luo_test.h"

#define VALUE 0x1234abcdULL

static void stage1(void)
{
	char cmd[64];
	int dev = luo_open();

	if (dev < 0)
		ksft_exit_fail_msg("open: %s\n", strerror(errno));
	snprintf(cmd, sizeof(cmd), "value %llu", VALUE);
	if (luo_control(cmd) || luo_control("register-subsystem"))
		ksft_exit_fail_msg("cannot set up the test subsystem\n");
	if (luo_set_event(dev, LIVEUPDATE_EVENT_PREPARE) ||
	    luo_set_event(dev, LIVEUPDATE_EVENT_FREEZE))
		ksft_exit_fail_msg("PREPARE/FREEZE failed\n");
	ksft_exit_fail_msg("kexec: %s\n", strerror(-luo_kexec("")));
}

TEST(subsystem_data_crosses_the_kexec)
{
	char buf[32];
	int dev = luo_open();

	ASSERT_LE(0, dev);
	/* No session came, but the subsystem's data keeps the update open. */
	EXPECT_EQ(LIVEUPDATE_STATE_UPDATED, luo_get_state(dev));
	/* The only session is this open's own. */
	EXPECT_EQ(1, luo_status_u64("sessions"));
	/* FREEZE's value (PREPARE's plus one) is what was handed over. */
	EXPECT_EQ(VALUE + 1, luo_control_u64("incoming"));
	EXPECT_EQ(0, luo_control_u64("subsystem"));
	/* A kexec now would lose it. */
	EXPECT_EQ(-EBUSY, luo_kexec("never=reached"));
	ASSERT_EQ(0, luo_control("register-subsystem"));
	EXPECT_EQ(0, luo_control_u64("finishes"));
	ASSERT_EQ(0, luo_set_event(dev, LIVEUPDATE_EVENT_FINISH));
	EXPECT_EQ(LIVEUPDATE_STATE_NORMAL, luo_get_state(dev));
	EXPECT_EQ(1, luo_control_u64("finishes"));
	EXPECT_EQ(VALUE + 1, luo_control_u64("finished"));
	/* Gone after FINISH. */
	ASSERT_EQ(0, luo_key(LUO_CONTROL, "incoming", buf, sizeof(buf)));
	EXPECT_STREQ("none", buf);
	close(dev);
}

LUO_KEXEC_TEST_MAIN(stage1)
