// SPDX-License-Identifier: GPL-2.0
/*
 * Two-stage: a KVM VM crosses a live update (the VM handler,
 * Documentation/kvm.rst), with the memfd that is its memory.
 *
 * Stage 1: a real-mode guest writes a pattern into its memfd memory.
 * PRESERVE_FD of a VM from a process it does not serve is refused (EPERM),
 * and of a VM with private memory (KVM_X86_SW_PROTECTED_VM) too
 * (EOPNOTSUPP); the VM's fd and the memfd go into session "vm" (the VM's
 * fd is then closed: the session keeps the VM), a VM alone into session
 * "lone", and a user's VM into the user's session "user-vm"; PREPARE;
 * kexec (FREEZE inside reboot()).
 *
 * Stage 2: RETRIEVE_FD gives a VM of the default type (one that may have
 * shared guest_memfds), into which the retrieved memfd is mapped again;
 * a guest that adds up the pattern, run in that VM, finds what the first
 * kernel's guest wrote. The lone VM, never retrieved, is finished. A user
 * who may not open /dev/kvm gets no VM (EACCES), and once they may, gets
 * theirs (the failure lost nothing).
 */
#define _GNU_SOURCE
#include "luo_test.h"
#include "memfd_util.h"
#include "kvm_util.h"

#define MEM_SIZE (64 << 10)
#define TOKEN_VM 1
#define TOKEN_MEM 2
#define USER 1000

/*
 * In a child that became USER: a VM of its own in session "user-vm";
 * says whether that worked on `ready`, then waits for the kexec.
 */
static void user_session(int ready)
{
	int dev, s = -1, vm = -1, err = -1;

	if (!luo_become(USER)) {
		dev = luo_open();
		s = dev < 0 ? dev : luo_create_session(dev, "user-vm");
		vm = kvm_vm(KVM_X86_DEFAULT_VM);
		err = s < 0 || vm < 0 ? -1 : luo_preserve(s, vm, 1);
	}
	if (err)
		printf("# user %d: session %d, VM %d, PRESERVE_FD %d\n", USER, s, vm, err);
	if (write(ready, &err, sizeof(err)) != sizeof(err))
		_exit(1);
	for (;;)
		pause();
}

static void luo_stage1(void)
{
	int dev = luo_open(), s, lone, vm, vm2, prot, mem, ready[2];
	unsigned int unused = 0;
	int err = -1;
	pid_t pid;
	uint8_t data[GUEST_DATA_LEN];

	CHECK(dev >= 0, "open %s: %s\n", LUO_DEV, strerror(-dev));
	vm = kvm_vm(KVM_X86_DEFAULT_VM);
	CHECK(vm >= 0, "KVM_CREATE_VM: %s\n", strerror(-vm));
	mem = luo_memfd("guest", MEM_SIZE);
	CHECK(mem >= 0, "memfd: %s\n", strerror(-mem));
	CHECK(!kvm_run_guest(vm, mem, MEM_SIZE, guest_writer, sizeof(guest_writer), &unused),
	      "the writer guest did not run\n");
	CHECK(pread(mem, data, sizeof(data), GUEST_DATA) == sizeof(data), "pread\n");
	for (unsigned int i = 0; i < GUEST_DATA_LEN; i++)
		CHECK(data[i] == guest_byte(i), "the guest wrote %u at %u\n", data[i], i);

	s = luo_create_session(dev, "vm");
	lone = luo_create_session(dev, "lone");
	CHECK(s >= 0 && lone >= 0, "CREATE_SESSION\n");
	/* Only the VMM the VM serves may preserve it. */
	CHECK(luo_preserve_from_child(vm) == -EPERM, "a VM of another process: not EPERM\n");
	/* A VM with private memory cannot cross. */
	prot = kvm_vm(KVM_X86_SW_PROTECTED_VM);
	CHECK(prot >= 0, "KVM_CREATE_VM of a software-protected VM: %s\n", strerror(-prot));
	CHECK(luo_preserve(s, prot, 9) == -EOPNOTSUPP, "a VM with private memory: not EOPNOTSUPP\n");
	close(prot);

	CHECK(!luo_preserve(s, vm, TOKEN_VM) && !luo_preserve(s, mem, TOKEN_MEM),
	      "PRESERVE_FD in \"vm\" failed\n");
	CHECK(luo_preserve(lone, vm, 1) == -EBUSY, "a VM preserved twice: not EBUSY\n");
	/* The session keeps the VM. */
	close(vm);
	vm2 = kvm_vm(KVM_X86_DEFAULT_VM);
	CHECK(vm2 >= 0 && !luo_preserve(lone, vm2, 1), "PRESERVE_FD in \"lone\" failed\n");
	close(vm2);
	/* A user's own VM, made while /dev/kvm let everyone in. */
	CHECK(!chmod(LUO_DEV, 0666) && !chmod("/dev/kvm", 0666) && !pipe(ready), "chmod\n");
	pid = fork();
	CHECK(pid >= 0, "fork\n");
	if (!pid)
		user_session(ready[1]);
	CHECK(read(ready[0], &err, sizeof(err)) == sizeof(err) && !err,
	      "user %d's session \"user-vm\" failed\n", USER);
	CHECK(!chmod("/dev/kvm", 0600), "chmod /dev/kvm\n");
	CHECK(!luo_set_event(dev, LIVEUPDATE_EVENT_PREPARE), "PREPARE: %s\n", strerror(errno));
	ksft_exit_fail_msg("kexec: %s\n", strerror(-luo_kexec("")));
}

