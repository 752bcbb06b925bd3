/*
 * clients_internal.h - what the two halves of the daemon's side of client
 * logs share: clients.c (slots, grants of files, ingestion, recovery) and
 * client_names.c (grants of directories, inode numbers set aside, the
 * creates and unlinks a client makes in its log).
 */
#ifndef CAIRN_LIBFS_CLIENTS_INTERNAL_H
#define CAIRN_LIBFS_CLIENTS_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "libfs/clients.h"
#include "log/clog_format.h"
#include "log/log.h"

struct cairn_fs;
struct log_rec_hdr;

/* What a grant is for, which only the daemon's memory knows: recovery
 * judges each record by its own type. */
enum grant_kind {
	GRANT_FILE,   /* a file the client opened for writing */
	GRANT_SET_BY, /* an inode number set aside for a create: not made yet */
	GRANT_MADE,   /* a file the client created in its log (pinned) */
	GRANT_DIR,    /* a directory whose names the client changes in its log */
};

/* Blocks of credit a client starts with and is topped up to: 64 MiB of
 * new data before it asks again. */
#define CLOG_CREDIT 16384u
/* The least credit asked for when the volume has not room for that much. */
#define CLOG_MIN_CREDIT 16u
/* Records written as their grant was revoked, remembered until their
 * writers ask (at most one per thread of the client in flight). */
#define CLOG_SKIPPED 256

struct clog {
	int slot;
	uint8_t log_id[16];
	struct media *lm, *sm; /* the log, the state file */
	struct log *log;
	uint64_t next_off, next_seq; /* the first record not yet ingested */
	uint64_t credit;             /* blocks reserved for the client's records */
	uint64_t granted;            /* credit given so far: the credit word */
	int word_failed;             /* a store of the word failed: no top-ups */
	uint64_t next_epoch;         /* the count of the next grant's epoch (clog_format.h) */
	uint64_t progress_gen;
	uint64_t published;                    /* the head word last written */
	struct clog_grant grants[CLOG_GRANTS]; /* as the state file holds them */
	uint32_t refs[CLOG_GRANTS];            /* descriptors using each grant */
	uint8_t kind[CLOG_GRANTS];             /* GRANT_* (not in the state file) */
	uint32_t uid, gid;                     /* who the client is */
	int has_creds;                         /* the state file says (recovery) */
	int sock;                              /* the session's, shut down on forgery */
	int recovered;                         /* left by a dead daemon */
	char forged[256];                      /* why the log was refused, or "" */
	uint64_t skipped[CLOG_SKIPPED];        /* the last records skipped (revoked) */
	unsigned nskipped;
	uint8_t *buf;
	size_t bufsz;
	/* Opens through the mount that are this client's own (a preloaded
	 * program's: clients_front_open_by): its owner token, never reused,
	 * and the process whose opens they are (0: none). */
	uint64_t owner;
	int owner_pid;
};

/* The FUSE mount's opens of one inode by one owner (0: a process that is
 * no client, or a client that did not ask to own its opens). */
struct front_open {
	uint64_t ino;
	uint64_t owner;
	int64_t count;
	uint32_t grant; /* the owner's grant these opens hold: slot + 1, or 0 */
};

/* The directories whose entries the FUSE mount's kernel may keep until
 * `until` (ns, CLOCK_MONOTONIC): none of them may be granted before. */
#define CACHED_DIRS 1024
struct cached_dir {
	uint64_t dir;
	int64_t until;
};

struct ingest_batch;

struct clients {
	pthread_mutex_t lock;
	struct clog *slot[CLOG_SLOTS];
	atomic_int active;        /* slots in use */
	_Atomic uint64_t changes; /* see clients_changes */
	struct front_open *fopen;
	size_t nfopen, capfopen;
	uint64_t next_owner;                         /* the owner token the next client gets */
	atomic_int owning;                           /* clients that own their opens */
	atomic_int dir_grants;                       /* live grants of directories: */
	uint64_t gdir[CLOG_SLOTS * CLOG_DIR_GRANTS]; /* their inodes */
	int changing;       /* changes of names under way (clients_change_begin) */
	uint64_t names_gen; /* changes of names made */
	struct cached_dir cached[CACHED_DIRS]; /* see clients_entry_timeout */
	int64_t all_cached_until;              /* the table overflowed: every one */
	struct ingest_batch *batch;            /* ingest_all's, under lock */
	/* The log file of the next client, made ahead (clients_make_spare):
	 * its slot (-1: none), whether the file is whole, and whether one is
	 * wanted (a client took the last; read without the lock by the
	 * catch-up thread, which looks every 100 us while clients write). */
	int spare_slot;
	int spare_ready;
	atomic_int spare_wanted;
};

struct clients *clients_table(struct cairn_fs *fs);
/* A grant of directory dir was given (delta 1) or ended (-1), with
 * cl->lock held. */
void clients_dir_count(struct clients *cl, uint64_t dir, int delta);
/* The grant a record names (inode and epoch): its index, or -1. */
int clog_find_grant(const struct clog *c, uint64_t ino, uint64_t epoch);
/* A free grant slot of c, or -1. */
int clog_free_grant(const struct clog *c);
/* Writes grant i (inode, epoch, live: each stored and fenced, in the
 * order recovery relies on) with the client's next epoch. */
int clog_grant_write(struct clog *c, uint32_t i, uint64_t ino);
/* Ends grant i (see revoke_grant in clients.c), and with forget frees its
 * slot.  With cl->lock held, not fs->lock. */
int clog_revoke(struct cairn_fs *fs, struct clog *c, uint32_t i, int forget);
/* Revokes every live grant of ino but those of client keep (NULL: all),
 * with cl->lock held. */
void clog_revoke_others(struct cairn_fs *fs, struct clients *cl, struct clog *keep, uint64_t ino);
/* The same for n grants at once (idx[]), each step fenced once. */
int clog_revoke_many(struct cairn_fs *fs, struct clog *c, const uint32_t *idx, int n);
/* clog_grant_write of inos[k] into grant idx[k], for n grants at once. */
int clog_grant_many(struct clog *c, const uint32_t *idx, const uint64_t *inos, int n);
/* Refuses c's log from record seq on, saying why. */
void clog_forged(struct clog *c, const char *why, uint64_t seq);
/* The OP_C* header of a copy of c's record h, whose next record is at next. */
struct op_cwrite;
void clog_copy_of(const struct clog *c, const struct log_rec_hdr *h, uint64_t next,
                  struct op_cwrite *cw);
/* Ingests c and makes it durable (fs->lock not held). */
int clog_ingest_durably(struct cairn_fs *fs, struct clog *c);

/* client_names.c: a record of a name (CLOG_REC_CREATE, CLOG_REC_UNLINK),
 * checked and applied with fs->lock held.  NULL when applied (or *rc an
 * error of the volume, -EAGAIN to look again), else why it is refused. */
const char *clog_apply_name(struct cairn_fs *fs, struct clog *c, const struct log_rec_hdr *h,
                            const void *data, uint64_t next, int *attempt, int *rc);
/* A session ends: its made files are unpinned (fs->lock not held). */
void clog_names_end(struct cairn_fs *fs, struct clog *c);
/* A new or recovered slot's credentials, from the state file. */
int clog_write_creds(struct clog *c);
void clog_read_creds(struct clog *c);

#endif
