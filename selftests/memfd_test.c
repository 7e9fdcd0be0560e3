// SPDX-License-Identifier: GPL-2.0
/*
 * The memfd handler in one kernel: what it takes and refuses, what is
 * refused (EPERM) while a memfd is preserved and works again once it is
 * unpreserved, and that holes cost no memory.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <limits.h>
#include <linux/falloc.h>
#include <signal.h>
#include <sys/wait.h>
#include "memfd_util.h"
#include "luo_test.h"

FIXTURE(m) {
	int dev, session, fd;
};

FIXTURE_SETUP(m)
{
	self->dev = luo_open();
	ASSERT_LE(0, self->dev);
	self->session = luo_create_session(self->dev, "memfd-plain");
	ASSERT_LE(0, self->session);
	self->fd = luo_memfd("plain", 3 * 4096);
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, luo_fill(self->fd, 0, 3 * 4096, 1));
}

FIXTURE_TEARDOWN(m)
{
	luo_set_event(self->dev, LIVEUPDATE_EVENT_CANCEL);
	close(self->fd);
	close(self->session);
	close(self->dev);
}

/* Everything that would change the preserved image, each refused. */
static void expect_image_locked(struct __test_metadata *_metadata, int fd, int err)
{
	char c = 'x';

	EXPECT_EQ(err ? -1 : 0, ftruncate(fd, 4096));
	if (err)
		EXPECT_EQ(err, errno);
	EXPECT_EQ(err ? -1 : 0, ftruncate(fd, 5 * 4096));
	EXPECT_EQ(err ? -1 : 0, fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4096));
	EXPECT_EQ(err ? -1 : 1, pwrite(fd, &c, 1, 64 * 4096));
	if (err)
		EXPECT_EQ(err, errno);
	if (!err)
		ASSERT_EQ(0, ftruncate(fd, 3 * 4096));
}

TEST_F(m, takes_memfds)
{
	static char status[8192];

	ASSERT_EQ(0, luo_preserve(self->session, self->fd, 1));
	ASSERT_LE(0, luo_read_all(LUO_STATUS, status, sizeof(status)));
	EXPECT_NE(NULL, strstr(status, "file token=0x1 handler=luo-rs,memfd-v4 preserved"));
	ASSERT_EQ(0, luo_set_event(self->dev, LIVEUPDATE_EVENT_PREPARE));
	ASSERT_LE(0, luo_read_all(LUO_STATUS, status, sizeof(status)));
	EXPECT_NE(NULL, strstr(status, "file token=0x1 handler=luo-rs,memfd-v4 prepared"));
}

TEST_F(m, refuses_other_files)
{
	int p[2], tmp;

	ASSERT_EQ(0, pipe(p));
	EXPECT_EQ(-ENOENT, luo_preserve(self->session, p[0], 1));
	tmp = open("/tmp/linked", O_RDWR | O_CREAT, 0600);
	ASSERT_LE(0, tmp);
	/* A tmpfs file with a name is shmem too, but not a memfd. */
	EXPECT_EQ(-ENOENT, luo_preserve(self->session, tmp, 2));
	close(tmp);
	unlink("/tmp/linked");
	close(p[0]);
	close(p[1]);
}

/* hugetlb memfds are not shmem: no handler takes them. */
TEST_F(m, refuses_hugetlb_memfds)
{
	int h = memfd_create("huge", MFD_HUGETLB);

	ASSERT_LE(0, h) {
		TH_LOG("memfd_create(MFD_HUGETLB): %s", strerror(errno));
	}
	EXPECT_EQ(-ENOENT, luo_preserve(self->session, h, 3));
	close(h);
}

