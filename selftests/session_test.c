// SPDX-License-Identifier: GPL-2.0
/*
 * Sessions: CREATE_SESSION, names (unique, length limit, GET_NAME,
 * SET_NAME), lifetime independent of the creating fd, fd passing with
 * SCM_RIGHTS, and the state rules for creating and naming.
 */
#include "luo_test.h"

#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>

FIXTURE(dev) {
	int fd;
	unsigned long long sessions;
};

FIXTURE_SETUP(dev)
{
	self->fd = luo_open();
	ASSERT_LE(0, self->fd);
	self->sessions = luo_status_u64("sessions");
}

FIXTURE_TEARDOWN(dev)
{
	luo_set_event(self->fd, LIVEUPDATE_EVENT_CANCEL);
	close(self->fd);
}

TEST_F(dev, create_returns_a_named_session_fd)
{
	char name[LIVEUPDATE_SESSION_NAME_LENGTH];
	int s = luo_create_session(self->fd, "vm-1");

	ASSERT_LE(0, s);
	EXPECT_NE(self->fd, s);
	EXPECT_EQ(FD_CLOEXEC, fcntl(s, F_GETFD) & FD_CLOEXEC);
	ASSERT_EQ(0, luo_get_name(s, name));
	EXPECT_STREQ("vm-1", name);
	EXPECT_EQ(self->sessions + 1, luo_status_u64("sessions"));
	close(s);
	EXPECT_EQ(self->sessions, luo_status_u64("sessions"));
}

/* /proc names a session fd as upstream does: some clients look for it. */
TEST_F(dev, proc_shows_the_session_name)
{
	char path[64], link[128];
	int s = luo_create_session(self->fd, "vm-proc");
	ssize_t n;

	ASSERT_LE(0, s);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", s);
	n = readlink(path, link, sizeof(link) - 1);
	ASSERT_LT(0, n);
	link[n] = 0;
	EXPECT_STREQ("anon_inode:[luo_session] vm-proc", link);
	close(s);
}

/* An agent creates a session, closes the device and keeps the session. */
TEST_F(dev, session_outlives_the_device_fd)
{
	char name[LIVEUPDATE_SESSION_NAME_LENGTH];
	int dev = luo_open(), s;

	ASSERT_LE(0, dev);
	s = luo_create_session(dev, "agent");
	ASSERT_LE(0, s);
	ASSERT_EQ(0, close(dev));
	ASSERT_EQ(0, luo_get_name(s, name));
	EXPECT_STREQ("agent", name);
	/* The device's own session is gone, the created one is not. */
	EXPECT_EQ(self->sessions + 1, luo_status_u64("sessions"));
	EXPECT_EQ(-EEXIST, luo_create_session(self->fd, "agent"));
	close(s);
}

TEST_F(dev, names_are_unique_until_closed)
{
	int a = luo_create_session(self->fd, "dup"), b;

	ASSERT_LE(0, a);
	EXPECT_EQ(-EEXIST, luo_create_session(self->fd, "dup"));
	close(a);
	b = luo_create_session(self->fd, "dup");
	EXPECT_LE(0, b);
	close(b);
}

/* Two processes asking for the same name: the second gets EEXIST. */
TEST_F(dev, same_name_in_two_processes)
{
	int ready[2], done[2], status;
	char c;
	pid_t pid;

	ASSERT_EQ(0, pipe(ready));
	ASSERT_EQ(0, pipe(done));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		int dev = luo_open();
		int s = dev < 0 ? -1 : luo_create_session(dev, "shared");

		c = s >= 0 ? 'y' : 'n';
		if (write(ready[1], &c, 1) != 1 || read(done[0], &c, 1) != 1)
			_exit(2);
		_exit(s >= 0 ? 0 : 1);
	}
	ASSERT_EQ(1, read(ready[0], &c, 1));
	ASSERT_EQ('y', c);
	EXPECT_EQ(-EEXIST, luo_create_session(self->fd, "shared"));
	ASSERT_EQ(1, write(done[1], "x", 1));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(0, WEXITSTATUS(status));
	/* The child exited: its session and name are gone. */
	int s = luo_create_session(self->fd, "shared");
	EXPECT_LE(0, s);
	close(s);
}

