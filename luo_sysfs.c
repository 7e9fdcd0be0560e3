// SPDX-License-Identifier: GPL-2.0
/*
 * /sys/kernel/liveupdate/state: the global live update state in one word
 * (normal, prepared, frozen, updated). The state lives in Rust
 * (luo_core.rs); this file is only the sysfs glue, kept in C like Rust
 * Binder keeps its C parts.
 *
 * /sys/kernel/liveupdate/max_sessions_per_user and max_files_per_user: the
 * per-user limits (Documentation/uapi.rst, "Limits"): an admin sets them,
 * CAP_SYS_RESOURCE goes past them.
 */
#include <linux/capability.h>
#include <linux/kobject.h>
#include <linux/sysfs.h>

#include "rust/luo_sysfs.h"

static ssize_t state_show(struct kobject *kobj, struct kobj_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%s\n", luo_rs_state_name());
}

static struct kobj_attribute state_attr = __ATTR_RO(state);

/* Written only here; read with READ_ONCE() by the Rust core. */
static unsigned int max_sessions_per_user = 1024;
static unsigned int max_files_per_user = 65536;

unsigned int luo_max_sessions_per_user(void)
{
	return READ_ONCE(max_sessions_per_user);
}

unsigned int luo_max_files_per_user(void)
{
	return READ_ONCE(max_files_per_user);
}

static ssize_t limit_store(unsigned int *limit, const char *buf, size_t count)
{
	unsigned int v;
	int err;

	/* The file mode lets root write; the limits are an admin's to set. */
	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	err = kstrtouint(buf, 0, &v);
	if (err)
		return err;
	WRITE_ONCE(*limit, v);
	return count;
}

static ssize_t max_sessions_per_user_show(struct kobject *kobj, struct kobj_attribute *attr,
					  char *buf)
{
	return sysfs_emit(buf, "%u\n", luo_max_sessions_per_user());
}

static ssize_t max_sessions_per_user_store(struct kobject *kobj, struct kobj_attribute *attr,
					   const char *buf, size_t count)
{
	return limit_store(&max_sessions_per_user, buf, count);
}

static ssize_t max_files_per_user_show(struct kobject *kobj, struct kobj_attribute *attr,
				       char *buf)
{
	return sysfs_emit(buf, "%u\n", luo_max_files_per_user());
}

static ssize_t max_files_per_user_store(struct kobject *kobj, struct kobj_attribute *attr,
					const char *buf, size_t count)
{
	return limit_store(&max_files_per_user, buf, count);
}

static struct kobj_attribute max_sessions_attr = __ATTR_RW(max_sessions_per_user);
static struct kobj_attribute max_files_attr = __ATTR_RW(max_files_per_user);

static struct attribute *luo_attrs[] = {
	&state_attr.attr,
	&max_sessions_attr.attr,
	&max_files_attr.attr,
	NULL,
};

static const struct attribute_group luo_group = {
	.attrs = luo_attrs,
};

int luo_sysfs_init(void)
{
	struct kobject *kobj;
	int err;

	kobj = kobject_create_and_add("liveupdate", kernel_kobj);
	if (!kobj)
		return -ENOMEM;
	err = sysfs_create_group(kobj, &luo_group);
	if (err)
		kobject_put(kobj);
	return err;
}
