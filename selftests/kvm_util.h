/* SPDX-License-Identifier: GPL-2.0 */
/*
 * KVM helpers for luo-rs's VM tests: a VM whose memory is memfds and
 * guest_memfds, and a 16-bit real-mode vCPU that runs a few bytes of code
 * in it until HLT.
 * Under TCG the test VM's KVM is AMD SVM with nested paging (-cpu max).
 */
#ifndef LUO_KVM_UTIL_H
#define LUO_KVM_UTIL_H

#include "luo_util.h"	/* first: it defines _GNU_SOURCE */
#include <linux/kvm.h>
#include <stdbool.h>
#include <stdint.h>
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

/* Guest memory: size bytes of fd (a memfd or a guest_memfd) at gpa. */
struct guest_slot {
	int fd;
	bool guest_memfd;
	uint64_t gpa;
	size_t size;
};

/* A vCPU of a VM, and the VM's memory slots, mapped. */
struct guest {
	int cpu, run_size;
	struct kvm_run *run;
	unsigned int n;
	uint8_t *mem[4];
	size_t size[4];
};

/* Sets the n memory slots of vm, mapping each: 0 or -errno. */
static inline int guest_slots(struct guest *g, int vm, const struct guest_slot *slots,
			      unsigned int n)
{
	*g = (struct guest){};
	if (!n || n > 4)
		return -EINVAL;
	g->n = n;
	for (unsigned int i = 0; i < n; i++) {
		struct kvm_userspace_memory_region2 slot = {
			.slot = i,
			.guest_phys_addr = slots[i].gpa,
			.memory_size = slots[i].size,
		};

		g->size[i] = slots[i].size;
		g->mem[i] = mmap(NULL, slots[i].size, PROT_READ | PROT_WRITE, MAP_SHARED,
				 slots[i].fd, 0);
		if (g->mem[i] == MAP_FAILED)
			return -errno;
		slot.userspace_addr = (uintptr_t)g->mem[i];
		if (slots[i].guest_memfd) {
			slot.flags = KVM_MEM_GUEST_MEMFD;
			slot.guest_memfd = slots[i].fd;
		}
		if (ioctl(vm, KVM_SET_USER_MEMORY_REGION2, &slot))
			return -errno;
	}
	return 0;
}

/* Takes the vCPU cpu (closed by guest_teardown()) and maps its kvm_run: 0 or -errno. */
static inline int guest_attach(struct guest *g, int cpu)
{
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);

	g->cpu = cpu;
	if (kvm < 0)
		return -errno;
	g->run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	close(kvm);
	if (g->run_size <= 0)
		return -ENOMEM;
	g->run = mmap(NULL, g->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, g->cpu, 0);
	return g->run == MAP_FAILED ? -errno : 0;
}

/*
 * Sets the n memory slots of vm (mapping each) and makes vCPU 0: 0 or
 * -errno.
 */
static inline int guest_setup(struct guest *g, int vm, const struct guest_slot *slots,
			      unsigned int n)
{
	int ret = guest_slots(g, vm, slots, n), cpu;

	if (ret)
		return ret;
	cpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	return cpu < 0 ? -errno : guest_attach(g, cpu);
}

/*
 * Points the vCPU at GUEST_CODE in real mode, with cs = ds = 0 and
 * es = 0x1000 (es:0 is guest physical 0x10000): 0 or -errno.
 */
static inline int guest_reset(struct guest *g)
{
	struct kvm_regs regs = { .rip = GUEST_CODE, .rflags = 2 };
	struct kvm_sregs sregs;

	if (ioctl(g->cpu, KVM_GET_SREGS, &sregs))
		return -errno;
	sregs.cs.base = 0;
	sregs.cs.selector = 0;
	sregs.ds.base = 0;
	sregs.ds.selector = 0;
	sregs.es.base = 0x10000;
	sregs.es.selector = 0x1000;
	if (ioctl(g->cpu, KVM_SET_SREGS, &sregs) || ioctl(g->cpu, KVM_SET_REGS, &regs))
		return -errno;
	return 0;
}

/*
 * Runs code (len bytes, from GUEST_CODE, which lies in the first slot) on
 * the vCPU from a fresh start (guest_reset()): *out gets the last word
 * the guest wrote to GUEST_PORT. Returns 0 once the guest halts, or
 * -errno.
 */
