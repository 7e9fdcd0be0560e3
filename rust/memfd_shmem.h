/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Between memfd_shmem.c and the memfd handler (shmem.rs wraps each call).
 * Folios are passed with a reference or pin the caller owns, as noted.
 */
#ifndef LUO_MEMFD_SHMEM_H
#define LUO_MEMFD_SHMEM_H

#include <linux/types.h>

struct file;
struct folio;

/* Whether file is a memfd: a shmem file with no link. */
bool luo_memfd_is_memfd(struct file *file);
/* Whether the caller owns the memfd's inode, or has CAP_FOWNER over it. */
bool luo_memfd_caller_owns(struct file *file);
/*
 * Freezes the mapping (shmem then refuses truncate, growth and fallocate
 * with EPERM) and returns the size; -EAGAIN if a writer held the inode
 * lock for 2 s, -EINTR if the caller was killed meanwhile.
 */
loff_t luo_memfd_freeze(struct file *file);
/*
 * Refuses new pages in holes from now on (EPERM; SIGBUS for a fault), on
 * a frozen memfd: the set of its pages is final once this returns.
 */
void luo_memfd_seal_holes(struct file *file);
/* Undoes luo_memfd_seal_holes(): holes may fill again. */
void luo_memfd_unseal_holes(struct file *file);
/* Undoes luo_memfd_seal_holes() and luo_memfd_freeze(). */
void luo_memfd_thaw(struct file *file);
/*
 * Pages the memfd holds, in the page cache or in swap. Never below the
 * true count, even while pages move to or from swap.
 */
unsigned long luo_memfd_nr_entries(struct file *file);
/*
 * The first run of present pages (or swap entries) at or after *start and
 * before end: false if none, else [*start, *run_end).
 */
bool luo_memfd_next_run(struct file *file, pgoff_t *start, pgoff_t end, pgoff_t *run_end);
/*
 * A pinned folio and what luo-rs records of it, read once when it is
 * pinned (a pinned folio neither moves nor changes its index or size).
 */
struct luo_pinned_folio {
	struct folio *folio;
	u64 phys;
	u64 index;
	u64 nr_pages;
};

/* Most folios luo_memfd_pin() pins in one call. */
#define LUO_MEMFD_PIN_MAX 64

/*
 * Pins (FOLL_PIN, migrating them out of movable/CMA memory) up to max
 * (at most LUO_MEMFD_PIN_MAX) folios of [start, end) of a file of size
 * bytes, makes each handover-ready (luo_memfd_settle()) and describes it
 * in out; returns the count or -errno. folios is the caller's scratch
 * room for max pointers (the caller's, so that no stack array is cleared
 * on every call). Holes in the range would be filled: pass present runs
 * only.
 */
long luo_memfd_pin(struct file *file, pgoff_t start, pgoff_t end, loff_t size,
		   struct folio **folios, struct luo_pinned_folio *out, unsigned int max);
/* Describes a folio pinned by another way (guest_memfd's). */
void luo_folio_describe(struct folio *folio, struct luo_pinned_folio *out);
/* Makes a pinned folio handover-ready: zeroed and uptodate if it was not. */
void luo_memfd_settle(struct folio *folio);
unsigned long luo_folio_nr_pages(struct folio *folio);
/* Drops a pin taken by luo_memfd_pin(). */
void luo_folio_unpin(struct folio *folio);
/* A new, empty memfd named name (the dentry name) of size bytes. */
struct file *luo_memfd_create(const char *name, loff_t size);
/*
 * Charges a folio restored from KHO to the caller's memory cgroup: 0, or
 * -ENOMEM if it has no room (never an OOM kill).
 */
int luo_folio_charge(struct folio *folio);
/* Undoes luo_folio_charge() of a folio in no page cache. */
void luo_folio_uncharge(struct folio *folio);
/*
 * Puts folio (restored from KHO, charged) into the memfd at index, as
 * shmem's own: returns the pages it spans, and the caller's reference is
 * consumed; or -errno, and the folio is as it was (still charged), the
 * reference still the caller's. The memfd must not be handed out before
 * luo_memfd_account() counted the pages inserted.
 */
int luo_memfd_insert(struct file *file, struct folio *folio, pgoff_t index);
/* Tells shmem that nr pages were inserted by luo_memfd_insert() since. */
void luo_memfd_account(struct file *file, long nr);
/* Last step of a retrieve: permission bits, position, then seals. */
int luo_memfd_finish_setup(struct file *file, unsigned int seals, umode_t mode, loff_t pos);
unsigned int luo_memfd_mode(struct file *file);
/* Copies up to len bytes of the dentry name; returns the count. */
size_t luo_memfd_name(struct file *file, char *buf, size_t len);
loff_t luo_file_pos(struct file *file);

#endif
