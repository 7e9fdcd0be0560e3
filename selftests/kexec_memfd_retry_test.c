// SPDX-License-Identifier: GPL-2.0
/*
 * Two-stage: a RETRIEVE_FD that fails for want of memory loses nothing.
 *
 * Stage 1 preserves two memfds of 24 and 16 MiB in sessions "retry" and
 * "left" and kexecs. In stage 2 a process in a memory cgroup of 4 MiB
 * tries to retrieve both: the restored folios cannot be charged to it, so
 * RETRIEVE_FD fails with ENOMEM (no OOM kill), twice. Then:
 * - "retry" is retrieved by a process with memory: every byte is there;
 * - "left" is finished without a retrieve: its memory, what the failed
 *   attempts built included, goes back to the system.
 */
#include "luo_test.h"
#include "memfd_util.h"
#include <sys/mount.h>
#include <sys/wait.h>

#define MIB (1 << 20)
#define CG "/sys/fs/cgroup"

static void make(int dev, const char *name, size_t size, uint64_t seed, char sha[65])
{
	int s = luo_create_session(dev, name), m = luo_memfd(name, size);

	if (s < 0 || m < 0 || luo_fill(m, 0, size, seed) || luo_sha_fd(m, sha) ||
	    luo_preserve(s, m, 1))
		ksft_exit_fail_msg("%s: setup failed\n", name);
}

static void stage1(void)
{
	char retry[65], left[65], args[256];
	int dev = luo_open();

	if (dev < 0)
		ksft_exit_fail_msg("open: %s\n", strerror(errno));
	make(dev, "retry", 24 * MIB, 21, retry);
	make(dev, "left", 16 * MIB, 22, left);
	snprintf(args, sizeof(args), "retry=%s", retry);
	ksft_exit_fail_msg("kexec: %s\n", strerror(-luo_kexec(args)));
}

/* RETRIEVE_FD of `name` twice from a memory cgroup of 4 MiB: 1 if both
 * attempts failed with ENOMEM (and nobody was killed), 2 otherwise. */
static int retrieve_in_small_cgroup(const char *name)
{
	int status;
	pid_t pid = fork();

	if (pid < 0)
		return 99;
	if (!pid) {
		int dev, s, a, b;

		if (luo_write_file(CG "/small/cgroup.procs", "0"))
			_exit(99);
		dev = luo_open();
		s = dev < 0 ? -1 : luo_retrieve_session(dev, name);
		if (s < 0)
			_exit(99);
		a = luo_retrieve_fd(s, 1);
		b = luo_retrieve_fd(s, 1);
		printf("# %s in 4 MiB: RETRIEVE_FD gave %d, then %d\n", name, a, b);
		fflush(stdout);
		_exit(a == -ENOMEM && b == -ENOMEM ? 1 : 2);
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return 96;
	return WEXITSTATUS(status);
}

FIXTURE(cg) {
	int dev;
};

FIXTURE_SETUP(cg)
{
	if (access(CG "/small", F_OK)) {
		ASSERT_EQ(0, mount("none", CG, "cgroup2", 0, NULL));
		ASSERT_EQ(0, luo_write_file(CG "/cgroup.subtree_control", "+memory"));
		ASSERT_EQ(0, mkdir(CG "/small", 0755));
		ASSERT_EQ(0, luo_write_file(CG "/small/memory.max", "4M"));
	}
	self->dev = luo_open();
	ASSERT_LE(0, self->dev);
}

FIXTURE_TEARDOWN(cg)
{
	close(self->dev);
}

TEST_F(cg, a_failed_retrieve_can_be_retried)
{
	char sha[65];
	int s, m;

	ASSERT_EQ(1, retrieve_in_small_cgroup("retry"));
	s = luo_retrieve_session(self->dev, "retry");
	ASSERT_LE(0, s);
	m = luo_retrieve_fd(s, 1);
	ASSERT_LE(0, m) {
		TH_LOG("RETRIEVE_FD with memory: %s", strerror(-m));
	}
	EXPECT_EQ(24 * MIB, luo_fd_size(m));
	ASSERT_EQ(0, luo_sha_fd(m, sha));
	EXPECT_STREQ(luo_arg("retry"), sha);
	EXPECT_EQ(24 * MIB, luo_fd_bytes(m));
	EXPECT_EQ(0, luo_finish(s));
	close(m);
	close(s);
}

TEST_F(cg, finish_frees_what_failed_attempts_left)
{
	long long before, freed;
	int s;

	ASSERT_EQ(1, retrieve_in_small_cgroup("left"));
	s = luo_retrieve_session(self->dev, "left");
	ASSERT_LE(0, s);
	before = luo_free_kb();
	ASSERT_EQ(0, luo_finish(s));
	/* 16 MiB come back (allow for what else the system did meanwhile). */
	freed = luo_wait_freed_kb(before, 12 * 1024);
	EXPECT_LE(12 * 1024, freed) {
		TH_LOG("FINISH freed %lld kB", freed);
	}
	EXPECT_EQ(LIVEUPDATE_STATE_NORMAL, luo_get_state(self->dev));
	close(s);
}

LUO_KEXEC_TEST_MAIN(stage1)
