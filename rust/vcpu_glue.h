/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Between vcpu_glue.c and the vCPU handler (vcpu.rs wraps each call), over
 * the calls patches 0008 and 0009 add to KVM. Built with the VM handler
 * (CONFIG_LIVEUPDATE_RS_KVM).
 */
#ifndef LUO_VCPU_GLUE_H
#define LUO_VCPU_GLUE_H

#include <linux/types.h>

struct file;
struct kvm;
struct kvm_vcpu;

/*
 * The vCPU behind file if it is a vCPU file, else NULL. No reference is
 * taken: the file holds the VM, and the vCPU lives as long as the VM.
 */
struct kvm_vcpu *luo_vcpu_of_file(struct file *file);
/* The VM the vCPU belongs to. */
struct kvm *luo_vcpu_kvm(const struct kvm_vcpu *vcpu);
/* The most bytes luo_vcpu_save() writes for the vCPU. */
size_t luo_vcpu_image_max_size(struct kvm_vcpu *vcpu);
/* Stops the vCPU's ioctls (-EBUSY while it runs: nothing is changed). */
int luo_vcpu_freeze(struct kvm_vcpu *vcpu);
/* Lets a frozen vCPU's ioctls run again. */
void luo_vcpu_thaw(struct kvm_vcpu *vcpu);
/* Writes a frozen vCPU's image into buf; its size, or a -errno. */
ssize_t luo_vcpu_save(struct kvm_vcpu *vcpu, void *buf, size_t size);
/*
 * Whether an image can be loaded into a new vCPU of kvm; sets *vcpu_id to
 * the id it must be made with.
 */
int luo_vcpu_check(struct kvm *kvm, const void *buf, size_t size, u32 *vcpu_id);
/*
 * A new vCPU of the VM behind vm_file, with id: its file, or an ERR_PTR.
 * Call it in a task of the process the VM serves.
 */
struct file *luo_vcpu_create(struct file *vm_file, u32 id);
/*
 * Loads an image luo_vcpu_check() accepted into a vCPU that has not run
 * (a new one, or one a failed load left).
 */
int luo_vcpu_load(struct file *vcpu_file, const void *buf, size_t size);

#endif
