// SPDX-License-Identifier: GPL-2.0
/*
 * Two-stage: named sessions cross a kexec driven by explicit events.
 *
 * Stage 1 makes sessions "a", "b" and "c", an unnamed one, one ("gone")
 * closed before PREPARE and one ("late", with a memfd) closed between
 * PREPARE and FREEZE; runs PREPARE and FREEZE; closes "c" while FROZEN
 * (it is committed, so it still goes); kexecs. Stage 2 checks which
 * sessions arrived and the rules of UPDATED, then ends the update with
 * SESSION_FINISH and a global FINISH. The TEST()s run in order.
 */
#include "memfd_util.h"
#include "luo_test.h"

static void stage1(void)
{
	int dev = luo_open(), unnamed = luo_open(), a, b, c, gone, late, memfd;

	if (dev < 0 || unnamed < 0)
		ksft_exit_fail_msg("open: %s\n", strerror(errno));
	a = luo_create_session(dev, "a");
	b = luo_create_session(dev, "b");
	c = luo_create_session(dev, "c");
	gone = luo_create_session(dev, "gone");
	late = luo_create_session(dev, "late");
	memfd = luo_memfd("late", 4096);
	if (a < 0 || b < 0 || c < 0 || gone < 0 || late < 0 || memfd < 0)
		ksft_exit_fail_msg("CREATE_SESSION or memfd failed\n");
	if (luo_preserve(late, memfd, 1))
		ksft_exit_fail_msg("PRESERVE_FD failed\n");
	close(gone);
	if (luo_set_event(dev, LIVEUPDATE_EVENT_PREPARE))
		ksft_exit_fail_msg("PREPARE failed\n");
	/* In PREPARE's record, not in FREEZE's: FREEZE must write it again. */
	close(late);
	if (luo_set_event(dev, LIVEUPDATE_EVENT_FREEZE))
		ksft_exit_fail_msg("FREEZE failed\n");
	close(c);
	ksft_exit_fail_msg("kexec: %s\n", strerror(-luo_kexec("")));
}

TEST(state_is_updated)
{
	int dev = luo_open();

	ASSERT_LE(0, dev);
	char buf[32];

	EXPECT_EQ(LIVEUPDATE_STATE_UPDATED, luo_get_state(dev));
	ASSERT_EQ(0, luo_read_file("/sys/kernel/liveupdate/state", buf, sizeof(buf)));
	EXPECT_STREQ("updated", buf);
	close(dev);
}

TEST(named_sessions_arrived)
{
	const char *names[] = { "a", "b", "c" };
	char name[LIVEUPDATE_SESSION_NAME_LENGTH];
	int dev = luo_open();

	ASSERT_LE(0, dev);
	for (int i = 0; i < 3; i++) {
		int s = luo_retrieve_session(dev, names[i]);

		ASSERT_LE(0, s) {
			TH_LOG("%s: %s", names[i], strerror(-s));
		}
		EXPECT_EQ(FD_CLOEXEC, fcntl(s, F_GETFD) & FD_CLOEXEC);
		ASSERT_EQ(0, luo_get_name(s, name));
		EXPECT_STREQ(names[i], name);
		close(s);
	}
	/* Closed before FREEZE: not handed over. */
	EXPECT_EQ(-ENOENT, luo_retrieve_session(dev, "gone"));
	EXPECT_EQ(-ENOENT, luo_retrieve_session(dev, "late"));
	EXPECT_EQ(-ENOENT, luo_retrieve_session(dev, "never"));
	/* No unnamed session is handed over: ENOENT, as upstream. */
	EXPECT_EQ(-ENOENT, luo_retrieve_session(dev, ""));
	close(dev);
}

TEST(one_claim_at_a_time)
{
	int dev = luo_open(), s, again;

	ASSERT_LE(0, dev);
	s = luo_retrieve_session(dev, "a");
	ASSERT_LE(0, s);
	/* Held by another fd: EINVAL, as upstream answers. */
	EXPECT_EQ(-EINVAL, luo_retrieve_session(dev, "a"));
	/* Closing gives the claim up: it can be retrieved again. */
	close(s);
	again = luo_retrieve_session(dev, "a");
	EXPECT_LE(0, again);
	close(again);
	close(dev);
}

