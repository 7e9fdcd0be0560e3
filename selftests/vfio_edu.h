/* SPDX-License-Identifier: GPL-2.0 */
/*
 * QEMU's edu device (PCI 1234:11e8) through vfio-pci's cdev and iommufd,
 * for the tests that run in the q35 machine with an emulated VT-d
 * (scripts/run-vm.sh, tests named *_vfio_*). edu copies up to 4 KiB
 * between its own buffer and a bus address, here an IOVA the IOMMU
 * translates: a DMA engine a test can start and check.
 *
 * edu's registers (QEMU's docs/specs/edu.rst): 0x80 source, 0x88
 * destination, 0x90 count, 0x98 command (bit 0 starts the transfer and
 * clears when it is done, bit 1 is the direction: edu to the bus). Its
 * buffer is at 0x40000 in its own addresses; bus addresses are cut to
 * 28 bits. Calls return 0 or -errno.
 */
#ifndef LUO_VFIO_EDU_H
#define LUO_VFIO_EDU_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <linux/pci_regs.h>
#include <linux/vfio.h>

#define EDU_SRC 0x80
#define EDU_DST 0x88
#define EDU_CNT 0x90
#define EDU_CMD 0x98
#define EDU_RUN 0x1
#define EDU_TO_BUS 0x2
#define EDU_BUF 0x40000
#define EDU_BUF_LEN 4096

/* A device (edu, or another) bound to vfio-pci, opened through its cdev. */
struct vfio_pci_dev {
	char bdf[16];
	int fd;
	__u64 bar0, config;
};

/* Writes text into the sysfs file at path. */
static inline int edu_sysfs_write(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY), err = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, text, strlen(text)) < 0)
		err = -errno;
	close(fd);
	return err;
}

static inline unsigned int edu_sysfs_hex(const char *bdf, const char *file)
{
	char path[128], buf[32] = "";
	FILE *f;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/%s", bdf, file);
	f = fopen(path, "r");
	if (!f)
		return 0;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = 0;
	fclose(f);
	return strtoul(buf, NULL, 16);
}

/* The address ("0000:00:03.0") of a vendor:device into bdf: 0, or -ENODEV. */
static inline int pci_find(unsigned int vendor, unsigned int device, char bdf[16])
{
	DIR *d = opendir("/sys/bus/pci/devices");
	struct dirent *e;
	int err = -ENODEV;

	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.' || strlen(e->d_name) >= 16)
			continue;
		if (edu_sysfs_hex(e->d_name, "vendor") == vendor &&
		    edu_sysfs_hex(e->d_name, "device") == device) {
			strcpy(bdf, e->d_name);
			err = 0;
			break;
		}
	}
	if (d)
		closedir(d);
	return err;
}

/* The edu's address into bdf: 0, or -ENODEV. */
static inline int edu_find(char bdf[16])
{
	return pci_find(0x1234, 0x11e8, bdf);
}

/* The edu's PCI command register, read through sysfs (any driver, or none). */
static inline int edu_command(const char *bdf)
{
	char path[128];
	__u16 cmd;
	int fd, n;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/config", bdf);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -errno;
	n = pread(fd, &cmd, sizeof(cmd), PCI_COMMAND);
	close(fd);
	return n == sizeof(cmd) ? cmd : -EIO;
}

/* Opens the cdev of the edu at bdf, bound to vfio-pci: an fd, or -errno. */
static inline int edu_open_cdev(const char *bdf)
{
	char path[160], dev[64] = "";
	struct dirent *e;
	DIR *d;
	int fd;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/vfio-dev", bdf);
	d = opendir(path);
	if (!d)
		return -ENODEV;
	while ((e = readdir(d)))
		if (!strncmp(e->d_name, "vfio", 4))
			snprintf(dev, sizeof(dev), "/dev/vfio/devices/%s", e->d_name);
	closedir(d);
	fd = open(dev, O_RDWR);
	return fd < 0 ? -errno : fd;
}

/* Binds the device at dev->bdf to vfio-pci and opens its cdev (not bound). */
static inline int vfio_pci_open(struct vfio_pci_dev *dev)
{
	char path[160];
	int err;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/driver_override", dev->bdf);
	if ((err = edu_sysfs_write(path, "vfio-pci")))
		return err;
	/* EBUSY or similar if it is bound already: the cdev tells. */
	edu_sysfs_write("/sys/bus/pci/drivers_probe", dev->bdf);
	dev->fd = edu_open_cdev(dev->bdf);
	return dev->fd < 0 ? dev->fd : 0;
}

/* Binds the edu to vfio-pci and opens its cdev; does not bind to iommufd. */
static inline int edu_open(struct vfio_pci_dev *edu)
{
	return edu_find(edu->bdf) ?: vfio_pci_open(edu);
}

