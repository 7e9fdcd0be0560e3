// SPDX-License-Identifier: GPL-2.0
/*
 * Two-stage: luod, the live update agent (userspace/luod), hands sessions
 * out by policy before the update and back after it, and drives the update
 * through luoctl. Its clients are luod's stand-in VMM (luod-vmm, from
 * userspace/luod/examples/vmm.rs), run as two users.
 *
 * Policy: uid 1000 may have "vm-a" and "vm-m", uid 1001 "vm-b", "vm-c" and
 * "vm-e", uid 1003 "vm-d" from cgroup /vm-d.scope only, uid 1004 any "t-*"
 * but at most two at once.
 *
 * Kernel 1: A (uid 1000) and B (uid 1001) get their sessions (named
 * luod/NAME in the kernel) and preserve a memfd each; each asking for the
 * other's session is refused, "vm-d" is given in its cgroup and refused
 * outside it, a third "t-*" is refused while two exist and given once one
 * is gone, and a user no rule names is not served. C (uid
 * 1001) takes "vm-c" and will never come back for it. Beside luod, the
 * test itself keeps a session "systemd" of its own on /dev/liveupdate, as
 * an upstream-style client would.
 *
 * luod restarts while they hold their sessions: A, B and C connect to the
 * new one and show it their sessions (Hold, with the session fd), while M
 * (uid 1000, "vm-m") keeps its session and does not come back, so the
 * update is refused (exit 1) until M is gone. A memfd passed as a session,
 * a session passed under another name of the user's, and one passed under
 * a name of another user's are refused.
 *
 * Then M comes back and never answers
 * Quiesce: luoctl update --luod stops after the quiesce timeout with exit 3,
 * A and B are told to resume, and the state is normal. M killed, the
 * update through the restarted luod kexecs.
 *
 * Kernel 2: a new luod gives A its session back with its memfd's bytes,
 * refuses "vm-a" to B and gives B "vm-b", which B keeps through another
 * luod restart (Hold of an incoming session); the test retrieves
 * "systemd" itself (luod never claimed it); "vm-c", which nobody claims,
 * the restarted luod finishes after the claim timeout, leaving "vm-b"
 * alone. B gone, the test finishes "vm-b", and the state is normal.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include "memfd_util.h"
#include "luo_test.h"

#define SOCK "/tmp/luod.sock"
#define POLICY "/tmp/luod.toml"
#define MEM (1 << 20)

static const char policy[] =
	"[[allow]]\nuid = 1000\nsessions = [\"vm-a\", \"vm-m\"]\n"
	"[[allow]]\nuid = 1001\nsessions = [\"vm-b\", \"vm-c\", \"vm-e\"]\n"
	"[[allow]]\nuid = 1003\ncgroup = \"/vm-d.scope\"\nsessions = [\"vm-d\"]\n"
	"[[allow]]\nuid = 1004\nsessions = [\"t-*\"]\nmax_sessions = 2\n";

#define CG "/sys/fs/cgroup"

/* What luod-vmm says when uid, in cgroup cg (or where it is), asks for name. */
static const char *ask_in(uid_t uid, const char *cg, const char *name);

/* Starts argv as uid, its output in log. Returns its pid. */
static pid_t spawn(uid_t uid, const char *log, char *const argv[])
{
	pid_t pid = fork();

	if (pid)
		return pid;
	freopen(log, "w", stdout);
	dup2(fileno(stdout), 2);
	setvbuf(stdout, NULL, _IONBF, 0);
	if (uid && luo_become(uid))
		_exit(254);
	execv(argv[0], argv);
	_exit(255);
}

/* Whether the file at path says what, waiting up to ms for it. */
static bool says(const char *path, const char *what, int ms)
{
	static char buf[16384];

	for (int left = ms; left >= 0; left -= 100) {
		if (luo_read_all(path, buf, sizeof(buf)) >= 0 && strstr(buf, what))
			return true;
		if (left)
			usleep(100 * 1000);
	}
	if (ms)
		printf("# %s does not say \"%s\": %s\n", path, what, buf);
	return false;
}

/* What the file at path says (for a failure's message). */
static const char *text_of(const char *path)
{
	static char buf[16384];

	return luo_read_all(path, buf, sizeof(buf)) < 0 ? "(unreadable)" : buf;
}

