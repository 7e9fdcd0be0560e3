// SPDX-License-Identifier: GPL-2.0
/*
 * luo_bench: the live-update benchmark `make bench` runs, unchanged, on
 * luo-rs and on the upstream C LUO (scripts/bench.sh). It uses only the
 * uAPI both share (CREATE_SESSION, PRESERVE_FD, RETRIEVE_SESSION,
 * RETRIEVE_FD, SESSION_FINISH); on luo-rs it also sends PREPARE and
 * FREEZE (unless luotest.prepare=0: then luo-rs does that work inside
 * reboot(), as for an upstream-style client). One run is one scenario and
 * one kexec:
 *
 * luotest.scenario=big luotest.size=MiB
 *   A memfd of that size, written except for every 100th page (a hole).
 *   Stage 1: PRESERVE_FD; on luo-rs PREPARE and FREEZE of the unchanged
 *   memfd, CANCEL, PREPARE again; the holes, 1% of the pages, are written
 *   (the guest still runs); FREEZE; the kexec. Stage 2: RETRIEVE_SESSION
 *   + RETRIEVE_FD, a first full read with pread(), every byte checked.
 * luotest.scenario=files
 *   2000 memfds of 4 KiB in one session, then 1000 sessions of 10 memfds
 *   of 4 KiB. Stage 2 retrieves them all, checks every byte, finishes.
 * luotest.scenario=parallel luotest.size=MiB
 *   Four sessions of one memfd of that size each. Stage 2 retrieves two
 *   of them one after the other, then the other two at once from two
 *   processes: if sessions restore in parallel, the two at once take
 *   about as long as one alone, not as long as both.
 * luotest.scenario=empty
 *   Nothing preserved: what a kexec and a boot cost by themselves.
 *
 * Figures are "bench: NAME VALUE": milliseconds of the guest's clock, or
 * bytes for meta_bytes. "bench-mark: NAME GUEST-MS" lines are stamped by
 * the host as they arrive on the serial console (scripts/serial-stamp.py):
 * "start" (stage 1 begins its work), "freeze" (just before FREEZE, or
 * where it would be), "kexec" (just before reboot()) and "verified"
 * (stage 2: the data retrieved and checked). With the kernels' own
 * "Starting new kernel" and banner lines they give what happens inside
 * reboot() and across the jump on the host's clock, and the rate of the
 * guest's clock against the host's. With luotest.profile=1 the function
 * profiler runs around stage 2's RETRIEVEs (and the first read), with
 * luotest.profile=preserve around stage 1's PRESERVE_FD of the big memfd,
 * and its top entries are printed ("bench-profile:").
 */
#include "memfd_util.h"
#include <stdbool.h>
#include <sys/resource.h>
#include <time.h>

#define PG 4096LL
#define SMALL 2000
#define SESSIONS 1000
#define PER_SESSION 10
#define MANY (SESSIONS * PER_SESSION)

static bool rs;

static void die(const char *what, int err)
{
	printf("bench: FAILED: %s: %s\n", what, strerror(err < 0 ? -err : err));
	exit(1);
}

static void report(const char *name, double value)
{
	printf("bench: %s %.3f\n", name, value);
}

static double now(void)
{
	return luo_ms(CLOCK_MONOTONIC);
}

static void mark(const char *name)
{
	printf("bench-mark: %s %.3f\n", name, now());
	fflush(stdout);
}

/* luo-rs answers GET_STATE; the upstream C LUO has no such ioctl. */
static void which_kernel(int dev)
{
	rs = luo_get_state(dev) > 0;
	printf("bench: kernel %s\n", rs ? "luo-rs" : "upstream-c");
}

/* The pattern: word w of page p of file f. Cheap, and unlike any other. */
static uint64_t word(uint64_t f, uint64_t p, uint64_t w)
{
	return (f + 1) * 0x9e3779b97f4a7c15ULL ^ (p << 9 | w) * 0xbf58476d1ce4e5b9ULL;
}

