/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A luod client in C (Documentation/luod.rst has the protocol): connect,
 * ask for a session (its fd comes as SCM_RIGHTS), answer Quiesce. luod's
 * messages are small JSON objects it writes itself; this reads the few
 * fields it needs with plain string matching, which is all a test client
 * written in C needs (Rust clients use luod::client).
 */
#ifndef LUOD_CLIENT_H
#define LUOD_CLIENT_H

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define LUOD_MAX_MESSAGE 4096

/* A connection to luod at path: the socket, or -errno. */
static inline int luod_connect(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	if (s < 0)
		return -errno;
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	if (connect(s, (struct sockaddr *)&a, sizeof(a))) {
		int err = -errno;

		close(s);
		return err;
	}
	return s;
}

/* The next message (NUL-terminated in buf) and its fd (or -1): its length, or -errno. */
static inline int luod_recv(int s, char *buf, size_t size, int *fd)
{
	char control[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { buf, size - 1 };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1,
			    .msg_control = control, .msg_controllen = sizeof(control) };
	struct cmsghdr *c;
	ssize_t n = recvmsg(s, &m, MSG_CMSG_CLOEXEC);

	*fd = -1;
	if (n < 0)
		return -errno;
	for (c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
			memcpy(fd, CMSG_DATA(c), sizeof(int));
	buf[n] = 0;
	return n;
}

static inline int luod_send(int s, const char *json)
{
	return send(s, json, strlen(json), MSG_NOSIGNAL) < 0 ? -errno : 0;
}

/* The number after "key": in a message, or -1. */
static inline long long luod_field(const char *msg, const char *key)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	p = strstr(msg, pat);
	return p ? strtoll(p + strlen(pat), NULL, 10) : -1;
}

/*
 * Session name (1 to 63 plain bytes) from luod: its fd, with *incoming
 * set if it came from the previous kernel; or -errno (luod's errno if it
 * refused).
 */
static inline int luod_session(int s, const char *name, bool *incoming)
{
	char buf[LUOD_MAX_MESSAGE + 1], req[128];
	int fd, n;

	snprintf(req, sizeof(req), "{\"op\":\"session\",\"name\":\"%s\"}", name);
	if ((n = luod_send(s, req)))
		return n;
	for (;;) {
		n = luod_recv(s, buf, sizeof(buf), &fd);
		if (n <= 0)
			return n < 0 ? n : -ECONNRESET;
		if (strstr(buf, "\"op\":\"session\"") && fd >= 0) {
			*incoming = strstr(buf, "\"incoming\":true");
			return fd;
		}
		if (fd >= 0)
			close(fd);
		if (strstr(buf, "\"op\":\"error\""))
			return -(int)luod_field(buf, "errno");
		/* quiesce and resume before the answer: not for this call. */
	}
}

/*
 * Waits up to ms for luod's next message: 1 and *update for a Quiesce,
 * 2 for a Resume, 0 for nothing (or another message), -errno if luod is
 * gone.
 */
static inline int luod_next(int s, int ms, uint64_t *update)
{
	struct pollfd p = { .fd = s, .events = POLLIN };
	char buf[LUOD_MAX_MESSAGE + 1];
	int fd, n;

	if (poll(&p, 1, ms) <= 0)
		return 0;
	n = luod_recv(s, buf, sizeof(buf), &fd);
	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return n < 0 ? n : -ECONNRESET;
	if (strstr(buf, "\"op\":\"quiesce\"")) {
		*update = luod_field(buf, "update");
		return 1;
	}
	return strstr(buf, "\"op\":\"resume\"") ? 2 : 0;
}

/* Tells luod this client is quiesced for update. */
static inline int luod_ready(int s, uint64_t update)
{
	char req[64];

	snprintf(req, sizeof(req), "{\"op\":\"ready\",\"update\":%llu}", (unsigned long long)update);
	return luod_send(s, req);
}

#endif /* LUOD_CLIENT_H */
