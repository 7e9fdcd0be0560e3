// SPDX-License-Identifier: GPL-2.0
/*
 * Two-stage: luo-rs's handover record crosses a real kexec through KHO.
 * Stage 1 notes this kernel's boot id and kexecs; stage 2 checks that the
 * new kernel received a record from exactly that kernel.
 */
#include "luo_test.h"

static void stage1(void)
{
	char id[64], arg[128];

	if (luo_status("boot_id", id, sizeof(id)))
		ksft_exit_fail_msg("no boot_id in " LUO_STATUS "\n");
	snprintf(arg, sizeof(arg), "prev_boot_id=%s", id);
	printf("# stage 1 kernel boot id %s\n", id);
	fflush(stdout);
	ksft_exit_fail_msg("kexec failed: %s\n", strerror(-luo_kexec(arg)));
}

TEST(handover_arrived)
{
	char buf[64];

	ASSERT_EQ(0, luo_status("incoming", buf, sizeof(buf)));
	EXPECT_STREQ("yes", buf);
}

TEST(handover_is_from_the_previous_kernel)
{
	const char *want = luo_arg("prev_boot_id");

	ASSERT_NE(NULL, want);
	EXPECT_EQ(strtoull(want, NULL, 0), luo_status_u64("incoming_boot_id"));
	/* ... and this kernel is a new one. */
	EXPECT_NE(strtoull(want, NULL, 0), luo_status_u64("boot_id"));
}

TEST(generation_counts_updates)
{
	EXPECT_EQ(1, luo_status_u64("incoming_generation"));
}

TEST(state_is_normal_after_update)
{
	int fd = luo_open();

	ASSERT_LE(0, fd);
	EXPECT_EQ(LIVEUPDATE_STATE_NORMAL, luo_get_state(fd));
	close(fd);
}

LUO_KEXEC_TEST_MAIN(stage1)