static void fill_page(uint64_t *page, uint64_t f, uint64_t p)
{
	for (uint64_t w = 0; w < PG / 8; w++)
		page[w] = word(f, p, w);
}

static bool page_ok(const uint64_t *page, uint64_t f, uint64_t p)
{
	for (uint64_t w = 0; w < PG / 8; w++)
		if (page[w] != word(f, p, w))
			return false;
	return true;
}

/* Bytes of memory in use, from MemFree. */
static long long used_bytes(void)
{
	return -luo_meminfo_kb("MemFree") * 1024;
}

/* A counter of /proc/vmstat, or -1. */
static long long vmstat(const char *name)
{
	static char buf[16384];
	size_t len = strlen(name);
	char *line;

	if (luo_read_all("/proc/vmstat", buf, sizeof(buf)) < 0)
		return -1;
	for (line = buf; line; line = strchr(line, '\n'), line = line ? line + 1 : NULL)
		if (!strncmp(line, name, len) && line[len] == ' ')
			return atoll(line + len + 1);
	return -1;
}

/*
 * How the page allocator laid out the n pages mapped at map, per 1000
 * pages present: runs of pages whose frames go up one by one (1000: every
 * page alone), and steps to the frame just below (the page allocator often
 * hands pages out downwards). The layout differs from boot to boot; luo-rs
 * hands over a run per ascending run, so its folio list and the work per
 * run depend on it.
 */
static void report_layout(const char *name, const void *map, long long n)
{
	static uint64_t e[512];
	int fd = open("/proc/self/pagemap", O_RDONLY);
	uint64_t prev = 0;
	long long present = 0, runs = 0, down = 0;

	if (fd < 0)
		die("pagemap", errno);
	for (long long p = 0; p < n; p += 512) {
		long long k = n - p < 512 ? n - p : 512;
		off_t off = ((uintptr_t)map / PG + p) * 8;

		if (pread(fd, e, k * 8, off) != k * 8)
			die("pagemap read", errno);
		for (long long i = 0; i < k; i++) {
			uint64_t pfn = e[i] & ((1ULL << 55) - 1);

			if (!(e[i] >> 63)) {
				prev = 0;
				continue;
			}
			if (!pfn)
				die("pagemap: no frame numbers (not root?)", EPERM);
			present++;
			if (!prev || pfn != prev + 1)
				runs++;
			if (prev && pfn == prev - 1)
				down++;
			prev = pfn;
		}
	}
	close(fd);
	report(name, present ? 1000.0 * runs / present : 0);
	printf("bench: %s_down %.2f\n", name, present ? 1000.0 * down / present : 0);
}

/* luo-rs, unless luotest.prepare=0: PREPARE and FREEZE are sent. */
static bool sends_events(void)
{
	const char *p = luo_arg("prepare");

	return rs && !(p && !strcmp(p, "0"));
}

static void event(int dev, unsigned int ev, const char *name)
{
	double t0 = now();
	int err;

	if ((err = luo_set_event(dev, ev)))
		die(name, err);
	if (name)
		report(name, now() - t0);
}

/*
 * Stage 1 before its work: the next kernel is loaded (it takes memory
 * that must not count as preserving's) and the start is marked.
 */
static void begin(void)
{
	int err;

	if ((err = luo_kexec_load("")))
		die("kexec_file_load", err);
	mark("start");
}

/* FREEZEs of an unchanged record timed, for their median. */
#define FREEZE_TRIES 5

