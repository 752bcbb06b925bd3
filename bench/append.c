/*
 * append.c - latency of a durable 4 KiB append, one call at a time.
 *
 *   bench_append cairn VOLUME N [SIZE]   cairn_write on a cairn volume (sync mode:
 *                                        durable when it returns)
 *   bench_append attach PATH N [SIZE]    the same through cairn_attach, on the
 *                                        daemon serving PATH (volume or mount
 *                                        point); the file is named after the pid
 *   bench_append fdatasync DIR N [SIZE]  write() + fdatasync() in DIR
 *   bench_append write DIR N [SIZE]      write() alone (no durability: tmpfs bound)
 *   bench_append seen MOUNTPOINT N [SIZE] a client's cairn_pwrite (cairn_attach)
 *                                        then a pread() of the same bytes
 *                                        through the FUSE mount, which must
 *                                        see them: the pair's latency
 *
 *   bench_append seen-stat MOUNTPOINT N  a client's O_APPEND write in its own
 *                                        log, then a stat() of the file
 *                                        through the mount, which must see
 *                                        the new size: the pair's latency
 *   bench_append handoff-holder PATH N   two processes write one file in
 *                                        turns: the one holding its grant
 *                                        (reported as handoff-holder) and
 *                                        the other (handoff-other), whose
 *                                        write makes the daemon apply the
 *                                        holder's log first
 *   bench_append threads-MODE PATH N T   T threads of one process, each
 *                                        appending N times to a file of its
 *                                        own; MODE is cairn, attach,
 *                                        fdatasync or write as above
 *
 * Prints one line: "<mode> n=N p50_us=.. p99_us=.. mean_us=.." (cairn,
 * attach, fdatasync and write add from_us=.. to_us=..: the timed appends'
 * window on the monotonic clock, for aggregates over processes) or, for
 * threads, "<mode> threads=T ops_s=..": the N x T timed appends over the
 * span from the first thread's first to the last one's last.  The file is
 * created fresh, and N appends are timed after 200 untimed warm-up
 * appends.  With BENCH_WAITS set, threads-cairn and threads-attach also
 * print the volume's checkpoints and digest waits to stderr.
 */
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cairn.h"

#define WARMUP 200

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

/* The timed appends' window (after the warm-up), on the clock every
 * process shares: the aggregate of many processes is their appends over
 * the span from the first one's start to the last one's end, without
 * their start (attach, open) and their end (close, unlink, detach). */
static double loop_from, loop_to;

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void report(const char *mode, double *lat, int n)
{
	double sum = 0;
	for (int i = 0; i < n; i++)
		sum += lat[i];
	qsort(lat, n, sizeof(*lat), cmp);
	printf("%s n=%d p50_us=%.3f p99_us=%.3f mean_us=%.3f", mode, n, lat[n / 2],
	       lat[(int)(n * 0.99)], sum / n);
	if (loop_to > loop_from)
		printf(" from_us=%.1f to_us=%.1f", loop_from, loop_to);
	printf("\n");
}

static int run_cairn(const char *vol, int attach, int n, size_t size, double *lat)
{
	cairn_fs *fs = attach ? cairn_attach(vol) : cairn_mount(vol, NULL);
	if (!fs) {
		fprintf(stderr, "bench_append: %s: %s\n", vol, cairn_last_error());
		return 1;
	}
	char name[64];
	snprintf(name, sizeof(name), "/bench-append-%d", (int)getpid());
	int fd = cairn_open(fs, name, O_CREAT | O_TRUNC | O_WRONLY | O_APPEND, 0644);
	char *buf = malloc(size);
	memset(buf, 'a', size);
	for (int i = 0; i < WARMUP + n; i++) {
		double t0 = now_us();
		if (i == WARMUP)
			loop_from = t0;
		if (cairn_write(fs, fd, buf, size) != (ssize_t)size) {
			perror("cairn_write");
			return 1;
		}
		if (i >= WARMUP)
			lat[i - WARMUP] = now_us() - t0;
	}
	loop_to = now_us();
	cairn_close(fs, fd);
	cairn_unlink(fs, name);
	cairn_unmount(fs);
	free(buf);
	return 0;
}

