/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Between iommufd_glue.c and the iommufd handler (iommufd.rs wraps each
 * call), over the calls patch 0010 adds to iommufd. Built with the iommufd
 * handler (CONFIG_LIVEUPDATE_RS_IOMMUFD).
 */
#ifndef LUO_IOMMUFD_GLUE_H
#define LUO_IOMMUFD_GLUE_H

#include <linux/iommu.h>
#include <linux/iommufd.h>
#include <linux/types.h>

struct file;

/*
 * An iommufd's IOASes (ids, rising) and their mappings (by IOAS, then
 * IOVA); each mapping of a file holds a reference to it.
 */
struct luo_iommufd_snapshot {
	u32 *ioas_ids;
	size_t nr_ioas;
	struct iommufd_lu_map *maps;
	size_t nr_maps;
};

/* Whether file is an iommufd. */
bool luo_iommufd_is_iommufd(struct file *file);
/*
 * Fixes the shape of the iommufd's IOASes (-EBUSY while user space maps or
 * unmaps, or if it is frozen already).
 */
int luo_iommufd_freeze(struct file *file);
/* Undoes luo_iommufd_freeze(). */
void luo_iommufd_thaw(struct file *file);
/* The iommufd's RLIMIT accounting mode. */
u8 luo_iommufd_account_mode(struct file *file);
/*
 * Lists the iommufd's IOASes and mappings into snap (-EBUSY if they changed
 * meanwhile: only a frozen iommufd keeps still). Free it with
 * luo_iommufd_snapshot_free().
 */
int luo_iommufd_snapshot(struct file *file, struct luo_iommufd_snapshot *snap);
void luo_iommufd_snapshot_free(struct luo_iommufd_snapshot *snap);
/* A new iommufd: its file, or an ERR_PTR. */
struct file *luo_iommufd_create(u8 account_mode);
/*
 * Makes IOAS id in the iommufd, with maps (each of a file); all or nothing.
 * Call it in the task the pinned pages are charged to.
 */
int luo_iommufd_restore_ioas(struct file *file, u32 id,
			     const struct iommufd_lu_map *maps, size_t nr);

#endif
