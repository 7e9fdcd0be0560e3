/* SPDX-License-Identifier: GPL-2.0 */
/* Between luo_sysfs.c and the Rust core. */
#ifndef LUO_SYSFS_H
#define LUO_SYSFS_H

/* Creates /sys/kernel/liveupdate/state; called once from the Rust init. */
int luo_sysfs_init(void);

/* The state's name, a static string; provided by luo_core.rs. */
const char *luo_rs_state_name(void);

#endif