static int run_posix(const char *dir, int n, size_t size, int sync, double *lat)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/bench-append-%d", dir, (int)getpid());
	int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_APPEND, 0644);
	if (fd < 0) {
		perror(path);
		return 1;
	}
	char *buf = malloc(size);
	memset(buf, 'a', size);
	for (int i = 0; i < WARMUP + n; i++) {
		double t0 = now_us();
		if (i == WARMUP)
			loop_from = t0;
		if (write(fd, buf, size) != (ssize_t)size || (sync && fdatasync(fd))) {
			perror("write");
			return 1;
		}
		if (i >= WARMUP)
			lat[i - WARMUP] = now_us() - t0;
	}
	loop_to = now_us();
	close(fd);
	unlink(path);
	free(buf);
	return 0;
}

/* The cost of coherence: each round writes new bytes through the daemon
 * and reads them back through the kernel's page cache of the mount,
 * which the daemon must have told to forget them. */
static int run_seen(const char *mnt, int n, size_t size, double *lat)
{
	cairn_fs *fs = cairn_attach(mnt);
	if (!fs) {
		fprintf(stderr, "bench_append: %s: %s\n", mnt, cairn_last_error());
		return 1;
	}
	char name[64], path[4096];
	snprintf(name, sizeof(name), "/bench-seen-%d", (int)getpid());
	snprintf(path, sizeof(path), "%s%s", mnt, name);
	int cfd = cairn_open(fs, name, O_CREAT | O_TRUNC | O_WRONLY, 0644);
	char *buf = malloc(size), *got = malloc(size);
	memset(buf, 0, size);
	int kfd = -1;
	if (cfd < 0 || cairn_pwrite(fs, cfd, buf, size, 0) != (ssize_t)size ||
	    (kfd = open(path, O_RDONLY)) < 0) {
		perror("bench_append seen");
		return 1;
	}
	for (int i = 0; i < WARMUP + n; i++) {
		memset(buf, 'a' + i % 26, size);
		double t0 = now_us();
		if (cairn_pwrite(fs, cfd, buf, size, 0) != (ssize_t)size ||
		    pread(kfd, got, size, 0) != (ssize_t)size) {
			perror("bench_append seen");
			return 1;
		}
		if (i >= WARMUP)
			lat[i - WARMUP] = now_us() - t0;
		if (memcmp(buf, got, size)) {
			fprintf(stderr, "bench_append: the mount did not see write %d\n", i);
			return 1;
		}
	}
	close(kfd);
	cairn_close(fs, cfd);
	cairn_unlink(fs, name);
	cairn_unmount(fs);
	free(buf);
	free(got);
	return 0;
}

/* The size of a file a client keeps writing in its own log, seen by
 * stat() through the mount (which has not opened it): each round is a
 * client's 4 KiB append and the mount's stat of the new size. */
static int run_seen_stat(const char *mnt, int n, size_t size, double *lat)
{
	cairn_fs *fs = cairn_attach(mnt);
	if (!fs) {
		fprintf(stderr, "bench_append: %s: %s\n", mnt, cairn_last_error());
		return 1;
	}
	char name[64], path[4096];
	snprintf(name, sizeof(name), "/bench-seen-stat-%d", (int)getpid());
	snprintf(path, sizeof(path), "%s%s", mnt, name);
	int cfd = cairn_open(fs, name, O_CREAT | O_TRUNC | O_WRONLY | O_APPEND, 0644);
	char *buf = malloc(size);
	memset(buf, 'a', size);
	for (int i = 0; i < WARMUP + n; i++) {
		struct stat st;
		double t0 = now_us();
		if (cfd < 0 || cairn_write(fs, cfd, buf, size) != (ssize_t)size ||
		    stat(path, &st)) {
			perror("bench_append seen-stat");
			return 1;
		}
		if (i >= WARMUP)
			lat[i - WARMUP] = now_us() - t0;
		if ((size_t)st.st_size != (size_t)(i + 1) * size) {
			fprintf(stderr, "bench_append: the mount did not see append %d\n", i);
			return 1;
		}
	}
	cairn_close(fs, cfd);
	cairn_unlink(fs, name);
	cairn_unmount(fs);
	free(buf);
	return 0;
}

