// SPDX-License-Identifier: GPL-2.0
/*
 * Two-stage: a vCPU's state crosses a live update, and the guest runs on
 * from the next instruction (the vCPU handler, Documentation/kvm.rst).
 *
 * The guest counts in a loop with no exits: eax and ebx count, memory at
 * 0x3000 holds the count and at 0x3004 a hash of every count so far
 * (edx = rol(edx, 1) ^ eax), so that an instruction lost or run twice
 * shows, in the registers or in memory. It stops with an OUT on port 0x10
 * when the count reaches the target at 0x3008, and on port 0x11 if eax and
 * ebx ever differ.
 *
 * Stage 1: the vCPU runs in a thread and is stopped by a signal, wherever
 * it is; a checker finishes the loop iteration it stopped in and checks
 * the count and the hash (so a bad checker cannot pass stage 2 either).
 * Refused: a vCPU whose VM is not in the session (ENOLINK), one from
 * another process (EPERM); FREEZE of a guest that turned SVM on
 * (EOPNOTSUPP), while the vCPU is in KVM_RUN (EBUSY),
 * and after an exit the VMM has not completed (EINPROGRESS: the OUT would
 * run twice); between FREEZE and CANCEL KVM_RUN gets EBUSY, after CANCEL
 * the guest runs on. Then the vCPU runs a random while, is stopped, its
 * registers go into a memfd, and the VM, its guest_memfd, the vCPU and
 * the record are preserved; PREPARE; kexec (FREEZE inside reboot()).
 *
 * Stage 2: the VM and guest_memfd are retrieved; the vCPU's RETRIEVE_FD
 * gets EAGAIN until the memslot is set, and EPERM from another process;
 * then it has the very registers stage 1 saw. The loop's prologue is
 * overwritten with HLT (a guest restarted from its start halts), and the
 * guest runs on to 100000 more: the count, ebx and the hash must be
 * exactly those of an uninterrupted run. XMM registers and MSRs the VMM
 * set, which the guest never touches, are as they were, and the TSC goes
 * on from where it was. A second VM with an in-kernel irqchip carries its
 * vCPU's local APIC (RETRIEVE_FD answers EAGAIN until the irqchip is made
 * again and the capability the VM had is enabled; then the vCPU is made
 * but refuses its PV EOI MSR, EINVAL, until the memory slot the MSR
 * points into is set, and the next RETRIEVE_FD loads that same vCPU); a third session's vCPU is never retrieved (its image waits,
 * parked, after EAGAIN) and is freed at FINISH.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <time.h>
#include "luo_test.h"
#include "memfd_util.h"
#include "kvm_util.h"

#define GMEM_SIZE (1UL << 20)
#define TOKEN_VM 1
#define TOKEN_GMEM 2
#define TOKEN_VCPU 3
#define TOKEN_RECORD 4
#define SHARED (GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED)

/* Guest memory: the count, the hash, the target. */
#define COUNT 0x3000
#define HASH 0x3004
#define TARGET 0x3008
#define HASH0 0x9e3779b9u
#define PORT_DONE 0x10
#define PORT_BAD 0x11

/* Offsets in the guest's code (at GUEST_CODE), for the checker. */
enum {
	AT_START = 0x00,	/* mov eax, [COUNT] */
	AT_MOV_EBX = 0x04,	/* mov ebx, eax */
	AT_MOV_EDX = 0x07,	/* mov edx, [HASH] */
	AT_LOOP = 0x0c,		/* inc eax */
	AT_STORE_COUNT = 0x0e,	/* mov [COUNT], eax */
	AT_ROL = 0x12,		/* rol edx, 1 */
	AT_XOR = 0x15,		/* xor edx, eax */
	AT_STORE_HASH = 0x18,	/* mov [HASH], edx */
	AT_INC_EBX = 0x1d,	/* inc ebx */
	AT_CMP = 0x1f,		/* cmp eax, ebx */
	AT_JNE_BAD = 0x22,	/* jne bad */
	AT_CMP_TARGET = 0x24,	/* cmp eax, [TARGET] */
	AT_JNE_LOOP = 0x29,	/* jne loop */
	AT_OUT = 0x2b,		/* out PORT_DONE, eax */
	AT_JMP = 0x2e,		/* jmp loop */
	AT_BAD = 0x30,
};

