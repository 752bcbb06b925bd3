/*
 * clog_format.h - on-media layout of a client's private log and of the
 * state file beside it.  docs/FORMAT.md ("Client logs") describes them in
 * prose.
 *
 * A client process attached to a daemon may write file data without a
 * message to the daemon: it appends a record to a log of its own, which
 * the daemon later copies into the volume's log (ingests).  Both files sit
 * beside the volume's log part, on its medium:
 *
 *   LOGPART.clientN        the client's log: a log part (log_format.h) whose
 *                          superblock UUID is the log's own random id, so
 *                          that records of an earlier client in the slot
 *                          never pass as this one's
 *   LOGPART.clientN.state  written by the daemon only, read-only to the
 *                          client:
 *     offset 0      struct clog_header (written once when the slot is made)
 *     offset 4096   struct clog_progress copies A and B (at 4096, 4160):
 *                   the valid copy with the higher gen says up to which
 *                   record the daemon's checkpoints hold the client's log
 *     offset 4224   the head word: where the client's log now starts, for
 *                   the client to reuse the space before it (not durable:
 *                   recovery never reads it)
 *     offset 4288   struct clog_creds: the client's user and group, which
 *                   the files it creates in its log belong to
 *     offset 8192   struct clog_grant[CLOG_GRANTS]: the inodes the client
 *                   may write locally, each with the epoch of its grant
 */
#ifndef CAIRN_CLOG_FORMAT_H
#define CAIRN_CLOG_FORMAT_H

#include <stdint.h>

/* The files of slot N, from the log part's path (printf formats taking
 * the path and N). */
#define CLOG_LOG_NAME "%s.client%d"
#define CLOG_STATE_NAME "%s.client%d.state"

#define CLOG_STATE_MAGIC 0x4554415453474c43ull    /* "CLGSTATE" */
#define CLOG_PROGRESS_MAGIC 0x5347525053474c43ull /* "CLGSPRGS" */
#define CLOG_VERSION 2u                           /* 2: grants' epochs are sealed */
#define CLOG_VERSION_UNSEALED 1u                  /* still read: epochs are bare counts */
#define CLOG_SLOTS 64                             /* clients with a log at once */
#define CLOG_LOG_SIZE ((4ull << 20) + 4 * 4096)   /* a 4 MiB ring: records of 1 MiB */
#define CLOG_GRANTS 256                           /* inodes one client may hold */
#define CLOG_PROGRESS_OFF 4096u
#define CLOG_HEAD_OFF 4224u
#define CLOG_GRANTED_OFF 4232u /* the credit word */
#define CLOG_CREDS_OFF 4288u
#define CLOG_GRANTS_OFF 8192u
#define CLOG_STATE_SIZE (CLOG_GRANTS_OFF + CLOG_GRANTS * 32u)

/* The record types of a client log, each under a grant of its inode.
 * CLOG_REC_WRITE: args: inode, file offset (or CLOG_AT_END), epoch of the
 * grant; payload: the bytes.  CLOG_REC_TRUNCATE: args: inode, the new
 * size, epoch; no payload (ftruncate of a granted file). */
#define CLOG_REC_WRITE 40
#define CLOG_REC_TRUNCATE 41
/* Names, each under the grant of a directory (docs/ARCHITECTURE.md,
 * "Names in a client's log").  CLOG_REC_CREATE: args: the directory, the
 * new inode (one the daemon set aside for the client, with a grant of its
 * own), the directory grant's epoch; payload: struct clog_create, then
 * the name.  CLOG_REC_UNLINK: args: the directory, the inode the name
 * names (a file the client holds a grant of), the epoch; payload: the
 * name. */
#define CLOG_REC_CREATE 42
#define CLOG_REC_UNLINK 43
#define CLOG_NAME_MAX 255
/* The largest file size (the engine's MAX_FILE_SIZE): a write past it is
 * sent to the daemon, which answers EFBIG; a record past it is forged. */
#define CLOG_MAX_END (1ull << 52)
/* The offset of an O_APPEND write: the end of the file when the daemon
 * applies the record, which it then records in its OP_CWRITE copy. */
#define CLOG_AT_END UINT64_MAX

struct clog_header {
	uint64_t magic;   /* CLOG_STATE_MAGIC */
	uint32_t version; /* CLOG_VERSION */
	uint32_t slot;    /* N of the file names */
	uint8_t volume_uuid[16];
	uint8_t log_id[16]; /* the UUID in the client log's superblock */
	uint64_t log_size;
	uint64_t checksum; /* XXH3-64 of the bytes before this field */
};

/* Every record of the client log before (seq, off) is in the volume: in
 * the shared area, or in the volume's log as an OP_CWRITE or OP_CTRUNCATE
 * copy. */
