/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers shared by luo-rs's VM programs: opening /dev/liveupdate, the
 * extensible-struct ioctls, reading luo-rs's debugfs status, command-line
 * arguments of the test VM, and kexec into the next stage.
 */
#ifndef LUO_UTIL_H
#define LUO_UTIL_H

#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <stdbool.h>
#include <fcntl.h>
#include <time.h>
#include <linux/kexec.h>
#include <linux/liveupdate.h>
#include <linux/reboot.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/reboot.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define LUO_DEV "/dev/liveupdate"
#define LUO_STATUS "/sys/kernel/debug/liveupdate/status"

static inline int luo_open(void)
{
	return open(LUO_DEV, O_RDWR | O_CLOEXEC);
}

/* ioctl() returning 0 or -errno. */
static inline int luo_ioctl(int fd, unsigned long cmd, void *arg)
{
	return ioctl(fd, cmd, arg) < 0 ? -errno : 0;
}

/* The global state, or -errno. */
static inline int luo_get_state(int fd)
{
	struct liveupdate_ioctl_get_state st = { .size = sizeof(st) };
	int ret = luo_ioctl(fd, LIVEUPDATE_IOCTL_GET_STATE, &st);

	return ret ? ret : (int)st.state;
}

/* SET_EVENT: 0 or -errno. */
static inline int luo_set_event(int fd, unsigned int event)
{
	struct liveupdate_ioctl_set_event ev = { .size = sizeof(ev), .event = event };

	return luo_ioctl(fd, LIVEUPDATE_IOCTL_SET_EVENT, &ev);
}

/* CREATE_SESSION on a /dev/liveupdate fd: the new fd, or -errno. */
static inline int luo_create_session(int fd, const char *name)
{
	struct liveupdate_ioctl_create_session cs = { .size = sizeof(cs) };
	int ret;

	snprintf((char *)cs.name, sizeof(cs.name), "%s", name);
	ret = luo_ioctl(fd, LIVEUPDATE_IOCTL_CREATE_SESSION, &cs);
	return ret ? ret : cs.fd;
}

/* SESSION_GET_NAME into buf (LIVEUPDATE_SESSION_NAME_LENGTH bytes). */
static inline int luo_get_name(int fd, char *buf)
{
	struct liveupdate_session_get_name gn = { .size = sizeof(gn) };
	int ret = luo_ioctl(fd, LIVEUPDATE_SESSION_GET_NAME, &gn);

	if (!ret)
		memcpy(buf, gn.name, sizeof(gn.name));
	return ret;
}

static inline int luo_set_name(int fd, const char *name)
{
	struct liveupdate_session_set_name sn = { .size = sizeof(sn) };

	snprintf((char *)sn.name, sizeof(sn.name), "%s", name);
	return luo_ioctl(fd, LIVEUPDATE_SESSION_SET_NAME, &sn);
}

/* RETRIEVE_SESSION: the incoming session's new fd, or -errno. */
static inline int luo_retrieve_session(int fd, const char *name)
{
	struct liveupdate_ioctl_retrieve_session rs = { .size = sizeof(rs) };
	int ret;

	snprintf((char *)rs.name, sizeof(rs.name), "%s", name);
	ret = luo_ioctl(fd, LIVEUPDATE_IOCTL_RETRIEVE_SESSION, &rs);
	return ret ? ret : rs.fd;
}

/* SESSION_FINISH: 0 or -errno. */
static inline int luo_finish(int session)
{
	struct liveupdate_session_finish f = { .size = sizeof(f) };

	return luo_ioctl(session, LIVEUPDATE_SESSION_FINISH, &f);
}

/* SESSION_GET_STATE: the session's state (and files in *nr), or -errno. */
static inline int luo_session_state(int session, unsigned int *nr)
{
	struct liveupdate_session_get_state st = { .size = sizeof(st) };
	int ret = luo_ioctl(session, LIVEUPDATE_SESSION_GET_STATE, &st);

	if (ret)
		return ret;
	if (nr)
		*nr = st.nr_files;
	return (int)st.state;
}

/* SESSION_PRESERVE_FD: 0 or -errno. */
static inline int luo_preserve(int session, int fd, __u64 token)
{
	struct liveupdate_session_preserve_fd p = { .size = sizeof(p), .fd = fd, .token = token };

	return luo_ioctl(session, LIVEUPDATE_SESSION_PRESERVE_FD, &p);
}

