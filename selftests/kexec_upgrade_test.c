// SPDX-License-Identifier: GPL-2.0
/*
 * Two-stage: an update from an earlier release of luo-rs to this one.
 *
 * Stage 1 runs on the kernel of an earlier commit of this repository
 * (scripts/upgrade-from names it; scripts/vm-tests-in-chroot.sh boots it
 * for every kexec_upgrade_* test), which writes the first handover format,
 * luo-rs,handover-v1. It preserves memfds of several shapes in two
 * sessions and kexecs into this release's kernel, which must read the old
 * record: every byte back, holes still holes, seals and file position
 * kept, and the sessions root's (v1 records no owners: nobody else may
 * claim them). Then the update is finished and this kernel can prepare
 * the next one.
 */
#include "memfd_util.h"
#include "luo_test.h"

#define MIB (1 << 20)
#define SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)
#define POS 777

static const struct {
	const char *session, *name;
	long long size;
} files[] = {
	{ "vm-1", "ram", 16 * MIB },	/* token 1: data with a hole */
	{ "vm-1", "sealed", 12345 },	/* token 2: sealed, with a position */
	{ "vm-2", "empty", 0 },		/* token 3 */
	{ "vm-2", "small", 4096 },	/* token 4 */
};
#define N (sizeof(files) / sizeof(files[0]))

static void die(const char *what, int err)
{
	ksft_exit_fail_msg("%s: %s\n", what, strerror(err < 0 ? -err : err));
}

static void stage1(void)
{
	static char args[1024];
	char sha[65];
	int dev = luo_open(), s[2], m, err, len = 0;

	if (dev < 0)
		die("open", errno);
	s[0] = luo_create_session(dev, "vm-1");
	s[1] = luo_create_session(dev, "vm-2");
	if (s[0] < 0 || s[1] < 0)
		die("CREATE_SESSION", s[0] < 0 ? s[0] : s[1]);
	for (size_t i = 0; i < N; i++) {
		m = luo_memfd(files[i].name, files[i].size);
		if (m < 0)
			die("memfd", m);
		if (i == 0)
			err = luo_fill(m, 0, 6 * MIB, 60) ?: luo_fill(m, 10 * MIB, 6 * MIB, 61);
		else
			err = luo_fill(m, 0, files[i].size, 60 + i);
		if (err)
			die("fill", err);
		if (i == 1 && (fcntl(m, F_ADD_SEALS, SEALS) || lseek(m, POS, SEEK_SET) != POS))
			die("seal", errno);
		if ((err = luo_sha_fd(m, sha)))
			die("sha", err);
		len += snprintf(args + len, sizeof(args) - len, "%ssha%zu=%s", len ? " " : "",
				i + 1, sha);
		if ((err = luo_preserve(s[i / 2], m, i + 1)))
			die("PRESERVE_FD", err);
	}
	ksft_exit_fail_msg("kexec: %s\n", strerror(-luo_kexec(args)));
}

TEST(the_old_release_wrote_the_first_format)
{
	/* This kernel writes v2; only the earlier release writes v1. */
	EXPECT_TRUE(luo_kmsg_has("handover received: format luo-rs,handover-v1"));
}

/* The session a child asks for, and what it gets: 0 or an errno. */
static const char *wanted;

static int retrieve_wanted(void)
{
	int dev = luo_open(), s;

	if (dev < 0)
		return 253;
	s = luo_retrieve_session(dev, wanted);
	return s < 0 ? -s : 0;
}

/* As uid 1000 (no root): RETRIEVE_SESSION of `name`'s errno. */
static int retrieve_as_user(const char *name)
{
	wanted = name;
	return luo_as_user(1000, retrieve_wanted);
}

TEST(old_sessions_are_roots)
{
	/* The device is root's; open it to others, as an admin may. */
	ASSERT_EQ(0, chmod("/dev/liveupdate", 0666));
	EXPECT_EQ(EACCES, retrieve_as_user("vm-1"));
	EXPECT_EQ(EACCES, retrieve_as_user("vm-2"));
	ASSERT_EQ(0, chmod("/dev/liveupdate", 0600));
}

TEST(every_memfd_comes_back_whole)
{
	char sha[65], key[8];
	int dev = luo_open(), s[2];

	ASSERT_LE(0, dev);
	s[0] = luo_retrieve_session(dev, "vm-1");
	s[1] = luo_retrieve_session(dev, "vm-2");
	ASSERT_LE(0, s[0]);
	ASSERT_LE(0, s[1]);
	for (size_t i = 0; i < N; i++) {
		int m = luo_retrieve_fd(s[i / 2], i + 1);

		ASSERT_LE(0, m) {
			TH_LOG("RETRIEVE_FD %s: %s", files[i].name, strerror(-m));
		}
		EXPECT_EQ(files[i].size, luo_fd_size(m));
		ASSERT_EQ(0, luo_sha_fd(m, sha));
		snprintf(key, sizeof(key), "sha%zu", i + 1);
		EXPECT_STREQ(luo_arg(key), sha) {
			TH_LOG("%s differs", files[i].name);
		}
		if (i == 0)
			EXPECT_EQ(12 * MIB, luo_fd_bytes(m));
		if (i == 1) {
			EXPECT_EQ(SEALS, fcntl(m, F_GET_SEALS));
			EXPECT_EQ(POS, lseek(m, 0, SEEK_CUR));
		}
		close(m);
	}
	EXPECT_EQ(0, luo_finish(s[0]));
	EXPECT_EQ(0, luo_finish(s[1]));
	EXPECT_EQ(LIVEUPDATE_STATE_NORMAL, luo_get_state(dev));
	close(s[0]);
	close(s[1]);
	close(dev);
}

TEST(this_kernel_prepares_the_next_update)
{
	char gen[32];
	int dev = luo_open(), s, m;

	ASSERT_LE(0, dev);
	ASSERT_EQ(0, luo_status("incoming_generation", gen, sizeof(gen)));
	EXPECT_STREQ("1", gen);
	s = luo_create_session(dev, "vm-1");
	m = luo_memfd("next", MIB);
	ASSERT_LE(0, s);
	ASSERT_LE(0, m);
	ASSERT_EQ(0, luo_fill(m, 0, MIB, 70));
	ASSERT_EQ(0, luo_preserve(s, m, 1));
	EXPECT_EQ(0, luo_set_event(dev, LIVEUPDATE_EVENT_PREPARE));
	EXPECT_EQ(0, luo_set_event(dev, LIVEUPDATE_EVENT_FREEZE));
	EXPECT_EQ(0, luo_set_event(dev, LIVEUPDATE_EVENT_CANCEL));
	close(m);
	close(s);
	close(dev);
}

LUO_KEXEC_TEST_MAIN(stage1)
