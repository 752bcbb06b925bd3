/*
 * ctl.h - the control protocol: how a client process (cairn_attach) talks
 * to the daemon that serves a volume, over the Unix stream socket
 * VOLUME/cairn.sock.
 *
 * Owns: the wire format, and whole messages on the socket (ctl_io.c).
 * Used by src/server (the daemon's side) and src/client (the process's
 * side); calls libc only.
 *
 * One request at a time per connection, one reply to each:
 *
 *   request  = struct ctl_req, then `len` bytes of payload: `nstr`
 *              NUL-terminated strings (paths, names), then raw bytes (the
 *              data of a write, the value of an xattr);
 *   reply    = struct ctl_rep, then `len` bytes (the data of a read, a
 *              struct stat, directory entries ...).
 *
 * Both ends run on one machine from one build: integers are native, and
 * the hello exchange refuses a peer of another protocol version or with
 * another layout of the structures sent raw (struct stat, statvfs,
 * cairn_info).  The daemon trusts nothing in a request: every length,
 * string, descriptor and number is checked, and a malformed request ends
 * the session.
 */
#ifndef CAIRN_PROTO_CTL_H
#define CAIRN_PROTO_CTL_H

#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#include "cairn.h"

#define CTL_SOCKET_NAME "cairn.sock"
#define CTL_MAGIC 0x4c544e43u /* "CNTL" */
#define CTL_VERSION 6

/* The most file data one request moves; larger reads and writes are split
 * by the client.  The payload may add the strings of two paths and an
 * xattr value. */
#define CTL_MAX_DATA (1u << 20)
#define CTL_MAX_PAYLOAD (CTL_MAX_DATA + 3 * 4096 + 65536)

enum ctl_op {
	CTL_HELLO = 1, /* a[0] = version, a[1..3] = layout sizes; ret: 0 */
	CTL_OPEN,      /* s: path; a: flags, mode, CTL_OPEN_*; ret: descriptor;
	                  reply: struct ctl_grant when granted */
	CTL_CLOSE,     /* a: fd */
	CTL_READ,      /* a: fd, count; reply: the bytes */
	CTL_WRITE,     /* a: fd; data; ret: count */
	CTL_PREAD,     /* a: fd, count, offset */
	CTL_PWRITE,    /* a: fd, offset; data */
	CTL_LSEEK,     /* a: fd, offset, whence; ret: new offset */
	CTL_FSYNC,     /* a: fd */
	CTL_SYNC,
	CTL_FTRUNCATE,   /* a: fd, length */
	CTL_TRUNCATE,    /* s: path; a: length */
	CTL_FSTAT,       /* a: fd; reply: struct stat */
	CTL_STAT,        /* s: path; reply: struct stat */
	CTL_LSTAT,       /* s: path; reply: struct stat */
	CTL_FALLOCATE,   /* a: fd, mode, offset, length */
	CTL_UNLINK,      /* s: path */
	CTL_RENAME,      /* s: from, to; a: flags */
	CTL_MKDIR,       /* s: path; a: mode */
	CTL_RMDIR,       /* s: path */
	CTL_LINK,        /* s: from, to */
	CTL_SYMLINK,     /* s: target, linkpath */
	CTL_READLINK,    /* s: path; a: size; reply: the target */
	CTL_CHMOD,       /* s: path; a: mode */
	CTL_CHOWN,       /* s: path; a: uid, gid (-1: unchanged) */
	CTL_UTIMENS,     /* s: path; data: struct timespec[2], or none for now */
	CTL_STATVFS,     /* s: path; reply: struct statvfs */
	CTL_SETXATTR,    /* s: path, name; a: flags; data: value */
	CTL_GETXATTR,    /* s: path, name; a: size; reply: value (ret: its size) */
	CTL_LISTXATTR,   /* s: path; a: size; reply: names */
	CTL_REMOVEXATTR, /* s: path, name */
	CTL_OPENDIR,     /* s: path; ret: directory handle */
	CTL_READDIR,     /* a: handle, cookie; reply: struct ctl_dirent[] */
	CTL_CLOSEDIR,    /* a: handle */
	CTL_INFO,        /* reply: struct cairn_info */
	CTL_DIGEST,
	CTL_MIGRATE,
	CTL_SCRUB,      /* a: CTL_SCRUB_*_CMD; reply: struct ctl_scrub_status; root only */
	CTL_CLOG_START, /* reply: struct ctl_clog, with the log's and the state
	                   file's descriptors (SCM_RIGHTS) */
	CTL_CLOG_SYNC,  /* a: seq asked about (0: none), credit wanted;
	                   reply: struct ctl_clog_sync */
	CTL_OWN_OPENS,  /* a: 1 or 0; the client's process's opens through the
	                   mount for writing are its own, and hold grants its
	                   state file shows (clients.h) */
	CTL_DIR_GRANT,  /* s: a directory's path; reply: struct ctl_dir_grant,
	                   then its entries (struct ctl_dentry, each followed by
	                   its name and padded to 8 bytes) */
	CTL_SET_ASIDE,  /* a: n; data: n grant indexes of made files the client
	                   is done with; reply: struct ctl_aside[ret] */
	CTL_OPEN_INO,   /* a: inode, flags: a file the client made in its log;
	                   ret: descriptor */
	CTL_TUNE,       /* a: high and low watermark, promotion, batch_ms
	                   (struct cairn_tuning); root only */
	CTL_TIER,       /* a: CTL_TIER_*_CMD, size or bytes to move, unit,
	                   force; s: tier name, part path ("" but to add);
	                   reply: struct ctl_tier_reply; root only, but
	                   CTL_TIER_DRAINING_CMD */
	CTL_OP_END
};

