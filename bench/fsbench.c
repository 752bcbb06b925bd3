/*
 * fsbench.c - the workload driver of bench/run: one program, two backends.
 *
 *   bench_fs --dir DIR [--sync data|none] WORKLOAD [OPTIONS]   POSIX calls in DIR
 *   bench_fs --cairn VOLUME [--batch MS] WORKLOAD [OPTIONS]    cairn_* calls
 *
 * The workloads are written once against a small table of file-system
 * calls; the backend decides whether those calls are POSIX system calls on a
 * mounted file system (ext4, tmpfs, a cairn FUSE mount) or the native cairn
 * API, so every contender runs exactly the same sequence of operations.
 *
 * Durability: "--sync data" makes each measured mutation durable the POSIX
 * way (fdatasync after data writes; fsync of the file and of its directory
 * after namespace changes).  "--sync none" skips that (tmpfs, the upper
 * bound).  The cairn backend needs no extra call: in sync mode every call is
 * durable when it returns, so its durability step is empty.  Workloads that
 * call fsync as part of their definition (varmail, sqlite) do so on every
 * backend.
 *
 * Workloads (see usage()): micro, bigdir-populate, bigdir-stat, varmail,
 * sqlite, tiered-load, tiered-mix.  Results go to stdout as "metric,unit,value" lines; notes (sample
 * counts, capped loops) go to stderr.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cairn.h"
#ifdef HAVE_SQLITE
#include <sqlite3.h>
#endif

/* ---- backends ------------------------------------------------------------ */

/* Paths handed to a backend are relative to the contender's root ("m/f1"). */
struct backend {
	int (*open)(const char *path, int flags, mode_t mode);
	int (*close)(int fd);
	ssize_t (*write)(int fd, const void *buf, size_t n);
	ssize_t (*pwrite)(int fd, const void *buf, size_t n, off_t off);
	ssize_t (*pread)(int fd, void *buf, size_t n, off_t off);
	int (*fsync)(int fd);
	int (*unlink)(const char *path);
	int (*rename)(const char *from, const char *to);
	int (*mkdir)(const char *path);
	int (*rmdir)(const char *path);
	int (*stat)(const char *path, struct stat *st);
	/* The durability steps of --sync data; empty for cairn and --sync none. */
	int (*datasync)(int fd);
	int (*filesync)(int fd);
	int (*dirsync)(const char *dir);
	/* Drop cached pages of a file before a cold read (kernel only). */
	void (*uncache)(int fd);
};

static const char *root;     /* --dir */
static cairn_fs *cfs;        /* --cairn */
static int sync_data = 1;    /* --sync data */
static const struct backend *B;

static const char *full(const char *path, char *buf, size_t size)
{
	snprintf(buf, size, "%s/%s", root, path);
	return buf;
}

static int px_open(const char *p, int flags, mode_t mode)
{
	char b[4096];
	return open(full(p, b, sizeof(b)), flags, mode);
}
static int px_unlink(const char *p)
{
	char b[4096];
	return unlink(full(p, b, sizeof(b)));
}
static int px_rename(const char *f, const char *t)
{
	char b1[4096], b2[4096];
	return rename(full(f, b1, sizeof(b1)), full(t, b2, sizeof(b2)));
}
static int px_mkdir(const char *p)
{
	char b[4096];
	return mkdir(full(p, b, sizeof(b)), 0755);
}
static int px_rmdir(const char *p)
{
	char b[4096];
	return rmdir(full(p, b, sizeof(b)));
}
static int px_stat(const char *p, struct stat *st)
{
	char b[4096];
	return stat(full(p, b, sizeof(b)), st);
}
static int px_datasync(int fd)
{
	return sync_data ? fdatasync(fd) : 0;
}
static int px_filesync(int fd)
{
	return sync_data ? fsync(fd) : 0;
}

/* A directory is synced through a descriptor kept open, as a mail server or
 * database would; the cache holds the last directory used. */
static int px_dirsync(const char *dir)
{
	static char cached[4096];
	static int dfd = -1;
	if (!sync_data)
		return 0;
	if (dfd < 0 || strcmp(cached, dir)) {
		if (dfd >= 0)
			close(dfd);
		char b[4096];
		dfd = open(full(dir, b, sizeof(b)), O_RDONLY | O_DIRECTORY);
		if (dfd < 0)
			return -1;
		snprintf(cached, sizeof(cached), "%s", dir);
	}
	return fsync(dfd);
}
static void px_uncache(int fd)
{
	posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
}

static const struct backend posix_backend = {
	.open = px_open, .close = close, .write = write, .pwrite = pwrite, .pread = pread,
	.fsync = fsync, .unlink = px_unlink, .rename = px_rename, .mkdir = px_mkdir,
	.rmdir = px_rmdir, .stat = px_stat, .datasync = px_datasync, .filesync = px_filesync,
	.dirsync = px_dirsync, .uncache = px_uncache,
};