TEST_F(dev, name_length_limit)
{
	struct liveupdate_ioctl_create_session cs = { .size = sizeof(cs) };
	char longest[LIVEUPDATE_SESSION_NAME_LENGTH], name[LIVEUPDATE_SESSION_NAME_LENGTH];
	int s;

	memset(longest, 'n', sizeof(longest) - 1);
	longest[sizeof(longest) - 1] = 0;
	s = luo_create_session(self->fd, longest);
	ASSERT_LE(0, s);
	ASSERT_EQ(0, luo_get_name(s, name));
	EXPECT_STREQ(longest, name);
	close(s);

	/* 64 bytes without a NUL: too long. */
	memset(cs.name, 'x', sizeof(cs.name));
	EXPECT_EQ(-EINVAL, luo_ioctl(self->fd, LIVEUPDATE_IOCTL_CREATE_SESSION, &cs));
	/* Empty. */
	memset(cs.name, 0, sizeof(cs.name));
	EXPECT_EQ(-EINVAL, luo_ioctl(self->fd, LIVEUPDATE_IOCTL_CREATE_SESSION, &cs));
	EXPECT_EQ(self->sessions, luo_status_u64("sessions"));
}

TEST_F(dev, set_name_on_an_opened_session)
{
	char name[LIVEUPDATE_SESSION_NAME_LENGTH];
	int other = luo_create_session(self->fd, "taken");

	ASSERT_LE(0, other);
	ASSERT_EQ(0, luo_get_name(self->fd, name));
	EXPECT_STREQ("", name);
	ASSERT_EQ(0, luo_set_name(self->fd, "mine"));
	ASSERT_EQ(0, luo_get_name(self->fd, name));
	EXPECT_STREQ("mine", name);
	/* Setting the name it has is fine; taking another's is not. */
	EXPECT_EQ(0, luo_set_name(self->fd, "mine"));
	EXPECT_EQ(-EEXIST, luo_set_name(self->fd, "taken"));
	EXPECT_EQ(-EINVAL, luo_set_name(self->fd, ""));
	ASSERT_EQ(0, luo_get_name(self->fd, name));
	EXPECT_STREQ("mine", name);
	/* Renaming frees the old name. */
	EXPECT_EQ(0, luo_set_name(other, "renamed"));
	EXPECT_EQ(0, luo_set_name(self->fd, "taken"));
	close(other);
}

TEST_F(dev, reserved_fields_must_be_zero)
{
	struct liveupdate_session_get_name gn = { .size = sizeof(gn), .reserved = 1 };
	struct liveupdate_session_set_name sn = { .size = sizeof(sn), .reserved = 1, .name = "x" };

	EXPECT_EQ(-EINVAL, luo_ioctl(self->fd, LIVEUPDATE_SESSION_GET_NAME, &gn));
	EXPECT_EQ(-EINVAL, luo_ioctl(self->fd, LIVEUPDATE_SESSION_SET_NAME, &sn));
}

TEST_F(dev, device_commands_on_a_session_fd_are_enotty)
{
	struct liveupdate_ioctl_create_session cs = { .size = sizeof(cs), .name = "nested" };
	int s = luo_create_session(self->fd, "plain");

	ASSERT_LE(0, s);
	EXPECT_EQ(-ENOTTY, luo_get_state(s));
	EXPECT_EQ(-ENOTTY, luo_set_event(s, LIVEUPDATE_EVENT_PREPARE));
	EXPECT_EQ(-ENOTTY, luo_ioctl(s, LIVEUPDATE_IOCTL_CREATE_SESSION, &cs));
	EXPECT_EQ(-ENOTTY, luo_ioctl(s, _IO(LIVEUPDATE_IOCTL_TYPE, 0xff), &cs));
	EXPECT_EQ(LIVEUPDATE_STATE_NORMAL, luo_get_state(self->fd));
	close(s);
}

TEST_F(dev, no_new_sessions_or_names_while_prepared_or_frozen)
{
	int s = luo_create_session(self->fd, "before");

	ASSERT_LE(0, s);
	for (int step = 0; step < 2; step++) {
		unsigned int ev = step ? LIVEUPDATE_EVENT_FREEZE : LIVEUPDATE_EVENT_PREPARE;

		ASSERT_EQ(0, luo_set_event(self->fd, ev));
		EXPECT_EQ(-EBUSY, luo_create_session(self->fd, "during"));
		EXPECT_EQ(-EBUSY, luo_set_name(s, "renamed"));
		EXPECT_EQ(-EBUSY, luo_set_name(self->fd, "named"));
	}
	ASSERT_EQ(0, luo_set_event(self->fd, LIVEUPDATE_EVENT_CANCEL));
	EXPECT_EQ(0, luo_set_name(s, "renamed"));
	int t = luo_create_session(self->fd, "during");
	EXPECT_LE(0, t);
	close(t);
	close(s);
}