/* SESSION_UNPRESERVE_FD: 0 or -errno. */
static inline int luo_unpreserve(int session, __u64 token)
{
	struct liveupdate_session_unpreserve_fd u = { .size = sizeof(u), .token = token };

	return luo_ioctl(session, LIVEUPDATE_SESSION_UNPRESERVE_FD, &u);
}

/* SESSION_RETRIEVE_FD: the new fd, or -errno. */
static inline int luo_retrieve_fd(int session, __u64 token)
{
	struct liveupdate_session_retrieve_fd r = { .size = sizeof(r), .token = token };
	int ret = luo_ioctl(session, LIVEUPDATE_SESSION_RETRIEVE_FD, &r);

	return ret ? ret : r.fd;
}

/* Milliseconds on `clock`: CLOCK_MONOTONIC, or CLOCK_BOOTTIME (since boot). */
static inline double luo_ms(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* A file of the test handler (/dev/liveupdate-test) holding `len` bytes. */
static inline int luo_test_file(const void *payload, size_t len)
{
	int fd = open("/dev/liveupdate-test", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (len && write(fd, payload, len) != (ssize_t)len) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

/*
 * Reads a test file from its current position (retrieved test files are
 * not seekable); returns the length read or -errno.
 */
static inline ssize_t luo_test_read(int fd, void *buf, size_t len)
{
	ssize_t n = read(fd, buf, len);

	return n < 0 ? -errno : n;
}

/*
 * Copies the value of "key: value" from a file of such lines into buf.
 * Returns 0, or -ENOENT if the key is absent.
 */
static inline int luo_key(const char *path, const char *key, char *buf, size_t len)
{
	char line[256];
	size_t klen = strlen(key);
	FILE *f = fopen(path, "r");
	int ret = -ENOENT;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, key, klen) || line[klen] != ':')
			continue;
		snprintf(buf, len, "%s", line + klen + 2);
		buf[strcspn(buf, "\n")] = 0;
		ret = 0;
		break;
	}
	fclose(f);
	return ret;
}

/* The number in "key: value" of a file of such lines, or ~0 if absent. */
static inline unsigned long long luo_key_u64(const char *path, const char *key)
{
	char buf[64];

	if (luo_key(path, key, buf, sizeof(buf)))
		return ~0ULL;
	return strtoull(buf, NULL, 0);
}

/* "key: value" from luo-rs's debugfs status. */
static inline int luo_status(const char *key, char *buf, size_t len)
{
	return luo_key(LUO_STATUS, key, buf, len);
}

static inline unsigned long long luo_status_u64(const char *key)
{
	return luo_key_u64(LUO_STATUS, key);
}

/*
 * The test subsystem and test handler's control file (see
 * test_control.rs): luo_control() writes one command and returns 0 or
 * -errno; luo_control_u64() reads one of its numbers.
 */
#define LUO_CONTROL "/sys/kernel/debug/liveupdate/test-control"

static inline int luo_control(const char *cmd)
{
	int fd = open(LUO_CONTROL, O_WRONLY);
	int ret = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, cmd, strlen(cmd)) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

static inline unsigned long long luo_control_u64(const char *key)
{
	return luo_key_u64(LUO_CONTROL, key);
}

/* Reads a whole (small) file into buf, NUL-terminated: its length or -errno. */
static inline ssize_t luo_read_all(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = 0;
	return n;
}

/* The first line of a file, without its newline: 0 or -errno. */
static inline int luo_read_file(const char *path, char *buf, size_t len)
{
	ssize_t n = luo_read_all(path, buf, len);

	if (n < 0)
		return n;
	buf[strcspn(buf, "\n")] = 0;
	return 0;
}

/*
 * The value of "luotest.<key>=" on the kernel command line, copied into a
 * static buffer, or NULL.
 */
static inline const char *luo_arg(const char *key)
{
	static char cmdline[4096], val[256];
	char pat[128];
	char *p;

	if (luo_read_file("/proc/cmdline", cmdline, sizeof(cmdline)))
		return NULL;
	snprintf(pat, sizeof(pat), "luotest.%s=", key);
	for (p = cmdline; (p = strstr(p, pat)); p++) {
		if (p != cmdline && p[-1] != ' ')
			continue;
		p += strlen(pat);
		snprintf(val, sizeof(val), "%.*s", (int)strcspn(p, " "), p);
		return val;
	}
	return NULL;
}

/* luo_arg(key) as a number (decimal, or 0x hexadecimal), 0 if absent. */
static inline unsigned long long luo_arg_u64(const char *key)
{
	const char *v = luo_arg(key);

	return v ? strtoull(v, NULL, 0) : 0;
}