static const char *cpath(const char *p, char *buf, size_t size)
{
	snprintf(buf, size, "/%s", p);
	return buf;
}
static int cn_open(const char *p, int flags, mode_t mode)
{
	char b[4096];
	return cairn_open(cfs, cpath(p, b, sizeof(b)), flags, mode);
}
static int cn_close(int fd)
{
	return cairn_close(cfs, fd);
}
static ssize_t cn_write(int fd, const void *buf, size_t n)
{
	return cairn_write(cfs, fd, buf, n);
}
static ssize_t cn_pwrite(int fd, const void *buf, size_t n, off_t off)
{
	return cairn_pwrite(cfs, fd, buf, n, off);
}
static ssize_t cn_pread(int fd, void *buf, size_t n, off_t off)
{
	return cairn_pread(cfs, fd, buf, n, off);
}
static int cn_fsync(int fd)
{
	return cairn_fsync(cfs, fd);
}
static int cn_unlink(const char *p)
{
	char b[4096];
	return cairn_unlink(cfs, cpath(p, b, sizeof(b)));
}
static int cn_rename(const char *f, const char *t)
{
	char b1[4096], b2[4096];
	return cairn_rename(cfs, cpath(f, b1, sizeof(b1)), cpath(t, b2, sizeof(b2)), 0);
}
static int cn_mkdir(const char *p)
{
	char b[4096];
	return cairn_mkdir(cfs, cpath(p, b, sizeof(b)), 0755);
}
static int cn_rmdir(const char *p)
{
	char b[4096];
	return cairn_rmdir(cfs, cpath(p, b, sizeof(b)));
}
static int cn_stat(const char *p, struct stat *st)
{
	char b[4096];
	return cairn_stat(cfs, cpath(p, b, sizeof(b)), st);
}
/* Sync mode: the call itself was the durability point. */
static int cn_nothing(int fd)
{
	(void)fd;
	return 0;
}
static int cn_nodir(const char *dir)
{
	(void)dir;
	return 0;
}
/* There is no page cache between the program and the volume to drop. */
static void cn_uncache(int fd)
{
	(void)fd;
}

static const struct backend cairn_backend = {
	.open = cn_open, .close = cn_close, .write = cn_write, .pwrite = cn_pwrite,
	.pread = cn_pread, .fsync = cn_fsync, .unlink = cn_unlink, .rename = cn_rename,
	.mkdir = cn_mkdir, .rmdir = cn_rmdir, .stat = cn_stat, .datasync = cn_nothing,
	.filesync = cn_nothing, .dirsync = cn_nodir, .uncache = cn_uncache,
};

/* ---- helpers ------------------------------------------------------------- */

