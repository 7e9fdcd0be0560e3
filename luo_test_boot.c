// SPDX-License-Identifier: GPL-2.0
/*
 * Boot options of luo-rs's test kernel (CONFIG_LIVEUPDATE_RS_TEST only),
 * read by test_control.rs at init:
 *
 *   luotest.late_handler  do not register the test file handler at boot,
 *                         so a test can register it late (test-control
 *                         "register-handler") and see its incoming files
 *                         wait for it.
 */
#include <linux/init.h>

#include "rust/luo_test_boot.h"

static bool late_handler;

static int __init late_handler_setup(char *arg)
{
	late_handler = true;
	return 1;
}
__setup("luotest.late_handler", late_handler_setup);

bool luo_test_late_handler(void)
{
	return late_handler;
}