TEST_F(m, the_image_is_locked_while_preserved)
{
	char c = 'y';

	ASSERT_EQ(0, luo_preserve(self->session, self->fd, 1));
	/* Preserved: the size that was charged is final. */
	expect_image_locked(_metadata, self->fd, EPERM);
	ASSERT_EQ(0, luo_set_event(self->dev, LIVEUPDATE_EVENT_PREPARE));
	expect_image_locked(_metadata, self->fd, EPERM);
	/* Writes inside the file still work. */
	EXPECT_EQ(1, pwrite(self->fd, &c, 1, 100));
	ASSERT_EQ(0, luo_set_event(self->dev, LIVEUPDATE_EVENT_FREEZE));
	expect_image_locked(_metadata, self->fd, EPERM);
	EXPECT_EQ(3 * 4096, luo_fd_size(self->fd));
	ASSERT_EQ(0, luo_set_event(self->dev, LIVEUPDATE_EVENT_CANCEL));
	/* Still preserved after CANCEL: still locked. */
	expect_image_locked(_metadata, self->fd, EPERM);
	EXPECT_EQ(3 * 4096, luo_fd_size(self->fd));
	/* Unpreserved: a fully normal memfd. */
	ASSERT_EQ(0, luo_unpreserve(self->session, 1));
	expect_image_locked(_metadata, self->fd, 0);
}

TEST_F(m, unpreserve_leaves_a_normal_memfd)
{
	ASSERT_EQ(0, luo_preserve(self->session, self->fd, 1));
	ASSERT_EQ(0, luo_set_event(self->dev, LIVEUPDATE_EVENT_PREPARE));
	ASSERT_EQ(0, luo_set_event(self->dev, LIVEUPDATE_EVENT_CANCEL));
	ASSERT_EQ(0, luo_unpreserve(self->session, 1));
	expect_image_locked(_metadata, self->fd, 0);
}

TEST_F(m, closing_the_session_while_prepared_thaws_the_memfd)
{
	ASSERT_EQ(0, luo_preserve(self->session, self->fd, 1));
	ASSERT_EQ(0, luo_set_event(self->dev, LIVEUPDATE_EVENT_PREPARE));
	close(self->session);
	self->session = -1;
	expect_image_locked(_metadata, self->fd, 0);
}

TEST_F(m, the_same_memfd_twice_is_ebusy)
{
	int other = luo_create_session(self->dev, "memfd-other");

	ASSERT_LE(0, other);
	ASSERT_EQ(0, luo_preserve(self->session, self->fd, 1));
	EXPECT_EQ(-EBUSY, luo_preserve(other, self->fd, 1));
	close(other);
}

/* The same memfd through a second file (reopened via /proc) is EBUSY too:
 * preserving it twice would hand its folios over twice. */
TEST_F(m, the_same_memfd_reopened_is_ebusy)
{
	char path[64];
	int again;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", self->fd);
	again = open(path, O_RDWR);
	ASSERT_LE(0, again);
	ASSERT_EQ(0, luo_preserve(self->session, self->fd, 1));
	EXPECT_EQ(-EBUSY, luo_preserve(self->session, again, 2));
	/* Free again once the first is unpreserved. */
	ASSERT_EQ(0, luo_unpreserve(self->session, 1));
	EXPECT_EQ(0, luo_preserve(self->session, again, 2));
	close(again);
}

/*
 * A file comes back no more capable than it went in: a memfd returns
 * read-write, so only a read-write file of it is taken (EBADF otherwise).
 * A reader can therefore neither get a writable memfd out of an update
 * nor freeze the memfd (nor take its place) under its owner.
 */
TEST_F(m, only_read_write_files_are_taken)
{
	char path[64];
	int ro, wo;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", self->fd);
	ro = open(path, O_RDONLY);
	wo = open(path, O_WRONLY);
	ASSERT_LE(0, ro);
	ASSERT_LE(0, wo);
	EXPECT_EQ(-EBADF, luo_preserve(self->session, ro, 1));
	EXPECT_EQ(-EBADF, luo_preserve(self->session, wo, 2));
	/* The reader's attempt left nothing behind: the owner preserves it. */
	EXPECT_EQ(0, luo_preserve(self->session, self->fd, 3));
	EXPECT_EQ(-EBADF, luo_preserve(self->session, ro, 4));
	close(ro);
	close(wo);
}

