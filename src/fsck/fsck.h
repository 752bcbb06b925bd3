/*
 * fsck.h - checks and repairs an unmounted cairn volume (`cairn fsck`).
 *
 * Owns: the consistency rules between the structures of a volume (what
 * each structure must say about the others), the report of what is wrong,
 * and the repairs fsck knows to be safe.
 * May call: volume, log, fs (shared, cache, alloc, btree, dir), the checksum,
 * and the public API (cairn_mount/cairn_unmount) to recover and digest a
 * volume before repairing it.
 *
 * fsck_run checks, in order: the manifest and parts; the log superblock
 * and epoch slots; the fast tier's superblock and checkpoint slots (a
 * committed journal newer than the current slot is reported as pending
 * recovery, which is normal after a crash) and each capacity tier's
 * header; the log from the checkpoint's head (undigested records are
 * normal); every inode and its trees; the links, the orphan list and
 * reachability from the root; each tier's block bitmap against the blocks
 * the trees claim on it.  Nothing is written unless repair is asked for,
 * and then only through the shared area's cache and its journalled commit
 * (shared_commit), so a crash during repair is safe.
 *
 * The volume must not be mounted while fsck runs (there is no lock yet).
 */
#ifndef CAIRN_FSCK_H
#define CAIRN_FSCK_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Results (also the exit codes of `cairn fsck`). */
enum fsck_result {
	FSCK_CLEAN = 0,    /* no problem found */
	FSCK_PROBLEMS = 1, /* problems found and (some) left */
	FSCK_USAGE = 2,    /* bad arguments (the command's, never fsck_run's) */
	FSCK_REPAIRED = 3, /* was damaged, repaired, and a final check is clean */
	FSCK_REFUSED = 4,  /* cannot check: the volume or its shared area is refused */
};

struct fsck_opts {
	int repair;   /* fix what is safe (see docs/ARCHITECTURE.md, "fsck") */
	int progress; /* draw a progress bar on stderr during long phases */
};

enum fsck_severity {
	FSCK_ERROR = 0,   /* damage: counts as a problem */
	FSCK_WARNING = 1, /* odd but harmless; does not make the volume unclean */
};

/* One line of the report.  msg has no "fsck: " prefix, e.g.
 * "inode 17: nlink 2 but 1 directory entry names it". */
struct fsck_item {
	int code;         /* enum fsck_code (fsck_code_name gives a stable name) */
	int severity;     /* enum fsck_severity */
	int fixable;      /* repair knows a safe fix for it */
	uint64_t a, b, c; /* what the fix needs; the meaning depends on the code */
	char msg[512];
};

struct fsck_list {
	struct fsck_item *v;
	size_t n, cap;
};

/* One tier as the last check saw it. */
#define FSCK_MAX_TIERS 7 /* the fast tier and up to 6 capacity tiers */
struct fsck_tier_report {
	char name[16];          /* "fast", or the capacity tier's */
	uint64_t data_blocks;   /* blocks that may hold data (and, fast: tree nodes) */
	uint64_t blocks_in_use; /* of those, blocks the trees claim */
};

struct fsck_report {
	int result;         /* enum fsck_result, as returned by fsck_run */
	char refused[1200]; /* why the volume could not be checked (FSCK_REFUSED) */
	/* The volume as the last check saw it (the final one after a repair). */
	uint64_t inodes, directories, files, symlinks, others, orphans;
	uint64_t blocks_in_use; /* data and tree blocks the trees claim, all tiers */
	unsigned tier_count;    /* tiers[0] is the fast tier */
	struct fsck_tier_report tiers[FSCK_MAX_TIERS];
	uint64_t undigested_records;
	uint64_t log_head_off, log_end_off; /* the valid log is [head, end) */
	int recovery_pending;               /* a committed journal waits for the next mount */
	/* The first check: problems (and warnings) as found. */
	struct fsck_list found;
	uint64_t errors, warnings;
	/* With repair: what was changed, and what a final check still finds. */
	struct fsck_list repairs;
	struct fsck_list remaining;
	uint64_t errors_left;
	/* Facts that are not damage (log state, pending recovery, mounts). */
	struct fsck_list notes;
};

/* Checks (and with o->repair, repairs) the volume in directory `volume`.
 * Fills r (release with fsck_report_free) and returns r->result. */
int fsck_run(const char *volume, const struct fsck_opts *o, struct fsck_report *r);
void fsck_report_free(struct fsck_report *r);

/* "nlink", "block-leak", ...: a stable name for tests and JSON. */
const char *fsck_code_name(int code);

/* The report as `cairn fsck` prints it: one line per problem, then the
 * summary line; or one JSON object. */
void fsck_print_text(FILE *f, const char *volume, const struct fsck_report *r);
void fsck_print_json(FILE *f, const char *volume, const struct fsck_report *r);

#endif
