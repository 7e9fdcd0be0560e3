// SPDX-License-Identifier: GPL-2.0
/*
 * Two-stage, in the q35 machine of the *_vfio_* tests, whose QEMU igb
 * (PCI 8086:10c9) sits behind a PCIe root port: a device that a reset
 * visibly changes. igb has a function level reset and a power management
 * capability, and its bus can be reset through the root port. Any reset
 * (FLR, bus reset, its own) sets its registers back to their defaults:
 * RDBAH0, the high half of receive queue 0's ring address, back to 0.
 * Nothing but a driver writes it, and igb does not touch it while its
 * receiver is off.
 *
 * In kernel 1 the test first shows a reset is seen: RDBAH0 written, then
 * VFIO_DEVICE_RESET, reads 0. It writes a random value into RDBAH0 and
 * preserves the device (refused while it is in D3hot). Prepared, every
 * way user space has to reset it or power it down through vfio answers
 * EBUSY: VFIO_DEVICE_RESET, a hot reset of its bus, an FLR written to
 * its PCIe device control, D3hot written to its power management control,
 * low-power entry. In kernel 2, held for its retriever, the device is
 * kept active (no runtime suspend), and the retrieved file reads the
 * value back: nothing reset it on the way. Closed after FINISH, vfio-pci
 * resets it as for any device, and a new opener reads 0.
 */
#define _GNU_SOURCE
#include <stdbool.h>
#include <stdlib.h>
#include <sys/random.h>
#include "iommufd_util.h"
#include "vfio_edu.h"
#include "luo_test.h"

#define IGB_VENDOR 0x8086
#define IGB_DEVICE 0x10c9
#define IGB_RDBAH0 0xc004

static int igb_open(struct vfio_pci_dev *igb)
{
	return pci_find(IGB_VENDOR, IGB_DEVICE, igb->bdf) ?: vfio_pci_open(igb);
}

/* RDBAH0, or 0xffffffff if it cannot be read. */
static __u32 marker(struct vfio_pci_dev *igb)
{
	__u32 v;

	return edu_read(igb, IGB_RDBAH0, &v) ? 0xffffffff : v;
}

/* The offset of capability id in config space, or 0. */
static int cap(struct vfio_pci_dev *igb, __u8 id)
{
	__u8 pos = 0, hdr[2];

	if (pread(igb->fd, &pos, 1, igb->config + PCI_CAPABILITY_LIST) != 1)
		return 0;
	for (int n = 0; pos && n < 48; n++) {
		if (pread(igb->fd, hdr, 2, igb->config + pos) != 2)
			return 0;
		if (hdr[0] == id)
			return pos;
		pos = hdr[1];
	}
	return 0;
}

/* Sets bits in a 16-bit config register (clear first): 0 or -errno. */
static int config_set16(struct vfio_pci_dev *igb, int at, __u16 clear, __u16 set)
{
	__u16 v;

	if (pread(igb->fd, &v, 2, igb->config + at) != 2)
		return -EIO;
	v = (v & ~clear) | set;
	return pwrite(igb->fd, &v, 2, igb->config + at) == 2 ? 0 : -errno;
}

/* VFIO_DEVICE_PCI_HOT_RESET of a cdev file: its bus, through the root port. */
static int hot_reset(int fd)
{
	struct vfio_pci_hot_reset r = { .argsz = sizeof(r) };

	return ioctl(fd, VFIO_DEVICE_PCI_HOT_RESET, &r) ? -errno : 0;
}

