// SPDX-License-Identifier: GPL-2.0
/*
 * Pinned memory counts against RLIMIT_MEMLOCK: a process cannot pin more
 * for an update than it may lock. PRESERVE_FD of a memfd charges its whole
 * size, holes included, to the caller's VmPin (as RDMA charges its pins)
 * and answers ENOMEM past the caller's RLIMIT_MEMLOCK, leaving the memfd
 * as it was. Unpreserving or closing the session gives the charge back,
 * also after the process that was charged has exited; another process has
 * a count of its own; CAP_IPC_LOCK, not uid 0, goes past the limit.
 */
#include "memfd_util.h"
#include "luo_test.h"
#include <linux/capability.h>
#include <sys/resource.h>
#include <sys/socket.h>

#define KiB 1024
#define MiB (1024 * KiB)

static int set_memlock(rlim_t bytes)
{
	struct rlimit r = { .rlim_cur = bytes, .rlim_max = bytes };

	return setrlimit(RLIMIT_MEMLOCK, &r);
}

/* This process's pinned memory, in KiB. */
static unsigned long long vm_pin_kb(void)
{
	return luo_key_u64("/proc/self/status", "VmPin");
}

/* Drops CAP_IPC_LOCK from the effective set: 0 or -1. */
static int drop_ipc_lock(void)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2];

	if (syscall(SYS_capget, &h, d))
		return -1;
	d[CAP_TO_INDEX(CAP_IPC_LOCK)].effective &= ~CAP_TO_MASK(CAP_IPC_LOCK);
	return syscall(SYS_capset, &h, d) ? -1 : 0;
}

/* A memfd of `size` bytes with only its first page written. */
static int sparse_memfd(long long size)
{
	int m = luo_memfd("memlock", size);

	if (m >= 0 && luo_fill(m, 0, 4096, 7)) {
		close(m);
		return -1;
	}
	return m;
}

/* As a user with a 1 MiB RLIMIT_MEMLOCK. 0 if all went as documented. */
static int pins_are_charged(void)
{
	int dev = luo_open(), s, half, big, other, page, again;

	if (dev < 0 || set_memlock(1 * MiB))
		return 1;
	s = luo_create_session(dev, "charged");
	half = sparse_memfd(512 * KiB);
	big = sparse_memfd(768 * KiB);
	other = sparse_memfd(512 * KiB);
	page = sparse_memfd(4 * KiB);
	if (s < 0 || half < 0 || big < 0 || other < 0 || page < 0 || vm_pin_kb() != 0)
		return 2;
	if (luo_preserve(s, half, 1) || vm_pin_kb() != 512)
		return 3;
	/* 512 KiB + 768 KiB: one page written, the holes count all the same. */
	if (luo_preserve(s, big, 2) != -ENOMEM || vm_pin_kb() != 512)
		return 4;
	/* Refused, and left as it was: a normal memfd, in no session. */
	if (ftruncate(big, 4 * KiB) || ftruncate(big, 768 * KiB))
		return 5;
	/* Up to the limit exactly. */
	if (luo_preserve(s, other, 3) || luo_preserve(s, page, 4) != -ENOMEM)
		return 6;
	/* Unpreserving gives the charge back. */
	if (luo_unpreserve(s, 1) || luo_preserve(s, page, 4) || vm_pin_kb() != 516)
		return 7;
	/* The memfd refused before takes its turn now. */
	if (luo_unpreserve(s, 3) || luo_preserve(s, big, 2) || vm_pin_kb() != 772)
		return 8;
	/* So does closing the session: all of the limit is free again. */
	close(s);
	if (vm_pin_kb() != 0)
		return 9;
	s = luo_create_session(dev, "charged-again");
	again = sparse_memfd(1 * MiB);
	if (s < 0 || again < 0 || luo_preserve(s, again, 1))
		return 10;
	return 0;
}

