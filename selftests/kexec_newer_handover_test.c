// SPDX-License-Identifier: GPL-2.0
/*
 * Two-stage: a handover in a newer format than this kernel reads (a
 * rollback to an older release, say) is refused cleanly. Stage 1
 * preserves a memfd, FREEZEs, and has the test control rename the
 * published format to the version after the newest one this kernel reads
 * (luo-rs,handover-v5): a valid record in every other way. The new kernel
 * must say why it refuses it, start NORMAL as if cold-booted, offer no
 * session, and work: the next update can be prepared.
 */
#include "memfd_util.h"
#include "luo_test.h"

static void stage1(void)
{
	int dev = luo_open(), s, m, err;

	if (dev < 0)
		ksft_exit_fail_msg("open: %s\n", strerror(errno));
	s = luo_create_session(dev, "from-the-future");
	m = luo_memfd("ram", 1 << 20);
	if (s < 0 || m < 0 || luo_fill(m, 0, 1 << 20, 80) || luo_preserve(s, m, 1))
		ksft_exit_fail_msg("cannot preserve a memfd\n");
	if ((err = luo_set_event(dev, LIVEUPDATE_EVENT_PREPARE)) ||
	    (err = luo_set_event(dev, LIVEUPDATE_EVENT_FREEZE)))
		ksft_exit_fail_msg("PREPARE/FREEZE: %s\n", strerror(-err));
	if ((err = luo_control("newer-handover")))
		ksft_exit_fail_msg("newer-handover: %s\n", strerror(-err));
	ksft_exit_fail_msg("kexec: %s\n", strerror(-luo_kexec("")));
}

TEST(a_newer_format_is_refused_with_its_reason)
{
	char buf[16];
	int dev = luo_open();

	ASSERT_LE(0, dev);
	EXPECT_TRUE(luo_kmsg_has("format luo-rs,handover-v5 is newer than this kernel reads"));
	EXPECT_EQ(LIVEUPDATE_STATE_NORMAL, luo_get_state(dev));
	EXPECT_EQ(-ENOENT, luo_retrieve_session(dev, "from-the-future"));
	ASSERT_EQ(0, luo_status("incoming", buf, sizeof(buf)));
	EXPECT_STREQ("no", buf);
	close(dev);
}

TEST(the_next_update_can_be_prepared)
{
	int dev = luo_open(), s, m;

	ASSERT_LE(0, dev);
	s = luo_create_session(dev, "from-the-future");
	m = luo_memfd("ram", 4096);
	ASSERT_LE(0, s);
	ASSERT_LE(0, m);
	ASSERT_EQ(0, luo_preserve(s, m, 1));
	EXPECT_EQ(0, luo_set_event(dev, LIVEUPDATE_EVENT_PREPARE));
	EXPECT_EQ(0, luo_set_event(dev, LIVEUPDATE_EVENT_CANCEL));
	close(m);
	close(s);
	close(dev);
}

TEST(renaming_the_format_is_only_for_a_frozen_update)
{
	EXPECT_EQ(-EBUSY, luo_control("newer-handover"));
}

LUO_KEXEC_TEST_MAIN(stage1)
