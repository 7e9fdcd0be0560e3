/* SPDX-License-Identifier: GPL-2.0 */
/* Between pinned_vm.c and pinned_vm.rs. */
#ifndef LUO_PINNED_VM_H
#define LUO_PINNED_VM_H

struct mm_struct;

/*
 * Charges pages to the caller's mm (mm_struct::pinned_vm) against its
 * RLIMIT_MEMLOCK; past the limit only with CAP_IPC_LOCK (asked for only
 * then). Returns the mm, grabbed for luo_pinned_vm_uncharge(), or
 * ERR_PTR(-ENOMEM) and nothing is charged.
 */
struct mm_struct *luo_pinned_vm_charge(unsigned long pages);
/* Undoes luo_pinned_vm_charge() and drops its hold on mm. */
void luo_pinned_vm_uncharge(struct mm_struct *mm, unsigned long pages);

#endif