/* Runs argv as uid to its end; its output in out. Returns its status. */
static int run(uid_t uid, char *out, size_t size, char *const argv[])
{
	const char *log = "/tmp/run.log";
	pid_t pid = spawn(uid, log, argv);
	int st;

	if (pid < 0 || waitpid(pid, &st, 0) != pid)
		return -1;
	if (luo_read_all(log, out, size) < 0)
		out[0] = 0;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static pid_t start_luod(const char *claim_timeout)
{
	char *argv[] = { "/bin/luod", "--policy", POLICY, "--socket", SOCK,
			 "--quiesce-timeout", "2", "--claim-timeout", (char *)claim_timeout, NULL };
	struct stat st;
	pid_t pid;
	FILE *f = fopen(POLICY, "w");

	if (!f || fputs(policy, f) < 0 || fclose(f))
		return -1;
	/* Nothing a luod before this one left may pass for this one's. */
	unlink(SOCK);
	unlink("/tmp/luod.log");
	pid = spawn(0, "/tmp/luod.log", argv);
	for (int i = 0; i < 50 && stat(SOCK, &st); i++)
		usleep(100 * 1000);
	return pid;
}

static pid_t vmm(uid_t uid, const char *name, const char *mode, const char *seed)
{
	char log[64];
	char *argv[] = { "/bin/luod-vmm", SOCK, (char *)name, (char *)mode, (char *)seed, NULL };

	snprintf(log, sizeof(log), "/tmp/%s.log", name);
	return spawn(uid, log, argv);
}

static const char *ask_in(uid_t uid, const char *cg, const char *name)
{
	static char out[4096];
	char *argv[] = { "/bin/luod-vmm", SOCK, (char *)name, "ask", NULL };
	char procs[128];
	pid_t pid;
	int st;

	if (!cg)
		return run(uid, out, sizeof(out), argv) < 0 ? "run failed" : out;
	/* Into the cgroup first, then the user, then luod-vmm. */
	pid = fork();
	if (!pid) {
		snprintf(procs, sizeof(procs), CG "%s/cgroup.procs", cg);
		if (luo_write_file(procs, "0"))
			_exit(253);
		freopen("/tmp/run.log", "w", stdout);
		dup2(fileno(stdout), 2);
		if (luo_become(uid))
			_exit(254);
		execv(argv[0], argv);
		_exit(255);
	}
	if (pid < 0 || waitpid(pid, &st, 0) != pid || luo_read_all("/tmp/run.log", out, sizeof(out)) < 0)
		return "run failed";
	return out;
}

/* What luod-vmm says when uid asks for name. */
static const char *ask(uid_t uid, const char *name)
{
	return ask_in(uid, NULL, name);
}

static void stage1(void)
{
	static char out[8192], next[4096], args[128];
	char *update[] = { "/bin/luoctl", "update", "--luod", SOCK, NULL };
	int dev = luo_open(), s, m;
	char sha[65];
	pid_t mute, luod;

	CHECK(dev >= 0, "open: %s\n", strerror(-dev));
	luod = start_luod("300");
	CHECK(luod > 0 && says("/tmp/luod.log", "serving", 5000), "luod\n");
	vmm(1000, "vm-a", "keep", "11");
	vmm(1001, "vm-b", "keep", "22");
	vmm(1001, "vm-c", "keep", "33");
	CHECK(says("/tmp/vm-a.log", "ready", 5000) && says("/tmp/vm-b.log", "ready", 5000) &&
	      says("/tmp/vm-c.log", "ready", 5000), "clients\n");
	/* Each only its own. */
	CHECK(strstr(ask(1001, "vm-a"), "refused") && strstr(ask(1001, "vm-a"), "does not give"),
	      "vm-a to uid 1001: %s", ask(1001, "vm-a"));
	CHECK(strstr(ask(1000, "vm-b"), "refused"), "vm-b to uid 1000: %s", ask(1000, "vm-b"));
	/* A rule with a cgroup: only from that cgroup. */
	if (access(CG "/cgroup.controllers", F_OK))
		CHECK(!mount("none", CG, "cgroup2", 0, NULL), "cgroup2\n");
	CHECK(!mkdir(CG "/vm-d.scope", 0755) || errno == EEXIST, "cgroup\n");
	CHECK(strstr(ask_in(1003, "/vm-d.scope", "vm-d"), "ok session vm-d new"),
	      "vm-d from its cgroup: %s", ask_in(1003, "/vm-d.scope", "vm-d"));
	CHECK(strstr(ask_in(1003, NULL, "vm-d"), "refused"), "vm-d from elsewhere: %s",
	      ask_in(1003, NULL, "vm-d"));
	/* A rule's max_sessions: two "t-*" at once, a third once one is gone. */
	{
		pid_t t1 = vmm(1004, "t-1", "keep", "1"), t2 = vmm(1004, "t-2", "keep", "2");

		CHECK(says("/tmp/t-1.log", "ready", 5000) && says("/tmp/t-2.log", "ready", 5000),
		      "t-1, t-2\n");
		CHECK(strstr(ask(1004, "t-3"), "max_sessions for \"t-3\" is reached") &&
		      strstr(ask(1004, "t-3"), "errno 122"), "a third: %s", ask(1004, "t-3"));
		kill(t2, SIGKILL);
		waitpid(t2, NULL, 0);
		CHECK(strstr(ask(1004, "t-3"), "ok session t-3 new"), "a third, with room: %s",
		      ask(1004, "t-3"));
		kill(t1, SIGKILL);
		waitpid(t1, NULL, 0);
	}
	/* A user no rule names is not even served. */
	CHECK(strstr(ask(1002, "vm-a"), "names no session for uid 1002"), "uid 1002: %s",
	      ask(1002, "vm-a"));
	/* luod's sessions have a name space of their own in the kernel. */
	{
		char *status[] = { "/bin/luoctl", "status", NULL };

		CHECK(!run(0, out, sizeof(out), status) && strstr(out, "session \"luod/vm-a\""),
		      "luoctl status: %s", out);
	}

	/* An upstream-style client beside luod. */
	m = luo_memfd("systemd", MEM);
	s = luo_create_session(dev, "systemd");
	CHECK(m >= 0 && !luo_fill(m, 0, MEM, 44) && !luo_sha_fd(m, sha) && s >= 0 &&
	      !luo_preserve(s, m, 5), "systemd's session\n");

	snprintf(args, sizeof(args), "sha=%s", sha);
	CHECK(!luo_next_cmdline(args, next, sizeof(next)), "command line\n");
	{
		char *load[] = { "/bin/luoctl", "load", "/boot/bzImage", "--initrd", "/boot/initrd",
				 "--append", next, NULL };

		CHECK(!run(0, out, sizeof(out), load), "load: %s", out);
	}

	/* luod restarts; those that come back hold their sessions again. */
	mute = vmm(1000, "vm-m", "mute", "55");
	CHECK(says("/tmp/vm-m.log", "ready", 5000), "mute client\n");
	CHECK(!kill(luod, SIGTERM) && waitpid(luod, NULL, 0) == luod, "luod stopped\n");
	luod = start_luod("300");
	CHECK(luod > 0 && says("/tmp/luod.log", "serving", 5000), "luod again\n");
	CHECK(says("/tmp/vm-a.log", "held vm-a", 10000) && says("/tmp/vm-b.log", "held vm-b", 10000) &&
	      says("/tmp/vm-c.log", "held vm-c", 10000),
	      "the clients did not hold their sessions; luod's log:\n%s", text_of("/tmp/luod.log"));
	CHECK(says("/tmp/luod.log", "\"vm-a\" held by uid 1000 (open)", 0), "luod's log\n");
	/* M holds "vm-m" and did not come back: nobody could quiesce it. */
	CHECK(run(0, out, sizeof(out), update) == 1 && strstr(out, "nobody connected holds") &&
	      strstr(out, "luod/vm-m"), "update with a session nobody holds: %s", out);
	CHECK(luo_get_state(dev) == LIVEUPDATE_STATE_NORMAL, "state after the refused update\n");
	/* A forged Hold: not a session, another name of its own, another's name. */
	{
		char *forge[] = { "/bin/luod-vmm", SOCK, "vm-e", "forge", "vm-c", "vm-a", NULL };

		CHECK(!run(1001, out, sizeof(out), forge), "forge: %s", out);
		printf("# forged holds:\n%s", out);
		CHECK(strstr(out, "refused memfd: luod refused: identify a session fd") &&
		      strstr(out, "not a session"), "a memfd as a session: %s", out);
		CHECK(strstr(out, "refused vm-c: luod refused: that session is \"luod/vm-e\""),
		      "a session under another name: %s", out);
		CHECK(strstr(out, "refused vm-a: luod refused: the policy does not give"),
		      "a session under another's name: %s", out);
	}
	kill(mute, SIGKILL);
	waitpid(mute, NULL, 0);

	/* A client that never answers: the update stops, cancelled. */
	mute = vmm(1000, "vm-m", "mute", "55");
	CHECK(says("/tmp/vm-m.log", "ready", 5000), "mute client\n");
	CHECK(run(0, out, sizeof(out), update) == 3 && strstr(out, "did not say Ready"),
	      "update with a mute client: %s", out);
	CHECK(luo_get_state(dev) == LIVEUPDATE_STATE_NORMAL, "state after the stopped update\n");
	CHECK(says("/tmp/vm-a.log", "resume", 3000) && says("/tmp/vm-b.log", "resume", 3000),
	      "the clients were not told to resume\n");
	kill(mute, SIGKILL);
	waitpid(mute, NULL, 0);
	usleep(300 * 1000);

	printf("# kexec: %s\n", next);
	fflush(stdout);
	run(0, out, sizeof(out), update);
	ksft_exit_fail_msg("luoctl update --luod came back: %s", out);
}

TEST(luod_gives_each_client_its_own_session_back)
{
	static char out[8192];
	char *check_a[] = { "/bin/luod-vmm", SOCK, "vm-a", "check", "11", NULL };
	int dev = luo_open(), s, m;
	pid_t luod, b;
	char sha[65];

	ASSERT_LE(0, dev);
	ASSERT_EQ(LIVEUPDATE_STATE_UPDATED, luo_get_state(dev));
	/* Its claim timeout does not come: the restarted one's does. */
	luod = start_luod("300");
	ASSERT_LT(0, luod);
	ASSERT_TRUE(says("/tmp/luod.log", "state updated", 5000));

	EXPECT_NE(NULL, strstr(ask(1001, "vm-a"), "refused"));
	EXPECT_EQ(0, run(1000, out, sizeof(out), check_a)) TH_LOG("%s", out);
	EXPECT_NE(NULL, strstr(out, "ok session vm-a incoming")) TH_LOG("%s", out);
	EXPECT_NE(NULL, strstr(out, "ok bytes vm-a")) TH_LOG("%s", out);
	/* B keeps its incoming session, through a luod restart. */
	b = vmm(1001, "vm-b", "claim", "22");
	ASSERT_TRUE(says("/tmp/vm-b.log", "ok bytes vm-b", 5000));
	ASSERT_EQ(0, kill(luod, SIGTERM));
	ASSERT_EQ(luod, waitpid(luod, NULL, 0));
	luod = start_luod("4");
	ASSERT_LT(0, luod);
	ASSERT_TRUE(says("/tmp/luod.log", "state updated", 5000));
	EXPECT_TRUE(says("/tmp/vm-b.log", "held vm-b", 10000));
	EXPECT_TRUE(says("/tmp/luod.log", "\"vm-b\" held by uid 1001 (incoming)", 5000));

	/* systemd's session: never luod's. */
	s = luo_retrieve_session(dev, "systemd");
	ASSERT_LE(0, s);
	m = luo_retrieve_fd(s, 5);
	ASSERT_LE(0, m);
	ASSERT_NE(NULL, luo_arg("sha"));
	ASSERT_EQ(0, luo_sha_fd(m, sha));
	EXPECT_STREQ(luo_arg("sha"), sha);
	EXPECT_EQ(0, luo_finish(s));
	close(m);
	close(s);

	/*
	 * Nobody claims vm-c: the new luod finishes it. vm-b, held again, is
	 * claimed: luod does not touch it.
	 */
	EXPECT_TRUE(says("/tmp/luod.log", "claim timeout over: 1 unclaimed session(s) finished, "
			 "1 held by clients", 10000));
	EXPECT_TRUE(says("/tmp/luod.log", "\"vm-c\": nobody claimed it, finished", 0));
	EXPECT_FALSE(says("/tmp/luod.log", "systemd", 0));
	EXPECT_FALSE(says("/tmp/luod.log", "\"vm-b\": ", 0));
	EXPECT_EQ(LIVEUPDATE_STATE_UPDATED, luo_get_state(dev));
	/* B gone, its session is the last one; finished, the update is over. */
	kill(b, SIGKILL);
	waitpid(b, NULL, 0);
	s = luo_retrieve_session(dev, "luod/vm-b");
	ASSERT_LE(0, s);
	EXPECT_EQ(0, luo_finish(s));
	EXPECT_EQ(LIVEUPDATE_STATE_NORMAL, luo_get_state(dev));
	close(s);
	close(dev);
}

LUO_KEXEC_TEST_MAIN(stage1)
