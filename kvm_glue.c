// SPDX-License-Identifier: GPL-2.0
/*
 * The KVM steps of luo-rs's VM handler (kvm.rs wraps them): what a VM
 * file is, its type, and making a new one. KVM's own structures stay
 * here; the handler sees an opaque struct kvm.
 */
#include <linux/fs.h>
#include <linux/kvm_host.h>
#include <linux/sched.h>

#include "rust/kvm_glue.h"

struct kvm *luo_kvm_of_file(struct file *file)
{
	return file_is_kvm(file) ? file->private_data : NULL;
}

unsigned long luo_kvm_type(const struct kvm *kvm)
{
	return kvm->arch.vm_type;
}

bool luo_kvm_type_carried(unsigned long type)
{
	/*
	 * Every other x86 type has private memory (guest_memfd that user
	 * space cannot map, memory attributes) or state the host cannot
	 * read (SEV-ES, SNP, TDX).
	 */
	return type == KVM_X86_DEFAULT_VM;
}

bool luo_kvm_is_callers(const struct kvm *kvm)
{
	return kvm->mm == current->mm;
}

struct file *luo_kvm_create(unsigned long type)
{
	struct file *dev, *vm;

	/*
	 * Only a caller that may make VMs itself gets one: opening /dev/kvm
	 * runs the checks KVM_CREATE_VM's caller passed (permissions, device
	 * cgroup, security modules), in the caller's namespaces and with its
	 * credentials, and the open file keeps KVM loaded meanwhile.
	 */
	dev = filp_open("/dev/kvm", O_RDWR | O_NONBLOCK | O_NOCTTY, 0);
	if (IS_ERR(dev))
		return ERR_CAST(dev);
	vm = kvm_create_vm_file(dev, type);
	fput(dev);
	return vm;
}
