// SPDX-License-Identifier: GPL-2.0
/*
 * Two-stage: an allocation failure at any step of an update loses nothing.
 *
 * Every step below runs again and again with its 1st, 2nd, 3rd, ...
 * allocation failing (failslab and fail_page_alloc through fail-nth, see
 * fault_util.h), until it runs through without reaching the failing one.
 * A step whose allocation failed must answer ENOMEM (or absorb the failure
 * and succeed) and undo all it did: the next attempt then behaves as if
 * the failed one never happened, and the other sessions' memory is
 * untouched.
 *
 * Stage 1 (old kernel): CREATE_SESSION, PRESERVE_FD, UNPRESERVE_FD,
 * PREPARE (which preserves the memfds and builds the handover), FREEZE
 * (which rebuilds it) and CANCEL, each with failures; then a kexec.
 * Stage 2 (new kernel): RETRIEVE_SESSION, RETRIEVE_FD and SESSION_FINISH
 * with failures, and FINISH of a memfd never retrieved; every byte of
 * every memfd must be there, and what is finished must be freed.
 */
#include "fault_util.h"
#include "memfd_util.h"

#define MIB (1 << 20)
/* "made" holds COPIES memfds of 16 KiB, tokens COPY_TOKEN on: three
 * pages at most three runs, so their records are in the handover itself
 * (luo-rs,memfd-v3 and later); the larger memfds may have pages of their own. */
#define COPIES 12
#define COPY_TOKEN 100

/* A memfd of `size` bytes of stream `seed`, with a hole in its middle
 * quarter: its fd, and its SHA-256 in sha. */
static int holed_memfd(const char *name, size_t size, uint64_t seed, char sha[65])
{
	int m = luo_memfd(name, size);

	CHECK(m >= 0, "memfd %s: %s\n", name, strerror(-m));
	CHECK(!luo_fill(m, 0, size / 2, seed) && !luo_fill(m, size / 4 * 3, size / 4, seed),
	      "fill %s\n", name);
	CHECK(!luo_sha_fd(m, sha), "sha %s\n", name);
	return m;
}

static int state(int dev)
{
	return luo_get_state(dev);
}

/* Moves dev to `want` (NORMAL, PREPARED or FROZEN) without failures. */
static void go_to(int dev, int want)
{
	if (state(dev) != want && state(dev) != LIVEUPDATE_STATE_NORMAL)
		CHECK(!luo_set_event(dev, LIVEUPDATE_EVENT_CANCEL), "CANCEL\n");
	if (want >= LIVEUPDATE_STATE_PREPARED && state(dev) == LIVEUPDATE_STATE_NORMAL)
		CHECK(!luo_set_event(dev, LIVEUPDATE_EVENT_PREPARE), "PREPARE\n");
	if (want == LIVEUPDATE_STATE_FROZEN && state(dev) == LIVEUPDATE_STATE_PREPARED)
		CHECK(!luo_set_event(dev, LIVEUPDATE_EVENT_FREEZE), "FREEZE\n");
	CHECK(state(dev) == want, "cannot reach state %d (at %d)\n", want, state(dev));
}

/* SET_EVENT `event` from state `from`, with each allocation failing in
 * turn; a failure must land in `undone` (-1: the event must not fail).
 * Leaves the state after `event`. */
static void event_steps(int dev, const char *what, unsigned int event, int from, int to,
			int undone)
{
	unsigned int n;

	for (n = 1;; n++) {
		int ret;

		go_to(dev, from);
		luo_fault_arm(n);
		ret = luo_set_event(dev, event);
		if (!luo_fault_fired()) {
			CHECK(!ret, "%s: %s\n", what, strerror(-ret));
			break;
		}
		luo_fault_failed_cleanly(what, n, ret);
		CHECK(!ret || undone >= 0, "%s failed: %s\n", what, strerror(-ret));
		CHECK(state(dev) == (ret ? undone : to), "%s failed (%d): state %d\n", what,
		      ret, state(dev));
	}
	CHECK(state(dev) == to, "%s: state %d\n", what, state(dev));
	luo_fault_report(what, n);
}

