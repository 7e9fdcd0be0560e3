// SPDX-License-Identifier: GPL-2.0
/*
 * /dev/liveupdate basics: opening (every open is a session, not
 * exclusive), release on close, GET_STATE, and the calling convention of
 * the extensible ioctl structs.
 */
#include "luo_test.h"

#include <sys/mman.h>
#include <sys/wait.h>

#define MANY 64

TEST(open_close)
{
	int fd = luo_open();

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, close(fd));
}

/* Opening is not exclusive: many sessions at once, each counted, each
 * released when its fd is closed. */
TEST(many_concurrent_opens)
{
	unsigned long long before = luo_status_u64("sessions");
	int fds[MANY];
	int i;

	ASSERT_NE(~0ULL, before);
	for (i = 0; i < MANY; i++) {
		fds[i] = luo_open();
		ASSERT_LE(0, fds[i]) {
			TH_LOG("open %d: %s", i, strerror(errno));
		}
	}
	EXPECT_EQ(before + MANY, luo_status_u64("sessions"));
	for (i = 0; i < MANY; i++)
		ASSERT_EQ(0, close(fds[i]));
	EXPECT_EQ(before, luo_status_u64("sessions"));
}

/* The last reference, not close(), ends a session: a dup keeps it. */
TEST(session_lives_until_last_reference)
{
	unsigned long long before = luo_status_u64("sessions");
	int fd = luo_open(), dup_fd;

	ASSERT_LE(0, fd);
	dup_fd = dup(fd);
	ASSERT_LE(0, dup_fd);
	ASSERT_EQ(0, close(fd));
	EXPECT_EQ(before + 1, luo_status_u64("sessions"));
	EXPECT_EQ(LIVEUPDATE_STATE_NORMAL, luo_get_state(dup_fd));
	ASSERT_EQ(0, close(dup_fd));
	EXPECT_EQ(before, luo_status_u64("sessions"));
}

