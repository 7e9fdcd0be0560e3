// SPDX-License-Identifier: GPL-2.0
/*
 * A user who stalls a write into its own memfd cannot hang the host's
 * live update.
 *
 * A write() holds the memfd's inode lock while it faults in its source
 * buffer; with the buffer behind a userfaultfd nobody answers, it holds it
 * for as long as the user likes. PREPARE needs that lock for a moment.
 * While PREPARE waits: GET_STATE and /sys/kernel/liveupdate/state answer
 * (NORMAL). PREPARE gives up with EAGAIN (everything undone, the memfd
 * untouched) instead of hanging with luo-rs's core lock held; once the
 * write goes on, PREPARE works.
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

TEST(a_stalled_writer_cannot_hang_the_update)
{
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg = { .mode = UFFDIO_REGISTER_MODE_MISSING };
	struct uffd_msg msg;
	struct writer w = { .written = -2 };
	char state[32];
	int dev = luo_open(), s, uffd, status;
	pthread_t thread;
	pid_t prep;

	ASSERT_LE(0, dev);
	s = luo_create_session(dev, "stalled");
	ASSERT_LE(0, s);
	w.memfd = luo_memfd("stalled", 4 * PG);
	ASSERT_LE(0, w.memfd);
	ASSERT_EQ(0, luo_preserve(s, w.memfd, 1));

	/* The writer's source: two pages nobody will fill. */
	uffd = syscall(SYS_userfaultfd, O_CLOEXEC);
	ASSERT_LE(0, uffd);
	ASSERT_EQ(0, ioctl(uffd, UFFDIO_API, &api));
	w.src = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, w.src);
	reg.range.start = (unsigned long)w.src;
	reg.range.len = 2 * PG;
	ASSERT_EQ(0, ioctl(uffd, UFFDIO_REGISTER, &reg));
	ASSERT_EQ(0, pthread_create(&thread, NULL, write_from_src, &w));
	/* The fault arrives: the writer now sits in write(), inode locked. */
	ASSERT_EQ(sizeof(msg), read(uffd, &msg, sizeof(msg)));
	ASSERT_EQ(UFFD_EVENT_PAGEFAULT, msg.event);

	/* The orchestrator's PREPARE, in a process of its own. */
	prep = fork();
	ASSERT_LE(0, prep);
	if (!prep)
		_exit(-luo_set_event(dev, LIVEUPDATE_EVENT_PREPARE));
	usleep(300 * 1000);
	/* GET_STATE and sysfs answer while it waits, and say NORMAL. */
	EXPECT_EQ(LIVEUPDATE_STATE_NORMAL, luo_get_state(dev));
	ASSERT_EQ(0, luo_read_file("/sys/kernel/liveupdate/state", state, sizeof(state)));
	EXPECT_STREQ("normal", state);
	EXPECT_EQ(0, waitpid(prep, &status, WNOHANG)) {
		TH_LOG("PREPARE ended before the checks: they proved nothing");
	}
	/* It gives up instead of hanging; nothing stays frozen. */
	ASSERT_EQ(prep, waitpid(prep, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(EAGAIN, WEXITSTATUS(status));
	EXPECT_EQ(LIVEUPDATE_STATE_NORMAL, luo_get_state(dev));

	/* Let the write go on: it lands, and PREPARE works. */
	struct uffdio_zeropage zero = {
		.range = { .start = (unsigned long)w.src, .len = 2 * PG },
	};
	ASSERT_EQ(0, ioctl(uffd, UFFDIO_ZEROPAGE, &zero));
	ASSERT_EQ(0, pthread_join(thread, NULL));
	EXPECT_EQ(2 * PG, w.written);
	ASSERT_EQ(0, luo_set_event(dev, LIVEUPDATE_EVENT_PREPARE));
	EXPECT_EQ(LIVEUPDATE_STATE_PREPARED, luo_get_state(dev));
	/* The memfd is frozen now: the write image is final. */
	EXPECT_EQ(-1, ftruncate(w.memfd, PG));
	EXPECT_EQ(EPERM, errno);
	ASSERT_EQ(0, luo_set_event(dev, LIVEUPDATE_EVENT_CANCEL));
	EXPECT_EQ(0, ftruncate(w.memfd, PG));
	close(uffd);
	close(w.memfd);
	close(s);
	close(dev);
}

TEST_HARNESS_MAIN
