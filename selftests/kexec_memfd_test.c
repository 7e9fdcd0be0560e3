// SPDX-License-Identifier: GPL-2.0
/*
 * Two-stage: memfds of every shape cross a real kexec, checked by the
 * SHA-256 of their contents.
 *
 * Stage 1 preserves memfds of 0 bytes, 1 byte, 4 KiB, odd sizes, a sparse
 * 64 MiB one with data at both ends, a sealed one, one with a file
 * position, a 32 MiB one and a 4 MiB one with every other page written
 * (its folio list too long for the header page), one with a name of the
 * longest kind, and one of three lone pages (its record fits in the
 * handover itself until three more pages after the second PREPARE make
 * FREEZE give it a page of its own); writes into a hole; runs a first update up
 * to FREEZE and CANCELs it (sizes stay frozen while preserved); changes
 * the data and fills two more holes; then a
 * second update, writing through write() and a shared mapping between
 * PREPARE and FREEZE (into existing pages and into a hole) and changing
 * one memfd's position, seals and mode there too, and kexecs.
 * The hashes go to stage 2 on the command line.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include "memfd_util.h"
#include "luo_test.h"

#define MiB (1LL << 20)
#define SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL)

static const struct {
	const char *name;
	long long size;
} files[] = {
	{ "empty", 0 },		/* token 1 */
	{ "one", 1 },		/* token 2 */
	{ "page", 4096 },	/* token 3 */
	{ "odd", 12345 },	/* token 4 */
	{ "sparse", 64 * MiB },	/* token 5 */
	{ "sealed", 8193 },	/* token 6 */
	{ "pos", 10000 },	/* token 7 */
	{ "big", 32 * MiB },	/* token 8 */
	{ "checker", 4 * MiB },	/* token 9: every other page */
	{ "grows", 1 * MiB },	/* token 10: pages 0, 2, 4, then 6, 8, 10 */
	{ NULL, 4096 },		/* token 11: the longest name, LONG_NAME */
};
#define GROWS 9
#define LONG 10
#define N (sizeof(files) / sizeof(files[0]))
#define POS 4321
/* What the "pos" memfd is given between the second PREPARE and FREEZE. */
#define LATE_POS 6543
#define LATE_SEALS F_SEAL_SHRINK
#define LATE_MODE 0640

static void die(const char *what, int err)
{
	ksft_exit_fail_msg("%s: %s\n", what, strerror(err < 0 ? -err : err));
}

/* The longest memfd name: 249 bytes ("memfd:" makes it 255). */
static const char *long_name(void)
{
	static char name[250];

	if (!name[0])
		for (int i = 0; i < 249; i++)
			name[i] = 'a' + i % 26;
	return name;
}

static const char *name_of(size_t i)
{
	return files[i].name ? files[i].name : long_name();
}

/* Writes lone pages `first`, `first` + 2, `first` + 4 of `fd`. */
static int three_lone_pages(int fd, int first)
{
	int err = 0;

	for (int p = first; p < first + 6 && !err; p += 2)
		err = luo_fill(fd, p * 4096LL, 4096, 100 + p);
	return err;
}

