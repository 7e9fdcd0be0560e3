// SPDX-License-Identifier: GPL-2.0
/*
 * KHO steps of luo-rs that walk KHO's own structures (kho.rs wraps them).
 * KHO's restore functions WARN on an address that was not preserved;
 * luo-rs refuses a bad record quietly instead, so every address it
 * restores is checked here first with kho_restorable_order().
 */
#include <linux/bitops.h>
#include <linux/count_zeros.h>
#include <linux/io.h>
#include <linux/kexec_handover.h>
#include <linux/kho/abi/kexec_handover.h>
#include <linux/mm.h>
#include <linux/sched.h>

#include "rust/kho_glue.h"

/* Whether nr_pages pages at phys can be restored as kho_restore_pages() will. */
static bool pages_restorable(phys_addr_t phys, unsigned long nr_pages)
{
	unsigned long pfn = PHYS_PFN(phys), end = pfn + nr_pages;

	/* PHYS_PFN() would drop an offset: the address itself must be a page's. */
	if (!PAGE_ALIGNED(phys))
		return false;
	while (pfn < end) {
		unsigned int order = min(count_trailing_zeros(pfn), ilog2(end - pfn));

		if (kho_restorable_order(PFN_PHYS(pfn)) != (int)order)
			return false;
		pfn += 1UL << order;
	}
	return true;
}

/*
 * A KHO vmalloc preservation (a luo-rs handler's array of u64) is restored
 * as its pages, in place, without a vmalloc mapping: kho_restore_vmalloc()
 * allocates after it has restored pages, and if that allocation fails the
 * pages are lost. Here nothing is allocated: each chunk and block is
 * checked right before it is restored, so a RETRIEVE_FD or FINISH that
 * runs short of memory elsewhere can always free or retry it. Readers walk
 * the blocks in order (struct luo_kho_words_cursor).
 */

/* Frees the first n blocks of chunk, each of contig pages. */
static void free_blocks(const struct kho_vmalloc_chunk *chunk, int n, unsigned long contig)
{
	for (int i = 0; i < n; i++) {
		struct page *page = phys_to_page(chunk->phys[i]);

		/* kho_restore_pages() made each page a page of its own. */
		for (unsigned long j = 0; j < contig; j++)
			__free_page(page + j);
	}
}

/* Blocks chunk names. */
static int nr_blocks(const struct kho_vmalloc_chunk *chunk)
{
	int n = 0;

	while (n < KHO_VMALLOC_SIZE && chunk->phys[n])
		n++;
	return n;
}

/*
 * Frees what was restored of v: its first full chunks with all their
 * blocks, then, if part >= 0, the next chunk's first part blocks and that
 * chunk. Reads only chunks that were restored.
 */
static void free_restored(const struct kho_vmalloc *v, unsigned long full, int part)
{
	/* v->order was checked before anything was restored. */
	unsigned long contig = 1UL << v->order;
	phys_addr_t next = v->first.phys;

	for (unsigned long c = 0; next && (c < full || part >= 0); c++) {
		const struct kho_vmalloc_chunk *chunk = phys_to_virt(next);

		free_blocks(chunk, c < full ? nr_blocks(chunk) : part, contig);
		next = chunk->hdr.next.phys;
		__free_page(virt_to_page(chunk));
		if (c == full)
			break;
		cond_resched();
	}
}

int luo_kho_words_restore(const struct kho_vmalloc *v)
{
	unsigned long total = v->total_pages, max_chunks = total / KHO_VMALLOC_SIZE + 1;
	unsigned long contig, pages = 0, chunks = 0;
	phys_addr_t next = v->first.phys;

	if (v->order > MAX_PAGE_ORDER)
		return -EINVAL;
	contig = 1UL << v->order;
	if (!total || total % contig)
		return -EINVAL;
	while (next) {
		const struct kho_vmalloc_chunk *chunk;
		struct page *page;

		/* A chain longer than the pages need is a loop or garbage. */
		if (chunks == max_chunks || !pages_restorable(next, 1)) {
			free_restored(v, chunks, -1);
			return -EINVAL;
		}
		/*
		 * NULL only if another KHO user restored it since the check:
		 * a record naming someone else's page.
		 */
		page = kho_restore_pages(next, 1);
		if (!page) {
			free_restored(v, chunks, -1);
			return -EINVAL;
		}
		chunk = page_address(page);
		chunks++;
		for (int i = 0; i < KHO_VMALLOC_SIZE && chunk->phys[i]; i++) {
			/*
			 * A block named twice, or inside another, is refused
			 * here: restoring clears the mark, and only a block's
			 * head carries one.
			 */
			if (pages + contig > total || !pages_restorable(chunk->phys[i], contig) ||
			    !kho_restore_pages(chunk->phys[i], contig)) {
				free_restored(v, chunks - 1, i);
				return -EINVAL;
			}
			pages += contig;
		}
		next = chunk->hdr.next.phys;
		cond_resched();
	}
	if (pages != total) {
		free_restored(v, chunks, -1);
		return -EINVAL;
	}
	return 0;
}

void luo_kho_words_free(const struct kho_vmalloc *v)
{
	free_restored(v, ULONG_MAX, -1);
}

void luo_kho_words_start(const struct kho_vmalloc *v, struct luo_kho_words_cursor *c)
{
	c->chunk = v->first.phys ? phys_to_virt(v->first.phys) : NULL;
	c->block = 0;
}

const u64 *luo_kho_words_next(struct luo_kho_words_cursor *c)
{
	while (c->chunk && (c->block == KHO_VMALLOC_SIZE || !c->chunk->phys[c->block])) {
		phys_addr_t next = c->chunk->hdr.next.phys;

		c->chunk = next ? phys_to_virt(next) : NULL;
		c->block = 0;
	}
	if (!c->chunk)
		return NULL;
	return phys_to_virt(c->chunk->phys[c->block++]);
}

void luo_kho_release_pinned(phys_addr_t phys)
{
	struct folio *folio = page_folio(phys_to_page(phys));

	kho_unpreserve_folio(folio);
	unpin_folio(folio);
}