/* Two processes take turns writing one file (each waits for the other's
 * write through a pipe): the one that opened it last holds its grant and
 * writes in its own log; the other writes through the daemon, which first
 * applies the holder's log.  lat gets the holder's latencies, other's the
 * other's. */
static int handoff_side(const char *path, int n, size_t size, int first, int in, int out,
                        double *lat, int ready)
{
	cairn_fs *fs = cairn_attach(path);
	if (!fs)
		return 1;
	if (!first) {
		char c;
		if (read(ready, &c, 1) != 1) /* the other opened first */
			return 1;
	}
	int fd = cairn_open(fs, "/bench-handoff", O_CREAT | O_WRONLY, 0644);
	if (first && (fd < 0 || write(ready, "r", 1) != 1))
		return 1;
	char *buf = malloc(size);
	memset(buf, first ? 'f' : 's', size);
	for (int i = 0; i < 2 * (WARMUP + n); i++) {
		char c;
		if ((i % 2 == 0) == first) {
			double t0 = now_us();
			if (cairn_pwrite(fs, fd, buf, size, 0) != (ssize_t)size)
				return 1;
			if (i / 2 >= WARMUP)
				lat[i / 2 - WARMUP] = now_us() - t0;
			if (write(out, "x", 1) != 1)
				return 1;
		} else if (read(in, &c, 1) != 1) {
			return 1;
		}
	}
	cairn_close(fs, fd);
	cairn_unmount(fs);
	free(buf);
	return 0;
}

static int run_handoff(const char *path, int n, size_t size, double *lat)
{
	int ab[2], ba[2], ready[2];
	if (pipe(ab) || pipe(ba) || pipe(ready))
		return 1;
	pid_t child = fork();
	if (child == 0) {
		double *mine = calloc(n, sizeof(double));
		int rc = handoff_side(path, n, size, 1, ba[0], ab[1], mine, ready[1]);
		if (!rc)
			report("handoff-other", mine, n);
		fflush(stdout);
		_exit(rc);
	}
	int rc = handoff_side(path, n, size, 0, ab[0], ba[1], lat, ready[0]);
	int st = 0;
	waitpid(child, &st, 0);
	if (!rc && !(WIFEXITED(st) && WEXITSTATUS(st) == 0))
		rc = 1;
	cairn_fs *fs = cairn_attach(path);
	if (fs) {
		cairn_unlink(fs, "/bench-handoff");
		cairn_unmount(fs);
	}
	return rc;
}

/* ---- threads of one process ---- */

struct writer {
	const char *mode, *path;
	cairn_fs *fs; /* cairn and attach: shared by the threads */
	int n, id;
	size_t size;
	int failed;
	double from, to; /* the timed appends' window (after the warm-up) */
};

