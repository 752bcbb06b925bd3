/*
 * test_crash_states.c - the crash-state checker.
 *
 * Method (see "How we know it is right" in DESIGN.md): a small emulated-pmem
 * volume is made with cairn_mkfs and the initial images of its two parts are
 * handed to a recorder.  The volume is mounted in sync mode with the
 * recorder attached and inline digest, and a deterministic workload runs
 * through the native API.  For every operation i the recorder position is
 * noted before (start[i]) and after (end[i]) the call, and the canonical
 * dump of the tree (tv_dump, with mtime and ctime) taken after it is the
 * oracle state[i + 1] (state[0]: right after mount).  The final unmount is
 * recorded too.
 *
 * Then, for every crash point k (just before fence k completes, and the end
 * of the trace), several images of both parts are rebuilt: every pending
 * line persisted (variant 0), none (variant 1), and pseudo-random subsets,
 * some torn at 8-byte grain; more of them where many lines are uncertain.
 * Each distinct pair of images is written over the part files, mounted
 * without the recorder (this runs recovery), dumped and compared: the dump
 * must equal state[j] for some acked <= j <= started, where acked counts the
 * operations that had returned before the fence and started those that had
 * begun (in batch mode, acked counts the operations before the last
 * cairn_sync or cairn_fsync that had returned).  Every ~20th recovered state
 * is also used: a file is created, written, the volume remounted and the
 * file read back; every recovered volume is checked by fsck after its
 * unmount (leaks and hidden damage do not show in a dump).  Besides
 * all/none/random subsets of the pending lines, every
 * crash point gets "every journal line of the fast part persisted, no other
 * line", with the log's lines all persisted or none.
 *
 * Volumes on the file medium are recorded at the kernel interface (kio
 * below): what pwrite and fdatasync the engine really issued.
 *
 * Client logs (src/libfs/clients.h) are checked too: the engine records
 * each client log and its state file as parts of their own, from their
 * making to their removal, and the checker puts back at each crash point
 * the files that existed then.  Scenarios clog and clogwrap play a client
 * process in this one (see "client logs" below).  A crash image that holds
 * a client log is also checked by fsck before anything mounts it: fsck
 * must not call damaged what recovery will apply.
 *
 * Most scenarios run one thread with inline digest.  Those that do not:
 * wrap (a writer fills the log ring while a checkpoint commits without the
 * lock), groupcommit (a record appended while another thread's sync is in
 * the kernel) and syncrace (the digest thread, or cairn_digest on another
 * thread, checkpoints while a sync-mode writer is stopped between its
 * append and its commit), fillrace (a checkpoint while a writer's record is
 * reserved and its bytes not yet copied) and ahead (ops between the
 * passes of a digest).
 *
 * CAIRN_CRASH_STATES_SCALE=N multiplies the number of pseudo-random variants
 * (default 1) for longer local runs; CAIRN_CRASH_FSCK_EVERY=N checks only
 * every Nth recovered volume with fsck (default 1: all), for quicker ones.
 */
/* The engine's internals first: cmocka (in testvol.h) defines fail(). */
#include "libfs/fs_internal.h"
#include "log/log.h"

#include "testvol.h"

#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include <pthread.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "client/client_internal.h"
#include "fsck/fsck.h"
#include "fs/format.h"
#include "libfs/clients.h"
#include "libfs/icalls.h"
#include "log/clog_format.h"
#include "log/log_format.h"
#include "media/media.h"
#include "media/recorder.h"
#include "volume/volume.h"

#define LOG_SIZE (256 * TV_KiB)
#define FAST_SIZE (4 * TV_MiB)
#define DUMP_FLAGS (TV_DUMP_MTIME | TV_DUMP_CTIME)
#define MIN_TOTAL_STATES 10000
#define USE_EVERY 20  /* check usability of every 20th recovered state */
#define RO_EVERY 4    /* a read-only mount of every 4th state, first */
#define MAX_REPORTS 5 /* failures printed in detail per scenario */
#define USABLE_PATH "/zz-crashkit-usable"

/* ---- the file medium as the kernel sees it --------------------------------
 *
 * For volumes on the file medium the recorder is not attached to the media
 * layer (which would report what the medium's own logic believes); instead
 * this program defines pwrite() and fdatasync() itself, so that every call
 * the engine makes reaches the kernel through here.  A pwrite on a part's
 * descriptor is recorded as a store that write-back may persist at any time
 * (write + flush), an fdatasync as a fence of that part, recorded when the
 * call starts: it makes durable exactly the writes completed before it.  A
 * medium that skips or misplaces its fdatasync therefore loses data in the
 * crash states, whatever its return codes say.  Parts are recognised by
 * device and inode.  The same place injects faults (a pwrite failing with
 * EIO) and pauses a sync to let another thread run.
 */
static struct {
	struct recorder *r; /* recording when set */
	int nparts;
	dev_t dev[VOLUME_MAX_PARTS];
	ino_t ino[VOLUME_MAX_PARTS];
	int fail_part; /* the next pwrite on this part fails with EIO (-1: none) */
	/* A sync of pause_part waits (in the kernel, as it were) until released. */
	int pause_part; /* -1: none */
	int paused, released, returned;
	pthread_mutex_t lock;
	pthread_cond_t cond;
} kio = {.fail_part = -1,
         .pause_part = -1,
         .lock = PTHREAD_MUTEX_INITIALIZER,
         .cond = PTHREAD_COND_INITIALIZER};

static int kio_part(int fd)
{
	struct stat st;
	if (fstat(fd, &st) != 0)
		return -1;
	for (int p = 0; p < kio.nparts; p++)
		if (st.st_dev == kio.dev[p] && st.st_ino == kio.ino[p])
			return p;
	return -1;
}

static bool kio_take_failure(int part)
{
	pthread_mutex_lock(&kio.lock);
	bool f = kio.fail_part == part;
	if (f)
		kio.fail_part = -1;
	pthread_mutex_unlock(&kio.lock);
	return f;
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
	struct recorder *r = __atomic_load_n(&kio.r, __ATOMIC_ACQUIRE);
	int p = r ? kio_part(fd) : -1;
	if (p >= 0 && kio_take_failure(p)) {
		errno = EIO;
		return -1;
	}
	ssize_t w = syscall(SYS_pwrite64, fd, buf, n, off);
	if (w > 0 && p >= 0) {
		recorder_write(r, p, (uint64_t)off, buf, (size_t)w);
		recorder_flush(r, p, (uint64_t)off, (size_t)w);
	}
	return w;
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off)
{
	return pwrite(fd, buf, n, off);
}

static void kio_maybe_pause(int part)
{
	pthread_mutex_lock(&kio.lock);
	if (kio.pause_part == part) {
		kio.pause_part = -1;
		kio.paused = 1;
		pthread_cond_broadcast(&kio.cond);
		while (!kio.released)
			pthread_cond_wait(&kio.cond, &kio.lock);
	}
	pthread_mutex_unlock(&kio.lock);
}

static void kio_returned(void)
{
	pthread_mutex_lock(&kio.lock);
	if (kio.released && !kio.returned) {
		kio.returned = 1;
		pthread_cond_broadcast(&kio.cond);
	}
	pthread_mutex_unlock(&kio.lock);
}

int fdatasync(int fd)
{
	struct recorder *r = __atomic_load_n(&kio.r, __ATOMIC_ACQUIRE);
	int p = r ? kio_part(fd) : -1;
	if (p >= 0) {
		recorder_fence(r, p);
		kio_maybe_pause(p);
	}
	int rc = (int)syscall(SYS_fdatasync, fd);
	if (p >= 0)
		kio_returned();
	return rc;
}

/* Waits (up to ~5 s) for kio.<field> to become set; false on timeout. */
static bool kio_wait(int *field)
{
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 5;
	pthread_mutex_lock(&kio.lock);
	while (!*field && pthread_cond_timedwait(&kio.cond, &kio.lock, &until) == 0)
		;
	bool ok = *field != 0;
	pthread_mutex_unlock(&kio.lock);
	return ok;
}

/* ---- crash context for fatal signals -------------------------------------- */

static char crash_context[512];

static void on_fatal(int sig)
{
	static const char pre[] = "\ntest_crash_states: fatal signal while ";
	ssize_t rc = write(2, pre, sizeof(pre) - 1);
	rc = write(2, crash_context, strnlen(crash_context, sizeof(crash_context)));
	rc = write(2, "\n", 1);
	(void)rc;
	signal(sig, SIG_DFL);
	raise(sig);
}

static void install_fatal_handlers(void)
{
	static const int sigs[] = {SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL};
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		signal(sigs[i], on_fatal);
}

/* ---- the recorded run ----------------------------------------------------- */

struct op {
	uint64_t start, end; /* recorder positions around the call */
	size_t acks;         /* ops acknowledged (durable) once this one returned */
	char desc[96];
};

struct scen {
	const char *name;
	int batch;                       /* batch mode: only cairn_sync/cairn_fsync acknowledge */
	int file_media;                  /* recorded at the kernel interface (see kio) */
	uint64_t journal_lo, journal_hi; /* the fast part's journal, in bytes */
	struct testvol *tv;
	struct recorder *r;
	struct manifest mf;
	cairn_fs *fs; /* the recorded mount while the workload runs */
	struct op *ops;
	size_t nops, cap;
	char **state;         /* state[0..nops] */
	unsigned dump_writes; /* dumps that moved the recorder (should be 0) */
	/* The state after an op and of a recovered volume (NULL: tv_dump). */
	char *(*oracle)(struct scen *s);
	char *(*recovered)(cairn_fs *fs);
	int no_read_only; /* no read-only mount of the crash states */
	/* The manifests the workload wrote (tier changes): manifest[i] is the
	 * one a crash at a position >= manifest_at[i] finds; none: the mkfs
	 * one throughout.  s->mf gathers every part's path over them. */
	char *manifest[8];
	size_t manifest_len[8];
	uint64_t manifest_at[8];
	int nmanifests;
	/* results */
	uint64_t checked, duplicates, used, failures, fscked;
	uint64_t inflight_old, inflight_new; /* in-flight op recovered as before / after */
	double workload_s, check_s;
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static unsigned scale(void)
{
	const char *s = getenv("CAIRN_CRASH_STATES_SCALE");
	long v = s && *s ? strtol(s, NULL, 10) : 1;
	return v < 1 ? 1 : v > 1000 ? 1000 : (unsigned)v;
}

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n);
	if (!p)
		fail_msg("out of memory");
	return p;
}

static void read_file(const char *path, void *buf, uint64_t size)
{
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		fail_msg("open %s: %s", path, strerror(errno));
	uint64_t done = 0;
	while (done < size) {
		ssize_t n = pread(fd, (char *)buf + done, size - done, (off_t)done);
		if (n <= 0)
			fail_msg("read %s: %s", path, n < 0 ? strerror(errno) : "short file");
		done += (uint64_t)n;
	}
	close(fd);
}

static void write_file(const char *path, const void *buf, uint64_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT, 0600);
	if (fd < 0)
		fail_msg("open %s: %s", path, strerror(errno));
	uint64_t done = 0;
	while (done < size) {
		ssize_t n = pwrite(fd, (const char *)buf + done, size - done, (off_t)done);
		if (n <= 0)
			fail_msg("write %s: %s", path, n < 0 ? strerror(errno) : "no progress");
		done += (uint64_t)n;
	}
	close(fd);
}

static void scen_free(struct scen *s);

/* mkfs (with capacity tiers "ssd" and "hdd" when tiered), declare the
 * initial images of every part, mount with the recorder. */
struct scen_cfg {
	int tiered;
	int file_media;
	uint64_t log_size;  /* 0: LOG_SIZE */
	uint64_t fast_size; /* 0: FAST_SIZE */
	const struct cairn_mount_opts *mount;
	char *(*oracle)(struct scen *s); /* see struct scen */
	char *(*recovered)(cairn_fs *fs);
	int no_read_only;
	/* Bytes each capacity tier's file gets beyond its size, declared to
	 * the recorder with it: room for the workload to grow the tier. */
	uint64_t tier_room;
	uint64_t fast_room; /* the same for the fast part */
};

/* Reads where the journal lies from the fast part's superblock. */
static void find_journal(struct scen *s, const void *fast_image)
{
	const struct fs_super *sb = fast_image;
	if (sb->magic != FS_SUPER_MAGIC)
		fail_msg("%s: no superblock at the start of the fast part", s->name);
	s->journal_lo = sb->journal_start * FS_BLOCK_SIZE;
	s->journal_hi = (sb->journal_start + sb->journal_blocks) * FS_BLOCK_SIZE;
}

static void kio_attach(struct scen *s)
{
	kio.nparts = manifest_parts(&s->mf);
	for (int p = 0; p < kio.nparts; p++) {
		struct stat st;
		if (stat(s->mf.path[p], &st) != 0)
			fail_msg("%s: stat %s: %s", s->name, s->mf.path[p], strerror(errno));
		kio.dev[p] = st.st_dev;
		kio.ino[p] = st.st_ino;
	}
	__atomic_store_n(&kio.r, s->r, __ATOMIC_RELEASE);
}

static void kio_detach(void)
{
	__atomic_store_n(&kio.r, NULL, __ATOMIC_RELEASE);
	kio.fail_part = kio.pause_part = -1;
}

static void scen_begin_cfg(struct scen *s, const char *name, const struct scen_cfg *cfg)
{
	scen_free(s);
	s->name = name;
	s->file_media = cfg->file_media;
	install_fatal_handlers(); /* here: cmocka installs its own per test */
	struct cairn_mkfs_opts mo = {
	    .log_size = cfg->log_size ? cfg->log_size : LOG_SIZE,
	    .fast_size = cfg->fast_size ? cfg->fast_size : FAST_SIZE,
	    .media = cfg->file_media ? CAIRN_MEDIA_FILE : CAIRN_MEDIA_EMUL,
	};
	int tiered = cfg->tiered;
	const struct cairn_mount_opts *extra = cfg->mount;
	s->tv = tv_scratch(name);
	char tier_path[2][PATH_MAX];
	if (tiered) {
		mo.ntiers = 2;
		snprintf(tier_path[0], PATH_MAX, "%s/ssd.tier", s->tv->root);
		snprintf(tier_path[1], PATH_MAX, "%s/hdd.tier", s->tv->root);
		mo.tiers[0] = (struct cairn_tier_opts){"ssd", tier_path[0], 2 * TV_MiB, 0};
		mo.tiers[1] = (struct cairn_tier_opts){"hdd", tier_path[1], 4 * TV_MiB, 16 * 4096};
	}
	if (tv_mkfs(s->tv, &mo))
		fail_msg("%s: mkfs failed", name);
	char err[1024] = "";
	if (manifest_read(s->tv->dir, &s->mf, err, sizeof(err)) != 0)
		fail_msg("%s: %s", name, err);
	s->r = recorder_new();
	if (!s->r)
		fail_msg("out of memory");
	for (int p = 0; p < manifest_parts(&s->mf); p++) {
		uint64_t size = s->mf.size[p] + (p >= PART_TIER1  ? cfg->tier_room
		                                 : p == PART_FAST ? cfg->fast_room
		                                                  : 0);
		if (size != s->mf.size[p])
			TV_OK(truncate(s->mf.path[p], (off_t)size));
		void *img = xrealloc(NULL, size);
		read_file(s->mf.path[p], img, size);
		TV_EQ(recorder_add_part(s->r, p, img, size), 0);
		if (p == 1)
			find_journal(s, img);
		free(img);
	}
	snprintf(crash_context, sizeof(crash_context), "%s: recorded mount", name);
	struct cairn_mount_opts o = {.no_digest_thread = 1};
	if (extra)
		o = *extra;
	s->batch = o.batch_ms > 0;
	if (s->file_media)
		kio_attach(s);
	else
		o.recorder = s->r;
	s->fs = tv_mount(s->tv, &o);
	if (!s->fs)
		fail_msg("%s: recorded mount failed: %s", name, cairn_last_error());
	s->oracle = cfg->oracle;
	s->recovered = cfg->recovered;
	s->no_read_only = cfg->no_read_only;
	s->state = xrealloc(NULL, sizeof(char *));
	s->state[0] = s->oracle ? s->oracle(s) : tv_dump(s->fs, DUMP_FLAGS);
	s->workload_s = now_s();
}

static void scen_begin_opts(struct scen *s, const char *name, int tiered,
                            const struct cairn_mount_opts *extra)
{
	struct scen_cfg cfg = {.tiered = tiered, .mount = extra};
	scen_begin_cfg(s, name, &cfg);
}

static void scen_begin(struct scen *s, const char *name)
{
	scen_begin_opts(s, name, 0, NULL);
}

static void op_start(struct scen *s, const char *desc)
{
	if (s->nops == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 256;
		s->ops = xrealloc(s->ops, s->cap * sizeof(*s->ops));
		s->state = xrealloc(s->state, (s->cap + 1) * sizeof(char *));
	}
	struct op *o = &s->ops[s->nops];
	snprintf(o->desc, sizeof(o->desc), "%s", desc);
	snprintf(crash_context, sizeof(crash_context), "%s: workload op %zu: %s", s->name, s->nops,
	         desc);
	o->start = recorder_position(s->r);
}