static void stage1(void)
{
	static char args[2048];
	int fd[N], dev = luo_open(), s, err;
	size_t off = 0;
	char *map;

	if (dev < 0)
		die("open", errno);
	s = luo_create_session(dev, "memfds");
	if (s < 0)
		die("CREATE_SESSION", s);
	for (size_t i = 0; i < N; i++) {
		fd[i] = luo_memfd(name_of(i), files[i].size);
		if (fd[i] < 0)
			die("memfd", fd[i]);
		if (i != 4 && i != 8 && i != GROWS && (err = luo_fill(fd[i], 0, files[i].size, i)))
			die("fill", err);
	}
	if ((err = three_lone_pages(fd[GROWS], 0)))
		die("fill grows", err);
	/* Checker: 512 lone pages, more runs than the header page holds, so
	 * the folio list has a page of its own. */
	for (long long off = 0; off < 4 * MiB; off += 8192)
		if ((err = luo_fill(fd[8], off, 4096, 90)))
			die("fill checker", err);
	/* Sparse: data at both ends only. */
	if (luo_fill(fd[4], 0, 4096, 40) || luo_fill(fd[4], 64 * MiB - 100, 100, 41))
		die("fill sparse", errno);
	if (fcntl(fd[5], F_ADD_SEALS, SEALS))
		die("seal", errno);
	if (lseek(fd[6], POS, SEEK_SET) != POS)
		die("lseek", errno);
	for (size_t i = 0; i < N; i++)
		if ((err = luo_preserve(s, fd[i], i + 1)))
			die("PRESERVE_FD", err);
	/* Pages that appear in holes after PRESERVE_FD are taken in by PREPARE. */
	if ((err = luo_fill(fd[4], 16 * MiB, 4096, 42)))
		die("write after PRESERVE_FD", err);

	/* A first update, cancelled: everything is normal again. */
	if ((err = luo_set_event(dev, LIVEUPDATE_EVENT_PREPARE)) ||
	    (err = luo_set_event(dev, LIVEUPDATE_EVENT_FREEZE)))
		die("first PREPARE/FREEZE", err);
	if (ftruncate(fd[3], 4096) != -1 || errno != EPERM)
		die("truncate while FROZEN was not refused", EINVAL);
	if ((err = luo_set_event(dev, LIVEUPDATE_EVENT_CANCEL)))
		die("CANCEL", err);
	/* Still preserved, still frozen (until UNPRESERVE_FD). */
	if (ftruncate(fd[3], 20000) != -1 || errno != EPERM)
		die("truncate after CANCEL was not refused", EINVAL);
	if ((err = luo_fill(fd[2], 0, 4096, 99)))
		die("refill", err);
	/* A hole filled between the two updates crosses too. */
	if ((err = luo_fill(fd[4], 48 * MiB + 100, 5000, 43)))
		die("write after CANCEL", err);

	/* The second update; writes between PREPARE and FREEZE must count. */
	if ((err = luo_set_event(dev, LIVEUPDATE_EVENT_PREPARE)))
		die("PREPARE", err);
	map = mmap(NULL, 64 * MiB, PROT_READ | PROT_WRITE, MAP_SHARED, fd[4], 0);
	if (map == MAP_FAILED)
		die("mmap", errno);
	memset(map + 32 * MiB, 0xa5, 4096);	/* a page in a hole */
	map[10] = 0x11;				/* an existing page */
	munmap(map, 64 * MiB);
	if ((err = luo_fill(fd[7], 16 * MiB, 4096, 123)))
		die("write after PREPARE", err);
	/* Six runs now: more than the handover itself holds. */
	if ((err = three_lone_pages(fd[GROWS], 6)))
		die("write grows after PREPARE", err);
	/* What the header says changes too: FREEZE must write it again. */
	if (lseek(fd[6], LATE_POS, SEEK_SET) != LATE_POS ||
	    fcntl(fd[6], F_ADD_SEALS, LATE_SEALS) || fchmod(fd[6], LATE_MODE))
		die("position, seals or mode after PREPARE", errno);
	if ((err = luo_set_event(dev, LIVEUPDATE_EVENT_FREEZE)))
		die("FREEZE", err);

	for (size_t i = 0; i < N; i++) {
		char hex[65];

		if ((err = luo_sha_fd(fd[i], hex)))
			die("sha", err);
		off += snprintf(args + off, sizeof(args) - off, "%sh%zu=%.16s", off ? " " : "",
				i + 1, hex);
	}
	ksft_exit_fail_msg("kexec: %s\n", strerror(-luo_kexec(args)));
}

/* Retrieves token `t` of session "memfds", claiming it into *s first. */
static int get(struct __test_metadata *_metadata, int *s, int t)
{
	if (*s < 0) {
		int dev = luo_open();

		*s = luo_retrieve_session(dev, "memfds");
		close(dev);
	}
	return *s < 0 ? *s : luo_retrieve_fd(*s, t);
}

TEST(every_byte_and_size_survived)
{
	int s = -1;

	for (size_t i = 0; i < N; i++) {
		char key[8], hex[65];
		int fd = get(_metadata, &s, i + 1);

		ASSERT_LE(0, fd) {
			TH_LOG("%s: %s", name_of(i), strerror(-fd));
		}
		EXPECT_EQ(files[i].size, luo_fd_size(fd));
		ASSERT_EQ(0, luo_sha_fd(fd, hex));
		snprintf(key, sizeof(key), "h%zu", i + 1);
		ASSERT_NE(NULL, luo_arg(key));
		EXPECT_EQ(0, strncmp(luo_arg(key), hex, 16)) {
			TH_LOG("%s: sha256 %.16s, before the kexec %s", name_of(i), hex,
			       luo_arg(key));
		}
		close(fd);
	}
	close(s);
}

