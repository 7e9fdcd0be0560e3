// SPDX-License-Identifier: GPL-2.0
/*
 * Preserving files in one kernel: SESSION_PRESERVE_FD and
 * SESSION_UNPRESERVE_FD with the test file handler, every documented
 * errno, the state rules, and PREPARE/CANCEL with files.
 */
#include "luo_test.h"

FIXTURE(s) {
	int dev, session, file;
};

FIXTURE_SETUP(s)
{
	self->dev = luo_open();
	ASSERT_LE(0, self->dev);
	self->session = luo_create_session(self->dev, "files");
	ASSERT_LE(0, self->session);
	self->file = luo_test_file("payload", 7);
	ASSERT_LE(0, self->file);
}

FIXTURE_TEARDOWN(s)
{
	luo_set_event(self->dev, LIVEUPDATE_EVENT_CANCEL);
	close(self->file);
	close(self->session);
	close(self->dev);
}

TEST_F(s, preserve_and_unpreserve)
{
	ASSERT_EQ(0, luo_preserve(self->session, self->file, 1));
	EXPECT_EQ(0, luo_unpreserve(self->session, 1));
	EXPECT_EQ(-ENOENT, luo_unpreserve(self->session, 1));
	/* The token and the file are free again. */
	EXPECT_EQ(0, luo_preserve(self->session, self->file, 1));
}

TEST_F(s, any_token_is_valid)
{
	int other = luo_test_file("x", 1);

	ASSERT_LE(0, other);
	EXPECT_EQ(0, luo_preserve(self->session, self->file, 0));
	EXPECT_EQ(0, luo_preserve(self->session, other, ~0ULL));
	EXPECT_EQ(0, luo_unpreserve(self->session, 0));
	EXPECT_EQ(0, luo_unpreserve(self->session, ~0ULL));
	close(other);
}

TEST_F(s, token_used_is_eexist)
{
	int other = luo_test_file("x", 1);

	ASSERT_LE(0, other);
	ASSERT_EQ(0, luo_preserve(self->session, self->file, 5));
	EXPECT_EQ(-EEXIST, luo_preserve(self->session, other, 5));
	close(other);
}

TEST_F(s, a_file_is_in_one_session_only)
{
	int second = luo_create_session(self->dev, "second");

	ASSERT_LE(0, second);
	ASSERT_EQ(0, luo_preserve(self->session, self->file, 1));
	EXPECT_EQ(-EBUSY, luo_preserve(self->session, self->file, 2));
	EXPECT_EQ(-EBUSY, luo_preserve(second, self->file, 1));
	/* Closing the session releases the file. */
	close(self->session);
	self->session = -1;
	EXPECT_EQ(0, luo_preserve(second, self->file, 1));
	close(second);
}

TEST_F(s, bad_fds)
{
	int pipefd[2];

	EXPECT_EQ(-EBADF, luo_preserve(self->session, -1, 1));
	EXPECT_EQ(-EBADF, luo_preserve(self->session, 9999, 1));
	/* No handler for a pipe, nor for luo-rs's own fds. */
	ASSERT_EQ(0, pipe(pipefd));
	EXPECT_EQ(-ENOENT, luo_preserve(self->session, pipefd[0], 1));
	EXPECT_EQ(-ENOENT, luo_preserve(self->session, self->dev, 1));
	EXPECT_EQ(-ENOENT, luo_preserve(self->session, self->session, 1));
	close(pipefd[0]);
	close(pipefd[1]);
}

TEST_F(s, unnamed_sessions_cannot_preserve)
{
	int unnamed = luo_open();

	ASSERT_LE(0, unnamed);
	EXPECT_EQ(-EINVAL, luo_preserve(unnamed, self->file, 1));
	ASSERT_EQ(0, luo_set_name(unnamed, "now-named"));
	EXPECT_EQ(0, luo_preserve(unnamed, self->file, 1));
	close(unnamed);
}

TEST_F(s, struct_checks)
{
	struct liveupdate_session_unpreserve_fd u = { .size = sizeof(u), .reserved = 1, .token = 1 };
	struct liveupdate_session_preserve_fd p = { .size = 8, .fd = self->file, .token = 1 };

	ASSERT_EQ(0, luo_preserve(self->session, self->file, 1));
	EXPECT_EQ(-EINVAL, luo_ioctl(self->session, LIVEUPDATE_SESSION_UNPRESERVE_FD, &u));
	EXPECT_EQ(-EINVAL, luo_ioctl(self->session, LIVEUPDATE_SESSION_PRESERVE_FD, &p));
}