static const uint8_t counter[] = {
	0x66, 0xa1, 0x00, 0x30,		/* mov eax, [COUNT] */
	0x66, 0x89, 0xc3,		/* mov ebx, eax */
	0x66, 0x8b, 0x16, 0x04, 0x30,	/* mov edx, [HASH] */
	0x66, 0x40,			/* loop: inc eax */
	0x66, 0xa3, 0x00, 0x30,		/* mov [COUNT], eax */
	0x66, 0xd1, 0xc2,		/* rol edx, 1 */
	0x66, 0x31, 0xc2,		/* xor edx, eax */
	0x66, 0x89, 0x16, 0x04, 0x30,	/* mov [HASH], edx */
	0x66, 0x43,			/* inc ebx */
	0x66, 0x39, 0xd8,		/* cmp eax, ebx */
	0x75, 0x0c,			/* jne bad */
	0x66, 0x3b, 0x06, 0x08, 0x30,	/* cmp eax, [TARGET] */
	0x75, 0xe1,			/* jne loop */
	0x66, 0xe7, PORT_DONE,		/* out PORT_DONE, eax */
	0xeb, 0xdc,			/* jmp loop */
	0x66, 0xe7, PORT_BAD,		/* bad: out PORT_BAD, eax */
	0xf4,				/* hlt */
};

static uint32_t rol1(uint32_t x)
{
	return x << 1 | x >> 31;
}

/* The hash after count iterations. */
static uint32_t hash_of(uint32_t count)
{
	uint32_t h = HASH0;

	for (uint32_t k = 1; k <= count; k++)
		h = rol1(h) ^ k;
	return h;
}

/* What the checker follows: the loop's registers and memory. */
struct loop_state {
	uint32_t eax, ebx, edx, count, hash;
};

static uint32_t *guest_word(struct guest *g, unsigned int gpa)
{
	return (uint32_t *)(g->mem[0] + gpa);
}

/*
 * Whether a vCPU stopped at rip with regs and the guest's memory in g is
 * where an uninterrupted run would be: finishes the loop iteration in C
 * and checks the count and the hash. Explains itself if not.
 */
static bool consistent(struct guest *g, const struct kvm_regs *regs)
{
	struct loop_state s = {
		.eax = regs->rax, .ebx = regs->rbx, .edx = regs->rdx,
		.count = *guest_word(g, COUNT), .hash = *guest_word(g, HASH),
	};
	uint64_t at = regs->rip - GUEST_CODE;

	if (at >= AT_BAD) {
		printf("# stopped outside the loop, at %#llx\n", (unsigned long long)regs->rip);
		return false;
	}
	/* The prologue and an iteration: at most 11 steps. */
	for (int steps = 0; at != AT_LOOP; steps++) {
		if (steps > 11)
			return false;
		switch (at) {
		case AT_START: s.eax = s.count; at = AT_MOV_EBX; break;
		case AT_MOV_EBX: s.ebx = s.eax; at = AT_MOV_EDX; break;
		case AT_MOV_EDX: s.edx = s.hash; at = AT_LOOP; break;
		case AT_STORE_COUNT: s.count = s.eax; at = AT_ROL; break;
		case AT_ROL: s.edx = rol1(s.edx); at = AT_XOR; break;
		case AT_XOR: s.edx ^= s.eax; at = AT_STORE_HASH; break;
		case AT_STORE_HASH: s.hash = s.edx; at = AT_INC_EBX; break;
		case AT_INC_EBX: s.ebx++; at = AT_CMP; break;
		case AT_CMP: at = AT_JNE_BAD; break;
		case AT_JNE_BAD: at = s.eax == s.ebx ? AT_CMP_TARGET : AT_BAD; break;
		case AT_CMP_TARGET: at = AT_JNE_LOOP; break;
		case AT_JNE_LOOP: at = AT_LOOP; break;	/* the target is 0 while stopped */
		case AT_OUT: at = AT_JMP; break;
		case AT_JMP: at = AT_LOOP; break;
		default:
			printf("# eax %#x ebx %#x: the guest went to bad\n", s.eax, s.ebx);
			return false;
		}
	}
	if (s.eax != s.ebx || s.count != s.eax || s.edx != s.hash || s.hash != hash_of(s.count)) {
		printf("# at %#llx: eax %u ebx %u [count] %u edx %#x [hash] %#x, want %#x\n",
		       (unsigned long long)regs->rip, s.eax, s.ebx, s.count, s.edx, s.hash,
		       hash_of(s.count));
		return false;
	}
	return true;
}

/* The vCPU thread: KVM_RUN until a signal stops it, or an exit. */
static struct guest *running;
static int run_errno;

static void stop_signal(int sig)
{
	running->run->immediate_exit = 1;
}

static void *vcpu_thread(void *arg)
{
	struct guest *g = arg;

	run_errno = 0;
	if (ioctl(g->cpu, KVM_RUN, 0))
		run_errno = errno;
	return NULL;
}

/*
 * Runs the guest for about ms milliseconds in a thread, then stops it
 * with a signal: 0 once the thread is out of KVM_RUN with EINTR, or what
 * else KVM_RUN said. The immediate exit is cleared again.
 */
