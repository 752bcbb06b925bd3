/*
 * oprec.h - the operation records libfs appends to the log.
 *
 * Owns: the meaning of record types >= 16, their inline arguments and
 * payloads (documented byte by byte in docs/FORMAT.md).
 *
 * Every record carries everything its replay needs (inode numbers chosen,
 * timestamps, the victim of an unlink), so applying it is deterministic:
 * the same function applies it when the call is made and again when the
 * log is replayed after a crash.
 */
#ifndef CAIRN_LIBFS_OPREC_H
#define CAIRN_LIBFS_OPREC_H

#include <stdint.h>

enum op_type {
	OP_MKNOD = 16,       /* create a file, directory, symlink, fifo, socket, device */
	OP_LINK = 17,        /* add a name for an existing inode */
	OP_UNLINK = 18,      /* remove a name (file or empty directory) */
	OP_RENAME = 19,      /* move a name, replacing the target atomically */
	OP_WRITE = 20,       /* args: ino, offset, time; payload: the bytes */
	OP_TRUNCATE = 21,    /* args: ino, size, time */
	OP_SETATTR = 22,     /* mode, owner, times */
	OP_RELEASE = 23,     /* args: ino: last close of an unlinked inode */
	OP_SETXATTR = 24,    /* set an extended attribute */
	OP_REMOVEXATTR = 25, /* remove an extended attribute */
	OP_PUNCH = 26,       /* args: ino, offset, length; payload: i64 time */
	OP_FALLOC = 27,      /* args: ino, offset, length; payload: struct op_falloc */
	OP_CWRITE = 28,      /* OP_WRITE's args; payload: struct op_cwrite, the bytes */
	OP_CTRUNCATE = 29,   /* OP_TRUNCATE's args; payload: struct op_cwrite */
	OP_CMKNOD = 30,      /* payload: struct op_cwrite, then OP_MKNOD's */
	OP_CUNLINK = 31,     /* payload: struct op_cwrite, then OP_UNLINK's */
};

/* OP_CWRITE, OP_CTRUNCATE, OP_CMKNOD, OP_CUNLINK: a write, a truncate,
 * a create or an unlink a client made in its own log (log/clog_format.h), copied into the volume's
 * log by the daemon. Applying it also records that the client's log is ingested up to (seq + 1,
 * next_off), so that a recovery applies each client record exactly once. */
struct op_cwrite {
	uint8_t log_id[16]; /* the client log's id */
	uint64_t seq;       /* the client record's sequence number */
	uint64_t next_off;  /* where the client log's next record starts */
	uint32_t slot;      /* the client log's slot */
	uint32_t pad;
	uint64_t reserved[3];
};
_Static_assert(sizeof(struct op_cwrite) == 64, "the bytes after it stay line-aligned");

/* OP_MKNOD payload; name and (for symlinks) target follow. */
struct op_mknod {
	uint64_t parent;
	uint64_t ino;
	int64_t time_ns;
	uint64_t rdev;
	uint32_t mode; /* S_IFMT type and permissions */
	uint32_t uid, gid;
	uint16_t namelen;
	uint16_t targetlen; /* symlinks */
};

/* OP_LINK payload; name follows. */
struct op_link {
	uint64_t ino;
	uint64_t parent;
	int64_t time_ns;
	uint16_t namelen;
	uint16_t pad[3];
};

/* The inode losing its last name was open when the call was made: it
 * goes on the orphan list instead of being freed (OP_RELEASE frees it).
 * Recorded, not recomputed, so that replay - where nothing is open - does
 * exactly what the call did. */
#define OPF_ORPHAN 1u

/* OP_UNLINK payload; name follows. */
struct op_unlink {
	uint64_t parent;
	uint64_t ino; /* the inode the name pointed to */
	int64_t time_ns;
	uint16_t namelen;
	uint16_t flags; /* OPF_ORPHAN */
	uint16_t pad[2];
};

/* OP_RENAME payload; old name then new name follow. */
struct op_rename {
	uint64_t oldparent, newparent;
	uint64_t ino;    /* the inode moved */
	uint64_t victim; /* the inode the new name pointed to, 0 if none */
	int64_t time_ns;
	uint16_t oldlen, newlen;
	uint32_t flags; /* CAIRN_RENAME_NOREPLACE; OPF_ORPHAN << 8 for the victim */
};

#define OP_RENAME_VICTIM_ORPHAN (OPF_ORPHAN << 8)

/* OP_SETXATTR / OP_REMOVEXATTR payload; name then value follow. */
struct op_xattr {
	uint64_t ino;
	int64_t time_ns;
	uint16_t namelen;
	uint16_t valuelen; /* 0 for OP_REMOVEXATTR */
	uint32_t flags;    /* XATTR_SET_CREATE / XATTR_SET_REPLACE (fs/xattr.h) */
};

/* OP_FALLOC payload.  The record sets blocks aside for every hole of the
 * blocks [offset / 4096, (offset + length + 4095) / 4096): they are
 * allocated when it is applied, as unwritten extents. */
struct op_falloc {
	int64_t time_ns; /* mtime and ctime */
	uint32_t flags;  /* OP_FALLOC_KEEP_SIZE */
	uint32_t pad;
};

#define OP_FALLOC_KEEP_SIZE 1u /* the size stays (else it grows to offset + length) */

#define SETATTR_MODE 1u
#define SETATTR_UID 2u
#define SETATTR_GID 4u
#define SETATTR_ATIME 8u
#define SETATTR_MTIME 16u
#define SETATTR_CTIME 32u      /* nothing but ctime changes */
#define SETATTR_KEEP_CTIME 64u /* an atime update by a read: ctime_ns is the old ctime */

/* OP_SETATTR payload. */
struct op_setattr {
	uint64_t ino;
	uint32_t valid; /* SETATTR_* */
	uint32_t mode;  /* permission bits only */
	uint32_t uid, gid;
	int64_t atime_ns, mtime_ns, ctime_ns;
};

#endif