TEST_F(s, files_are_frozen_with_the_state)
{
	int other = luo_test_file("x", 1);

	ASSERT_LE(0, other);
	ASSERT_EQ(0, luo_preserve(self->session, self->file, 1));
	for (int step = 0; step < 2; step++) {
		ASSERT_EQ(0, luo_set_event(self->dev, step ? LIVEUPDATE_EVENT_FREEZE :
						     LIVEUPDATE_EVENT_PREPARE));
		EXPECT_EQ(-EBUSY, luo_preserve(self->session, other, 2));
		EXPECT_EQ(-EBUSY, luo_unpreserve(self->session, 1));
	}
	ASSERT_EQ(0, luo_set_event(self->dev, LIVEUPDATE_EVENT_CANCEL));
	EXPECT_EQ(0, luo_preserve(self->session, other, 2));
	EXPECT_EQ(0, luo_unpreserve(self->session, 1));
	close(other);
}

TEST_F(s, outgoing_sessions_have_nothing_to_retrieve_or_finish)
{
	ASSERT_EQ(0, luo_preserve(self->session, self->file, 1));
	EXPECT_EQ(-EINVAL, luo_retrieve_fd(self->session, 1));
	EXPECT_EQ(-EINVAL, luo_finish(self->session));
}

/* The session keeps the file alive after userspace closed it. */
TEST_F(s, preserved_file_outlives_its_fd)
{
	int f = luo_test_file("kept", 4);

	ASSERT_LE(0, f);
	ASSERT_EQ(0, luo_preserve(self->session, f, 9));
	close(f);
	ASSERT_EQ(0, luo_set_event(self->dev, LIVEUPDATE_EVENT_PREPARE));
	ASSERT_EQ(0, luo_set_event(self->dev, LIVEUPDATE_EVENT_FREEZE));
	ASSERT_EQ(0, luo_set_event(self->dev, LIVEUPDATE_EVENT_CANCEL));
	EXPECT_EQ(0, luo_unpreserve(self->session, 9));
}

/* Closing a session while PREPARED undoes its PREPARE work. */
TEST_F(s, close_while_prepared)
{
	int s2 = luo_create_session(self->dev, "closing");

	ASSERT_LE(0, s2);
	ASSERT_EQ(0, luo_preserve(s2, self->file, 1));
	ASSERT_EQ(0, luo_set_event(self->dev, LIVEUPDATE_EVENT_PREPARE));
	close(s2);
	/* Released at once: preservable again once the state allows. */
	ASSERT_EQ(0, luo_set_event(self->dev, LIVEUPDATE_EVENT_CANCEL));
	EXPECT_EQ(0, luo_preserve(self->session, self->file, 1));
}

TEST_F(s, session_state_follows_the_update)
{
	unsigned int nr = 99;
	int unnamed = luo_open();

	ASSERT_LE(0, unnamed);
	ASSERT_EQ(LIVEUPDATE_SESSION_STATE_OPEN, luo_session_state(self->session, &nr));
	EXPECT_EQ(0, nr);
	ASSERT_EQ(0, luo_preserve(self->session, self->file, 1));
	ASSERT_EQ(LIVEUPDATE_SESSION_STATE_OPEN, luo_session_state(self->session, &nr));
	EXPECT_EQ(1, nr);
	ASSERT_EQ(0, luo_set_event(self->dev, LIVEUPDATE_EVENT_PREPARE));
	EXPECT_EQ(LIVEUPDATE_SESSION_STATE_PREPARED, luo_session_state(self->session, NULL));
	/* Unnamed sessions are never handed over. */
	EXPECT_EQ(LIVEUPDATE_SESSION_STATE_OPEN, luo_session_state(unnamed, NULL));
	ASSERT_EQ(0, luo_set_event(self->dev, LIVEUPDATE_EVENT_FREEZE));
	EXPECT_EQ(LIVEUPDATE_SESSION_STATE_FROZEN, luo_session_state(self->session, NULL));
	ASSERT_EQ(0, luo_set_event(self->dev, LIVEUPDATE_EVENT_CANCEL));
	EXPECT_EQ(LIVEUPDATE_SESSION_STATE_OPEN, luo_session_state(self->session, &nr));
	EXPECT_EQ(1, nr);
	close(unnamed);
}

