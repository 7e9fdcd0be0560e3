// SPDX-License-Identifier: GPL-2.0
/*
 * Two-stage: a VM's guest_memfd crosses a live update in place (the
 * guest_memfd handler, Documentation/kvm.rst), with its VM and a memfd.
 *
 * Stage 1: a VM gets a 64 MiB shared guest_memfd (slot 0, guest physical
 * 0) and a memfd (slot 1, at 0x10000); a real-mode guest writes a pattern
 * into both, and the host writes a few scattered pages of the guest_memfd
 * through its mapping: the rest stays holes. Refused: a guest_memfd whose
 * VM is not in the session (ENOLINK, and it stays an ordinary one), a
 * private one (EOPNOTSUPP), one preserved twice (EBUSY), one from another
 * process (EPERM), UNPRESERVE_FD of the VM it needs (EBUSY), and
 * fallocate() on a preserved one (EPERM).
 * PREPARE and CANCEL leave VM, vCPU and memory usable; between FREEZE and
 * CANCEL a hole cannot be filled (SIGBUS), after CANCEL it can. The
 * physical address of every page present goes into a memfd of its own.
 * Session "gmem" gets the guest_memfd, its VM, the memfd and the record;
 * session "lone" a second VM and a guest_memfd that nobody will retrieve.
 * PREPARE; kexec (FREEZE inside reboot()).
 *
 * Stage 2: RETRIEVE_FD of the guest_memfd first (its VM is rebuilt for it)
 * gives the same pages at the same offsets, and no others (mincore()); a
 * guest in the retrieved VM on the retrieved guest_memfd and memfd finds
 * what the first guest wrote. The lone session's VM is retrieved alone,
 * and its guest_memfd's memory is freed at FINISH.
 */
#define _GNU_SOURCE
#include <linux/falloc.h>
#include <setjmp.h>
#include <signal.h>
#include "luo_test.h"
#include "memfd_util.h"
#include "kvm_util.h"

#define GMEM_SIZE (64UL << 20)
#define SLOT_SIZE (64UL << 10)
#define MEM_SIZE (64UL << 10)
#define LONE_SIZE (64UL << 20)
#define TOKEN_VM 1
#define TOKEN_GMEM 2
#define TOKEN_MEM 3
#define TOKEN_RECORD 4
#define SHARED (GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED)
/* Pages the host writes, besides the guest's code and data pages. */
static const unsigned long host_pages[] = { 7, 1000, 4097, 8191, 12345, 16383 };
/* At most: the guest's two pages, the host's, and slack. */
#define MAX_PRESENT 16

/* What stage 1 saw, for stage 2. */
struct record {
	unsigned long nr;
	unsigned long index[MAX_PRESENT];
	uint64_t pfn[MAX_PRESENT];
};

static int guest_memfd(int vm, uint64_t size, uint64_t flags)
{
	struct kvm_create_guest_memfd args = { .size = size, .flags = flags };
	int fd = ioctl(vm, KVM_CREATE_GUEST_MEMFD, &args);

	return fd < 0 ? -errno : fd;
}

/* The page frame of the page mapped at p (root only), or 0. */
static uint64_t pfn_of(const void *p)
{
	uint64_t entry = 0;
	int fd = open("/proc/self/pagemap", O_RDONLY);

	if (fd < 0)
		return 0;
	if (pread(fd, &entry, sizeof(entry), (uintptr_t)p / 4096 * sizeof(entry)) != sizeof(entry))
		entry = 0;
	close(fd);
	return entry >> 63 ? entry & ((1ULL << 55) - 1) : 0;
}

/*
 * The pages of the guest_memfd mapped at map (GMEM_SIZE bytes) in its
 * page cache, without faulting any in: their indexes and page frames.
 */
static int present(uint8_t *map, struct record *r)
{
	static unsigned char vec[GMEM_SIZE / 4096];

	if (mincore(map, GMEM_SIZE, vec))
		return -errno;
	r->nr = 0;
	for (unsigned long i = 0; i < GMEM_SIZE / 4096; i++) {
		if (!(vec[i] & 1))
			continue;
		if (r->nr == MAX_PRESENT)
			return -E2BIG;
		/* Read access maps the page present, without changing it. */
		(void)*(volatile uint8_t *)(map + i * 4096);
		r->index[r->nr] = i;
		r->pfn[r->nr++] = pfn_of(map + i * 4096);
	}
	return 0;
}

