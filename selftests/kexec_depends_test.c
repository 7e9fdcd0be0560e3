// SPDX-License-Identifier: GPL-2.0
/*
 * Two-stage: files that depend on files. A guest_memfd needs its VM, an
 * iommufd the memfds it maps: a handler names the files of its session it
 * needs, PREPARE and FREEZE check them, the handover records the edges,
 * and in the new kernel the handler gets its dependencies already rebuilt,
 * whatever order user space retrieves in.
 *
 * The test handler's payload "needs:<fd>,..." makes a test file depend on
 * the files behind those fds; retrieved, it shows each dependency's inode
 * number and first bytes as it was given them.
 *
 * Stage 1: PRESERVE_FD refuses a file whose needs are not in its session
 * yet (not preserved, in another session, a cycle, itself: ENOLINK), and
 * the test handler bad lists (EBADF, EINVAL, E2BIG); UNPRESERVE_FD refuses
 * a file another still needs (EBUSY). Then session "vm" with a file that
 * needs a test file and a 1 MiB memfd, sessions "vm2" and "vm3" with a
 * file that needs another, and session "vm4" with a file that needs one
 * whose retrieve fails ("fail:retrieve") and a third that needs nothing;
 * PREPARE; kexec (FREEZE inside reboot()).
 *
 * Stage 2: in "vm" the dependent file, retrieved first, was given the
 * rebuilt test file and memfd, the very ones RETRIEVE_FD gives next (same
 * inode, same bytes); in "vm2" only the dependency is retrieved and FINISH
 * frees the other; in "vm3" the dependency comes first and the dependent
 * gets it; in "vm4" the dependent gets its dependency's error and is not
 * rebuilt, the independent file still is, and FINISH ends the session.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <sys/stat.h>
#include "luo_test.h"
#include "memfd_util.h"

#define MEMFD_SIZE (1 << 20)
#define SEED 0xde9e4d5

#define DEP_SHOWN 16

/* A test file whose payload is `fmt`, formatted. */
static int test_file_fmt(const char *fmt, ...)
{
	char payload[128];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(payload, sizeof(payload), fmt, ap);
	va_end(ap);
	return luo_test_file(payload, strlen(payload));
}

/* Replaces a test file's payload. */
static int set_payload(int fd, const char *fmt, ...)
{
	char payload[128];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(payload, sizeof(payload), fmt, ap);
	va_end(ap);
	return write(fd, payload, strlen(payload)) == (ssize_t)strlen(payload) ? 0 : -errno;
}

static void refusals(int dev)
{
	int lonely = luo_create_session(dev, "lonely"), other = luo_create_session(dev, "other");
	int outside = luo_test_file("outside", 7), c, e, f, g, h, m;

	CHECK(lonely >= 0 && other >= 0 && outside >= 0, "setup failed\n");

	/* What a file needs must be in its session already. */
	c = test_file_fmt("needs:%d", outside);
	CHECK(c >= 0, "test file\n");
	CHECK(luo_preserve(lonely, c, 1) == -ENOLINK, "needs what nobody preserved: not ENOLINK\n");
	CHECK(!luo_preserve(other, outside, 1), "preserving in \"other\" failed\n");
	CHECK(luo_preserve(lonely, c, 1) == -ENOLINK, "needs a file of another session: not ENOLINK\n");

	/* Two files that need each other, a file that needs itself: neither
	 * can go first. */
	e = luo_test_file("", 0);
	f = luo_test_file("", 0);
	g = luo_test_file("", 0);
	CHECK(e >= 0 && f >= 0 && g >= 0, "test files\n");
	CHECK(!set_payload(e, "needs:%d", f) && !set_payload(f, "needs:%d", e) &&
		      !set_payload(g, "needs:%d", g),
	      "payloads\n");
	CHECK(luo_preserve(lonely, e, 2) == -ENOLINK && luo_preserve(lonely, f, 3) == -ENOLINK,
	      "a cycle: not ENOLINK\n");
	CHECK(luo_preserve(lonely, g, 4) == -ENOLINK, "a file that needs itself: not ENOLINK\n");

	/* Bad lists are refused by the test handler. */
	m = luo_memfd("dep", 4096);
	h = luo_test_file("needs:9999", 10);
	CHECK(m >= 0 && h >= 0, "setup\n");
	CHECK(luo_preserve(lonely, h, 5) == -EBADF, "a closed fd: not EBADF\n");
	CHECK(!set_payload(h, "needs:%d,x", m), "payload\n");
	CHECK(luo_preserve(lonely, h, 5) == -EINVAL, "a malformed list: not EINVAL\n");
	CHECK(!set_payload(h, "needs:%d,%d,%d,%d,%d", m, m, m, m, m), "payload\n");
	CHECK(luo_preserve(lonely, h, 5) == -E2BIG, "five dependencies: not E2BIG\n");
	CHECK(luo_get_state(dev) == LIVEUPDATE_STATE_NORMAL, "not NORMAL\n");
	close(h);
	close(m);
}

