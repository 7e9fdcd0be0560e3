/* SPDX-License-Identifier: GPL-2.0 */
/*
 * luo-rs's VM tests: the kselftest harness, the helpers of luo_util.h and
 * the two-stage kexec harness.
 *
 * A two-stage test is one C file:
 *
 *	static void luo_stage1(void)
 *	{
 *		... preserve things ...
 *		luo_kexec("key=value");		// does not return on success
 *	}
 *
 *	TEST(survived) { ... luo_arg("key") ... }	// runs in the new kernel
 *
 *	LUO_KEXEC_TEST_MAIN(luo_stage1)
 *
 * The VM's init runs the binary in the first kernel (stage 1), which
 * kexecs into the same kernel with "luotest.stage=2" and the test's
 * arguments added to the command line; init then runs the binary again,
 * and the kselftest harness runs the TEST()s as stage 2.
 */
#ifndef LUO_TEST_H
#define LUO_TEST_H

#include "luo_util.h"
#include "kselftest_harness.h"

/* Stage 1's assertion: the test fails with the message unless cond. */
#define CHECK(cond, ...)					\
	do {							\
		if (!(cond))					\
			ksft_exit_fail_msg(__VA_ARGS__);	\
	} while (0)

/* Files in a session, by SESSION_GET_STATE. */
static inline unsigned int luo_files_in(int session)
{
	unsigned int nr = ~0u;

	CHECK(luo_session_state(session, &nr) >= 0, "SESSION_GET_STATE failed\n");
	return nr;
}

/*
 * Stage 1: PRESERVE_FD of fd, as token 1 into a new session "child", from
 * a child process: what it answered.
 */
static inline int luo_preserve_from_child(int fd)
{
	int status, pipefd[2], answer = 0;
	pid_t pid;

	CHECK(!pipe(pipefd), "pipe\n");
	pid = fork();
	CHECK(pid >= 0, "fork\n");
	if (!pid) {
		int dev = luo_open(), s = dev < 0 ? dev : luo_create_session(dev, "child");

		answer = s < 0 ? s : luo_preserve(s, fd, 1);
		_exit(write(pipefd[1], &answer, sizeof(answer)) == sizeof(answer) ? 0 : 1);
	}
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && !WEXITSTATUS(status),
	      "child failed\n");
	CHECK(read(pipefd[0], &answer, sizeof(answer)) == sizeof(answer), "child's answer\n");
	close(pipefd[0]);
	close(pipefd[1]);
	return answer;
}

/* main() of a two-stage test; see the top of this file. */
#define LUO_KEXEC_TEST_MAIN(stage1)					\
	int main(int argc, char **argv)					\
	{								\
		if (luo_stage() == 1) {					\
			printf("# stage 1: preparing, then kexec\n");	\
			fflush(stdout);					\
			stage1();					\
			printf("Bail out! stage 1 returned: the kexec did not happen\n"); \
			return 1;					\
		}							\
		return test_harness_run(argc, argv);			\
	}

#endif /* LUO_TEST_H */