/* A process that exits without closing releases its sessions. */
TEST(exit_releases_sessions)
{
	unsigned long long before = luo_status_u64("sessions");
	int status;
	pid_t pid = fork();

	ASSERT_LE(0, pid);
	if (pid == 0) {
		for (int i = 0; i < 8; i++)
			if (luo_open() < 0)
				_exit(1);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_EQ(0, WEXITSTATUS(status));
	EXPECT_EQ(before, luo_status_u64("sessions"));
}

TEST(get_state_is_normal)
{
	int fd = luo_open();

	ASSERT_LE(0, fd);
	EXPECT_EQ(LIVEUPDATE_STATE_NORMAL, luo_get_state(fd));
	close(fd);
}

TEST(unknown_ioctls_are_enotty)
{
	unsigned long cmds[] = {
		_IO(LIVEUPDATE_IOCTL_TYPE, 0x7f),
		_IO(LIVEUPDATE_IOCTL_TYPE, 0xff),
		_IO('X', LIVEUPDATE_CMD_GET_STATE),
		_IOR(LIVEUPDATE_IOCTL_TYPE, LIVEUPDATE_CMD_GET_STATE, int),
	};
	struct liveupdate_ioctl_get_state st = { .size = sizeof(st) };
	int fd = luo_open();

	ASSERT_LE(0, fd);
	for (unsigned int i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		EXPECT_EQ(-ENOTTY, luo_ioctl(fd, cmds[i], &st)) {
			TH_LOG("cmd %#lx", cmds[i]);
		}
	}
	close(fd);
}

/* size below the struct's first version: EINVAL, nothing written. */
TEST(size_too_small_is_einval)
{
	struct liveupdate_ioctl_get_state st;
	int fd = luo_open();

	ASSERT_LE(0, fd);
	for (unsigned int size = 0; size < sizeof(st); size++) {
		st.size = size;
		st.state = 0xdead;
		EXPECT_EQ(-EINVAL, luo_ioctl(fd, LIVEUPDATE_IOCTL_GET_STATE, &st));
		EXPECT_EQ(0xdead, st.state);
	}
	close(fd);
}

/* A newer caller's larger struct works when the extra bytes are zero. */
TEST(larger_struct_with_zero_tail)
{
	struct {
		struct liveupdate_ioctl_get_state st;
		unsigned char tail[100];
	} big;
	int fd = luo_open();

	ASSERT_LE(0, fd);
	memset(&big, 0, sizeof(big));
	big.st.size = sizeof(big);
	ASSERT_EQ(0, luo_ioctl(fd, LIVEUPDATE_IOCTL_GET_STATE, &big));
	EXPECT_EQ(LIVEUPDATE_STATE_NORMAL, big.st.state);
	/* Only the kernel's part was written back. */
	for (unsigned int i = 0; i < sizeof(big.tail); i++)
		ASSERT_EQ(0, big.tail[i]);
	close(fd);
}

/* ... and E2BIG when any of them is not, wherever it is. */
TEST(larger_struct_with_nonzero_tail_is_e2big)
{
	struct {
		struct liveupdate_ioctl_get_state st;
		unsigned char tail[200];
	} big;
	int fd = luo_open();

	ASSERT_LE(0, fd);
	for (unsigned int pos = 0; pos < sizeof(big.tail); pos += 13) {
		memset(&big, 0, sizeof(big));
		big.st.size = sizeof(big);
		big.st.state = 0xdead;
		big.tail[pos] = 1;
		EXPECT_EQ(-E2BIG, luo_ioctl(fd, LIVEUPDATE_IOCTL_GET_STATE, &big)) {
			TH_LOG("pos %u", pos);
		}
		EXPECT_EQ(0xdead, big.st.state);
	}
	close(fd);
}

TEST(size_above_a_page_is_e2big)
{
	static unsigned char page[8192];
	struct liveupdate_ioctl_get_state *st = (void *)page;
	int fd = luo_open();

	ASSERT_LE(0, fd);
	st->size = 4097;
	EXPECT_EQ(-E2BIG, luo_ioctl(fd, LIVEUPDATE_IOCTL_GET_STATE, st));
	st->size = 0xffffffff;
	EXPECT_EQ(-E2BIG, luo_ioctl(fd, LIVEUPDATE_IOCTL_GET_STATE, st));
	st->size = 4096;
	EXPECT_EQ(0, luo_ioctl(fd, LIVEUPDATE_IOCTL_GET_STATE, st));
	close(fd);
}

/* Unreadable or unwritable memory: EFAULT, never a crash. */
TEST(bad_pointers_are_efault)
{
	struct liveupdate_ioctl_get_state *st;
	int fd = luo_open();
	char *map;

	ASSERT_LE(0, fd);
	EXPECT_EQ(-EFAULT, luo_ioctl(fd, LIVEUPDATE_IOCTL_GET_STATE, NULL));
	EXPECT_EQ(-EFAULT, luo_ioctl(fd, LIVEUPDATE_IOCTL_GET_STATE, (void *)-4096L));

	/* The declared size runs into an unmapped page. */
	map = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, map);
	ASSERT_EQ(0, munmap(map + 4096, 4096));
	st = (void *)(map + 4096 - sizeof(*st));
	memset(st, 0, sizeof(*st));
	st->size = sizeof(*st) + 16;
	EXPECT_EQ(-EFAULT, luo_ioctl(fd, LIVEUPDATE_IOCTL_GET_STATE, st));

	/* Read-only memory cannot take the answer. */
	st = (void *)map;
	st->size = sizeof(*st);
	ASSERT_EQ(0, mprotect(map, 4096, PROT_READ));
	EXPECT_EQ(-EFAULT, luo_ioctl(fd, LIVEUPDATE_IOCTL_GET_STATE, st));
	munmap(map, 4096);
	close(fd);
}

TEST_HARNESS_MAIN