/* A session fd handed to another process with SCM_RIGHTS works there. */
TEST_F(dev, session_fd_passed_with_scm_rights)
{
	int sv[2], status, s = luo_create_session(self->fd, "passed");
	char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
	struct iovec iov = { .iov_base = "f", .iov_len = 1 };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
	};
	struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
	pid_t pid;

	ASSERT_LE(0, s);
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		char name[LIVEUPDATE_SESSION_NAME_LENGTH], b;
		struct iovec riov = { .iov_base = &b, .iov_len = 1 };
		char rbuf[CMSG_SPACE(sizeof(int))];
		struct msghdr r = {
			.msg_iov = &riov, .msg_iovlen = 1,
			.msg_control = rbuf, .msg_controllen = sizeof(rbuf),
		};
		int got;

		close(sv[0]);
		if (recvmsg(sv[1], &r, 0) != 1 || !CMSG_FIRSTHDR(&r))
			_exit(1);
		memcpy(&got, CMSG_DATA(CMSG_FIRSTHDR(&r)), sizeof(int));
		if (luo_get_name(got, name) || strcmp(name, "passed"))
			_exit(2);
		if (luo_set_name(got, "renamed-by-child"))
			_exit(3);
		_exit(0);
	}
	close(sv[1]);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &s, sizeof(int));
	ASSERT_EQ(1, sendmsg(sv[0], &msg, 0));
	/* Our copy may go: the child holds a reference. */
	close(s);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(0, WEXITSTATUS(status));
	close(sv[0]);
	/* Both references are gone now: so is the session and its name. */
	EXPECT_EQ(self->sessions, luo_status_u64("sessions"));
	s = luo_create_session(self->fd, "renamed-by-child");
	EXPECT_LE(0, s);
	close(s);
}

/*
 * A session fd given to another user (as luod gives its sessions): that
 * user may not rename it, so it cannot move the owner's files under a
 * name another claimant would retrieve after the update.
 */
TEST_F(dev, only_the_owner_renames_a_session)
{
	char name[LIVEUPDATE_SESSION_NAME_LENGTH];
	int s = luo_create_session(self->fd, "given"), status;
	pid_t pid;

	ASSERT_LE(0, s);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		if (luo_become(1000))
			_exit(10);
		if (luo_get_name(s, name) || strcmp(name, "given"))
			_exit(11);
		if (luo_set_name(s, "taken-over") != -EPERM)
			_exit(12);
		if (luo_set_name(s, "given") != -EPERM)
			_exit(13);
		/* Nor name the unnamed session of root's open(). */
		if (luo_set_name(self->fd, "named-by-other") != -EPERM)
			_exit(14);
		_exit(luo_get_name(s, name) || strcmp(name, "given") ? 15 : 0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	/* The owner still may. */
	EXPECT_EQ(0, luo_set_name(s, "renamed-by-owner"));
	EXPECT_EQ(0, luo_get_name(s, name));
	EXPECT_STREQ("renamed-by-owner", name);
	close(s);
	/* CAP_SYS_ADMIN may rename another user's session. */
	ASSERT_EQ(0, seteuid(1000));
	s = luo_create_session(self->fd, "users");
	ASSERT_EQ(0, seteuid(0));
	ASSERT_LE(0, s);
	EXPECT_EQ(0, luo_set_name(s, "renamed-by-admin"));
	EXPECT_EQ(0, luo_get_name(s, name));
	EXPECT_STREQ("renamed-by-admin", name);
	close(s);
}

/* If the answer cannot be written, no fd and no session are left. */
TEST_F(dev, create_into_read_only_memory_leaks_nothing)
{
	struct liveupdate_ioctl_create_session *cs;
	void *map = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int probe;

	ASSERT_NE(MAP_FAILED, map);
	cs = map;
	cs->size = sizeof(*cs);
	strcpy((char *)cs->name, "ro");
	ASSERT_EQ(0, mprotect(map, 4096, PROT_READ));
	probe = dup(0);
	ASSERT_LE(0, probe);
	close(probe);
	EXPECT_EQ(-EFAULT, luo_ioctl(self->fd, LIVEUPDATE_IOCTL_CREATE_SESSION, cs));
	/* The next fd number is still free. */
	EXPECT_EQ(probe, dup(0));
	close(probe);
	/* The session's release may be deferred until we return to user. */
	usleep(10000);
	EXPECT_EQ(self->sessions, luo_status_u64("sessions"));
	probe = luo_create_session(self->fd, "ro");
	EXPECT_LE(0, probe);
	close(probe);
	munmap(map, 4096);
}

TEST_F(dev, many_sessions)
{
	int fds[200];
	char name[32];

	for (int i = 0; i < 200; i++) {
		snprintf(name, sizeof(name), "many-%d", i);
		fds[i] = luo_create_session(self->fd, name);
		ASSERT_LE(0, fds[i]) {
			TH_LOG("session %d: %s", i, strerror(-fds[i]));
		}
	}
	EXPECT_EQ(self->sessions + 200, luo_status_u64("sessions"));
	for (int i = 0; i < 200; i++)
		close(fds[i]);
	EXPECT_EQ(self->sessions, luo_status_u64("sessions"));
}

TEST_HARNESS_MAIN
