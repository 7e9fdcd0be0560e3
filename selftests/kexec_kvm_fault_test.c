// SPDX-License-Identifier: GPL-2.0
/*
 * Two-stage: an allocation failure while a VM is preserved or retrieved
 * loses nothing (fault_util.h: each allocation fails in turn until the
 * call runs through).
 *
 * Stage 1: PRESERVE_FD of a VM, with failures: each failed call answers
 * ENOMEM and leaves the session as it was; then COPIES more VMs, PREPARE
 * and kexec.
 * Stage 2: RETRIEVE_FD of a VM with failures. A failure is either
 * answered with ENOMEM, and the next call goes on as if it never
 * happened, or absorbed (KVM goes on without a debugfs file): then the
 * VM is made, and the next count goes on with the next copy (on a debug
 * kernel, whose own allocations absorb more, the copies may run out
 * first: the test says at which allocation). Every VM retrieved works;
 * FINISH ends the session and frees the copies nobody retrieved.
 */
#include "fault_util.h"
#include "kvm_util.h"

/*
 * VMs RETRIEVE_FD can use up with absorbed failures: KVM goes on without
 * each debugfs file it could not make: 166 of them in 7.3.
 */
#define COPIES 256
#define TOKEN 1

static void stage1(void)
{
	int dev = luo_open(), s, vm;

	CHECK(dev >= 0, "open: %s\n", strerror(errno));
	CHECK(!luo_fault_setup(), "fault injection setup: %s\n", strerror(errno));
	s = luo_create_session(dev, "vms");
	vm = kvm_vm(KVM_X86_DEFAULT_VM);
	CHECK(s >= 0 && vm >= 0, "setup: %s\n", strerror(-(s < 0 ? s : vm)));
	luo_fault_preserve(s, vm, TOKEN, "PRESERVE_FD of a VM", NULL);
	for (int i = 1; i <= COPIES; i++) {
		int copy = kvm_vm(KVM_X86_DEFAULT_VM);

		CHECK(copy >= 0 && !luo_preserve(s, copy, TOKEN + i), "VM copy %d\n", i);
		close(copy);
	}
	close(vm);
	CHECK(!luo_set_event(dev, LIVEUPDATE_EVENT_PREPARE), "PREPARE: %s\n", strerror(errno));
	ksft_exit_fail_msg("kexec: %s\n", strerror(-luo_kexec("")));
}

FIXTURE(vms) {};
FIXTURE_SETUP(vms) {}
FIXTURE_TEARDOWN(vms) {}

/* Hundreds of VMs made and freed: minutes on a debug kernel under TCG. */
TEST_F_TIMEOUT(vms, retrieve_fd_of_a_vm_loses_nothing, 600)
{
	int dev = luo_open(), s, vm = -1, token = TOKEN;
	int got[COPIES + 1], nr_got = 0;
	bool used_up = false;
	unsigned int n;

	ASSERT_LE(0, dev);
	ASSERT_EQ(0, luo_fault_setup());
	s = luo_retrieve_session(dev, "vms");
	ASSERT_LE(0, s);
	for (n = 1;; n++) {
		luo_fault_arm(n);
		vm = luo_retrieve_fd(s, token);
		if (!luo_fault_fired())
			break;
		luo_fault_failed_cleanly("RETRIEVE_FD of a VM", n, vm < 0 ? vm : 0);
		if (vm < 0)
			continue;
		/* Absorbed: that VM is made; go on with the next copy. */
		got[nr_got++] = vm;
		if (token == TOKEN + COPIES) {
			/* A debug kernel absorbs more (its own allocations). */
			printf("# every copy used by absorbed failures at allocation %u: "
			       "the later ones were not tried\n", n);
			used_up = true;
			break;
		}
		token++;
	}
	luo_fault_report("RETRIEVE_FD of a VM", n);
	if (!used_up) {
		ASSERT_LE(0, vm) {
			TH_LOG("RETRIEVE_FD: %s", strerror(-vm));
		}
		got[nr_got++] = vm;
	}
	printf("# %d VM(s) retrieved, %d after an absorbed failure\n", nr_got,
	       used_up ? nr_got : nr_got - 1);
	for (int i = 0; i < nr_got; i++) {
		EXPECT_LT(0, ioctl(got[i], KVM_CHECK_EXTENSION, KVM_CAP_USER_MEMORY));
		/* Usable: a vCPU can be made in it. */
		int cpu = ioctl(got[i], KVM_CREATE_VCPU, 0);

		EXPECT_LE(0, cpu);
		close(cpu);
		close(got[i]);
	}
	EXPECT_EQ(0, luo_finish(s));
	close(s);
	close(dev);
}

LUO_KEXEC_TEST_MAIN(stage1)
