/*
 * server_internal.h - what the files of src/server share: one client's
 * session and the request being served.
 */
#ifndef CAIRN_SERVER_INTERNAL_H
#define CAIRN_SERVER_INTERNAL_H

#include <stddef.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "proto/ctl.h"
#include "server/access.h"
#include "server/server.h"

/* One attached client: its socket, credentials, and what it holds open.
 * Only the session's own thread touches it after it is set up. */
struct session {
	struct ctl_server *srv;
	cairn_fs *fs;
	int sock;
	struct cred cred;
	/* The client's descriptor n is the volume's descriptor fds[n].vfd
	 * (-1: free), open on inode fds[n].ino. */
	struct client_fd {
		int vfd;
		uint64_t ino;
		int flags; /* of the open */
		int grant; /* 1 + the index of its grant of local writes, or 0 */
	} * fds;
	int nfds;
	const struct ctl_watch *watch; /* or NULL */
	uint64_t *dirs;                /* directory handle n reads inode dirs[n] (0: free) */
	int ndirs;
	/* Inodes pinned for the request being served (serve_ops.c, pin). */
	uint64_t pins[4];
	int npins;
	struct session *prev, *next; /* the server's list, under its lock */
	/* The client's private log (serve_clog.c), or NULL; and descriptors
	 * the reply being sent passes to the client. */
	struct clog *clog;
	int pass_fds[2];
	int npass;
	/* The request's payload and the reply's, grown to what a request
	 * needs (a 1 MiB read) and kept: most sessions never need more than
	 * the first 64 KiB, so a thousand idle clients cost little. */
	uint8_t *in, *out;
	size_t incap, outcap;
	/* Tiers this session drained (cairn_tier_evacuate), taken back when
	 * it ends: a `cairn tier remove` interrupted leaves its tier as it
	 * was, taking data again. */
	char drained[CAIRN_MAX_TIERS][16];
	int ndrained;
};

/* The volume's online scrub (scrub_job.c): one per daemon. */
struct scrub_job {
	cairn_fs *fs;
	pthread_mutex_t lock;
	pthread_t thread;
	int started;          /* a thread to join */
	int state;            /* CTL_SCRUB_* */
	int error;            /* errno of a scrub that failed */
	struct cairn_scrub s; /* its progress */
};
void scrub_job_init(struct scrub_job *j, cairn_fs *fs);
/* CTL_SCRUB_START_CMD (-EBUSY while one runs), _CANCEL_CMD, _STATUS_CMD. */
int scrub_job_control(struct scrub_job *j, int cmd);
void scrub_job_status(struct scrub_job *j, struct ctl_scrub_status *out);
/* Cancels a running scrub and waits for it: before the volume unmounts. */
void scrub_job_stop(struct scrub_job *j);
/* The server's job, for serve_ops.c. */
struct scrub_job *server_scrub_job(struct ctl_server *srv);

/* Makes s->out hold at least need bytes; 0 or -ENOMEM. */
int session_out(struct session *s, size_t need);

/* The mode without the bits a change of owner or a write by anyone but
 * root clears, as Linux does: set-user-ID, and set-group-ID when the
 * group may execute (otherwise it marks mandatory locking). */
static inline mode_t without_setid(mode_t mode)
{
	mode_t kill = S_ISUID | ((mode & S_IXGRP) ? S_ISGID : 0);
	return mode & ~kill;
}

/* One request, checked: its strings and its raw data. */
struct request {
	const struct ctl_req *h;
	const char *str[3];
	const uint8_t *data;
	size_t dlen;
};

/* Serves one request; returns what the reply says (ret >= 0, or -errno)
 * and puts its reply payload in s->out (*outlen bytes).  A return of SERVE_END ends the session:
 * the request was malformed. */
#define SERVE_END INT64_MIN
int64_t serve_request(struct session *s, const struct request *rq, uint32_t *outlen);

/* Closes whatever the session's client left open. */
void serve_release(struct session *s);
/* serve_ops.c: the session drains tier `name` / takes back what it drained. */
void serve_tier_draining(struct session *s, const char *name);
void serve_tiers_end(struct session *s);

/* ---- the client's private log (serve_clog.c) ---- */
struct walked;
/* CTL_DIR_GRANT of the directory w found (pinned) in a walk begun when
 * clients_names_gen said gen, and CTL_SET_ASIDE. */
int64_t serve_dir_grant(struct session *s, const struct walked *w, uint64_t gen,
                        uint32_t *outlen);
int64_t serve_set_aside(struct session *s, const struct request *rq, uint32_t *outlen);
/* CTL_CLOG_START and CTL_CLOG_SYNC. */
int64_t serve_clog(struct session *s, const struct request *rq, uint32_t *outlen);
/* After descriptor slot was opened with flags on a regular file: grants
 * local writes if the client asked (CTL_OPEN_GRANT) and may have them, and
 * puts the grant in the reply. */
void serve_grant(struct session *s, int slot, int64_t want, mode_t mode, uint32_t *outlen);
/* Before descriptor slot closes: its grant goes, its records applied. */
void serve_ungrant(struct session *s, int slot);
/* The session ends: its log is ingested and removed.  Says it if the
 * client forged a record. */
void serve_clog_end(struct session *s, void (*say)(void *arg, const char *msg), void *arg);

#endif
