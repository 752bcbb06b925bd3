/*
 * clients.h - private client logs: a client process writes file data into
 * a log of its own, with no message to the daemon, and the daemon ingests
 * those records into the volume's log (docs/ARCHITECTURE.md, "Client
 * logs"; the files' layout is log/clog_format.h).
 *
 * Owns: the slots of client logs, their state files (grants, progress),
 * ingestion, and their recovery at mount.
 * May call: libfs internals, the log, the media layer.
 * Called by: src/server (sessions), src/fuse (its requests), and the
 * engine's own mount, apply and checkpoint.
 *
 * The rules that make it safe:
 *   - A client writes only its own log; the state file is the daemon's.
 *   - A record applies only under a grant (inode, epoch) the daemon wrote
 *     durably into the state file before the client could use it.
 *   - Ingest before serve: every request of every client and of the FUSE
 *     mount is served after the records that were durable when it started
 *     are applied, so a read that starts after a write returned sees it.
 *   - Each record is applied once: its copy in the volume's log (OP_CWRITE,
 *     OP_CTRUNCATE) records its sequence number, checkpoints persist that
 *     progress in the state file before the volume's log is reclaimed,
 *     and recovery applies only the records past it.
 */
#ifndef CAIRN_LIBFS_CLIENTS_H
#define CAIRN_LIBFS_CLIENTS_H

#include <stddef.h>
#include <stdint.h>

#include "cairn.h"

struct clog;

/* What a client gets to write its log: the two descriptors (the log read
 * and write, the state file read-only; the caller sends and closes them),
 * the log's id, the medium kind, and its first credit in blocks. */
struct clog_start {
	int log_fd, state_fd;
	uint8_t log_id[16];
	int media_kind;
	uint64_t credit;
};

/* A new log for the client on socket sock (shut down if the client
 * forges a record), whose user and group (the kernel's word) own the
 * files it creates in its log.  -EBUSY when every slot is taken, -EROFS,
 * or -errno. */
int clog_start(cairn_fs *fs, int sock, uint32_t uid, uint32_t gid, struct clog **out,
               struct clog_start *st);

/* The client is gone: everything valid in its log is ingested, its credit
 * returned, its files removed.  If a record was forged, *why (len bytes)
 * says so, else it is left empty. */
void clog_end(cairn_fs *fs, struct clog *c, char *why, size_t len);

/* Grants the client local writes of regular file ino, which it has open
 * for writing; a second grant of one inode shares the first.  *index and
 * *epoch locate it in the state file.  Another client's grant of ino is
 * revoked first: one client at a time holds an inode.  -EBUSY when the
 * FUSE mount has the inode open or the client holds CLOG_GRANTS inodes. */
int clog_grant(cairn_fs *fs, struct clog *c, uint64_t ino, uint32_t *index, uint64_t *epoch);
/* One use of grant index less (the client closed a descriptor): its
 * records are ingested first.  The last one removes it from the state
 * file. */
void clog_ungrant(cairn_fs *fs, struct clog *c, uint32_t index);

/* The client's request to catch up: everything is ingested, the credit is
 * topped up towards `want` blocks (if the volume has room), *granted is
 * the credit word that credit counts, and *head_off, *head_seq say where
 * its log now starts.  *ingested says whether its
 * record seq was applied (a record written as its grant was revoked may
 * have been skipped: the client then writes through the daemon). */
int clog_sync(cairn_fs *fs, struct clog *c, uint64_t seq, uint64_t want, uint64_t *credit,
              uint64_t *granted, uint64_t *head_off, uint64_t *head_seq, int *ingested);

/* Ingest before serve: applies every client's new records.  Cheap when
 * there are none (one header looked at per client log). */