/* The debugfs status lists each file with its token, handler and status. */
TEST_F(s, debugfs_lists_files)
{
	char buf[8192];

	ASSERT_EQ(0, luo_preserve(self->session, self->file, 0x2a));
	ASSERT_LT(0, luo_read_all(LUO_STATUS, buf, sizeof(buf)));
	EXPECT_NE(NULL, strstr(buf, "file token=0x2a handler=luo-rs,test-v1 preserved")) {
		TH_LOG("%s", buf);
	}
	ASSERT_EQ(0, luo_set_event(self->dev, LIVEUPDATE_EVENT_PREPARE));
	ASSERT_LT(0, luo_read_all(LUO_STATUS, buf, sizeof(buf)));
	EXPECT_NE(NULL, strstr(buf, "file token=0x2a handler=luo-rs,test-v1 prepared"));
}

static int published(void)
{
	return access("/sys/kernel/debug/kho/out/sub_fdts/luo-rs", F_OK) == 0;
}

/* A handler failing in PREPARE: the error comes back, the files already
 * prepared are cancelled, nothing is published, the state is NORMAL, and
 * the next PREPARE (once the file is fixed) works. */
TEST_F(s, failed_prepare_rolls_back)
{
	int bad = luo_test_file("fail:prepare", 12);

	ASSERT_LE(0, bad);
	ASSERT_EQ(0, luo_preserve(self->session, self->file, 1));
	ASSERT_EQ(0, luo_preserve(self->session, bad, 2));
	EXPECT_EQ(-EIO, luo_set_event(self->dev, LIVEUPDATE_EVENT_PREPARE));
	EXPECT_EQ(LIVEUPDATE_STATE_NORMAL, luo_get_state(self->dev));
	EXPECT_FALSE(published());
	/* Files can be changed again: nothing is left half-prepared. */
	EXPECT_EQ(0, luo_unpreserve(self->session, 1));
	EXPECT_EQ(0, luo_preserve(self->session, self->file, 1));
	ASSERT_EQ(3, write(bad, "fix", 3));
	EXPECT_EQ(0, luo_set_event(self->dev, LIVEUPDATE_EVENT_PREPARE));
	EXPECT_TRUE(published());
	close(bad);
}

/* A handler failing in FREEZE: everything PREPARE did is undone too. */
TEST_F(s, failed_freeze_rolls_back_to_normal)
{
	int bad = luo_test_file("ok", 2);

	ASSERT_LE(0, bad);
	ASSERT_EQ(0, luo_preserve(self->session, self->file, 1));
	ASSERT_EQ(0, luo_preserve(self->session, bad, 2));
	ASSERT_EQ(0, luo_set_event(self->dev, LIVEUPDATE_EVENT_PREPARE));
	EXPECT_TRUE(published());
	ASSERT_EQ(11, write(bad, "fail:freeze", 11));
	EXPECT_EQ(-EIO, luo_set_event(self->dev, LIVEUPDATE_EVENT_FREEZE));
	EXPECT_EQ(LIVEUPDATE_STATE_NORMAL, luo_get_state(self->dev));
	EXPECT_FALSE(published());
	EXPECT_EQ(0, luo_unpreserve(self->session, 2));
	close(bad);
}

/* A plain kexec whose implicit PREPARE fails is aborted: reboot() returns
 * the error and this kernel goes on, in NORMAL. */
TEST_F(s, failed_implicit_prepare_aborts_the_kexec)
{
	int bad = luo_test_file("fail:prepare", 12);

	ASSERT_LE(0, bad);
	ASSERT_EQ(0, luo_preserve(self->session, bad, 1));
	EXPECT_EQ(-EIO, luo_kexec("never=reached"));
	EXPECT_EQ(LIVEUPDATE_STATE_NORMAL, luo_get_state(self->dev));
	EXPECT_FALSE(published());
	close(bad);
}

TEST(payload_limit)
{
	static char big[5000];
	int f = luo_test_file(NULL, 0);

	ASSERT_LE(0, f);
	EXPECT_EQ(4088, write(f, big, 4088));
	EXPECT_EQ(-1, write(f, big, 4089));
	EXPECT_EQ(EFBIG, errno);
	close(f);
}

TEST_HARNESS_MAIN