static int run_for(struct guest *g, unsigned int ms, void (*meanwhile)(void))
{
	struct timespec t = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
	pthread_t thread;

	running = g;
	g->run->immediate_exit = 0;
	CHECK(!pthread_create(&thread, NULL, vcpu_thread, g), "pthread_create\n");
	nanosleep(&t, NULL);
	if (meanwhile)
		meanwhile();
	pthread_kill(thread, SIGUSR1);
	pthread_join(thread, NULL);
	g->run->immediate_exit = 0;
	return run_errno == EINTR ? 0 : run_errno ? -run_errno : -EIO;
}

static struct kvm_regs regs_of(struct guest *g)
{
	struct kvm_regs regs;

	CHECK(!ioctl(g->cpu, KVM_GET_REGS, &regs), "KVM_GET_REGS: %s\n", strerror(errno));
	return regs;
}

static int dev;

/* Meanwhile in KVM_RUN: PREPARE, and FREEZE must refuse. */
static void freeze_while_running(void)
{
	CHECK(!luo_set_event(dev, LIVEUPDATE_EVENT_PREPARE), "PREPARE: %s\n", strerror(errno));
	CHECK(luo_set_event(dev, LIVEUPDATE_EVENT_FREEZE) < 0 && errno == EBUSY,
	      "FREEZE with the vCPU in KVM_RUN: not EBUSY (%s)\n", strerror(errno));
}

/* MSRs the VMM sets (the guest never uses them), and their values. */
static const struct kvm_msr_entry set_msrs[] = {
	{ .index = 0x174, .data = 0x1234 },		/* IA32_SYSENTER_CS */
	{ .index = 0x175, .data = 0xdeadbeef000 },	/* IA32_SYSENTER_ESP */
	{ .index = 0x176, .data = 0xfeed0000 },		/* IA32_SYSENTER_EIP */
};
#define MSR_IA32_TSC 0x10
/* PV EOI: its MSR points into guest memory, in a second memory slot. */
#define MSR_KVM_PV_EOI_EN 0x4b564d04
#define PV_EOI_GPA 0x100000
#define PV_EOI_SLOT_SIZE (64UL << 10)

/* Local APIC registers the VMM sets, by offset in kvm_lapic_state. */
static const struct { unsigned int reg; uint32_t value; } set_apic[] = {
	{ 0x080, 0x30 },	/* TPR */
	{ 0x0f0, 0x1ff },	/* spurious vector, APIC enabled */
	{ 0x320, 0x300ec },	/* LVT timer: periodic, masked, vector 0xec */
	{ 0x350, 0x10700 },	/* LVT LINT0: ExtINT, masked */
	{ 0x380, 0x7fffffff },	/* timer initial count */
	{ 0x3e0, 0xb },		/* timer divide by 1 */
};

/* A VM capability that changes what a vCPU's events mean. */
static const struct kvm_enable_cap triple_fault_event = {
	.cap = KVM_CAP_X86_TRIPLE_FAULT_EVENT,
	.args[0] = 1,
};

/* What stage 1 saw when it stopped the vCPU the last time. */
struct record {
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_fpu fpu;
	uint64_t tsc;
};

static uint32_t *apic_reg(struct kvm_lapic_state *apic, unsigned int reg)
{
	return (uint32_t *)(apic->regs + reg);
}

/* Reads MSR index of the vCPU: its value, or fails the test. */
static uint64_t msr_of(int cpu, uint32_t index)
{
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry entry;
	} msrs = { .hdr.nmsrs = 1, .entry.index = index };

	CHECK(ioctl(cpu, KVM_GET_MSRS, &msrs) == 1, "KVM_GET_MSRS %#x\n", index);
	return msrs.entry.data;
}

/* Whether the entry for function fn (index 0) has bit in register reg. */
static bool cpuid_has(const struct kvm_cpuid2 *cpuid, uint32_t fn, int reg, int bit)
{
	for (uint32_t i = 0; i < cpuid->nent; i++) {
		const struct kvm_cpuid_entry2 *e = &cpuid->entries[i];
		uint32_t regs[] = { e->eax, e->ebx, e->ecx, e->edx };

		if (e->function == fn && e->index == 0)
			return regs[reg] >> bit & 1;
	}
	return false;
}

/*
 * A vCPU whose guest turned hardware virtualization on (EFER.SVME, or
 * CR4.VMXE on Intel): FREEZE refuses it.
 */
