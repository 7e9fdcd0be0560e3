// SPDX-License-Identifier: GPL-2.0
/*
 * luo_bench: the live-update benchmark `make bench` runs, unchanged, on
 * luo-rs and on the upstream C LUO. It uses only the uAPI both share
 * (CREATE_SESSION, PRESERVE_FD, RETRIEVE_SESSION, RETRIEVE_FD, FINISH);
 * on luo-rs it also sends PREPARE and FREEZE, because that is where
 * luo-rs does the work upstream does in PRESERVE_FD and at the kexec.
 *
 * Stage 1 (first kernel): a 256 MiB memfd of data and 2000 memfds of
 * 4 KiB are preserved, then a kexec. Stage 2 (second kernel): both are
 * retrieved and the big one read in full. Every figure is printed as
 * "bench: <name> <milliseconds>"; scripts/bench-report.py pairs them up.
 */
#include "memfd_util.h"
#include <stdbool.h>
#include <sys/resource.h>
#include <time.h>

#define BIG (256LL << 20)
#define FILES 2000

static void die(const char *what, int err)
{
	printf("bench: FAILED: %s: %s\n", what, strerror(err < 0 ? -err : err));
	exit(1);
}

static void report(const char *name, double ms)
{
	printf("bench: %s %.2f\n", name, ms);
}

/* luo-rs answers GET_STATE; the upstream C LUO has no such ioctl. */
static bool is_luo_rs(int dev)
{
	return luo_get_state(dev) > 0;
}

static void stage1(void)
{
	struct rlimit nofile = { FILES + 64, FILES + 64 };
	int dev = luo_open(), big, many, fd, err, small[FILES];
	double t0;
	bool rs;

	if (dev < 0)
		die("open /dev/liveupdate", errno);
	rs = is_luo_rs(dev);
	printf("bench: kernel %s\n", rs ? "luo-rs" : "upstream-c");
	big = luo_create_session(dev, "bench-big");
	many = luo_create_session(dev, "bench-many");
	if (big < 0 || many < 0)
		die("CREATE_SESSION", big < 0 ? big : many);
	fd = luo_memfd("big", BIG);
	if (fd < 0 || (err = luo_fill(fd, 0, BIG, 7)))
		die("fill", fd < 0 ? fd : err);

	if (setrlimit(RLIMIT_NOFILE, &nofile))
		die("setrlimit", errno);
	for (int i = 0; i < FILES; i++) {
		small[i] = luo_memfd("small", 4096);
		if (small[i] < 0 || (err = luo_fill(small[i], 0, 4096, i)))
			die("small memfd", small[i] < 0 ? small[i] : err);
	}

	/* What happens while the workload still runs, before the kexec. */
	t0 = luo_ms(CLOCK_MONOTONIC);
	if ((err = luo_preserve(big, fd, 1)))
		die("PRESERVE_FD big", err);
	report("preserve_fd_256m", luo_ms(CLOCK_MONOTONIC) - t0);
	t0 = luo_ms(CLOCK_MONOTONIC);
	for (int i = 0; i < FILES; i++)
		if ((err = luo_preserve(many, small[i], i)))
			die("PRESERVE_FD small", err);
	report("preserve_fd_2000", luo_ms(CLOCK_MONOTONIC) - t0);
	if (rs) {
		t0 = luo_ms(CLOCK_MONOTONIC);
		if ((err = luo_set_event(dev, LIVEUPDATE_EVENT_PREPARE)))
			die("PREPARE", err);
		report("prepare", luo_ms(CLOCK_MONOTONIC) - t0);
		t0 = luo_ms(CLOCK_MONOTONIC);
		if ((err = luo_set_event(dev, LIVEUPDATE_EVENT_FREEZE)))
			die("FREEZE", err);
		report("freeze", luo_ms(CLOCK_MONOTONIC) - t0);
	}
	fflush(stdout);
	die("kexec", luo_kexec(""));
}

static void stage2(void)
{
	static uint8_t buf[1 << 20];
	int dev, big, many, fd, err;
	double t0, t1;
	off_t off = 0;
	ssize_t n;

	report("boot_to_retrieve_start", luo_ms(CLOCK_BOOTTIME));
	dev = luo_open();
	if (dev < 0)
		die("open /dev/liveupdate", errno);
	t0 = luo_ms(CLOCK_MONOTONIC);
	big = luo_retrieve_session(dev, "bench-big");
	if (big < 0)
		die("RETRIEVE_SESSION", big);
	fd = luo_retrieve_fd(big, 1);
	if (fd < 0)
		die("RETRIEVE_FD", fd);
	t1 = luo_ms(CLOCK_MONOTONIC);
	report("retrieve_fd_256m", t1 - t0);
	while ((n = pread(fd, buf, sizeof(buf), off)) > 0)
		off += n;
	if (off != BIG)
		die("short read", EIO);
	report("first_read_256m", luo_ms(CLOCK_MONOTONIC) - t1);
	report("boot_to_256m_read", luo_ms(CLOCK_BOOTTIME));

	t0 = luo_ms(CLOCK_MONOTONIC);
	many = luo_retrieve_session(dev, "bench-many");
	if (many < 0)
		die("RETRIEVE_SESSION many", many);
	for (int i = 0; i < FILES; i++) {
		int m = luo_retrieve_fd(many, i);

		if (m < 0)
			die("RETRIEVE_FD small", m);
		close(m);
	}
	report("retrieve_2000", luo_ms(CLOCK_MONOTONIC) - t0);
	if ((err = luo_finish(big)) || (err = luo_finish(many)))
		die("FINISH", err);
	printf("bench: done\n");
	exit(0);
}

int main(void)
{
	if (luo_stage() == 1)
		stage1();
	stage2();
	return 0;
}