static void stage1(void)
{
	char keep_sha[65], made_sha[65], left_sha[65], extra_sha[65], copy_sha[65], args[640];
	int dev = luo_open(), keep, made = -1, left, mkeep, mmade, mleft, mextra;
	unsigned int n;

	CHECK(dev >= 0, "open: %s\n", strerror(errno));
	CHECK(!luo_fault_setup(), "fault injection setup: %s\n", strerror(errno));

	/* Made without failures: must come through everything untouched. */
	keep = luo_create_session(dev, "keep");
	mkeep = holed_memfd("keep", 4 * MIB, 41, keep_sha);
	CHECK(keep >= 0 && !luo_preserve(keep, mkeep, 1), "keep: setup\n");
	left = luo_create_session(dev, "left");
	mleft = holed_memfd("left", 8 * MIB, 42, left_sha);
	CHECK(left >= 0 && !luo_preserve(left, mleft, 1), "left: setup\n");

	for (n = 1;; n++) {
		luo_fault_arm(n);
		made = luo_create_session(dev, "made");
		if (!luo_fault_fired())
			break;
		luo_fault_failed_cleanly("CREATE_SESSION", n, made < 0 ? made : 0);
		/* Absorbed: close it, which must free the name again. */
		if (made >= 0)
			close(made);
	}
	CHECK(made >= 0, "CREATE_SESSION: %s\n", strerror(-made));
	luo_fault_report("CREATE_SESSION", n);

	/* Copies RETRIEVE_FD can use up: a retrieve that absorbed its
	 * failure has made its file, and the next count goes on with the
	 * next copy. */
	for (int i = 0; i < COPIES; i++) {
		char sha[65];
		int c = holed_memfd("copy", 16 << 10, 47, sha);

		CHECK(!luo_preserve(made, c, COPY_TOKEN + i), "PRESERVE_FD copy %d\n", i);
		memcpy(copy_sha, sha, sizeof(sha));
	}
	mmade = holed_memfd("made", 1 * MIB, 43, made_sha);
	for (n = 1;; n++) {
		int ret;

		luo_fault_arm(n);
		ret = luo_preserve(made, mmade, 7);
		if (!luo_fault_fired()) {
			CHECK(!ret, "PRESERVE_FD: %s\n", strerror(-ret));
			break;
		}
		luo_fault_failed_cleanly("PRESERVE_FD", n, ret);
		CHECK(luo_files_in(made) == COPIES + (ret ? 0 : 1), "PRESERVE_FD failed (%d): %u files\n",
		      ret, luo_files_in(made));
		if (!ret)
			CHECK(!luo_unpreserve(made, 7), "UNPRESERVE_FD\n");
	}
	luo_fault_report("PRESERVE_FD", n);

	mextra = holed_memfd("extra", 256 << 10, 44, extra_sha);
	for (n = 1;; n++) {
		int ret;

		CHECK(!luo_preserve(made, mextra, 8), "PRESERVE_FD extra\n");
		luo_fault_arm(n);
		ret = luo_unpreserve(made, 8);
		if (!luo_fault_fired()) {
			CHECK(!ret, "UNPRESERVE_FD: %s\n", strerror(-ret));
			break;
		}
		luo_fault_failed_cleanly("UNPRESERVE_FD", n, ret);
		CHECK(luo_files_in(made) == COPIES + (ret ? 2 : 1), "UNPRESERVE_FD failed (%d): %u files\n",
		      ret, luo_files_in(made));
		if (ret)
			CHECK(!luo_unpreserve(made, 8), "UNPRESERVE_FD\n");
	}
	luo_fault_report("UNPRESERVE_FD", n);

	event_steps(dev, "PREPARE", LIVEUPDATE_EVENT_PREPARE, LIVEUPDATE_STATE_NORMAL,
		    LIVEUPDATE_STATE_PREPARED, LIVEUPDATE_STATE_NORMAL);
	event_steps(dev, "FREEZE", LIVEUPDATE_EVENT_FREEZE, LIVEUPDATE_STATE_PREPARED,
		    LIVEUPDATE_STATE_FROZEN, LIVEUPDATE_STATE_NORMAL);
	event_steps(dev, "CANCEL", LIVEUPDATE_EVENT_CANCEL, LIVEUPDATE_STATE_FROZEN,
		    LIVEUPDATE_STATE_NORMAL, -1);

	/* Written after all that: a failed PREPARE must not have left the
	 * memfds frozen, and the update must carry this too. */
	CHECK(!luo_fill(mkeep, 4 * MIB / 2, 4096, 45), "write after CANCEL\n");
	CHECK(!luo_sha_fd(mkeep, keep_sha), "sha keep\n");

	snprintf(args, sizeof(args), "keep=%s made=%s left=%s copy=%s", keep_sha, made_sha,
		 left_sha, copy_sha);
	ksft_exit_fail_msg("kexec: %s\n", strerror(-luo_kexec(args)));
}

