// SPDX-License-Identifier: GPL-2.0
/*
 * /sys/kernel/liveupdate/state: the global live update state in one word
 * (normal, prepared, frozen, updated). The state lives in Rust
 * (luo_core.rs); this file is only the sysfs glue, kept in C like Rust
 * Binder keeps its C parts.
 */
#include <linux/kobject.h>
#include <linux/sysfs.h>

#include "rust/luo_sysfs.h"

static ssize_t state_show(struct kobject *kobj, struct kobj_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%s\n", luo_rs_state_name());
}

static struct kobj_attribute state_attr = __ATTR_RO(state);

int luo_sysfs_init(void)
{
	struct kobject *kobj;
	int err;

	kobj = kobject_create_and_add("liveupdate", kernel_kobj);
	if (!kobj)
		return -ENOMEM;
	err = sysfs_create_file(kobj, &state_attr.attr);
	if (err)
		kobject_put(kobj);
	return err;
}