static inline int luo_stage(void)
{
	const char *s = luo_arg("stage");

	return s ? atoi(s) : 1;
}

/* Writes `text` to `path` (a sysfs, debugfs or cgroup file): 0 or -errno. */
static inline int luo_write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), ok;

	if (fd < 0)
		return -errno;
	ok = write(fd, text, strlen(text)) == (ssize_t)strlen(text);
	close(fd);
	return ok ? 0 : -EIO;
}

/* Makes every uid and gid of this process `uid`, which drops all
 * capabilities: 0 or -1. */
static inline int luo_become(uid_t uid)
{
	return setgroups(0, NULL) || setresgid(uid, uid, uid) || setresuid(uid, uid, uid) ? -1 : 0;
}

/* Runs fn() in a child that became `uid` (luo_become()). Returns fn()'s
 * result, 254 if the child could not become `uid`, 255 if it did not
 * exit. */
static inline int luo_as_user(uid_t uid, int (*fn)(void))
{
	int status;
	pid_t pid = fork();

	if (pid < 0)
		return 255;
	if (!pid) {
		if (luo_become(uid))
			_exit(254);
		_exit(fn());
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return 255;
	return WEXITSTATUS(status);
}

/* Whether the kernel log has a line containing `what`. */
static inline bool luo_kmsg_has(const char *what)
{
	char rec[1024];
	int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	bool found = false;
	ssize_t n;

	if (fd < 0)
		return false;
	/* EPIPE: records were overwritten before we read them; go on. */
	while ((n = read(fd, rec, sizeof(rec) - 1)) > 0 || (n < 0 && errno == EPIPE)) {
		if (n <= 0)
			continue;
		rec[n] = 0;
		if (strstr(rec, what))
			found = true;
	}
	close(fd);
	return found;
}

/*
 * The next kernel's command line: this one's, with the stage marker of the
 * next stage and "luotest.KEY=VALUE" for each word of args. Returns 0 or
 * -E2BIG.
 */
static inline int luo_next_cmdline(const char *args, char *next, size_t size)
{
	static char cmdline[4096];
	char *tok, *save;
	int len = 0;

	if (luo_read_file("/proc/cmdline", cmdline, sizeof(cmdline)))
		return -errno;
	/* Keep every word but the stage marker. */
	for (tok = strtok_r(cmdline, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
		if (!strncmp(tok, "luotest.stage=", 14))
			continue;
		len += snprintf(next + len, size - len, "%s ", tok);
		if (len >= (int)size)
			return -E2BIG;
	}
	len += snprintf(next + len, size - len, "luotest.stage=%d", luo_stage() + 1);
	if (args && *args) {
		char copy[1024];

		snprintf(copy, sizeof(copy), "%s", args);
		for (tok = strtok_r(copy, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
			if (len >= (int)size)
				return -E2BIG;
			len += snprintf(next + len, size - len, " luotest.%s", tok);
		}
	}
	return len >= (int)size ? -E2BIG : 0;
}

/*
 * Loads /boot/bzImage with /boot/initrd (if there is one) and the current
 * command line, with luotest.stage advanced and " luotest.<args>" appended
 * (args is "key=value key2=value2"), for reboot(LINUX_REBOOT_CMD_KEXEC).
 * Returns 0 or -errno.
 */
static inline int luo_kexec_load(const char *args)
{
	static char next[4096];
	int kfd, ifd, ret;

	ret = luo_next_cmdline(args, next, sizeof(next));
	if (ret)
		return ret;

	kfd = open("/boot/bzImage", O_RDONLY | O_CLOEXEC);
	if (kfd < 0)
		return -ENOENT;
	/* The second kernel's image has no initrd: it may only try a kexec
	 * that luo-rs must refuse (a real one would find no init). */
	ifd = open("/boot/initrd", O_RDONLY | O_CLOEXEC);
	if (syscall(SYS_kexec_file_load, kfd, ifd, strlen(next) + 1, next,
		    ifd < 0 ? (unsigned long)KEXEC_FILE_NO_INITRAMFS : 0UL))
		return -errno;
	printf("# kexec: %s\n", next);
	fflush(stdout);
	sync();
	return 0;
}

/* luo_kexec_load(args), then the kexec. Returns -errno only if it failed. */
static inline int luo_kexec(const char *args)
{
	int ret = luo_kexec_load(args);

	if (ret)
		return ret;
	reboot(LINUX_REBOOT_CMD_KEXEC);
	return -errno;
}

#endif /* LUO_UTIL_H */