int clients_ingest(cairn_fs *fs);
/* The same, then made durable, and each client told where its log now
 * starts (the head word of its state file), so that it can reuse the
 * space without asking: what a thread of the daemon does while clients
 * have logs.  1 when there were records, CLIENTS_STREAMING when there
 * were enough to fill a batch (16 writes or 256 KiB) at least, 0 when
 * none, or -errno. */
#define CLIENTS_STREAMING 2
int clients_catch_up(cairn_fs *fs);
/* Makes the log file of the next client ahead, when a client took the
 * last: a new file costs the daemon 1-10 ms (allocating and mapping 4 MiB),
 * which an attach then no longer waits for.  Called by the catch-up
 * thread, outside every lock. */
void clients_make_spare(cairn_fs *fs);

/* The FUSE mount opens ino (delta 1) or releases it (-1).  An open
 * revokes every client's grant of ino first (and ingests their records),
 * because the kernel would serve the mount's reads from pages it keeps. */
void clients_front_open(cairn_fs *fs, uint64_t ino, int delta);
/* Opens through the mount by a client's own process (a program run with
 * the preload shim, which opens its files through the kernel so that its
 * descriptors are real ones).  A client that asked (clog_own_opens) owns
 * the mount's opens for writing by its process: such an open does not bar
 * the client's own grant of the inode, only everyone else's.  The pages
 * the kernel keeps of the inode are then the client's to drop after each
 * local write (the shim does).  tid is the thread FUSE names.  If
 * grantable (a regular file its writes need not clear set-ID bits of),
 * the owner's opens of ino hold a grant of it until the last is released,
 * which the client finds in its state file (no message); *granted says a
 * new one was given, so the kernel must drop what it keeps of the inode.
 * Returns the owner to pass back at the release (0: an ordinary open). */
uint64_t clients_front_open_by(cairn_fs *fs, uint64_t ino, int write, int tid, int grantable,
                               int *granted);
void clients_front_close_by(cairn_fs *fs, uint64_t ino, uint64_t owner);
/* Client c owns the opens of process pid from now on (0: no longer). */
void clog_own_opens(cairn_fs *fs, struct clog *c, int pid);
/* Ends every client's local writes of ino (their records applied first):
 * before a change that a local write would not honour, such as set-ID
 * bits a write must clear. */
void clients_revoke(cairn_fs *fs, uint64_t ino);
/* The FUSE mount is about to serve a request that may leave the kernel
 * holding pages of ino (a read, or a write through the kernel): counted
 * in every live grant of ino, before the request's ingestion, so that a
 * client's local write can tell whether it must drop the kernel's pages
 * (struct clog_grant, kernel_reads). */
void clients_kernel_reads(cairn_fs *fs, uint64_t ino);
/* Whether some client may write ino locally: the FUSE mount then caches
 * no attributes of it. */
int clients_granted(cairn_fs *fs, uint64_t ino);
/* A count that moves on each time a grant is taken away or a client's log
 * goes, once the records it held are applied: attributes read while it
 * moved may predate them, so the FUSE mount gives those a timeout of 0
 * (it reads the count when a request arrives and again when it replies). */
uint64_t clients_changes(cairn_fs *fs);
/* Client logs in use. */
uint64_t clients_active(cairn_fs *fs);

/* ---- names in a client's log (client_names.c) ---- */

/* Directories one client may hold grants of at once. */
#define CLOG_DIR_GRANTS 8

/* Grants the client the changes of names in directory dir (which it may
 * write and search, and which has no sticky bit: the caller checked, in a
 * walk it began when clients_names_gen said gen): it creates and unlinks
 * there in its log until the grant is revoked.  -EAGAIN while the FUSE
 * mount's kernel may keep entries of dir (see clients_entry_timeout), or
 * when a change of names began or was made since gen; -EBUSY when the
 * client holds too many. */
int clog_grant_dir(cairn_fs *fs, struct clog *c, uint64_t dir, uint64_t gen, uint32_t *index,
                   uint64_t *epoch);
/* How many changes of names were made so far: read before a walk that
 * leads to clog_grant_dir. */
