/* SPDX-License-Identifier: GPL-2.0 */
/* Between luo_test_boot.c and test_control.rs (CONFIG_LIVEUPDATE_RS_TEST). */
#ifndef LUO_TEST_BOOT_H
#define LUO_TEST_BOOT_H

#include <linux/types.h>

/* Whether luotest.late_handler was given: register the test handler late. */
bool luo_test_late_handler(void);

#endif
