// SPDX-License-Identifier: GPL-2.0
/*
 * Two-stage: a file handler that registers after boot (a module, say)
 * still gets its incoming files.
 *
 * Stage 1 preserves a test-handler file and kexecs with
 * luotest.late_handler, so the new kernel boots without the test handler.
 * Stage 2: RETRIEVE_FD answers EOPNOTSUPP, as often as asked; nothing is
 * decided or lost. Once the handler registers, the file comes back whole.
 */
#include "luo_test.h"

static const char payload[] = "registered late, still mine";

static void stage1(void)
{
	int dev = luo_open(), s, t;

	s = luo_create_session(dev, "late");
	t = luo_test_file(payload, sizeof(payload));
	if (dev < 0 || s < 0 || t < 0 || luo_preserve(s, t, 42))
		ksft_exit_fail_msg("setup failed\n");
	ksft_exit_fail_msg("kexec: %s\n", strerror(-luo_kexec("late_handler=1")));
}

TEST(the_file_waits_for_its_handler)
{
	int dev = luo_open(), s, f;
	char buf[64] = "";

	ASSERT_LE(0, dev);
	EXPECT_EQ(0, luo_control_u64("handler"));
	s = luo_retrieve_session(dev, "late");
	ASSERT_LE(0, s);
	for (int i = 0; i < 3; i++)
		EXPECT_EQ(-EOPNOTSUPP, luo_retrieve_fd(s, 42));

	ASSERT_EQ(0, luo_control("register-handler"));
	f = luo_retrieve_fd(s, 42);
	ASSERT_LE(0, f) {
		TH_LOG("RETRIEVE_FD after registering: %s", strerror(-f));
	}
	EXPECT_EQ((ssize_t)sizeof(payload), luo_test_read(f, buf, sizeof(buf)));
	EXPECT_STREQ(payload, buf);
	EXPECT_EQ(0, luo_finish(s));
	EXPECT_EQ(LIVEUPDATE_STATE_NORMAL, luo_get_state(dev));
	close(f);
	close(s);
	close(dev);
}

LUO_KEXEC_TEST_MAIN(stage1)
