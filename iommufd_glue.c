// SPDX-License-Identifier: GPL-2.0
/*
 * The iommufd steps of luo-rs's iommufd handler (iommufd.rs wraps them),
 * over the calls patch 0010 adds to iommufd. The handler sees an iommufd
 * as its file; the context behind it lives exactly as long as the file.
 */
#include <linux/err.h>
#include <linux/file.h>
#include <linux/iommufd.h>
#include <linux/mm.h>
#include <linux/slab.h>

#include "rust/iommufd_glue.h"

/* The context behind an iommufd file; the caller holds the file. */
static struct iommufd_ctx *ctx_of(struct file *file)
{
	struct iommufd_ctx *ictx = iommufd_ctx_from_file(file);

	if (IS_ERR(ictx))
		return NULL;
	/* The file holds the context: no reference beyond the caller's. */
	iommufd_ctx_put(ictx);
	return ictx;
}

bool luo_iommufd_is_iommufd(struct file *file)
{
	return ctx_of(file);
}

int luo_iommufd_freeze(struct file *file)
{
	struct iommufd_ctx *ictx = ctx_of(file);

	return ictx ? iommufd_lu_freeze(ictx) : -EBADF;
}

void luo_iommufd_thaw(struct file *file)
{
	struct iommufd_ctx *ictx = ctx_of(file);

	if (ictx)
		iommufd_lu_thaw(ictx);
}

u8 luo_iommufd_account_mode(struct file *file)
{
	struct iommufd_ctx *ictx = ctx_of(file);

	return ictx ? iommufd_lu_account_mode(ictx) : 0;
}

/* One pass of the walk: counts, and fills what room there is. */
struct walk {
	struct luo_iommufd_snapshot *snap;
	size_t room_ioas, room_maps;
};

static int walk_ioas(void *arg, u32 id)
{
	struct walk *w = arg;

	if (w->snap->nr_ioas < w->room_ioas)
		w->snap->ioas_ids[w->snap->nr_ioas] = id;
	w->snap->nr_ioas++;
	return 0;
}

static int walk_map(void *arg, const struct iommufd_lu_map *map)
{
	struct walk *w = arg;

	if (w->snap->nr_maps < w->room_maps) {
		w->snap->maps[w->snap->nr_maps] = *map;
		if (map->file)
			get_file(map->file);
	}
	w->snap->nr_maps++;
	return 0;
}

void luo_iommufd_snapshot_free(struct luo_iommufd_snapshot *snap)
{
	size_t i;

	for (i = 0; i < snap->nr_maps; i++)
		if (snap->maps[i].file)
			fput(snap->maps[i].file);
	kvfree(snap->maps);
	kvfree(snap->ioas_ids);
	*snap = (struct luo_iommufd_snapshot){};
}

int luo_iommufd_snapshot(struct file *file, struct luo_iommufd_snapshot *snap)
{
	struct iommufd_ctx *ictx = ctx_of(file);
	struct walk w = { .snap = snap };
	size_t nr_ioas, nr_maps;
	int rc;

	*snap = (struct luo_iommufd_snapshot){};
	if (!ictx)
		return -EBADF;
	/* Count, make room, fill. */
	rc = iommufd_lu_walk(ictx, walk_ioas, walk_map, &w);
	nr_ioas = snap->nr_ioas;
	nr_maps = snap->nr_maps;
	/* Counted only: nothing is held yet. */
	*snap = (struct luo_iommufd_snapshot){};
	if (rc)
		return rc;
	/* Never NULL on success, also when empty. */
	snap->ioas_ids = kvmalloc_array(max(nr_ioas, 1), sizeof(u32),
					GFP_KERNEL_ACCOUNT);
	snap->maps = kvmalloc_array(max(nr_maps, 1), sizeof(*snap->maps),
				    GFP_KERNEL_ACCOUNT);
	if (!snap->ioas_ids || !snap->maps) {
		luo_iommufd_snapshot_free(snap);
		return -ENOMEM;
	}
	w.room_ioas = nr_ioas;
	w.room_maps = nr_maps;
	rc = iommufd_lu_walk(ictx, walk_ioas, walk_map, &w);
	if (!rc && (snap->nr_ioas != nr_ioas || snap->nr_maps != nr_maps))
		rc = -EBUSY;
	/* Only what was filled holds references. */
	snap->nr_ioas = min(snap->nr_ioas, nr_ioas);
	snap->nr_maps = min(snap->nr_maps, nr_maps);
	if (rc)
		luo_iommufd_snapshot_free(snap);
	return rc;
}

struct file *luo_iommufd_create(u8 account_mode)
{
	return iommufd_lu_create_file(account_mode);
}

int luo_iommufd_restore_ioas(struct file *file, u32 id,
			     const struct iommufd_lu_map *maps, size_t nr)
{
	struct iommufd_ctx *ictx = ctx_of(file);

	return ictx ? iommufd_lu_restore_ioas(ictx, id, maps, nr) : -EBADF;
}
