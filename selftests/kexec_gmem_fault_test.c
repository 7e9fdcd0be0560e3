// SPDX-License-Identifier: GPL-2.0
/*
 * Two-stage: an allocation failure while a guest_memfd is preserved or
 * retrieved loses nothing (fault_util.h: each allocation fails in turn
 * until the call runs through).
 *
 * Stage 1: a VM and its 4 MiB guest_memfd, a few pages of it written;
 * PRESERVE_FD of the guest_memfd with failures: each failed call answers
 * ENOMEM, leaves the session as it was and the guest_memfd an ordinary
 * one again (fallocate() works); PREPARE and kexec.
 * Stage 2: RETRIEVE_FD of the guest_memfd with failures: each failure is
 * answered with ENOMEM, and the next call goes on from where the last one
 * stopped (so fewer allocations are left to fail each time); the
 * guest_memfd then holds every page with its bytes, and the page stage 1
 * allocated but never wrote reads as zeros. FINISH ends the session.
 */
#include <linux/falloc.h>
#include "fault_util.h"
#include "memfd_util.h"
#include "kvm_util.h"

#define GMEM_SIZE (4UL << 20)
#define TOKEN_VM 1
#define TOKEN_GMEM 2
/* The pages written: enough for a folio list of several runs. */
static const unsigned long pages[] = { 1, 2, 3, 100, 101, 500, 777, 1023 };

/* After a failed PRESERVE_FD: thawed, an ordinary guest_memfd again. */
static void still_ordinary(int gmem)
{
	CHECK(!fallocate(gmem, FALLOC_FL_KEEP_SIZE, 0, 4096),
	      "fallocate after a failed PRESERVE_FD: %s\n", strerror(errno));
}

static void stage1(void)
{
	struct kvm_create_guest_memfd args = {
		.size = GMEM_SIZE,
		.flags = GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED,
	};
	int dev = luo_open(), s, vm, gmem;
	uint8_t *map;

	CHECK(dev >= 0, "open: %s\n", strerror(errno));
	CHECK(!luo_fault_setup(), "fault injection setup: %s\n", strerror(errno));
	s = luo_create_session(dev, "gmem");
	vm = kvm_vm(KVM_X86_DEFAULT_VM);
	CHECK(s >= 0 && vm >= 0, "setup: %s\n", strerror(-(s < 0 ? s : vm)));
	gmem = ioctl(vm, KVM_CREATE_GUEST_MEMFD, &args);
	CHECK(gmem >= 0, "KVM_CREATE_GUEST_MEMFD: %s\n", strerror(errno));
	map = mmap(NULL, GMEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, gmem, 0);
	CHECK(map != MAP_FAILED, "mmap: %s\n", strerror(errno));
	for (unsigned int i = 0; i < ARRAY_SIZE(pages); i++)
		for (unsigned int b = 0; b < 4096; b++)
			map[pages[i] * 4096 + b] = luo_byte(i, b);
	munmap(map, GMEM_SIZE);
	CHECK(!luo_preserve(s, vm, TOKEN_VM), "PRESERVE_FD of the VM\n");
	luo_fault_preserve(s, gmem, TOKEN_GMEM, "PRESERVE_FD of a guest_memfd", still_ordinary);
	CHECK(!luo_set_event(dev, LIVEUPDATE_EVENT_PREPARE), "PREPARE: %s\n", strerror(errno));
	ksft_exit_fail_msg("kexec: %s\n", strerror(-luo_kexec("")));
}

TEST(retrieve_fd_of_a_guest_memfd_loses_nothing)
{
	int dev = luo_open(), s, vm, gmem;
	unsigned int n, bad = 0;
	uint8_t *map;

	ASSERT_LE(0, dev);
	ASSERT_EQ(0, luo_fault_setup());
	s = luo_retrieve_session(dev, "gmem");
	ASSERT_LE(0, s);
	/* The VM first, so that the failures fall on the guest_memfd's steps. */
	vm = luo_retrieve_fd(s, TOKEN_VM);
	ASSERT_LE(0, vm);
	for (n = 1;; n++) {
		luo_fault_arm(n);
		gmem = luo_retrieve_fd(s, TOKEN_GMEM);
		if (!luo_fault_fired())
			break;
		luo_fault_failed_cleanly("RETRIEVE_FD of a guest_memfd", n, gmem < 0 ? gmem : 0);
		if (gmem >= 0)
			break;
	}
	luo_fault_report("RETRIEVE_FD of a guest_memfd", n);
	ASSERT_LE(0, gmem) {
		TH_LOG("RETRIEVE_FD: %s", strerror(-gmem));
	}
	map = mmap(NULL, GMEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, gmem, 0);
	ASSERT_NE(MAP_FAILED, map);
	for (unsigned int i = 0; i < ARRAY_SIZE(pages); i++)
		for (unsigned int b = 0; b < 4096; b++)
			bad += map[pages[i] * 4096 + b] != luo_byte(i, b);
	EXPECT_EQ(0, bad);
	/* Page 0, fallocated by stage 1 and never written, reads as zeros. */
	for (unsigned int b = 0; b < 4096; b++)
		bad += map[b] != 0;
	EXPECT_EQ(0, bad);
	munmap(map, GMEM_SIZE);
	EXPECT_EQ(0, luo_finish(s));
	close(gmem);
	close(vm);
	close(s);
	close(dev);
}

LUO_KEXEC_TEST_MAIN(stage1)