/* Ends the current op; dump = 0 for the unmount (state unchanged). */
static void op_done(struct scen *s, int dump)
{
	struct op *o = &s->ops[s->nops];
	o->end = recorder_position(s->r);
	/* Sync mode: every op that returned is durable; batch mode: only
	 * what a cairn_sync (op_synced) or the unmount acknowledged. */
	o->acks = !s->batch || !dump ? s->nops + 1 : s->nops ? s->ops[s->nops - 1].acks : 0;
	if (dump) {
		s->state[s->nops + 1] = s->oracle ? s->oracle(s) : tv_dump(s->fs, DUMP_FLAGS);
		/* Reading must not write; if it does the writes still belong
		 * between op i and op i + 1, so the check stays sound. */
		if (recorder_position(s->r) != o->end)
			s->dump_writes++;
	} else {
		s->state[s->nops + 1] = strdup(s->state[s->nops]);
	}
	s->nops++;
}

/* Batch mode: the op just done (a cairn_sync or cairn_fsync) made every op
 * so far durable. */
static void op_synced(struct scen *s)
{
	s->ops[s->nops - 1].acks = s->nops;
}

/* DO: a call that must succeed, recorded as one operation. */
#define DO(s, expr)                                                                                \
	__extension__({                                                                            \
		op_start((s), #expr);                                                              \
		__typeof__(expr) _op_r = TV_OK(expr);                                              \
		op_done((s), 1);                                                                   \
		_op_r;                                                                             \
	})

static void scen_unmount(struct scen *s)
{
	op_start(s, "cairn_unmount");
	cairn_fs *fs = s->fs;
	s->fs = NULL;
	s->tv->fs = NULL;
	TV_OK(cairn_unmount(fs));
	op_done(s, 0);
	kio_detach();
	s->workload_s = now_s() - s->workload_s;
	if (recorder_error(s->r) != 0)
		fail_msg("%s: recorder error %d", s->name, recorder_error(s->r));
}

/* A tier change wrote a new manifest, which a crash at position `at` or
 * later finds (a crash before it, the one before); the scenario notes
 * the mkfs one first, at 0.  s->mf keeps the
 * path of every part any manifest named: a removed tier's file stays. */
static void note_manifest(struct scen *s, uint64_t at)
{
	if (s->nmanifests == 8)
		fail_msg("%s: more than 7 manifests", s->name);
	char path[PATH_MAX], err[1024];
	snprintf(path, sizeof(path), "%s/%s", s->tv->dir, VOLUME_MANIFEST);
	struct stat st;
	if (stat(path, &st))
		fail_msg("%s: %s: %s", s->name, path, strerror(errno));
	int i = s->nmanifests++;
	s->manifest_len[i] = (size_t)st.st_size;
	s->manifest[i] = xrealloc(NULL, s->manifest_len[i]);
	read_file(path, s->manifest[i], s->manifest_len[i]);
	s->manifest_at[i] = at;
	struct manifest mf;
	if (manifest_read(s->tv->dir, &mf, err, sizeof(err)))
		fail_msg("%s: %s", s->name, err);
	for (int p = 0; p < manifest_parts(&mf); p++)
		if (mf.path[p][0])
			memcpy(s->mf.path[p], mf.path[p], sizeof(mf.path[p]));
	if (mf.ntiers > s->mf.ntiers)
		s->mf.ntiers = mf.ntiers;
}

/* Puts back the manifest a crash at position pos finds. */
static void put_manifest(struct scen *s, uint64_t pos)
{
	int i = s->nmanifests - 1;
	while (i > 0 && pos < s->manifest_at[i])
		i--;
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s", s->tv->dir, VOLUME_MANIFEST);
	unlink(path);
	write_file(path, s->manifest[i], s->manifest_len[i]);
}

/* ---- checking the crash states -------------------------------------------- */

struct variant {
	unsigned v;
	int torn;
	/* 1: every pending line of the fast part's journal persisted, no
	 * other line of it; the log part all (range 1) or nothing (range 2). */
	int range;
};

__attribute__((format(printf, 2, 3))) static void report(struct scen *s, const char *fmt, ...)
{
	s->failures++;
	if (s->failures > MAX_REPORTS)
		return;
	char buf[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	print_error("CRASH-STATE FAILURE %s\n", buf);
}

/* Prints the operations around a failing crash point (for the first
 * failures of a scenario only). */
static void print_ops_near(const struct scen *s, size_t acked, size_t started)
{
	if (s->failures > MAX_REPORTS)
		return;
	size_t from = acked > 3 ? acked - 3 : 0, to = started + 1 < s->nops ? started + 1 : s->nops;
	for (size_t i = from; i < to; i++)
		print_error("    op %zu [%" PRIu64 "..%" PRIu64 ")%s: %s\n", i, s->ops[i].start,
		            s->ops[i].end,
		            i < acked     ? " acked"
		            : i < started ? " started"
		                          : "",
		            s->ops[i].desc);
}

/* Uses a recovered volume: create, write, remount, read back. */
static void check_usable(struct scen *s, cairn_fs **fsp, const char *where)
{
	cairn_fs *fs = *fsp;
	unsigned char buf[5000], got[5000];
	tv_fill(buf, sizeof(buf), 77);
	int fd = cairn_open(fs, USABLE_PATH, O_CREAT | O_EXCL | O_RDWR, 0600);
	if (fd < 0) {
		report(s, "%s: usable: create: %s", where, tv_errname(errno));
		return;
	}
	if (tv_pwrite_full(fs, fd, buf, sizeof(buf), 0) != (ssize_t)sizeof(buf))
		report(s, "%s: usable: write: %s", where, tv_errname(errno));
	if (cairn_close(fs, fd) != 0)
		report(s, "%s: usable: close: %s", where, tv_errname(errno));
	*fsp = NULL;
	if (cairn_unmount(fs) != 0) {
		report(s, "%s: usable: unmount: %s", where, tv_errname(errno));
		return;
	}
	struct cairn_mount_opts o = {.no_digest_thread = 1};
	fs = cairn_mount(s->tv->dir, &o);
	if (!fs) {
		report(s, "%s: usable: remount failed: %s", where, cairn_last_error());
		return;
	}
	*fsp = fs;
	fd = cairn_open(fs, USABLE_PATH, O_RDONLY);
	if (fd < 0) {
		report(s, "%s: usable: after remount: open: %s", where, tv_errname(errno));
		return;
	}
	memset(got, 0, sizeof(got));
	ssize_t n = cairn_pread(fs, fd, got, sizeof(got), 0);
	if (n != (ssize_t)sizeof(got) || memcmp(got, buf, sizeof(buf)) != 0)
		report(s, "%s: usable: after remount: read back %zd bytes, content %s", where, n,
		       n == (ssize_t)sizeof(got) && memcmp(got, buf, sizeof(buf)) ? "differs"
		                                                                  : "-");
	cairn_close(fs, fd);
	s->used++;
}

/* fsck (read-only) of the recovered volume after its clean unmount: leaks,
 * wrong counts and damage that a dump of the tree does not show. */
static void check_fsck(struct scen *s, const char *where)
{
	struct fsck_opts fo = {0};
	struct fsck_report rep;
	memset(&rep, 0, sizeof(rep));
	int rc = fsck_run(s->tv->dir, &fo, &rep);
	s->fscked++;
	if (rc != FSCK_CLEAN) {
		char first[600] = "";
		for (size_t i = 0; i < rep.found.n; i++)
			if (rep.found.v[i].severity == FSCK_ERROR) {
				snprintf(first, sizeof(first), "%s", rep.found.v[i].msg);
				break;
			}
		report(s, "%s: fsck of the recovered volume: result %d, %" PRIu64 " errors: %s%s",
		       where, rc, rep.errors, first, rc == FSCK_REFUSED ? rep.refused : "");
	}
	fsck_report_free(&rep);
}

/* fsck of a crash image itself, before anything mounts it, when a client
 * log is there: recovery will apply what a whole client log holds, so
 * fsck must not call it damaged (log/clog_check.h tells a record a crash
 * tore from one damaged after it was durable, from where the log's
 * copies in the volume's log took its progress). */
static void check_fsck_client_logs(struct scen *s, const char *where)
{
	int any = 0;
	for (int i = 0; i < 4 && !any; i++) {
		char p[PATH_MAX + 32];
		snprintf(p, sizeof(p), CLOG_STATE_NAME, s->tv->log_part, i);
		any = access(p, F_OK) == 0;
	}
	if (!any)
		return;
	struct fsck_opts fo = {0};
	struct fsck_report rep;
	memset(&rep, 0, sizeof(rep));
	fsck_run(s->tv->dir, &fo, &rep);
	for (size_t i = 0; i < rep.found.n; i++)
		if (!strncmp(fsck_code_name(rep.found.v[i].code), "client-log", 10))
			report(s, "%s: fsck of the crash image: %s", where, rep.found.v[i].msg);
	fsck_report_free(&rep);
}

/* fsck every Nth recovered state (and every range variant). */
static unsigned fsck_every(void)
{
	const char *s = getenv("CAIRN_CRASH_FSCK_EVERY");
	long v = s && *s ? strtol(s, NULL, 10) : 1;
	return v < 1 ? 1 : (unsigned)v;
}

/* Mounts the images now in the part files and checks the recovered state. */
/* A read-only mount recovers in memory only: it must show one of the
 * states acked..started too, every byte readable, before a read-write
 * mount digests the image (which the checks below then see).  A
 * read-only mount does not digest what it replayed, so it reads blocks
 * that a checkpoint cut short by the crash rewrote without their
 * checksums. */
static void check_read_only(struct scen *s, const char *where, size_t acked, size_t started)
{
	struct cairn_mount_opts o = {.no_digest_thread = 1, .read_only = 1};
	cairn_fs *fs = cairn_mount(s->tv->dir, &o);
	if (!fs) {
		report(s, "%s: read-only mount failed: %s: %s", where, tv_errname(errno),
		       cairn_last_error());
		return;
	}
	char *dump = tv_dump(fs, DUMP_FLAGS);
	size_t j = acked;
	while (j <= started && strcmp(dump, s->state[j]) != 0)
		j++;
	if (j > started) {
		report(s, "%s: the read-only mount shows no state in %zu..%zu", where, acked,
		       started);
		if (s->failures <= MAX_REPORTS)
			tv_dump_compare(s->state[acked], dump, "state vs read-only mount");
	}
	free(dump);
	if (cairn_unmount(fs) != 0)
		report(s, "%s: unmount of the read-only mount failed: %s", where,
		       tv_errname(errno));
}

static void check_state(struct scen *s, uint64_t k, const struct variant *va, size_t acked,
                        size_t started, uint64_t pending)
{
	char where[256];
	snprintf(where, sizeof(where),
	         "scenario %s, crash point k=%" PRIu64 " (fence position %" PRIu64
	         "), variant %u%s, %" PRIu64 " pending lines, acked..started = %zu..%zu",
	         s->name, k, recorder_fence_position(s->r, k), va->v,
	         va->range == 1   ? " journal+log only"
	         : va->range == 2 ? " journal only"
	         : va->torn       ? " torn"
	                          : "",
	         pending, acked, started);
	snprintf(crash_context, sizeof(crash_context), "checking %s", where);
	if (s->checked % fsck_every() == 0)
		check_fsck_client_logs(s, where);
	if (s->checked % RO_EVERY == 0 && !s->no_read_only)
		check_read_only(s, where, acked, started);
	struct cairn_mount_opts o = {.no_digest_thread = 1};
	errno = 0;
	cairn_fs *fs = cairn_mount(s->tv->dir, &o);
	if (!fs) {
		report(s, "%s: mount failed: %s: %s", where, tv_errname(errno), cairn_last_error());
		print_ops_near(s, acked, started);
		return;
	}
	char *dump = s->recovered ? s->recovered(fs) : tv_dump(fs, DUMP_FLAGS);
	size_t j;
	for (j = acked; j <= started; j++)
		if (strcmp(dump, s->state[j]) == 0)
			break;
	if (j > started) {
		report(s,
		       "%s: the recovered volume matches no state in %zu..%zu\n"
		       "  last acked op: %s\n  next op: %s",
		       where, acked, started, acked ? s->ops[acked - 1].desc : "(none: mount)",
		       acked < s->nops ? s->ops[acked].desc : "(none)");
		print_ops_near(s, acked, started);
		if (s->failures <= MAX_REPORTS) {
			char what[64];
			snprintf(what, sizeof(what), "state[%zu] vs recovered", acked);
			tv_dump_compare(s->state[acked], dump, what);
			if (started != acked) {
				snprintf(what, sizeof(what), "state[%zu] vs recovered", started);
				tv_dump_compare(s->state[started], dump, what);
			}
		}
	} else {
		if (started > acked) {
			if (j == acked)
				s->inflight_old++;
			else
				s->inflight_new++;
		}
		if (s->checked % USE_EVERY == 0)
			check_usable(s, &fs, where);
	}
	free(dump);
	bool want_fsck = s->checked % fsck_every() == 0 || va->range != 0;
	s->checked++;
	if (fs && cairn_unmount(fs) != 0) {
		report(s, "%s: unmount of the recovered volume failed: %s", where,
		       tv_errname(errno));
		return;
	}
	if (fs && want_fsck)
		check_fsck(s, where);
}

static size_t variants_for(uint64_t pending, unsigned sc, struct variant *out, size_t max)
{
	size_t n = 0;
	out[n++] = (struct variant){0, 0, 0};
	if (pending == 0)
		return n; /* one state only */
	out[n++] = (struct variant){1, 0, 0};
	out[n++] = (struct variant){0, 0, 1};
	out[n++] = (struct variant){1, 0, 2};
	uint64_t p = pending > 96 ? 96 : pending;
	size_t nrand = (size_t)(4 + p / 4) * sc;  /* 4..28 per unit of scale */
	size_t ntorn = (size_t)(2 + p / 16) * sc; /* 2..8 */
	for (size_t i = 0; i < nrand && n < max; i++)
		out[n++] = (struct variant){(unsigned)(2 + i), 0, 0};
	for (size_t i = 0; i < ntorn && n < max; i++)
		out[n++] = (struct variant){(unsigned)(2 + 3 * i + 1), 1, 0};
	return n;
}

static bool verbose(void)
{
	const char *v = getenv("CAIRN_TEST_VERBOSE");
	return v && *v && strcmp(v, "0") != 0;
}

static int crash_image(struct scen *s, uint64_t k, const struct variant *va, int p, void *out)
{
	if (va->range && p == 1)
		return recorder_crash_image_range(s->r, k, p, s->journal_lo, s->journal_hi, out);
	if (va->range)
		return recorder_crash_image(s->r, k, va->range == 1 ? 0 : 1, p, out);
	return va->torn ? recorder_crash_image_torn(s->r, k, va->v, p, out)
	                : recorder_crash_image(s->r, k, va->v, p, out);
}

/* A part of a crash state: the volume's, or a file the engine made while
 * recording (a client log), which exists between born and gone. */
struct cpart {
	int p; /* recorder part number */
	uint64_t size, born, gone;
	char path[PATH_MAX];
	void *img;
};

/* The file of recorder part p: a part of the volume, or one of a client
 * log's files, numbered by clog_recorder_part. */
static void part_path(const struct scen *s, int p, char *buf, size_t len)
{
	int c = p - clog_recorder_part(0);
	if (p < manifest_parts(&s->mf))
		snprintf(buf, len, "%s", s->mf.path[p]);
	else
		snprintf(buf, len, "%s.client%d%s", s->mf.path[PART_LOG], c / 2,
		         c % 2 ? ".state" : "");
}

/* Every part the recorder knows, in parts; returns how many. */
static int crash_parts(struct scen *s, struct cpart *parts)
{
	int n = 0;
	for (int p = 0; p < RECORDER_MAX_PARTS; p++) {
		struct cpart *cp = &parts[n];
		if (recorder_part_span(s->r, p, &cp->size, &cp->born, &cp->gone) != 0)
			continue;
		if (p >= manifest_parts(&s->mf) && p < clog_recorder_part(0))
			fail_msg("%s: part %d is neither the volume's nor a client log's", s->name,
			         p);
		cp->p = p;
		part_path(s, p, cp->path, sizeof(cp->path));
		cp->img = xrealloc(NULL, cp->size);
		n++;
	}
	return n;
}

static void scen_check(struct scen *s)
{
	if (verbose()) {
		size_t f = 0;
		uint64_t nf0 = recorder_fence_count(s->r);
		for (size_t i = 0; i < s->nops; i++) {
			size_t f0 = f;
			while (f < nf0 && recorder_fence_position(s->r, f) < s->ops[i].end)
				f++;
			print_message("  %s op %zu [%" PRIu64 "..%" PRIu64 ") %zu fences: %s\n",
			              s->name, i, s->ops[i].start, s->ops[i].end, f - f0,
			              s->ops[i].desc);
		}
	}
	double t0 = now_s();
	unsigned sc = scale();
	uint64_t nf = recorder_fence_count(s->r);
	struct cpart parts[RECORDER_MAX_PARTS];
	const int nparts = crash_parts(s, parts);
	size_t maxv = 40 * (size_t)sc + 2;
	struct variant *vars = xrealloc(NULL, maxv * sizeof(*vars));
	uint64_t *seen = xrealloc(NULL, maxv * sizeof(*seen));
	size_t acked = 0, ended = 0, started = 0;
	for (uint64_t k = 0; k <= nf; k++) {
		uint64_t pos = recorder_fence_position(s->r, k);
		while (ended < s->nops && s->ops[ended].end <= pos)
			ended++;
		acked = ended ? s->ops[ended - 1].acks : 0;
		while (started < s->nops && s->ops[started].start < pos)
			started++;
		if (started < acked) /* ops that recorded nothing at all */
			started = acked;
		uint64_t pending = recorder_pending_lines(s->r, k);
		size_t nv = variants_for(pending, sc, vars, maxv), nseen = 0;
		for (size_t i = 0; i < nv; i++) {
			XXH3_state_t *h = XXH3_createState();
			XXH3_64bits_reset(h);
			for (int q = 0; q < nparts; q++) {
				struct cpart *cp = &parts[q];
				/* A part made or removed while recording: its file
				 * exists only in between. */
				unsigned char there = cp->born <= pos && pos < cp->gone;
				XXH3_64bits_update(h, &there, 1);
				if (!there)
					continue;
				int rc = crash_image(s, k, &vars[i], cp->p, cp->img);
				if (rc != 0)
					fail_msg("%s: recorder_crash_image(k=%" PRIu64
					         ", v=%u, part %d): %s",
					         s->name, k, vars[i].v, cp->p, tv_errname(-rc));
				XXH3_64bits_update(h, cp->img, cp->size);
			}
			uint64_t hash = XXH3_64bits_digest(h);
			XXH3_freeState(h);
			size_t d;
			for (d = 0; d < nseen && seen[d] != hash; d++)
				;
			if (d < nseen) {
				s->duplicates++;
				continue;
			}
			seen[nseen++] = hash;
			for (int q = 0; q < nparts; q++) {
				struct cpart *cp = &parts[q];
				if (cp->born <= pos && pos < cp->gone)
					write_file(cp->path, cp->img, cp->size);
				else
					unlink(cp->path);
			}
			if (s->nmanifests)
				put_manifest(s, pos);
			check_state(s, k, &vars[i], acked, started, pending);
		}
	}
	for (int q = 0; q < nparts; q++)
		free(parts[q].img);
	free(vars);
	free(seen);
	s->check_s = now_s() - t0;
	print_message("crash states: scenario %-8s %4zu ops, %5" PRIu64 " fences, %6" PRIu64
	              " states checked (%" PRIu64 " duplicate images skipped, %" PRIu64
	              " used, %" PRIu64 " fsck'd; in-flight op lost %" PRIu64 ", kept %" PRIu64
	              "), workload %.2fs, check %.2fs%s\n",
	              s->name, s->nops, nf, s->checked, s->duplicates, s->used, s->fscked,
	              s->inflight_old, s->inflight_new, s->workload_s, s->check_s,
	              s->dump_writes ? " [dumps wrote to media]" : "");
}

/* ---- totals --------------------------------------------------------------- */

static uint64_t total_states, total_failures;
static double total_time;

/* Frees a scenario, also one a failure left half done (from the teardown). */
static void scen_free(struct scen *s)
{
	if (s->state)
		for (size_t i = 0; i <= s->nops; i++)
			free(s->state[i]);
	free(s->state);
	free(s->ops);
	for (int i = 0; i < s->nmanifests; i++)
		free(s->manifest[i]);
	kio_detach();
	if (s->tv) {
		/* Emulated parts live in /dev/shm outside the scratch directory. */
		const char *keep = getenv("CAIRN_TEST_KEEP");
		tv_unmount(s->tv);
		if (!(keep && *keep && strcmp(keep, "0") != 0)) {
			for (int p = 0; p < manifest_parts(&s->mf); p++)
				if (s->mf.path[p][0])
					unlink(s->mf.path[p]);
			/* Client logs' files, left by the last recovery. */
			for (int p = clog_recorder_part(0);
			     s->mf.path[0][0] && p < RECORDER_MAX_PARTS; p++) {
				char path[PATH_MAX];
				part_path(s, p, path, sizeof(path));
				unlink(path);
			}
		}
		tv_destroy(s->tv);
	}
	/* After the unmount: a workload that failed leaves its volume mounted
	 * with the recorder attached to its media. */
	if (s->r)
		recorder_free(s->r);
	memset(s, 0, sizeof(*s));
}

static void scen_end(struct scen *s)
{
	total_states += s->checked;
	total_failures += s->failures;
	total_time += s->workload_s + s->check_s;
	uint64_t failures = s->failures;
	char name[32];
	snprintf(name, sizeof(name), "%s", s->name);
	scen_free(s);
	if (failures)
		fail_msg("scenario %s: %" PRIu64 " crash states failed (first %d printed above)",
		         name, failures, MAX_REPORTS);
}

/* The scenario of the running test: static, so that the teardown can free
 * it after a failure jumped out of the test. */
static struct scen current;

static int scen_teardown(void **state)
{
	(void)state;
	scen_free(&current);
	return 0;
}

/* ---- workloads ------------------------------------------------------------ */

#define FS (s->fs)

/* File data: create, small / multi-block / in-place / sparse / append
 * writes, truncate shrink + grow, O_TRUNC, and writes enough to digest
 * inline several times. */
static void test_files(void **state)
{
	(void)state;
	struct scen *s = &current;
	scen_begin(s, "files");
	static unsigned char buf[64 * 1024], rd[64 * 1024];

	int fd = DO(s, cairn_open(FS, "/a", O_CREAT | O_RDWR, 0644));
	DO(s, cairn_pwrite(FS, fd, "hello, cairn", 12, 0));
	tv_fill(buf, 24 * 1024 + 100, 1);
	DO(s, tv_pwrite_full(FS, fd, buf, 24 * 1024 + 100, 4096 + 100)); /* multi-block */
	tv_fill(buf, 3000, 2);
	DO(s, tv_pwrite_full(FS, fd, buf, 3000, 5000)); /* overwrite in place */
	tv_fill(buf, 5000, 3);
	DO(s, tv_pwrite_full(FS, fd, buf, 5000, 3 * (off_t)TV_MiB + 1234)); /* sparse, far */
	int fa = DO(s, cairn_open(FS, "/a", O_WRONLY | O_APPEND));
	tv_fill(buf, 777, 4);
	DO(s, tv_write_full(FS, fa, buf, 777)); /* append */
	DO(s, cairn_close(FS, fa));
	DO(s, cairn_digest(FS));
	DO(s, cairn_ftruncate(FS, fd, 10001));                    /* shrink to an unaligned size */
	DO(s, cairn_truncate(FS, "/a", 70000));                   /* grow */
	ssize_t n = DO(s, cairn_pread(FS, fd, rd, 60000, 10001)); /* to EOF: zeros */
	TV_EQ(n, 59999);
	for (size_t i = 0; i < 59999; i++)
		if (rd[i] != 0)
			fail_msg("files: byte %zu after truncate shrink+grow is %#x, not 0",
			         10001 + i, rd[i]);
	tv_fill(buf, 40 * 1024, 5);
	DO(s, tv_pwrite_full(FS, fd, buf, 40 * 1024, 8192)); /* across the old cut */
	DO(s, cairn_close(FS, fd));

	int fb = DO(s, cairn_open(FS, "/b", O_CREAT | O_EXCL | O_WRONLY, 0600));
	tv_fill(buf, 16 * 1024, 6);
	DO(s, tv_write_full(FS, fb, buf, 16 * 1024));
	DO(s, cairn_fsync(FS, fb));
	DO(s, cairn_close(FS, fb));
	fb = DO(s, cairn_open(FS, "/b", O_WRONLY | O_TRUNC));
	DO(s, cairn_pwrite(FS, fb, "x", 1, 4095));
	DO(s, cairn_close(FS, fb));
	DO(s, cairn_truncate(FS, "/b", 0));

	/* Enough data through a 256 KiB log to digest inline several times. */
	int fc = DO(s, cairn_open(FS, "/c", O_CREAT | O_RDWR, 0644));
	for (int i = 0; i < 14; i++) {
		size_t len = 16 * 1024 + (size_t)i * 1777;
		tv_fill(buf, len, 100 + (uint64_t)i);
		DO(s, tv_pwrite_full(FS, fc, buf, len, (off_t)i * 13000));
		if (i == 6)
			DO(s, cairn_ftruncate(FS, fc, 50000));
	}
	DO(s, cairn_ftruncate(FS, fc, 12345));
	DO(s, cairn_close(FS, fc));
	DO(s, cairn_digest(FS));
	fd = DO(s, cairn_open(FS, "/a", O_RDWR));
	tv_fill(buf, 2000, 7);
	DO(s, tv_pwrite_full(FS, fd, buf, 2000, 69000)); /* across EOF */
	DO(s, cairn_close(FS, fd));
	/* Holes punched: whole blocks, a partial block, in digested data. */
	{
		int pf = DO(s, cairn_open(FS, "/punched", O_CREAT | O_RDWR, 0644));
		tv_fill(buf, 24 * 1024, 77);
		DO(s, tv_pwrite_full(FS, pf, buf, 24 * 1024, 0));
		DO(s, cairn_fallocate(FS, pf, 3, 3000, 9000)); /* PUNCH_HOLE | KEEP_SIZE */
		DO(s, cairn_digest(FS));
		DO(s, cairn_fallocate(FS, pf, 3, 12288, 8192));
		DO(s, cairn_fallocate(FS, pf, 0, 0, 40000)); /* extends the size */
		DO(s, cairn_close(FS, pf));
	}
	scen_unmount(s);
	scen_check(s);
	scen_end(s);
}

/* Preallocation: fallocate (mode 0, KEEP_SIZE past the end) sets blocks
 * aside; writes land in them, partial blocks included, in the log and
 * digested (the extent split, then marked written); a hole is punched in
 * the range; a truncate to the same size drops what lies past the end, a
 * shrink cuts into the range.  Then one file preallocates nearly all that
 * is left (in calls of at most one record), so that the allocator comes
 * round onto blocks another file freed, and writes into it are digested on
 * a full volume: with no tree node to spare, the digest writes zeros over
 * the rest of each extent. */
static void test_falloc(void **state)
{
	(void)state;
	struct scen *s = &current;
	scen_begin(s, "falloc");
	static unsigned char buf[48 * 1024];

	int fd = DO(s, cairn_open(FS, "/old", O_CREAT | O_WRONLY, 0644));
	tv_fill(buf, sizeof(buf), 1);
	DO(s, tv_pwrite_full(FS, fd, buf, sizeof(buf), 0));
	DO(s, cairn_close(FS, fd));
	DO(s, cairn_digest(FS));
	DO(s, cairn_unlink(FS, "/old"));
	DO(s, cairn_digest(FS));
	DO(s, cairn_digest(FS)); /* its blocks are out of quarantine */

	int pf = DO(s, cairn_open(FS, "/pre", O_CREAT | O_RDWR, 0644));
	DO(s, cairn_fallocate(FS, pf, 0, 0, 64 * 1024)); /* mode 0: the size grows */
	DO(s, cairn_pwrite(FS, pf, "abc", 3, 5000));     /* part of a block */
	DO(s, cairn_digest(FS));                         /* the extent splits */
	tv_fill(buf, 9000, 2);
	DO(s, tv_pwrite_full(FS, pf, buf, 9000, 12000));         /* across blocks, in the log */
	DO(s, cairn_fallocate(FS, pf, 1, 64 * 1024, 32 * 1024)); /* KEEP_SIZE, past the end */
	DO(s, cairn_fallocate(FS, pf, 3, 20480, 8192));          /* PUNCH_HOLE | KEEP_SIZE */
	DO(s, cairn_digest(FS));
	tv_fill(buf, 3000, 3);
	DO(s, tv_pwrite_full(FS, pf, buf, 3000, 70000)); /* past the end, into the blocks */
	DO(s, cairn_ftruncate(FS, pf, 73000));           /* the same size: the rest goes */
	DO(s, cairn_ftruncate(FS, pf, 30000));           /* into the range */
	DO(s, cairn_digest(FS));

	struct statvfs sv;
	TV_OK(cairn_statvfs(FS, "/", &sv));
	assert_true(sv.f_bavail > 64);
	off_t big = (off_t)(sv.f_bavail - 32) * 4096;
	int bf = DO(s, cairn_open(FS, "/big", O_CREAT | O_RDWR, 0644));
	/* In calls of 1 MiB: a larger one may take several records (each
	 * atomic, the call not), and the oracle has one state per call. */
	const off_t mib = (off_t)TV_MiB;
	for (off_t off = 0; off < big; off += mib)
		DO(s, cairn_fallocate(FS, bf, 0, off, big - off < mib ? big - off : mib));
	for (off_t off = 4096 + 7; off < big; off += big / 5)
		DO(s, cairn_pwrite(FS, bf, "xyz", 3, off));
	DO(s, cairn_digest(FS)); /* no node to spare: zeros over the rest */
	DO(s, cairn_pwrite(FS, bf, "after", 5, big / 2));
	DO(s, cairn_close(FS, bf));
	DO(s, cairn_unlink(FS, "/big"));
	DO(s, cairn_close(FS, pf));
	scen_unmount(s);
	scen_check(s);
	scen_end(s);
}

/* Names: mkdir, rmdir, unlink, link, symlink and every kind of rename. */
static void test_names(void **state)
{
	(void)state;
	struct scen *s = &current;
	scen_begin(s, "names");
	static unsigned char buf[32 * 1024];
	char path[64];

	DO(s, cairn_mkdir(FS, "/d1", 0755));
	DO(s, cairn_mkdir(FS, "/d2", 0750));
	DO(s, cairn_mkdir(FS, "/d1/sub", 0700));
	int fd = DO(s, cairn_open(FS, "/d1/f", O_CREAT | O_WRONLY, 0644));
	tv_fill(buf, 9000, 10);
	DO(s, tv_write_full(FS, fd, buf, 9000));
	DO(s, cairn_close(FS, fd));
	DO(s, cairn_link(FS, "/d1/f", "/d2/g"));
	DO(s, cairn_symlink(FS, "../d1/f", "/d2/s"));
	DO(s, cairn_symlink(FS,
	                    "/a/rather/long/symlink/target/that/does/not/fit/in/sixty-four/bytes"
	                    "/at/all/really",
	                    "/d1/longlink"));
	DO(s, cairn_rename(FS, "/d1/f", "/d1/f2", 0));  /* plain */
	DO(s, cairn_rename(FS, "/d1/f2", "/d2/f3", 0)); /* across directories */
	fd = DO(s, cairn_open(FS, "/d2/victim", O_CREAT | O_WRONLY, 0644));
	DO(s, cairn_pwrite(FS, fd, "victim", 6, 0));
	DO(s, cairn_close(FS, fd));
	DO(s, cairn_rename(FS, "/d2/f3", "/d2/victim", 0)); /* replaces a file */
	DO(s, cairn_mkdir(FS, "/d2/emptydir", 0755));
	DO(s, cairn_mkdir(FS, "/d1/dirmove", 0755));
	DO(s, cairn_rename(FS, "/d1/dirmove", "/d2/emptydir", 0)); /* replaces an empty dir */
	DO(s, cairn_rename(FS, "/d1/sub", "/d2/sub2", 0));         /* directory, across */
	DO(s, cairn_rename(FS, "/d2/s", "/d1/s", CAIRN_RENAME_NOREPLACE));
	DO(s, cairn_digest(FS));
	DO(s, cairn_unlink(FS, "/d2/g"));
	DO(s, cairn_unlink(FS, "/d1/s"));
	DO(s, cairn_rmdir(FS, "/d2/sub2"));
	/* A directory that outgrows a block, then shrinks and goes. */
	DO(s, cairn_mkdir(FS, "/big", 0755));
	for (int i = 0; i < 48; i++) {
		snprintf(path, sizeof(path), "/big/entry-with-a-longish-name-%02d", i);
		if (i % 3 == 0)
			DO(s, cairn_mkdir(FS, path, 0755));
		else
			DO(s,
			   cairn_close(FS, TV_OK(cairn_open(FS, path, O_CREAT | O_WRONLY, 0644))));
	}
	DO(s, cairn_rename(FS, "/big/entry-with-a-longish-name-01", "/d1/moved-from-big", 0));
	DO(s, cairn_rename(FS, "/big/entry-with-a-longish-name-03", "/d2/dir-from-big", 0));
	for (int i = 4; i < 48; i++) {
		snprintf(path, sizeof(path), "/big/entry-with-a-longish-name-%02d", i);
		if (i % 3 == 0)
			DO(s, cairn_rmdir(FS, path));
		else
			DO(s, cairn_unlink(FS, path));
		if (i == 25)
			DO(s, cairn_digest(FS));
	}
	DO(s, cairn_unlink(FS, "/big/entry-with-a-longish-name-02"));
	DO(s, cairn_rmdir(FS, "/big/entry-with-a-longish-name-00"));
	DO(s, cairn_rmdir(FS, "/big"));
	DO(s, cairn_rename(FS, "/d2", "/d3", 0)); /* directory rename at the root */
	DO(s, cairn_rename(FS, "/d3/victim", "/d3/dir-from-big/victim", 0));
	DO(s, cairn_link(FS, "/d3/dir-from-big/victim", "/d1/hard"));
	DO(s, cairn_rename(FS, "/d1/hard", "/d3/dir-from-big/victim", 0)); /* same inode */
	DO(s, cairn_unlink(FS, "/d1/longlink"));
	scen_unmount(s);
	scen_check(s);
	scen_end(s);
}

/* Block reuse: directory and extent-tree nodes freed, then file data
 * written over the tier until the allocator wraps onto the freed blocks,
 * with digests (and their crash points) in between.  Data is written in
 * place before a checkpoint commits, so it must never land on a block that
 * the durable checkpoint still uses as a tree node. */
static void test_block_reuse(void **state)
{
	(void)state;
	struct scen *s = &current;
	scen_begin(s, "reuse");
	static unsigned char buf[32 * 1024];
	char path[64];
	for (int round = 0; round < 3; round++) {
		DO(s, cairn_mkdir(FS, "/dir", 0755));
		for (int i = 0; i < 40; i++) {
			snprintf(path, sizeof(path), "/dir/a-name-long-enough-to-fill-leaves-%02d",
			         i);
			DO(s,
			   cairn_close(FS, TV_OK(cairn_open(FS, path, O_CREAT | O_WRONLY, 0644))));
		}
		int fd = DO(s, cairn_open(FS, "/sparse", O_CREAT | O_WRONLY, 0644));
		for (int i = 0; i < 12; i++) { /* many extents: an extent-tree node */
			tv_fill(buf, 4096, (uint64_t)(round * 100 + i));
			DO(s, tv_pwrite_full(FS, fd, buf, 4096, (off_t)i * 3 * 4096));
		}
		DO(s, cairn_close(FS, fd));
		DO(s, cairn_digest(FS));
		for (int i = 0; i < 40; i++) {
			snprintf(path, sizeof(path), "/dir/a-name-long-enough-to-fill-leaves-%02d",
			         i);
			DO(s, cairn_unlink(FS, path));
		}
		DO(s, cairn_rmdir(FS, "/dir"));
		DO(s, cairn_unlink(FS, "/sparse"));
		/* Enough data to make the next-fit allocator come round. */
		snprintf(path, sizeof(path), "/fill-%d", round);
		fd = DO(s, cairn_open(FS, path, O_CREAT | O_WRONLY, 0644));
		for (int i = 0; i < 24; i++) {
			tv_fill(buf, sizeof(buf), (uint64_t)(round * 1000 + i));
			DO(s, tv_write_full(FS, fd, buf, sizeof(buf)));
		}
		DO(s, cairn_close(FS, fd));
		if (round > 0) {
			snprintf(path, sizeof(path), "/fill-%d", round - 1);
			DO(s, cairn_unlink(FS, path));
		}
	}
	scen_unmount(s);
	scen_check(s);
	scen_end(s);
}

/* Migration between tiers: files demoted fast -> ssd -> hdd (watermarks
 * 30%/10% of 4 MiB, 2 MiB and 4 MiB tiers), then overwritten in place on a
 * capacity tier, read (the dumps read every file: promotion candidates),
 * promoted, truncated, unlinked while migrated, and migrated again.  A
 * preallocated file is demoted too (its unwritten extents move without a
 * copy) and then written on the capacity tier.  Every
 * migration batch copies, fences, switches extents and commits: a crash at
 * any fence must show each file whole, before or after the batch. */
static void test_migration(void **state)
{
	(void)state;
	struct scen *s = &current;
	struct cairn_mount_opts mo = {
	    .no_digest_thread = 1, .high_watermark = 30, .low_watermark = 10};
	scen_begin_opts(s, "migrate", 1, &mo);
	static unsigned char buf[32 * 1024]; /* one record per write */
	char path[64];
	int pm = DO(s, cairn_open(FS, "/alloc", O_CREAT | O_RDWR, 0644));
	DO(s, cairn_fallocate(FS, pm, 0, 0, 192 * 1024));
	DO(s, cairn_pwrite(FS, pm, "early", 5, 70000));
	for (int i = 0; i < 10; i++) {
		snprintf(path, sizeof(path), "/m%d", i);
		int fd = DO(s, cairn_open(FS, path, O_CREAT | O_WRONLY, 0644));
		for (int j = 0; j < 4; j++) { /* 128 KiB, less a bit */
			tv_fill(buf, sizeof(buf), (uint64_t)(i * 10 + j));
			DO(s, tv_write_full(FS, fd, buf,
			                    sizeof(buf) - (j == 3 ? (size_t)i * 1000 : 0)));
		}
		DO(s, cairn_close(FS, fd));
		if (i % 3 == 2) {
			DO(s, cairn_digest(FS));
			DO(s, cairn_migrate(FS));
		}
	}
	DO(s, cairn_digest(FS));
	DO(s, cairn_migrate(FS));
	/* In place on whichever tier holds it now, then moved again. */
	int fd = DO(s, cairn_open(FS, "/m0", O_WRONLY));
	tv_fill(buf, 8192, 99);
	DO(s, tv_pwrite_full(FS, fd, buf, 8192, 4096 + 100));
	DO(s, cairn_close(FS, fd));
	DO(s, cairn_digest(FS));
	DO(s, cairn_migrate(FS));
	DO(s, cairn_pwrite(FS, pm, "late", 4, 150000)); /* wherever it went */
	DO(s, cairn_close(FS, pm));
	DO(s, cairn_digest(FS));
	DO(s, cairn_truncate(FS, "/m1", 50000));
	DO(s, cairn_unlink(FS, "/m2"));
	DO(s, cairn_migrate(FS));
	for (int i = 10; i < 14; i++) {
		snprintf(path, sizeof(path), "/m%d", i);
		fd = DO(s, cairn_open(FS, path, O_CREAT | O_WRONLY, 0644));
		for (int j = 0; j < 2; j++) {
			tv_fill(buf, sizeof(buf), (uint64_t)(i * 10 + j));
			DO(s, tv_write_full(FS, fd, buf, sizeof(buf)));
		}
		DO(s, cairn_close(FS, fd));
	}
	DO(s, cairn_digest(FS));
	DO(s, cairn_migrate(FS));
	DO(s, cairn_unlink(FS, "/m3"));
	DO(s, cairn_migrate(FS));
	/* The workload did move data both ways and reached the last tier. */
	struct cairn_info in;
	TV_OK(cairn_info(FS, &in));
	if (!in.tiers[1].in_down || !in.tiers[2].in_down || !in.tiers[0].in_up)
		fail_msg(
		    "migration moved too little: ssd in %llu, hdd in %llu, fast up %llu blocks",
		    (unsigned long long)in.tiers[1].in_down,
		    (unsigned long long)in.tiers[2].in_down, (unsigned long long)in.tiers[0].in_up);
	scen_unmount(s);
	scen_check(s);
	scen_end(s);
}

/* Tier changes on a running volume: a tier holding data evacuated and
 * removed, a new one added and filled by migration, one grown into the
 * room its file has (declared to the recorder from the start).  Their manifests are
 * put back with the parts: a crash between the superblock's half of a
 * change and the manifest's is one of the states (see src/libfs/tiers.c). */
static void test_tier_changes(void **state)
{
	(void)state;
	struct scen *s = &current;
	struct cairn_mount_opts mo = {
	    .no_digest_thread = 1, .high_watermark = 30, .low_watermark = 10};
	struct scen_cfg cfg = {.tiered = 1, .mount = &mo, .tier_room = 2 * TV_MiB};
	scen_begin_cfg(s, "tierops", &cfg);
	note_manifest(s, 0);
	static unsigned char buf[32 * 1024];
	char path[64];
	for (int i = 0; i < 16; i++) {
		snprintf(path, sizeof(path), "/t%d", i);
		int fd = DO(s, cairn_open(FS, path, O_CREAT | O_WRONLY, 0644));
		for (int j = 0; j < 4; j++) {
			tv_fill(buf, sizeof(buf), (uint64_t)(i * 10 + j));
			DO(s, tv_write_full(FS, fd, buf, sizeof(buf)));
		}
		DO(s, cairn_close(FS, fd));
	}
	DO(s, cairn_digest(FS));
	DO(s, cairn_migrate(FS));
	struct cairn_info in;
	TV_OK(cairn_info(FS, &in));
	if (in.tiers[1].blocks - in.tiers[1].free_blocks == 0)
		fail_msg("tierops: nothing reached the ssd tier to evacuate");
	uint64_t left = 1;
	DO(s, cairn_tier_evacuate(FS, "ssd", 64 * 1024, &left)); /* a first batch */
	DO(s, cairn_tier_evacuate(FS, "ssd", 0, &left));
	TV_EQ(left, 0);
	DO(s, cairn_tier_remove(FS, "ssd"));
	note_manifest(s, s->ops[s->nops - 1].end);
	char tier3[PATH_MAX];
	snprintf(tier3, sizeof(tier3), "%s/new.tier", s->tv->root);
	struct cairn_tier_opts nt = {"new", tier3, 2 * TV_MiB, 0};
	DO(s, cairn_tier_add(FS, &nt, 0));
	note_manifest(s, s->ops[s->nops - 1].start + 1);
	for (int i = 16; i < 22; i++) {
		snprintf(path, sizeof(path), "/t%d", i);
		int fd = DO(s, cairn_open(FS, path, O_CREAT | O_WRONLY, 0644));
		for (int j = 0; j < 3; j++) {
			tv_fill(buf, sizeof(buf), (uint64_t)(i * 10 + j));
			DO(s, tv_write_full(FS, fd, buf, sizeof(buf)));
		}
		DO(s, cairn_close(FS, fd));
	}
	DO(s, cairn_digest(FS));
	DO(s, cairn_migrate(FS));
	DO(s, cairn_unlink(FS, "/t1"));
	DO(s, cairn_digest(FS));
	DO(s, cairn_migrate(FS));
	/* hdd takes the room its file has: its bitmap and checksums move. */
	DO(s, cairn_tier_grow(FS, "hdd", 6 * TV_MiB));
	note_manifest(s, s->ops[s->nops - 1].end);
	for (int i = 22; i < 26; i++) {
		snprintf(path, sizeof(path), "/t%d", i);
		int fd = DO(s, cairn_open(FS, path, O_CREAT | O_WRONLY, 0644));
		tv_fill(buf, sizeof(buf), (uint64_t)(i * 10));
		DO(s, tv_write_full(FS, fd, buf, sizeof(buf)));
		DO(s, cairn_close(FS, fd));
	}
	DO(s, cairn_digest(FS));
	DO(s, cairn_migrate(FS));
	TV_OK(cairn_info(FS, &in));
	if (in.tier_count != 4 || in.tiers[1].blocks != 0 || !in.tiers[3].in_down ||
	    in.tiers[2].blocks != 6 * TV_MiB / 4096 - 1)
		fail_msg("tierops: %u tiers, ssd %llu blocks, new tier took %llu blocks",
		         in.tier_count, (unsigned long long)in.tiers[1].blocks,
		         (unsigned long long)in.tiers[3].in_down);
	scen_unmount(s);
	scen_check(s);
	scen_end(s);
}

/* Which fence first follows a rewrite of the manifest: the hook reads
 * the manifest after each fence until it differs from `old`. */
struct manifest_watch {
	struct scen *s;
	char *old;
	size_t len;
	uint64_t at; /* that fence's position; 0 until seen */
};

static void manifest_watch_hook(void *arg, int part)
{
	(void)part;
	struct manifest_watch *w = arg;
	if (w->at)
		return;
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s", w->s->tv->dir, VOLUME_MANIFEST);
	struct stat st;
	if (stat(path, &st) != 0)
		return; /* between the rename's two names: looked at again */
	char *now = xrealloc(NULL, (size_t)st.st_size + 1);
	read_file(path, now, (uint64_t)st.st_size);
	if ((size_t)st.st_size != w->len || memcmp(now, w->old, w->len))
		w->at = recorder_position(w->s->r) - 1;
	free(now);
}

/* The fast tier grown to `size`, and its manifest put back exactly from
 * the first fence after the manifest's step: the crash states before it
 * have the manifest as it was (a longer part, unused), those after the
 * new one over the old superblock until the checkpoint commits the grow. */
static void fast_grow_watched(struct scen *s, uint64_t size)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s", s->tv->dir, VOLUME_MANIFEST);
	struct stat st;
	TV_OK(stat(path, &st));
	struct manifest_watch w = {.s = s, .len = (size_t)st.st_size};
	w.old = xrealloc(NULL, w.len + 1);
	read_file(path, w.old, w.len);
	recorder_set_fence_hook(s->r, manifest_watch_hook, &w);
	DO(s, cairn_tier_grow(FS, "fast", size));
	recorder_set_fence_hook(s->r, NULL, NULL);
	free(w.old);
	if (!w.at)
		fail_msg("%s: no fence after the fast grow's manifest step", s->name);
	note_manifest(s, w.at);
}

/* The fast tier grows twice while full of files being written and
 * removed: its part is extended in place, its bitmap and checksums move
 * to the new blocks (and, the second time, their first new places are
 * freed).  The part's file has the room from the start, declared to the
 * recorder; each grow's manifest is put back from the first fence after
 * its step (fast_grow_watched). */
static void test_fast_grow(void **state)
{
	(void)state;
	struct scen *s = &current;
	struct cairn_mount_opts mo = {.no_digest_thread = 1};
	struct scen_cfg cfg = {.mount = &mo, .fast_room = 4 * TV_MiB};
	scen_begin_cfg(s, "fastgrow", &cfg);
	note_manifest(s, 0);
	static unsigned char buf[32 * 1024];
	char path[64];
	for (int i = 0; i < 12; i++) {
		snprintf(path, sizeof(path), "/g%d", i);
		int fd = DO(s, cairn_open(FS, path, O_CREAT | O_WRONLY, 0644));
		for (int j = 0; j < 3; j++) {
			tv_fill(buf, sizeof(buf), (uint64_t)(i * 10 + j));
			DO(s, tv_write_full(FS, fd, buf, sizeof(buf)));
		}
		DO(s, cairn_close(FS, fd));
		if (i % 4 == 3)
			DO(s, cairn_digest(FS));
		if (i == 5) {
			DO(s, cairn_unlink(FS, "/g1")); /* a free waits in quarantine */
			fast_grow_watched(s, FAST_SIZE + 2 * TV_MiB);
		}
		if (i == 9) {
			DO(s, cairn_unlink(FS, "/g2"));
			DO(s, cairn_digest(FS));
			fast_grow_watched(s, FAST_SIZE + 4 * TV_MiB);
		}
	}
	int fd = DO(s, cairn_open(FS, "/g0", O_WRONLY));
	tv_fill(buf, 8192, 77);
	DO(s, tv_pwrite_full(FS, fd, buf, 8192, 20000)); /* in place, moved tables */
	DO(s, cairn_close(FS, fd));
	DO(s, cairn_digest(FS));
	struct cairn_info in;
	TV_OK(cairn_info(FS, &in));
	if (in.fast_blocks < (FAST_SIZE + 4 * TV_MiB) / 4096 - 512)
		fail_msg("fastgrow: the fast tier has %llu data blocks",
		         (unsigned long long)in.fast_blocks);
	scen_unmount(s);
	scen_check(s);
	scen_end(s);
}

/* Attributes and orphans: chmod, chown, utimens on files, directories and
 * symlinks; a file unlinked while open, written, then closed. */
static void test_attrs_orphans(void **state)
{
	(void)state;
	struct scen *s = &current;
	scen_begin(s, "attrs");
	static unsigned char buf[32 * 1024];

	int fd = DO(s, cairn_open(FS, "/x", O_CREAT | O_WRONLY, 0644));
	DO(s, cairn_pwrite(FS, fd, "data", 4, 0));
	DO(s, cairn_close(FS, fd));
	DO(s, cairn_mkdir(FS, "/y", 0755));
	DO(s, cairn_symlink(FS, "x", "/z"));
	DO(s, cairn_chmod(FS, "/x", 0600));
	DO(s, cairn_chmod(FS, "/y", 01711));
	DO(s, cairn_chown(FS, "/x", 1000, 1000));
	DO(s, cairn_chown(FS, "/y", (uid_t)-1, 5));
	struct timespec t1[2] = {{1000000000, 123456789}, {1500000000, 987654321}};
	DO(s, cairn_utimens(FS, "/x", t1));
	struct timespec t2[2] = {{0, UTIME_OMIT}, {0, UTIME_NOW}};
	DO(s, cairn_utimens(FS, "/y", t2));
	struct timespec t3[2] = {{42, 0}, {0, UTIME_OMIT}};
	DO(s, cairn_utimens(FS, "/z", t3)); /* follows the link to /x */
	/* Extended attributes: set, replace with another length, a value that
	 * grows the tree past one leaf, remove; then the file goes with them. */
	DO(s, cairn_setxattr(FS, "/x", "user.a", "first", 5, 0));
	DO(s, cairn_setxattr(FS, "/x", "user.a", "second value", 12, 2));
	DO(s, cairn_setxattr(FS, "/y", "user.b", "", 0, 1));
	for (int i = 0; i < 6; i++) {
		char name[32], value[900];
		snprintf(name, sizeof(name), "user.big-%d", i);
		memset(value, 'k' + i, sizeof(value));
		DO(s, cairn_setxattr(FS, "/x", name, value, sizeof(value), 0));
	}
	DO(s, cairn_removexattr(FS, "/x", "user.big-2"));
	DO(s, cairn_removexattr(FS, "/y", "user.b"));
	DO(s, cairn_chmod(FS, "/z", 0640));
	DO(s, cairn_digest(FS));

	/* An orphan: unlinked while open, written, released on close. */
	int fo = DO(s, cairn_open(FS, "/o", O_CREAT | O_RDWR, 0644));
	tv_fill(buf, 20 * 1024, 20);
	DO(s, tv_write_full(FS, fo, buf, 20 * 1024));
	DO(s, cairn_unlink(FS, "/o"));
	tv_fill(buf, 8 * 1024, 21);
	DO(s, tv_pwrite_full(FS, fo, buf, 8 * 1024, 40000));
	DO(s, cairn_ftruncate(FS, fo, 30000));
	DO(s, cairn_digest(FS)); /* the digest meets an open orphan */
	DO(s, cairn_close(FS, fo));

	/* Two orphans at once, one with two names, one released after a
	 * digest and one before. */
	int p1 = DO(s, cairn_open(FS, "/p1", O_CREAT | O_RDWR, 0644));
	int p2 = DO(s, cairn_open(FS, "/y/p2", O_CREAT | O_RDWR, 0644));
	tv_fill(buf, 12 * 1024, 22);
	DO(s, tv_write_full(FS, p1, buf, 12 * 1024));
	DO(s, tv_write_full(FS, p2, buf, 5000));
	DO(s, cairn_link(FS, "/y/p2", "/p2link"));
	DO(s, cairn_unlink(FS, "/p1"));
	DO(s, cairn_unlink(FS, "/y/p2"));
	DO(s, cairn_rename(FS, "/x", "/p2link", 0)); /* the last name of p2 goes */
	DO(s, cairn_digest(FS));
	DO(s, cairn_close(FS, p2));
	DO(s, tv_write_full(FS, p1, buf, 3000));
	DO(s, cairn_close(FS, p1));
	DO(s, cairn_chmod(FS, "/p2link", 0444));
	DO(s, cairn_chown(FS, "/p2link", 0, 0));
	scen_unmount(s);
	scen_check(s);
	scen_end(s);
}

/* A deterministic random mix of every operation over a small name space;
 * calls may fail (ENOENT, ENOTEMPTY, ...): a failed call is an operation
 * that must leave the state unchanged. */
static void test_mixed(void **state)
{
	(void)state;
	struct scen *s = &current;
	scen_begin(s, "mixed");
	static unsigned char buf[40 * 1024];
	static const char *dirs[] = {"/", "/m1/", "/m2/", "/m1/m3/"};
	static const char *dnames[] = {"/m1", "/m2", "/m1/m3"};
	uint64_t rng = 12345;
	int fds[4] = {-1, -1, -1, -1};
	char p1[32], p2[32], desc[96];
	for (int i = 0; i < 3; i++)
		DO(s, cairn_mkdir(FS, dnames[i], 0755));
	for (int step = 0; step < 560; step++) {
		uint64_t x = tv_splitmix(&rng);
		unsigned kind = (unsigned)(x % 20);
		snprintf(p1, sizeof(p1), "%sf%u", dirs[(x >> 8) % 4], (unsigned)((x >> 12) % 5));
		snprintf(p2, sizeof(p2), "%sf%u", dirs[(x >> 16) % 4], (unsigned)((x >> 20) % 5));
		int slot = (int)((x >> 24) % 4);
		size_t len = 1 + (size_t)((x >> 28) % (40 * 1024));
		off_t off = (off_t)((x >> 44) % (96 * 1024));
		tv_fill(buf, len, x);
		snprintf(desc, sizeof(desc), "mixed step %d kind %u %s %s", step, kind, p1, p2);
		switch (kind) {
		case 0:
		case 1:
		case 2:
			if (fds[slot] >= 0) {
				op_start(s, desc);
				cairn_pwrite(FS, fds[slot], buf, len, off);
				op_done(s, 1);
				break;
			}
			op_start(s, desc);
			fds[slot] = cairn_open(FS, p1, O_CREAT | O_RDWR, 0644);
			op_done(s, 1);
			break;
		case 3:
			if (fds[slot] >= 0) {
				op_start(s, desc);
				cairn_close(FS, fds[slot]);
				op_done(s, 1);
				fds[slot] = -1;
			}
			break;
		case 4:
			op_start(s, desc);
			cairn_truncate(FS, p1, (off_t)((x >> 32) % 70000));
			op_done(s, 1);
			break;
		case 5:
			op_start(s, desc);
			cairn_unlink(FS, p1);
			op_done(s, 1);
			break;
		case 6:
			op_start(s, desc);
			cairn_link(FS, p1, p2);
			op_done(s, 1);
			break;
		case 7:
		case 8:
			op_start(s, desc);
			cairn_rename(FS, p1, p2, 0);
			op_done(s, 1);
			break;
		case 9:
			op_start(s, desc);
			cairn_symlink(FS, p2, p1);
			op_done(s, 1);
			break;
		case 10:
			op_start(s, desc);
			cairn_chmod(FS, p1, (mode_t)((x >> 32) & 0777));
			op_done(s, 1);
			break;
		case 11:
			op_start(s, desc);
			cairn_chown(FS, p1, (uid_t)((x >> 32) % 3000), (gid_t)((x >> 40) % 3000));
			op_done(s, 1);
			break;
		case 12: {
			struct timespec t[2] = {
			    {(time_t)((x >> 20) % 2000000000), 0},
			    {(time_t)((x >> 24) % 2000000000), (long)((x >> 33) % 1000000000)}};
			op_start(s, desc);
			cairn_utimens(FS, p1, t);
			op_done(s, 1);
			break;
		}
		case 13: {
			int d = (int)((x >> 32) % 3);
			snprintf(p2, sizeof(p2), "%s/d%u", dnames[d], (unsigned)((x >> 36) % 3));
			op_start(s, desc);
			if ((x >> 40) & 1)
				cairn_mkdir(FS, p2, 0755);
			else
				cairn_rmdir(FS, p2);
			op_done(s, 1);
			break;
		}
		case 14: {
			/* Directory renames between the fixed directories' subdirs. */
			char a[64], b[64];
			snprintf(a, sizeof(a), "%s/d%u", dnames[(x >> 32) % 3],
			         (unsigned)((x >> 36) % 3));
			snprintf(b, sizeof(b), "%s/d%u", dnames[(x >> 40) % 3],
			         (unsigned)((x >> 44) % 3));
			op_start(s, desc);
			cairn_rename(FS, a, b, 0);
			op_done(s, 1);
			break;
		}
		case 15:
			if (fds[slot] >= 0) {
				op_start(s, desc);
				cairn_ftruncate(FS, fds[slot], (off_t)((x >> 32) % 50000));
				op_done(s, 1);
			}
			break;
		case 16:
			if (step % 4 == 0) {
				op_start(s, desc);
				cairn_digest(FS);
				op_done(s, 1);
			}
			break;
		default: /* 17..19: append-ish writes through a fresh descriptor */
			op_start(s, desc);
			{
				int f = cairn_open(FS, p1, O_WRONLY | O_APPEND);
				if (f >= 0) {
					cairn_write(FS, f, buf, len % 9000 + 1);
					cairn_close(FS, f);
				}
			}
			op_done(s, 1);
			break;
		}
	}
	for (int i = 0; i < 4; i++)
		if (fds[i] >= 0)
			DO(s, cairn_close(FS, fds[i]));
	scen_unmount(s);
	scen_check(s);
	scen_end(s);
}

/* ---- scenarios for the checkpoint's ordering and the file medium --------- */

/* Batch mode: nothing is durable before cairn_sync or cairn_fsync (only
 * those acknowledge), and inline digests checkpoint records that no commit
 * has made durable yet, data overwritten in place included.  A checkpoint
 * that digests records before making them durable leaves, at a crash in
 * its commit, data in place whose records are gone. */
static void test_batch(void **state)
{
	(void)state;
	struct scen *s = &current;
	/* The batch thread never wakes during the test: only syncs commit. */
	struct cairn_mount_opts mo = {.no_digest_thread = 1, .batch_ms = 3600 * 1000};
	scen_begin_opts(s, "batch", 0, &mo);
	static unsigned char buf[24 * 1024];
	int fd = DO(s, cairn_open(FS, "/bf", O_CREAT | O_RDWR, 0644));
	tv_fill(buf, sizeof(buf), 1);
	DO(s, tv_pwrite_full(FS, fd, buf, sizeof(buf), 0));
	DO(s, cairn_sync(FS));
	op_synced(s);
	DO(s, cairn_digest(FS)); /* the file's blocks now exist: later writes go in place */
	for (int round = 0; round < 4; round++) {
		for (int i = 0; i < 3; i++) {
			tv_fill(buf, 6000, (uint64_t)(round * 10 + i + 2));
			DO(s, tv_pwrite_full(FS, fd, buf, 6000, (off_t)i * 7000 + round * 300));
		}
		DO(s, cairn_mkdir(FS, round % 2 ? "/bd1" : "/bd0", 0755));
		if (round % 2 == 0) {
			DO(s, cairn_fsync(FS, fd));
			op_synced(s);
		}
		DO(s, cairn_digest(FS)); /* digests records no sync has committed */
		DO(s, cairn_rmdir(FS, round % 2 ? "/bd1" : "/bd0"));
	}
	DO(s, cairn_close(FS, fd));
	DO(s, cairn_sync(FS));
	op_synced(s);
	scen_unmount(s);
	scen_check(s);
	scen_end(s);
}

/* A writer that fills the log's free space while a checkpoint commits
 * without the volume lock (run from the recorder's fence hook). */
struct wrap_ctx {
	struct scen *s;
	int fd;
	int armed;       /* the next fence of the fast part runs the writer */
	int fail_after;  /* then: the next pwrite of the fast part fails (file medium) */
	unsigned writes; /* writes the writer made */
	unsigned seed;
};

static struct wrap_ctx wrap;

/* Room for one more write record below the digest threshold (100%)? */
static bool log_has_room(cairn_fs *fs, size_t len)
{
	struct cairn_fs *f = fs;
	pthread_rwlock_rdlock(&f->lock);
	bool ok =
	    log_room(f->log, len + 512) && log_used(f->log) + len + 4096 < log_capacity(f->log);
	pthread_rwlock_unlock(&f->lock);
	return ok;
}

static void *wrap_writer(void *arg)
{
	struct wrap_ctx *w = arg;
	struct scen *s = w->s;
	static unsigned char buf[6000];
	while (log_has_room(FS, sizeof(buf))) {
		tv_fill(buf, sizeof(buf), 5000 + w->seed++);
		DO(s, tv_pwrite_full(FS, w->fd, buf, sizeof(buf), (off_t)(w->seed % 11) * 4000));
		w->writes++;
	}
	return NULL;
}

static void wrap_hook(void *arg, int part)
{
	struct wrap_ctx *w = arg;
	if (part != 1 || !__atomic_exchange_n(&w->armed, 0, __ATOMIC_ACQ_REL))
		return;
	pthread_t t;
	if (pthread_create(&t, NULL, wrap_writer, w) != 0)
		fail_msg("pthread_create");
	/* The writer needs no lock the commit holds; should it block anyway,
	 * the commit goes on after a while and the writer finishes later. */
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 2;
	if (pthread_timedjoin_np(t, NULL, &until) != 0)
		pthread_join(t, NULL);
	if (w->fail_after) {
		pthread_mutex_lock(&kio.lock);
		kio.fail_part = 1;
		pthread_mutex_unlock(&kio.lock);
	}
}

/* Checkpoints without the volume lock while a writer wraps the small log
 * ring into the space before the checkpoint's head: that space is free
 * only once the new checkpoint slot is durable.  With fail = 1 (file
 * medium), a write of the commit fails after the writer ran: the failed
 * checkpoint must leave every acknowledged op recoverable, and the volume
 * must go on working. */
static void run_wrap(const char *name, int file_media, int fail)
{
	struct scen *s = &current;
	struct cairn_mount_opts mo = {.no_digest_thread = 1, .digest_threshold = 100};
	struct scen_cfg cfg = {.file_media = file_media, .mount = &mo};
	scen_begin_cfg(s, name, &cfg);
	struct cairn_fs *f = FS;
	static unsigned char buf[6000];
	wrap = (struct wrap_ctx){.s = s};
	wrap.fd = DO(s, cairn_open(FS, "/w", O_CREAT | O_RDWR, 0644));
	recorder_set_fence_hook(s->r, wrap_hook, &wrap);
	for (int round = 0; round < 2; round++) {
		/* Move the head to the middle of the ring, fill behind it. */
		while (log_used(f->log) < log_capacity(f->log) / 2) {
			tv_fill(buf, sizeof(buf), 100 * (uint64_t)round + wrap.seed++);
			DO(s, tv_pwrite_full(FS, wrap.fd, buf, sizeof(buf),
			                     (off_t)(wrap.seed % 13) * 3000));
		}
		TV_EQ(fs_checkpoint(f, 0), 0);
		for (int i = 0; i < 12; i++) {
			tv_fill(buf, sizeof(buf), 1000 * (uint64_t)round + wrap.seed++);
			DO(s, tv_pwrite_full(FS, wrap.fd, buf, sizeof(buf),
			                     (off_t)(wrap.seed % 13) * 3000));
		}
		wrap.armed = 1;
		wrap.fail_after = fail && round == 1;
		int rc = fs_checkpoint(f, 0); /* the hook runs the writer inside */
		if (wrap.armed)
			fail_msg("%s: the checkpoint made no fence on the fast part", name);
		if (fail && round == 1 && rc == 0)
			fail_msg("%s: the injected write error did not fail the checkpoint", name);
		if (!(fail && round == 1))
			TV_EQ(rc, 0);
	}
	if (wrap.writes < 10)
		fail_msg("%s: the writer made only %u writes during the commits", name,
		         wrap.writes);
	recorder_set_fence_hook(s->r, NULL, NULL);
	DO(s, cairn_digest(FS));
	DO(s, cairn_close(FS, wrap.fd));
	scen_unmount(s);
	scen_check(s);
	scen_end(s);
}

static void test_wrap(void **state)
{
	(void)state;
	run_wrap("wrap", 0, 0);
}

static void test_file_wrap_fail(void **state)
{
	(void)state;
	run_wrap("filewrap", 1, 1);
}

/* The file medium, recorded at the kernel interface: a small mix of data
 * and name operations with digests.  Whatever the medium believes, only
 * what fdatasync covered survives. */
static void test_file_medium(void **state)
{
	(void)state;
	struct scen *s = &current;
	struct scen_cfg cfg = {.file_media = 1};
	scen_begin_cfg(s, "file", &cfg);
	static unsigned char buf[20 * 1024];
	DO(s, cairn_mkdir(FS, "/fd", 0755));
	int fd = DO(s, cairn_open(FS, "/fd/a", O_CREAT | O_RDWR, 0644));
	for (int i = 0; i < 6; i++) {
		tv_fill(buf, sizeof(buf), (uint64_t)i);
		DO(s, tv_pwrite_full(FS, fd, buf, 5000 + (size_t)i * 2000, (off_t)i * 6000));
		if (i == 3)
			DO(s, cairn_digest(FS));
	}
	DO(s, cairn_rename(FS, "/fd/a", "/fd/b", 0));
	DO(s, cairn_symlink(FS, "b", "/fd/l"));
	DO(s, cairn_ftruncate(FS, fd, 9000));
	DO(s, cairn_digest(FS));
	tv_fill(buf, 3000, 99);
	DO(s, tv_pwrite_full(FS, fd, buf, 3000, 4000)); /* in place */
	DO(s, cairn_close(FS, fd));
	DO(s, cairn_unlink(FS, "/fd/l"));
	DO(s, cairn_digest(FS));
	scen_unmount(s);
	scen_check(s);
	scen_end(s);
}

/* Group commit on the file medium: while one thread's fdatasync is in the
 * kernel, another appends a record and, once that sync has returned,
 * commits it.  The first sync does not cover the record, so the commit
 * must sync again; a durable mark that counts records appended during the
 * sync lets the commit return with the record unsynced.  The committing
 * thread here is the batch thread; the main thread's cairn_fsync
 * acknowledges. */
static void test_file_group_commit(void **state)
{
	(void)state;
	struct scen *s = &current;
	struct cairn_mount_opts mo = {.no_digest_thread = 1, .batch_ms = 2};
	struct scen_cfg cfg = {.file_media = 1, .mount = &mo};
	scen_begin_cfg(s, "groupcommit", &cfg);
	static unsigned char buf[3000];
	int fa = DO(s, cairn_open(FS, "/ga", O_CREAT | O_RDWR, 0644));
	int fb = DO(s, cairn_open(FS, "/gb", O_CREAT | O_RDWR, 0644));
	unsigned caught = 0;
	for (int i = 0; i < 8; i++) {
		pthread_mutex_lock(&kio.lock);
		kio.paused = kio.released = kio.returned = 0;
		kio.pause_part = 0; /* the log */
		pthread_mutex_unlock(&kio.lock);
		tv_fill(buf, sizeof(buf), (uint64_t)i);
		DO(s, tv_pwrite_full(FS, fa, buf, sizeof(buf), (off_t)i * 3000));
		/* The batch thread commits "a" and stops inside its fdatasync. */
		if (!kio_wait(&kio.paused))
			fail_msg("groupcommit: the batch thread made no fdatasync");
		tv_fill(buf, sizeof(buf), 100 + (uint64_t)i);
		DO(s, tv_pwrite_full(FS, fb, buf, sizeof(buf), (off_t)i * 3000));
		pthread_mutex_lock(&kio.lock);
		kio.released = 1;
		pthread_cond_broadcast(&kio.cond);
		pthread_mutex_unlock(&kio.lock);
		kio_wait(&kio.returned);
		usleep(3000); /* the batch thread marks what its sync covered */
		DO(s, cairn_fsync(FS, fb));
		op_synced(s);
		caught++;
	}
	DO(s, cairn_close(FS, fa));
	DO(s, cairn_close(FS, fb));
	if (caught == 0)
		fail_msg("groupcommit: no interleaving was made");
	scen_unmount(s);
	scen_check(s);
	scen_end(s);
}

/* Sync mode with a checkpoint racing a writer: the writer's record is
 * appended and applied, the volume lock dropped, and the writer stopped
 * just before its commit (the before_commit hook: nothing of the record is
 * durable yet).  Meanwhile a checkpoint runs on another thread: the digest
 * thread itself in odd rounds, cairn_digest (the same unlocked checkpoint)
 * in even ones.  A checkpoint that digests records before making them
 * durable puts the write's bytes in place and moves the log head past a
 * record that a crash may still lose: the volume then holds the write's
 * data without its size and times, or a head past what recovery finds. */
static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t writer; /* only this thread stops */
	int armed, paused, released;
} race = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

