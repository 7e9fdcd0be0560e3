/* SPDX-License-Identifier: GPL-2.0 */
/* Between kho_glue.c and kho.rs. */
#ifndef LUO_KHO_GLUE_H
#define LUO_KHO_GLUE_H

#include <linux/types.h>

struct kho_vmalloc;

/*
 * 0 if every chunk and page of v was preserved by the previous kernel and
 * not restored yet, none is named twice, and they add up to
 * v->total_pages: then kho_restore_vmalloc(v) cannot meet an address it
 * would WARN about. -EINVAL otherwise, -ENOMEM if the check could not run.
 */
int luo_kho_vmalloc_restorable(const struct kho_vmalloc *v);

#endif
