// SPDX-License-Identifier: GPL-2.0
/*
 * The global state machine: every event in every state reachable without
 * a kexec, with its documented errno; CAP_SYS_ADMIN for SET_EVENT;
 * PREPARE publishes the handover in KHO and CANCEL withdraws it.
 */
#include "luo_test.h"

#include <sys/stat.h>
#include <sys/wait.h>

#define KHO_OUT "/sys/kernel/debug/kho/out/sub_fdts/luo-rs"

static const unsigned int events[] = {
	LIVEUPDATE_EVENT_PREPARE, LIVEUPDATE_EVENT_FREEZE,
	LIVEUPDATE_EVENT_CANCEL, LIVEUPDATE_EVENT_FINISH,
};

static int published(void)
{
	struct stat st;

	return stat(KHO_OUT, &st) == 0;
}

FIXTURE(luo) {
	int fd;
};

FIXTURE_SETUP(luo)
{
	self->fd = luo_open();
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(LIVEUPDATE_STATE_NORMAL, luo_get_state(self->fd));
}

FIXTURE_TEARDOWN(luo)
{
	/* Leave the system in NORMAL for the next test. */
	luo_set_event(self->fd, LIVEUPDATE_EVENT_CANCEL);
	close(self->fd);
}

/* Moves from NORMAL to `state` with legal events. */
static int reach(int fd, int state)
{
	if (state >= LIVEUPDATE_STATE_PREPARED && luo_set_event(fd, LIVEUPDATE_EVENT_PREPARE))
		return -1;
	if (state >= LIVEUPDATE_STATE_FROZEN && luo_set_event(fd, LIVEUPDATE_EVENT_FREEZE))
		return -1;
	return luo_get_state(fd) == state ? 0 : -1;
}

/* Every state x every event, against the table in the uAPI header. */
TEST_F(luo, every_state_times_every_event)
{
	static const struct {
		int from;
		unsigned int event;
		int ret, to;
	} table[] = {
		{ LIVEUPDATE_STATE_NORMAL, LIVEUPDATE_EVENT_PREPARE, 0, LIVEUPDATE_STATE_PREPARED },
		{ LIVEUPDATE_STATE_NORMAL, LIVEUPDATE_EVENT_FREEZE, -EBUSY, LIVEUPDATE_STATE_NORMAL },
		{ LIVEUPDATE_STATE_NORMAL, LIVEUPDATE_EVENT_CANCEL, -EBUSY, LIVEUPDATE_STATE_NORMAL },
		{ LIVEUPDATE_STATE_NORMAL, LIVEUPDATE_EVENT_FINISH, -EBUSY, LIVEUPDATE_STATE_NORMAL },
		{ LIVEUPDATE_STATE_PREPARED, LIVEUPDATE_EVENT_PREPARE, -EBUSY, LIVEUPDATE_STATE_PREPARED },
		{ LIVEUPDATE_STATE_PREPARED, LIVEUPDATE_EVENT_FREEZE, 0, LIVEUPDATE_STATE_FROZEN },
		{ LIVEUPDATE_STATE_PREPARED, LIVEUPDATE_EVENT_CANCEL, 0, LIVEUPDATE_STATE_NORMAL },
		{ LIVEUPDATE_STATE_PREPARED, LIVEUPDATE_EVENT_FINISH, -EBUSY, LIVEUPDATE_STATE_PREPARED },
		{ LIVEUPDATE_STATE_FROZEN, LIVEUPDATE_EVENT_PREPARE, -EBUSY, LIVEUPDATE_STATE_FROZEN },
		{ LIVEUPDATE_STATE_FROZEN, LIVEUPDATE_EVENT_FREEZE, -EBUSY, LIVEUPDATE_STATE_FROZEN },
		{ LIVEUPDATE_STATE_FROZEN, LIVEUPDATE_EVENT_CANCEL, 0, LIVEUPDATE_STATE_NORMAL },
		{ LIVEUPDATE_STATE_FROZEN, LIVEUPDATE_EVENT_FINISH, -EBUSY, LIVEUPDATE_STATE_FROZEN },
	};

	for (unsigned int i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		ASSERT_EQ(0, reach(self->fd, table[i].from));
		EXPECT_EQ(table[i].ret, luo_set_event(self->fd, table[i].event)) {
			TH_LOG("state %d event %u", table[i].from, table[i].event);
		}
		EXPECT_EQ(table[i].to, luo_get_state(self->fd));
		luo_set_event(self->fd, LIVEUPDATE_EVENT_CANCEL);
		ASSERT_EQ(LIVEUPDATE_STATE_NORMAL, luo_get_state(self->fd));
	}
}

/* /sys/kernel/liveupdate/state names the state in one word. */
TEST_F(luo, sysfs_state)
{
	static const char *const names[] = { "", "normal", "prepared", "frozen" };
	char buf[32];

	for (int state = LIVEUPDATE_STATE_NORMAL; state <= LIVEUPDATE_STATE_FROZEN; state++) {
		ASSERT_EQ(0, reach(self->fd, state));
		ASSERT_EQ(0, luo_read_file("/sys/kernel/liveupdate/state", buf, sizeof(buf)));
		EXPECT_STREQ(names[state], buf);
		luo_set_event(self->fd, LIVEUPDATE_EVENT_CANCEL);
	}
}