TEST(pins_count_against_rlimit_memlock)
{
	ASSERT_EQ(0, chmod(LUO_DEV, 0666));
	EXPECT_EQ(0, luo_as_user(1000, pins_are_charged));
	chmod(LUO_DEV, 0600);
}

static int send_fd(int sock, int fd)
{
	char c = 0, ctl[CMSG_SPACE(sizeof(int))] = { 0 };
	struct iovec iov = { .iov_base = &c, .iov_len = 1 };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof(ctl),
	};
	struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);

	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	return sendmsg(sock, &msg, 0) == 1 ? 0 : -1;
}

static int recv_fd(int sock)
{
	char c, ctl[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { .iov_base = &c, .iov_len = 1 };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof(ctl),
	};
	struct cmsghdr *cm;
	int fd;

	if (recvmsg(sock, &msg, 0) != 1 || !(cm = CMSG_FIRSTHDR(&msg)) ||
	    cm->cmsg_type != SCM_RIGHTS)
		return -1;
	memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	return fd;
}

/*
 * A child with a 1 MiB limit preserves 768 KiB and hands its session to
 * this process, which has a 1 MiB limit of its own, and exits. The charge
 * stays with the child (this process preserves 1 MiB), and goes when this
 * process closes the session, after the child is gone.
 */
TEST(the_charge_is_the_preservers)
{
	int sv[2], session, dev = luo_open(), s, m, status;
	pid_t child;

	ASSERT_LE(0, dev);
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	child = fork();
	ASSERT_LE(0, child);
	if (!child) {
		if (drop_ipc_lock() || set_memlock(1 * MiB))
			_exit(1);
		s = luo_create_session(dev, "handed");
		m = sparse_memfd(768 * KiB);
		if (s < 0 || m < 0 || luo_preserve(s, m, 1) || vm_pin_kb() != 768)
			_exit(2);
		_exit(send_fd(sv[1], s) ? 3 : 0);
	}
	close(sv[1]);
	session = recv_fd(sv[0]);
	ASSERT_EQ(child, waitpid(child, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(0, WEXITSTATUS(status));
	ASSERT_LE(0, session);
	/* The child's pins are not this process's. */
	ASSERT_EQ(0, drop_ipc_lock());
	ASSERT_EQ(0, set_memlock(1 * MiB));
	EXPECT_EQ(0, vm_pin_kb());
	s = luo_create_session(dev, "mine");
	m = sparse_memfd(1 * MiB);
	ASSERT_LE(0, s);
	ASSERT_LE(0, m);
	EXPECT_EQ(0, luo_preserve(s, m, 1));
	EXPECT_EQ(1024, vm_pin_kb());
	/* Given back to the exited child's count: no report, nothing here. */
	close(session);
	EXPECT_EQ(1024, vm_pin_kb());
	close(s);
	EXPECT_EQ(0, vm_pin_kb());
	close(sv[0]);
	close(dev);
}

/* Root goes past the limit by CAP_IPC_LOCK; without it, root is refused. */
TEST(cap_ipc_lock_goes_past_it)
{
	int dev = luo_open(), s = luo_create_session(dev, "root"), a, b;

	a = sparse_memfd(1 * MiB);
	b = sparse_memfd(1 * MiB);
	ASSERT_LE(0, dev);
	ASSERT_LE(0, s);
	ASSERT_LE(0, a);
	ASSERT_LE(0, b);
	ASSERT_EQ(0, set_memlock(0));
	EXPECT_EQ(0, luo_preserve(s, a, 1));
	EXPECT_EQ(1024, vm_pin_kb());
	ASSERT_EQ(0, drop_ipc_lock());
	EXPECT_EQ(-ENOMEM, luo_preserve(s, b, 2));
	EXPECT_EQ(1024, vm_pin_kb());
	close(s);
	EXPECT_EQ(0, vm_pin_kb());
}

TEST_HARNESS_MAIN
