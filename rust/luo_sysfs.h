/* SPDX-License-Identifier: GPL-2.0 */
/* Between luo_sysfs.c and the Rust core. */
#ifndef LUO_SYSFS_H
#define LUO_SYSFS_H

/* Creates /sys/kernel/liveupdate; called once from the Rust init. */
int luo_sysfs_init(void);

/* The per-user limits, as the admin set them in sysfs. */
unsigned int luo_max_sessions_per_user(void);
unsigned int luo_max_files_per_user(void);

/* The state's name, a static string; provided by luo_core.rs. */
const char *luo_rs_state_name(void);

#endif