struct clog_progress {
	uint64_t magic; /* CLOG_PROGRESS_MAGIC */
	uint64_t gen;   /* the higher valid copy is current */
	uint64_t seq;   /* the first record not yet ingested */
	uint64_t off;   /* and where it starts */
	uint8_t log_id[16];
	uint64_t checksum; /* XXH3-64 of the bytes before this field */
	uint64_t pad;
};

/* A grant.  ino and epoch are what recovery trusts: a record is valid
 * only under a grant with its inode and epoch.  They change only in the
 * order epoch 0, ino, epoch (each stored, flushed and fenced), so that a
 * torn change never pairs one grant's epoch with another's inode.  live
 * is what the client looks at before and after each record: the epoch
 * while the grant holds, 0 from the moment its revocation starts.
 * kernel_reads counts the requests of the FUSE mount that may have left
 * the kernel holding pages of the inode (reads, and writes through the
 * kernel), each counted before the daemon looks at the client's log to
 * serve it: a client whose count did not move since it last dropped the
 * kernel's pages of the file knows the kernel holds none (not durable,
 * never read by recovery). */
struct clog_grant {
	uint64_t ino;   /* 0: free */
	uint64_t epoch; /* 0: revoked; else sealed (below), unique within
	                 * the log's life */
	uint64_t live;  /* epoch, or 0 */
	uint64_t kernel_reads;
};

/* An epoch (version 2) is a count in its low 40 bits, given in order
 * from 1, and a seal of the grant in its high 24: the top 24 bits of
 * XXH3-64 of struct clog_seal.  The epoch word changes in one 8-byte
 * store and the inode changes only while it is 0, so no crash leaves a
 * seal that does not match: one that does not is damage, which would
 * otherwise make recovery skip the grant's records as revoked ones. */
#define CLOG_EPOCH_COUNT_BITS 40
#define CLOG_EPOCH_COUNT(e) ((e) & ((1ull << CLOG_EPOCH_COUNT_BITS) - 1))
#define CLOG_EPOCH_COUNT_MAX ((1ull << CLOG_EPOCH_COUNT_BITS) - 1)
struct clog_seal {
	uint8_t log_id[16];
	uint64_t ino;
	uint64_t count;
};

/* The credit, in blocks, one write of len bytes at off spends: the
 * blocks it spans (at the end of the file: the most it may span).  A
 * truncate spends none: like the engine's, it takes no block. */
static inline uint64_t clog_record_cost(uint64_t off, uint64_t len)
{
	if (off == CLOG_AT_END)
		off = 4095;
	return len ? (off + len + 4095) / 4096 - off / 4096 : 0;
}

/* The payload of CLOG_REC_CREATE, before the name: a regular file's
 * permission bits (no set-group-ID: such a file is made by the daemon). */
struct clog_create {
	uint32_t mode;
	uint32_t pad;
};

#define CLOG_CREDS_MAGIC 0x5344524353474c43ull /* "CLGSCRDS" */
/* Written once, when the slot is made, from what the kernel said of the
 * client's socket (SO_PEERCRED). */
struct clog_creds {
	uint64_t magic; /* CLOG_CREDS_MAGIC */
	uint32_t uid, gid;
	uint8_t log_id[16];
	uint64_t checksum; /* XXH3-64 of the bytes before this field */
	uint64_t pad;
};

/* A create spends one block: the directory may grow by one. */
static inline uint64_t clog_type_cost(uint32_t type, uint64_t off, uint64_t len)
{
	if (type == CLOG_REC_CREATE)
		return 1;
	return type == CLOG_REC_WRITE ? clog_record_cost(off, len) : 0;
}

/* The head word: every record before (seq, off) is durably in the volume
 * (its OP_CWRITE or OP_CTRUNCATE copy, or the shared area), so the client
 * may overwrite it.  One 64-bit store, so that the client never reads
 * half of it: seq << 24 | off / 64. */
#define CLOG_HEAD_WORD(seq, off) ((uint64_t)(seq) << 24 | (uint64_t)(off) / 64)
#define CLOG_HEAD_SEQ(w) ((w) >> 24)
#define CLOG_HEAD_POS(w) (((w)&0xffffffu) * 64)
_Static_assert(CLOG_LOG_SIZE / 64 < (1u << 24), "a ring offset fits the head word");

_Static_assert(sizeof(struct clog_header) <= CLOG_PROGRESS_OFF, "header fits its block");
_Static_assert(sizeof(struct clog_progress) == 64, "progress is one line");
_Static_assert(sizeof(struct clog_grant) == 32, "grant is 32 bytes");
_Static_assert(sizeof(struct clog_creds) == 48, "creds fit their line and the next");
_Static_assert(CLOG_CREDS_OFF + sizeof(struct clog_creds) <= CLOG_GRANTS_OFF, "creds fit");

#endif
