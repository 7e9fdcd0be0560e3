// SPDX-License-Identifier: GPL-2.0
/*
 * The subsystem API and run-time (un)registration, through the test
 * subsystem and the test handler (debugfs liveupdate/test-control): which
 * registrations luo-rs refuses and with what errno, that PREPARE, FREEZE
 * and CANCEL reach the subsystem, and that a failing subsystem rolls the
 * whole update back.
 */
#include "luo_test.h"

FIXTURE(sub) {
	int dev;
};

FIXTURE_SETUP(sub)
{
	self->dev = luo_open();
	ASSERT_LE(0, self->dev);
	ASSERT_EQ(0, luo_control("fail none"));
	ASSERT_EQ(0, luo_control("value 0x5000"));
	ASSERT_EQ(0, luo_control("register-subsystem"));
}

FIXTURE_TEARDOWN(sub)
{
	luo_set_event(self->dev, LIVEUPDATE_EVENT_CANCEL);
	luo_control("fail none");
	luo_control("unregister-subsystem");
	close(self->dev);
}

/* The subsystem's line in the debugfs status, or "" if it has none. */
static const char *subsystem_line(void)
{
	static char buf[4096];
	char *line;

	if (luo_read_all(LUO_STATUS, buf, sizeof(buf)) < 0)
		return "";
	line = strstr(buf, "subsystem luo-rs,test-subsystem-v1:");
	if (!line)
		return "";
	line[strcspn(line, "\n")] = 0;
	return line;
}

TEST_F(sub, registering_twice_is_eexist)
{
	EXPECT_EQ(1, luo_control_u64("subsystem"));
	EXPECT_EQ(-EEXIST, luo_control("register-subsystem"));
	EXPECT_EQ(0, luo_control("unregister-subsystem"));
	EXPECT_EQ(-ENOENT, luo_control("unregister-subsystem"));
	EXPECT_EQ(0, luo_control("register-subsystem"));
}

TEST_F(sub, prepare_freeze_cancel_reach_the_subsystem)
{
	unsigned long long prepares = luo_control_u64("prepares");
	unsigned long long freezes = luo_control_u64("freezes");
	unsigned long long cancels = luo_control_u64("cancels");

	EXPECT_STREQ("subsystem luo-rs,test-subsystem-v1: registered", subsystem_line());
	ASSERT_EQ(0, luo_set_event(self->dev, LIVEUPDATE_EVENT_PREPARE));
	EXPECT_EQ(prepares + 1, luo_control_u64("prepares"));
	EXPECT_STREQ("subsystem luo-rs,test-subsystem-v1: registered data=0x5000",
		     subsystem_line());
	ASSERT_EQ(0, luo_set_event(self->dev, LIVEUPDATE_EVENT_FREEZE));
	EXPECT_EQ(freezes + 1, luo_control_u64("freezes"));
	/* FREEZE's data replaces PREPARE's. */
	EXPECT_STREQ("subsystem luo-rs,test-subsystem-v1: registered data=0x5001",
		     subsystem_line());
	ASSERT_EQ(0, luo_set_event(self->dev, LIVEUPDATE_EVENT_CANCEL));
	EXPECT_EQ(cancels + 1, luo_control_u64("cancels"));
	EXPECT_STREQ("subsystem luo-rs,test-subsystem-v1: registered", subsystem_line());
}

TEST_F(sub, registration_is_refused_while_prepared_or_frozen)
{
	ASSERT_EQ(0, luo_control("unregister-subsystem"));
	ASSERT_EQ(0, luo_set_event(self->dev, LIVEUPDATE_EVENT_PREPARE));
	EXPECT_EQ(-EBUSY, luo_control("register-subsystem"));
	ASSERT_EQ(0, luo_set_event(self->dev, LIVEUPDATE_EVENT_CANCEL));
	ASSERT_EQ(0, luo_control("register-subsystem"));
	ASSERT_EQ(0, luo_set_event(self->dev, LIVEUPDATE_EVENT_PREPARE));
	EXPECT_EQ(-EBUSY, luo_control("unregister-subsystem"));
	ASSERT_EQ(0, luo_set_event(self->dev, LIVEUPDATE_EVENT_FREEZE));
	EXPECT_EQ(-EBUSY, luo_control("unregister-subsystem"));
	EXPECT_EQ(1, luo_control_u64("subsystem"));
	ASSERT_EQ(0, luo_set_event(self->dev, LIVEUPDATE_EVENT_CANCEL));
	EXPECT_EQ(0, luo_control("unregister-subsystem"));
	EXPECT_EQ(0, luo_control("register-subsystem"));
}