TEST(the_guest_finds_its_memory_in_the_retrieved_vm)
{
	int dev = luo_open(), s, vm, mem, flags;
	unsigned int sum = 0;

	ASSERT_LE(0, dev);
	s = luo_retrieve_session(dev, "vm");
	ASSERT_LE(0, s);
	vm = luo_retrieve_fd(s, TOKEN_VM);
	ASSERT_LE(0, vm);
	/* A VM of the default type: its guest_memfds may be shared. */
	flags = ioctl(vm, KVM_CHECK_EXTENSION, KVM_CAP_GUEST_MEMFD_FLAGS);
	ASSERT_LE(0, flags);
	EXPECT_TRUE(flags & GUEST_MEMFD_FLAG_INIT_SHARED) {
		TH_LOG("guest_memfd flags of the retrieved VM: %#x", flags);
	}
	mem = luo_retrieve_fd(s, TOKEN_MEM);
	ASSERT_LE(0, mem);
	ASSERT_EQ(0, kvm_run_guest(vm, mem, MEM_SIZE, guest_summer, sizeof(guest_summer), &sum));
	EXPECT_EQ(guest_sum(), sum);
	EXPECT_EQ(0, luo_finish(s));
	close(vm);
	close(mem);
	close(s);
	close(dev);
}

TEST(a_vm_nobody_retrieves_is_finished)
{
	int dev = luo_open(), s;

	ASSERT_LE(0, dev);
	s = luo_retrieve_session(dev, "lone");
	ASSERT_LE(0, s);
	EXPECT_EQ(0, luo_finish(s));
	close(s);
	close(dev);
}

/* As USER: RETRIEVE_FD of the VM in "user-vm" answers `expect`. */
static int retrieve_user_vm(int expect)
{
	int dev = luo_open(), s = dev < 0 ? dev : luo_retrieve_session(dev, "user-vm"), vm;

	if (s < 0)
		return 10;
	vm = luo_retrieve_fd(s, 1);
	if (expect < 0)
		return vm == expect ? 0 : 11;
	if (vm < 0 || ioctl(vm, KVM_CHECK_EXTENSION, KVM_CAP_USER_MEMORY) <= 0)
		return 12;
	return luo_finish(s) ? 13 : 0;
}

static int retrieve_denied(void)
{
	return retrieve_user_vm(-EACCES);
}

static int retrieve_allowed(void)
{
	return retrieve_user_vm(0);
}

TEST(only_a_user_who_may_open_dev_kvm_gets_a_vm)
{
	/* A VM for whoever may make one, as KVM_CREATE_VM needs /dev/kvm. */
	ASSERT_EQ(0, chmod(LUO_DEV, 0666));
	ASSERT_EQ(0, chmod("/dev/kvm", 0600));
	EXPECT_EQ(0, luo_as_user(USER, retrieve_denied));
	/* That failure lost nothing. */
	ASSERT_EQ(0, chmod("/dev/kvm", 0666));
	EXPECT_EQ(0, luo_as_user(USER, retrieve_allowed));
	EXPECT_EQ(0, chmod("/dev/kvm", 0600));
}

LUO_KEXEC_TEST_MAIN(luo_stage1)
