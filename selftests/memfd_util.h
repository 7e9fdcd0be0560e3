/* SPDX-License-Identifier: GPL-2.0 */
/*
 * memfd helpers for luo-rs's VM tests: deterministic pseudo-random
 * contents, SHA-256 of a whole memfd, and /proc/meminfo.
 */
#ifndef LUO_MEMFD_UTIL_H
#define LUO_MEMFD_UTIL_H

#include "luo_util.h"	/* first: it defines _GNU_SOURCE */
#include <sys/mman.h>
#include <sys/stat.h>
#include "sha256.h"

/* A memfd that can be sealed, of `size` bytes: fd or -errno. */
static inline int luo_memfd(const char *name, off_t size)
{
	int fd = memfd_create(name, MFD_ALLOW_SEALING);

	if (fd < 0)
		return -errno;
	if (ftruncate(fd, size)) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

/* Word w (bytes 8w to 8w+7) of the pseudo-random stream `seed`. */
static inline uint64_t luo_word(uint64_t seed, uint64_t w)
{
	uint64_t x = (seed + 1) * 0x9e3779b97f4a7c15ULL ^ w * 0xbf58476d1ce4e5b9ULL;

	x ^= x >> 31;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 29;
	return x;
}

/* Byte i of the pseudo-random stream `seed` (any i, any order). */
static inline uint8_t luo_byte(uint64_t seed, uint64_t i)
{
	return luo_word(seed, i / 8) >> (8 * (i % 8));
}

/* Writes `len` bytes of stream `seed` at `off`: 0 or -errno. */
static inline int luo_fill(int fd, off_t off, size_t len, uint64_t seed)
{
	static uint8_t buf[1 << 16];

	while (len) {
		size_t n = len < sizeof(buf) ? len : sizeof(buf);

		uint64_t w = luo_word(seed, off / 8);

		for (size_t i = 0; i < n; i++) {
			uint64_t at = off + i;

			if (at % 8 == 0)
				w = luo_word(seed, at / 8);
			buf[i] = w >> (8 * (at % 8));
		}
		if (pwrite(fd, buf, n, off) != (ssize_t)n)
			return -errno ? -errno : -EIO;
		off += n;
		len -= n;
	}
	return 0;
}

/* SHA-256 of the whole file, read with pread(): 0 or -errno. */
static inline int luo_sha_fd(int fd, char hex[65])
{
	static uint8_t buf[1 << 16];
	struct sha256 s;
	off_t off = 0;
	ssize_t n;

	sha256_init(&s);
	while ((n = pread(fd, buf, sizeof(buf), off)) > 0) {
		sha256_update(&s, buf, n);
		off += n;
	}
	if (n < 0)
		return -errno;
	sha256_hex(&s, hex);
	return 0;
}

/* The size of an open file, or -errno. */
static inline off_t luo_fd_size(int fd)
{
	struct stat st;

	return fstat(fd, &st) ? -errno : st.st_size;
}

/* Bytes of memory an open file uses (st_blocks), or -errno. */
static inline long long luo_fd_bytes(int fd)
{
	struct stat st;

	return fstat(fd, &st) ? -errno : (long long)st.st_blocks * 512;
}

/* A /proc/meminfo value in kB, or -1. */
static inline long long luo_meminfo_kb(const char *key)
{
	char buf[64];

	if (luo_key("/proc/meminfo", key, buf, sizeof(buf)))
		return -1;
	return strtoll(buf, NULL, 10);
}

/*
 * Free memory in kB, or -1: MemFree plus the pages on the per-CPU lists
 * (/proc/zoneinfo's pagesets), which are free but which MemFree does not
 * count.
 */
static inline long long luo_free_kb(void)
{
	long long kb = luo_meminfo_kb("MemFree"), pages = 0, n;
	FILE *f = fopen("/proc/zoneinfo", "r");
	char line[256];

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, " count: %lld", &n) == 1)
			pages += n;
	fclose(f);
	return kb < 0 ? -1 : kb + pages * (sysconf(_SC_PAGESIZE) / 1024);
}

/*
 * How many kB more are free than `before` (a luo_free_kb()), waiting up
 * to 5 s for want_kb: what others allocated meanwhile comes back too.
 */
static inline long long luo_wait_freed_kb(long long before, long long want_kb)
{
	long long freed = 0;

	for (int i = 0; i < 50; i++) {
		freed = luo_free_kb() - before;
		if (freed >= want_kb)
			break;
		usleep(100 * 1000);
	}
	return freed;
}

#endif