static int by_value(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/*
 * PREPARE, on luo-rs: the first is the update's ("prepare", counted
 * before the jump). It also measures FREEZE of what has not changed since
 * PREPARE (then CANCELs and PREPAREs again, the last of these timed as
 * "prepare_again"), which should cost no per-page work: FREEZE_TRIES
 * times, reporting the median, since one timing of a millisecond under
 * TCG is mostly the host's scheduling (it took 0.8 or 3.8 ms, and nothing
 * in between, for the same FREEZE).
 */
static void prepare(int dev)
{
	double took[FREEZE_TRIES];
	int err;

	if (!sends_events())
		return;
	/* The PREPARE of an update; those after each CANCEL are timed apart. */
	event(dev, LIVEUPDATE_EVENT_PREPARE, "prepare");
	for (int i = 0; i < FREEZE_TRIES; i++) {
		double t0 = now();

		if ((err = luo_set_event(dev, LIVEUPDATE_EVENT_FREEZE)))
			die("freeze_unchanged", err);
		took[i] = now() - t0;
		event(dev, LIVEUPDATE_EVENT_CANCEL, NULL);
		event(dev, LIVEUPDATE_EVENT_PREPARE, i == FREEZE_TRIES - 1 ? "prepare_again" : NULL);
	}
	qsort(took, FREEZE_TRIES, sizeof(took[0]), by_value);
	report("freeze_unchanged", took[FREEZE_TRIES / 2]);
}

static void jump(void)
{
	mark("kexec");
	reboot(LINUX_REBOOT_CMD_KEXEC);
	die("kexec", -errno);
}

/*
 * The blackout up to the jump: FREEZE on luo-rs, then the kexec. `used0`
 * is the memory in use before preserving, `data` the bytes of data that
 * appeared since, `units` the pages or files preserved.
 */
static void freeze_and_kexec(int dev, long long used0, long long data, long long units)
{
	long long migrated0 = vmstat("pgmigrate_success");

	mark("freeze");
	if (sends_events()) {
		event(dev, LIVEUPDATE_EVENT_FREEZE, "freeze");
		/* Pages written after PREPARE that FREEZE moved to pin them. */
		report("freeze_migrated", vmstat("pgmigrate_success") - migrated0);
	}
	/* What preserving cost beyond the data, per page or file. */
	report("meta_bytes", (double)(used_bytes() - used0 - data) / units);
	/* luo-rs counts its handover exactly: the record's blobs as encoded
	 * and the pages the files' records keep (headers, folio lists). */
	if (rs) {
		char buf[32];
		int err = luo_read_file("/sys/kernel/debug/liveupdate/handover_bytes",
					buf, sizeof(buf));

		if (err)
			die("handover_bytes", err);
		report("handover_bytes", strtod(buf, NULL) / units);
	}
	jump();
}

#define TRACING "/sys/kernel/debug/tracing/"

/* luotest.profile=WHAT: the kernel's function profiler runs around what is
 * measured there (the timed figures are then not comparable): "1" for
 * stage 2's RETRIEVEs, "preserve" for stage 1's PRESERVE_FD. */
static const char *profiled = "1";

static bool profiling(void)
{
	const char *p = luo_arg("profile");

	return p && !strcmp(p, profiled);
}

static void profile_start(void)
{
	/* Switching it on clears what an earlier run counted. */
	if (profiling() && (luo_write_file(TRACING "function_profile_enabled", "0") ||
			    luo_write_file(TRACING "function_profile_enabled", "1")))
		die("function profiler", EIO);
}

/* Prints the functions that took most time, with what they called, per CPU. */
static void profile_stop(void)
{
	char path[128], line[256];

	if (!profiling())
		return;
	luo_write_file(TRACING "function_profile_enabled", "0");
	for (int cpu = 0;; cpu++) {
		FILE *f;

		snprintf(path, sizeof(path), TRACING "trace_stat/function%d", cpu);
		f = fopen(path, "r");
		if (!f)
			break;
		for (int n = 0; n < 42 && fgets(line, sizeof(line), f); n++)
			printf("bench-profile: cpu%d %s", cpu, line);
		fclose(f);
	}
}

static long long big_size(void)
{
	const char *mib = luo_arg("size");

	return (mib ? atoll(mib) : 64) << 20;
}

static void big_stage1(int dev)
{
	long long size = big_size(), pages = size / PG, used0, data0, migrated0;
	int s = luo_create_session(dev, "bench-big"), fd = luo_memfd("big", size), err;
	uint64_t *map;
	double t0;

	if (s < 0 || fd < 0)
		die("session or memfd", s < 0 ? s : fd);
	map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED)
		die("mmap", errno);
	for (long long p = 0; p < pages; p++)
		if (p % 100 != 50)
			fill_page(map + p * (PG / 8), 0, p);
	report_layout("layout_runs", map, pages);
	begin();
	data0 = luo_fd_bytes(fd);
	used0 = used_bytes();

	migrated0 = vmstat("pgmigrate_success");
	profiled = "preserve";
	profile_start();
	t0 = now();
	if ((err = luo_preserve(s, fd, 1)))
		die("PRESERVE_FD", err);
	report("preserve", now() - t0);
	profile_stop();
	profiled = "1";
	/* Pinning moves what lies in memory only movable pages may keep
	 * (KHO's scratch areas are CMA): pages copied, not just pinned. */
	report("preserve_migrated", vmstat("pgmigrate_success") - migrated0);
	prepare(dev);
	/* The guest still runs: 1% of the pages appear in holes. */
	for (long long p = 50; p < pages; p += 100)
		fill_page(map + p * (PG / 8), 0, p);
	freeze_and_kexec(dev, used0, luo_fd_bytes(fd) - data0, pages);
}

