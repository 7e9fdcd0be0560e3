// SPDX-License-Identifier: GPL-2.0
/*
 * Per-user limits: one user cannot take every other user's update down by
 * making sessions or preserving files without end. Beyond
 * /sys/kernel/liveupdate/max_sessions_per_user (named outgoing sessions)
 * and max_files_per_user, CREATE_SESSION, SET_NAME and PRESERVE_FD answer
 * EDQUOT; open() never does; what is released makes room again; another
 * user is not affected; root (CAP_SYS_RESOURCE) goes past them.
 */
#include "memfd_util.h"
#include "luo_test.h"

#define LIMITS "/sys/kernel/liveupdate/"

static int set_limit(const char *name, const char *value)
{
	char path[128];

	snprintf(path, sizeof(path), LIMITS "%s", name);
	return luo_write_file(path, value);
}

/* As a user, with max_sessions_per_user 2: two named sessions, then
 * EDQUOT, for CREATE_SESSION and for naming the open's own session;
 * closing one makes room. 0 if all went so. */
static int sessions_are_limited(void)
{
	int dev = luo_open(), a, b, c, d;

	if (dev < 0)
		return 1;
	a = luo_create_session(dev, "a");
	b = luo_create_session(dev, "b");
	c = luo_create_session(dev, "c");
	if (a < 0 || b < 0 || c != -EDQUOT)
		return 2;
	if (luo_set_name(dev, "mine") != -EDQUOT)
		return 3;
	/* Renaming a named one is no new one. */
	if (luo_set_name(a, "a2"))
		return 4;
	close(b);
	d = luo_create_session(dev, "d");
	return d < 0 ? 5 : 0;
}

/* As a user, with max_sessions_per_user 0: the device opens all the same
 * (its unnamed session holds nothing), and GET_STATE works. */
static int open_is_never_refused(void)
{
	int dev = luo_open();

	if (dev < 0)
		return 1;
	if (luo_get_state(dev) != LIVEUPDATE_STATE_NORMAL)
		return 2;
	return luo_create_session(dev, "x") == -EDQUOT ? 0 : 3;
}

/* As a user, with max_files_per_user 2, counted across its sessions. */
static int files_are_limited(void)
{
	int dev = luo_open(), s1, s2, m[3];

	if (dev < 0)
		return 1;
	s1 = luo_create_session(dev, "one");
	s2 = luo_create_session(dev, "two");
	for (int i = 0; i < 3; i++)
		m[i] = luo_memfd("m", 4096);
	if (s1 < 0 || s2 < 0 || m[0] < 0 || m[1] < 0 || m[2] < 0)
		return 2;
	if (luo_preserve(s1, m[0], 1) || luo_preserve(s2, m[1], 1))
		return 3;
	if (luo_preserve(s2, m[2], 2) != -EDQUOT)
		return 4;
	if (luo_unpreserve(s1, 1) || luo_preserve(s2, m[2], 2))
		return 5;
	/* A closed session's files count no more. */
	close(s2);
	if (luo_preserve(s1, m[0], 1) || luo_preserve(s1, m[1], 2))
		return 6;
	return 0;
}

FIXTURE(limits) {
	int unused;
};

FIXTURE_SETUP(limits)
{
	ASSERT_EQ(0, chmod(LUO_DEV, 0666));
}

FIXTURE_TEARDOWN(limits)
{
	set_limit("max_sessions_per_user", "1024");
	set_limit("max_files_per_user", "65536");
	chmod(LUO_DEV, 0600);
}

TEST_F(limits, defaults_are_readable)
{
	char buf[32];

	ASSERT_EQ(0, luo_read_file(LIMITS "max_sessions_per_user", buf, sizeof(buf)));
	EXPECT_STREQ("1024", buf);
	ASSERT_EQ(0, luo_read_file(LIMITS "max_files_per_user", buf, sizeof(buf)));
	EXPECT_STREQ("65536", buf);
	EXPECT_NE(0, set_limit("max_files_per_user", "many"));
}

TEST_F(limits, sessions_per_user)
{
	ASSERT_EQ(0, set_limit("max_sessions_per_user", "2"));
	EXPECT_EQ(0, luo_as_user(1000, sessions_are_limited));
	/* Another user has a count of its own. */
	EXPECT_EQ(0, luo_as_user(1001, sessions_are_limited));
	ASSERT_EQ(0, set_limit("max_sessions_per_user", "0"));
	EXPECT_EQ(0, luo_as_user(1000, open_is_never_refused));
}

TEST_F(limits, files_per_user)
{
	ASSERT_EQ(0, set_limit("max_files_per_user", "2"));
	EXPECT_EQ(0, luo_as_user(1000, files_are_limited));
	EXPECT_EQ(0, luo_as_user(1001, files_are_limited));
}

TEST_F(limits, root_goes_past_them)
{
	int dev = luo_open(), s[4], m[3];

	ASSERT_EQ(0, set_limit("max_sessions_per_user", "1"));
	ASSERT_EQ(0, set_limit("max_files_per_user", "1"));
	ASSERT_LE(0, dev);
	for (int i = 0; i < 4; i++) {
		char name[8];

		snprintf(name, sizeof(name), "r%d", i);
		s[i] = luo_create_session(dev, name);
		ASSERT_LE(0, s[i]);
	}
	for (int i = 0; i < 3; i++) {
		m[i] = luo_memfd("m", 4096);
		ASSERT_LE(0, m[i]);
		EXPECT_EQ(0, luo_preserve(s[0], m[i], i));
	}
	for (int i = 0; i < 4; i++)
		close(s[i]);
	close(dev);
}

TEST_HARNESS_MAIN