static void stage1(void)
{
	int dev = luo_open(), s, io, ioas, exp, pm, err;
	struct vfio_pci_dev igb;
	char args[64];
	__u32 value;

	CHECK(dev >= 0, "open: %s\n", strerror(-dev));
	CHECK(getrandom(&value, sizeof(value), 0) == sizeof(value), "getrandom\n");
	value |= 1; /* never the reset value */
	io = luo_iommufd_open();
	CHECK(io >= 0, "iommufd: %s\n", strerror(-io));
	ioas = luo_ioas_alloc(io);
	CHECK(ioas > 0, "IOAS\n");
	err = igb_open(&igb);
	CHECK(!err, "igb through vfio-pci: %s\n", strerror(-err));
	err = edu_attach(&igb, io, ioas);
	CHECK(!err, "bind and attach: %s\n", strerror(-err));

	/* A reset is seen: the register goes back to 0. */
	CHECK(!edu_write(&igb, IGB_RDBAH0, value) && marker(&igb) == value, "RDBAH0\n");
	err = vfio_reset(igb.fd);
	CHECK(!err, "VFIO_DEVICE_RESET: %s\n", strerror(-err));
	CHECK(marker(&igb) == 0, "RDBAH0 after a reset: %#x\n", marker(&igb));
	CHECK(!edu_write(&igb, IGB_RDBAH0, value), "RDBAH0\n");

	exp = cap(&igb, PCI_CAP_ID_EXP);
	pm = cap(&igb, PCI_CAP_ID_PM);
	CHECK(exp && pm, "igb's PCIe and PM capabilities: %#x %#x\n", exp, pm);
	s = luo_create_session(dev, "vmm");
	CHECK(s >= 0 && !luo_preserve(s, io, 1), "preserve the iommufd\n");
	/* In D3hot (written to its PM control) its state may be lost. */
	CHECK(!config_set16(&igb, pm + PCI_PM_CTRL, PCI_PM_CTRL_STATE_MASK, 3), "D3hot\n");
	err = luo_preserve(s, igb.fd, 2);
	CHECK(err == -EBUSY, "PRESERVE_FD in D3hot: %s\n", strerror(-err));
	CHECK(!config_set16(&igb, pm + PCI_PM_CTRL, PCI_PM_CTRL_STATE_MASK, 0), "D0\n");
	err = luo_preserve(s, igb.fd, 2);
	CHECK(!err, "PRESERVE_FD of the device: %s\n", strerror(-err));

	/* Prepared: no way to reset it or power it down. */
	CHECK(!luo_set_event(dev, LIVEUPDATE_EVENT_PREPARE), "PREPARE: %s\n", strerror(errno));
	err = hot_reset(igb.fd);
	CHECK(err == -EBUSY, "hot reset while prepared: %s\n", strerror(-err));
	err = vfio_reset(igb.fd);
	CHECK(err == -EBUSY, "reset while prepared: %s\n", strerror(-err));
	err = config_set16(&igb, exp + PCI_EXP_DEVCTL, 0, PCI_EXP_DEVCTL_BCR_FLR);
	CHECK(err == -EBUSY, "FLR while prepared: %s\n", strerror(-err));
	err = config_set16(&igb, pm + PCI_PM_CTRL, PCI_PM_CTRL_STATE_MASK, 3);
	CHECK(err == -EBUSY, "D3hot while prepared: %s\n", strerror(-err));
	err = vfio_low_power(igb.fd, VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY);
	CHECK(err == -EBUSY, "low power while prepared: %s\n", strerror(-err));
	CHECK(marker(&igb) == value, "RDBAH0 while prepared: %#x\n", marker(&igb));

	close(igb.fd);
	close(io);
	snprintf(args, sizeof(args), "value=%u", value);
	ksft_exit_fail_msg("kexec: %s\n", strerror(-luo_kexec(args)));
}

/* The device's runtime PM status ("active", "suspended"), or "". */
static const char *runtime_status(const char *bdf)
{
	static char buf[32];
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/power/runtime_status", bdf);
	buf[0] = 0;
	f = fopen(path, "r");
	if (f) {
		if (!fgets(buf, sizeof(buf), f))
			buf[0] = 0;
		fclose(f);
	}
	buf[strcspn(buf, "\n")] = 0;
	return buf;
}

TEST(the_device_is_not_reset)
{
	__u32 value = luo_arg_u64("value");
	int dev = luo_open(), s, io;
	struct vfio_pci_dev igb = {};

	ASSERT_LE(0, dev);
	ASSERT_NE(0, value);
	ASSERT_EQ(0, pci_find(IGB_VENDOR, IGB_DEVICE, igb.bdf));
	/* vfio-pci's probe lets an idle device suspend: a held one stays up. */
	usleep(200 * 1000);
	EXPECT_STREQ("active", runtime_status(igb.bdf));

	s = luo_retrieve_session(dev, "vmm");
	ASSERT_LE(0, s);
	io = luo_retrieve_fd(s, 1);
	ASSERT_LE(0, io);
	igb.fd = luo_retrieve_fd(s, 2);
	ASSERT_LE(0, igb.fd) TH_LOG("RETRIEVE_FD of the device: %s", strerror(-igb.fd));
	ASSERT_EQ(0, edu_regions(&igb));
	EXPECT_EQ(value, marker(&igb)) TH_LOG("RDBAH0 %#x, was %#x: reset", marker(&igb), value);
	EXPECT_EQ(0, luo_finish(s));

	/* The user's now: closing it resets it, as for any vfio-pci device. */
	close(igb.fd);
	igb.fd = edu_open_cdev(igb.bdf);
	ASSERT_LE(0, igb.fd);
	ASSERT_EQ(0, vfio_bind(igb.fd, io));
	ASSERT_EQ(0, edu_regions(&igb));
	EXPECT_EQ(0, marker(&igb));
	close(igb.fd);
	close(io);
	close(s);
	close(dev);
}

LUO_KEXEC_TEST_MAIN(stage1)