/* RETRIEVE_SESSION, or the run ends. */
static int retrieve_session(int dev, const char *name)
{
	int s = luo_retrieve_session(dev, name);

	if (s < 0)
		die("RETRIEVE_SESSION", s);
	return s;
}

/*
 * Every page of the memfd fd of file f, size bytes, checked through a
 * mapping, which is returned; or the run ends.
 */
static uint64_t *check_memfd(int fd, uint64_t f, long long size)
{
	uint64_t *map = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);

	if (map == MAP_FAILED)
		die("mmap", errno);
	for (long long p = 0; p < size / PG; p++)
		if (!page_ok(map + p * (PG / 8), f, p))
			die("a page differs", EIO);
	return map;
}

static void big_stage2(int dev)
{
	static uint64_t buf[(1 << 20) / 8];
	long long size = big_size(), off = 0;
	int s, fd, err;
	double t0, t1;
	ssize_t n;

	profile_start();
	t0 = now();
	s = retrieve_session(dev, "bench-big");
	fd = luo_retrieve_fd(s, 1);
	if (fd < 0)
		die("RETRIEVE_FD", fd);
	t1 = now();
	report("retrieve", t1 - t0);
	while ((n = pread(fd, buf, sizeof(buf), off)) > 0)
		off += n;
	if (off != size)
		die("short read", EIO);
	report("first_read", now() - t1);
	profile_stop();
	check_memfd(fd, 0, size);
	mark("verified");
	t0 = now();
	if ((err = luo_finish(s)))
		die("SESSION_FINISH", err);
	report("finish", now() - t0);
}

#define PARALLEL 4

static void parallel_stage1(int dev)
{
	long long size = big_size(), pages = size / PG, used0;
	int s[PARALLEL], fd[PARALLEL], err;

	for (int i = 0; i < PARALLEL; i++) {
		char name[32];
		uint64_t *map;

		snprintf(name, sizeof(name), "bench-par-%d", i);
		fd[i] = luo_memfd(name, size);
		if (fd[i] < 0)
			die("memfd", fd[i]);
		map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd[i], 0);
		if (map == MAP_FAILED)
			die("mmap", errno);
		for (long long p = 0; p < pages; p++)
			fill_page(map + p * (PG / 8), i, p);
		munmap(map, size);
	}
	begin();
	used0 = used_bytes();
	for (int i = 0; i < PARALLEL; i++) {
		char name[32];

		snprintf(name, sizeof(name), "bench-par-%d", i);
		s[i] = luo_create_session(dev, name);
		if (s[i] < 0)
			die("CREATE_SESSION", s[i]);
		if ((err = luo_preserve(s[i], fd[i], 1)))
			die("PRESERVE_FD", err);
	}
	prepare(dev);
	freeze_and_kexec(dev, used0, 0, PARALLEL * pages);
}

