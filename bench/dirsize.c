/*
 * dirsize.c - does lookup stay fast in a directory of a million entries?
 *
 *   bench_dirsize VOLUME N
 *
 * Creates N empty files in /d through the native API, then times stat of
 * 100,000 random names, a full readdir, and unlink of every file.  Prints
 * one line per phase: "<phase> n=N us_per_op=..".  Run it for N = 1000 and
 * N = 1000000 and compare the stat line.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cairn.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void name_of(char *buf, size_t size, long i)
{
	snprintf(buf, size, "/d/file-%08ld.eml", i);
}

static int phase_create(cairn_fs *fs, long n)
{
	char path[64];
	for (long i = 0; i < n; i++) {
		name_of(path, sizeof(path), i);
		int fd = cairn_open(fs, path, O_CREAT | O_EXCL | O_WRONLY, 0644);
		if (fd < 0 || cairn_close(fs, fd)) {
			perror(path);
			return 1;
		}
	}
	return 0;
}

static int phase_stat(cairn_fs *fs, long n, long lookups)
{
	char path[64];
	struct stat st;
	unsigned long long x = 88172645463325252ull;
	for (long i = 0; i < lookups; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		name_of(path, sizeof(path), (long)(x % (unsigned long long)n));
		if (cairn_stat(fs, path, &st)) {
			perror(path);
			return 1;
		}
	}
	return 0;
}

static long phase_readdir(cairn_fs *fs)
{
	cairn_dir *d = cairn_opendir(fs, "/d");
	long count = 0;
	while (d && cairn_readdir(d))
		count++;
	cairn_closedir(d);
	return count - 2; /* . and .. */
}

static int phase_unlink(cairn_fs *fs, long n)
{
	char path[64];
	for (long i = 0; i < n; i++) {
		name_of(path, sizeof(path), i);
		if (cairn_unlink(fs, path)) {
			perror(path);
			return 1;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: bench_dirsize VOLUME N\n");
		return 2;
	}
	long n = atol(argv[2]), lookups = 100000;
	cairn_fs *fs = cairn_mount(argv[1], NULL);
	if (!fs || cairn_mkdir(fs, "/d", 0755)) {
		fprintf(stderr, "bench_dirsize: %s: %s\n", argv[1], cairn_last_error());
		return 1;
	}
	double t0 = now_s();
	if (phase_create(fs, n))
		return 1;
	double t1 = now_s();
	if (phase_stat(fs, n, lookups))
		return 1;
	double t2 = now_s();
	long listed = phase_readdir(fs);
	double t3 = now_s();
	if (phase_unlink(fs, n))
		return 1;
	double t4 = now_s();
	printf("create n=%ld us_per_op=%.2f\n", n, (t1 - t0) * 1e6 / n);
	printf("stat n=%ld us_per_op=%.2f\n", n, (t2 - t1) * 1e6 / lookups);
	printf("readdir n=%ld listed=%ld us_per_entry=%.3f\n", n, listed, (t3 - t2) * 1e6 / n);
	printf("unlink n=%ld us_per_op=%.2f\n", n, (t4 - t3) * 1e6 / n);
	cairn_rmdir(fs, "/d");
	return cairn_unmount(fs) || listed != n;
}
