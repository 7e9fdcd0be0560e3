// SPDX-License-Identifier: GPL-2.0
/*
 * Two-stage: files cross a kexec through the handler callbacks (the test
 * handler's payloads), in several sessions, with CANCEL then a second
 * full update, a write between PREPARE and FREEZE, retrieve by token,
 * repeated retrieve, SESSION_FINISH and a global FINISH.
 */
#include "luo_test.h"

#include <sys/stat.h>

#define BIG 4088

static unsigned char big[BIG];

static void fill_big(void)
{
	for (int i = 0; i < BIG; i++)
		big[i] = (unsigned char)(i * 31 + 7);
}

static int test_file(const char *s)
{
	int f = luo_test_file(s, strlen(s));

	if (f < 0)
		ksft_exit_fail_msg("test file: %s\n", strerror(-f));
	return f;
}

static void stage1(void)
{
	int dev = luo_open(), vm, other, left, f_big, f_late, f_closed;

	fill_big();
	if (dev < 0)
		ksft_exit_fail_msg("open: %s\n", strerror(errno));
	vm = luo_create_session(dev, "vm");
	other = luo_create_session(dev, "other");
	left = luo_create_session(dev, "left");
	if (vm < 0 || other < 0 || left < 0)
		ksft_exit_fail_msg("CREATE_SESSION failed\n");
	f_big = luo_test_file(big, BIG);
	f_late = test_file("before");
	f_closed = test_file("closed by userspace");
	if (f_big < 0 ||
	    luo_preserve(vm, test_file("hello"), 0) ||
	    luo_preserve(vm, f_big, ~0ULL) ||
	    luo_preserve(vm, f_late, 7) ||
	    luo_preserve(vm, test_file(""), 8) ||
	    luo_preserve(vm, f_closed, 9) ||
	    luo_preserve(other, test_file("other"), 1) ||
	    luo_preserve(left, test_file("nobody retrieves me"), 1))
		ksft_exit_fail_msg("PRESERVE_FD failed\n");
	close(f_closed);
	/* A cancelled update first, then the real one. */
	if (luo_set_event(dev, LIVEUPDATE_EVENT_PREPARE) ||
	    luo_set_event(dev, LIVEUPDATE_EVENT_CANCEL) ||
	    luo_set_event(dev, LIVEUPDATE_EVENT_PREPARE))
		ksft_exit_fail_msg("PREPARE/CANCEL failed\n");
	/* Written after PREPARE: FREEZE must catch it. */
	if (pwrite(f_late, "after", 5, 0) != 5)
		ksft_exit_fail_msg("write: %s\n", strerror(errno));
	if (luo_set_event(dev, LIVEUPDATE_EVENT_FREEZE))
		ksft_exit_fail_msg("FREEZE failed\n");
	ksft_exit_fail_msg("kexec: %s\n", strerror(-luo_kexec("")));
}

static void expect_payload(struct __test_metadata *_metadata, int session, __u64 token,
			   const void *want, size_t len)
{
	unsigned char buf[8192];
	int f = luo_retrieve_fd(session, token);

	ASSERT_LE(0, f) {
		TH_LOG("token %llu: %s", (unsigned long long)token, strerror(-f));
	}
	EXPECT_EQ((ssize_t)len, luo_test_read(f, buf, sizeof(buf)));
	EXPECT_EQ(0, memcmp(buf, want, len));
	close(f);
}

TEST(payloads_survived)
{
	int dev = luo_open(), vm;

	fill_big();
	ASSERT_LE(0, dev);
	vm = luo_retrieve_session(dev, "vm");
	ASSERT_LE(0, vm);
	expect_payload(_metadata, vm, 0, "hello", 5);
	expect_payload(_metadata, vm, ~0ULL, big, BIG);
	expect_payload(_metadata, vm, 8, "", 0);
	expect_payload(_metadata, vm, 9, "closed by userspace", 19);
	close(vm);
	close(dev);
}

TEST(freeze_caught_the_late_write)
{
	int dev = luo_open(), vm;

	ASSERT_LE(0, dev);
	vm = luo_retrieve_session(dev, "vm");
	ASSERT_LE(0, vm);
	expect_payload(_metadata, vm, 7, "after", 5);
	close(vm);
	close(dev);
}

TEST(retrieve_again_gives_the_same_file)
{
	struct stat a, b;
	int dev = luo_open(), vm, f1, f2;

	ASSERT_LE(0, dev);
	vm = luo_retrieve_session(dev, "vm");
	ASSERT_LE(0, vm);
	f1 = luo_retrieve_fd(vm, 0);
	f2 = luo_retrieve_fd(vm, 0);
	ASSERT_LE(0, f1);
	ASSERT_LE(0, f2);
	EXPECT_NE(f1, f2);
	ASSERT_EQ(0, fstat(f1, &a));
	ASSERT_EQ(0, fstat(f2, &b));
	EXPECT_EQ(a.st_ino, b.st_ino);
	EXPECT_EQ(-ENOENT, luo_retrieve_fd(vm, 12345));
	/* An incoming session takes no new files. */
	EXPECT_EQ(-EINVAL, luo_preserve(vm, f1, 100));
	close(f1);
	close(f2);
	close(vm);
	close(dev);
}

TEST(finish_sessions)
{
	int dev = luo_open(), vm, other, held;

	ASSERT_LE(0, dev);
	unsigned int nr = 99;

	vm = luo_retrieve_session(dev, "vm");
	ASSERT_LE(0, vm);
	EXPECT_EQ(LIVEUPDATE_SESSION_STATE_INCOMING, luo_session_state(vm, &nr));
	EXPECT_EQ(5, nr);
	ASSERT_EQ(0, luo_finish(vm));
	EXPECT_EQ(LIVEUPDATE_SESSION_STATE_FINISHED, luo_session_state(vm, &nr));
	EXPECT_EQ(0, nr);
	/* Finished: its files are gone. */
	EXPECT_EQ(-ENOENT, luo_retrieve_fd(vm, 0));
	close(vm);
	/* "other" is finished without retrieving its file. */
	other = luo_retrieve_session(dev, "other");
	ASSERT_LE(0, other);
	ASSERT_EQ(0, luo_finish(other));
	close(other);
	EXPECT_EQ(LIVEUPDATE_STATE_UPDATED, luo_get_state(dev));
	/* "left" is ended by the global FINISH, with its file. */
	held = luo_retrieve_session(dev, "left");
	ASSERT_LE(0, held);
	ASSERT_EQ(0, luo_set_event(dev, LIVEUPDATE_EVENT_FINISH));
	EXPECT_EQ(LIVEUPDATE_STATE_NORMAL, luo_get_state(dev));
	EXPECT_EQ(LIVEUPDATE_SESSION_STATE_FINISHED, luo_session_state(held, NULL));
	/* Its files are gone: ENOENT, as for a session finished by itself. */
	EXPECT_EQ(-ENOENT, luo_retrieve_fd(held, 1));
	close(held);
	close(dev);
}

LUO_KEXEC_TEST_MAIN(stage1)
