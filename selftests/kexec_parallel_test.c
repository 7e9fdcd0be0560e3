// SPDX-License-Identifier: GPL-2.0
/*
 * Two-stage: sessions are restored in parallel. A VMM per VM retrieves
 * its memory at the same time as the others, so a slow restore in one
 * session must hold up nobody else's RETRIEVE_FD: the downtime of the
 * host is the longest restore, not the sum of them.
 *
 * Stage 1 preserves, in session "slow", a test file whose retrieve()
 * waits for the test control's release-retrieves, in session "fast" a
 * 16 MiB memfd and a test file, and in session "also" another 16 MiB
 * memfd; kexec. Stage 2: while a child is held inside RETRIEVE_FD in
 * "slow", two more children rebuild the memfds of "fast" and "also" at
 * the same time (every byte checked) and finish their sessions, and the
 * state can be read; only then is the slow retrieve let go, and it
 * succeeds too.
 */
#define _GNU_SOURCE
#include <sys/wait.h>
#include "luo_test.h"
#include "memfd_util.h"

#define MEMFD_SIZE (16 << 20)
#define SEED 0x9a7a11e1
#define SEED_ALSO 0x9a7a11e2

static const char slow_payload[] = "stall:retrieve, then whole";
static const char fast_payload[] = "fast session's file";

static void stage1(void)
{
	int dev = luo_open(), slow, fast, also, t_slow, t_fast, m, m2;

	slow = luo_create_session(dev, "slow");
	fast = luo_create_session(dev, "fast");
	also = luo_create_session(dev, "also");
	t_slow = luo_test_file(slow_payload, sizeof(slow_payload));
	t_fast = luo_test_file(fast_payload, sizeof(fast_payload));
	m = luo_memfd("fast", MEMFD_SIZE);
	m2 = luo_memfd("also", MEMFD_SIZE);
	if (dev < 0 || slow < 0 || fast < 0 || also < 0 || t_slow < 0 || t_fast < 0 || m < 0 ||
	    m2 < 0)
		ksft_exit_fail_msg("setup failed\n");
	if (luo_fill(m, 0, MEMFD_SIZE, SEED) || luo_fill(m2, 0, MEMFD_SIZE, SEED_ALSO))
		ksft_exit_fail_msg("fill: %s\n", strerror(errno));
	if (luo_preserve(slow, t_slow, 1) || luo_preserve(fast, m, 1) ||
	    luo_preserve(fast, t_fast, 2) || luo_preserve(also, m2, 1))
		ksft_exit_fail_msg("PRESERVE_FD failed\n");
	ksft_exit_fail_msg("kexec: %s\n", strerror(-luo_kexec("")));
}

/* Whether the memfd holds stream `seed` in full. */
static bool memfd_intact(int fd, uint64_t seed)
{
	static uint8_t buf[1 << 16];

	if (luo_fd_size(fd) != MEMFD_SIZE)
		return false;
	for (off_t off = 0; off < MEMFD_SIZE; off += sizeof(buf)) {
		if (pread(fd, buf, sizeof(buf), off) != sizeof(buf))
			return false;
		for (size_t i = 0; i < sizeof(buf); i++)
			if (buf[i] != luo_byte(seed, off + i))
				return false;
	}
	return true;
}

/* Child: retrieves session `name` and its test file `token`; exit 0 if it
 * holds `payload`, else the errno (or 100 for wrong bytes). */
static int retrieve_test_file(const char *name, __u64 token, const char *payload)
{
	char buf[64] = "";
	int dev = luo_open(), s, f;

	s = dev < 0 ? dev : luo_retrieve_session(dev, name);
	if (s < 0)
		return -s;
	f = luo_retrieve_fd(s, token);
	if (f < 0)
		return -f;
	if (luo_test_read(f, buf, sizeof(buf)) != (ssize_t)strlen(payload) + 1 ||
	    strcmp(buf, payload))
		return 100;
	return 0;
}

/* Child: the whole of session "fast", checked and finished. */
static int restore_fast(void)
{
	int dev = luo_open(), s, m, ret;

	s = dev < 0 ? dev : luo_retrieve_session(dev, "fast");
	if (s < 0)
		return -s;
	m = luo_retrieve_fd(s, 1);
	if (m < 0)
		return -m;
	if (!memfd_intact(m, SEED))
		return 100;
	ret = retrieve_test_file("fast", 2, fast_payload);
	if (ret != EINVAL)
		return 101; /* the session is ours: claiming it again fails */
	ret = luo_retrieve_fd(s, 2);
	if (ret < 0)
		return -ret;
	return luo_finish(s) ? 102 : 0;
}

