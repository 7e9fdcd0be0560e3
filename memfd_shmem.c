// SPDX-License-Identifier: GPL-2.0
/*
 * The shmem and page-cache steps of luo-rs's memfd handler
 * (handlers/memfd.rs), kept in C because they use mm-internal calls
 * (mm/internal.h) and inline page-cache helpers. Each function is one step
 * the Rust side wraps once in a safe type (shmem.rs); the policy (what is
 * preserved when, what is refused) is in Rust.
 */
#include <linux/fs.h>
#include <linux/memcontrol.h>
#include <linux/memfd.h>
#include <linux/mm.h>
#include <linux/pagemap.h>
#include <linux/sched/signal.h>
#include <linux/shmem_fs.h>
#include <linux/swap.h>
#include <uapi/linux/memfd.h>

/* mm/internal.h, through -I$(srctree)/mm in the Makefile. */
#include "internal.h"

#include "rust/memfd_shmem.h"

bool luo_memfd_is_memfd(struct file *file)
{
	/* memfds (and O_TMPFILE tmpfs files) are shmem files with no link. */
	return shmem_file(file) && !file_inode(file)->i_nlink;
}

bool luo_memfd_caller_owns(struct file *file)
{
	return inode_owner_or_capable(file_mnt_idmap(file), file_inode(file));
}

/* How long PRESERVE_FD waits for a memfd's inode lock. */
#define LUO_INODE_WAIT_MS 2000

loff_t luo_memfd_freeze(struct file *file)
{
	struct inode *inode = file_inode(file);
	unsigned long deadline = jiffies + msecs_to_jiffies(LUO_INODE_WAIT_MS);
	loff_t size;

	/*
	 * A writer holds the inode lock for a whole write(), also while it
	 * faults in its source buffer, which a user can stall for ever
	 * (userfaultfd, FUSE). PRESERVE_FD holds no luo-rs lock here, but
	 * waits a bounded, killable time: then the caller may retry.
	 */
	while (!inode_trylock(inode)) {
		if (fatal_signal_pending(current))
			return -EINTR;
		if (time_after(jiffies, deadline))
			return -EAGAIN;
		schedule_timeout_killable(msecs_to_jiffies(10));
	}
	shmem_freeze(inode, true);
	size = i_size_read(inode);
	inode_unlock(inode);
	return size;
}

/*
 * On a memfd only luo-rs changes the shmem flags after creation, and only
 * for the one preservation that claims the inode (handlers/memfd.rs), one
 * step at a time. So these three do not
 * need the inode lock the shmem helpers ask for (which a user can hold):
 * shmem reads the flags under it, and sees the old value or the new one.
 * Freezing (above) does take it, so that no truncate or fallocate is half
 * way through when the size is read.
 */
void luo_memfd_seal_holes(struct file *file)
{
	shmem_seal_holes(file_inode(file), true);
}

void luo_memfd_unseal_holes(struct file *file)
{
	shmem_seal_holes(file_inode(file), false);
}

void luo_memfd_thaw(struct file *file)
{
	struct shmem_inode_info *info = SHMEM_I(file_inode(file));

	/* shmem_freeze(inode, false) and shmem_seal_holes(inode, false). */
	WRITE_ONCE(info->flags,
		   info->flags & ~(SHMEM_F_MAPPING_FROZEN | SHMEM_F_NO_HOLE_FILL));
}

unsigned long luo_memfd_nr_entries(struct file *file)
{
	struct address_space *mapping = file->f_mapping;
	unsigned long n;

	/*
	 * shmem raises swapped before it lowers nrpages (swap-out) and lowers
	 * swapped after it raises nrpages (swap-in): read under the i_pages
	 * lock, which orders the nrpages updates, the sum may be too high for
	 * a moment but never too low.
	 */
	xa_lock_irq(&mapping->i_pages);
	n = mapping->nrpages + READ_ONCE(SHMEM_I(file_inode(file))->swapped);
	xa_unlock_irq(&mapping->i_pages);
	return n;
}

bool luo_memfd_next_run(struct file *file, pgoff_t *start, pgoff_t end, pgoff_t *run_end)
{
	struct address_space *mapping = file->f_mapping;
	unsigned long index = *start;
	pgoff_t miss;

	if (index >= end || !xa_find(&mapping->i_pages, &index, end - 1, XA_PRESENT))
		return false;
	index = max(index, *start);
	rcu_read_lock();
	miss = page_cache_next_miss(mapping, index, end - index);
	rcu_read_unlock();
	/* A swap entry at index is a miss to the page cache: a run of one. */
	if (miss <= index)
		miss = index + 1;
	*start = index;
	*run_end = min(miss, end);
	return true;
}

void luo_memfd_settle(struct folio *folio)
{
	folio_lock(folio);
	/* Fallocated, never written: zero it so it can be handed over as data. */
	if (!folio_test_uptodate(folio)) {
		folio_zero_range(folio, 0, folio_size(folio));
		flush_dcache_folio(folio);
		folio_mark_uptodate(folio);
	}
	folio_unlock(folio);
}