uint64_t clients_names_gen(cairn_fs *fs);
/* Takes back the grant of a directory (its names did not fit a reply). */
void clog_drop_dir(cairn_fs *fs, struct clog *c, uint32_t index);
/* An inode number set aside for a create in the client's log, with the
 * grant of local writes the file will have. */
struct clog_aside {
	uint64_t ino, epoch;
	uint32_t index;
};
/* Releases the grants done[] of files the client made (it has no
 * descriptor of them left), sets inode numbers aside until the client
 * holds a few (near hint), and fills out[] with every one it holds:
 * their count, or -errno. */
int clog_set_aside(cairn_fs *fs, struct clog *c, const uint32_t *done, int ndone, uint64_t hint,
                   struct clog_aside *out, int max);
/* Whether ino is a file the client made in its log and still holds
 * (it may then open it by number). */
int clog_made(cairn_fs *fs, struct clog *c, uint64_t ino);
/* The timeout the FUSE mount may give an entry of directory dir (want):
 * 0 while a client holds a grant of dir; otherwise dir is noted as one
 * whose entries the kernel keeps, which no client is granted until they
 * expire. */
double clients_entry_timeout(cairn_fs *fs, uint64_t dir, double want);
/* Around every change of a name made other than in a client's log:
 * begin revokes every grant of dir (all: of every directory: a rename, an
 * rmdir, an unlink of a symbolic link, a change of a directory's mode or
 * owners, each of which may change what a path leads to or who may write
 * there), the holders' records applied first, and no grant is given until
 * end. */
void clients_change_begin(cairn_fs *fs, uint64_t dir, int all);
void clients_change_end(cairn_fs *fs);
/* The calls this thread makes until the next clients_acting are client
 * c's, which keeps its own copy of directory dir's names up to date: a
 * change of a name there by c does not revoke c's grant of dir (any
 * other's, yes).  (NULL, 0): no client's. */
void clients_acting(struct clog *c, uint64_t dir);
/* Live grants of directories (0: the calls above have nothing to do). */
int clients_dir_grants(cairn_fs *fs);

/* ---- the engine's side (mount.c, apply.c, digest.c) ---- */
struct cairn_fs;
/* Before the volume's log is replayed: reads the state files left by the
 * last daemon. */
int clients_load(struct cairn_fs *fs, char *err, size_t errlen);
/* Applying an OP_CWRITE: the client log of slot with log_id is ingested
 * up to (seq + 1, next_off). */
void clients_note_ingested(struct cairn_fs *fs, uint32_t slot, const uint8_t log_id[16],
                           uint64_t seq, uint64_t next_off);
/* After the replay: the records left in the client logs, past their
 * progress and under their grants, are applied (as OP_CWRITE records).
 * Called with the lock held, or before anyone else can take it. */
int clients_recover(struct cairn_fs *fs, char *err, size_t errlen);
/* After recovery: the recovered logs are closed; with remove (after the
 * mount's first checkpoint made their records the volume's) their files
 * go too. */
void clients_forget_recovered(struct cairn_fs *fs, int remove);
/* In a checkpoint, with the lock held and the volume's log durable: each
 * client's progress, into its state file, before the checkpoint lets the
 * volume's log be reclaimed. */
int clients_persist_progress(struct cairn_fs *fs);
void clients_destroy(struct cairn_fs *fs);

/* Crash-state testing: with a recorder (fs->opts.recorder), the files of
 * slot N are recorded from their making to their removal, the log as
 * part clog_recorder_part(N) and the state file as the part after it.
 * The rule puts them after every part a volume may have
 * (VOLUME_MAX_PARTS), whatever its tiers; slots whose parts do not fit in
 * the recorder (RECORDER_MAX_PARTS) are not recorded, nor is a slot made
 * a second time in one recording. */
int clog_recorder_part(int slot);

#endif
