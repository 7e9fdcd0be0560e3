// SPDX-License-Identifier: GPL-2.0
/*
 * KHO checks luo-rs runs before it restores anything a handover names
 * (kho.rs wraps them). KHO's restore functions WARN on an address that was
 * not preserved; luo-rs refuses a bad record quietly instead, so every
 * address it restores is checked here first with kho_restorable_order().
 */
#include <linux/bitops.h>
#include <linux/count_zeros.h>
#include <linux/io.h>
#include <linux/kexec_handover.h>
#include <linux/kho/abi/kexec_handover.h>
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/sort.h>

#include "rust/kho_glue.h"

/* Whether nr_pages pages at phys can be restored as kho_restore_pages() will. */
static bool pages_restorable(phys_addr_t phys, unsigned long nr_pages)
{
	unsigned long pfn = PHYS_PFN(phys), end = pfn + nr_pages;

	while (pfn < end) {
		unsigned int order = min(count_trailing_zeros(pfn), ilog2(end - pfn));

		if (kho_restorable_order(PFN_PHYS(pfn)) != (int)order)
			return false;
		pfn += 1UL << order;
	}
	return true;
}

static int cmp_phys(const void *a, const void *b)
{
	phys_addr_t x = *(const phys_addr_t *)a, y = *(const phys_addr_t *)b;

	return x < y ? -1 : x > y;
}

int luo_kho_vmalloc_restorable(const struct kho_vmalloc *v)
{
	unsigned long pages = 0, chunks = 0, total = v->total_pages;
	unsigned long contig = 1UL << v->order;
	unsigned long max_chunks = total / KHO_VMALLOC_SIZE + 1, n = 0;
	phys_addr_t next = v->first.phys, *seen;
	int ret = -EINVAL;

	if (v->order > MAX_PAGE_ORDER || !total)
		return -EINVAL;
	/* Every block the restore will claim, to refuse one named twice. */
	seen = kvmalloc_array(total / contig + max_chunks, sizeof(*seen), GFP_KERNEL);
	if (!seen)
		return -ENOMEM;
	while (next) {
		const struct kho_vmalloc_chunk *chunk;

		/* A chain longer than the pages need is a loop or garbage. */
		if (++chunks > max_chunks || !pages_restorable(next, 1))
			goto out;
		seen[n++] = next;
		chunk = phys_to_virt(next);
		for (int i = 0; i < KHO_VMALLOC_SIZE && chunk->phys[i]; i++) {
			if (pages + contig > total || !pages_restorable(chunk->phys[i], contig))
				goto out;
			seen[n++] = chunk->phys[i];
			pages += contig;
		}
		next = chunk->hdr.next.phys;
	}
	if (pages != total)
		goto out;
	/*
	 * Only the head of a preserved block carries KHO's mark, so a block
	 * overlapping another was refused above; the same one named twice
	 * is caught here.
	 */
	sort(seen, n, sizeof(*seen), cmp_phys, NULL);
	for (unsigned long i = 1; i < n; i++)
		if (seen[i] == seen[i - 1])
			goto out;
	ret = 0;
out:
	kvfree(seen);
	return ret;
}
