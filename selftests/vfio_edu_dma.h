/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The guest memory layout the edu DMA tests share (kexec_vfio_edu_test,
 * kexec_vfio_device_test): a 2 MiB memfd mapped at two IOVAs below edu's
 * 28-bit DMA limit, where edu copies 4 KiB pages from A to B, and the
 * checks of what landed. Include after luo_test.h, iommufd_util.h,
 * memfd_util.h and vfio_edu.h.
 */
#ifndef LUO_VFIO_EDU_DMA_H
#define LUO_VFIO_EDU_DMA_H

#define KiB (1ULL << 10)
#define MiB (1ULL << 20)
#define MEM (2 * MiB)
/* Below edu's 28-bit DMA limit. */
#define IOVA_A (16 * MiB) /* memfd [0, 1 MiB) */
#define IOVA_B (32 * MiB) /* memfd [1 MiB, 2 MiB) */
#define IOVA_NONE (48 * MiB) /* never mapped */
#define AT_1 (8 * KiB) /* where in B the kernel-1 DMA wrote */
#define AT_2 (64 * KiB) /* where in B the kernel-2 DMA writes */
#define SRC_2 (128 * KiB) /* where in A the kernel-2 DMA reads */
#define AT_3 (192 * KiB) /* where in B the DMA while prepared wrote */
#define SRC_3 (256 * KiB)
#define AT_4 (320 * KiB) /* where in B the DMA after CANCEL wrote */
#define SRC_4 (384 * KiB)

/* Whether B + at in m holds A + src's bytes. */
static bool copied(int m, uint64_t seed, uint64_t at, uint64_t src)
{
	uint8_t got[EDU_BUF_LEN];

	if (pread(m, got, sizeof(got), MiB + at) != sizeof(got))
		return false;
	for (size_t i = 0; i < sizeof(got); i++)
		if (got[i] != luo_byte(seed, src + i))
			return false;
	return true;
}

/* Whether VT-d reported a DMA write fault, waiting up to 2 s for it. */
static bool write_fault_reported(void)
{
	for (int i = 0; i < 20; i++) {
		if (luo_kmsg_has("DMAR: [DMA Write"))
			return true;
		usleep(100 * 1000);
	}
	return false;
}

/*
 * Kernel 1's start: a sealed memfd filled from a random *seed, mapped at
 * IOVA_A and IOVA_B of a new IOAS of a new iommufd, and edu bound and
 * attached to it; edu copies A's first page to B + AT_1, where the test
 * checks it landed. Fails the test on any error.
 */
static void edu_setup(uint64_t *seed, int *m, int *io, int *ioas, struct vfio_pci_dev *edu)
{
	int err;

	CHECK(getrandom(seed, sizeof(*seed), 0) == sizeof(*seed), "getrandom\n");
	*m = luo_memfd("guest", MEM);
	CHECK(*m >= 0 && !luo_fill(*m, 0, MEM, *seed), "memfd\n");
	CHECK(!fcntl(*m, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW), "seal\n");
	*io = luo_iommufd_open();
	CHECK(*io >= 0, "iommufd: %s\n", strerror(-*io));
	*ioas = luo_ioas_alloc(*io);
	CHECK(*ioas > 0 && !luo_ioas_map_file(*io, *ioas, *m, 0, MiB, IOVA_A, LUO_IOMMU_RW) &&
	      !luo_ioas_map_file(*io, *ioas, *m, MiB, MiB, IOVA_B, LUO_IOMMU_RW), "map\n");
	err = edu_open(edu);
	CHECK(!err, "edu through vfio-pci: %s\n", strerror(-err));
	err = edu_attach(edu, *io, *ioas);
	CHECK(!err, "bind and attach: %s\n", strerror(-err));
	CHECK(!edu_dma(edu, IOVA_A, EDU_BUF_LEN, false) &&
	      !edu_dma(edu, IOVA_B + AT_1, EDU_BUF_LEN, true), "DMA\n");
	CHECK(copied(*m, *seed, AT_1, 0), "kernel 1: the DMA did not land in the memfd\n");
}

#endif