/* Session i of the parallel scenario retrieved and checked; the time of
 * its RETRIEVE_SESSION + RETRIEVE_FD. */
static double retrieve_one(int dev, int i, double *start)
{
	long long size = big_size();
	double t0 = now(), took;
	char name[32];
	int s, fd, err;

	if (start)
		*start = t0;
	snprintf(name, sizeof(name), "bench-par-%d", i);
	s = retrieve_session(dev, name);
	fd = luo_retrieve_fd(s, 1);
	if (fd < 0)
		die("RETRIEVE_FD", fd);
	took = now() - t0;
	munmap(check_memfd(fd, i, size), size);
	if ((err = luo_finish(s)))
		die("SESSION_FINISH", err);
	close(fd);
	close(s);
	return took;
}

static void parallel_stage2(int dev)
{
	int go[2], done[2];
	double alone = 0, first = 0, last = 0;
	char c;

	for (int i = 0; i < 2; i++)
		alone += retrieve_one(dev, i, NULL);
	report("retrieve_one_by_one", alone);
	/* Two processes, released together by closing the pipe they wait on. */
	if (pipe(go) || pipe(done))
		die("pipe", errno);
	fflush(stdout);
	for (int i = 2; i < PARALLEL; i++) {
		pid_t pid = fork();

		if (pid < 0)
			die("fork", errno);
		if (!pid) {
			double times[2];

			close(go[1]);
			if (read(go[0], &c, 1) != 0)
				_exit(1);
			times[1] = retrieve_one(dev, i, &times[0]);
			times[1] += times[0];
			_exit(write(done[1], times, sizeof(times)) != sizeof(times));
		}
	}
	close(go[0]);
	close(done[1]);
	close(go[1]);
	for (int i = 2; i < PARALLEL; i++) {
		double times[2];

		if (read(done[0], times, sizeof(times)) != sizeof(times))
			die("a parallel RETRIEVE", EIO);
		first = i == 2 || times[0] < first ? times[0] : first;
		last = times[1] > last ? times[1] : last;
	}
	for (int i = 2; i < PARALLEL; i++) {
		int status;

		if (wait(&status) < 0 || !WIFEXITED(status) || WEXITSTATUS(status))
			die("a parallel RETRIEVE", EIO);
	}
	/* From the first RETRIEVE_SESSION to the last RETRIEVE_FD returning. */
	report("retrieve_at_once", last - first);
	mark("verified");
}

static int small_memfd(uint64_t f)
{
	static uint64_t page[PG / 8];
	int fd = luo_memfd("small", PG);

	fill_page(page, f, 0);
	if (fd < 0 || pwrite(fd, page, PG, 0) != PG)
		die("small memfd", fd < 0 ? fd : errno);
	return fd;
}

static void files_stage1(int dev)
{
	static int fds[SMALL + MANY];
	struct rlimit nofile = { SMALL + MANY + SESSIONS + 64, SMALL + MANY + SESSIONS + 64 };
	long long used0;
	double t0, t1;
	int small, err;

	if (setrlimit(RLIMIT_NOFILE, &nofile))
		die("setrlimit", errno);
	for (int i = 0; i < SMALL + MANY; i++)
		fds[i] = small_memfd(i);
	begin();
	used0 = used_bytes();

	small = luo_create_session(dev, "bench-small");
	if (small < 0)
		die("CREATE_SESSION", small);
	t0 = now();
	for (int i = 0; i < SMALL; i++)
		if ((err = luo_preserve(small, fds[i], i)))
			die("PRESERVE_FD small", err);
	report("preserve_2000", now() - t0);

	t0 = t1 = now();
	for (int i = 0; i < SESSIONS; i++) {
		char name[32];
		int s;

		snprintf(name, sizeof(name), "bench-%d", i);
		s = luo_create_session(dev, name);
		if (s < 0)
			die("CREATE_SESSION", s);
		for (int j = 0; j < PER_SESSION; j++)
			if ((err = luo_preserve(s, fds[SMALL + i * PER_SESSION + j], j)))
				die("PRESERVE_FD", err);
		/* Per-file cost, early and late: flat if nothing scans it all. */
		if (i == SESSIONS / 10 - 1)
			report("preserve_first_1000", now() - t1);
		if (i == SESSIONS - SESSIONS / 10 - 1)
			t1 = now();
	}
	report("preserve_last_1000", now() - t1);
	report("preserve_10000", now() - t0);
	for (int i = 0; i < SMALL + MANY; i++)
		close(fds[i]);
	prepare(dev);
	freeze_and_kexec(dev, used0, 0, SMALL + MANY);
}