/* Retrieves `name` with each allocation failing in turn: its fd. */
static int retrieve_session_steps(struct __test_metadata *_metadata, int dev, const char *name)
{
	unsigned int n;
	int s;

	for (n = 1;; n++) {
		luo_fault_arm(n);
		s = luo_retrieve_session(dev, name);
		if (!luo_fault_fired())
			break;
		luo_fault_failed_cleanly("RETRIEVE_SESSION", n, s < 0 ? s : 0);
		/* Absorbed: let go of it, which makes it retrievable again. */
		if (s >= 0)
			close(s);
	}
	luo_fault_report("RETRIEVE_SESSION", n);
	EXPECT_LE(0, s) {
		TH_LOG("RETRIEVE_SESSION %s: %s", name, strerror(-s));
	}
	return s;
}

/* SESSION_FINISH with each allocation failing in turn: its last answer. */
static int finish_steps(int s, const char *what)
{
	unsigned int n;
	int ret;

	for (n = 1;; n++) {
		luo_fault_arm(n);
		ret = luo_finish(s);
		if (!luo_fault_fired() || !ret)
			break;
		luo_fault_failed_cleanly(what, n, ret);
	}
	luo_fault_report(what, n);
	return ret;
}

FIXTURE(fault) {
	int dev;
};

FIXTURE_SETUP(fault)
{
	self->dev = luo_open();
	ASSERT_LE(0, self->dev);
	ASSERT_EQ(0, luo_fault_setup());
}

FIXTURE_TEARDOWN(fault)
{
	close(self->dev);
}

