// SPDX-License-Identifier: GPL-2.0
/*
 * kvcache: a small key-value cache that keeps its whole table in a memfd,
 * the way a cache daemon (or a VMM its guest RAM) would, and survives a
 * kernel live update through luo-rs: `make demo` runs it.
 *
 *   kvcache fill N      make the cache, insert N keys, preserve the memfd
 *                       in session "kvcache", PREPARE, FREEZE and kexec
 *   kvcache serve N SOCK
 *                       the same, with session "kvcache" from luod at SOCK,
 *                       serving until luod says Quiesce, then Ready; the
 *                       orchestrator (luoctl update --luod) does the rest
 *   kvcache verify [SOCK]
 *                       in the new kernel: retrieve the memfd (from luod at
 *                       SOCK), reopen the cache from it, check every key,
 *                       FINISH
 *
 * The table is open addressing over fixed-size slots; values are derived
 * from the key and a seed stored in the table header, so verify can check
 * every value, not just that one is there. Each phase is timed.
 */
#include "memfd_util.h"
#include "luod_client.h"
#include <stdbool.h>
#include <sys/random.h>
#include <time.h>

#define MAGIC 0x4548434143564b4cULL	/* "LKVCACHE" */
#define KEY_LEN 24
#define VAL_LEN 96
#define TOKEN 1

struct slot {
	uint64_t hash;			/* 0: empty */
	char key[KEY_LEN];
	char val[VAL_LEN];
};

struct table {
	uint64_t magic, seed, capacity, count;
	struct slot slots[];
};

static void die(const char *what, int err)
{
	printf("kvcache: FAILED: %s: %s\n", what, strerror(err < 0 ? -err : err));
	exit(1);
}

static uint64_t hash_key(const char *key)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (; *key; key++)
		h = (h ^ (uint8_t)*key) * 0x100000001b3ULL;
	return h ? h : 1;
}

static void value_for(const struct table *t, const char *key, char *val)
{
	uint64_t w = luo_word(t->seed, hash_key(key));

	snprintf(val, VAL_LEN, "value of %s: %016llx", key, (unsigned long long)w);
}

static struct slot *find(struct table *t, const char *key, bool insert)
{
	uint64_t h = hash_key(key);

	for (uint64_t i = 0; i < t->capacity; i++) {
		struct slot *s = &t->slots[(h + i) & (t->capacity - 1)];

		if (!s->hash)
			return insert ? s : NULL;
		if (s->hash == h && !strcmp(s->key, key))
			return s;
	}
	return NULL;
}

static size_t table_bytes(uint64_t capacity)
{
	return sizeof(struct table) + capacity * sizeof(struct slot);
}

/* A new cache of n keys in a memfd: the memfd, and the table in *tp. */
static int make_cache(long n, struct table **tp)
{
	uint64_t capacity = 1;
	struct table *t;
	double t0, t1;
	size_t bytes;
	char key[KEY_LEN];
	int fd;

	while (capacity < (uint64_t)n * 2)
		capacity <<= 1;
	bytes = table_bytes(capacity);
	t0 = luo_ms(CLOCK_MONOTONIC);
	fd = luo_memfd("kvcache", bytes);
	if (fd < 0)
		die("memfd", fd);
	t = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (t == MAP_FAILED)
		die("mmap", errno);
	t->magic = MAGIC;
	t->capacity = capacity;
	if (getrandom(&t->seed, sizeof(t->seed), 0) != sizeof(t->seed))
		die("getrandom", errno);
	for (long i = 0; i < n; i++) {
		struct slot *s;

		snprintf(key, sizeof(key), "key-%ld", i);
		s = find(t, key, true);
		s->hash = hash_key(key);
		strcpy(s->key, key);
		value_for(t, key, s->val);
		t->count++;
	}
	t1 = luo_ms(CLOCK_MONOTONIC);
	printf("kvcache: filled %ld keys into a %zu KiB memfd in %.0f ms\n", n, bytes >> 10,
	       t1 - t0);
	*tp = t;
	return fd;
}

static void preserve(int session, int fd)
{
	double t0 = luo_ms(CLOCK_MONOTONIC);
	int err = luo_preserve(session, fd, TOKEN);

	if (err)
		die("PRESERVE_FD", err);
	printf("kvcache: PRESERVE_FD took %.1f ms (pin and preserve every folio); "
	       "the cache keeps serving\n", luo_ms(CLOCK_MONOTONIC) - t0);
}

