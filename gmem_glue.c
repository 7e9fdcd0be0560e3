// SPDX-License-Identifier: GPL-2.0
/*
 * The guest_memfd steps of luo-rs's guest_memfd handler (gmem.rs wraps
 * them): what a guest_memfd is, freezing it, pinning its folios, and
 * rebuilding one. guest_memfd's own state changes only through the calls
 * patch 0007 adds to it (kvm_gmem_*()); pinning is here. Built with the
 * VM handler (CONFIG_LIVEUPDATE_RS_KVM).
 */
#include <linux/build_bug.h>
#include <linux/folio_batch.h>
#include <linux/fs.h>
#include <linux/kvm_host.h>
#include <linux/mm.h>
#include <linux/pagemap.h>

/* mm/internal.h (try_grab_folio()), through -I$(srctree)/mm in the Makefile. */
#include "internal.h"

#include "rust/gmem_glue.h"

static_assert(LUO_GMEM_PIN_MAX == FOLIO_BATCH_SIZE);

struct kvm *luo_gmem_kvm(struct file *file)
{
	return kvm_gmem_file_kvm(file);
}

u64 luo_gmem_flags(struct file *file)
{
	return kvm_gmem_file_flags(file);
}

bool luo_gmem_flags_carried(u64 flags)
{
	/*
	 * Private memory (no INIT_SHARED) lives outside the host's reach;
	 * a flag this code does not know may mean anything.
	 */
	return (flags & GUEST_MEMFD_FLAG_INIT_SHARED) &&
	       !(flags & ~(GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED));
}

loff_t luo_gmem_size(struct file *file)
{
	return i_size_read(file_inode(file));
}

void luo_gmem_freeze(struct file *file)
{
	kvm_gmem_freeze(file);
}

void luo_gmem_seal_holes(struct file *file)
{
	kvm_gmem_seal_holes(file);
}

void luo_gmem_unseal_holes(struct file *file)
{
	kvm_gmem_unseal_holes(file);
}

void luo_gmem_thaw(struct file *file)
{
	kvm_gmem_thaw(file);
}

unsigned long luo_gmem_nr_pages(struct file *file)
{
	/* guest_memfd memory is never swapped: only the page cache counts. */
	return READ_ONCE(file->f_mapping->nrpages);
}

long luo_gmem_pin(struct file *file, pgoff_t *start, pgoff_t end, struct folio **folios)
{
	struct folio_batch fbatch;
	unsigned int i, n;
	int err = 0;

	if (*start >= end)
		return 0;
	folio_batch_init(&fbatch);
	n = filemap_get_folios(file->f_mapping, start, end - 1, &fbatch);
	for (i = 0; i < n; i++) {
		struct folio *folio = fbatch.folios[i];

		/*
		 * guest_memfd would answer -EHWPOISON for it: the next kernel,
		 * which cannot know, must not get it as data.
		 */
		if (folio_test_hwpoison(folio)) {
			err = -EHWPOISON;
			break;
		}
		/* guest_memfd has none; the next kernel would refuse it. */
		if (folio_test_large(folio)) {
			err = -EOPNOTSUPP;
			break;
		}
		/*
		 * A pin, as GUP takes it, released by unpin_folio(): the folio
		 * is unmovable and unevictable already and the frozen file
		 * keeps it; the pin keeps it allocated whatever happens to
		 * the file.
		 */
		err = try_grab_folio(folio, 1, FOLL_PIN);
		if (err)
			break;
		folios[i] = folio;
	}
	if (err)
		while (i--)
			unpin_folio(folios[i]);
	folio_batch_release(&fbatch);
	return err ?: n;
}

/* May fail, never OOM-kills (as for memfds, memfd_shmem.c). */
#define LUO_GMEM_RESTORE_GFP (GFP_KERNEL | __GFP_RETRY_MAYFAIL)

struct file *luo_gmem_create(struct kvm *kvm, loff_t size, u64 flags)
{
	return kvm_gmem_create_file(kvm, size, flags);
}

int luo_gmem_insert(struct file *file, struct folio *folio, pgoff_t index)
{
	return kvm_gmem_insert_folio(file, folio, index, LUO_GMEM_RESTORE_GFP);
}
