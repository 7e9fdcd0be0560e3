// SPDX-License-Identifier: GPL-2.0
/*
 * What luo-rs allocates for a caller is charged to the caller's memory
 * cgroup: a process in a cgroup of its own preserves 4,000 memfds, and
 * the cgroup's memory.current grows by at least 200 bytes a file (each
 * preserved file costs luo-rs more than that: the handler's state, the
 * session's entry, the set and tally nodes). Uncharged, the figure would
 * barely move: the memfds themselves were made, and charged, before it
 * was read. (Sessions are charged too, but each is also a file, which the
 * kernel charges anyway: no figure would tell them apart.)
 */
#include "memfd_util.h"
#include "luo_test.h"
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>

#define CG "/sys/fs/cgroup"
#define FILES 4000

static long long memory_current(void)
{
	char buf[32];

	if (luo_read_file(CG "/acct/memory.current", buf, sizeof(buf)))
		return -1;
	return atoll(buf);
}

/* In the child, in cgroup "acct": prints the growth and exits 0 if it
 * is large enough. */
static int preserve_in_cgroup(void)
{
	struct rlimit r = { FILES + 100, FILES + 100 };
	static int fds[FILES];
	long long before, after;
	int dev, s;

	if (luo_write_file(CG "/acct/cgroup.procs", "0") || setrlimit(RLIMIT_NOFILE, &r))
		return 10;
	dev = luo_open();
	s = dev < 0 ? -1 : luo_create_session(dev, "acct");
	if (s < 0)
		return 11;
	for (int i = 0; i < FILES; i++) {
		fds[i] = luo_memfd("m", 4096);
		if (fds[i] < 0)
			return 12;
	}
	before = memory_current();
	for (int i = 0; i < FILES; i++)
		if (luo_preserve(s, fds[i], i))
			return 13;
	after = memory_current();
	printf("# %d PRESERVE_FDs: memory.current %lld -> %lld (+%lld bytes, %lld a file)\n",
	       FILES, before, after, after - before, (after - before) / FILES);
	fflush(stdout);
	return before < 0 || after - before < FILES * 200LL ? 14 : 0;
}

/* 4,000 files made, preserved and released take a while on the debug
 * kernel (KASAN, lockdep): more than the harness's default 30 s. */
FIXTURE(memcg) {};
FIXTURE_SETUP(memcg) {}
FIXTURE_TEARDOWN(memcg) {}

TEST_F_TIMEOUT(memcg, what_luo_rs_allocates_is_charged_to_the_caller, 180)
{
	int status;
	pid_t pid;

	if (access(CG "/cgroup.controllers", F_OK))
		ASSERT_EQ(0, mount("none", CG, "cgroup2", 0, NULL));
	ASSERT_EQ(0, luo_write_file(CG "/cgroup.subtree_control", "+memory"));
	if (access(CG "/acct", F_OK))
		ASSERT_EQ(0, mkdir(CG "/acct", 0755));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid)
		_exit(preserve_in_cgroup());
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
}

TEST_HARNESS_MAIN