static inline int guest_run(struct guest *g, const uint8_t *code, size_t len, unsigned int *out)
{
	struct kvm_run *run = g->run;
	int ret;

	memcpy(g->mem[0] + GUEST_CODE, code, len);
	ret = guest_reset(g);
	if (ret)
		return ret;
	for (;;) {
		if (ioctl(g->cpu, KVM_RUN, 0))
			return -errno;
		if (run->exit_reason == KVM_EXIT_HLT)
			return 0;
		if (run->exit_reason == KVM_EXIT_IO && run->io.port == GUEST_PORT &&
		    run->io.direction == KVM_EXIT_IO_OUT && run->io.size == 2 &&
		    run->io.count == 1) {
			*out = *(uint16_t *)((uint8_t *)run + run->io.data_offset);
			continue;
		}
		printf("# guest stopped: exit reason %u\n", run->exit_reason);
		return -EIO;
	}
}

/* Closes the vCPU and unmaps the memory; the slots stay set. */
static inline void guest_teardown(struct guest *g)
{
	if (g->run && g->run != MAP_FAILED)
		munmap(g->run, g->run_size);
	if (g->cpu > 0)
		close(g->cpu);
	for (unsigned int i = 0; i < g->n; i++)
		if (g->mem[i] && g->mem[i] != MAP_FAILED)
			munmap(g->mem[i], g->size[i]);
}

/* guest_setup(), one guest_run() and guest_teardown(). */
static inline int kvm_run_guest_slots(int vm, const struct guest_slot *slots, unsigned int n,
				      const uint8_t *code, size_t len, unsigned int *out)
{
	struct guest g;
	int ret = guest_setup(&g, vm, slots, n);

	if (!ret)
		ret = guest_run(&g, code, len, out);
	guest_teardown(&g);
	return ret;
}

/* kvm_run_guest_slots() with the first size bytes of memfd as slot 0. */
static inline int kvm_run_guest(int vm, int memfd, size_t size, const uint8_t *code, size_t len,
				unsigned int *out)
{
	struct guest_slot slot = { .fd = memfd, .size = size };

	return kvm_run_guest_slots(vm, &slot, 1, code, len, out);
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

/*
 * The same over two memories: the pair writer fills GUEST_DATA_LEN bytes
 * at ds:GUEST_DATA (guest physical GUEST_DATA) as guest_writer does, and
 * as many at es:GUEST_DATA (0x10000 higher) with each byte xor 0x5a; the
 * pair summer adds them up alternately, rotating as guest_summer does,
 * and writes the sum to GUEST_PORT.
 */
static const uint8_t guest_pair_writer[] = {
	0xbf, 0x00, 0x20,	/* mov di, GUEST_DATA */
	0x31, 0xc9,		/* xor cx, cx */
	0xb0, 0x03,		/* mov al, 3 */
	0x88, 0x05,		/* 1: mov [di], al */
	0x88, 0xc4,		/* mov ah, al */
	0x80, 0xf4, 0x5a,	/* xor ah, 0x5a */
	0x26, 0x88, 0x25,	/* mov es:[di], ah */
	0x04, 0x07,		/* add al, 7 */
	0x47,			/* inc di */
	0x41,			/* inc cx */
	0x81, 0xf9, 0x00, 0x10,	/* cmp cx, GUEST_DATA_LEN */
	0x75, 0xec,		/* jne 1b */
	0xf4,			/* hlt */
};

static const uint8_t guest_pair_summer[] = {
	0xbe, 0x00, 0x20,	/* mov si, GUEST_DATA */
	0x31, 0xc9,		/* xor cx, cx */
	0x31, 0xdb,		/* xor bx, bx */
	0x31, 0xc0,		/* xor ax, ax */
	0x8a, 0x04,		/* 1: mov al, [si] */
	0xd1, 0xc3,		/* rol bx, 1 */
	0x01, 0xc3,		/* add bx, ax */
	0x26, 0x8a, 0x04,	/* mov al, es:[si] */
	0xd1, 0xc3,		/* rol bx, 1 */
	0x01, 0xc3,		/* add bx, ax */
	0x46,			/* inc si */
	0x41,			/* inc cx */
	0x81, 0xf9, 0x00, 0x10,	/* cmp cx, GUEST_DATA_LEN */
	0x75, 0xeb,		/* jne 1b */
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

/* What guest_pair_summer reports for what guest_pair_writer wrote. */
static inline unsigned int guest_pair_sum(void)
{
	unsigned int sum = 0;

	for (unsigned int i = 0; i < GUEST_DATA_LEN; i++) {
		sum = (((sum << 1) | (sum >> 15)) + guest_byte(i)) & 0xffff;
		sum = (((sum << 1) | (sum >> 15)) + (guest_byte(i) ^ 0x5a)) & 0xffff;
	}
	return sum;
}

#endif /* LUO_KVM_UTIL_H */