/* The tier commands (cairn_tier_add, _evacuate, _keep, _remove, _grow,
 * _draining). */
enum {
	CTL_TIER_ADD_CMD = 1,
	CTL_TIER_EVACUATE_CMD,
	CTL_TIER_KEEP_CMD,
	CTL_TIER_REMOVE_CMD,
	CTL_TIER_GROW_CMD,
	CTL_TIER_DRAINING_CMD /* the mask in `left` */
};

/* Whatever the command's outcome, with the sentence that says why it
 * failed (cairn_last_error in the daemon), which an errno alone would
 * lose: "its 100 MiB do not fit on the other tiers". */
struct ctl_tier_reply {
	int32_t err; /* 0 or an errno */
	uint32_t pad;
	uint64_t left; /* evacuation: bytes still on the tier; draining: the mask */
	char msg[496];
};

/* A private log (src/libfs/clients.h): the client writes file data it
 * holds a grant for into a log of its own, with no message.  CTL_OPEN with
 * CTL_OPEN_GRANT asks for a grant of the file opened. */
#define CTL_OPEN_GRANT 1

struct ctl_clog {
	uint8_t log_id[16]; /* the UUID in the log's superblock */
	int32_t media_kind; /* enum media_kind of both files */
	uint32_t pad;
	uint64_t credit; /* blocks the client's records may take */
};

struct ctl_grant {
	uint64_t epoch; /* what each record carries, and live must equal */
	uint64_t ino;   /* the inode each record names */
	uint32_t index; /* of the grant in the state file */
	uint32_t pad;
};

/* Names in a client's log (src/libfs/clients.h, "names"): the grant of
 * a directory, and the names it holds when given. */
struct ctl_dir_grant {
	uint64_t epoch;
	uint64_t ino;
	uint32_t index;
	uint32_t count; /* entries after this */
};

struct ctl_dentry {
	uint64_t ino;
	uint8_t type; /* DT_* */
	uint8_t namelen;
	uint8_t pad[6];
};
#define CTL_DENTRY_SIZE(namelen) ((sizeof(struct ctl_dentry) + (namelen) + 7) & ~(size_t)7)

/* An inode number set aside for a create in the client's log, with the
 * grant the file will be written under. */
struct ctl_aside {
	uint64_t ino;
	uint64_t epoch;
	uint32_t index;
	uint32_t pad;
};