static inline int edu_region(struct vfio_pci_dev *edu, __u32 index, __u64 *offset)
{
	struct vfio_region_info info = { .argsz = sizeof(info), .index = index };

	if (ioctl(edu->fd, VFIO_DEVICE_GET_REGION_INFO, &info))
		return -errno;
	*offset = info.offset;
	return 0;
}

/* Where BAR 0 and config space are in the device fd (bound, or retrieved). */
static inline int edu_regions(struct vfio_pci_dev *edu)
{
	int err = edu_region(edu, VFIO_PCI_BAR0_REGION_INDEX, &edu->bar0);

	return err ?: edu_region(edu, VFIO_PCI_CONFIG_REGION_INDEX, &edu->config);
}

/* VFIO_DEVICE_BIND_IOMMUFD of a device cdev fd: 0 or -errno. */
static inline int vfio_bind(int fd, int iommufd)
{
	struct vfio_device_bind_iommufd b = { .argsz = sizeof(b), .iommufd = iommufd };

	return ioctl(fd, VFIO_DEVICE_BIND_IOMMUFD, &b) ? -errno : 0;
}

/* VFIO_DEVICE_ATTACH_IOMMUFD_PT to pt (an IOAS, or a page table). */
static inline int vfio_attach(int fd, __u32 pt)
{
	struct vfio_device_attach_iommufd_pt a = { .argsz = sizeof(a), .pt_id = pt };

	return ioctl(fd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &a) ? -errno : 0;
}

static inline int vfio_detach(int fd)
{
	struct vfio_device_detach_iommufd_pt d = { .argsz = sizeof(d) };

	return ioctl(fd, VFIO_DEVICE_DETACH_IOMMUFD_PT, &d) ? -errno : 0;
}

static inline int vfio_reset(int fd)
{
	return ioctl(fd, VFIO_DEVICE_RESET) ? -errno : 0;
}

/* VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY or _EXIT. */
static inline int vfio_low_power(int fd, __u32 feature)
{
	struct vfio_device_feature f = {
		.argsz = sizeof(f),
		.flags = VFIO_DEVICE_FEATURE_SET | feature,
	};

	return ioctl(fd, VFIO_DEVICE_FEATURE, &f) ? -errno : 0;
}

/* Finds a device's regions and turns memory decode and bus mastering on. */
static inline int vfio_pci_enable(struct vfio_pci_dev *edu)
{
	__u16 cmd;
	int err;

	if ((err = edu_regions(edu)))
		return err;
	if (pread(edu->fd, &cmd, sizeof(cmd), edu->config + PCI_COMMAND) != sizeof(cmd))
		return -EIO;
	cmd |= PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER;
	if (pwrite(edu->fd, &cmd, sizeof(cmd), edu->config + PCI_COMMAND) != sizeof(cmd))
		return -EIO;
	return 0;
}

/*
 * Binds the opened edu to iommufd, attaches it to the IOAS ioas (its
 * domain is made from the IOAS's mappings) and turns bus mastering on.
 */
static inline int edu_attach(struct vfio_pci_dev *edu, int iommufd, __u32 ioas)
{
	return vfio_bind(edu->fd, iommufd) ?: vfio_attach(edu->fd, ioas) ?: vfio_pci_enable(edu);
}

static inline int edu_write(struct vfio_pci_dev *edu, __u32 reg, __u32 val)
{
	return pwrite(edu->fd, &val, sizeof(val), edu->bar0 + reg) == sizeof(val) ? 0 : -EIO;
}

static inline int edu_read(struct vfio_pci_dev *edu, __u32 reg, __u32 *val)
{
	return pread(edu->fd, val, sizeof(*val), edu->bar0 + reg) == sizeof(*val) ? 0 : -EIO;
}

/*
 * One DMA of len bytes between the bus address iova and edu's buffer (at
 * its start), toward the bus if to_bus; waits for it (100 ms of the VM's
 * time, up to 5 s).
 */
static inline int edu_dma(struct vfio_pci_dev *edu, __u64 iova, __u32 len, bool to_bus)
{
	__u32 cmd = EDU_RUN | (to_bus ? EDU_TO_BUS : 0);
	int err;

	if ((err = edu_write(edu, EDU_SRC, to_bus ? EDU_BUF : iova)) ||
	    (err = edu_write(edu, EDU_DST, to_bus ? iova : EDU_BUF)) ||
	    (err = edu_write(edu, EDU_CNT, len)) || (err = edu_write(edu, EDU_CMD, cmd)))
		return err;
	for (int i = 0; i < 500; i++) {
		if ((err = edu_read(edu, EDU_CMD, &cmd)))
			return err;
		if (!(cmd & EDU_RUN))
			return 0;
		usleep(10 * 1000);
	}
	return -ETIMEDOUT;
}

#endif /* LUO_VFIO_EDU_H */
