// SPDX-License-Identifier: GPL-2.0
/*
 * Two-stage: random sequences of every ioctl from several processes, then a
 * real update that must still work.
 *
 * Stage 1 forks luotest.fuzz_procs workers (default 8) that together run
 * luotest.fuzz_ops operations (default 4000; `make fuzz-vm` asks for
 * 100000), each from its own seed derived from luotest.fuzz_seed (random
 * and printed if not given, so a run can be repeated). An operation is one
 * of: open or close /dev/liveupdate, CREATE_SESSION, any command on any
 * kind of fd with valid, short, padded, garbage-padded or oversized
 * structs, bad pointers, odd names and tokens, PRESERVE_FD of every kind
 * of fd (memfds read-write and read-only, test files, session fds, pipes),
 * UNPRESERVE_FD, the global events, writes, truncation, hole punching and
 * mapped writes on memfds, fork, and fd passing with SCM_RIGHTS. Every
 * errno must be one the uAPI documents; the kernel must report nothing
 * (the runner fails any WARN, KASAN, lockdep or kmemleak report).
 * Then the workers are gone, a CANCEL cleans up, kmemleak (on the debug
 * kernel) must find nothing, and a memfd crosses a real kexec: stage 2
 * checks it byte for byte and that nothing else crossed.
 */
#include "luo_test.h"
#include "memfd_util.h"
#include <setjmp.h>
#include <signal.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/wait.h>

#define POOL 24
#define BUF 8192

enum kind { K_NONE, K_DEV, K_SESSION, K_MEMFD, K_RO_MEMFD, K_TEST, K_OTHER };

struct slot {
	int fd;
	enum kind kind;
};

static struct slot pool[POOL];
static uint64_t rng;
/* The worker's number: half of its session names are its own. */
static unsigned int me;

/* What the workers did, shared between them and the parent. */
enum { C_IOCTL_OK, C_IOCTL_ERR, C_PRESERVE_OK, C_EVENT_OK, C_SESSIONS, C_NR };
static const char *const counter_names[C_NR] = {
	"ioctls ok", "ioctls refused", "files preserved", "events done", "sessions made",
};
static unsigned long long *counters;

static void count(int c)
{
	__atomic_fetch_add(&counters[c], 1, __ATOMIC_RELAXED);
}
static unsigned long long unexpected;
static sigjmp_buf bus_jump;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static unsigned int below(unsigned int n)
{
	return n ? rnd() % n : 0;
}

/* The errnos the uAPI documents for its commands, and those any fd
 * operation may give. */
static int documented(int err)
{
	switch (err) {
	case EINVAL: case E2BIG: case EFAULT: case ENOENT: case EBUSY:
	case EEXIST: case EBADF: case EPERM: case ENOTTY: case EOPNOTSUPP:
	case EACCES: case ENOTUNIQ: case EMFILE: case ENFILE: case ENOMEM:
	case EAGAIN: case EINTR: case EDQUOT:
		return 1;
	}
	return 0;
}

static void check(const char *what, unsigned long cmd, int ret)
{
	if (ret < 0 && !documented(-ret)) {
		unexpected++;
		printf("# unexpected errno %d (%s) from %s %#lx\n", -ret, strerror(-ret), what, cmd);
	}
}

static int pick(enum kind want)
{
	for (int tries = 0; tries < 8; tries++) {
		struct slot *s = &pool[below(POOL)];

		if (s->kind != K_NONE && (want == K_NONE || s->kind == want))
			return s->fd;
	}
	return below(4) ? -1 : (int)below(1 << 16);
}

static void add(int fd, enum kind kind)
{
	struct slot *s = &pool[below(POOL)];

	if (fd < 0)
		return;
	if (s->kind != K_NONE)
		close(s->fd);
	s->fd = fd;
	s->kind = kind;
}