static void stage1(void)
{
	int dev = luo_open(), vm, vm2, vm3, vm4, a, b, m, a2, b2, a3, b3, a4, b4, c4;

	CHECK(dev >= 0, "open: %s\n", strerror(errno));
	refusals(dev);

	vm = luo_create_session(dev, "vm");
	vm2 = luo_create_session(dev, "vm2");
	vm3 = luo_create_session(dev, "vm3");
	vm4 = luo_create_session(dev, "vm4");
	CHECK(vm4 >= 0, "CREATE_SESSION vm4: %s\n", strerror(-vm4));
	m = luo_memfd("vm", MEMFD_SIZE);
	a = luo_test_file("vm-a", 4);
	CHECK(vm >= 0 && vm2 >= 0 && vm3 >= 0 && m >= 0 && a >= 0, "setup failed\n");
	CHECK(!luo_fill(m, 0, MEMFD_SIZE, SEED), "fill: %s\n", strerror(errno));
	b = test_file_fmt("needs:%d,%d", a, m);
	a2 = luo_test_file("vm2-a", 5);
	b2 = a2 < 0 ? a2 : test_file_fmt("needs:%d", a2);
	a3 = luo_test_file("vm3-a", 5);
	b3 = a3 < 0 ? a3 : test_file_fmt("needs:%d", a3);
	a4 = test_file_fmt("fail:retrieve");
	b4 = a4 < 0 ? a4 : test_file_fmt("needs:%d", a4);
	c4 = luo_test_file("vm4-c", 5);
	CHECK(b >= 0 && b2 >= 0 && b3 >= 0 && b4 >= 0 && c4 >= 0, "test files\n");
	/* What a file needs goes first, and stays while it is needed. */
	CHECK(luo_preserve(vm, b, 12) == -ENOLINK, "needs what is not there yet: not ENOLINK\n");
	CHECK(!luo_preserve(vm, a, 11) && !luo_preserve(vm, m, 10) && !luo_preserve(vm, b, 12),
	      "PRESERVE_FD in \"vm\" failed\n");
	CHECK(luo_unpreserve(vm, 11) == -EBUSY && luo_unpreserve(vm, 10) == -EBUSY,
	      "UNPRESERVE_FD of a needed file: not EBUSY\n");
	CHECK(!luo_unpreserve(vm, 12) && !luo_unpreserve(vm, 10) && !luo_preserve(vm, m, 10) &&
		      !luo_preserve(vm, b, 12),
	      "UNPRESERVE_FD and PRESERVE_FD again failed\n");
	CHECK(!luo_preserve(vm2, a2, 1) && !luo_preserve(vm2, b2, 2) &&
		      !luo_preserve(vm3, a3, 1) && !luo_preserve(vm3, b3, 2) &&
		      !luo_preserve(vm4, a4, 1) && !luo_preserve(vm4, b4, 2) &&
		      !luo_preserve(vm4, c4, 3),
	      "PRESERVE_FD in \"vm2\", \"vm3\", \"vm4\" failed\n");
	CHECK(!luo_set_event(dev, LIVEUPDATE_EVENT_PREPARE), "PREPARE: %s\n", strerror(errno));
	ksft_exit_fail_msg("kexec: %s\n", strerror(-luo_kexec("")));
}

/*
 * The lines a retrieved test file shows for its dependencies, after its
 * payload: dep[i] points at the bytes after "dep ino=" of the i-th.
 */
static int read_deps(int fd, char *buf, size_t len, const char **dep, int most)
{
	ssize_t n = luo_test_read(fd, buf, len - 1);
	int count = 0;

	if (n < 0)
		return n;
	buf[n] = 0;
	for (char *p = buf; count < most && (p = memmem(p, buf + n - p, "\ndep ino=", 9)); p++)
		dep[count++] = p + 9;
	return count;
}

