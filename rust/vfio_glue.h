/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Between vfio_glue.c and the VFIO handler (vfio.rs wraps each call), over
 * the calls patch 0011 adds to vfio. Built with the VFIO handler
 * (CONFIG_LIVEUPDATE_RS_VFIO).
 */
#ifndef LUO_VFIO_GLUE_H
#define LUO_VFIO_GLUE_H

#include <linux/types.h>

struct file;

/* A vfio-pci device file, as the handler records it. */
struct luo_vfio_device {
	u16 segment;
	u8 bus;
	u8 devfn;
	u16 vendor;
	u16 device;
	u16 subsystem_vendor;
	u16 subsystem_device;
	u32 class;
	u32 ioas_id;
	/* PCI_COMMAND's bus-master bit, when described. */
	bool master;
};

/* Whether file is a vfio device file (bound or not, cdev or group). */
bool luo_vfio_is_device_file(struct file *file);
/*
 * Describes a bound and attached vfio-pci device file (-EINVAL for any
 * other file, -EOPNOTSUPP for what cannot be carried, -ENOENT if not
 * attached, -EBUSY in low power); *iommufd is the iommufd file it is bound
 * to, held by it.
 */
int luo_vfio_describe(struct file *file, struct luo_vfio_device *out,
		      struct file **iommufd);
/*
 * Refuses attach, detach, resets and low power until luo_vfio_thaw()
 * (-EBUSY if frozen already or in low power).
 */
int luo_vfio_freeze(struct file *file);
void luo_vfio_thaw(struct file *file);
/*
 * In the new kernel, at boot: dev is the retriever's. vfio-pci is the only
 * driver it may bind, and no one else may open it until luo_vfio_release().
 */
void luo_vfio_hold(const struct luo_vfio_device *dev);
void luo_vfio_release(const struct luo_vfio_device *dev);
/*
 * Opens the held device bound to iommufd and attached to IOAS
 * dev->ioas_id, without resetting it, and lets it master the bus again if
 * dev->master: the device file, or an ERR_PTR (-ENODEV if the device is
 * not there, another one, not held since boot, or without vfio-pci;
 * -ENOENT if the IOAS is not in iommufd; -EBUSY if it or its group is
 * open). The device is not reset, also when this fails.
 */
struct file *luo_vfio_open(const struct luo_vfio_device *dev,
			   struct file *iommufd);

#endif
