/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Fault injection for luo-rs's VM tests: make the nth allocation of this
 * thread's next call fail (failslab and fail_page_alloc, through
 * /proc/thread-self/fail-nth), for n = 1, 2, ... until a call runs through
 * without reaching its nth allocation. Only the calling thread is
 * affected, and only while armed.
 *
 *	for (n = 1;; n++) {
 *		luo_fault_arm(n);
 *		ret = some_ioctl(...);
 *		if (!luo_fault_fired())
 *			break;		// ran through: every allocation was tried
 *		... ret must be 0 or -ENOMEM, and nothing may be lost ...
 *	}
 *
 * The allocators may report an injected failure with a stack trace
 * (warn_alloc); scripts/ktap.py accepts exactly those reports in a log
 * where a failure was injected.
 */
#ifndef LUO_FAULT_UTIL_H
#define LUO_FAULT_UTIL_H

#include "luo_test.h"

#define LUO_FAULT_DIR "/sys/kernel/debug"

static int luo_fault_fd = -1;

/*
 * Lets fail-nth reach every allocation a luo-rs call makes: sleeping ones
 * and single pages too (both are skipped by default), and prints one line
 * per injected failure, without a stack trace. 0 or -1.
 */
static inline int luo_fault_setup(void)
{
	static const char *const knobs[][2] = {
		{ "failslab/ignore-gfp-wait", "N" },
		{ "failslab/verbose", "1" },
		{ "fail_page_alloc/ignore-gfp-wait", "N" },
		{ "fail_page_alloc/ignore-gfp-highmem", "N" },
		{ "fail_page_alloc/min-order", "0" },
		{ "fail_page_alloc/verbose", "1" },
	};
	char path[128];

	for (size_t i = 0; i < sizeof(knobs) / sizeof(knobs[0]); i++) {
		snprintf(path, sizeof(path), LUO_FAULT_DIR "/%s", knobs[i][0]);
		if (luo_write_file(path, knobs[i][1]))
			return -1;
	}
	luo_fault_fd = open("/proc/thread-self/fail-nth", O_RDWR | O_CLOEXEC);
	return luo_fault_fd < 0 ? -1 : 0;
}

/* The nth allocation this thread makes from now on fails. */
static inline void luo_fault_arm(unsigned int n)
{
	char buf[16];
	int len = snprintf(buf, sizeof(buf), "%u", n);

	if (pwrite(luo_fault_fd, buf, len, 0) != len)
		ksft_exit_fail_msg("cannot arm fail-nth: %s\n", strerror(errno));
}

/* Disarms; 1 if the failure was injected since luo_fault_arm(), else 0. */
static inline int luo_fault_fired(void)
{
	char buf[16] = { 0 };

	if (pread(luo_fault_fd, buf, sizeof(buf) - 1, 0) <= 0)
		ksft_exit_fail_msg("cannot read fail-nth: %s\n", strerror(errno));
	if (atoi(buf) == 0)
		return 1;
	luo_fault_arm(0);
	return 0;
}

/*
 * ret of a call whose nth allocation failed: it must be 0 (the failure was
 * absorbed) or -ENOMEM.
 */
static inline void luo_fault_failed_cleanly(const char *what, unsigned int n, int ret)
{
	if (ret != 0 && ret != -ENOMEM)
		ksft_exit_fail_msg("%s with allocation %u failing: %s (want ENOMEM)\n", what, n,
				   strerror(-ret));
}

/* What a loop that reached its nth allocation without failing did. */
static inline void luo_fault_report(const char *what, unsigned int n)
{
	printf("# %s: %u allocation(s) failed in turn, each undone\n", what, n - 1);
	fflush(stdout);
}

/*
 * Stage 1 of a two-stage test: PRESERVE_FD of fd as token into session s
 * with each allocation failing in turn, until it runs through. Each
 * failed call must answer ENOMEM (or absorb the failure: then the file is
 * unpreserved again) and leave the session as it was; after each,
 * `undone` (if set) checks that fd is as before.
 */
static inline void luo_fault_preserve(int s, int fd, __u64 token, const char *what,
				      void (*undone)(int fd))
{
	unsigned int before = luo_files_in(s), n;

	for (n = 1;; n++) {
		int ret;

		luo_fault_arm(n);
		ret = luo_preserve(s, fd, token);
		if (!luo_fault_fired()) {
			CHECK(!ret, "%s: %s\n", what, strerror(-ret));
			break;
		}
		luo_fault_failed_cleanly(what, n, ret);
		CHECK(luo_files_in(s) == before + !ret, "%s failed (%d): %u files\n", what, ret,
		      luo_files_in(s));
		if (!ret)
			CHECK(!luo_unpreserve(s, token), "UNPRESERVE_FD\n");
		if (undone)
			undone(fd);
	}
	luo_fault_report(what, n);
}

#endif /* LUO_FAULT_UTIL_H */
