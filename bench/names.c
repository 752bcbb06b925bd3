/*
 * names.c - the cost of a durable create and unlink, one call at a time.
 *
 *   bench_names attach MOUNTPOINT N   cairn_attach on the daemon serving
 *                                     the mount (every call durable when it
 *                                     returns): creates and unlinks in the
 *                                     client's own log where it may
 *   bench_names posix DIR N           open/write/close and unlink on a cairn
 *                                     FUSE mount (sync mode: durable)
 *   bench_names fsync DIR N           the same plus fdatasync of the file and
 *                                     fsync of the directory (ext4)
 *
 * Three loops over N files of 4 KiB in a fresh directory: "create" (open
 * with O_CREAT|O_EXCL, write, close), "unlink" (of the files made by the
 * first loop), "cycle" (create, write, close, unlink: a journal's life).
 * Prints one line: "<mode> create_us=.. unlink_us=.. cycle_us=.." (the
 * median of each loop's calls).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cairn.h"

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp);
	return v[n / 2];
}

struct target {
	cairn_fs *fs; /* attach; else POSIX calls */
	int sync;     /* fdatasync the file, fsync the directory */
	int dirfd;
	char dir[4096];
};

static int make(struct target *t, const char *path, const char *buf)
{
	if (t->fs) {
		int fd = cairn_open(t->fs, path, O_CREAT | O_EXCL | O_WRONLY, 0644);
		if (fd < 0 || cairn_write(t->fs, fd, buf, 4096) != 4096)
			return -1;
		return cairn_close(t->fs, fd);
	}
	int fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0644);
	if (fd < 0 || write(fd, buf, 4096) != 4096 || (t->sync && fdatasync(fd)))
		return -1;
	if (close(fd) || (t->sync && fsync(t->dirfd)))
		return -1;
	return 0;
}

static int drop(struct target *t, const char *path)
{
	if (t->fs)
		return cairn_unlink(t->fs, path);
	return unlink(path) || (t->sync && fsync(t->dirfd)) ? -1 : 0;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: bench_names attach|posix|fsync PATH N\n");
		return 2;
	}
	struct target t = {.dirfd = -1};
	int n = atoi(argv[3]);
	if (n < 1)
		return 2;
	if (!strcmp(argv[1], "attach")) {
		t.fs = cairn_attach(argv[2]);
		if (!t.fs) {
			fprintf(stderr, "bench_names: %s: %s\n", argv[2], cairn_last_error());
			return 1;
		}
		snprintf(t.dir, sizeof(t.dir), "/names-%d", (int)getpid());
		if (cairn_mkdir(t.fs, t.dir, 0755))
			return 1;
	} else {
		t.sync = !strcmp(argv[1], "fsync");
		snprintf(t.dir, sizeof(t.dir), "%s/names-%d", argv[2], (int)getpid());
		if (mkdir(t.dir, 0755) || (t.dirfd = open(t.dir, O_RDONLY | O_DIRECTORY)) < 0)
			return 1;
	}
	char *buf = malloc(4096), path[4200];
	double *lat[3];
	for (int k = 0; k < 3; k++)
		lat[k] = calloc((size_t)n, sizeof(double));
	memset(buf, 'n', 4096);
	for (int loop = 0; loop < 3; loop++) {
		for (int i = 0; i < n; i++) {
			snprintf(path, sizeof(path), "%s/%c%d", t.dir, loop == 2 ? 'j' : 'm', i);
			double t0 = now_us();
			int rc = loop == 1 ? drop(&t, path) : make(&t, path, buf);
			if (!rc && loop == 2)
				rc = drop(&t, path);
			lat[loop][i] = now_us() - t0;
			if (rc) {
				fprintf(stderr, "bench_names: %s: %s\n", path, strerror(errno));
				return 1;
			}
		}
	}
	printf("%s create_us=%.2f unlink_us=%.2f cycle_us=%.2f\n", argv[1], median(lat[0], n),
	       median(lat[1], n), median(lat[2], n));
	if (t.fs) {
		cairn_rmdir(t.fs, t.dir);
		cairn_unmount(t.fs);
	} else {
		close(t.dirfd);
		rmdir(t.dir);
	}
	return 0;
}