static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "bench_fs: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, ": %s\n", strerror(errno));
	va_end(ap);
	exit(1);
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static unsigned long long rng = 88172645463325252ull;
static unsigned long long rnd(void)
{
	rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
	return rng;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void result(const char *metric, const char *unit, double value)
{
	printf("%s,%s,%.6g\n", metric, unit, value);
	fflush(stdout);
}

/* Options shared by the workloads. */
static long opt_n = 20000;       /* latency samples per item */
static long opt_meta = 5000;     /* files for create/rename/unlink/mkdir */
static long opt_seq_mib = 1024;  /* sequential file size */
static double opt_cap = 10;      /* seconds: a timed loop stops after this */
static const char *opt_cdf;      /* file for the 4 KiB append latencies */
static long opt_files = 2000;    /* varmail file set */
static double opt_seconds = 10;  /* varmail duration */
static const char *opt_journal = "delete";
static long opt_entries = 1000000;
static int opt_write_only;       /* micro: also 4 KiB appends without fdatasync */
static long opt_file_kib = 1024; /* tiered: size of each file */
static int opt_read_pct = 90;    /* tiered-mix: share of reads */
static long opt_chunk = 65536;   /* tiered-mix: bytes per read or write */
static double opt_theta = 0.99;  /* tiered-mix: zipfian skew over the files */
static unsigned long long opt_seed; /* tiered-mix: varies the sequence per round */

/* A loop of at most n iterations that stops once the time cap is reached
 * (after a minimum number of samples), so that a slow disk cannot stretch a
 * run; the count actually done is reported on stderr. */
#define MIN_SAMPLES 50
static int capped(long i, double t0)
{
	return i >= MIN_SAMPLES && (i & 15) == 0 && now() - t0 > opt_cap;
}

static void note_count(const char *what, long done, long asked)
{
	fprintf(stderr, "# %s: %ld of %ld%s\n", what, done, asked,
		done < asked ? " (time cap)" : "");
}

/* Reports p50 and p99 of n latencies (seconds) as microseconds. */
static void report_lat(const char *name, double *lat, long n)
{
	char m[128];
	qsort(lat, n, sizeof(*lat), cmp_double);
	snprintf(m, sizeof(m), "%s_p50", name);
	result(m, "us", lat[n / 2] * 1e6);
	snprintf(m, sizeof(m), "%s_p99", name);
	result(m, "us", lat[(long)(n * 0.99)] * 1e6);
}

static void fill(char *buf, size_t n)
{
	for (size_t i = 0; i < n; i++)
		buf[i] = (char)('a' + i % 26);
}

/* ---- micro --------------------------------------------------------------- */

/* Durable appends of `size` bytes: write + the backend's datasync. */
static void micro_append(size_t size, const char *name, const char *cdf)
{
	char *buf = malloc(size);
	fill(buf, size);
	long n = size > 4096 ? opt_n / 4 : opt_n;
	double *lat = malloc(n * sizeof(double));
	int fd = B->open("m-append", O_CREAT | O_TRUNC | O_WRONLY | O_APPEND, 0644);
	if (fd < 0)
		die("open m-append");
	for (int i = 0; i < 100; i++) /* warm-up: allocation paths, caches */
		if (B->write(fd, buf, size) != (ssize_t)size || B->datasync(fd))
			die("append");
	long i;
	double t0 = now();
	for (i = 0; i < n && !capped(i, t0); i++) {
		double t = now();
		if (B->write(fd, buf, size) != (ssize_t)size || B->datasync(fd))
			die("append");
		lat[i] = now() - t;
	}
	note_count(name, i, n);
	B->close(fd);
	B->unlink("m-append");
	if (cdf) {
		FILE *f = fopen(cdf, "w");
		if (!f)
			die("%s", cdf);
		for (long k = 0; k < i; k++)
			fprintf(f, "%.3f\n", lat[k] * 1e6);
		fclose(f);
	}
	report_lat(name, lat, i);
	free(lat);
	free(buf);
}

/* Durable overwrites at random aligned offsets of a prewritten file. */
static void micro_overwrite(size_t size, const char *name)
{
	const off_t fsize = 16 << 20;
	char *buf = malloc(1 << 20);
	fill(buf, 1 << 20);
	int fd = B->open("m-over", O_CREAT | O_TRUNC | O_RDWR, 0644);
	if (fd < 0)
		die("open m-over");
	for (off_t o = 0; o < fsize; o += 1 << 20)
		if (B->pwrite(fd, buf, 1 << 20, o) != 1 << 20)
			die("prewrite");
	if (B->filesync(fd))
		die("fsync");
	long n = size > 4096 ? opt_n / 4 : opt_n;
	double *lat = malloc(n * sizeof(double));
	long slots = fsize / size, i;
	double t0 = now();
	for (i = 0; i < n && !capped(i, t0); i++) {
		off_t off = (off_t)(rnd() % slots) * size;
		double t = now();
		if (B->pwrite(fd, buf, size, off) != (ssize_t)size || B->datasync(fd))
			die("overwrite");
		lat[i] = now() - t;
	}
	note_count(name, i, n);
	B->close(fd);
	B->unlink("m-over");
	report_lat(name, lat, i);
	free(lat);
	free(buf);
}

/* Sequential write (durable at the end) and read of opt_seq_mib MiB in
 * 1 MiB calls, then random 4 KiB reads of the same file once it is warm. */
static void micro_seq(void)
{
	const size_t io = 1 << 20;
	char *buf = malloc(io);
	fill(buf, io);
	int fd = B->open("m-seq", O_CREAT | O_TRUNC | O_RDWR, 0644);
	if (fd < 0)
		die("open m-seq");
	double t0 = now();
	for (long i = 0; i < opt_seq_mib; i++)
		if (B->pwrite(fd, buf, io, (off_t)i * io) != (ssize_t)io)
			die("seq write");
	if (B->filesync(fd))
		die("fsync");
	result("seqwrite", "MiB/s", opt_seq_mib / (now() - t0));

	B->uncache(fd);
	t0 = now();
	for (long i = 0; i < opt_seq_mib; i++)
		if (B->pread(fd, buf, io, (off_t)i * io) != (ssize_t)io)
			die("seq read");
	result("seqread", "MiB/s", opt_seq_mib / (now() - t0));

	/* Warm: the whole file was just read. */
	long n = opt_n, i, blocks = opt_seq_mib * 256;
	double *lat = malloc(n * sizeof(double));
	t0 = now();
	for (i = 0; i < n && !capped(i, t0); i++) {
		off_t off = (off_t)(rnd() % blocks) * 4096;
		double t = now();
		if (B->pread(fd, buf, 4096, off) != 4096)
			die("random read");
		lat[i] = now() - t;
	}
	double el = now() - t0;
	note_count("randread_4k", i, n);
	result("randread_4k", "ops/s", i / el);
	report_lat("randread_4k", lat, i);
	B->close(fd);
	B->unlink("m-seq");
	free(lat);
	free(buf);
}

/* Durable namespace operations in directory m-meta: create+write+close,
 * rename, unlink, mkdir; each followed by fsync of the file (where there is
 * one) and of the directory on the kernel file systems. */
static void micro_meta(void)
{
	char a[64], b[64], buf[4096];
	fill(buf, sizeof(buf));
	if (B->mkdir("m-meta") && errno != EEXIST)
		die("mkdir m-meta");
	long n = opt_meta, done, i;

	double t0 = now();
	for (i = 0; i < n && !capped(i, t0); i++) {
		snprintf(a, sizeof(a), "m-meta/f%07ld", i);
		int fd = B->open(a, O_CREAT | O_EXCL | O_WRONLY, 0644);
		if (fd < 0 || B->write(fd, buf, sizeof(buf)) != sizeof(buf) || B->filesync(fd) ||
		    B->close(fd) || B->dirsync("m-meta"))
			die("create %s", a);
	}
	done = i;
	note_count("create", done, n);
	result("create", "ops/s", done / (now() - t0));

	t0 = now();
	for (i = 0; i < done; i++) {
		snprintf(a, sizeof(a), "m-meta/f%07ld", i);
		snprintf(b, sizeof(b), "m-meta/g%07ld", i);
		if (B->rename(a, b) || B->dirsync("m-meta"))
			die("rename %s", a);
	}
	result("rename", "ops/s", done / (now() - t0));

	t0 = now();
	for (i = 0; i < done; i++) {
		snprintf(b, sizeof(b), "m-meta/g%07ld", i);
		if (B->unlink(b) || B->dirsync("m-meta"))
			die("unlink %s", b);
	}
	result("unlink", "ops/s", done / (now() - t0));

	t0 = now();
	for (i = 0; i < n && !capped(i, t0); i++) {
		snprintf(a, sizeof(a), "m-meta/d%07ld", i);
		if (B->mkdir(a) || B->dirsync("m-meta"))
			die("mkdir %s", a);
	}
	done = i;
	note_count("mkdir", done, n);
	result("mkdir", "ops/s", done / (now() - t0));
	for (i = 0; i < done; i++) {
		snprintf(a, sizeof(a), "m-meta/d%07ld", i);
		if (B->rmdir(a))
			die("rmdir %s", a);
	}
	B->rmdir("m-meta");
}

static void run_micro(void)
{
	micro_append(4096, "append_4k", opt_cdf);
	if (opt_write_only) {
		/* On a cairn FUSE mount in sync mode the write is already durable
		 * when it returns; this shows what the fdatasync adds. */
		int saved = sync_data;
		sync_data = 0;
		micro_append(4096, "append_4k_write_only", NULL);
		sync_data = saved;
	}
	micro_append(65536, "append_64k", NULL);
	micro_overwrite(4096, "overwrite_4k");
	micro_overwrite(65536, "overwrite_64k");
	micro_seq();
	micro_meta();
}

/* ---- a directory of many entries ------------------------------------------ */

static void bigdir_name(char *buf, size_t size, long i)
{
	snprintf(buf, size, "bigdir/file-%08ld.eml", i);
}

/* Empty files bigdir/file-N; not timed, no durability step (it is set-up). */
static void run_bigdir_populate(void)
{
	char p[64];
	if (B->mkdir("bigdir") && errno != EEXIST)
		die("mkdir bigdir");
	for (long i = 0; i < opt_entries; i++) {
		bigdir_name(p, sizeof(p), i);
		int fd = B->open(p, O_CREAT | O_WRONLY, 0644);
		if (fd < 0 || B->close(fd))
			die("create %s", p);
	}
}

static void run_bigdir_stat(void)
{
	char p[64];
	struct stat st;
	long n = opt_n, i;
	double *lat = malloc(n * sizeof(double));
	double t0 = now();
	for (i = 0; i < n && !capped(i, t0); i++) {
		bigdir_name(p, sizeof(p), (long)(rnd() % opt_entries));
		double t = now();
		if (B->stat(p, &st))
			die("stat %s", p);
		lat[i] = now() - t;
	}
	double el = now() - t0;
	note_count("stat_bigdir", i, n);
	result("stat_bigdir", "ops/s", i / el);
	report_lat("stat_bigdir", lat, i);
	free(lat);
}

/* ---- varmail --------------------------------------------------------------- */

/* Filebench's varmail flow, one thread: delete a file, create it again
 * and append to it, fsync, close; open another, read it whole, append,
 * fsync, close; open a third, read it whole, close.  Files hold 16 KiB on
 * average (appends of 1..32 KiB).  13 operations per loop, as Filebench
 * counts them.  The file set (varmail/NNNNNN) is created on first use and
 * kept across rounds: each loop leaves the set as complete as it found it. */
#define VARMAIL_OPS_PER_LOOP 13

static void vm_name(char *buf, size_t size, long i)
{
	snprintf(buf, size, "varmail/%06ld", i);
}

static void vm_append(int fd, char *buf)
{
	size_t n = 1 + rnd() % 32768;
	if (B->write(fd, buf, n) != (ssize_t)n)
		die("varmail append");
}

/* Reads the open file from start to end in 1 MiB calls (readwholefile). */
static void vm_readwhole(int fd, char *buf)
{
	off_t off = 0;
	ssize_t r;
	while ((r = B->pread(fd, buf, 1 << 20, off)) > 0)
		off += r;
	if (r < 0)
		die("read");
}

static void run_varmail(void)
{
	char p[64];
	char *buf = malloc(1 << 20);
	fill(buf, 1 << 20);
	struct stat st;
	char ready[64];
	snprintf(ready, sizeof(ready), "varmail/ready-%ld", opt_files);
	if (B->stat(ready, &st)) {
		if (B->mkdir("varmail") && errno != EEXIST)
			die("mkdir varmail");
		for (long i = 0; i < opt_files; i++) {
			vm_name(p, sizeof(p), i);
			int fd = B->open(p, O_CREAT | O_TRUNC | O_WRONLY, 0644);
			if (fd < 0)
				die("create %s", p);
			vm_append(fd, buf);
			B->close(fd);
		}
		int fd = B->open(ready, O_CREAT | O_WRONLY, 0644);
		if (fd < 0 || B->close(fd))
			die("create %s", ready);
	}
	/* Files keep growing by two appends per loop over a long run; the
	 * sizes stay near Filebench's as long as loops ~ files. */
	long loops = 0;
	double t0 = now(), el;
	while ((el = now() - t0) < opt_seconds) {
		long victim = rnd() % opt_files;
		vm_name(p, sizeof(p), victim);
		if (B->unlink(p))
			die("unlink %s", p);
		int fd = B->open(p, O_CREAT | O_EXCL | O_WRONLY | O_APPEND, 0644);
		if (fd < 0)
			die("create %s", p);
		vm_append(fd, buf);
		if (B->fsync(fd) || B->close(fd))
			die("fsync %s", p);

		vm_name(p, sizeof(p), rnd() % opt_files);
		fd = B->open(p, O_RDWR | O_APPEND, 0);
		if (fd < 0)
			die("open %s", p);
		vm_readwhole(fd, buf);
		vm_append(fd, buf);
		if (B->fsync(fd) || B->close(fd))
			die("fsync %s", p);

		vm_name(p, sizeof(p), rnd() % opt_files);
		fd = B->open(p, O_RDONLY, 0);
		if (fd < 0)
			die("open %s", p);
		vm_readwhole(fd, buf);
		if (B->close(fd))
			die("close %s", p);
		loops++;
	}
	fprintf(stderr, "# varmail: %ld loops over %ld files in %.2f s\n", loops, opt_files, el);
	result("varmail", "ops/s", loops * VARMAIL_OPS_PER_LOOP / el);
	free(buf);
}

/* ---- sqlite ------------------------------------------------------------- */

#ifdef HAVE_SQLITE
/* Single-row INSERT transactions (autocommit) with synchronous=FULL, in
 * rollback-journal (DELETE) or WAL mode, on a fresh database in the root. */
static void run_sqlite(void)
{
	char db_path[4096], extra[4200];
	snprintf(db_path, sizeof(db_path), "%s/bench.db", root);
	unlink(db_path);
	sqlite3 *db;
	if (sqlite3_open(db_path, &db) != SQLITE_OK)
		die("sqlite3_open %s", db_path);
	char sql[256];
	snprintf(sql, sizeof(sql),
		 "PRAGMA journal_mode=%s; PRAGMA synchronous=FULL;"
		 "CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB);",
		 opt_journal);
	char *err = NULL;
	if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
		fprintf(stderr, "bench_fs: sqlite: %s\n", err);
		exit(1);
	}
	sqlite3_stmt *st;
	sqlite3_prepare_v2(db, "INSERT INTO t(v) VALUES(?1)", -1, &st, NULL);
	char row[100];
	fill(row, sizeof(row));
	long n = opt_n, i;
	double t0 = now();
	for (i = 0; i < n && !capped(i, t0); i++) {
		sqlite3_bind_blob(st, 1, row, sizeof(row), SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_DONE) {
			fprintf(stderr, "bench_fs: sqlite insert: %s\n", sqlite3_errmsg(db));
			exit(1);
		}
		sqlite3_reset(st);
	}
	double el = now() - t0;
	char m[64];
	snprintf(m, sizeof(m), "sqlite_%s", opt_journal);
	note_count(m, i, n);
	result(m, "tx/s", i / el);
	sqlite3_finalize(st);
	sqlite3_close(db);
	unlink(db_path);
	snprintf(extra, sizeof(extra), "%s-wal", db_path);
	unlink(extra);
	snprintf(extra, sizeof(extra), "%s-shm", db_path);
	unlink(extra);
	snprintf(extra, sizeof(extra), "%s-journal", db_path);
	unlink(extra);
}
#endif