void luo_folio_describe(struct folio *folio, struct luo_pinned_folio *out)
{
	out->folio = folio;
	out->phys = PFN_PHYS(folio_pfn(folio));
	out->index = folio->index;
	out->nr_pages = folio_nr_pages(folio);
}

/*
 * One call per batch rather than one per folio and field: PRESERVE_FD of
 * a VM's memory pins hundreds of thousands of folios.
 */
long luo_memfd_pin(struct file *file, pgoff_t start, pgoff_t end, loff_t size,
		   struct folio **folios, struct luo_pinned_folio *out, unsigned int max)
{
	/*
	 * In u64: the largest memfd ends at page 2^51, whose byte offset
	 * overflows a loff_t shift.
	 */
	loff_t last = min_t(u64, (u64)end << PAGE_SHIFT, size) - 1;
	pgoff_t offset;
	long i, n;

	n = memfd_pin_folios(file, (loff_t)start << PAGE_SHIFT, last, folios,
			     min_t(unsigned int, max, LUO_MEMFD_PIN_MAX), &offset);
	for (i = 0; i < n; i++) {
		luo_memfd_settle(folios[i]);
		luo_folio_describe(folios[i], &out[i]);
	}
	return n;
}

unsigned long luo_folio_nr_pages(struct folio *folio)
{
	return folio_nr_pages(folio);
}

void luo_folio_unpin(struct folio *folio)
{
	unpin_folio(folio);
}

struct file *luo_memfd_create(const char *name, loff_t size)
{
	struct file *file = memfd_alloc_file(name, MFD_ALLOW_SEALING);

	if (!IS_ERR(file))
		i_size_write(file_inode(file), size);
	return file;
}

/*
 * May fail, never OOM-kills: a RETRIEVE_FD in too small a memory cgroup
 * gets ENOMEM, and the folios stay for the next attempt.
 */
#define LUO_RESTORE_GFP (GFP_HIGHUSER_MOVABLE | __GFP_RETRY_MAYFAIL)

int luo_folio_charge(struct folio *folio)
{
	return mem_cgroup_charge(folio, NULL, LUO_RESTORE_GFP);
}

void luo_folio_uncharge(struct folio *folio)
{
	/* Not on the LRU, in no page cache: as it came from KHO again. */
	mem_cgroup_uncharge(folio);
}

int luo_memfd_insert(struct file *file, struct folio *folio, pgoff_t index)
{
	struct address_space *mapping = file->f_mapping;
	struct inode *inode = file_inode(file);
	long nr = folio_nr_pages(folio);
	int err;

	/* What shmem's own allocation does: a large folio is rmappable. */
	page_rmappable_folio(&folio->page);
	__folio_set_locked(folio);
	__folio_set_swapbacked(folio);
	err = shmem_add_to_page_cache(folio, mapping, index, NULL, LUO_RESTORE_GFP);
	if (err)
		goto fail;
	err = shmem_inode_acct_blocks(inode, nr);
	if (err) {
		/* Drops the page cache's references; ours stays. */
		filemap_remove_folio(folio);
		goto fail;
	}
	folio_mark_uptodate(folio);
	/* Dirty: the data exists nowhere else, reclaim must not drop it. */
	folio_mark_dirty(folio);
	folio_add_lru(folio);
	folio_unlock(folio);
	folio_put(folio);
	return nr;

fail:
	__folio_clear_swapbacked(folio);
	folio_unlock(folio);
	return err;
}

/*
 * Once per batch, as shmem's own paths do once per change: until then
 * shmem's allocated count lags behind the page cache, which only keeps
 * shmem_recalc_inode() (called by swap-out, say) from seeing pages as
 * freed.
 */
void luo_memfd_account(struct file *file, long nr)
{
	shmem_recalc_inode(file_inode(file), nr, 0);
}

int luo_memfd_finish_setup(struct file *file, unsigned int seals, umode_t mode, loff_t pos)
{
	struct inode *inode = file_inode(file);

	inode_lock(inode);
	inode->i_mode = (inode->i_mode & ~0777) | (mode & 0777);
	inode_unlock(inode);
	vfs_setpos(file, pos, MAX_LFS_FILESIZE);
	/* Last: seals may forbid what the steps above did. */
	return memfd_add_seals(file, seals);
}

unsigned int luo_memfd_mode(struct file *file)
{
	return file_inode(file)->i_mode & 0777;
}

size_t luo_memfd_name(struct file *file, char *buf, size_t len)
{
	const struct qstr *name = &file->f_path.dentry->d_name;
	size_t n = min_t(size_t, name->len, len);

	memcpy(buf, name->name, n);
	return n;
}

loff_t luo_file_pos(struct file *file)
{
	return READ_ONCE(file->f_pos);
}