static void race_before_commit(struct cairn_fs *fs)
{
	(void)fs;
	pthread_mutex_lock(&race.lock);
	if (race.armed && pthread_equal(race.writer, pthread_self())) {
		race.armed = 0;
		race.paused = 1;
		pthread_cond_broadcast(&race.cond);
		while (!race.released)
			pthread_cond_wait(&race.cond, &race.lock);
	}
	pthread_mutex_unlock(&race.lock);
}

struct race_ctx {
	struct scen *s;
	int fd;
	int round;
};

static void *race_writer(void *arg)
{
	struct race_ctx *w = arg;
	struct scen *s = w->s;
	static unsigned char buf[9000];
	switch (w->round % 4) {
	case 0: /* in place, over digested blocks */
		tv_fill(buf, 6000, 300 + (uint64_t)w->round);
		DO(s, tv_pwrite_full(FS, w->fd, buf, 6000, (off_t)w->round * 700));
		break;
	case 1: /* past EOF: new blocks, a new size */
		tv_fill(buf, sizeof(buf), 300 + (uint64_t)w->round);
		DO(s,
		   tv_pwrite_full(FS, w->fd, buf, sizeof(buf), 24 * 1024 + (off_t)w->round * 4096));
		break;
	case 2:
		DO(s, cairn_ftruncate(FS, w->fd, 30000 - (off_t)w->round * 1000));
		break;
	default:
		DO(s, cairn_mkdir(FS, w->round % 8 == 3 ? "/rd" : "/rd/sub", 0755));
		break;
	}
	return NULL;
}

