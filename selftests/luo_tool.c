// SPDX-License-Identifier: GPL-2.0
/*
 * A small command for the demo VM's shell script:
 *
 *	luo_tool state		print the global state of /dev/liveupdate
 *	luo_tool kexec [ARGS]	kexec into the next stage (see luo_util.h)
 */
#include "luo_util.h"

static const char *const state_names[] = {
	[LIVEUPDATE_STATE_UNDEFINED] = "undefined",
	[LIVEUPDATE_STATE_NORMAL] = "normal",
	[LIVEUPDATE_STATE_PREPARED] = "prepared",
	[LIVEUPDATE_STATE_FROZEN] = "frozen",
	[LIVEUPDATE_STATE_UPDATED] = "updated",
};

int main(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "state")) {
		int fd = luo_open(), st;

		if (fd < 0) {
			perror(LUO_DEV);
			return 1;
		}
		st = luo_get_state(fd);
		if (st < 0 || st > LIVEUPDATE_STATE_UPDATED) {
			fprintf(stderr, "GET_STATE: %s\n", st < 0 ? strerror(-st) : "bad state");
			return 1;
		}
		printf("%s\n", state_names[st]);
		return 0;
	}
	if (argc >= 2 && !strcmp(argv[1], "kexec")) {
		int err = luo_kexec(argc >= 3 ? argv[2] : "");

		fprintf(stderr, "kexec failed: %s\n", strerror(-err));
		return 1;
	}
	fprintf(stderr, "usage: %s state | kexec [key=value ...]\n", argv[0]);
	return 2;
}
