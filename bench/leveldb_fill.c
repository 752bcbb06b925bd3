/*
 * leveldb_fill.c - LevelDB's fillseq, through its C API: N puts of a
 * 16-byte key and a 100-byte value in key order into a new database in
 * DIR, and the microseconds per put.  sync=0 is LevelDB's default (each
 * put is one write() of its log record, no fdatasync); sync=1 asks for an
 * fdatasync after each.  A program that knows nothing of cairn: bench/
 * buffered.sh runs it on each contender, under `cairn run` for the shim.
 *
 *   bench_leveldb_fill DIR N SYNC   prints "fillseq_sync=S us_per_op=X"
 */
#include <leveldb/c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_us(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: bench_leveldb_fill DIR N SYNC\n");
		return 2;
	}
	long n = atol(argv[2]);
	int sync = atoi(argv[3]);
	char *err = NULL;
	leveldb_options_t *o = leveldb_options_create();
	leveldb_options_set_create_if_missing(o, 1);
	leveldb_options_set_error_if_exists(o, 1);
	leveldb_t *db = leveldb_open(o, argv[1], &err);
	if (err) {
		fprintf(stderr, "bench_leveldb_fill: open %s: %s\n", argv[1], err);
		return 1;
	}
	leveldb_writeoptions_t *w = leveldb_writeoptions_create();
	leveldb_writeoptions_set_sync(w, (unsigned char)sync);
	char key[17], val[100];
	memset(val, 'v', sizeof(val));
	double t0 = now_us();
	for (long i = 0; i < n && !err; i++) {
		snprintf(key, sizeof(key), "%016ld", i);
		val[i % sizeof(val)] = (char)('a' + i % 26);
		leveldb_put(db, w, key, 16, val, sizeof(val), &err);
	}
	double t1 = now_us();
	if (err) {
		fprintf(stderr, "bench_leveldb_fill: put: %s\n", err);
		return 1;
	}
	leveldb_close(db);
	printf("fillseq_sync=%d us_per_op=%.3f\n", sync, (t1 - t0) / (double)n);
	return 0;
}