static void l1_hypervisor_refused(void)
{
	struct {
		struct kvm_cpuid2 hdr;
		struct kvm_cpuid_entry2 entries[256];
	} cpuid = { .hdr.nent = 256 };
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC), vm, cpu, s;
	struct kvm_sregs sregs;

	CHECK(kvm >= 0 && !ioctl(kvm, KVM_GET_SUPPORTED_CPUID, &cpuid),
	      "KVM_GET_SUPPORTED_CPUID: %s\n", strerror(errno));
	vm = kvm_vm(KVM_X86_DEFAULT_VM);
	cpu = vm < 0 ? vm : ioctl(vm, KVM_CREATE_VCPU, 0);
	CHECK(cpu >= 0 && !ioctl(cpu, KVM_SET_CPUID2, &cpuid) && !ioctl(cpu, KVM_GET_SREGS, &sregs),
	      "a vCPU with the supported CPUID: %s\n", strerror(errno));
	if (cpuid_has(&cpuid.hdr, 0x80000001, 2, 2))		/* SVM */
		sregs.efer |= 1 << 12;				/* EFER.SVME */
	else if (cpuid_has(&cpuid.hdr, 1, 2, 5))		/* VMX */
		sregs.cr4 |= 1 << 13;				/* CR4.VMXE */
	else
		ksft_exit_fail_msg("KVM offers no nested virtualization (nested=0?)\n");
	CHECK(!ioctl(cpu, KVM_SET_SREGS, &sregs), "EFER.SVME or CR4.VMXE: %s\n", strerror(errno));
	s = luo_create_session(dev, "l1");
	CHECK(s >= 0 && !luo_preserve(s, vm, 1) && !luo_preserve(s, cpu, 2), "PRESERVE_FD in \"l1\"\n");
	CHECK(!luo_set_event(dev, LIVEUPDATE_EVENT_PREPARE), "PREPARE: %s\n", strerror(errno));
	CHECK(luo_set_event(dev, LIVEUPDATE_EVENT_FREEZE) < 0 && errno == EOPNOTSUPP,
	      "FREEZE of an L1 hypervisor: not EOPNOTSUPP (%s)\n", strerror(errno));
	close(s);
	close(cpu);
	close(vm);
	close(kvm);
}

static int guest_memfd(int vm)
{
	struct kvm_create_guest_memfd args = { .size = GMEM_SIZE, .flags = SHARED };
	int fd = ioctl(vm, KVM_CREATE_GUEST_MEMFD, &args);

	return fd < 0 ? -errno : fd;
}

