// SPDX-License-Identifier: GPL-2.0
/*
 * Two-stage: an update driven by explicit events after a cancelled one.
 * Stage 1 runs PREPARE, CANCEL, PREPARE, FREEZE, CANCEL (nothing may stay
 * published), then PREPARE and FREEZE again and kexecs from FROZEN; stage 2
 * checks the handover arrived from that kernel and the state is NORMAL.
 */
#include "luo_test.h"

#include <sys/stat.h>

static void fail(const char *what, int err)
{
	ksft_exit_fail_msg("%s: %s\n", what, strerror(-err));
}

static void stage1(void)
{
	static const unsigned int steps[] = {
		LIVEUPDATE_EVENT_PREPARE, LIVEUPDATE_EVENT_CANCEL,
		LIVEUPDATE_EVENT_PREPARE, LIVEUPDATE_EVENT_FREEZE, LIVEUPDATE_EVENT_CANCEL,
		LIVEUPDATE_EVENT_PREPARE, LIVEUPDATE_EVENT_FREEZE,
	};
	char id[64], arg[128];
	struct stat st;
	int fd = luo_open(), err;

	if (fd < 0)
		fail("open", -errno);
	for (unsigned int i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		err = luo_set_event(fd, steps[i]);
		if (err)
			fail("SET_EVENT", err);
		if (steps[i] == LIVEUPDATE_EVENT_CANCEL &&
		    !stat("/sys/kernel/debug/kho/out/sub_fdts/luo-rs", &st))
			ksft_exit_fail_msg("CANCEL left the handover published\n");
	}
	if (luo_get_state(fd) != LIVEUPDATE_STATE_FROZEN)
		ksft_exit_fail_msg("not FROZEN before kexec\n");
	if (luo_status("boot_id", id, sizeof(id)))
		ksft_exit_fail_msg("no boot_id\n");
	snprintf(arg, sizeof(arg), "prev_boot_id=%s", id);
	fail("kexec", luo_kexec(arg));
}

TEST(handover_from_the_frozen_kernel)
{
	const char *want = luo_arg("prev_boot_id");
	char buf[16];

	ASSERT_NE(NULL, want);
	ASSERT_EQ(0, luo_status("incoming", buf, sizeof(buf)));
	ASSERT_STREQ("yes", buf);
	EXPECT_EQ(strtoull(want, NULL, 0), luo_status_u64("incoming_boot_id"));
	EXPECT_EQ(1, luo_status_u64("incoming_generation"));
}

TEST(new_kernel_starts_normal)
{
	int fd = luo_open();

	ASSERT_LE(0, fd);
	EXPECT_EQ(LIVEUPDATE_STATE_NORMAL, luo_get_state(fd));
	/* and can prepare the next update */
	EXPECT_EQ(0, luo_set_event(fd, LIVEUPDATE_EVENT_PREPARE));
	EXPECT_EQ(0, luo_set_event(fd, LIVEUPDATE_EVENT_CANCEL));
	close(fd);
}

LUO_KEXEC_TEST_MAIN(stage1)
