/* SPDX-License-Identifier: GPL-2.0 */
/* Between kho_glue.c and kho.rs. */
#ifndef LUO_KHO_GLUE_H
#define LUO_KHO_GLUE_H

#include <linux/types.h>

struct kho_vmalloc;
struct kho_vmalloc_chunk;

/*
 * Restores every chunk and block of the preservation v in place, without
 * mapping it and without allocating: 0, or -EINVAL if any of them was not
 * preserved by the previous kernel, was restored already, is named twice,
 * or they do not add up to v->total_pages (then whatever was restored
 * before the bad one is freed).
 */
int luo_kho_words_restore(const struct kho_vmalloc *v);

/* Frees every chunk and block of v, restored by luo_kho_words_restore(). */
void luo_kho_words_free(const struct kho_vmalloc *v);

/* Where a reader of a restored v is: a chunk and a block in it. */
struct luo_kho_words_cursor {
	const struct kho_vmalloc_chunk *chunk;
	int block;
};

/* Places c before the first block of the restored v. */
void luo_kho_words_start(const struct kho_vmalloc *v, struct luo_kho_words_cursor *c);

/*
 * The next block of c's preservation ((PAGE_SIZE << v->order) bytes of
 * it, in order), or NULL after the last.
 */
const u64 *luo_kho_words_next(struct luo_kho_words_cursor *c);

/*
 * Unpreserves the folio at phys (kho_preserve_folio()), then drops the pin
 * the caller owns on it.
 */
void luo_kho_release_pinned(phys_addr_t phys);

#endif