static void luo_stage1(void)
{
	struct sigaction sa = { .sa_handler = stop_signal };
	struct guest_slot slot;
	struct record r;
	struct kvm_regs regs;
	struct guest g;
	struct timespec now;
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry entries[ARRAY_SIZE(set_msrs)];
	} msrs = { .hdr.nmsrs = ARRAY_SIZE(set_msrs) };
	struct kvm_lapic_state apic;
	struct guest_slot slots2[2];
	struct guest g2;
	int s, vm, gmem, record, ret, apic_s, vm2, gmem2, lone, vm3, cpu3;

	dev = luo_open();
	CHECK(dev >= 0, "open %s: %s\n", LUO_DEV, strerror(-dev));
	CHECK(!sigaction(SIGUSR1, &sa, NULL), "sigaction\n");
	vm = kvm_vm(KVM_X86_DEFAULT_VM);
	CHECK(vm >= 0, "KVM_CREATE_VM: %s\n", strerror(-vm));
	gmem = guest_memfd(vm);
	CHECK(gmem >= 0, "KVM_CREATE_GUEST_MEMFD: %s\n", strerror(-gmem));
	slot = (struct guest_slot){ .fd = gmem, .guest_memfd = true, .size = GMEM_SIZE };
	CHECK(!guest_setup(&g, vm, &slot, 1), "guest setup\n");
	memcpy(g.mem[0] + GUEST_CODE, counter, sizeof(counter));
	*guest_word(&g, COUNT) = 0;
	*guest_word(&g, HASH) = HASH0;
	*guest_word(&g, TARGET) = 0;
	CHECK(!guest_reset(&g), "guest reset\n");

	/* The checker, on stops wherever they land. */
	for (unsigned int i = 0; i < 8; i++) {
		CHECK(!(ret = run_for(&g, 20 + 13 * i, NULL)), "KVM_RUN: %s\n", strerror(-ret));
		regs = regs_of(&g);
		CHECK(consistent(&g, &regs), "the checker failed on a plain stop\n");
		printf("# stop %u: count %u, at +%#llx\n", i, (unsigned int)regs.rax,
		       (unsigned long long)(regs.rip - GUEST_CODE));
	}

	s = luo_create_session(dev, "vcpu");
	CHECK(s >= 0, "CREATE_SESSION\n");
	CHECK(luo_preserve(s, g.cpu, TOKEN_VCPU) == -ENOLINK, "a vCPU without its VM\n");
	CHECK(!luo_preserve(s, vm, TOKEN_VM) && !luo_preserve(s, gmem, TOKEN_GMEM),
	      "PRESERVE_FD of the VM and guest_memfd\n");
	CHECK(luo_preserve_from_child(g.cpu) == -EPERM, "a vCPU of another process\n");
	CHECK(!luo_preserve(s, g.cpu, TOKEN_VCPU), "PRESERVE_FD of the vCPU: %s\n",
	      strerror(errno));

	/* FREEZE refuses a vCPU in KVM_RUN, and nothing stays frozen. */
	CHECK(!(ret = run_for(&g, 50, freeze_while_running)), "KVM_RUN after a refused FREEZE: %s\n",
	      strerror(-ret));
	regs = regs_of(&g);
	CHECK(consistent(&g, &regs), "the guest after a refused FREEZE\n");

	/* An exit the VMM has not completed: the OUT would run twice. */
	*guest_word(&g, TARGET) = regs.rax + 1000;
	g.run->immediate_exit = 0;
	CHECK(!ioctl(g.cpu, KVM_RUN, 0) && g.run->exit_reason == KVM_EXIT_IO &&
	      g.run->io.port == PORT_DONE, "the guest did not reach its target (exit %u)\n",
	      g.run->exit_reason);
	CHECK(!luo_set_event(dev, LIVEUPDATE_EVENT_PREPARE), "PREPARE: %s\n", strerror(errno));
	CHECK(luo_set_event(dev, LIVEUPDATE_EVENT_FREEZE) < 0 && errno == EINPROGRESS,
	      "FREEZE after an uncompleted exit: not EINPROGRESS (%s)\n", strerror(errno));
	g.run->immediate_exit = 1;
	CHECK(ioctl(g.cpu, KVM_RUN, 0) < 0 && errno == EINTR, "completing the exit\n");
	g.run->immediate_exit = 0;
	regs = regs_of(&g);
	CHECK(regs.rip == GUEST_CODE + AT_JMP && regs.rax == *guest_word(&g, TARGET),
	      "the OUT was not completed: at +%#llx\n", (unsigned long long)(regs.rip - GUEST_CODE));
	*guest_word(&g, TARGET) = 0;

	/* Frozen, the vCPU cannot run; after CANCEL it runs on. */
	CHECK(!luo_set_event(dev, LIVEUPDATE_EVENT_PREPARE), "PREPARE: %s\n", strerror(errno));
	CHECK(!luo_set_event(dev, LIVEUPDATE_EVENT_FREEZE), "FREEZE: %s\n", strerror(errno));
	CHECK(ioctl(g.cpu, KVM_RUN, 0) < 0 && errno == EBUSY, "KVM_RUN while frozen: not EBUSY\n");
	CHECK(ioctl(g.cpu, KVM_GET_REGS, &regs) < 0 && errno == EBUSY,
	      "KVM_GET_REGS while frozen: not EBUSY\n");
	CHECK(!luo_set_event(dev, LIVEUPDATE_EVENT_CANCEL), "CANCEL: %s\n", strerror(errno));
	CHECK(!(ret = run_for(&g, 20, NULL)), "KVM_RUN after CANCEL: %s\n", strerror(-ret));
	regs = regs_of(&g);
	CHECK(consistent(&g, &regs), "the guest after CANCEL\n");

	l1_hypervisor_refused();

	/* State the guest does not touch: XMM registers and MSRs. */
	CHECK(!ioctl(g.cpu, KVM_GET_FPU, &r.fpu), "KVM_GET_FPU\n");
	for (unsigned int i = 0; i < 16 * 8; i++)
		r.fpu.xmm[i / 16][i % 16] = luo_byte(i, 77);
	CHECK(!ioctl(g.cpu, KVM_SET_FPU, &r.fpu), "KVM_SET_FPU: %s\n", strerror(errno));
	memcpy(msrs.entries, set_msrs, sizeof(set_msrs));
	CHECK(ioctl(g.cpu, KVM_SET_MSRS, &msrs) == ARRAY_SIZE(set_msrs), "KVM_SET_MSRS\n");

	/* The last stop, anywhere; its registers for stage 2. */
	clock_gettime(CLOCK_MONOTONIC, &now);
	CHECK(!(ret = run_for(&g, 200 + now.tv_nsec / 1000 % 600, NULL)), "KVM_RUN: %s\n",
	      strerror(-ret));
	r.regs = regs_of(&g);
	CHECK(!ioctl(g.cpu, KVM_GET_SREGS, &r.sregs), "KVM_GET_SREGS\n");
	r.tsc = msr_of(g.cpu, MSR_IA32_TSC);
	CHECK(consistent(&g, &r.regs), "the guest before the update\n");
	printf("# stopped at count %u, at +%#llx\n", (unsigned int)r.regs.rax,
	       (unsigned long long)(r.regs.rip - GUEST_CODE));
	record = luo_memfd("record", sizeof(r));
	CHECK(record >= 0 && pwrite(record, &r, sizeof(r), 0) == sizeof(r), "record\n");
	CHECK(!luo_preserve(s, record, TOKEN_RECORD), "PRESERVE_FD of the record\n");

	/* A second VM, with an in-kernel irqchip: its vCPU has a local APIC. */
	vm2 = kvm_vm(KVM_X86_DEFAULT_VM);
	CHECK(vm2 >= 0 && !ioctl(vm2, KVM_CREATE_IRQCHIP, 0), "a VM with an irqchip\n");
	CHECK(!ioctl(vm2, KVM_ENABLE_CAP, &triple_fault_event), "KVM_CAP_X86_TRIPLE_FAULT_EVENT\n");
	gmem2 = guest_memfd(vm2);
	CHECK(gmem2 >= 0, "KVM_CREATE_GUEST_MEMFD: %s\n", strerror(-gmem2));
	slots2[0] = (struct guest_slot){ .fd = gmem2, .guest_memfd = true, .size = GMEM_SIZE };
	slots2[1] = (struct guest_slot){ .fd = luo_memfd("pv-eoi", PV_EOI_SLOT_SIZE),
					 .gpa = PV_EOI_GPA, .size = PV_EOI_SLOT_SIZE };
	CHECK(slots2[1].fd >= 0 && !guest_setup(&g2, vm2, slots2, 2), "guest setup\n");
	memcpy(g2.mem[0] + GUEST_CODE, counter, sizeof(counter));
	*guest_word(&g2, COUNT) = 0;
	*guest_word(&g2, HASH) = HASH0;
	*guest_word(&g2, TARGET) = 0;
	CHECK(!guest_reset(&g2), "guest reset\n");
	CHECK(!ioctl(g2.cpu, KVM_GET_LAPIC, &apic), "KVM_GET_LAPIC\n");
	for (unsigned int i = 0; i < ARRAY_SIZE(set_apic); i++)
		*apic_reg(&apic, set_apic[i].reg) = set_apic[i].value;
	CHECK(!ioctl(g2.cpu, KVM_SET_LAPIC, &apic), "KVM_SET_LAPIC: %s\n", strerror(errno));
	msrs.hdr.nmsrs = 1;
	msrs.entries[0] = (struct kvm_msr_entry){ .index = MSR_KVM_PV_EOI_EN, .data = PV_EOI_GPA | 1 };
	CHECK(ioctl(g2.cpu, KVM_SET_MSRS, &msrs) == 1, "MSR_KVM_PV_EOI_EN\n");
	CHECK(!(ret = run_for(&g2, 100, NULL)), "KVM_RUN: %s\n", strerror(-ret));
	regs = regs_of(&g2);
	CHECK(consistent(&g2, &regs), "the guest with a local APIC\n");
	apic_s = luo_create_session(dev, "apic");
	CHECK(apic_s >= 0, "CREATE_SESSION \"apic\"\n");
	CHECK(!luo_preserve(apic_s, vm2, TOKEN_VM) && !luo_preserve(apic_s, gmem2, TOKEN_GMEM) &&
	      !luo_preserve(apic_s, g2.cpu, TOKEN_VCPU), "PRESERVE_FD in \"apic\"\n");

	/* A VM and a vCPU that never ran, which nobody will retrieve. */
	lone = luo_create_session(dev, "lone");
	vm3 = kvm_vm(KVM_X86_DEFAULT_VM);
	cpu3 = vm3 < 0 ? vm3 : ioctl(vm3, KVM_CREATE_VCPU, 0);
	CHECK(lone >= 0 && cpu3 >= 0, "the lone VM and vCPU\n");
	CHECK(!luo_preserve(lone, vm3, TOKEN_VM) && !luo_preserve(lone, cpu3, TOKEN_VCPU),
	      "PRESERVE_FD in \"lone\"\n");
	close(cpu3);
	close(vm3);

	CHECK(!luo_set_event(dev, LIVEUPDATE_EVENT_PREPARE), "PREPARE: %s\n", strerror(errno));
	ksft_exit_fail_msg("kexec: %s\n", strerror(-luo_kexec("")));
}

