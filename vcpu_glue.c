// SPDX-License-Identifier: GPL-2.0
/*
 * The KVM steps of luo-rs's vCPU handler (vcpu.rs wraps them): what a
 * vCPU file is, freezing and capturing a vCPU, and making one again from
 * its image. KVM's own structures stay here; the handler sees opaque
 * pointers and bytes.
 */
#include <linux/kvm_host.h>

#include "rust/vcpu_glue.h"

struct kvm_vcpu *luo_vcpu_of_file(struct file *file)
{
	return kvm_vcpu_of_file(file);
}

struct kvm *luo_vcpu_kvm(const struct kvm_vcpu *vcpu)
{
	return vcpu->kvm;
}

size_t luo_vcpu_image_max_size(struct kvm_vcpu *vcpu)
{
	return kvm_vcpu_image_max_size(vcpu);
}

int luo_vcpu_freeze(struct kvm_vcpu *vcpu)
{
	return kvm_vcpu_freeze(vcpu);
}

void luo_vcpu_thaw(struct kvm_vcpu *vcpu)
{
	kvm_vcpu_thaw(vcpu);
}

ssize_t luo_vcpu_save(struct kvm_vcpu *vcpu, void *buf, size_t size)
{
	return kvm_vcpu_image_save(vcpu, buf, size);
}

int luo_vcpu_check(struct kvm *kvm, const void *buf, size_t size, u32 *vcpu_id)
{
	return kvm_vcpu_image_check(kvm, buf, size, vcpu_id);
}

struct file *luo_vcpu_create(struct file *vm_file, u32 id)
{
	return kvm_create_vcpu_file(vm_file, id);
}

int luo_vcpu_load(struct file *vcpu_file, const void *buf, size_t size)
{
	struct kvm_vcpu *vcpu = kvm_vcpu_of_file(vcpu_file);

	return vcpu ? kvm_vcpu_image_load(vcpu, buf, size) : -EINVAL;
}