/*
 * A memfd is mode 0777: whoever it was shared with can reopen it
 * read-write. Only its owner may preserve it (EPERM otherwise), so a
 * process it was shared with can neither freeze it nor take its memory.
 */
TEST_F(m, only_the_owner_preserves_a_memfd)
{
	int status;
	pid_t pid = fork();

	ASSERT_LE(0, pid);
	if (!pid) {
		int s, own;

		/* Keeps the fds: the device, and root's memfd. */
		if (setresgid(1000, 1000, 1000) || setresuid(1000, 1000, 1000))
			_exit(10);
		s = luo_create_session(self->dev, "shared-with");
		own = luo_memfd("mine", 4096);
		if (s < 0 || own < 0)
			_exit(11);
		if (luo_preserve(s, self->fd, 1) != -EPERM)
			_exit(12);
		_exit(luo_preserve(s, own, 2) ? 13 : 0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	/* Its owner still can. */
	EXPECT_EQ(0, luo_preserve(self->session, self->fd, 1));
}

/* A 1 GiB memfd with two pages of data: PRESERVE_FD, PREPARE and FREEZE
 * spend no memory on the holes (upstream's handler would fill them). */
TEST_F(m, holes_cost_nothing)
{
	long long before, after;
	int sparse = luo_memfd("sparse", 1LL << 30);

	ASSERT_LE(0, sparse);
	ASSERT_EQ(0, luo_fill(sparse, 0, 4096, 2));
	ASSERT_EQ(0, luo_fill(sparse, (1LL << 30) - 4096, 4096, 3));
	before = luo_meminfo_kb("MemFree");
	ASSERT_EQ(0, luo_preserve(self->session, sparse, 2));
	ASSERT_EQ(0, luo_set_event(self->dev, LIVEUPDATE_EVENT_PREPARE));
	ASSERT_EQ(0, luo_set_event(self->dev, LIVEUPDATE_EVENT_FREEZE));
	after = luo_meminfo_kb("MemFree");
	EXPECT_GT(4096, before - after) {
		TH_LOG("PRESERVE_FD+PREPARE+FREEZE used %lld kB", before - after);
	}
	EXPECT_EQ(8192, luo_fd_bytes(sparse));
	ASSERT_EQ(0, luo_set_event(self->dev, LIVEUPDATE_EVENT_CANCEL));
	close(sparse);
}

/*
 * The largest memfd there is (MAX_LFS_FILESIZE bytes, 2^51 pages), with one
 * page at its very end: its last hole ends where a page offset no longer
 * fits a loff_t shift. Root may preserve it (CAP_IPC_LOCK: its size is
 * not charged), and PREPARE and FREEZE take it.
 */
TEST_F(m, the_largest_memfd_is_taken)
{
	int huge = luo_memfd("largest", LLONG_MAX);
	char c = 'z', back = 0;

	ASSERT_LE(0, huge);
	ASSERT_EQ(1, pwrite(huge, &c, 1, LLONG_MAX - 4095));
	ASSERT_EQ(0, luo_preserve(self->session, huge, 2));
	ASSERT_EQ(0, luo_set_event(self->dev, LIVEUPDATE_EVENT_PREPARE));
	ASSERT_EQ(0, luo_set_event(self->dev, LIVEUPDATE_EVENT_FREEZE));
	EXPECT_EQ(4096, luo_fd_bytes(huge));
	ASSERT_EQ(0, luo_set_event(self->dev, LIVEUPDATE_EVENT_CANCEL));
	ASSERT_EQ(0, luo_unpreserve(self->session, 2));
	ASSERT_EQ(1, pread(huge, &back, 1, LLONG_MAX - 4095));
	EXPECT_EQ('z', back);
	close(huge);
}

/* Pages that appear in holes after PREPARE are caught by FREEZE: the
 * debugfs view cannot show it, so this only checks FREEZE accepts them;
 * kexec_memfd_test checks they cross. */
TEST_F(m, pages_after_prepare_are_accepted)
{
	char *map;

	ASSERT_EQ(0, ftruncate(self->fd, 64 * 4096));
	ASSERT_EQ(0, luo_preserve(self->session, self->fd, 1));
	ASSERT_EQ(0, luo_set_event(self->dev, LIVEUPDATE_EVENT_PREPARE));
	map = mmap(NULL, 64 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, self->fd, 0);
	ASSERT_NE(MAP_FAILED, map);
	for (int i = 3; i < 64; i += 2)
		map[i * 4096] = i;
	EXPECT_EQ(0, luo_set_event(self->dev, LIVEUPDATE_EVENT_FREEZE));
	munmap(map, 64 * 4096);
}

/*
 * After FREEZE a page that appeared in a hole would be lost at the kexec:
 * shmem refuses it instead, EPERM for write() and SIGBUS for a fault.
 * Existing pages stay writable. CANCEL lifts it.
 */
TEST_F(m, holes_refuse_new_pages_after_freeze)
{
	int status;
	char c = 'x';
	pid_t pid;
	char *map;

	ASSERT_EQ(0, ftruncate(self->fd, 16 * 4096));
	ASSERT_EQ(0, luo_preserve(self->session, self->fd, 1));
	ASSERT_EQ(0, luo_set_event(self->dev, LIVEUPDATE_EVENT_PREPARE));
	/* Before FREEZE a hole still takes a page; FREEZE catches it. */
	EXPECT_EQ(1, pwrite(self->fd, &c, 1, 5 * 4096));
	ASSERT_EQ(0, luo_set_event(self->dev, LIVEUPDATE_EVENT_FREEZE));
	EXPECT_EQ(-1, pwrite(self->fd, &c, 1, 9 * 4096));
	EXPECT_EQ(EPERM, errno);
	EXPECT_EQ(1, pwrite(self->fd, &c, 1, 0));
	EXPECT_EQ(1, pwrite(self->fd, &c, 1, 5 * 4096 + 1));
	map = mmap(NULL, 16 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, self->fd, 0);
	ASSERT_NE(MAP_FAILED, map);
	map[4096] = 'y';
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		map[10 * 4096] = 'z';
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFSIGNALED(status));
	EXPECT_EQ(SIGBUS, WTERMSIG(status));
	EXPECT_EQ(4 * 4096, luo_fd_bytes(self->fd));
	ASSERT_EQ(0, luo_set_event(self->dev, LIVEUPDATE_EVENT_CANCEL));
	/* A normal memfd again. */
	map[10 * 4096] = 'z';
	EXPECT_EQ(1, pwrite(self->fd, &c, 1, 9 * 4096));
	EXPECT_EQ(6 * 4096, luo_fd_bytes(self->fd));
	munmap(map, 16 * 4096);
}

/* Pinned pages stop a write seal (documented in memfd.rst): from
 * PRESERVE_FD, through PREPARE and CANCEL, until UNPRESERVE_FD. */
TEST_F(m, write_seal_waits_for_unpreserve)
{
	ASSERT_EQ(0, luo_preserve(self->session, self->fd, 1));
	EXPECT_EQ(-1, fcntl(self->fd, F_ADD_SEALS, F_SEAL_WRITE));
	EXPECT_EQ(EBUSY, errno);
	ASSERT_EQ(0, luo_set_event(self->dev, LIVEUPDATE_EVENT_PREPARE));
	EXPECT_EQ(-1, fcntl(self->fd, F_ADD_SEALS, F_SEAL_WRITE));
	EXPECT_EQ(EBUSY, errno);
	EXPECT_EQ(0, fcntl(self->fd, F_ADD_SEALS, F_SEAL_GROW));
	ASSERT_EQ(0, luo_set_event(self->dev, LIVEUPDATE_EVENT_CANCEL));
	EXPECT_EQ(-1, fcntl(self->fd, F_ADD_SEALS, F_SEAL_WRITE));
	EXPECT_EQ(EBUSY, errno);
	ASSERT_EQ(0, luo_unpreserve(self->session, 1));
	EXPECT_EQ(0, fcntl(self->fd, F_ADD_SEALS, F_SEAL_WRITE));
}

TEST_HARNESS_MAIN