static void random_name(uint8_t *name)
{
	static const char *names[] = { "vm", "vm-1", "a", "shared", "x" };

	memset(name, 0, LIVEUPDATE_SESSION_NAME_LENGTH);
	switch (below(7)) {
	case 0: /* no NUL in 64 bytes */
		memset(name, 'n', LIVEUPDATE_SESSION_NAME_LENGTH);
		break;
	case 1: /* empty */
		break;
	case 2: /* the longest */
		memset(name, 'l', LIVEUPDATE_SESSION_NAME_LENGTH - 1);
		break;
	case 3: case 4:
		snprintf((char *)name, LIVEUPDATE_SESSION_NAME_LENGTH, "w%u-%u", me, below(8));
		break;
	default:
		snprintf((char *)name, LIVEUPDATE_SESSION_NAME_LENGTH, "%s%u",
			 names[below(5)], below(3));
	}
}

/* One ioctl with a random struct of `size` bytes around `known`. */
static void fuzz_ioctl(int fd, unsigned long cmd, size_t known)
{
	static uint8_t buf[BUF];
	uint32_t size;
	void *arg = buf;
	int ret;

	memset(buf, 0, sizeof(buf));
	switch (below(8)) {
	case 0: size = below(known); break;
	case 1: size = known + 8; break;
	case 2: size = known + 8; buf[known + 3] = 1; break;
	case 3: size = 4096 + below(64); break;
	default: size = known; break;
	}
	memcpy(buf, &size, 4);
	/* Fields after size: fds, tokens, names, events, reserved words. */
	if (known > 8) {
		uint32_t w = below(4) ? (uint32_t)pick(K_NONE) : (uint32_t)rnd();
		uint64_t token = below(4) ? below(4) : rnd();

		memcpy(buf + 4, &w, 4);
		if (known >= 16)
			memcpy(buf + 8, &token, 8);
		if (known >= 72 && below(2))
			random_name(buf + 8);
	} else if (known == 8) {
		uint32_t ev = below(6);

		memcpy(buf + 4, &ev, 4);
	}
	if (!below(20))
		arg = below(2) ? NULL : (void *)1;
	ret = ioctl(fd, cmd, arg) < 0 ? -errno : 0;
	check("ioctl", cmd, ret);
	count(ret ? C_IOCTL_ERR : C_IOCTL_OK);
	/* Commands that return an fd: keep it. */
	if (!ret && arg == buf && (cmd == LIVEUPDATE_IOCTL_CREATE_SESSION ||
				   cmd == LIVEUPDATE_IOCTL_RETRIEVE_SESSION))
		add(((int32_t *)buf)[1], K_SESSION);
	if (!ret && arg == buf && cmd == LIVEUPDATE_SESSION_RETRIEVE_FD)
		add(((int32_t *)buf)[1], K_OTHER);
}

static const struct {
	unsigned long cmd;
	size_t size;
} cmds[] = {
	{ LIVEUPDATE_IOCTL_CREATE_SESSION, sizeof(struct liveupdate_ioctl_create_session) },
	{ LIVEUPDATE_IOCTL_RETRIEVE_SESSION, sizeof(struct liveupdate_ioctl_retrieve_session) },
	{ LIVEUPDATE_IOCTL_GET_STATE, sizeof(struct liveupdate_ioctl_get_state) },
	{ LIVEUPDATE_IOCTL_SET_EVENT, sizeof(struct liveupdate_ioctl_set_event) },
	{ LIVEUPDATE_SESSION_PRESERVE_FD, sizeof(struct liveupdate_session_preserve_fd) },
	{ LIVEUPDATE_SESSION_RETRIEVE_FD, sizeof(struct liveupdate_session_retrieve_fd) },
	{ LIVEUPDATE_SESSION_FINISH, sizeof(struct liveupdate_session_finish) },
	{ LIVEUPDATE_SESSION_GET_NAME, sizeof(struct liveupdate_session_get_name) },
	{ LIVEUPDATE_SESSION_SET_NAME, sizeof(struct liveupdate_session_set_name) },
	{ LIVEUPDATE_SESSION_UNPRESERVE_FD, sizeof(struct liveupdate_session_unpreserve_fd) },
	{ LIVEUPDATE_SESSION_GET_STATE, sizeof(struct liveupdate_session_get_state) },
};