/* Stage 2: RETRIEVE_FD of token from a child process: what it answered. */
static int retrieve_from_child(int s, __u64 token)
{
	int status, pipefd[2], answer = 0;
	pid_t pid;

	if (pipe(pipefd))
		return -errno;
	pid = fork();
	if (!pid) {
		answer = luo_retrieve_fd(s, token);
		_exit(write(pipefd[1], &answer, sizeof(answer)) == sizeof(answer) ? 0 : 1);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
	    WEXITSTATUS(status) || read(pipefd[0], &answer, sizeof(answer)) != sizeof(answer))
		answer = -ECHILD;
	close(pipefd[0]);
	close(pipefd[1]);
	return answer;
}

/*
 * Lets the guest of g, retrieved with registers was, count on to 100000
 * more and checks it ends exactly where an uninterrupted run would.
 */
static void run_on(struct __test_metadata *_metadata, struct guest *g,
		   const struct kvm_regs *was)
{
	struct kvm_regs regs;
	uint32_t target = (uint32_t)was->rax + 100000;

	/* A guest restarted from its start would halt. */
	memset(g->mem[0] + GUEST_CODE, 0xf4, AT_LOOP);
	*guest_word(g, TARGET) = target;
	ASSERT_EQ(0, ioctl(g->cpu, KVM_RUN, 0));
	ASSERT_EQ(KVM_EXIT_IO, g->run->exit_reason) {
		TH_LOG("exit %u at %#llx", g->run->exit_reason, regs_of(g).rip);
	}
	EXPECT_EQ(PORT_DONE, g->run->io.port) {
		TH_LOG("eax and ebx differ: an instruction was lost or ran twice");
	}
	regs = regs_of(g);
	EXPECT_EQ(target, (uint32_t)regs.rax);
	EXPECT_EQ(target, (uint32_t)regs.rbx);
	EXPECT_EQ(target, *guest_word(g, COUNT));
	EXPECT_EQ(hash_of(target), (uint32_t)regs.rdx);
	EXPECT_EQ(hash_of(target), *guest_word(g, HASH));
	printf("# counted on from %u to %u\n", (uint32_t)was->rax, target);
}

