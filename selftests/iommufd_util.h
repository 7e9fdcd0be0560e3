/* SPDX-License-Identifier: GPL-2.0 */
/*
 * iommufd for luo-rs's tests: IOASes, file mappings, and iommufd's own
 * self-test mock (CONFIG_IOMMUFD_TEST), whose "access" reads and writes
 * through an IOAS as a device's DMA would, and whose mock domain is a
 * page table a test can check translations in. Each call returns 0 (or
 * what it names) or -errno.
 */
#ifndef LUO_IOMMUFD_UTIL_H
#define LUO_IOMMUFD_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <linux/iommufd.h>
/* Not a uAPI header: found through the tree's tools/testing/selftests. */
#include "../../../drivers/iommu/iommufd/iommufd_test.h"

#define LUO_IOMMU_RW (IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE)

static inline int luo_iommufd_ioctl(int fd, unsigned long cmd, void *arg)
{
	return ioctl(fd, cmd, arg) ? -errno : 0;
}

static inline int luo_iommufd_open(void)
{
	int fd = open("/dev/iommu", O_RDWR);

	return fd < 0 ? -errno : fd;
}

/* A new IOAS's id, or -errno. */
static inline int luo_ioas_alloc(int fd)
{
	struct iommu_ioas_alloc c = { .size = sizeof(c) };
	int err = luo_iommufd_ioctl(fd, IOMMU_IOAS_ALLOC, &c);

	return err ? err : (int)c.out_ioas_id;
}

static inline int luo_iommufd_destroy(int fd, __u32 id)
{
	struct iommu_destroy c = { .size = sizeof(c), .id = id };

	return luo_iommufd_ioctl(fd, IOMMU_DESTROY, &c);
}

/* IOMMU_OPTION_HUGE_PAGES of an IOAS: whether its domains may map large pages. */
static inline int luo_ioas_huge_pages(int fd, __u32 ioas, bool on)
{
	struct iommu_option c = {
		.size = sizeof(c),
		.option_id = IOMMU_OPTION_HUGE_PAGES,
		.op = IOMMU_OPTION_OP_SET,
		.object_id = ioas,
		.val64 = on,
	};

	return luo_iommufd_ioctl(fd, IOMMU_OPTION, &c);
}

/* Maps length bytes of mfd from off at iova (fixed). */
static inline int luo_ioas_map_file(int fd, __u32 ioas, int mfd, __u64 off, __u64 length,
				    __u64 iova, __u32 prot)
{
	struct iommu_ioas_map_file c = {
		.size = sizeof(c),
		.flags = prot | IOMMU_IOAS_MAP_FIXED_IOVA,
		.ioas_id = ioas,
		.fd = mfd,
		.start = off,
		.length = length,
		.iova = iova,
	};

	return luo_iommufd_ioctl(fd, IOMMU_IOAS_MAP_FILE, &c);
}

/* Maps user memory at iova (fixed). */
static inline int luo_ioas_map_user(int fd, __u32 ioas, void *va, __u64 length, __u64 iova)
{
	struct iommu_ioas_map c = {
		.size = sizeof(c),
		.flags = LUO_IOMMU_RW | IOMMU_IOAS_MAP_FIXED_IOVA,
		.ioas_id = ioas,
		.user_va = (uintptr_t)va,
		.length = length,
		.iova = iova,
	};

	return luo_iommufd_ioctl(fd, IOMMU_IOAS_MAP, &c);
}

/* Unmaps [iova, iova + length); the bytes unmapped, or -errno. */
static inline long long luo_ioas_unmap(int fd, __u32 ioas, __u64 iova, __u64 length)
{
	struct iommu_ioas_unmap c = {
		.size = sizeof(c),
		.ioas_id = ioas,
		.iova = iova,
		.length = length,
	};
	int err = luo_iommufd_ioctl(fd, IOMMU_IOAS_UNMAP, &c);

	return err ? err : (long long)c.length;
}

static inline int luo_ioas_copy(int fd, __u32 dst, __u64 dst_iova, __u32 src, __u64 src_iova,
				__u64 length)
{
	struct iommu_ioas_copy c = {
		.size = sizeof(c),
		.flags = LUO_IOMMU_RW | IOMMU_IOAS_MAP_FIXED_IOVA,
		.dst_ioas_id = dst,
		.src_ioas_id = src,
		.length = length,
		.dst_iova = dst_iova,
		.src_iova = src_iova,
	};

	return luo_iommufd_ioctl(fd, IOMMU_IOAS_COPY, &c);
}

/* IOMMU_IOAS_IOVA_RANGES: -ENOENT if there is no IOAS of that id. */
static inline int luo_ioas_ranges(int fd, __u32 ioas)
{
	struct iommu_iova_range ranges[16];
	struct iommu_ioas_iova_ranges c = {
		.size = sizeof(c),
		.ioas_id = ioas,
		.num_iovas = 16,
		.allowed_iovas = (uintptr_t)ranges,
	};

	return luo_iommufd_ioctl(fd, IOMMU_IOAS_IOVA_RANGES, &c);
}

static inline int luo_iommufd_test(int fd, struct iommu_test_cmd *c)
{
	c->size = sizeof(*c);
	return luo_iommufd_ioctl(fd, IOMMU_TEST_CMD, c);
}

/* A mock "device" reading and writing through ioas: its fd, or -errno. */
static inline int luo_access_open(int fd, __u32 ioas)
{
	struct iommu_test_cmd c = { .op = IOMMU_TEST_OP_CREATE_ACCESS, .id = ioas };
	int err = luo_iommufd_test(fd, &c);

	return err ? err : (int)c.create_access.out_access_fd;
}

/* DMA by the mock device: len bytes between buf and iova. */
static inline int luo_access_rw(int fd, int access, __u64 iova, void *buf, size_t len, bool write)
{
	struct iommu_test_cmd c = {
		.op = IOMMU_TEST_OP_ACCESS_RW,
		.id = access,
		.access_rw = {
			.iova = iova,
			.length = len,
			.uptr = (uintptr_t)buf,
			.flags = write ? MOCK_ACCESS_RW_WRITE : 0,
		},
	};

	return luo_iommufd_test(fd, &c);
}

/* A mock device attached to ioas through a mock domain; sets its hwpt id. */
static inline int luo_mock_domain(int fd, __u32 ioas, __u32 *hwpt)
{
	struct iommu_test_cmd c = { .op = IOMMU_TEST_OP_MOCK_DOMAIN, .id = ioas };
	int err = luo_iommufd_test(fd, &c);

	if (!err)
		*hwpt = c.mock_domain.out_hwpt_id;
	return err;
}

/* Whether the mock domain hwpt translates [iova, iova + len) to va's pages. */
static inline int luo_mock_check_map(int fd, __u32 hwpt, __u64 iova, void *va, size_t len)
{
	struct iommu_test_cmd c = {
		.op = IOMMU_TEST_OP_MD_CHECK_MAP,
		.id = hwpt,
		.check_map = { .iova = iova, .length = len, .uptr = (uintptr_t)va },
	};

	return luo_iommufd_test(fd, &c);
}

#endif /* LUO_IOMMUFD_UTIL_H */