/* A subsystem failing PREPARE: the files already prepared are cancelled,
 * the subsystem itself is not (it did nothing), the state is NORMAL. */
TEST_F(sub, failed_prepare_rolls_back_files_too)
{
	int s = luo_create_session(self->dev, "sub-files");
	int f = luo_test_file("x", 1);
	unsigned long long cancels = luo_control_u64("cancels");
	char st[64];

	ASSERT_LE(0, s);
	ASSERT_LE(0, f);
	ASSERT_EQ(0, luo_preserve(s, f, 1));
	ASSERT_EQ(0, luo_control("fail prepare"));
	EXPECT_EQ(-EIO, luo_set_event(self->dev, LIVEUPDATE_EVENT_PREPARE));
	EXPECT_EQ(LIVEUPDATE_STATE_NORMAL, luo_get_state(self->dev));
	EXPECT_EQ(cancels, luo_control_u64("cancels"));
	/* The file is back to merely preserved: unpreserve works. */
	ASSERT_EQ(0, luo_status("state", st, sizeof(st)));
	EXPECT_STREQ("normal", st);
	EXPECT_EQ(0, luo_unpreserve(s, 1));
	close(f);
	close(s);
}

TEST_F(sub, failed_freeze_cancels_the_subsystem)
{
	unsigned long long cancels = luo_control_u64("cancels");

	ASSERT_EQ(0, luo_control("fail freeze"));
	ASSERT_EQ(0, luo_set_event(self->dev, LIVEUPDATE_EVENT_PREPARE));
	EXPECT_EQ(-EIO, luo_set_event(self->dev, LIVEUPDATE_EVENT_FREEZE));
	EXPECT_EQ(LIVEUPDATE_STATE_NORMAL, luo_get_state(self->dev));
	EXPECT_EQ(cancels + 1, luo_control_u64("cancels"));
	EXPECT_STREQ("subsystem luo-rs,test-subsystem-v1: registered", subsystem_line());
}

/* A plain kexec whose subsystem fails its implicit FREEZE is aborted. */
TEST_F(sub, failed_implicit_freeze_aborts_the_kexec)
{
	ASSERT_EQ(0, luo_control("fail freeze"));
	EXPECT_EQ(-EIO, luo_kexec("never=reached"));
	EXPECT_EQ(LIVEUPDATE_STATE_NORMAL, luo_get_state(self->dev));
}

TEST(unknown_commands_are_einval)
{
	EXPECT_EQ(-EINVAL, luo_control("frobnicate"));
	EXPECT_EQ(-EINVAL, luo_control("value"));
	EXPECT_EQ(-EINVAL, luo_control("value 0xzz"));
}

/* A file handler cannot leave while files it preserved are there. */
TEST(handler_unregistration_waits_for_its_files)
{
	int dev = luo_open();
	int s = luo_create_session(dev, "handler-files");
	int f = luo_test_file("x", 1);

	ASSERT_LE(0, s);
	ASSERT_LE(0, f);
	EXPECT_EQ(-EEXIST, luo_control("register-handler"));
	ASSERT_EQ(0, luo_preserve(s, f, 7));
	EXPECT_EQ(-EBUSY, luo_control("unregister-handler"));
	EXPECT_EQ(1, luo_control_u64("handler"));
	ASSERT_EQ(0, luo_unpreserve(s, 7));
	ASSERT_EQ(0, luo_control("unregister-handler"));
	EXPECT_EQ(0, luo_control_u64("handler"));
	/* No handler takes test files now. */
	EXPECT_EQ(-ENOENT, luo_preserve(s, f, 7));
	EXPECT_EQ(-ENOENT, luo_control("unregister-handler"));
	ASSERT_EQ(0, luo_control("register-handler"));
	EXPECT_EQ(0, luo_preserve(s, f, 7));
	close(f);
	close(s);
	/* The session's close released the file: the handler may go. */
	EXPECT_EQ(0, luo_control("unregister-handler"));
	EXPECT_EQ(0, luo_control("register-handler"));
	close(dev);
}

TEST_HARNESS_MAIN