TEST(the_vcpu_runs_on_from_the_next_instruction)
{
	struct guest_slot slot;
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	struct record was;
	struct kvm_fpu fpu;
	struct guest g;
	uint64_t tsc;
	int s, vm, gmem, cpu, record;

	dev = luo_open();
	ASSERT_LE(0, dev);
	s = luo_retrieve_session(dev, "vcpu");
	ASSERT_LE(0, s);
	record = luo_retrieve_fd(s, TOKEN_RECORD);
	ASSERT_LE(0, record);
	ASSERT_EQ(sizeof(was), pread(record, &was, sizeof(was), 0));
	vm = luo_retrieve_fd(s, TOKEN_VM);
	ASSERT_LE(0, vm);
	gmem = luo_retrieve_fd(s, TOKEN_GMEM);
	ASSERT_LE(0, gmem);

	/* Not before the VM has its memory; not for another process. */
	EXPECT_EQ(-EAGAIN, luo_retrieve_fd(s, TOKEN_VCPU));
	slot = (struct guest_slot){ .fd = gmem, .guest_memfd = true, .size = GMEM_SIZE };
	ASSERT_EQ(0, guest_slots(&g, vm, &slot, 1));
	EXPECT_EQ(-EPERM, retrieve_from_child(s, TOKEN_VCPU));
	cpu = luo_retrieve_fd(s, TOKEN_VCPU);
	ASSERT_LE(0, cpu);
	ASSERT_EQ(0, guest_attach(&g, cpu));

	/* The very state stage 1 stopped the vCPU in, and its memory. */
	ASSERT_EQ(0, ioctl(cpu, KVM_GET_REGS, &regs));
	EXPECT_EQ(0, memcmp(&was.regs, &regs, sizeof(regs))) {
		TH_LOG("rip %#llx -> %#llx, rax %#llx -> %#llx, rdx %#llx -> %#llx",
		       was.regs.rip, regs.rip, was.regs.rax, regs.rax, was.regs.rdx, regs.rdx);
	}
	ASSERT_EQ(0, ioctl(cpu, KVM_GET_SREGS, &sregs));
	EXPECT_EQ(0, memcmp(&was.sregs.cs, &sregs.cs, sizeof(sregs.cs)));
	EXPECT_EQ(0, memcmp(&was.sregs.ds, &sregs.ds, sizeof(sregs.ds)));
	EXPECT_EQ(0, memcmp(&was.sregs.es, &sregs.es, sizeof(sregs.es)));
	EXPECT_EQ(was.sregs.cr0, sregs.cr0);
	EXPECT_EQ(was.sregs.efer, sregs.efer);
	EXPECT_TRUE(consistent(&g, &regs));

	/* What the guest does not touch: XMM registers, MSRs, the TSC. */
	ASSERT_EQ(0, ioctl(cpu, KVM_GET_FPU, &fpu));
	EXPECT_EQ(0, memcmp(was.fpu.xmm, fpu.xmm, sizeof(fpu.xmm)));
	for (unsigned int i = 0; i < ARRAY_SIZE(set_msrs); i++)
		EXPECT_EQ(set_msrs[i].data, msr_of(cpu, set_msrs[i].index));
	/* A new vCPU's TSC starts from 0: this one goes on from its own. */
	tsc = msr_of(cpu, MSR_IA32_TSC);
	EXPECT_LE(was.tsc, tsc) {
		TH_LOG("TSC %#llx, was %#llx", (unsigned long long)tsc,
		       (unsigned long long)was.tsc);
	}

	run_on(_metadata, &g, &was.regs);

	EXPECT_EQ(0, luo_finish(s));
	guest_teardown(&g);
	close(record);
	close(gmem);
	close(vm);
	close(s);
	close(dev);
}