TEST_F(luo, unknown_events_are_eopnotsupp)
{
	unsigned int bad[] = { 0, 5, 0x100, 0xffffffff };

	for (int state = LIVEUPDATE_STATE_NORMAL; state <= LIVEUPDATE_STATE_FROZEN; state++) {
		ASSERT_EQ(0, reach(self->fd, state));
		for (unsigned int i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			EXPECT_EQ(-EOPNOTSUPP, luo_set_event(self->fd, bad[i]));
			EXPECT_EQ(state, luo_get_state(self->fd));
		}
		luo_set_event(self->fd, LIVEUPDATE_EVENT_CANCEL);
	}
}

TEST_F(luo, set_event_checks_the_struct)
{
	struct {
		struct liveupdate_ioctl_set_event ev;
		unsigned char tail[8];
	} big = { .ev = { .event = LIVEUPDATE_EVENT_PREPARE } };

	big.ev.size = sizeof(big.ev) - 1;
	EXPECT_EQ(-EINVAL, luo_ioctl(self->fd, LIVEUPDATE_IOCTL_SET_EVENT, &big));
	big.ev.size = sizeof(big);
	big.tail[7] = 1;
	EXPECT_EQ(-E2BIG, luo_ioctl(self->fd, LIVEUPDATE_IOCTL_SET_EVENT, &big));
	EXPECT_EQ(LIVEUPDATE_STATE_NORMAL, luo_get_state(self->fd));
	big.tail[7] = 0;
	EXPECT_EQ(0, luo_ioctl(self->fd, LIVEUPDATE_IOCTL_SET_EVENT, &big));
	EXPECT_EQ(LIVEUPDATE_STATE_PREPARED, luo_get_state(self->fd));
	EXPECT_EQ(-EFAULT, luo_ioctl(self->fd, LIVEUPDATE_IOCTL_SET_EVENT, NULL));
}

/* PREPARE registers the blob with KHO; CANCEL withdraws it, from either
 * PREPARED or FROZEN; a second round works the same. */
TEST_F(luo, prepare_publishes_and_cancel_withdraws)
{
	for (int round = 0; round < 2; round++) {
		EXPECT_FALSE(published());
		ASSERT_EQ(0, luo_set_event(self->fd, LIVEUPDATE_EVENT_PREPARE));
		EXPECT_TRUE(published());
		if (round) {
			ASSERT_EQ(0, luo_set_event(self->fd, LIVEUPDATE_EVENT_FREEZE));
			EXPECT_TRUE(published());
		}
		ASSERT_EQ(0, luo_set_event(self->fd, LIVEUPDATE_EVENT_CANCEL));
		EXPECT_FALSE(published());
	}
}

/* The state is global: every session sees it. */
TEST_F(luo, state_is_global)
{
	int other = luo_open();

	ASSERT_LE(0, other);
	ASSERT_EQ(0, luo_set_event(self->fd, LIVEUPDATE_EVENT_PREPARE));
	EXPECT_EQ(LIVEUPDATE_STATE_PREPARED, luo_get_state(other));
	EXPECT_EQ(0, luo_set_event(other, LIVEUPDATE_EVENT_CANCEL));
	EXPECT_EQ(LIVEUPDATE_STATE_NORMAL, luo_get_state(self->fd));
	close(other);
}

/* Without CAP_SYS_ADMIN: GET_STATE works, SET_EVENT is EPERM and changes
 * nothing, in every state. */
TEST_F(luo, unprivileged_set_event_is_eperm)
{
	for (int state = LIVEUPDATE_STATE_NORMAL; state <= LIVEUPDATE_STATE_FROZEN; state++) {
		int status;
		pid_t pid;

		ASSERT_EQ(0, reach(self->fd, state));
		pid = fork();
		ASSERT_LE(0, pid);
		if (pid == 0) {
			/* Leaving uid 0 drops every capability. */
			if (setgid(65534) || setuid(65534))
				_exit(10);
			if (luo_get_state(self->fd) != state)
				_exit(11);
			for (unsigned int i = 0; i < 4; i++)
				if (luo_set_event(self->fd, events[i]) != -EPERM)
					_exit(12 + i);
			_exit(0);
		}
		ASSERT_EQ(pid, waitpid(pid, &status, 0));
		EXPECT_EQ(0, WEXITSTATUS(status)) {
			TH_LOG("state %d: child exit %d", state, WEXITSTATUS(status));
		}
		EXPECT_EQ(state, luo_get_state(self->fd));
		luo_set_event(self->fd, LIVEUPDATE_EVENT_CANCEL);
	}
}

/* Closing every session does not undo a PREPARE: the state is global. */
TEST_F(luo, prepare_survives_closing_the_orchestrator_fd)
{
	int other = luo_open();

	ASSERT_LE(0, other);
	ASSERT_EQ(0, luo_set_event(other, LIVEUPDATE_EVENT_PREPARE));
	close(other);
	EXPECT_EQ(LIVEUPDATE_STATE_PREPARED, luo_get_state(self->fd));
}

TEST_HARNESS_MAIN