struct ctl_clog_sync {
	uint64_t credit;             /* blocks the client may now spend */
	uint64_t granted;            /* the credit word this credit counts */
	uint64_t head_off, head_seq; /* the log is ingested up to here */
	int64_t ingested;            /* the record asked about was applied */
};

struct ctl_req {
	uint32_t magic;
	uint16_t op;   /* enum ctl_op */
	uint16_t nstr; /* strings at the start of the payload */
	uint32_t len;  /* payload bytes, at most CTL_MAX_PAYLOAD */
	uint32_t pad;
	int64_t a[4]; /* integer arguments */
};

struct ctl_rep {
	int32_t err;  /* 0, or a positive errno */
	uint32_t len; /* payload bytes */
	int64_t ret;  /* the call's result when err is 0 */
};

/* The volume's scrub, run by a thread of the daemon (src/server/scrub_job.c):
 * started, cancelled and watched by CTL_SCRUB requests. */
enum { CTL_SCRUB_STATUS_CMD, CTL_SCRUB_START_CMD, CTL_SCRUB_CANCEL_CMD };
enum { CTL_SCRUB_IDLE, CTL_SCRUB_RUNNING, CTL_SCRUB_DONE, CTL_SCRUB_FAILED };
struct ctl_scrub_status {
	int32_t state; /* CTL_SCRUB_* */
	int32_t error; /* FAILED: the errno (ECANCELED: cancelled) */
	struct cairn_scrub s;
};

/* Copies a scrub's progress while another thread updates src or reads
 * dst: counters one by one, the list of damage up to the count published. */
void ctl_scrub_copy(struct cairn_scrub *dst, const struct cairn_scrub *src);

/* One directory entry of a CTL_READDIR reply. */
struct ctl_dirent {
	uint64_t ino;
	uint64_t next; /* the cookie that resumes after this entry */
	uint8_t type;
	uint8_t namelen;
	char name[256];
};
#define CTL_DIR_BATCH 64

struct iovec;
/* Sends the iovecs whole (their array is consumed); 0, or -1 with errno. */
int ctl_send_all(int fd, struct iovec *iov, int cnt);
/* ctl_send_all, with descriptors passed along (SCM_RIGHTS). */
int ctl_send_fds(int fd, struct iovec *iov, int cnt, const int *fds, int nfds);
/* Reads exactly len bytes, and the descriptors that came with them (at
 * most max; *nfds says how many, each close-on-exec). */
int ctl_recv_fds(int fd, void *buf, size_t len, int *fds, int max, int *nfds);
/* Reads exactly len bytes; 0, or -1 when the peer is gone or failed. */
int ctl_recv_all(int fd, void *buf, size_t len);

/* A message's header, whole (hlen bytes), and as much of its body as came
 * with it, up to cap bytes at body (*have): one system call when the peer
 * sent the message at once.  The caller reads the rest of the body; a
 * peer that sent more than one message without waiting shows as *have
 * beyond the body's length.  0, or -1 when the peer is gone or failed. */
int ctl_recv_head(int fd, void *head, size_t hlen, void *body, size_t cap, size_t *have);

/* How long each end polls for the other's next message before it sleeps
 * in recv: a wake-up on another processor costs tens of microseconds on a
 * virtual machine whose idle processors halt, more than a whole call on
 * byte-addressable media.  The daemon says in its hello reply (ret) how
 * long the client should poll: 0 where calls wait for a device. */
#define CTL_SPIN_NS 30000

/* Polls fd until a byte is there to read or spin_ns passed; yields the
 * processor between polls so that the peer, if it shares it, runs. */
static inline void ctl_spin_readable(int fd, uint64_t spin_ns)
{
	if (!spin_ns)
		return;
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	uint64_t start = (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
	char b;
	for (;;) {
		ssize_t n = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
		if (n >= 0 || (errno != EAGAIN && errno != EINTR))
			return;
		clock_gettime(CLOCK_MONOTONIC, &t);
		if ((uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec - start > spin_ns)
			return;
		sched_yield();
	}
}

#endif