/* ---- tiered ------------------------------------------------------------- */

/* A data set of --files files of --file-kib KiB each in tiered/, sized by
 * bench/tiered.sh to four times a cairn volume's fast tier so that most of
 * it has to live on the capacity tier.  tiered-load writes it (1 MiB calls,
 * each file made durable once it is whole); tiered-mix then reads and
 * overwrites --chunk bytes at a time, picking the file with a zipfian
 * distribution, so that a few files are hot and most are cold. */

static void tiered_name(char *buf, size_t size, long i)
{
	snprintf(buf, size, "tiered/f%05ld", i);
}

static void run_tiered_load(void)
{
	const size_t io = 1 << 20;
	char *buf = malloc(io);
	char p[64];
	fill(buf, io);
	if (B->mkdir("tiered") && errno != EEXIST)
		die("mkdir tiered");
	long bytes = opt_file_kib * 1024;
	double t0 = now();
	for (long i = 0; i < opt_files; i++) {
		tiered_name(p, sizeof(p), i);
		int fd = B->open(p, O_CREAT | O_TRUNC | O_WRONLY, 0644);
		if (fd < 0)
			die("create %s", p);
		for (long off = 0; off < bytes; off += io) {
			size_t n = bytes - off < (long)io ? (size_t)(bytes - off) : io;
			/* Distinct contents per file, so nothing can share blocks. */
			memcpy(buf, &i, sizeof(i));
			if (B->pwrite(fd, buf, n, off) != (ssize_t)n)
				die("write %s", p);
		}
		if (B->filesync(fd) || B->close(fd))
			die("fsync %s", p);
	}
	if (B->dirsync("tiered"))
		die("fsync tiered");
	double el = now() - t0;
	double mib = (double)opt_files * bytes / (1 << 20);
	fprintf(stderr, "# tiered-load: %ld files of %ld KiB (%.0f MiB) in %.2f s\n", opt_files,
		opt_file_kib, mib, el);
	result("load", "MiB/s", mib / el);
	result("load_time", "s", el);
	free(buf);
}