TEST(a_file_brings_what_it_depends_on)
{
	char buf[512], bytes[DEP_SHOWN], shown[DEP_SHOWN];
	const char *dep[3];
	int dev = luo_open(), s, a, b, m;
	struct stat st;

	ASSERT_LE(0, dev);
	s = luo_retrieve_session(dev, "vm");
	ASSERT_LE(0, s);
	/* The dependent file first: its dependencies are rebuilt for it. */
	b = luo_retrieve_fd(s, 12);
	ASSERT_LE(0, b);
	ASSERT_EQ(2, read_deps(b, buf, sizeof(buf), dep, 3));
	EXPECT_EQ(0, strncmp(buf, "needs:", 6));
	/* In the order the handler named them: the test file, the memfd. */
	EXPECT_EQ(0, strncmp(strchr(dep[0], ' ') + 1, "vm-a", 4)) {
		TH_LOG("first dependency shows \"%s\"", dep[0]);
	}
	/* The same files RETRIEVE_FD gives now: no second rebuild. */
	a = luo_retrieve_fd(s, 11);
	ASSERT_LE(0, a);
	EXPECT_EQ(4, luo_test_read(a, buf + 256, 16));
	EXPECT_EQ(0, memcmp(buf + 256, "vm-a", 4));
	m = luo_retrieve_fd(s, 10);
	ASSERT_LE(0, m);
	ASSERT_EQ(0, fstat(m, &st));
	EXPECT_EQ(st.st_ino, strtoull(dep[1], NULL, 10));
	memcpy(shown, strchr(dep[1], ' ') + 1, DEP_SHOWN);
	ASSERT_EQ(DEP_SHOWN, pread(m, bytes, DEP_SHOWN, 0));
	EXPECT_EQ(0, memcmp(bytes, shown, DEP_SHOWN));
	EXPECT_EQ(MEMFD_SIZE, luo_fd_size(m));
	for (int i = 0; i < DEP_SHOWN; i++)
		EXPECT_EQ(luo_byte(SEED, i), (uint8_t)bytes[i]);
	EXPECT_EQ(0, luo_finish(s));
	close(a);
	close(b);
	close(m);
	close(s);
	close(dev);
}

TEST(a_dependency_retrieved_alone_and_the_rest_finished)
{
	char buf[64];
	int dev = luo_open(), s, a;

	ASSERT_LE(0, dev);
	s = luo_retrieve_session(dev, "vm2");
	ASSERT_LE(0, s);
	a = luo_retrieve_fd(s, 1);
	ASSERT_LE(0, a);
	EXPECT_EQ(5, luo_test_read(a, buf, sizeof(buf)));
	EXPECT_EQ(0, memcmp(buf, "vm2-a", 5));
	/* The file that needed it was never retrieved: FINISH frees it. */
	EXPECT_EQ(0, luo_finish(s));
	EXPECT_EQ(-ENOENT, luo_retrieve_fd(s, 2));
	close(a);
	close(s);
	close(dev);
}

TEST(a_dependency_retrieved_first_is_the_one_given)
{
	char buf[256];
	const char *dep[2];
	int dev = luo_open(), s, a, b;

	ASSERT_LE(0, dev);
	s = luo_retrieve_session(dev, "vm3");
	ASSERT_LE(0, s);
	a = luo_retrieve_fd(s, 1);
	ASSERT_LE(0, a);
	b = luo_retrieve_fd(s, 2);
	ASSERT_LE(0, b);
	ASSERT_EQ(1, read_deps(b, buf, sizeof(buf), dep, 2));
	EXPECT_EQ(0, strncmp(strchr(dep[0], ' ') + 1, "vm3-a", 5));
	EXPECT_EQ(0, luo_finish(s));
	close(a);
	close(b);
	close(s);
	close(dev);
}

TEST(a_dependency_that_cannot_be_rebuilt)
{
	char buf[64];
	int dev = luo_open(), s, c;

	ASSERT_LE(0, dev);
	s = luo_retrieve_session(dev, "vm4");
	ASSERT_LE(0, s);
	/* Its dependency's retrieve fails: so does its own, with that errno. */
	EXPECT_EQ(-EIO, luo_retrieve_fd(s, 2));
	/* That handler keeps nothing for another attempt. */
	EXPECT_EQ(-EINVAL, luo_retrieve_fd(s, 2));
	EXPECT_EQ(-EINVAL, luo_retrieve_fd(s, 1));
	/* A file that needs neither is rebuilt as ever. */
	c = luo_retrieve_fd(s, 3);
	ASSERT_LE(0, c);
	EXPECT_EQ(5, luo_test_read(c, buf, sizeof(buf)));
	EXPECT_EQ(0, memcmp(buf, "vm4-c", 5));
	/* FINISH frees what is left, the failed files with it. */
	EXPECT_EQ(0, luo_finish(s));
	EXPECT_EQ(-ENOENT, luo_retrieve_fd(s, 2));
	close(c);
	close(s);
	close(dev);
}

TEST(the_other_sessions_end_the_update)
{
	int dev = luo_open(), s;

	ASSERT_LE(0, dev);
	/* "lonely" went over empty, "other" with the file nobody needed. */
	s = luo_retrieve_session(dev, "other");
	ASSERT_LE(0, s);
	EXPECT_LE(0, luo_retrieve_fd(s, 1));
	EXPECT_EQ(0, luo_finish(s));
	close(s);
	s = luo_retrieve_session(dev, "lonely");
	ASSERT_LE(0, s);
	EXPECT_EQ(0, luo_finish(s));
	close(s);
	EXPECT_EQ(LIVEUPDATE_STATE_NORMAL, luo_get_state(dev));
	close(dev);
}

LUO_KEXEC_TEST_MAIN(stage1)
