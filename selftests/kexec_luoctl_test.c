// SPDX-License-Identifier: GPL-2.0
/*
 * Two-stage: the operator's tool, luoctl (userspace/luoctl), drives the
 * whole update, as an operator would.
 *
 * In kernel 1 a VMM-like session "vmm" preserves a memfd. luoctl status
 * shows the state and the session with its file (also as JSON); luoctl
 * update with no kernel loaded refuses (exit 1) and changes nothing;
 * luoctl prepare, then cancel, go there and back; luoctl load loads the
 * next kernel, and luoctl update prepares, freezes and kexecs.
 *
 * In kernel 2 luoctl status shows the state "updated" and the incoming
 * session with its file; the memfd comes back with its bytes; once the
 * session is finished the state is normal, and luoctl finish is refused
 * with the errno's meaning (exit 1).
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <sys/wait.h>
#include "memfd_util.h"
#include "luo_test.h"

#define MEM (1 << 20)

/* Runs luoctl with args; its output in out. Returns its exit status. */
static int luoctl(char *out, size_t size, const char *fmt, ...)
{
	char cmd[4608], args[4096];
	size_t len = 0;
	va_list ap;
	FILE *p;
	int st;

	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	snprintf(cmd, sizeof(cmd), "/bin/luoctl %s 2>&1", args);
	p = popen(cmd, "r");
	if (!p)
		return -1;
	while (len + 1 < size && fgets(out + len, size - len, p))
		len += strlen(out + len);
	out[len] = 0;
	st = pclose(p);
	printf("# luoctl %s: exit %d\n", args, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void stage1(void)
{
	static char out[8192], next[4096], args[128];
	int dev = luo_open(), s, m;
	char sha[65];

	CHECK(dev >= 0, "open: %s\n", strerror(-dev));
	CHECK(!luoctl(out, sizeof(out), "status") && strstr(out, "state: normal"), "status: %s", out);
	/* Nothing to jump into: refused, and nothing changed. */
	CHECK(luoctl(out, sizeof(out), "update") == 1 && strstr(out, "no kernel is loaded"),
	      "update without a kernel: %s", out);
	CHECK(luo_get_state(dev) == LIVEUPDATE_STATE_NORMAL, "state after a refused update\n");

	m = luo_memfd("guest", MEM);
	s = luo_create_session(dev, "vmm");
	CHECK(m >= 0 && !luo_fill(m, 0, MEM, 7) && !luo_sha_fd(m, sha) && s >= 0 &&
	      !luo_preserve(s, m, 0x2a), "session\n");
	CHECK(!luoctl(out, sizeof(out), "status") && strstr(out, "session \"vmm\": outgoing") &&
	      strstr(out, "token 0x2a: luo-rs,memfd-") && strstr(out, "(preserved)"),
	      "status: %s", out);
	CHECK(!luoctl(out, sizeof(out), "status --json") && strstr(out, "\"name\": \"vmm\"") &&
	      strstr(out, "\"token\": 42"), "status --json: %s", out);
	CHECK(!luoctl(out, sizeof(out), "prepare") && luo_get_state(dev) == LIVEUPDATE_STATE_PREPARED,
	      "prepare: %s", out);
	CHECK(!luoctl(out, sizeof(out), "cancel") && luo_get_state(dev) == LIVEUPDATE_STATE_NORMAL,
	      "cancel: %s", out);

	snprintf(args, sizeof(args), "sha=%s", sha);
	CHECK(!luo_next_cmdline(args, next, sizeof(next)), "command line\n");
	CHECK(!luoctl(out, sizeof(out), "load /boot/bzImage --initrd /boot/initrd --append '%s'",
		      next), "load: %s", out);
	printf("# kexec: %s\n", next);
	fflush(stdout);
	luoctl(out, sizeof(out), "update");
	ksft_exit_fail_msg("luoctl update came back: %s", out);
}

TEST(luoctl_shows_and_finishes_the_update)
{
	static char out[8192];
	int dev = luo_open(), s, m;
	char sha[65];

	ASSERT_LE(0, dev);
	EXPECT_EQ(0, luoctl(out, sizeof(out), "status")) TH_LOG("%s", out);
	EXPECT_NE(NULL, strstr(out, "state: updated")) TH_LOG("%s", out);
	EXPECT_NE(NULL, strstr(out, "handover received: yes")) TH_LOG("%s", out);
	EXPECT_NE(NULL, strstr(out, "session \"vmm\": incoming")) TH_LOG("%s", out);
	EXPECT_NE(NULL, strstr(out, "token 0x2a: luo-rs,memfd-")) TH_LOG("%s", out);
	EXPECT_NE(NULL, strstr(out, "(incoming)")) TH_LOG("%s", out);

	s = luo_retrieve_session(dev, "vmm");
	ASSERT_LE(0, s);
	m = luo_retrieve_fd(s, 0x2a);
	ASSERT_LE(0, m);
	ASSERT_NE(NULL, luo_arg("sha"));
	ASSERT_EQ(0, luo_sha_fd(m, sha));
	EXPECT_STREQ(luo_arg("sha"), sha);
	EXPECT_EQ(0, luo_finish(s));
	EXPECT_EQ(LIVEUPDATE_STATE_NORMAL, luo_get_state(dev));

	/* Nothing to finish now: refused, and said why. */
	EXPECT_EQ(1, luoctl(out, sizeof(out), "finish"));
	EXPECT_NE(NULL, strstr(out, "FINISH: ")) TH_LOG("%s", out);
	EXPECT_NE(NULL, strstr(out, "not valid in the current state")) TH_LOG("%s", out);
	close(m);
	close(s);
	close(dev);
}

LUO_KEXEC_TEST_MAIN(stage1)
