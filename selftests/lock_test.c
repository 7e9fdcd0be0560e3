// SPDX-License-Identifier: GPL-2.0
/*
 * A user who stalls a write into its own memfd cannot hang the host's
 * live update.
 *
 * A write() holds the memfd's inode lock while it faults in its source
 * buffer; with the buffer behind a userfaultfd nobody answers, it holds it
 * for as long as the user likes. PRESERVE_FD needs that lock for a moment
 * (to freeze the memfd's size). It waits with no luo-rs lock held: GET_STATE,
 * sysfs, other sessions and a whole PREPARE/CANCEL go on meanwhile; it
 * gives up with EAGAIN (nothing kept) instead of hanging, and works once
 * the write goes on. PREPARE and FREEZE never need the lock: a writer
 * stalled on a memfd preserved already does not slow them.
 */
#include "luo_test.h"
#include "memfd_util.h"
#include <linux/userfaultfd.h>
#include <pthread.h>
#include <sys/wait.h>

#define PG 4096

struct writer {
	int memfd;
	char *src;
	ssize_t written;
};

static void *write_from_src(void *arg)
{
	struct writer *w = arg;

	w->written = pwrite(w->memfd, w->src, 2 * PG, 0);
	return NULL;
}

/* A writer into w->memfd, stalled on a source buffer nobody fills. */
static int stall_writer(struct writer *w, pthread_t *thread)
{
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg = { .mode = UFFDIO_REGISTER_MODE_MISSING };
	struct uffd_msg msg;
	int uffd = syscall(SYS_userfaultfd, O_CLOEXEC);

	w->written = -2;
	w->src = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (uffd < 0 || ioctl(uffd, UFFDIO_API, &api) || w->src == MAP_FAILED)
		return -1;
	reg.range.start = (unsigned long)w->src;
	reg.range.len = 2 * PG;
	if (ioctl(uffd, UFFDIO_REGISTER, &reg) || pthread_create(thread, NULL, write_from_src, w))
		return -1;
	/* The fault arrives: the writer now sits in write(), inode locked. */
	if (read(uffd, &msg, sizeof(msg)) != sizeof(msg) || msg.event != UFFD_EVENT_PAGEFAULT)
		return -1;
	return uffd;
}

/* Lets the write go on: 0 once it landed whole. */
static int release_writer(struct writer *w, pthread_t thread, int uffd)
{
	struct uffdio_zeropage zero = {
		.range = { .start = (unsigned long)w->src, .len = 2 * PG },
	};

	if (ioctl(uffd, UFFDIO_ZEROPAGE, &zero) || pthread_join(thread, NULL))
		return -1;
	close(uffd);
	munmap(w->src, 2 * PG);
	return w->written == 2 * PG ? 0 : -1;
}

FIXTURE(stall) {
	int dev, session;
	struct writer w;
	pthread_t thread;
};

FIXTURE_SETUP(stall)
{
	self->dev = luo_open();
	ASSERT_LE(0, self->dev);
	self->session = luo_create_session(self->dev, "stalled");
	ASSERT_LE(0, self->session);
	self->w.memfd = luo_memfd("stalled", 4 * PG);
	ASSERT_LE(0, self->w.memfd);
}

FIXTURE_TEARDOWN(stall)
{
	luo_set_event(self->dev, LIVEUPDATE_EVENT_CANCEL);
	close(self->w.memfd);
	close(self->session);
	close(self->dev);
}

TEST_F(stall, a_stalled_writer_cannot_hang_the_update)
{
	char state[32];
	int uffd, status, other;
	pid_t pres;

	uffd = stall_writer(&self->w, &self->thread);
	ASSERT_LE(0, uffd);

	/* The VMM's PRESERVE_FD, in a process of its own. */
	pres = fork();
	ASSERT_LE(0, pres);
	if (!pres)
		_exit(-luo_preserve(self->session, self->w.memfd, 1));
	usleep(300 * 1000);
	/* GET_STATE and sysfs answer while it waits, and say NORMAL. */
	EXPECT_EQ(LIVEUPDATE_STATE_NORMAL, luo_get_state(self->dev));
	ASSERT_EQ(0, luo_read_file("/sys/kernel/liveupdate/state", state, sizeof(state)));
	EXPECT_STREQ("normal", state);
	/* It holds no luo-rs lock: others go on, an update included. */
	other = luo_create_session(self->dev, "not-stalled");
	EXPECT_LE(0, other);
	EXPECT_EQ(0, luo_set_event(self->dev, LIVEUPDATE_EVENT_PREPARE));
	EXPECT_EQ(0, luo_set_event(self->dev, LIVEUPDATE_EVENT_CANCEL));
	EXPECT_EQ(0, waitpid(pres, &status, WNOHANG)) {
		TH_LOG("PRESERVE_FD ended before the checks: they proved nothing");
	}
	/* It gives up instead of hanging. */
	ASSERT_EQ(pres, waitpid(pres, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(EAGAIN, WEXITSTATUS(status));

	/* Once the write lands, PRESERVE_FD works: nothing was kept. */
	ASSERT_EQ(0, release_writer(&self->w, self->thread, uffd));
	ASSERT_EQ(0, luo_preserve(self->session, self->w.memfd, 1));
	/* The memfd is frozen now: the write image is final. */
	EXPECT_EQ(-1, ftruncate(self->w.memfd, PG));
	EXPECT_EQ(EPERM, errno);
	ASSERT_EQ(0, luo_unpreserve(self->session, 1));
	EXPECT_EQ(0, ftruncate(self->w.memfd, PG));
	close(other);
}

/* A writer stalled on a preserved memfd: PREPARE and FREEZE go ahead. */
TEST_F(stall, a_stalled_writer_does_not_hold_prepare)
{
	int uffd;

	ASSERT_EQ(0, luo_preserve(self->session, self->w.memfd, 1));
	uffd = stall_writer(&self->w, &self->thread);
	ASSERT_LE(0, uffd);
	ASSERT_EQ(0, luo_set_event(self->dev, LIVEUPDATE_EVENT_PREPARE));
	/* Before FREEZE the write may still fill its holes. */
	ASSERT_EQ(0, release_writer(&self->w, self->thread, uffd));
	ASSERT_EQ(0, luo_set_event(self->dev, LIVEUPDATE_EVENT_FREEZE));
	EXPECT_EQ(2 * PG, luo_fd_bytes(self->w.memfd));
}

TEST_HARNESS_MAIN
