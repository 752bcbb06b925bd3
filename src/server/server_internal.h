/*
 * server_internal.h - what the files of src/server share: one client's
 * session and the request being served.
 */
#ifndef CAIRN_SERVER_INTERNAL_H
#define CAIRN_SERVER_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "proto/ctl.h"
#include "server/access.h"

/* One attached client: its socket, credentials, and what it holds open.
 * Only the session's own thread touches it after it is set up. */
struct session {
	struct ctl_server *srv;
	cairn_fs *fs;
	int sock;
	struct cred cred;
	int *fds; /* the client's descriptor n is the volume's fds[n] (-1: free) */
	int nfds;
	uint64_t *dirs; /* directory handle n reads inode dirs[n] (0: free) */
	int ndirs;
	struct session *prev, *next; /* the server's list, under its lock */
};

/* One request, checked: its strings and its raw data. */
struct request {
	const struct ctl_req *h;
	const char *str[3];
	const uint8_t *data;
	size_t dlen;
};

/* Serves one request; returns what the reply says (ret >= 0, or -errno)
 * and puts at most CTL_MAX_PAYLOAD bytes of reply payload at out
 * (*outlen).  A return of SERVE_END ends the session: the request was
 * malformed. */
#define SERVE_END INT64_MIN
int64_t serve_request(struct session *s, const struct request *rq, uint8_t *out, uint32_t *outlen);

/* Closes whatever the session's client left open. */
void serve_release(struct session *s);

#endif