TEST(sparse_stays_sparse)
{
	int s = -1, fd = get(_metadata, &s, 5), checker = get(_metadata, &s, 9);

	ASSERT_LE(0, fd);
	ASSERT_LE(0, checker);
	/*
	 * The two ends, the page written into a hole after PRESERVE_FD, the
	 * two after CANCEL and the one after PREPARE.
	 */
	EXPECT_EQ(6 * 4096, luo_fd_bytes(fd));
	EXPECT_EQ(2 * MiB, luo_fd_bytes(checker));
	close(fd);
	close(checker);
	close(s);
}

TEST(seals_position_name_and_mode)
{
	char link[64], want[64];
	int s = -1, sealed = get(_metadata, &s, 6), pos = get(_metadata, &s, 7);
	struct stat st;
	char c = 0;

	ASSERT_LE(0, sealed);
	ASSERT_LE(0, pos);
	EXPECT_EQ(SEALS, fcntl(sealed, F_GET_SEALS));
	EXPECT_EQ(-1, pwrite(sealed, &c, 1, 0));
	EXPECT_EQ(EPERM, errno);
	EXPECT_EQ(-1, ftruncate(sealed, 0));
	/* Changed between PREPARE and FREEZE. */
	EXPECT_EQ(LATE_POS, lseek(pos, 0, SEEK_CUR));
	EXPECT_EQ(LATE_SEALS, fcntl(pos, F_GET_SEALS));
	ASSERT_EQ(0, fstat(pos, &st));
	EXPECT_EQ(LATE_MODE, st.st_mode & 0777);
	snprintf(want, sizeof(want), "/proc/self/fd/%d", pos);
	memset(link, 0, sizeof(link));
	ASSERT_LT(0, readlink(want, link, sizeof(link) - 1));
	EXPECT_STREQ("/memfd:pos (deleted)", link);
	close(sealed);
	close(pos);
	close(s);
}

TEST(the_longest_name_and_a_record_that_grew)
{
	char link[300], want[300];
	int s = -1, lng = get(_metadata, &s, LONG + 1), grows = get(_metadata, &s, GROWS + 1);

	ASSERT_LE(0, lng);
	ASSERT_LE(0, grows);
	snprintf(want, sizeof(want), "/proc/self/fd/%d", lng);
	memset(link, 0, sizeof(link));
	ASSERT_LT(0, readlink(want, link, sizeof(link) - 1));
	snprintf(want, sizeof(want), "/memfd:%s (deleted)", long_name());
	EXPECT_STREQ(want, link);
	/* Six lone pages, each with its own bytes (the hash checks them). */
	EXPECT_EQ(6 * 4096, luo_fd_bytes(grows));
	close(lng);
	close(grows);
	close(s);
}

TEST(retrieved_memfds_are_ordinary)
{
	int s = -1, fd = get(_metadata, &s, 4);
	char *map;

	ASSERT_LE(0, fd);
	map = mmap(NULL, 12345, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, map);
	EXPECT_EQ(luo_byte(3, 100), (uint8_t)map[100]);
	map[100] = 'Z';
	munmap(map, 12345);
	/* A new memfd, not frozen like the preserved one was. */
	EXPECT_EQ(0, ftruncate(fd, 20000));
	EXPECT_EQ(0, ftruncate(fd, 12345));
	close(fd);
	close(s);
}

/* Last (it finishes the session): after FINISH the memfd grows, shrinks,
 * seals, and its memory is freed when it is closed. */
TEST(after_finish_memory_returns)
{
	int s = -1, odd = get(_metadata, &s, 4), big = get(_metadata, &s, 8);
	int dev = luo_open();
	long long before, freed;
	char c;

	ASSERT_LE(0, odd);
	ASSERT_LE(0, big);
	ASSERT_EQ(0, luo_finish(s));
	EXPECT_EQ(LIVEUPDATE_STATE_NORMAL, luo_get_state(dev));
	close(dev);
	/* The write through the mapping in the previous test is there. */
	ASSERT_EQ(1, pread(odd, &c, 1, 100));
	EXPECT_EQ('Z', c);
	EXPECT_EQ(0, ftruncate(odd, 1 * MiB));
	EXPECT_EQ(0, ftruncate(odd, 10));
	EXPECT_EQ(0, fcntl(odd, F_ADD_SEALS, F_SEAL_GROW));
	EXPECT_EQ(-1, ftruncate(odd, 20));
	before = luo_free_kb();
	close(big);
	freed = luo_wait_freed_kb(before, 30 * 1024);
	EXPECT_LE(30 * 1024, freed) {
		TH_LOG("closing the 32 MiB memfd freed %lld kB", freed);
	}
	close(odd);
	close(s);
}

LUO_KEXEC_TEST_MAIN(stage1)