static void check_small(int fd, uint64_t f)
{
	static uint64_t page[PG / 8];

	if (pread(fd, page, PG, 0) != PG || !page_ok(page, f, 0))
		die("a small memfd differs", EIO);
	close(fd);
}

static void files_stage2(int dev)
{
	static int sessions[SESSIONS];
	static int fds[SMALL + MANY];
	int small, err;
	double t0;

	profile_start();
	t0 = now();
	small = retrieve_session(dev, "bench-small");
	for (int i = 0; i < SMALL; i++)
		if ((fds[i] = luo_retrieve_fd(small, i)) < 0)
			die("RETRIEVE_FD small", fds[i]);
	report("retrieve_2000", now() - t0);

	t0 = now();
	for (int i = 0; i < SESSIONS; i++) {
		char name[32];

		snprintf(name, sizeof(name), "bench-%d", i);
		sessions[i] = retrieve_session(dev, name);
		for (int j = 0; j < PER_SESSION; j++) {
			int *fd = &fds[SMALL + i * PER_SESSION + j];

			if ((*fd = luo_retrieve_fd(sessions[i], j)) < 0)
				die("RETRIEVE_FD", *fd);
		}
	}
	report("retrieve_10000", now() - t0);
	profile_stop();
	for (int i = 0; i < SMALL + MANY; i++)
		check_small(fds[i], i);
	mark("verified");

	t0 = now();
	if ((err = luo_finish(small)))
		die("SESSION_FINISH", err);
	for (int i = 0; i < SESSIONS; i++)
		if ((err = luo_finish(sessions[i])))
			die("SESSION_FINISH", err);
	report("finish", now() - t0);
}

int main(void)
{
	/* luo_arg() answers in one buffer: keep this answer. */
	char scenario[32];
	struct rlimit nofile = { SMALL + MANY + SESSIONS + 64, SMALL + MANY + SESSIONS + 64 };
	double t0 = now();
	int dev = luo_open();

	if (dev < 0)
		die("open /dev/liveupdate", errno);
	which_kernel(dev);
	snprintf(scenario, sizeof(scenario), "%s", luo_arg("scenario") ?: "big");
	if (luo_stage() == 1) {
		if (!strcmp(scenario, "big"))
			big_stage1(dev);
		else if (!strcmp(scenario, "files"))
			files_stage1(dev);
		else if (!strcmp(scenario, "parallel"))
			parallel_stage1(dev);
		/* Nothing preserved: no event either. Two seconds between the
		 * marks give the rate of the guest's clock. */
		begin();
		sleep(2);
		mark("freeze");
		jump();
	}
	/* The upstream C LUO reads the whole handover at this open(). */
	report("open", now() - t0);
	if (setrlimit(RLIMIT_NOFILE, &nofile))
		die("setrlimit", errno);
	report("boot_to_retrieve_start", luo_ms(CLOCK_BOOTTIME));
	if (!strcmp(scenario, "big"))
		big_stage2(dev);
	else if (!strcmp(scenario, "files"))
		files_stage2(dev);
	else if (!strcmp(scenario, "parallel"))
		parallel_stage2(dev);
	else
		mark("verified");
	printf("bench: done\n");
	return 0;
}