TEST(a_vcpu_keeps_its_local_apic)
{
	struct kvm_userspace_memory_region2 region;
	struct kvm_lapic_state apic;
	int pv_eoi;
	void *map;
	struct guest_slot slot;
	struct kvm_regs regs;
	struct guest g;
	int s, vm, gmem, cpu;

	dev = luo_open();
	ASSERT_LE(0, dev);
	s = luo_retrieve_session(dev, "apic");
	ASSERT_LE(0, s);
	vm = luo_retrieve_fd(s, TOKEN_VM);
	ASSERT_LE(0, vm);
	gmem = luo_retrieve_fd(s, TOKEN_GMEM);
	ASSERT_LE(0, gmem);
	slot = (struct guest_slot){ .fd = gmem, .guest_memfd = true, .size = GMEM_SIZE };
	ASSERT_EQ(0, guest_slots(&g, vm, &slot, 1));
	/* Not before the VM has an in-kernel irqchip and its capabilities. */
	EXPECT_EQ(-EAGAIN, luo_retrieve_fd(s, TOKEN_VCPU));
	ASSERT_EQ(0, ioctl(vm, KVM_CREATE_IRQCHIP, 0));
	EXPECT_EQ(-EAGAIN, luo_retrieve_fd(s, TOKEN_VCPU));
	ASSERT_EQ(0, ioctl(vm, KVM_ENABLE_CAP, &triple_fault_event));
	/*
	 * The vCPU is made, but refuses its PV EOI MSR until the memory it
	 * points into is there: the next RETRIEVE_FD loads the same vCPU.
	 */
	EXPECT_EQ(-EINVAL, luo_retrieve_fd(s, TOKEN_VCPU));
	pv_eoi = luo_memfd("pv-eoi", PV_EOI_SLOT_SIZE);
	ASSERT_LE(0, pv_eoi);
	map = mmap(NULL, PV_EOI_SLOT_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, pv_eoi, 0);
	ASSERT_NE(MAP_FAILED, map);
	region = (struct kvm_userspace_memory_region2){
		.slot = 1, .guest_phys_addr = PV_EOI_GPA, .memory_size = PV_EOI_SLOT_SIZE,
		.userspace_addr = (uintptr_t)map,
	};
	ASSERT_EQ(0, ioctl(vm, KVM_SET_USER_MEMORY_REGION2, &region));
	cpu = luo_retrieve_fd(s, TOKEN_VCPU);
	ASSERT_LE(0, cpu);
	EXPECT_EQ(PV_EOI_GPA | 1, msr_of(cpu, MSR_KVM_PV_EOI_EN));
	ASSERT_EQ(0, guest_attach(&g, cpu));

	ASSERT_EQ(0, ioctl(cpu, KVM_GET_LAPIC, &apic));
	for (unsigned int i = 0; i < ARRAY_SIZE(set_apic); i++) {
		EXPECT_EQ(set_apic[i].value, *apic_reg(&apic, set_apic[i].reg)) {
			TH_LOG("APIC register %#x", set_apic[i].reg);
		}
	}
	regs = regs_of(&g);
	EXPECT_TRUE(consistent(&g, &regs));
	run_on(_metadata, &g, &regs);

	EXPECT_EQ(0, luo_finish(s));
	guest_teardown(&g);
	munmap(map, PV_EOI_SLOT_SIZE);
	close(pv_eoi);
	close(gmem);
	close(vm);
	close(s);
	close(dev);
}

TEST(a_vcpu_nobody_retrieves_is_freed_at_finish)
{
	int s;

	dev = luo_open();
	ASSERT_LE(0, dev);
	s = luo_retrieve_session(dev, "lone");
	ASSERT_LE(0, s);
	/* Its VM is rebuilt for it, with no memory: the image stays parked. */
	EXPECT_EQ(-EAGAIN, luo_retrieve_fd(s, TOKEN_VCPU));
	EXPECT_EQ(-EAGAIN, luo_retrieve_fd(s, TOKEN_VCPU));
	EXPECT_EQ(0, luo_finish(s));
	close(s);
	close(dev);
}

LUO_KEXEC_TEST_MAIN(luo_stage1)
