/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Between gmem_glue.c and the guest_memfd handler (gmem.rs wraps each
 * call). Built with the VM handler (CONFIG_LIVEUPDATE_RS_KVM). Folios are
 * passed with a reference or pin the caller owns, as noted.
 */
#ifndef LUO_GMEM_GLUE_H
#define LUO_GMEM_GLUE_H

#include <linux/types.h>

struct file;
struct folio;
struct kvm;

/* Most folios one luo_gmem_pin() call returns. */
#define LUO_GMEM_PIN_MAX 31

/*
 * The VM a guest_memfd file is bound to, if file is one, else NULL. No
 * reference is taken: the file's keeps the VM alive.
 */
struct kvm *luo_gmem_kvm(struct file *file);
/* The GUEST_MEMFD_FLAG_* the guest_memfd was made with. */
u64 luo_gmem_flags(struct file *file);
/*
 * Whether a guest_memfd made with flags can cross a live update: one
 * whose memory is all shared with the host (INIT_SHARED), with no flag
 * luo-rs does not know.
 */
bool luo_gmem_flags_carried(u64 flags);
/* Its size in bytes, fixed at creation. */
loff_t luo_gmem_size(struct file *file);
/*
 * Refuses fallocate() (EPERM) from now on; returns once no fallocate() is
 * in flight.
 */
void luo_gmem_freeze(struct file *file);
/*
 * Refuses new folios in holes from now on (a guest fault gets EPERM, a
 * user fault SIGBUS). With the file frozen, the set of its folios is
 * final once this returns.
 */
void luo_gmem_seal_holes(struct file *file);
/* Undoes luo_gmem_seal_holes(). */
void luo_gmem_unseal_holes(struct file *file);
/* Undoes luo_gmem_seal_holes() and luo_gmem_freeze(). */
void luo_gmem_thaw(struct file *file);
/* Pages in the file. */
unsigned long luo_gmem_nr_pages(struct file *file);
/*
 * Pins (as FOLL_PIN does; luo_folio_unpin() releases) the next folios of
 * [*start, end), at most LUO_GMEM_PIN_MAX, into folios, and moves *start
 * past them: returns their count (0 once none is left) or -errno
 * (-EHWPOISON for a poisoned folio, -EOPNOTSUPP for a large one; then
 * none is pinned).
 */
long luo_gmem_pin(struct file *file, pgoff_t *start, pgoff_t end, struct folio **folios);
/*
 * A new guest_memfd of size bytes and flags bound to kvm, as a file, or
 * an ERR_PTR (-EINVAL if kvm does not support the flags).
 */
struct file *luo_gmem_create(struct kvm *kvm, loff_t size, u64 flags);
/*
 * Puts folio (restored from KHO, order 0, charged) into the new
 * guest_memfd at index, uptodate: 0, and the caller's reference is
 * consumed; or -errno (-EINVAL for a large folio), and the folio is as it
 * was, the reference still the caller's.
 */
int luo_gmem_insert(struct file *file, struct folio *folio, pgoff_t index);

#endif
