/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Between kvm_glue.c and the VM handler (kvm.rs wraps each call). Built
 * only with KVM built in (CONFIG_LIVEUPDATE_RS_KVM): luo-rs is built in,
 * and built-in code cannot call into a module.
 */
#ifndef LUO_KVM_GLUE_H
#define LUO_KVM_GLUE_H

#include <linux/types.h>

struct file;
struct kvm;

/*
 * The VM behind file if it is a VM file (made by KVM_CREATE_VM), else
 * NULL. No reference is taken: the file's keeps the VM alive.
 */
struct kvm *luo_kvm_of_file(struct file *file);
/* The VM's machine type: the argument KVM_CREATE_VM made it with. */
unsigned long luo_kvm_type(const struct kvm *kvm);
/*
 * Whether a VM of type can cross a live update: one with no private
 * memory and no protected state, whose memory user space maps.
 */
bool luo_kvm_type_carried(unsigned long type);
/* Whether the VM serves the calling task's mm: the only one that can use it. */
bool luo_kvm_is_callers(const struct kvm *kvm);
/*
 * A new VM of type serving the calling task's mm, as a file, if the
 * caller may open /dev/kvm read-write; else the error of that open (an
 * ERR_PTR), or of making the VM.
 */
struct file *luo_kvm_create(unsigned long type);

#endif