/* The zipfian generator of YCSB (Gray et al., "Quickly generating
 * billion-record synthetic databases"): rank 0 is the most popular. */
struct zipf {
	long n;
	double theta, alpha, zetan, eta, half_pow_theta;
};

static void zipf_init(struct zipf *z, long n, double theta)
{
	double zeta2 = 1 + pow(0.5, theta);
	z->n = n;
	z->theta = theta;
	z->zetan = 0;
	for (long i = 1; i <= n; i++)
		z->zetan += 1 / pow((double)i, theta);
	z->alpha = 1 / (1 - theta);
	z->eta = (1 - pow(2.0 / n, 1 - theta)) / (1 - zeta2 / z->zetan);
	z->half_pow_theta = pow(0.5, theta);
}

static double uniform(void)
{
	return (double)(rnd() >> 11) * 0x1.0p-53;
}

static long zipf_next(const struct zipf *z)
{
	double u = uniform(), uz = u * z->zetan;
	if (uz < 1)
		return 0;
	if (uz < 1 + z->half_pow_theta)
		return 1 < z->n ? 1 : 0;
	long r = (long)(z->n * pow(z->eta * u - z->eta + 1, z->alpha));
	return r < z->n ? r : z->n - 1;
}

struct samples {
	double *v;
	long n, cap;
};