/* Starts race_writer on w and returns when it stands in the hook. */
static void race_start(struct race_ctx *w)
{
	pthread_mutex_lock(&race.lock);
	race.paused = race.released = 0;
	race.armed = 1;
	if (pthread_create(&race.writer, NULL, race_writer, w) != 0)
		fail_msg("pthread_create");
	while (!race.paused)
		pthread_cond_wait(&race.cond, &race.lock);
	pthread_mutex_unlock(&race.lock);
}

/* Lets the writer go on, and waits for its op to end. */
static void race_finish(void)
{
	pthread_mutex_lock(&race.lock);
	race.released = 1;
	pthread_cond_broadcast(&race.cond);
	pthread_mutex_unlock(&race.lock);
	pthread_join(race.writer, NULL);
}

static bool log_all_digested(struct cairn_fs *f)
{
	pthread_rwlock_rdlock(&f->lock);
	bool all = log_head_seq(f->log) == log_tail_seq(f->log);
	pthread_rwlock_unlock(&f->lock);
	return all;
}

/* Asks the digest thread for checkpoints until one has digested every
 * record appended so far. */
static void digest_thread_checkpoint(struct cairn_fs *f)
{
	for (int tries = 0; tries < 100 && !log_all_digested(f); tries++) {
		pthread_mutex_lock(&f->dstate_lock);
		uint64_t gen = f->checkpoint_gen;
		f->digest_requested = 1;
		pthread_cond_broadcast(&f->dstate_cond);
		while (f->checkpoint_gen == gen)
			pthread_cond_wait(&f->dstate_cond, &f->dstate_lock);
		int rc = f->digest_error;
		pthread_mutex_unlock(&f->dstate_lock);
		if (rc)
			fail_msg("the digest thread's checkpoint failed: %s", tv_errname(-rc));
	}
}

