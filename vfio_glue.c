// SPDX-License-Identifier: GPL-2.0
/*
 * The vfio and PCI steps of luo-rs's VFIO handler (vfio.rs wraps them),
 * over the calls patch 0011 adds to vfio, and the devices luo-rs holds in
 * the new kernel until user space retrieves them.
 */
#include <linux/err.h>
#include <linux/iommu.h>
#include <linux/iommufd.h>
#include <linux/liveupdate.h>
#include <linux/list.h>
#include <linux/pci.h>
#include <linux/pm_runtime.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/vfio.h>
#include <linux/vfio_pci_core.h>

#include "rust/vfio_glue.h"

bool luo_vfio_is_device_file(struct file *file)
{
	return vfio_lu_is_device_file(file);
}

int luo_vfio_describe(struct file *file, struct luo_vfio_device *out,
		      struct file **iommufd)
{
	struct vfio_lu_device d;
	int ret;

	ret = vfio_pci_core_lu_describe(file, &d);
	if (ret)
		return ret;
	*out = (struct luo_vfio_device){
		.segment = d.segment,
		.bus = d.bus,
		.devfn = d.devfn,
		.vendor = d.vendor,
		.device = d.device,
		.subsystem_vendor = d.subsystem_vendor,
		.subsystem_device = d.subsystem_device,
		.class = d.class,
		.ioas_id = d.ioas_id,
		.master = d.master,
	};
	*iommufd = iommufd_lu_ctx_file(d.ictx);
	return 0;
}

int luo_vfio_freeze(struct file *file)
{
	return vfio_pci_core_lu_freeze(file);
}

void luo_vfio_thaw(struct file *file)
{
	vfio_pci_core_lu_thaw(file);
}

/*
 * A device held for its retriever, with a reference and a runtime PM
 * usage count: vfio-pci's probe lets an idle device suspend, and D3 resets
 * many devices. Found by address (the record's) and by pdev (vfio's).
 */
struct held {
	struct list_head node;
	struct pci_dev *pdev;
	u16 segment;
	u8 bus;
	u8 devfn;
};

/* Locking: a leaf; vfio asks under its dev_set lock. */
static DEFINE_SPINLOCK(held_lock);
static LIST_HEAD(held_list);

static struct held *find_held(u16 segment, u8 bus, u8 devfn)
{
	struct held *h;

	lockdep_assert_held(&held_lock);
	list_for_each_entry(h, &held_list, node)
		if (h->segment == segment && h->bus == bus && h->devfn == devfn)
			return h;
	return NULL;
}

bool liveupdate_device_held(struct device *dev)
{
	struct held *h;

	if (!dev_is_pci(dev))
		return false;
	guard(spinlock)(&held_lock);
	/* The very device held, not another one found at its address later. */
	list_for_each_entry(h, &held_list, node)
		if (&h->pdev->dev == dev)
			return true;
	return false;
}

/* The device of dev, if it is still the one recorded (with a reference). */
static struct pci_dev *get_pdev(const struct luo_vfio_device *dev)
{
	struct pci_dev *pdev;

	pdev = pci_get_domain_bus_and_slot(dev->segment, dev->bus, dev->devfn);
	if (pdev && (pdev->vendor != dev->vendor || pdev->device != dev->device ||
		     pdev->subsystem_vendor != dev->subsystem_vendor ||
		     pdev->subsystem_device != dev->subsystem_device ||
		     pdev->class != dev->class)) {
		pci_dev_put(pdev);
		return NULL;
	}
	return pdev;
}

void luo_vfio_hold(const struct luo_vfio_device *dev)
{
	struct pci_dev *pdev = get_pdev(dev);
	struct held *h;

	if (!pdev) {
		pr_warn("luo-rs: %04x:%02x:%02x.%d is gone or another device: not held\n",
			dev->segment, dev->bus, PCI_SLOT(dev->devfn),
			PCI_FUNC(dev->devfn));
		return;
	}
	h = kzalloc(sizeof(*h), GFP_KERNEL);
	if (!h) {
		pci_warn(pdev, "luo-rs: cannot hold the device for its retriever\n");
		pci_dev_put(pdev);
		return;
	}
	/* Active since enumeration: kept so until luo_vfio_release(). */
	pm_runtime_get_noresume(&pdev->dev);
	h->pdev = pdev;
	h->segment = dev->segment;
	h->bus = dev->bus;
	h->devfn = dev->devfn;
	scoped_guard(spinlock, &held_lock)
		list_add(&h->node, &held_list);
	/* vfio-pci only: its probe neither resets nor enables the device. */
	if (device_set_driver_override(&pdev->dev, "vfio-pci"))
		pci_warn(pdev, "luo-rs: cannot keep other drivers from the device\n");
	else if (pdev->dev.driver && strcmp(pdev->dev.driver->name, "vfio-pci"))
		pci_warn(pdev, "luo-rs: driver %s bound it before luo-rs could hold it\n",
			 pdev->dev.driver->name);
}

void luo_vfio_release(const struct luo_vfio_device *dev)
{
	struct held *h;

	scoped_guard(spinlock, &held_lock) {
		h = find_held(dev->segment, dev->bus, dev->devfn);
		if (h)
			list_del(&h->node);
	}
	if (!h)
		return;
	/* The page table handed over for it, if its retriever did not adopt it. */
	iommu_lu_discard(&h->pdev->dev);
	pm_runtime_put(&h->pdev->dev);
	pci_dev_put(h->pdev);
	kfree(h);
}

struct file *luo_vfio_open(const struct luo_vfio_device *dev,
			   struct file *iommufd)
{
	struct pci_dev *pdev = get_pdev(dev);
	struct iommufd_ctx *ictx;
	struct file *file;

	if (!pdev)
		return ERR_PTR(-ENODEV);
	/* Not held since boot: anyone may have reset or opened it. */
	if (!liveupdate_device_held(&pdev->dev)) {
		file = ERR_PTR(-ENODEV);
		goto out_put;
	}
	ictx = iommufd_ctx_from_file(iommufd);
	if (IS_ERR(ictx)) {
		file = ERR_CAST(ictx);
		goto out_put;
	}
	file = vfio_lu_open_device(&pdev->dev, ictx, dev->ioas_id);
	iommufd_ctx_put(ictx);
	/* Master as it was at FREEZE: the old kernel's shutdown cleared it. */
	if (!IS_ERR(file) && dev->master)
		pci_set_master(pdev);
out_put:
	pci_dev_put(pdev);
	return file;
}