static void sample_add(struct samples *s, double x)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 4096;
		s->v = realloc(s->v, s->cap * sizeof(double));
		if (!s->v)
			die("realloc");
	}
	s->v[s->n++] = x;
}

static void run_tiered_mix(void)
{
	char p[64], m[64];
	long bytes = opt_file_kib * 1024;
	if (opt_chunk < 4096 || opt_chunk % 4096 || opt_chunk > bytes) {
		fprintf(stderr, "bench_fs: --chunk must be a multiple of 4096 within a file\n");
		exit(2);
	}
	/* One descriptor per file, opened before the clock starts: the mix
	 * times reads and writes, not opens. */
	struct rlimit rl;
	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < (rlim_t)opt_files + 64) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	int *fds = malloc(opt_files * sizeof(int));
	long *perm = malloc(opt_files * sizeof(long));
	for (long i = 0; i < opt_files; i++) {
		tiered_name(p, sizeof(p), i);
		if ((fds[i] = B->open(p, O_RDWR, 0)) < 0)
			die("open %s (run tiered-load first)", p);
		perm[i] = i;
	}
	/* Popularity ranks map to files through a fixed shuffle (YCSB
	 * scrambles its keys too), so that the hot files are not simply the
	 * last ones written, which a tiering policy would find on the fast
	 * tier anyway.  The shuffle is the same every round and contender. */
	for (long i = opt_files - 1; i > 0; i--) {
		long j = (long)(rnd() % (unsigned long long)(i + 1)), t = perm[i];
		perm[i] = perm[j], perm[j] = t;
	}
	rng ^= opt_seed * 0x9e3779b97f4a7c15ull;
	if (!rng)
		rng = 88172645463325252ull;
	struct zipf z;
	zipf_init(&z, opt_files, opt_theta);
	char *buf = malloc(opt_chunk);
	fill(buf, opt_chunk);
	long slots = (bytes - opt_chunk) / 4096 + 1, reads = 0, writes = 0;
	struct samples rl_s = {0}, wl_s = {0};
	double t0 = now(), el;
	while ((el = now() - t0) < opt_seconds) {
		int fd = fds[perm[zipf_next(&z)]];
		off_t off = (off_t)(rnd() % (unsigned long long)slots) * 4096;
		int is_read = (long)(rnd() % 100) < opt_read_pct;
		double t = now();
		if (is_read) {
			if (B->pread(fd, buf, opt_chunk, off) != (ssize_t)opt_chunk)
				die("read");
			sample_add(&rl_s, now() - t);
			reads++;
		} else {
			if (B->pwrite(fd, buf, opt_chunk, off) != (ssize_t)opt_chunk || B->datasync(fd))
				die("write");
			sample_add(&wl_s, now() - t);
			writes++;
		}
	}
	fprintf(stderr, "# tiered-mix %d/%d: %ld reads, %ld writes of %ld KiB over %ld files "
		"(theta %.2f) in %.2f s\n", opt_read_pct, 100 - opt_read_pct, reads, writes,
		opt_chunk / 1024, opt_files, opt_theta, el);
	snprintf(m, sizeof(m), "mix%d", opt_read_pct);
	result(m, "ops/s", (reads + writes) / el);
	snprintf(m, sizeof(m), "mix%d_MiB", opt_read_pct);
	result(m, "MiB/s", (reads + writes) * (double)opt_chunk / (1 << 20) / el);
	if (reads) {
		snprintf(m, sizeof(m), "mix%d_read", opt_read_pct);
		report_lat(m, rl_s.v, reads);
	}
	if (writes) {
		snprintf(m, sizeof(m), "mix%d_write", opt_read_pct);
		report_lat(m, wl_s.v, writes);
	}
	for (long i = 0; i < opt_files; i++)
		B->close(fds[i]);
	free(rl_s.v);
	free(wl_s.v);
	free(buf);
	free(perm);
	free(fds);
}