static void fill(long n)
{
	int dev, session, fd, err;
	char key[KEY_LEN];
	struct table *t;
	double t0, t1;

	fd = make_cache(n, &t);
	dev = luo_open();
	if (dev < 0)
		die("open /dev/liveupdate", errno);
	session = luo_create_session(dev, "kvcache");
	if (session < 0)
		die("CREATE_SESSION", session);
	preserve(session, fd);
	t0 = luo_ms(CLOCK_MONOTONIC);
	if ((err = luo_set_event(dev, LIVEUPDATE_EVENT_PREPARE)))
		die("PREPARE", err);
	t1 = luo_ms(CLOCK_MONOTONIC);
	printf("kvcache: PREPARE took %.1f ms (what changed, and the folio list)\n", t1 - t0);
	/* The cache still takes writes between PREPARE and FREEZE. */
	snprintf(key, sizeof(key), "key-%ld", n - 1);
	value_for(t, key, find(t, key, false)->val);
	t0 = luo_ms(CLOCK_MONOTONIC);
	if ((err = luo_set_event(dev, LIVEUPDATE_EVENT_FREEZE)))
		die("FREEZE", err);
	t1 = luo_ms(CLOCK_MONOTONIC);
	printf("kvcache: FREEZE took %.1f ms (the blackout: only what changed)\n", t1 - t0);
	printf("kvcache: kexec into the new kernel now\n");
	fflush(stdout);
	die("kexec", luo_kexec(""));
}

/* fill(), with the session from luod, the update luod's. */
static void serve(long n, const char *sock)
{
	int luod = luod_connect(sock), session, fd, r;
	uint64_t update;
	struct table *t;
	bool incoming;

	fd = make_cache(n, &t);
	if (luod < 0)
		die(sock, luod);
	session = luod_session(luod, "kvcache", &incoming);
	if (session < 0)
		die("session \"kvcache\" from luod", session);
	printf("kvcache: luod gave it session \"kvcache\"\n");
	preserve(session, fd);
	close(open("/tmp/kvcache-ready", O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
	fflush(stdout);
	for (;;) {
		r = luod_next(luod, 1000, &update);
		if (r < 0)
			die("luod", r);
		if (r == 1) {
			printf("kvcache: luod says quiesce (update %llu): writes paused, ready\n",
			       (unsigned long long)update);
			fflush(stdout);
			if ((r = luod_ready(luod, update)))
				die("ready", r);
		} else if (r == 2) {
			printf("kvcache: luod says resume: the update did not happen\n");
		}
	}
}

static void verify(const char *sock)
{
	int dev, session, fd, err, state;
	long ok = 0, bad = 0;
	double t0, t1, t2;
	struct table *t;
	off_t bytes;
	char key[KEY_LEN], val[VAL_LEN];

	printf("kvcache: new kernel up; %.0f ms since it started booting\n", luo_ms(CLOCK_BOOTTIME));
	t0 = luo_ms(CLOCK_MONOTONIC);
	dev = luo_open();
	if (dev < 0)
		die("open /dev/liveupdate", errno);
	if (sock) {
		int luod = luod_connect(sock);
		bool incoming = false;

		if (luod < 0)
			die(sock, luod);
		session = luod_session(luod, "kvcache", &incoming);
		if (session >= 0 && !incoming)
			die("luod made a new session: the old one", ENOENT);
		if (session >= 0)
			printf("kvcache: luod gave session \"kvcache\" back\n");
	} else {
		session = luo_retrieve_session(dev, "kvcache");
	}
	if (session < 0)
		die("RETRIEVE_SESSION", session);
	fd = luo_retrieve_fd(session, TOKEN);
	if (fd < 0)
		die("RETRIEVE_FD", fd);
	bytes = luo_fd_size(fd);
	t = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (t == MAP_FAILED)
		die("mmap", errno);
	t1 = luo_ms(CLOCK_MONOTONIC);
	printf("kvcache: RETRIEVE_SESSION + RETRIEVE_FD + mmap took %.1f ms (%lld KiB, no copy)\n",
	       t1 - t0, (long long)bytes >> 10);
	if (t->magic != MAGIC || bytes < 0 || (size_t)bytes != table_bytes(t->capacity))
		die("the cache header did not survive", EINVAL);
	for (uint64_t i = 0; i < t->count; i++) {
		struct slot *s;

		snprintf(key, sizeof(key), "key-%llu", (unsigned long long)i);
		s = find(t, key, false);
		value_for(t, key, val);
		if (s && !strcmp(s->val, val))
			ok++;
		else
			bad++;
	}
	t2 = luo_ms(CLOCK_MONOTONIC);
	printf("kvcache: checked every key in %.0f ms: %ld of %llu survived, %ld wrong\n",
	       t2 - t1, ok, (unsigned long long)t->count, bad);
	if ((err = luo_finish(session)))
		die("SESSION_FINISH", err);
	/* Let luo-rs's log line about it reach the console first. */
	usleep(200000);
	state = luo_get_state(dev);
	printf("kvcache: session finished; state is %s; the cache serves on from the same memory\n",
	       state == LIVEUPDATE_STATE_NORMAL  ? "normal" :
	       state == LIVEUPDATE_STATE_UPDATED ? "updated (other sessions still to finish)" :
						   "WRONG");
	exit(bad || !ok);
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "fill"))
		fill(atol(argv[2]));
	else if (argc == 4 && !strcmp(argv[1], "serve"))
		serve(atol(argv[2]), argv[3]);
	else if ((argc == 2 || argc == 3) && !strcmp(argv[1], "verify"))
		verify(argc == 3 ? argv[2] : NULL);
	fprintf(stderr, "usage: kvcache fill N | kvcache serve N SOCK | kvcache verify [SOCK]\n");
	return 2;
}
