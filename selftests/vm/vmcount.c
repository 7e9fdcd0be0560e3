// SPDX-License-Identifier: GPL-2.0
/*
 * vmcount: a VMM with one tiny guest that counts, in a guest_memfd, across
 * a kernel live update: `make demo` runs it beside kvcache.
 *
 *   vmcount start S    make a VM on a guest_memfd, let the guest count for
 *                      S seconds, stop its vCPU, preserve VM, guest_memfd
 *                      and vCPU in session "vm", touch /tmp/vm-ready, and
 *                      wait for the kexec (the demo runs the update)
 *   vmcount resume S   in the new kernel: retrieve the guest_memfd (its VM
 *                      comes with it), set the memory slot again, retrieve
 *                      the vCPU and let the guest count on for S seconds
 *                      from the instruction it stopped at; FINISH
 *
 * The guest (real mode) keeps its 32-bit count in eax and in its own
 * memory at COUNTER, and tells the VMM every 4096 steps (an OUT to
 * GUEST_PORT); the VMM only reads. Its code is never started again: in
 * kernel 2 the retrieved vCPU runs on with the registers it had.
 */
#include "memfd_util.h"
#include "kvm_util.h"
#include <time.h>

#define GMEM_SIZE (1UL << 20)
#define COUNTER 0x3000
#define TOKEN_VM 1
#define TOKEN_GMEM 2
/* A memfd with the count the VMM last saw: what kernel 2 must find. */
#define TOKEN_SEEN 3
#define TOKEN_VCPU 4

static const uint8_t counter[] = {
	0x66, 0xa1, 0x00, 0x30,		/* mov eax, [COUNTER] */
	0x66, 0x40,			/* 1: inc eax */
	0x66, 0xa3, 0x00, 0x30,		/* mov [COUNTER], eax */
	0xa9, 0xff, 0x0f,		/* test ax, 0xfff */
	0x75, 0xf5,			/* jnz 1b */
	0xba, 0x10, 0x00,		/* mov dx, GUEST_PORT */
	0x66, 0xef,			/* out dx, eax */
	0xeb, 0xee,			/* jmp 1b */
};