/* Punches a hole at page `page`: 0 or -errno. */
static int punch(int gmem, unsigned long page)
{
	int ret = fallocate(gmem, FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE, page * 4096, 4096);

	return ret ? -errno : 0;
}

static sigjmp_buf on_sigbus;

static void sigbus(int sig)
{
	siglongjmp(on_sigbus, 1);
}

/* Writes one byte at p: 0, or -EFAULT for a SIGBUS. */
static int poke(uint8_t *p)
{
	struct sigaction sa = { .sa_handler = sigbus }, old;
	int ret = 0;

	sigaction(SIGBUS, &sa, &old);
	if (sigsetjmp(on_sigbus, 1))
		ret = -EFAULT;
	else
		*(volatile uint8_t *)p = 1;
	sigaction(SIGBUS, &old, NULL);
	return ret;
}

static void luo_stage1(void)
{
	int dev = luo_open(), s, lone, vm, vm2, gmem, gmem2, priv, mem, record;
	struct guest_slot slots[2];
	struct guest g;
	struct record r;
	unsigned int sum = 0;
	uint8_t *map, *map2;

	CHECK(dev >= 0, "open %s: %s\n", LUO_DEV, strerror(-dev));
	vm = kvm_vm(KVM_X86_DEFAULT_VM);
	CHECK(vm >= 0, "KVM_CREATE_VM: %s\n", strerror(-vm));
	gmem = guest_memfd(vm, GMEM_SIZE, SHARED);
	CHECK(gmem >= 0, "KVM_CREATE_GUEST_MEMFD: %s\n", strerror(-gmem));
	mem = luo_memfd("guest", MEM_SIZE);
	CHECK(mem >= 0, "memfd: %s\n", strerror(-mem));
	slots[0] = (struct guest_slot){ .fd = gmem, .guest_memfd = true, .size = SLOT_SIZE };
	slots[1] = (struct guest_slot){ .fd = mem, .gpa = 0x10000, .size = MEM_SIZE };
	CHECK(!guest_setup(&g, vm, slots, 2), "guest setup\n");
	CHECK(!guest_run(&g, guest_pair_writer, sizeof(guest_pair_writer), &sum),
	      "the writer guest did not run\n");
	map = mmap(NULL, GMEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, gmem, 0);
	CHECK(map != MAP_FAILED, "mmap of the guest_memfd: %s\n", strerror(errno));
	for (unsigned int i = 0; i < GUEST_DATA_LEN; i++)
		CHECK(map[GUEST_DATA + i] == guest_byte(i), "the guest wrote %u at %u\n",
		      map[GUEST_DATA + i], i);
	for (unsigned int i = 0; i < ARRAY_SIZE(host_pages); i++)
		for (unsigned int b = 0; b < 4096; b++)
			map[host_pages[i] * 4096 + b] = luo_byte(i, b);

	s = luo_create_session(dev, "gmem");
	lone = luo_create_session(dev, "lone");
	CHECK(s >= 0 && lone >= 0, "CREATE_SESSION\n");
	/* The VM first: a guest_memfd is rebuilt for its retrieved VM. */
	CHECK(luo_preserve(s, gmem, TOKEN_GMEM) == -ENOLINK, "a guest_memfd without its VM\n");
	CHECK(!punch(gmem, 30), "refused, yet the guest_memfd stayed frozen\n");
	priv = guest_memfd(vm, 1 << 20, GUEST_MEMFD_FLAG_MMAP);
	CHECK(priv >= 0, "a private guest_memfd: %s\n", strerror(-priv));
	CHECK(!luo_preserve(s, vm, TOKEN_VM), "PRESERVE_FD of the VM\n");
	CHECK(luo_preserve_from_child(gmem) == -EPERM, "a guest_memfd of another process\n");
	CHECK(luo_preserve(s, priv, 9) == -EOPNOTSUPP, "a private guest_memfd: not EOPNOTSUPP\n");
	close(priv);
	CHECK(!luo_preserve(s, gmem, TOKEN_GMEM) && !luo_preserve(s, mem, TOKEN_MEM),
	      "PRESERVE_FD in \"gmem\" failed\n");
	CHECK(luo_preserve(s, gmem, 10) == -EBUSY, "a guest_memfd preserved twice: not EBUSY\n");
	CHECK(luo_preserve(lone, gmem, 10) == -EBUSY, "a guest_memfd in a second session\n");
	/* Another guest_memfd of the VM, which is in "gmem", not in "lone". */
	priv = guest_memfd(vm, 1 << 20, SHARED);
	CHECK(priv >= 0 && luo_preserve(lone, priv, 10) == -ENOLINK,
	      "a guest_memfd whose VM is in another session: not ENOLINK\n");
	close(priv);
	CHECK(luo_unpreserve(s, TOKEN_VM) == -EBUSY, "the VM left while its guest_memfd is in\n");
	CHECK(punch(gmem, 7) == -EPERM, "hole punching in a preserved guest_memfd: not EPERM\n");

	/* PREPARE and CANCEL leave everything usable; FREEZE seals holes. */
	CHECK(!luo_set_event(dev, LIVEUPDATE_EVENT_PREPARE), "PREPARE: %s\n", strerror(errno));
	CHECK(!guest_run(&g, guest_pair_summer, sizeof(guest_pair_summer), &sum) &&
	      sum == guest_pair_sum(), "the guest after PREPARE: %#x\n", sum);
	CHECK(!luo_set_event(dev, LIVEUPDATE_EVENT_FREEZE), "FREEZE: %s\n", strerror(errno));
	CHECK(poke(map + 3 * 4096) == -EFAULT, "a hole filled while frozen\n");
	/* Page 1 is present, but not yet mapped here: this faults it in. */
	CHECK(!poke(map + GUEST_CODE), "a page present refused a fault while frozen\n");
	CHECK(!luo_set_event(dev, LIVEUPDATE_EVENT_CANCEL), "CANCEL: %s\n", strerror(errno));
	CHECK(!poke(map + 3 * 4096), "a hole refused after CANCEL\n");
	sum = 0;
	CHECK(!guest_run(&g, guest_pair_summer, sizeof(guest_pair_summer), &sum) &&
	      sum == guest_pair_sum(), "the guest after CANCEL: %#x\n", sum);
	guest_teardown(&g);

	/* Where every page is, for stage 2. */
	CHECK(!present(map, &r), "mincore\n");
	CHECK(r.nr == 3 + ARRAY_SIZE(host_pages), "%lu pages present\n", r.nr);
	for (unsigned long i = 0; i < r.nr; i++)
		CHECK(r.pfn[i], "no page frame for page %lu\n", r.index[i]);
	record = luo_memfd("record", sizeof(r));
	CHECK(record >= 0 && pwrite(record, &r, sizeof(r), 0) == sizeof(r), "record\n");
	CHECK(!luo_preserve(s, record, TOKEN_RECORD), "PRESERVE_FD of the record\n");
	munmap(map, GMEM_SIZE);

	/* A VM and guest_memfd nobody retrieves. */
	vm2 = kvm_vm(KVM_X86_DEFAULT_VM);
	gmem2 = vm2 < 0 ? vm2 : guest_memfd(vm2, LONE_SIZE, SHARED);
	CHECK(gmem2 >= 0, "the lone guest_memfd: %s\n", strerror(-gmem2));
	map2 = mmap(NULL, LONE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, gmem2, 0);
	CHECK(map2 != MAP_FAILED, "mmap of the lone guest_memfd\n");
	memset(map2, 0x77, LONE_SIZE);
	munmap(map2, LONE_SIZE);
	CHECK(!luo_preserve(lone, vm2, 1) && !luo_preserve(lone, gmem2, 2),
	      "PRESERVE_FD in \"lone\" failed\n");
	close(gmem2);
	close(vm2);
	CHECK(!luo_set_event(dev, LIVEUPDATE_EVENT_PREPARE), "PREPARE: %s\n", strerror(errno));
	ksft_exit_fail_msg("kexec: %s\n", strerror(-luo_kexec("")));
}