TEST_F(fault, retrieve_and_finish_lose_nothing)
{
	char sha[65];
	unsigned int n;
	int s, m = -1, copy = 0;

	s = retrieve_session_steps(_metadata, self->dev, "made");
	ASSERT_LE(0, s);
	/* The copies, with failures, until one retrieve runs through. */
	for (n = 1;; n++) {
		luo_fault_arm(n);
		m = luo_retrieve_fd(s, COPY_TOKEN + copy);
		if (!luo_fault_fired()) {
			ASSERT_LE(0, m) {
				TH_LOG("RETRIEVE_FD: %s", strerror(-m));
			}
			break;
		}
		luo_fault_failed_cleanly("RETRIEVE_FD", n, m < 0 ? m : 0);
		if (m >= 0) {
			/* Absorbed: this copy is done; go on with the next. */
			close(m);
			ASSERT_GT(COPIES, ++copy) {
				TH_LOG("more absorbed failures than copies");
			}
		}
	}
	close(m);
	luo_fault_report("RETRIEVE_FD", n);
	printf("# RETRIEVE_FD: %d retrieve(s) absorbed a failure\n", copy);
	/* Every copy, retrieved with failures or not, is whole. */
	for (int i = 0; i < COPIES; i++) {
		m = luo_retrieve_fd(s, COPY_TOKEN + i);
		ASSERT_LE(0, m);
		ASSERT_EQ(0, luo_sha_fd(m, sha));
		EXPECT_STREQ(luo_arg("copy"), sha) {
			TH_LOG("copy %d differs", i);
		}
		close(m);
	}
	m = luo_retrieve_fd(s, 7);
	ASSERT_LE(0, m);
	EXPECT_EQ(1 * MIB, luo_fd_size(m));
	ASSERT_EQ(0, luo_sha_fd(m, sha));
	EXPECT_STREQ(luo_arg("made"), sha);
	/* The holes stayed holes. */
	EXPECT_EQ(3 * MIB / 4, luo_fd_bytes(m));
	/* "extra" was unpreserved in the end: not handed over. */
	EXPECT_EQ(-ENOENT, luo_retrieve_fd(s, 8));

	EXPECT_EQ(0, finish_steps(s, "SESSION_FINISH"));
	/* The retrieved memfd is the caller's now, finished or not. */
	ASSERT_EQ(0, luo_sha_fd(m, sha));
	EXPECT_STREQ(luo_arg("made"), sha);
	close(m);
	close(s);
}

TEST_F(fault, finish_without_retrieve_frees_the_memory)
{
	long long before, after;
	int s;

	s = retrieve_session_steps(_metadata, self->dev, "left");
	ASSERT_LE(0, s);
	/* Memory KHO kept for the previous kernel is not in MemTotal until it
	 * is restored: FINISH restores and frees the memfd's 6 MiB of data. */
	before = luo_meminfo_kb("MemTotal");
	EXPECT_EQ(0, finish_steps(s, "SESSION_FINISH of an unretrieved memfd"));
	after = luo_meminfo_kb("MemTotal");
	EXPECT_LE(6 * 1024, after - before) {
		TH_LOG("MemTotal went from %lld to %lld kB", before, after);
	}
	close(s);
}

TEST_F(fault, untouched_session_is_whole)
{
	char sha[65];
	int s, m;

	s = luo_retrieve_session(self->dev, "keep");
	ASSERT_LE(0, s);
	m = luo_retrieve_fd(s, 1);
	ASSERT_LE(0, m);
	EXPECT_EQ(4 * MIB, luo_fd_size(m));
	ASSERT_EQ(0, luo_sha_fd(m, sha));
	EXPECT_STREQ(luo_arg("keep"), sha);
	EXPECT_EQ(0, luo_finish(s));
	EXPECT_EQ(LIVEUPDATE_STATE_NORMAL, luo_get_state(self->dev));
	close(m);
	close(s);
}

TEST_F(fault, next_update_prepares_after_failures)
{
	char sha[65];
	int s = luo_create_session(self->dev, "next"), m = holed_memfd("next", MIB, 46, sha);

	ASSERT_LE(0, s);
	ASSERT_EQ(0, luo_preserve(s, m, 1));
	event_steps(self->dev, "PREPARE in the new kernel", LIVEUPDATE_EVENT_PREPARE,
		    LIVEUPDATE_STATE_NORMAL, LIVEUPDATE_STATE_PREPARED, LIVEUPDATE_STATE_NORMAL);
	event_steps(self->dev, "FREEZE in the new kernel", LIVEUPDATE_EVENT_FREEZE,
		    LIVEUPDATE_STATE_PREPARED, LIVEUPDATE_STATE_FROZEN, LIVEUPDATE_STATE_NORMAL);
	EXPECT_EQ(0, luo_set_event(self->dev, LIVEUPDATE_EVENT_CANCEL));
	EXPECT_EQ(LIVEUPDATE_STATE_NORMAL, luo_get_state(self->dev));
	close(m);
	close(s);
}

LUO_KEXEC_TEST_MAIN(stage1)