static void run_sync_race(const char *name, int file_media)
{
	struct scen *s = &current;
	/* The digest thread runs; writers never ask it for a digest (threshold
	 * 100%): it digests when asked here, or after seconds of idleness. */
	struct cairn_mount_opts mo = {.digest_threshold = 100};
	struct scen_cfg cfg = {.file_media = file_media, .mount = &mo};
	scen_begin_cfg(s, name, &cfg);
	struct cairn_fs *f = FS;
	if (!f->digest_thread_running)
		fail_msg("%s: no digest thread", name);
	static unsigned char buf[24 * 1024];
	struct race_ctx w = {.s = s};
	w.fd = DO(s, cairn_open(FS, "/r", O_CREAT | O_RDWR, 0644));
	tv_fill(buf, sizeof(buf), 1);
	DO(s, tv_pwrite_full(FS, w.fd, buf, sizeof(buf), 0));
	DO(s, cairn_digest(FS)); /* the blocks exist: later writes go in place */
	f->before_commit = race_before_commit;
	for (w.round = 0; w.round < 8; w.round++) {
		race_start(&w);
		if (w.round % 2)
			digest_thread_checkpoint(f);
		else
			TV_OK(cairn_digest(FS));
		if (!log_all_digested(f))
			fail_msg("%s: round %d: the checkpoint left the log undigested", name,
			         w.round);
		race_finish();
	}
	f->before_commit = NULL;
	DO(s, cairn_close(FS, w.fd));
	DO(s, cairn_digest(FS));
	scen_unmount(s);
	scen_check(s);
	scen_end(s);
}