TEST(the_guest_memfd_comes_back_in_place_and_the_guest_finds_its_memory)
{
	int dev = luo_open(), s, vm, gmem, mem, record;
	struct guest_slot slots[2];
	struct record was, now;
	unsigned int sum = 0;
	struct stat st;
	uint8_t *map;

	ASSERT_LE(0, dev);
	s = luo_retrieve_session(dev, "gmem");
	ASSERT_LE(0, s);
	/* Before its VM: the VM is rebuilt for it, and is then the same. */
	gmem = luo_retrieve_fd(s, TOKEN_GMEM);
	ASSERT_LE(0, gmem);
	vm = luo_retrieve_fd(s, TOKEN_VM);
	ASSERT_LE(0, vm);
	mem = luo_retrieve_fd(s, TOKEN_MEM);
	ASSERT_LE(0, mem);
	record = luo_retrieve_fd(s, TOKEN_RECORD);
	ASSERT_LE(0, record);
	ASSERT_EQ(sizeof(was), pread(record, &was, sizeof(was), 0));
	ASSERT_EQ(0, fstat(gmem, &st));
	ASSERT_EQ(GMEM_SIZE, st.st_size);

	map = mmap(NULL, GMEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, gmem, 0);
	ASSERT_NE(MAP_FAILED, map);
	/* The same pages at the same offsets, holes still holes. */
	ASSERT_EQ(0, present(map, &now));
	ASSERT_EQ(was.nr, now.nr);
	for (unsigned long i = 0; i < now.nr; i++) {
		EXPECT_EQ(was.index[i], now.index[i]);
		EXPECT_EQ(was.pfn[i], now.pfn[i]) {
			TH_LOG("page %lu moved", now.index[i]);
		}
	}
	for (unsigned int i = 0; i < ARRAY_SIZE(host_pages); i++) {
		unsigned int bad = 0;

		for (unsigned int b = 0; b < 4096; b++)
			bad += map[host_pages[i] * 4096 + b] != luo_byte(i, b);
		EXPECT_EQ(0, bad) {
			TH_LOG("page %lu: %u bytes differ", host_pages[i], bad);
		}
	}
	munmap(map, GMEM_SIZE);

	/* The guest, in the retrieved VM on the retrieved memory. */
	slots[0] = (struct guest_slot){ .fd = gmem, .guest_memfd = true, .size = SLOT_SIZE };
	slots[1] = (struct guest_slot){ .fd = mem, .gpa = 0x10000, .size = MEM_SIZE };
	ASSERT_EQ(0, kvm_run_guest_slots(vm, slots, 2, guest_pair_summer, sizeof(guest_pair_summer),
					 &sum));
	EXPECT_EQ(guest_pair_sum(), sum);
	EXPECT_EQ(0, luo_finish(s));
	close(record);
	close(mem);
	close(gmem);
	close(vm);
	close(s);
	close(dev);
}

TEST(a_vm_alone_is_retrieved_and_its_guest_memfd_freed_at_finish)
{
	int dev = luo_open(), s, vm;
	long long before, freed;

	ASSERT_LE(0, dev);
	s = luo_retrieve_session(dev, "lone");
	ASSERT_LE(0, s);
	/* The VM without the guest_memfd that needs it. */
	vm = luo_retrieve_fd(s, 1);
	ASSERT_LE(0, vm);
	EXPECT_LT(0, ioctl(vm, KVM_CHECK_EXTENSION, KVM_CAP_USER_MEMORY));
	before = luo_free_kb();
	EXPECT_EQ(0, luo_finish(s));
	/* Its 64 MiB are free again (give or take other activity). */
	freed = luo_wait_freed_kb(before, (LONE_SIZE >> 10) * 3 / 4);
	EXPECT_LE((long long)(LONE_SIZE >> 10) * 3 / 4, freed) {
		TH_LOG("FINISH freed %lld kB", freed);
	}
	close(vm);
	close(s);
	close(dev);
}

LUO_KEXEC_TEST_MAIN(luo_stage1)