/* ---- main ----------------------------------------------------------------- */

static void usage(void)
{
	fprintf(stderr,
		"usage: bench_fs --dir DIR [--sync data|none] WORKLOAD [OPTIONS]\n"
		"       bench_fs --cairn VOLUME [--batch MS] WORKLOAD [OPTIONS]\n"
		"workloads:\n"
		"  micro            durable append/overwrite latency (4 KiB, 64 KiB),\n"
		"                   sequential write/read, warm random 4 KiB reads,\n"
		"                   durable create/rename/unlink/mkdir\n"
		"  bigdir-populate  create --entries empty files in bigdir/ (set-up)\n"
		"  bigdir-stat      stat random names in bigdir/\n"
		"  varmail          Filebench-varmail-style mail server loop\n"
		"  sqlite           single-row INSERT transactions, synchronous=FULL\n"
		"  tiered-load      write --files files of --file-kib KiB in tiered/\n"
		"  tiered-mix       zipfian (--theta) reads and durable overwrites of\n"
		"                   --chunk bytes at 4 KiB-aligned offsets of those files,\n"
		"                   --read-pct %% reads, for --seconds\n"
		"options:\n"
		"  --n N            latency samples / transactions (20000)\n"
		"  --meta N         files for the namespace operations (5000)\n"
		"  --seq MIB        sequential file size in MiB (1024)\n"
		"  --cap SEC        time cap of each timed loop (10)\n"
		"  --cdf FILE       write the 4 KiB append latencies (us) to FILE\n"
		"  --files N        varmail file set (2000)\n"
		"  --seconds S      varmail duration (10)\n"
		"  --journal MODE   sqlite journal mode: delete or wal (delete)\n"
		"  --entries N      entries of bigdir/ (1000000)\n"
		"  --write-only     micro: also time 4 KiB appends without the durability\n"
		"                   step (append_4k_write_only)\n"
		"  --file-kib N     tiered: size of each file in KiB (1024)\n"
		"  --read-pct N     tiered-mix: percentage of reads (90)\n"
		"  --chunk BYTES    tiered-mix: bytes per read or write (65536)\n"
		"  --theta X        tiered-mix: zipfian skew, 0 < X < 1 (0.99)\n"
		"  --seed N         tiered-mix: varies the operation sequence (0)\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"dir", required_argument, 0, 'd'},   {"cairn", required_argument, 0, 'c'},
		{"sync", required_argument, 0, 's'},  {"batch", required_argument, 0, 'b'},
		{"n", required_argument, 0, 'n'},     {"meta", required_argument, 0, 'm'},
		{"seq", required_argument, 0, 'q'},   {"cap", required_argument, 0, 'C'},
		{"cdf", required_argument, 0, 'D'},   {"files", required_argument, 0, 'f'},
		{"seconds", required_argument, 0, 'S'}, {"journal", required_argument, 0, 'j'},
		{"entries", required_argument, 0, 'e'}, {"write-only", no_argument, 0, 'w'},
		{"file-kib", required_argument, 0, 'F'}, {"read-pct", required_argument, 0, 'R'},
		{"chunk", required_argument, 0, 'K'},   {"theta", required_argument, 0, 'T'},
		{"seed", required_argument, 0, 'E'},
		{0, 0, 0, 0},
	};
	const char *volume = NULL;
	int batch_ms = 0, c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'd': root = optarg; break;
		case 'c': volume = optarg; break;
		case 's':
			if (strcmp(optarg, "data") && strcmp(optarg, "none"))
				usage();
			sync_data = !strcmp(optarg, "data");
			break;
		case 'b': batch_ms = atoi(optarg); break;
		case 'n': opt_n = atol(optarg); break;
		case 'm': opt_meta = atol(optarg); break;
		case 'q': opt_seq_mib = atol(optarg); break;
		case 'C': opt_cap = atof(optarg); break;
		case 'D': opt_cdf = optarg; break;
		case 'f': opt_files = atol(optarg); break;
		case 'S': opt_seconds = atof(optarg); break;
		case 'j': opt_journal = optarg; break;
		case 'e': opt_entries = atol(optarg); break;
		case 'w': opt_write_only = 1; break;
		case 'F': opt_file_kib = atol(optarg); break;
		case 'R': opt_read_pct = atoi(optarg); break;
		case 'K': opt_chunk = atol(optarg); break;
		case 'T': opt_theta = atof(optarg); break;
		case 'E': opt_seed = strtoull(optarg, NULL, 10); break;
		default: usage();
		}
	}
	if (optind != argc - 1 || !root == !volume || opt_n < 1 || opt_meta < 1 ||
	    opt_seq_mib < 1 || opt_files < 1 || opt_entries < 1 || opt_file_kib < 4 ||
	    opt_read_pct < 0 || opt_read_pct > 100 || !(opt_theta > 0 && opt_theta < 1))
		usage();
	const char *w = argv[optind];
	if (volume) {
		struct cairn_mount_opts mo = {.batch_ms = batch_ms};
		cfs = cairn_mount(volume, &mo);
		if (!cfs) {
			fprintf(stderr, "bench_fs: %s: %s\n", volume, cairn_last_error());
			return 1;
		}
		B = &cairn_backend;
	} else {
		B = &posix_backend;
	}
	if (!strcmp(w, "micro"))
		run_micro();
	else if (!strcmp(w, "bigdir-populate"))
		run_bigdir_populate();
	else if (!strcmp(w, "bigdir-stat"))
		run_bigdir_stat();
	else if (!strcmp(w, "varmail"))
		run_varmail();
	else if (!strcmp(w, "tiered-load"))
		run_tiered_load();
	else if (!strcmp(w, "tiered-mix"))
		run_tiered_mix();
#ifdef HAVE_SQLITE
	else if (!strcmp(w, "sqlite") && !volume)
		run_sqlite();
#endif
	else
		usage();
	if (cfs && cairn_unmount(cfs)) {
		fprintf(stderr, "bench_fs: unmount: %s\n", strerror(errno));
		return 1;
	}
	return 0;
}