TEST(incoming_and_outgoing_names_are_separate)
{
	int dev = luo_open(), next, again, same;

	ASSERT_LE(0, dev);
	/*
	 * A client may prepare its next update under the name it is still
	 * retrieving (upstream allows it too).
	 */
	same = luo_create_session(dev, "b");
	ASSERT_LE(0, same);
	EXPECT_EQ(-EEXIST, luo_create_session(dev, "b"));
	EXPECT_EQ(0, luo_set_name(dev, "b2"));
	EXPECT_EQ(-EEXIST, luo_set_name(dev, "b"));
	/* The incoming "b" is still there, and still incoming. */
	again = luo_retrieve_session(dev, "b");
	ASSERT_LE(0, again);
	EXPECT_EQ(LIVEUPDATE_SESSION_STATE_INCOMING, luo_session_state(again, NULL));
	EXPECT_EQ(LIVEUPDATE_SESSION_STATE_OPEN, luo_session_state(same, NULL));
	close(again);
	close(same);
	/* New outgoing sessions can be made for the next update. */
	next = luo_create_session(dev, "next");
	EXPECT_LE(0, next);
	/* ... but they are not incoming ones. */
	EXPECT_EQ(-EINVAL, luo_finish(next));
	EXPECT_EQ(-ENOENT, luo_retrieve_session(dev, "next"));
	close(next);
	close(dev);
}

TEST(no_new_update_until_finished)
{
	int dev = luo_open();

	ASSERT_LE(0, dev);
	EXPECT_EQ(-EBUSY, luo_set_event(dev, LIVEUPDATE_EVENT_PREPARE));
	EXPECT_EQ(-EBUSY, luo_set_event(dev, LIVEUPDATE_EVENT_FREEZE));
	EXPECT_EQ(-EBUSY, luo_set_event(dev, LIVEUPDATE_EVENT_CANCEL));
	/* A plain kexec is refused too: the image loads, reboot() fails. */
	EXPECT_EQ(-EBUSY, luo_kexec(""));
	EXPECT_EQ(LIVEUPDATE_STATE_UPDATED, luo_get_state(dev));
	close(dev);
}

TEST(finish_one_session)
{
	struct liveupdate_session_finish bad = { .size = sizeof(bad), .reserved = 1 };
	int dev = luo_open(), s, again;

	ASSERT_LE(0, dev);
	s = luo_retrieve_session(dev, "a");
	ASSERT_LE(0, s);
	EXPECT_EQ(-EINVAL, luo_ioctl(s, LIVEUPDATE_SESSION_FINISH, &bad));
	ASSERT_EQ(0, luo_finish(s));
	/* Idempotent; "b" and "c" are still incoming. */
	EXPECT_EQ(0, luo_finish(s));
	EXPECT_EQ(LIVEUPDATE_STATE_UPDATED, luo_get_state(dev));
	close(s);
	EXPECT_EQ(-ENOENT, luo_retrieve_session(dev, "a"));
	/* Its name is free for an outgoing session. */
	again = luo_create_session(dev, "a");
	EXPECT_LE(0, again);
	close(again);
	close(dev);
}

TEST(global_finish_releases_the_rest)
{
	int dev = luo_open(), held;

	ASSERT_LE(0, dev);
	/* "b" is held by an fd, "c" by nobody: FINISH ends both. */
	held = luo_retrieve_session(dev, "b");
	ASSERT_LE(0, held);
	ASSERT_EQ(0, luo_set_event(dev, LIVEUPDATE_EVENT_FINISH));
	EXPECT_EQ(LIVEUPDATE_STATE_NORMAL, luo_get_state(dev));
	EXPECT_EQ(-ENOENT, luo_retrieve_session(dev, "b"));
	EXPECT_EQ(-ENOENT, luo_retrieve_session(dev, "c"));
	/* The held fd keeps an ended session that can only be finished. */
	EXPECT_EQ(0, luo_finish(held));
	close(held);
	/* The next update can begin. */
	EXPECT_EQ(0, luo_set_event(dev, LIVEUPDATE_EVENT_PREPARE));
	EXPECT_EQ(0, luo_set_event(dev, LIVEUPDATE_EVENT_CANCEL));
	close(dev);
}

LUO_KEXEC_TEST_MAIN(stage1)
