/* SPDX-License-Identifier: GPL-2.0 */
/*
 * KVM helpers for luo-rs's VM tests: a VM whose memory is a memfd, and a
 * 16-bit real-mode vCPU that runs a few bytes of code in it until HLT.
 * Under TCG the test VM's KVM is AMD SVM with nested paging (-cpu max).
 */
#ifndef LUO_KVM_UTIL_H
#define LUO_KVM_UTIL_H

#include "luo_util.h"	/* first: it defines _GNU_SOURCE */
#include <linux/kvm.h>
#include <sys/mman.h>

/* Where the guest's code and data are, in guest physical memory. */
#define GUEST_CODE 0x1000
#define GUEST_DATA 0x2000
#define GUEST_DATA_LEN 0x1000
/* The port a guest reports its result on. */
#define GUEST_PORT 0x10

/* A new VM of type: its fd, or -errno. */
static inline int kvm_vm(unsigned long type)
{
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC), vm;

	if (kvm < 0)
		return -errno;
	vm = ioctl(kvm, KVM_CREATE_VM, type);
	if (vm < 0)
		vm = -errno;
	close(kvm);
	return vm;
}

/*
 * Runs code (len bytes, real mode, from GUEST_CODE) in vm, whose memory
 * slot 0 is the first size bytes of memfd: *out gets the last word the
 * guest wrote to GUEST_PORT. Returns 0 once the guest halts, or -errno.
 */
static inline int kvm_run_guest(int vm, int memfd, size_t size, const uint8_t *code, size_t len,
				unsigned int *out)
{
	struct kvm_userspace_memory_region slot = { .slot = 0, .memory_size = size };
	struct kvm_sregs sregs;
	struct kvm_regs regs = { .rip = GUEST_CODE, .rflags = 2 };
	struct kvm_run *run;
	int kvm, cpu, ret = 0, map;
	uint8_t *mem;

	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0)
		return -errno;
	map = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	close(kvm);
	mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	if (map <= 0 || mem == MAP_FAILED)
		return -ENOMEM;
	memcpy(mem + GUEST_CODE, code, len);
	slot.userspace_addr = (uintptr_t)mem;
	if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &slot))
		return -errno;
	cpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	if (cpu < 0)
		return -errno;
	run = mmap(NULL, map, PROT_READ | PROT_WRITE, MAP_SHARED, cpu, 0);
	if (run == MAP_FAILED || ioctl(cpu, KVM_GET_SREGS, &sregs))
		return -errno;
	sregs.cs.base = 0;
	sregs.cs.selector = 0;
	if (ioctl(cpu, KVM_SET_SREGS, &sregs) || ioctl(cpu, KVM_SET_REGS, &regs))
		return -errno;
	for (;;) {
		if (ioctl(cpu, KVM_RUN, 0)) {
			ret = -errno;
			break;
		}
		if (run->exit_reason == KVM_EXIT_HLT)
			break;
		if (run->exit_reason == KVM_EXIT_IO && run->io.port == GUEST_PORT &&
		    run->io.direction == KVM_EXIT_IO_OUT && run->io.size == 2 &&
		    run->io.count == 1) {
			*out = *(uint16_t *)((uint8_t *)run + run->io.data_offset);
			continue;
		}
		printf("# guest stopped: exit reason %u\n", run->exit_reason);
		ret = -EIO;
		break;
	}
	munmap(run, map);
	close(cpu);
	munmap(mem, size);
	return ret;
}

/*
 * Real-mode guests. The writer fills GUEST_DATA_LEN bytes at GUEST_DATA
 * with 3, 10, 17, ... (adding 7 each time); the summer adds those bytes
 * up, rotating the sum left by one bit before each (so that the sum says
 * where each byte was, not only which bytes there were), and writes it
 * to GUEST_PORT.
 */
static const uint8_t guest_writer[] = {
	0xbf, 0x00, 0x20,	/* mov di, GUEST_DATA */
	0x31, 0xc9,		/* xor cx, cx */
	0xb0, 0x03,		/* mov al, 3 */
	0x88, 0x05,		/* 1: mov [di], al */
	0x04, 0x07,		/* add al, 7 */
	0x47,			/* inc di */
	0x41,			/* inc cx */
	0x81, 0xf9, 0x00, 0x10,	/* cmp cx, GUEST_DATA_LEN */
	0x75, 0xf4,		/* jne 1b */
	0xf4,			/* hlt */
};

static const uint8_t guest_summer[] = {
	0xbe, 0x00, 0x20,	/* mov si, GUEST_DATA */
	0x31, 0xc9,		/* xor cx, cx */
	0x31, 0xdb,		/* xor bx, bx */
	0x31, 0xc0,		/* xor ax, ax */
	0x8a, 0x04,		/* 1: mov al, [si] */
	0xd1, 0xc3,		/* rol bx, 1 */
	0x01, 0xc3,		/* add bx, ax */
	0x46,			/* inc si */
	0x41,			/* inc cx */
	0x81, 0xf9, 0x00, 0x10,	/* cmp cx, GUEST_DATA_LEN */
	0x75, 0xf2,		/* jne 1b */
	0x89, 0xd8,		/* mov ax, bx */
	0xba, 0x10, 0x00,	/* mov dx, GUEST_PORT */
	0xef,			/* out dx, ax */
	0xf4,			/* hlt */
};

/* Byte i of what guest_writer writes. */
static inline uint8_t guest_byte(unsigned int i)
{
	return (uint8_t)(3 + 7 * i);
}

/* What guest_summer reports for the bytes guest_writer wrote. */
static inline unsigned int guest_sum(void)
{
	unsigned int sum = 0;

	for (unsigned int i = 0; i < GUEST_DATA_LEN; i++)
		sum = (((sum << 1) | (sum >> 15)) + guest_byte(i)) & 0xffff;
	return sum;
}

#endif /* LUO_KVM_UTIL_H */