static void on_bus(int sig)
{
	siglongjmp(bus_jump, 1);
}

/* Writes through a mapping; a hole of a frozen memfd gives SIGBUS. */
static void mapped_write(int fd)
{
	char *map = mmap(NULL, 16 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	if (map == MAP_FAILED)
		return;
	if (!sigsetjmp(bus_jump, 1))
		map[below(16) * 4096] = 1;
	munmap(map, 16 * 4096);
}

static void pass_fd(void)
{
	char c = 0, ctl[CMSG_SPACE(sizeof(int))];
	struct iovec io = { .iov_base = &c, .iov_len = 1 };
	struct msghdr msg = { .msg_iov = &io, .msg_iovlen = 1,
			      .msg_control = ctl, .msg_controllen = sizeof(ctl) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
	int sv[2], fd = pick(below(2) ? K_SESSION : K_NONE);

	if (fd < 0 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		return;
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	if (sendmsg(sv[0], &msg, 0) == 1 && recvmsg(sv[1], &msg, 0) == 1) {
		cm = CMSG_FIRSTHDR(&msg);
		if (cm && cm->cmsg_type == SCM_RIGHTS) {
			int got;

			memcpy(&got, CMSG_DATA(cm), sizeof(int));
			add(got, K_SESSION);
		}
	}
	/* Sometimes the fd stays in flight in a socket being closed. */
	if (below(2))
		sendmsg(sv[0], &msg, 0);
	close(sv[0]);
	close(sv[1]);
}

static void one_op(int depth)
{
	int fd, ret;
	char c = 'x';

	switch (below(24)) {
	case 0:
		add(luo_open(), K_DEV);
		break;
	case 20: case 21: case 22: case 23:
		/* Well-formed PRESERVE_FD and UNPRESERVE_FD, mostly of memfds. */
		fd = pick(K_SESSION);
		if (below(3)) {
			ret = luo_preserve(fd, pick(below(4) ? K_MEMFD : K_TEST), below(4));
			if (!ret)
				count(C_PRESERVE_OK);
		} else {
			ret = luo_unpreserve(fd, below(4));
		}
		check("PRESERVE/UNPRESERVE", 0, ret);
		break;
	case 1: {
		struct slot *s = &pool[below(POOL)];

		if (s->kind != K_NONE)
			close(s->fd);
		s->kind = K_NONE;
		break;
	}
	case 2: case 3: case 4: case 5: case 6: {
		unsigned int i = below(sizeof(cmds) / sizeof(cmds[0]));

		fd = pick(below(2) ? K_DEV : K_SESSION);
		fuzz_ioctl(fd < 0 ? 0 : fd, cmds[i].cmd, cmds[i].size);
		break;
	}
	case 7:
		/* A command number nobody defined, on any fd. */
		fd = pick(K_NONE);
		fuzz_ioctl(fd < 0 ? 0 : fd, _IO(LIVEUPDATE_IOCTL_TYPE, below(256)), 16);
		break;
	case 8: {
		static const enum kind kinds[] = { K_MEMFD, K_RO_MEMFD, K_TEST, K_SESSION,
						   K_DEV, K_OTHER };

		ret = luo_preserve(pick(K_SESSION), pick(kinds[below(6)]), below(6));
		check("PRESERVE_FD", 0, ret);
		if (!ret)
			count(C_PRESERVE_OK);
		break;
	}
	case 9:
		check("UNPRESERVE_FD", 0, luo_unpreserve(pick(K_SESSION), below(6)));
		break;
	case 10: {
		static const unsigned int events[] = {
			LIVEUPDATE_EVENT_PREPARE, LIVEUPDATE_EVENT_FREEZE,
			LIVEUPDATE_EVENT_CANCEL, LIVEUPDATE_EVENT_CANCEL,
			LIVEUPDATE_EVENT_FINISH, 77 };

		ret = luo_set_event(pick(K_DEV), events[below(6)]);
		check("SET_EVENT", 0, ret);
		if (!ret)
			count(C_EVENT_OK);
		break;
	}
	case 11: {
		int m = luo_memfd("fuzz", 4096 * (1 + below(16)));

		if (m >= 0 && below(2))
			luo_fill(m, 4096 * below(4), 4096, rnd());
		if (m >= 0 && !below(3)) {
			char path[64];
			int ro;

			snprintf(path, sizeof(path), "/proc/self/fd/%d", m);
			ro = open(path, O_RDONLY | O_CLOEXEC);
			close(m);
			add(ro, K_RO_MEMFD);
		} else {
			add(m, K_MEMFD);
		}
		break;
	}
	case 12:
		fd = pick(K_MEMFD);
		switch (below(4)) {
		case 0: ret = pwrite(fd, &c, 1, 4096 * below(20)); break;
		case 1: ret = ftruncate(fd, 4096 * below(20)); break;
		case 2: ret = fallocate(fd, 3 /* PUNCH_HOLE|KEEP_SIZE */, 0, 4096); break;
		default: mapped_write(fd); ret = 0; break;
		}
		(void)ret;
		break;
	case 13:
		add(luo_test_file("fuzz", below(5)), K_TEST);
		break;
	case 14: {
		int p[2];

		if (!pipe(p)) {
			close(p[1]);
			add(p[0], K_OTHER);
		}
		break;
	}
	case 15:
		pass_fd();
		break;
	case 16:
		if (depth == 0 && !below(4)) {
			pid_t pid = fork();

			if (pid == 0) {
				for (int i = 0; i < 20; i++)
					one_op(1);
				_exit(0);
			}
			if (pid > 0)
				waitpid(pid, NULL, 0);
		}
		break;
	case 17:
		ret = luo_get_state(pick(K_DEV));
		check("GET_STATE", 0, ret < 0 ? ret : 0);
		break;
	default: {
		uint8_t name[LIVEUPDATE_SESSION_NAME_LENGTH];

		random_name(name);
		fd = pick(K_DEV);
		if (below(2)) {
			ret = luo_create_session(fd, (char *)name);
			check("CREATE_SESSION", 0, ret < 0 ? ret : 0);
			if (ret >= 0)
				count(C_SESSIONS);
			add(ret, K_SESSION);
		} else {
			check("SET_NAME", 0, luo_set_name(pick(K_SESSION), (char *)name));
		}
	}
	}
}

static unsigned long arg_ul(const char *key, unsigned long dflt)
{
	const char *v = luo_arg(key);

	return v ? strtoul(v, NULL, 0) : dflt;
}

/* A worker: `ops` operations from `seed`; exits 1 on an undocumented errno. */
static void worker(unsigned int id, uint64_t seed, unsigned long ops)
{
	struct sigaction sa = { .sa_handler = on_bus };
	int dev = luo_open();
	char name[32];

	sigaction(SIGBUS, &sa, NULL);
	rng = seed | 1;
	me = id;
	/* Something to work on from the start. */
	for (int i = 0; i < 3; i++) {
		snprintf(name, sizeof(name), "w%u-start%d", id, i);
		add(luo_create_session(dev, name), K_SESSION);
		add(luo_memfd("start", 8 * 4096), K_MEMFD);
	}
	add(dev, K_DEV);
	for (unsigned long i = 0; i < ops; i++)
		one_op(0);
	_exit(unexpected ? 1 : 0);
}

static void kmemleak_check(void)
{
	char buf[4096];
	ssize_t n;
	int fd;

	if (access("/sys/kernel/debug/kmemleak", F_OK))
		return;
	sleep(6);
	for (int i = 0; i < 2; i++) {
		fd = open("/sys/kernel/debug/kmemleak", O_WRONLY);
		if (fd >= 0) {
			if (write(fd, "scan", 4) < 0)
				printf("# kmemleak scan: %s\n", strerror(errno));
			close(fd);
		}
	}
	fd = open("/sys/kernel/debug/kmemleak", O_RDONLY);
	printf("# kmemleak after the fuzzing:\n");
	while (fd >= 0 && (n = read(fd, buf, sizeof(buf) - 1)) > 0) {
		buf[n] = 0;
		fputs(buf, stdout);
	}
	fflush(stdout);
	if (fd >= 0)
		close(fd);
}

static void stage1(void)
{
	unsigned long procs = arg_ul("fuzz_procs", 8), ops = arg_ul("fuzz_ops", 4000);
	uint64_t seed = arg_ul("fuzz_seed", 0);
	char sha[65], args[256];
	int failed = 0, dev, s, m;
	double t0 = luo_ms(CLOCK_MONOTONIC);

	if (!seed) {
		if (getrandom(&seed, sizeof(seed), 0) != sizeof(seed))
			seed = (uint64_t)t0;
		seed &= 0xffffffffffffULL;
	}
	counters = mmap(NULL, C_NR * sizeof(*counters), PROT_READ | PROT_WRITE,
			MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (counters == MAP_FAILED)
		ksft_exit_fail_msg("mmap: %s\n", strerror(errno));
	printf("# fuzz: seed %#llx, %lu processes, %lu operations\n",
	       (unsigned long long)seed, procs, ops);
	fflush(stdout);
	for (unsigned long i = 0; i < procs; i++) {
		pid_t pid = fork();

		if (pid < 0)
			ksft_exit_fail_msg("fork: %s\n", strerror(errno));
		if (!pid)
			worker(i, seed * 0x9e3779b97f4a7c15ULL + i, ops / procs);
	}
	for (unsigned long i = 0; i < procs; i++) {
		int status;

		if (wait(&status) < 0 || !WIFEXITED(status) || WEXITSTATUS(status))
			failed++;
	}
	printf("# fuzz: %lu operations in %.0f ms, %d worker(s) failed\n", ops,
	       luo_ms(CLOCK_MONOTONIC) - t0, failed);
	for (int c = 0; c < C_NR; c++)
		printf("# fuzz: %s: %llu\n", counter_names[c], counters[c]);
	if (failed)
		ksft_exit_fail_msg("a worker saw an undocumented errno (seed %#llx)\n",
				   (unsigned long long)seed);

	/* Everything the workers held is closed; undo a PREPARE they left. */
	dev = luo_open();
	if (dev < 0)
		ksft_exit_fail_msg("open: %s\n", strerror(errno));
	luo_set_event(dev, LIVEUPDATE_EVENT_CANCEL);
	if (luo_get_state(dev) != LIVEUPDATE_STATE_NORMAL)
		ksft_exit_fail_msg("not NORMAL after the fuzzing and a CANCEL\n");
	kmemleak_check();

	/* A real update still works. */
	s = luo_create_session(dev, "after-fuzz");
	m = luo_memfd("after-fuzz", 1 << 20);
	if (s < 0 || m < 0 || luo_fill(m, 0, 1 << 20, seed) || luo_sha_fd(m, sha) ||
	    luo_preserve(s, m, 1))
		ksft_exit_fail_msg("cannot preserve after the fuzzing\n");
	snprintf(args, sizeof(args), "sha=%s", sha);
	ksft_exit_fail_msg("kexec: %s\n", strerror(-luo_kexec(args)));
}

TEST(an_update_after_the_fuzzing_works)
{
	char sha[65];
	int dev = luo_open(), s, m;

	ASSERT_LE(0, dev);
	s = luo_retrieve_session(dev, "after-fuzz");
	ASSERT_LE(0, s);
	m = luo_retrieve_fd(s, 1);
	ASSERT_LE(0, m);
	ASSERT_EQ(0, luo_sha_fd(m, sha));
	EXPECT_STREQ(luo_arg("sha"), sha);
	EXPECT_EQ(0, luo_finish(s));
	/* Nothing the fuzzing made crossed: that was the only session. */
	EXPECT_EQ(LIVEUPDATE_STATE_NORMAL, luo_get_state(dev));
	close(m);
	close(s);
	close(dev);
}

LUO_KEXEC_TEST_MAIN(stage1)