static void *write_thread(void *arg)
{
	struct writer *w = arg;
	char name[4200];
	int posix = w->fs == NULL;
	snprintf(name, sizeof(name), "%s/bench-threads-%d-%d", posix ? w->path : "", (int)getpid(),
	         w->id);
	int flags = O_CREAT | O_TRUNC | O_WRONLY | O_APPEND;
	int fd = posix ? open(name, flags, 0644) : cairn_open(w->fs, name, flags, 0644);
	char *buf = malloc(w->size);
	memset(buf, 'a', w->size);
	for (int i = 0; i < WARMUP + w->n && fd >= 0; i++) {
		if (i == WARMUP)
			w->from = now_us();
		ssize_t r = posix ? write(fd, buf, w->size) : cairn_write(w->fs, fd, buf, w->size);
		if (r != (ssize_t)w->size ||
		    (posix && !strcmp(w->mode, "fdatasync") && fdatasync(fd))) {
			w->failed = 1;
			break;
		}
	}
	w->to = now_us();
	w->failed |= fd < 0;
	if (posix) {
		close(fd);
		unlink(name);
	} else {
		cairn_close(w->fs, fd);
		cairn_unlink(w->fs, name);
	}
	free(buf);
	return NULL;
}

static int run_threads(const char *mode, const char *path, int n, int t, size_t size)
{
	cairn_fs *fs = NULL;
	if (!strcmp(mode, "cairn") || !strcmp(mode, "attach")) {
		fs = !strcmp(mode, "attach") ? cairn_attach(path) : cairn_mount(path, NULL);
		if (!fs) {
			fprintf(stderr, "bench_append: %s: %s\n", path, cairn_last_error());
			return 1;
		}
	}
	struct writer w[64];
	pthread_t th[64];
	if (t < 1 || t > 64)
		return 2;
	for (int i = 0; i < t; i++) {
		w[i] = (struct writer){mode, path, fs, n, i, size, 0, 0, 0};
		pthread_create(&th[i], NULL, write_thread, &w[i]);
	}
	int failed = 0;
	double from = 0, to = 0;
	for (int i = 0; i < t; i++) {
		pthread_join(th[i], NULL);
		failed |= w[i].failed;
		if (i == 0 || w[i].from < from)
			from = w[i].from;
		if (w[i].to > to)
			to = w[i].to;
	}
	double secs = (to - from) / 1e6;
	struct cairn_info info;
	if (fs && getenv("BENCH_WAITS") && cairn_info(fs, &info) == 0)
		fprintf(stderr, "checkpoints=%llu log_waits=%llu\n",
		        (unsigned long long)info.checkpoints, (unsigned long long)info.log_waits);
	if (fs)
		cairn_unmount(fs);
	if (failed) {
		fprintf(stderr, "bench_append: a writer failed\n");
		return 1;
	}
	printf("threads-%s threads=%d ops_s=%.0f\n", mode, t, (double)t * n / secs);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 5 && !strncmp(argv[1], "threads-", 8))
		return run_threads(argv[1] + 8, argv[2], atoi(argv[3]), atoi(argv[4]), 4096);
	if (argc < 4) {
		fprintf(stderr,
		        "usage: bench_append cairn|attach|fdatasync|write|seen PATH N [SIZE]\n");
		return 2;
	}
	int n = atoi(argv[3]);
	size_t size = argc > 4 ? (size_t)atol(argv[4]) : 4096;
	double *lat = calloc(n, sizeof(double));
	int rc;
	if (!strcmp(argv[1], "cairn") || !strcmp(argv[1], "attach"))
		rc = run_cairn(argv[2], !strcmp(argv[1], "attach"), n, size, lat);
	else if (!strcmp(argv[1], "fdatasync"))
		rc = run_posix(argv[2], n, size, 1, lat);
	else if (!strcmp(argv[1], "write"))
		rc = run_posix(argv[2], n, size, 0, lat);
	else if (!strcmp(argv[1], "seen"))
		rc = run_seen(argv[2], n, size, lat);
	else if (!strcmp(argv[1], "seen-stat"))
		rc = run_seen_stat(argv[2], n, size, lat);
	else if (!strcmp(argv[1], "handoff-holder"))
		rc = run_handoff(argv[2], n, size, lat);
	else
		rc = 2;
	if (!rc)
		report(argv[1], lat, n);
	free(lat);
	return rc;
}