/* Child: the memfd of session "also", checked, and the session finished. */
static int restore_also(void)
{
	int dev = luo_open(), s, m;

	s = dev < 0 ? dev : luo_retrieve_session(dev, "also");
	if (s < 0)
		return -s;
	m = luo_retrieve_fd(s, 1);
	if (m < 0)
		return -m;
	if (!memfd_intact(m, SEED_ALSO))
		return 100;
	return luo_finish(s) ? 102 : 0;
}

/* Waits up to `ms` for child `pid`: its exit status, or -1 if it is still
 * running. */
static int wait_ms(pid_t pid, int ms)
{
	int status;

	for (int waited = 0; waited < ms; waited += 10) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : 200;
		usleep(10000);
	}
	return -1;
}

TEST(a_slow_restore_holds_up_no_other_session)
{
	pid_t slow, fast, also;
	int dev = luo_open(), ret;

	ASSERT_LE(0, dev);
	ASSERT_EQ(0, luo_control_u64("retrieves-stalled"));
	slow = fork();
	ASSERT_LE(0, slow);
	if (!slow)
		_exit(retrieve_test_file("slow", 1, slow_payload));
	for (int i = 0; i < 1000 && luo_control_u64("retrieves-stalled") != 1; i++)
		usleep(10000);
	ASSERT_EQ(1, luo_control_u64("retrieves-stalled")) {
		kill(slow, SIGKILL);
	}

	/* Meanwhile: two other sessions come back whole, at the same time,
	 * and the state reads. */
	EXPECT_EQ(LIVEUPDATE_STATE_UPDATED, luo_get_state(dev));
	fast = fork();
	ASSERT_LE(0, fast);
	if (!fast)
		_exit(restore_fast());
	also = fork();
	ASSERT_LE(0, also);
	if (!also)
		_exit(restore_also());
	ret = wait_ms(fast, 60000);
	EXPECT_EQ(0, ret) {
		TH_LOG("restoring \"fast\" beside a stalled restore: %d", ret);
		if (ret < 0)
			kill(fast, SIGKILL);
	}
	ret = wait_ms(also, 60000);
	EXPECT_EQ(0, ret) {
		TH_LOG("restoring \"also\" beside a stalled restore: %d", ret);
		if (ret < 0)
			kill(also, SIGKILL);
	}
	/* The slow one was still inside RETRIEVE_FD all along. */
	EXPECT_EQ(1, luo_control_u64("retrieves-stalled"));

	ASSERT_EQ(0, luo_control("release-retrieves"));
	ret = wait_ms(slow, 30000);
	EXPECT_EQ(0, ret) {
		if (ret < 0)
			kill(slow, SIGKILL);
	}
	EXPECT_EQ(0, luo_control_u64("retrieves-stalled"));
	if (ret < 0)
		waitpid(slow, NULL, 0);
	close(dev);
}

TEST(the_slow_file_is_still_there_and_the_update_ends)
{
	char buf[64];
	int dev = luo_open(), s, f;

	ASSERT_LE(0, dev);
	s = luo_retrieve_session(dev, "slow");
	ASSERT_LE(0, s);
	/*
	 * Retrieved once: the same file again, no second restore. The child
	 * read it to its end, and a file's position is shared.
	 */
	f = luo_retrieve_fd(s, 1);
	ASSERT_LE(0, f);
	EXPECT_EQ(0, luo_test_read(f, buf, sizeof(buf)));
	EXPECT_EQ(0, luo_control_u64("retrieves-stalled"));
	EXPECT_EQ(-ENOENT, luo_retrieve_session(dev, "fast"));
	EXPECT_EQ(-ENOENT, luo_retrieve_session(dev, "also"));
	EXPECT_EQ(0, luo_finish(s));
	EXPECT_EQ(LIVEUPDATE_STATE_NORMAL, luo_get_state(dev));
	close(f);
	close(s);
	close(dev);
}

LUO_KEXEC_TEST_MAIN(stage1)
