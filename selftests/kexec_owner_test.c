// SPDX-License-Identifier: GPL-2.0
/*
 * Two-stage: a session belongs to the user who created it, across the
 * kexec.
 *
 * Stage 1 opens /dev/liveupdate to everyone (as an admin may) and lets two
 * unprivileged users preserve a memfd each: uid 1000 in "alice-vm" and
 * "shared", uid 1001 in "bob-vm" and "shared" (names are per user, so the
 * second "shared" is no clash and nobody can take another's name first).
 * A plain kexec follows. Stage 2 checks that only the owner, or
 * CAP_SYS_ADMIN, may retrieve a session: another user gets EACCES, and
 * never another user's memory. The TEST()s run in order.
 */
#include "luo_test.h"
#include "memfd_util.h"

#define ALICE 1000
#define BOB 1001
#define EVE 1002

/* A session `name` holding a memfd that contains `text`, token 1. */
static int make_session(int dev, const char *name, const char *text)
{
	int s = luo_create_session(dev, name), m = luo_memfd(text, 4096);

	if (s < 0 || m < 0)
		return -1;
	if (pwrite(m, text, strlen(text) + 1, 0) != (ssize_t)strlen(text) + 1)
		return -1;
	return luo_preserve(s, m, 1) ? -1 : s;
}

/* Stage 1 children: make the sessions, report, then hold them. */
static void hold(int ready, int ok)
{
	char c = ok ? 'y' : 'n';

	if (write(ready, &c, 1) != 1)
		_exit(1);
	for (;;)
		pause();
}

static int sessions_of(uid_t uid, const char *vm, int ready)
{
	int dev = luo_open();
	char text[32];

	snprintf(text, sizeof(text), "%s-shared", vm);
	hold(ready, dev >= 0 && make_session(dev, vm, vm) >= 0 &&
		    make_session(dev, "shared", text) >= 0 &&
		    /* Unprivileged: no global events. */
		    luo_set_event(dev, LIVEUPDATE_EVENT_PREPARE) == -EPERM);
	return 0;
}

static void stage1(void)
{
	const char *vms[] = { "alice-vm", "bob-vm" };
	uid_t uids[] = { ALICE, BOB };
	int pipefd[2];

	if (chmod(LUO_DEV, 0666) || pipe(pipefd))
		ksft_exit_fail_msg("setup: %s\n", strerror(errno));
	for (int i = 0; i < 2; i++) {
		pid_t pid = fork();
		char c;

		if (pid < 0)
			ksft_exit_fail_msg("fork: %s\n", strerror(errno));
		if (!pid) {
			if (luo_become(uids[i]))
				_exit(1);
			sessions_of(uids[i], vms[i], pipefd[1]);
		}
		if (read(pipefd[0], &c, 1) != 1 || c != 'y')
			ksft_exit_fail_msg("uid %u could not make its sessions\n", uids[i]);
	}
	/* The users' processes still hold their sessions: a plain kexec. */
	ksft_exit_fail_msg("kexec: %s\n", strerror(-luo_kexec("")));
}

/* Retrieves `name` and checks its memfd holds `text`: 0, the errno of
 * the failed step, or 200 for other contents. */
static int retrieve_and_check(const char *name, const char *text, int finish)
{
	char buf[32] = "";
	int dev = luo_open(), s, m;

	if (dev < 0)
		return errno;
	s = luo_retrieve_session(dev, name);
	if (s < 0)
		return -s;
	m = luo_retrieve_fd(s, 1);
	if (m < 0)
		return -m;
	if (pread(m, buf, sizeof(buf) - 1, 0) < 0)
		return errno;
	if (strcmp(buf, text))
		return 200;
	return finish ? -luo_finish(s) : 0;
}

static const char *wanted;

static int try_wanted(void)
{
	int dev = luo_open(), s;

	if (dev < 0)
		return errno;
	s = luo_retrieve_session(dev, wanted);
	return s < 0 ? -s : 0;
}

/* RETRIEVE_SESSION of `name` as `uid`: 0 or the errno. */
static int try_retrieve(uid_t uid, const char *name)
{
	wanted = name;
	return luo_as_user(uid, try_wanted);
}

static int alice_finishes_hers(void)
{
	return retrieve_and_check("alice-vm", "alice-vm", 1) ?:
	       retrieve_and_check("shared", "alice-vm-shared", 1);
}

static int bob_gets_his_shared(void)
{
	return retrieve_and_check("shared", "bob-vm-shared", 0);
}

TEST(device_is_root_only_by_default)
{
	struct stat st;

	ASSERT_EQ(0, stat(LUO_DEV, &st));
	EXPECT_EQ(0600, st.st_mode & 07777);
	EXPECT_EQ(0, st.st_uid);
	EXPECT_EQ(0, st.st_gid);
	/* Open it up to everyone, as an admin may, for the rest. */
	ASSERT_EQ(0, chmod(LUO_DEV, 0666));
}

TEST(owners_are_carried)
{
	char buf[4096];

	ASSERT_LT(0, luo_read_all(LUO_STATUS, buf, sizeof(buf)));
	EXPECT_NE(NULL, strstr(buf, "\"alice-vm\" owner=1000 "));
	EXPECT_NE(NULL, strstr(buf, "\"bob-vm\" owner=1001 "));
}

TEST(another_user_gets_eacces)
{
	EXPECT_EQ(EACCES, try_retrieve(BOB, "alice-vm"));
	EXPECT_EQ(EACCES, try_retrieve(EVE, "alice-vm"));
	EXPECT_EQ(ENOENT, try_retrieve(EVE, "nothing"));
}

TEST(an_admin_must_name_one_session)
{
	int dev = luo_open(), s;

	ASSERT_LE(0, dev);
	/* Two users have a "shared": root has none and cannot pick. */
	EXPECT_EQ(-ENOTUNIQ, luo_retrieve_session(dev, "shared"));
	/* One user has "bob-vm": root may take it (and give it back). */
	s = luo_retrieve_session(dev, "bob-vm");
	EXPECT_LE(0, s);
	close(s);
	close(dev);
}

TEST(each_owner_gets_its_own)
{
	EXPECT_EQ(0, luo_as_user(ALICE, alice_finishes_hers));
	EXPECT_EQ(0, luo_as_user(BOB, bob_gets_his_shared));
	/* Alice's finished sessions are gone, for her and for everyone. */
	EXPECT_EQ(ENOENT, try_retrieve(ALICE, "alice-vm"));
	EXPECT_EQ(ENOENT, try_retrieve(BOB, "alice-vm"));
}

TEST(admin_takes_the_last_one)
{
	int dev = luo_open(), s;

	ASSERT_LE(0, dev);
	/* Only Bob's "shared" is left: unique again. */
	s = luo_retrieve_session(dev, "shared");
	ASSERT_LE(0, s);
	EXPECT_EQ(0, luo_finish(s));
	s = luo_retrieve_session(dev, "bob-vm");
	ASSERT_LE(0, s);
	EXPECT_EQ(0, luo_finish(s));
	EXPECT_EQ(LIVEUPDATE_STATE_NORMAL, luo_get_state(dev));
	close(dev);
}

LUO_KEXEC_TEST_MAIN(stage1)