struct digester {
	struct cairn_fs *fs;
	int rc, done;
};

static void *digester_main(void *arg)
{
	struct digester *d = arg;
	d->rc = cairn_digest(d->fs);
	__atomic_store_n(&d->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* A sync-mode writer stopped after its record is reserved and applied,
 * before its bytes are in the log (log_fill): a checkpoint started on
 * another thread must wait for the bytes, not digest what the log held
 * there before. */
static void run_fill_race(const char *name)
{
	struct scen *s = &current;
	struct cairn_mount_opts mo = {.digest_threshold = 100};
	struct scen_cfg cfg = {.mount = &mo};
	scen_begin_cfg(s, name, &cfg);
	struct cairn_fs *f = FS;
	static unsigned char buf[24 * 1024];
	struct race_ctx w = {.s = s};
	w.fd = DO(s, cairn_open(FS, "/r", O_CREAT | O_RDWR, 0644));
	tv_fill(buf, sizeof(buf), 1);
	DO(s, tv_pwrite_full(FS, w.fd, buf, sizeof(buf), 0));
	DO(s, cairn_digest(FS));
	f->before_fill = race_before_commit;
	static const int rounds[] = {0, 1, 4, 5}; /* the writes of race_writer */
	for (size_t k = 0; k < sizeof(rounds) / sizeof(rounds[0]); k++) {
		w.round = rounds[k];
		race_start(&w);
		struct digester d = {.fs = f};
		pthread_t dt;
		if (pthread_create(&dt, NULL, digester_main, &d) != 0)
			fail_msg("pthread_create");
		usleep(30000);
		if (__atomic_load_n(&d.done, __ATOMIC_ACQUIRE))
			fail_msg("%s: round %d: the checkpoint did not wait for a write's bytes",
			         name, w.round);
		race_finish();
		pthread_join(dt, NULL);
		if (d.rc)
			fail_msg("%s: round %d: cairn_digest failed", name, w.round);
	}
	f->before_fill = NULL;
	DO(s, cairn_close(FS, w.fd));
	DO(s, cairn_digest(FS));
	scen_unmount(s);
	scen_check(s);
	scen_end(s);
}

static void test_fill_race(void **state)
{
	(void)state;
	run_fill_race("fillrace");
}

static void test_sync_race(void **state)
{
	(void)state;
	run_sync_race("syncrace", 0);
}

static void test_file_sync_race(void **state)
{
	(void)state;
	run_sync_race("filerace", 1);
}

/* ---- the digest ahead of a checkpoint ---------------------------------------
 *
 * The digest thread (and cairn_digest with it) stores most of the log's
 * data in passes, letting writers in between (digest.c, digest_ahead).
 * Here each pass stores one block, and between passes the workload goes
 * on: it overwrites bytes a pass stored and bytes still to store, shrinks
 * and grows files being digested, unlinks one whose pieces are not stored
 * yet, renames, creates.  Every fence of the passes, and of the ops in
 * between, is a crash point checked against the model.
 */

static struct {
	struct scen *s;
	int step, fa, fb;
} ahead;

static void ahead_step(struct cairn_fs *f)
{
	(void)f;
	struct scen *s = ahead.s;
	static unsigned char blk[12 * 1024];
	tv_fill(blk, sizeof(blk), 100 + (unsigned)ahead.step);
	switch (ahead.step++) {
	case 0: /* over stored and unstored bytes of one file */
		DO(s, tv_pwrite_full(FS, ahead.fa, blk, 6000, 1000));
		break;
	case 1: /* a file being digested shrinks ... */
		DO(s, cairn_ftruncate(FS, ahead.fb, 5000));
		break;
	case 2: /* ... and is written past its end: a hole between */
		DO(s, tv_pwrite_full(FS, ahead.fb, blk, 3000, 9000));
		break;
	case 3:
		DO(s, cairn_unlink(FS, "/c"));
		break;
	case 4:
		DO(s, cairn_rename(FS, "/a", "/a2", 0));
		break;
	case 5: {
		int fd = DO(s, cairn_open(FS, "/d", O_CREAT | O_RDWR, 0644));
		DO(s, tv_pwrite_full(FS, fd, blk, 8192, 4096));
		DO(s, cairn_close(FS, fd));
		break;
	}
	case 6:
		DO(s, cairn_ftruncate(FS, ahead.fa, 40000));
		break;
	case 7:
		DO(s, tv_pwrite_full(FS, ahead.fa, blk, 4096, 36864));
		break;
	default:
		break;
	}
}

static void run_digest_ahead(const char *name, int file_media)
{
	struct scen *s = &current;
	/* Writers never ask for a digest: not by the log's fill (threshold
	 * 100%), nor by the metadata a checkpoint would write against the
	 * journal's capacity (a fast part twice the usual size has a journal
	 * twice as large).  Only cairn_digest digests. */
	struct cairn_mount_opts mo = {.digest_threshold = 100};
	struct scen_cfg cfg = {.file_media = file_media, .fast_size = 2 * FAST_SIZE, .mount = &mo};
	scen_begin_cfg(s, name, &cfg);
	struct cairn_fs *f = FS;
	if (!f->digest_thread_running)
		fail_msg("%s: no digest thread", name);
	static unsigned char buf[32 * 1024];
	tv_fill(buf, sizeof(buf), 3);
	ahead.s = s;
	ahead.step = 0;
	ahead.fa = DO(s, cairn_open(FS, "/a", O_CREAT | O_RDWR, 0644));
	ahead.fb = DO(s, cairn_open(FS, "/b", O_CREAT | O_RDWR, 0644));
	int fc = DO(s, cairn_open(FS, "/c", O_CREAT | O_RDWR, 0644));
	DO(s, tv_pwrite_full(FS, ahead.fa, buf, 20000, 0));
	DO(s, tv_pwrite_full(FS, ahead.fb, buf + 7, 30000, 100));
	DO(s, tv_pwrite_full(FS, fc, buf, 16384, 0));
	DO(s, cairn_close(FS, fc));
	DO(s, tv_pwrite_full(FS, ahead.fa, buf + 3, 8192, 12288));
	f->digest_pass_blocks = 1;
	f->between_passes = ahead_step;
	TV_OK(cairn_digest(FS));
	f->between_passes = NULL;
	if (ahead.step < 8)
		fail_msg("%s: %d steps ran between passes, not 8", name, ahead.step);
	if (!log_all_digested(f))
		fail_msg("%s: the checkpoint left the log undigested", name);
	DO(s, tv_pwrite_full(FS, ahead.fb, buf, 4096, 0));
	DO(s, cairn_close(FS, ahead.fa));
	DO(s, cairn_close(FS, ahead.fb));
	TV_OK(cairn_digest(FS));
	scen_unmount(s);
	scen_check(s);
	scen_end(s);
}

static void test_digest_ahead(void **state)
{
	(void)state;
	run_digest_ahead("ahead", 0);
}

/* On the file medium the log is not mapped: blocks are copied, not stored
 * from the log in place. */
static void test_file_digest_ahead(void **state)
{
	(void)state;
	run_digest_ahead("fileahead", 1);
}

/* ---- client logs ------------------------------------------------------------
 *
 * A client process writes file data into a log of its own and the daemon
 * ingests its records into the volume's log (src/libfs/clients.h).  The
 * claims checked at every fence: a client record that was durable when its
 * write returned survives a crash of the daemon, once, in order, whole;
 * a record the daemon skipped (written as its grant was revoked, then
 * written again through the daemon) or refused (forged) is never applied;
 * nothing a checkpoint digested is applied again from a client log.
 *
 * Both sides run in this process.  The daemon is the recorded mount, driven
 * through clients.h as the server drives it: clog_start with no socket,
 * grants, ingest before each of its own writes, revocation by an open of
 * the FUSE mount (clients_front_open), clog_end.  The client is the real
 * client code (client_log.c) on the descriptors clog_start gave.  The link
 * wraps two of its calls (tests/CMakeLists.txt): media_open_given, so that
 * the client's stores to its log are recorded as its slot's part
 * (clog_recorder_part), and client_sync, its round trip to the daemon,
 * which here calls clog_sync and may then revoke the grant, as an open
 * through the mount racing the client would.
 *
 * The oracle is a model of the files' bytes: a client's write changes it
 * when client_log_write returns, whether or not the daemon has ingested
 * the record yet (the client was told it is durable).  Modification times
 * are left out: a record applied by recovery gets the recovery's time.
 * A read-only mount does not apply client logs (it says so), so the crash
 * states get no read-only mount here.
 */
#define CK_MAX (64 * 1024) /* bytes a model file may hold */

struct ck_file {
	const char *path;
	int exists;
	int fd;         /* the daemon's descriptor */
	uint64_t ino;   /* what grants and records name */
	uint32_t grant; /* made in a client's log: the grant of its inode */
	uint64_t size;
	uint8_t data[CK_MAX];
};

/* A client process: its log and the daemon's side of it. */
struct ck_client {
	int n; /* for messages */
	int slot;
	uint8_t log_id[16];
	struct clog *c;
	struct client_log *l;
	struct client_grant g;
	struct ck_file *f;  /* the file its grant is of */
	int revoke_in_sync; /* the next round trip is followed by a revocation of f */
};

#define CK_FILES 5

static struct {
	struct ck_file file[CK_FILES];
	/* The next fence of part arm_part revokes the grants of arm_file. */
	int arm_part;
	struct ck_file *arm_file;
	cairn_fs *fs;
	struct recorder *r;
} ck;

/* The slot of a client log from the name of its file, "<log>.client<N>". */
static int ck_fd_slot(int fd)
{
	char link[64], target[PATH_MAX];
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, target, sizeof(target) - 1);
	target[n > 0 ? n : 0] = 0;
	const char *dot = strrchr(target, '.');
	int slot = -1;
	if (!dot || sscanf(dot, ".client%d", &slot) != 1)
		fail_msg("clog: %s is not a client log", target);
	return slot;
}

/* The client's media: recorded as the part of its slot's log. */
int __real_media_open_given(struct media **out, enum media_kind kind, int fd, const char *name,
                            char *err, size_t errlen);
int __wrap_media_open_given(struct media **out, enum media_kind kind, int fd, const char *name,
                            char *err, size_t errlen);
int __wrap_media_open_given(struct media **out, enum media_kind kind, int fd, const char *name,
                            char *err, size_t errlen)
{
	int rc = __real_media_open_given(out, kind, fd, name, err, errlen);
	if (rc == 0 && ck.r)
		media_set_recorder(*out, ck.r, clog_recorder_part(ck_fd_slot(fd)));
	return rc;
}

/* The client's round trip (CTL_CLOG_SYNC), answered as serve_clog does. */
int __wrap_client_sync(struct client *cp, uint64_t seq, uint64_t want, struct ctl_clog_sync *out);
int __wrap_client_sync(struct client *cp, uint64_t seq, uint64_t want, struct ctl_clog_sync *out)
{
	struct ck_client *cc = (struct ck_client *)cp;
	memset(out, 0, sizeof(*out));
	int ingested = 0;
	int rc = clog_sync(ck.fs, cc->c, seq, want, &out->credit, &out->granted, &out->head_off,
	                   &out->head_seq, &ingested);
	out->ingested = ingested;
	if (cc->revoke_in_sync) {
		/* The mount opens the file while the client is between its
		 * look at the grant and its append. */
		cc->revoke_in_sync = 0;
		clients_front_open(ck.fs, cc->f->ino, 1);
	}
	if (rc) {
		errno = -rc;
		return -1;
	}
	return 0;
}

/* The mount opens the file while the client's record is being made
 * durable: after the fence of its commit, before the client looks at its
 * grant again. */
static void ck_fence_hook(void *arg, int part)
{
	(void)arg;
	if (part != ck.arm_part)
		return;
	ck.arm_part = -1;
	clients_front_open(ck.fs, ck.arm_file->ino, 1);
}

static void ck_line(char *buf, size_t len, size_t *n, const char *path, int exists, uint64_t size,
                    const void *data)
{
	if (*n >= len)
		return;
	if (exists)
		*n += (size_t)snprintf(buf + *n, len - *n,
		                       "%s size=%" PRIu64 " xxh3=%016" PRIx64 "\n", path, size,
		                       (uint64_t)XXH3_64bits(data, size));
	else
		*n += (size_t)snprintf(buf + *n, len - *n, "%s -\n", path);
}

static char *ck_oracle(struct scen *s)
{
	(void)s;
	char buf[1024];
	size_t n = 0;
	for (int i = 0; i < CK_FILES && ck.file[i].path; i++)
		ck_line(buf, sizeof(buf), &n, ck.file[i].path, ck.file[i].exists, ck.file[i].size,
		        ck.file[i].data);
	return strdup(buf);
}

/* The files as the volume holds them: the same lines as ck_oracle. */
static char *ck_read(cairn_fs *fs, int i, uint8_t *data, uint64_t *size, char *err, size_t len)
{
	struct stat st;
	err[0] = 0;
	if (cairn_stat(fs, ck.file[i].path, &st) != 0) {
		if (errno != ENOENT)
			snprintf(err, len, "%s ERROR(stat:%s)\n", ck.file[i].path,
			         tv_errname(errno));
		return NULL;
	}
	if ((uint64_t)st.st_size > CK_MAX) {
		snprintf(err, len, "%s size=%lld (too large)\n", ck.file[i].path,
		         (long long)st.st_size);
		return err;
	}
	int fd = cairn_open(fs, ck.file[i].path, O_RDONLY);
	ssize_t got = fd < 0 ? -1 : cairn_pread(fs, fd, data, (size_t)st.st_size, 0);
	if (got != (ssize_t)st.st_size)
		snprintf(err, len, "%s ERROR(read:%s)\n", ck.file[i].path, tv_errname(errno));
	if (fd >= 0)
		cairn_close(fs, fd);
	*size = (uint64_t)st.st_size;
	return err[0] ? err : (char *)data;
}

static char *ck_recovered(cairn_fs *fs)
{
	static uint8_t data[CK_MAX];
	char buf[1024], err[256];
	size_t n = 0;
	for (int i = 0; i < CK_FILES && ck.file[i].path; i++) {
		uint64_t size = 0;
		char *r = ck_read(fs, i, data, &size, err, sizeof(err));
		if (r == err && n < sizeof(buf))
			n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s", err);
		else if (n < sizeof(buf))
			ck_line(buf, sizeof(buf), &n, ck.file[i].path, r != NULL, size, data);
	}
	return strdup(buf);
}

/* With every acknowledged record ingested, the daemon reads the model. */
static void ck_verify(struct scen *s, const char *after)
{
	static uint8_t data[CK_MAX];
	char err[256];
	for (int i = 0; i < CK_FILES && ck.file[i].path; i++) {
		struct ck_file *f = &ck.file[i];
		uint64_t size = 0;
		char *r = ck_read(s->fs, i, data, &size, err, sizeof(err));
		if (!f->exists && !r)
			continue;
		if (!f->exists || r == err || !r || size != f->size ||
		    memcmp(data, f->data, size) != 0)
			report(s,
			       "clog: after %s the daemon reads %s (%" PRIu64
			       " bytes, model %" PRIu64 ") %s, not what was written",
			       after, f->path, size, f->size,
			       r == err          ? err
			       : !r              ? "missing"
			       : size != f->size ? "of another size"
			                         : "with other bytes");
	}
}

static void ck_model(struct ck_file *f, const uint8_t *buf, size_t len, uint64_t off)
{
	if (off == CLOG_AT_END)
		off = f->size;
	if (off + len > CK_MAX)
		fail_msg("clog: a write past the model's %d bytes", CK_MAX);
	memcpy(f->data + off, buf, len);
	if (off + len > f->size)
		f->size = off + len;
}

/* A write through the daemon: it ingests first, as before any request. */
static void ck_daemon_pwrite(struct scen *s, struct ck_file *f, const uint8_t *buf, size_t len,
                             uint64_t off)
{
	int rc = clients_ingest(s->fs);
	if (rc)
		fail_msg("clog: clients_ingest: %s", tv_errname(-rc));
	if (off == CLOG_AT_END) {
		struct stat st;
		TV_OK(cairn_fstat(s->fs, f->fd, &st));
		off = (uint64_t)st.st_size;
	}
	TV_OK(tv_pwrite_full(s->fs, f->fd, buf, len, (off_t)off));
}

static void ck_daemon_write(struct scen *s, struct ck_file *f, uint64_t seed, size_t len,
                            uint64_t off)
{
	static uint8_t buf[CK_MAX];
	tv_fill(buf, len, seed);
	char desc[96];
	snprintf(desc, sizeof(desc), "daemon: ingest, pwrite %zu bytes at %" PRIu64 " of %s", len,
	         off, f->path);
	op_start(s, desc);
	ck_daemon_pwrite(s, f, buf, len, off);
	ck_model(f, buf, len, off);
	op_done(s, 1);
	ck_verify(s, desc);
}

/* A write by client cc under its grant (off may be CLOG_AT_END).  expect:
 * what client_log_write should return (1: in the log, 0: the client had
 * to write through the daemon), or -1 for either. */
static void ck_client_write(struct scen *s, struct ck_client *cc, uint64_t seed, size_t len,
                            uint64_t off, int expect)
{
	static uint8_t buf[CK_MAX];
	tv_fill(buf, len, seed);
	char desc[96], at[32];
	if (off == CLOG_AT_END)
		snprintf(at, sizeof(at), "the end");
	else
		snprintf(at, sizeof(at), "%" PRIu64, off);
	snprintf(desc, sizeof(desc), "client %d: write %zu bytes at %s of %s", cc->n, len, at,
	         cc->f->path);
	op_start(s, desc);
	/* Gathered from two pieces, as a writev is: one record all the same. */
	struct iovec iov[2] = {{buf, len / 2}, {buf + len / 2, len - len / 2}};
	int rc = client_log_write((struct client *)cc, cc->l, &cc->g, cc->f->ino, iov, 2, len, off);
	if (rc < 0)
		fail_msg("clog: %s: %s", desc, tv_errname(errno));
	if (rc == 0)
		ck_daemon_pwrite(s, cc->f, buf, len, off); /* as the client does then */
	ck_model(cc->f, buf, len, off);
	op_done(s, 1);
	if (expect >= 0 && rc != expect)
		report(s, "clog: %s: client_log_write returned %d, not %d", desc, rc, expect);
}

static void ck_model_truncate(struct ck_file *f, uint64_t size)
{
	if (size > CK_MAX)
		fail_msg("clog: a truncate past the model's %d bytes", CK_MAX);
	if (size > f->size)
		memset(f->data + f->size, 0, size - f->size);
	else
		memset(f->data + size, 0, f->size - size);
	f->size = size;
}

/* An ftruncate by client cc under its grant; expect as for a write. */
static void ck_client_truncate(struct scen *s, struct ck_client *cc, uint64_t size, int expect)
{
	char desc[96];
	snprintf(desc, sizeof(desc), "client %d: truncate %s to %" PRIu64, cc->n, cc->f->path,
	         size);
	op_start(s, desc);
	int rc = client_log_truncate((struct client *)cc, cc->l, &cc->g, cc->f->ino, size);
	if (rc < 0)
		fail_msg("clog: %s: %s", desc, tv_errname(errno));
	if (rc == 0) { /* as the client does then */
		int irc = clients_ingest(s->fs);
		if (irc)
			fail_msg("clog: clients_ingest: %s", tv_errname(-irc));
		TV_OK(cairn_ftruncate(s->fs, cc->f->fd, (off_t)size));
	}
	ck_model_truncate(cc->f, size);
	op_done(s, 1);
	if (expect >= 0 && rc != expect)
		report(s, "clog: %s: client_log_truncate returned %d, not %d", desc, rc, expect);
}

/* The daemon's look at the logs between requests (its catch-up thread):
 * records applied in batches, copied into the volume's log after the
 * lock is let go, made durable, and each client told where its log now
 * starts (it may then write over what came before). */
static void ck_ingest(struct scen *s)
{
	op_start(s, "clients_catch_up");
	int rc = clients_catch_up(s->fs);
	op_done(s, 1);
	if (rc < 0)
		fail_msg("clog: clients_catch_up: %s", tv_errname(-rc));
	ck_verify(s, "clients_catch_up");
}

static void ck_create(struct scen *s, struct ck_file *f, const char *path)
{
	f->path = path;
	op_start(s, path);
	f->fd = TV_OK(cairn_open(s->fs, path, O_CREAT | O_EXCL | O_RDWR, 0644));
	f->exists = 1;
	op_done(s, 1);
	struct stat st;
	TV_OK(cairn_fstat(s->fs, f->fd, &st));
	f->ino = st.st_ino;
}

/* A client attaches: the daemon makes its log, the client maps it.
 * no_credit: the client starts with none (the daemon had no room then),
 * so that its first write asks for some. */
static void ck_start(struct scen *s, struct ck_client *cc, int n, int no_credit)
{
	cc->n = n;
	op_start(s, "clog_start");
	struct clog_start st;
	int rc = clog_start(s->fs, -1, getuid(), getgid(), &cc->c, &st);
	if (rc)
		fail_msg("clog: clog_start: %s", tv_errname(-rc));
	cc->slot = ck_fd_slot(st.log_fd);
	/* Recorded only if new to this recording (clients.h). */
	uint64_t size, born, gone;
	if (recorder_part_span(s->r, clog_recorder_part(cc->slot) + 1, &size, &born, &gone) ||
	    born < s->ops[s->nops].start || gone != UINT64_MAX)
		fail_msg("clog: slot %d is not recorded", cc->slot);
	memcpy(cc->log_id, st.log_id, 16);
	struct ctl_clog info;
	memset(&info, 0, sizeof(info));
	memcpy(info.log_id, st.log_id, 16);
	info.media_kind = st.media_kind;
	info.credit = no_credit ? 0 : st.credit;
	cc->l = client_log_open(st.log_fd, st.state_fd, &info);
	close(st.log_fd);
	close(st.state_fd);
	op_done(s, 1);
	if (!cc->l)
		fail_msg("clog: client_log_open failed");
	if (!no_credit && st.credit == 0)
		fail_msg("clog: the client got no credit");
}

static void ck_grant(struct scen *s, struct ck_client *cc, struct ck_file *f)
{
	op_start(s, "clog_grant");
	uint32_t index = 0;
	uint64_t epoch = 0;
	int rc = clog_grant(s->fs, cc->c, f->ino, &index, &epoch);
	op_done(s, 1);
	if (rc)
		fail_msg("clog: clog_grant of %s to client %d: %s", f->path, cc->n,
		         tv_errname(-rc));
	cc->g.index = index;
	cc->g.epoch = epoch;
	cc->f = f;
}

/* The client closes its descriptor of the file it holds a grant of. */
static void ck_ungrant(struct scen *s, struct ck_client *cc)
{
	op_start(s, "clog_ungrant");
	clog_ungrant(s->fs, cc->c, cc->f->ino);
	op_done(s, 1);
	cc->g.index = CLOG_GRANTS;
}

/* An open (delta 1) or a release (-1) of f through the FUSE mount. */
static void ck_front(struct scen *s, struct ck_file *f, int delta)
{
	op_start(s, delta > 0 ? "clients_front_open +1" : "clients_front_open -1");
	clients_front_open(s->fs, f->ino, delta);
	op_done(s, 1);
}

/* A forged record in cc's log: an epoch never granted, over bytes of f.
 * Written through a log of its own on the file, after cc's last record
 * (cc writes no more). */
/* A record forged in client cc's log, with a valid checksum, as a client
 * could write it (what says what it is, for the messages). */
static void ck_forge_record(struct scen *s, struct ck_client *cc, const char *what, uint16_t type,
                            const uint64_t args[3], const struct iovec *iov, int iovcnt)
{
	char path[PATH_MAX], err[512];
	part_path(s, clog_recorder_part(cc->slot), path, sizeof(path));
	op_start(s, what);
	struct media *m = NULL;
	struct log *lg = NULL;
	int rc = media_open(&m, MEDIA_EMUL, path, 0, 0, err, sizeof(err));
	if (!rc) {
		media_set_recorder(m, s->r, clog_recorder_part(cc->slot));
		rc = log_open(&lg, m, cc->log_id, err, sizeof(err));
	}
	if (!rc)
		rc = log_recover(lg, LOG_RING_START, 1, log_replay_none, NULL, 1);
	uint64_t a[LOG_REC_ARGS] = {args[0], args[1], args[2]};
	struct log_pos pos;
	if (!rc)
		rc = log_append(lg, type, a, iov, iovcnt, &pos);
	if (!rc)
		rc = log_commit(lg, pos.seq);
	log_close(lg);
	media_close(m);
	op_done(s, 1);
	if (rc)
		fail_msg("clog: forging a record: %s %s", tv_errname(-rc), err);
}

static void ck_forge(struct scen *s, struct ck_client *cc, struct ck_file *f, uint64_t off,
                     size_t len)
{
	static uint8_t buf[CK_MAX];
	tv_fill(buf, len, 666);
	struct iovec iov = {buf, len};
	ck_forge_record(s, cc, "a forged record in client 2's log", CLOG_REC_WRITE,
	                (const uint64_t[3]){f->ino, off, 999}, &iov, 1);
}

static void test_clog(void **state)
{
	(void)state;
	struct scen *s = &current;
	memset(&ck, 0, sizeof(ck));
	ck.arm_part = -1;
	struct scen_cfg cfg = {.oracle = ck_oracle, .recovered = ck_recovered, .no_read_only = 1};
	ck.file[0].path = "/f";
	ck.file[1].path = "/g";
	scen_begin_cfg(s, "clog", &cfg);
	ck.fs = s->fs;
	ck.r = s->r;
	recorder_set_fence_hook(s->r, ck_fence_hook, NULL);
	struct ck_file *f = &ck.file[0], *g = &ck.file[1];
	static struct ck_client c1, c2;
	memset(&c1, 0, sizeof(c1));
	memset(&c2, 0, sizeof(c2));

	ck_create(s, f, "/f");
	ck_create(s, g, "/g");
	ck_start(s, &c1, 1, 0);
	ck_grant(s, &c1, f);
	ck_client_write(s, &c1, 1, 6000, 0, 1);
	ck_client_write(s, &c1, 2, 3000, 9000, 1);
	ck_ingest(s);
	ck_client_write(s, &c1, 3, 5000, 2000, 1); /* over the first */
	ck_daemon_write(s, f, 4, 2500, 4000);      /* over the third, after it */
	ck_client_write(s, &c1, 5, 1234, CLOG_AT_END, 1);
	ck_client_truncate(s, &c1, 7000, 1); /* inside a block, over records */
	ck_client_write(s, &c1, 6, 777, CLOG_AT_END, 1);
	/* A checkpoint with records still in the client's log only, then one
	 * that digests their copies. */
	DO(s, cairn_digest(s->fs));
	ck_ingest(s);
	DO(s, cairn_digest(s->fs));
	ck_client_write(s, &c1, 7, 3000, 0, 1);
	ck_client_truncate(s, &c1, 15000, 1); /* a hole at the end */
	ck_ingest(s);
	/* Past the truncate's copy: a recovery that applied the truncate
	 * again from the client's log would cut it. */
	ck_daemon_write(s, f, 20, 2000, 16000);
	ck_daemon_write(s, f, 8, 1000, 1000); /* over the copy of the last */
	ck_client_write(s, &c1, 9, 2000, 12000, 1);
	/* Revoked by an open through the mount while the record is made
	 * durable: the revocation ingests it (and the one before), the
	 * client sees its grant gone and asks. */
	ck.arm_part = clog_recorder_part(c1.slot);
	ck.arm_file = f;
	ck_client_write(s, &c1, 10, 4000, 20000, 1);
	if (ck.arm_part != -1)
		fail_msg("clog: the client's write did not fence its log");
	ck_verify(s, "the revocation");
	ck_daemon_write(s, f, 11, 3000, 21000); /* over it */
	ck_ungrant(s, &c1);
	ck_front(s, f, -1);
	ck_grant(s, &c1, f); /* a new epoch */
	ck_client_write(s, &c1, 12, 1500, CLOG_AT_END, 1);
	ck_client_truncate(s, &c1, 4096, 1); /* at a block's end */
	ck_client_write(s, &c1, 13, 2000, 100, 1);

	/* A second client, with no credit: its first write asks for some,
	 * and the mount opens the file then, before its append: the record
	 * goes to its log under a revoked grant and is skipped, and the
	 * client writes through the daemon. */
	ck_start(s, &c2, 2, 1);
	ck_grant(s, &c2, g);
	c2.revoke_in_sync = 1;
	ck_client_write(s, &c2, 14, 5000, 0, 0);
	ck_daemon_write(s, g, 15, 2000, 1000); /* over it */
	ck_client_write(s, &c1, 16, 3000, 30000, 1);
	DO(s, cairn_digest(s->fs));
	ck_ungrant(s, &c2);
	ck_front(s, g, -1);
	ck_grant(s, &c2, g);
	ck_client_write(s, &c2, 17, 2500, CLOG_AT_END, 1);
	ck_client_write(s, &c1, 18, 1000, 40000, 1);
	/* A forged record: never applied, and the log it is in stops. */
	ck_forge(s, &c2, g, 0, 3000);
	ck_ingest(s);
	{
		char why[300];
		op_start(s, "clog_end of client 2");
		clog_end(s->fs, c2.c, why, sizeof(why));
		op_done(s, 1);
		if (!strstr(why, "refused"))
			report(s, "clog: the forged record was not refused (\"%s\")", why);
		client_log_close(c2.l);
	}
	/* Left in the client's log at the unmount: the next mount applies them. */
	ck_client_write(s, &c1, 19, 1200, CLOG_AT_END, 1);
	ck_client_truncate(s, &c1, 40500, 1);
	client_log_close(c1.l);
	DO(s, cairn_close(s->fs, f->fd));
	DO(s, cairn_close(s->fs, g->fd));
	recorder_set_fence_hook(s->r, NULL, NULL);
	scen_unmount(s);
	scen_check(s);
	scen_end(s);
}

/* A client's log wraps.  Its credit covers more than its ring holds, so
 * it fills the ring with no round trip, then asks the daemon to ingest
 * (CTL_CLOG_SYNC) and writes over the records at the ring's start.  Their
 * copies in the volume's log must be durable by then: the crash states
 * after the client's next record have no other copy of them.  A small
 * client log (clog_size) makes the wrap take some twenty records, and a
 * volume log smaller still makes the ingests checkpoint midway (the
 * progress then persisted lies between two records of one ingest). */
static void test_clog_wrap(void **state)
{
	(void)state;
	struct scen *s = &current;
	memset(&ck, 0, sizeof(ck));
	ck.arm_part = -1;
	struct cairn_mount_opts mo = {.no_digest_thread = 1, .clog_size = 96 * 1024};
	struct scen_cfg cfg = {.log_size = 96 * 1024,
	                       .mount = &mo,
	                       .oracle = ck_oracle,
	                       .recovered = ck_recovered,
	                       .no_read_only = 1};
	ck.file[0].path = "/w";
	ck.file[1].path = "/unused";
	scen_begin_cfg(s, "clogwrap", &cfg);
	ck.fs = s->fs;
	ck.r = s->r;
	struct ck_file *w = &ck.file[0];
	static struct ck_client c;
	memset(&c, 0, sizeof(c));
	ck_create(s, w, "/w");
	ck_start(s, &c, 1, 0);
	ck_grant(s, &c, w);
	/* The first wrap with the volume's log empty: the copies of the whole
	 * ring fit, and nothing else commits them.  The second with the
	 * first's copies still there: ingesting the ring checkpoints in
	 * between. */
	DO(s, cairn_digest(s->fs));
	for (int i = 0; i < 48; i++)
		ck_client_write(s, &c, 100 + (uint64_t)i, 4000, (uint64_t)(i % 12) * 4096, 1);
	ck_daemon_write(s, w, 50, 20000, 0);
	ck_client_write(s, &c, 200, 3000, 50000, 1);
	ck_ingest(s);
	client_log_close(c.l);
	DO(s, cairn_close(s->fs, w->fd));
	scen_unmount(s);
	scen_check(s);
	scen_end(s);
}

/* ---- names in a client's log ------------------------------------------------
 *
 * A client that holds the grant of a directory creates and unlinks files
 * there in its log (CLOG_REC_CREATE, CLOG_REC_UNLINK), and writes the files
 * it made under the grants that came with their inode numbers.  The claims
 * checked at every fence: an acknowledged create, write or unlink survives
 * a crash of the daemon, in the order the client made them, once; the
 * files it made belong to it; a create skipped (written as the directory's
 * grant was revoked) or forged is never applied; fsck finds every state
 * clean (an inode number set aside and not used is free after a crash; a
 * file made and unlinked while the client still held it is an orphan
 * until its grant goes).
 */
struct ck_names {
	uint64_t dir;
	struct client_grant dg; /* the directory's grant */
	struct clog_aside aside[64];
	int naside;
};

static void ck_dir_grant(struct scen *s, struct ck_client *cc, struct ck_names *nm)
{
	op_start(s, "clog_grant_dir");
	uint32_t index = 0;
	uint64_t epoch = 0;
	int rc = clog_grant_dir(s->fs, cc->c, nm->dir, clients_names_gen(s->fs), &index, &epoch);
	op_done(s, 1);
	if (rc)
		fail_msg("clog: clog_grant_dir: %s", tv_errname(-rc));
	nm->dg = (struct client_grant){index, epoch};
}

static void ck_set_aside(struct scen *s, struct ck_client *cc, struct ck_names *nm,
                         const uint32_t *done, int ndone)
{
	op_start(s, "clog_set_aside");
	int n = clog_set_aside(s->fs, cc->c, done, ndone, 0, nm->aside, 64);
	op_done(s, 1);
	if (n <= 0)
		fail_msg("clog: clog_set_aside: %s", tv_errname(-n));
	nm->naside = n;
}

/* The client creates f (a name in nm's directory) in its log, and holds
 * the grant of its inode from then on (cc->g). */
static void ck_client_create(struct scen *s, struct ck_client *cc, struct ck_names *nm,
                             struct ck_file *f, int expect)
{
	struct clog_aside a = nm->aside[--nm->naside];
	const char *name = strrchr(f->path, '/') + 1;
	op_start(s, f->path);
	int rc = client_log_create((struct client *)cc, cc->l, &nm->dg, nm->dir, a.ino, 0640, name,
	                           strlen(name));
	if (rc == 1) {
		f->exists = 1;
		f->size = 0;
		f->ino = a.ino;
		f->grant = a.index;
		cc->g = (struct client_grant){a.index, a.epoch};
		cc->f = f;
	}
	op_done(s, 1);
	if (rc != expect)
		report(s, "clog: create of %s returned %d, not %d", f->path, rc, expect);
	if (rc != 1)
		nm->naside++;
}

static void ck_client_unlink(struct scen *s, struct ck_client *cc, struct ck_names *nm,
                             struct ck_file *f)
{
	const char *name = strrchr(f->path, '/') + 1;
	op_start(s, f->path);
	int rc = client_log_unlink((struct client *)cc, cc->l, &nm->dg, nm->dir, f->ino, name,
	                           strlen(name));
	if (rc == 1)
		f->exists = 0;
	op_done(s, 1);
	if (rc != 1)
		report(s, "clog: unlink of %s returned %d", f->path, rc);
}

/* Files the client made belong to it, with the bits it asked for. */
static void ck_owner(struct scen *s, struct ck_file *f)
{
	struct stat st;
	if (cairn_stat(s->fs, f->path, &st) != 0 || st.st_uid != getuid() ||
	    st.st_gid != getgid() || (st.st_mode & 07777) != 0640 || !S_ISREG(st.st_mode))
		report(s, "clog: %s made in the log has not the owner and mode asked", f->path);
}

/* A record of a name forged in the client's log, with a valid checksum. */
static void ck_forge_name(struct scen *s, struct ck_client *cc, uint32_t type, uint64_t dir,
                          uint64_t ino, uint64_t epoch, const char *name, uint32_t mode)
{
	struct clog_create cr = {mode, 0};
	struct iovec iov[2] = {{&cr, sizeof(cr)}, {(void *)name, strlen(name)}};
	int create = type == CLOG_REC_CREATE;
	ck_forge_record(s, cc, "a forged name in client 1's log", (uint16_t)type,
	                (const uint64_t[3]){dir, ino, epoch}, create ? iov : iov + 1,
	                create ? 2 : 1);
}

static void test_clog_names(void **state)
{
	(void)state;
	struct scen *s = &current;
	memset(&ck, 0, sizeof(ck));
	ck.arm_part = -1;
	/* 2048 inodes: a client holds 1/256 of the free ones set aside, 7
	 * here, enough for the creates between two requests for more. */
	struct scen_cfg cfg = {.oracle = ck_oracle,
	                       .recovered = ck_recovered,
	                       .no_read_only = 1,
	                       .fast_size = 2 * FAST_SIZE};
	const char *paths[] = {"/d/a", "/d/b", "/d/c", "/d/e", "/d/x"};
	for (int i = 0; i < CK_FILES; i++)
		ck.file[i].path = paths[i];
	scen_begin_cfg(s, "clognames", &cfg);
	ck.fs = s->fs;
	ck.r = s->r;
	struct ck_file *a = &ck.file[0], *b = &ck.file[1], *c = &ck.file[2], *e = &ck.file[3],
	               *x = &ck.file[4];
	static struct ck_client c1;
	static struct ck_names nm;
	memset(&c1, 0, sizeof(c1));
	memset(&nm, 0, sizeof(nm));
	DO(s, cairn_mkdir(s->fs, "/d", 0755));
	struct stat st;
	TV_OK(cairn_stat(s->fs, "/d", &st));
	nm.dir = st.st_ino;

	/* Both clients start now: a slot made a second time in one
	 * recording is not recorded. */
	static struct ck_client c2;
	memset(&c2, 0, sizeof(c2));
	ck_start(s, &c1, 1, 0);
	ck_start(s, &c2, 2, 0);
	ck_dir_grant(s, &c1, &nm);
	ck_set_aside(s, &c1, &nm, NULL, 0);
	ck_client_create(s, &c1, &nm, a, 1);
	ck_client_write(s, &c1, 1, 3000, 0, 1);
	ck_client_create(s, &c1, &nm, b, 1);
	ck_client_write(s, &c1, 2, 5000, 0, 1);
	ck_client_write(s, &c1, 3, 700, CLOG_AT_END, 1);
	ck_ingest(s);
	ck_owner(s, a);
	/* A checkpoint with a create still in the client's log only. */
	ck_client_create(s, &c1, &nm, c, 1);
	DO(s, cairn_digest(s->fs));
	ck_client_write(s, &c1, 4, 2000, 100, 1);
	/* Made, written, unlinked while the client holds it: an orphan. */
	ck_client_unlink(s, &c1, &nm, b);
	ck_ingest(s);
	ck_owner(s, c);
	DO(s, cairn_digest(s->fs));
	/* Unlinked with its records still in the log, then a name again. */
	ck_client_unlink(s, &c1, &nm, a);
	ck_client_create(s, &c1, &nm, e, 1);
	ck_client_write(s, &c1, 5, 1500, 0, 1);
	ck_ingest(s);
	/* The made files the client is done with go back: b's orphan goes. */
	ck_set_aside(s, &c1, &nm, &b->grant, 1);
	/* Another process creates in the directory: the client's grant of it
	 * is revoked (its records applied first), and its next create is
	 * skipped, to be made by the daemon. */
	op_start(s, "a create by the daemon in /d");
	struct icaller who = {getuid(), getgid()};
	int vfd;
	x->exists = 1;
	x->size = 0;
	int rc = ic_create(s->fs, &who, nm.dir, "x", 0644, O_CREAT | O_EXCL | O_RDWR, &vfd, &st);
	op_done(s, 1);
	if (rc)
		fail_msg("clog: ic_create: %s", tv_errname(-rc));
	x->ino = st.st_ino;
	DO(s, cairn_close(s->fs, vfd));
	ck_client_create(s, &c1, &nm, a, 0);
	ck_verify(s, "the revocation of the directory");
	/* The grant again: records of the new epoch, some left in the log at
	 * the unmount for the next mount to apply. */
	ck_dir_grant(s, &c1, &nm);
	ck_client_create(s, &c1, &nm, a, 1);
	ck_client_write(s, &c1, 6, 4000, 0, 1);
	ck_ingest(s);
	/* Forged: a name that is there, and an inode number not set aside.
	 * Neither is applied, and the log stops at the first. */
	ck_forge_name(s, &c1, CLOG_REC_CREATE, nm.dir, nm.aside[0].ino, nm.dg.epoch, "e", 0644);
	ck_ingest(s);
	{
		char why[300];
		op_start(s, "clog_end of client 1");
		clog_end(s->fs, c1.c, why, sizeof(why));
		op_done(s, 1);
		if (!strstr(why, "a name that is there"))
			report(s, "clog: the forged create was not refused (\"%s\")", why);
		client_log_close(c1.l);
	}
	/* A second client, whose records are left in its log at the unmount:
	 * the next mount applies them. */
	ck_dir_grant(s, &c2, &nm);
	ck_set_aside(s, &c2, &nm, NULL, 0);
	ck_client_create(s, &c2, &nm, b, 1);
	ck_client_write(s, &c2, 7, 2500, 0, 1);
	ck_client_unlink(s, &c2, &nm, b);
	/* Written after its unlink, as an open file may be: a recovery must
	 * keep the file (an orphan) for this record, and apply the rest. */
	ck_client_write(s, &c2, 9, 300, 100, 1);
	ck_client_create(s, &c2, &nm, b, 1);
	ck_client_write(s, &c2, 8, 1200, 0, 1);
	client_log_close(c2.l);
	recorder_set_fence_hook(s->r, NULL, NULL);
	scen_unmount(s);
	scen_check(s);
	scen_end(s);
}

/* Runs last: the CI requirement on the number of states checked. */
static void test_total(void **state)
{
	(void)state;
	print_message("crash states: %" PRIu64 " checked in total (%.1fs), %" PRIu64
	              " failed, scale %u\n",
	              total_states, total_time, total_failures, scale());
	if (total_states < MIN_TOTAL_STATES)
		fail_msg("only %" PRIu64 " crash states checked, at least %d required",
		         total_states, MIN_TOTAL_STATES);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_files, scen_teardown),
	    cmocka_unit_test_teardown(test_falloc, scen_teardown),
	    cmocka_unit_test_teardown(test_names, scen_teardown),
	    cmocka_unit_test_teardown(test_attrs_orphans, scen_teardown),
	    cmocka_unit_test_teardown(test_block_reuse, scen_teardown),
	    cmocka_unit_test_teardown(test_mixed, scen_teardown),
	    cmocka_unit_test_teardown(test_migration, scen_teardown),
	    cmocka_unit_test_teardown(test_tier_changes, scen_teardown),
	    cmocka_unit_test_teardown(test_fast_grow, scen_teardown),
	    cmocka_unit_test_teardown(test_batch, scen_teardown),
	    cmocka_unit_test_teardown(test_wrap, scen_teardown),
	    cmocka_unit_test_teardown(test_file_wrap_fail, scen_teardown),
	    cmocka_unit_test_teardown(test_file_medium, scen_teardown),
	    cmocka_unit_test_teardown(test_file_group_commit, scen_teardown),
	    cmocka_unit_test_teardown(test_sync_race, scen_teardown),
	    cmocka_unit_test_teardown(test_file_sync_race, scen_teardown),
	    cmocka_unit_test_teardown(test_fill_race, scen_teardown),
	    cmocka_unit_test_teardown(test_digest_ahead, scen_teardown),
	    cmocka_unit_test_teardown(test_file_digest_ahead, scen_teardown),
	    cmocka_unit_test_teardown(test_clog, scen_teardown),
	    cmocka_unit_test_teardown(test_clog_names, scen_teardown),
	    cmocka_unit_test_teardown(test_clog_wrap, scen_teardown),
	    cmocka_unit_test(test_total),
	};
	/* CAIRN_CRASH_ONLY=PATTERN runs only the matching tests (local runs). */
	const char *only = getenv("CAIRN_CRASH_ONLY");
	if (only && *only)
		cmocka_set_test_filter(only);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