static void die(const char *what, int err)
{
	printf("vm: FAILED: %s: %s\n", what, strerror(err < 0 ? -err : err));
	exit(1);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * Lets the guest count for `seconds`, from where its vCPU is; returns the
 * last count it told. Its last exit is completed before it returns, so
 * that the vCPU can be preserved (FREEZE refuses an OUT not finished).
 */
static uint32_t count_for(struct guest *g, double seconds)
{
	double end = now_s() + seconds;
	uint32_t count = 0;

	while (now_s() < end) {
		struct kvm_run *run = g->run;

		if (ioctl(g->cpu, KVM_RUN, 0))
			die("KVM_RUN", errno);
		if (run->exit_reason != KVM_EXIT_IO || run->io.port != GUEST_PORT || run->io.size != 4)
			die("unexpected exit", EIO);
		memcpy(&count, (uint8_t *)run + run->io.data_offset, sizeof(count));
	}
	g->run->immediate_exit = 1;
	if (ioctl(g->cpu, KVM_RUN, 0) == 0 || errno != EINTR)
		die("completing the last exit", errno);
	g->run->immediate_exit = 0;
	return count;
}

/* The vCPU's registers. */
static struct kvm_regs regs_of(struct guest *g)
{
	struct kvm_regs regs;

	if (ioctl(g->cpu, KVM_GET_REGS, &regs))
		die("KVM_GET_REGS", errno);
	return regs;
}

static void __attribute__((noreturn)) start(double seconds)
{
	struct kvm_create_guest_memfd args = {
		.size = GMEM_SIZE,
		.flags = GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED,
	};
	struct guest_slot slot = { .guest_memfd = true, .size = GMEM_SIZE };
	int dev, s, vm, err, seen;
	struct guest g;
	uint32_t count;

	vm = kvm_vm(KVM_X86_DEFAULT_VM);
	if (vm < 0)
		die("KVM_CREATE_VM", vm);
	slot.fd = ioctl(vm, KVM_CREATE_GUEST_MEMFD, &args);
	if (slot.fd < 0)
		die("KVM_CREATE_GUEST_MEMFD", errno);
	if ((err = guest_setup(&g, vm, &slot, 1)))
		die("memory slot and vCPU", err);
	memcpy(g.mem[0] + GUEST_CODE, counter, sizeof(counter));
	if (guest_reset(&g))
		die("KVM_SET_SREGS/KVM_SET_REGS", errno);
	count = count_for(&g, seconds);
	printf("vm: kernel 1: the guest counted to %u in %.0f s; vCPU stopped at rip %#llx\n",
	       count, seconds, (unsigned long long)regs_of(&g).rip);
	dev = luo_open();
	s = dev < 0 ? dev : luo_create_session(dev, "vm");
	if (s < 0)
		die("session \"vm\"", s);
	seen = luo_memfd("seen", sizeof(count));
	if (seen < 0 || pwrite(seen, &count, sizeof(count), 0) != sizeof(count))
		die("memfd", seen < 0 ? seen : errno);
	/* The VM first: its guest_memfd and vCPU need it. */
	if ((err = luo_preserve(s, vm, TOKEN_VM)) || (err = luo_preserve(s, slot.fd, TOKEN_GMEM)) ||
	    (err = luo_preserve(s, g.cpu, TOKEN_VCPU)) || (err = luo_preserve(s, seen, TOKEN_SEEN)))
		die("PRESERVE_FD", err);
	printf("vm: VM, its %lu KiB guest_memfd and its vCPU preserved in session \"vm\"\n",
	       GMEM_SIZE >> 10);
	fflush(stdout);
	err = open("/tmp/vm-ready", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (err < 0)
		die("/tmp/vm-ready", errno);
	close(err);
	/* The session lives as long as this process: until the kexec. */
	for (;;)
		pause();
}

static void resume(double seconds)
{
	struct guest_slot slot = { .guest_memfd = true, .size = GMEM_SIZE };
	int dev = luo_open(), s, vm, err, seen, cpu;
	uint32_t was, count, saw;
	struct kvm_regs regs;
	struct guest g;

	s = dev < 0 ? dev : luo_retrieve_session(dev, "vm");
	if (s < 0)
		die("RETRIEVE_SESSION \"vm\"", s);
	/* The guest_memfd first: its VM is rebuilt for it. */
	slot.fd = luo_retrieve_fd(s, TOKEN_GMEM);
	vm = slot.fd < 0 ? slot.fd : luo_retrieve_fd(s, TOKEN_VM);
	if (vm < 0)
		die("RETRIEVE_FD", vm);
	/* The memory slot before the vCPU: its state may point into memory. */
	if ((err = guest_slots(&g, vm, &slot, 1)))
		die("memory slot", err);
	cpu = luo_retrieve_fd(s, TOKEN_VCPU);
	if (cpu < 0)
		die("RETRIEVE_FD of the vCPU", cpu);
	if ((err = guest_attach(&g, cpu)))
		die("kvm_run of the vCPU", err);
	memcpy(&was, g.mem[0] + COUNTER, sizeof(was));
	printf("vm: kernel 2: VM and guest_memfd retrieved; the count in guest memory is %u\n", was);
	seen = luo_retrieve_fd(s, TOKEN_SEEN);
	if (seen < 0 || pread(seen, &saw, sizeof(saw), 0) != sizeof(saw))
		die("the count kernel 1 saw", seen < 0 ? seen : errno);
	if (was != saw)
		die("the guest's memory did not survive: kernel 1 saw another count", EIO);
	regs = regs_of(&g);
	printf("vm: kernel 2: vCPU retrieved at rip %#llx with eax %u\n",
	       (unsigned long long)regs.rip, (uint32_t)regs.rax);
	if ((uint32_t)regs.rax != saw)
		die("the vCPU's registers did not survive: eax is not the count", EIO);
	count = count_for(&g, seconds);
	printf("vm: kernel 2: the same guest counted on from %u to %u in %.0f s, on the same memory\n",
	       was, count, seconds);
	guest_teardown(&g);
	if ((err = luo_finish(s)))
		die("FINISH", err);
	printf("vm: session \"vm\" finished; state is %s\n",
	       luo_get_state(dev) == LIVEUPDATE_STATE_NORMAL ? "normal" : "NOT normal");
}

int main(int argc, char **argv)
{
	double seconds = argc > 2 ? atof(argv[2]) : 2;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc > 1 && !strcmp(argv[1], "start"))
		start(seconds);
	if (argc > 1 && !strcmp(argv[1], "resume")) {
		resume(seconds);
		return 0;
	}
	fprintf(stderr, "usage: vmcount start|resume [SECONDS]\n");
	return 2;
}
