/*
 * test_fuse_torn.c - a write() through the mount is atomic across a crash
 * of the daemon, for the writes the documentation promises (README,
 * docs/cairn.1 "WRITE ATOMICITY", docs/ARCHITECTURE.md).
 *
 * The failure it guards against: the kernel splits one write() into
 * several WRITE requests, and cairn logs each request as its own record,
 * so a kill -9 between two of them leaves half the write.  Through the
 * page cache the kernel ends a request after a partly written page that
 * is not cached: a write of 10000 bytes at offset 3507 of a file not read
 * since it was opened arrives as 589 bytes, then 9411.
 *
 * Each round mounts an emul volume, starts one writer process per file,
 * kills the daemon with SIGKILL after a random delay, detaches the dead
 * mount (`cairn umount --lazy`), mounts again and checks every file.  The
 * writers never read their files, and each round's mount starts with an
 * empty page cache, so their partial pages are never cached.  The writes:
 *   unaligned   write-only, 10000 bytes at offset 3507, over and over;
 *   big         write-only, 1 MiB at offset 5000 from a page-aligned buffer;
 *   aligned     read-write, 10000 bytes at offset 8192 (a write through a
 *               read-write descriptor that starts on a page boundary);
 *   append      write-only O_APPEND, records of 100 bytes;
 *   append3000  write-only O_APPEND, records of 3000 bytes.
 * After the kill each write is there entirely or not at all: the
 * unaligned, big and aligned ranges hold one version, the last one
 * acknowledged or the one in flight; an append file holds whole records,
 * all acknowledged ones and at most the one in flight.
 *
 * The same rounds run in batch mode, where a crash may lose the writes
 * of the last few milliseconds but must keep whole ones.  A last test
 * checks that write-only descriptors, which write around the page cache,
 * stay coherent with pages that other descriptors cached, mapped or
 * dirtied through a shared mapping.
 *
 * Bounded by rounds, not time.  Skipped unless root with /dev/fuse.  The
 * cairn command is CAIRN_BIN (set by CMake).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "fusetest.h"

#ifndef CAIRN_BIN
#error "CAIRN_BIN must name the cairn command"
#endif

#define ROUNDS 12
#define KILL_MIN_MS 20
#define KILL_SPAN_MS 180 /* the kill lands KILL_MIN_MS + [0, KILL_SPAN_MS) ms in */

/* A region that one write() replaces again and again, with a version in
 * every 8-byte word of the written bytes. */
struct region {
	const char *name;
	off_t off;
	size_t len;
	int flags; /* how the writer opens the file */
};

static const struct region regions[] = {
    {"unaligned", 3507, 10000, O_WRONLY},
    {"big", 5000, 1 << 20, O_WRONLY},
    {"aligned", 8192, 10000, O_RDWR},
};
#define NREGIONS (sizeof(regions) / sizeof(regions[0]))

/* A file that grows by records appended with O_APPEND on a write-only
 * descriptor.  Records of 100 bytes cross a page boundary once in 41;
 * records of 3000 bytes three times in four, so that a kill often lands
 * in one that crosses. */
struct appender {
	const char *name;
	size_t rec;
};

static const struct appender appenders[] = {{"append", 100}, {"append3000", 3000}};
#define NAPPENDERS (sizeof(appenders) / sizeof(appenders[0]))
#define MAX_REC 3000

/* What the writers have had acknowledged, in memory shared with the test. */
struct acked {
	volatile uint64_t version[NREGIONS]; /* the last version written */
	volatile uint64_t records[NAPPENDERS];
};

static struct {
	char root[PATH_MAX], vol[PATH_MAX], mnt[PATH_MAX];
	pid_t daemon; /* the `cairn mount --foreground` child, or 0 */
	bool batch;   /* mount in batch mode: a crash may lose unsynced writes */
	struct acked *acked;
	uint64_t version[NREGIONS];   /* each region's version after the last check */
	uint64_t records[NAPPENDERS]; /* records in each file after the last check */
} g;

static char *at(const char *rel)
{
	static char bufs[2][PATH_MAX];
	static int next;
	char *b = bufs[next++ % 2];
	snprintf(b, PATH_MAX, "%s/%s", g.mnt, rel);
	return b;
}

/* Whatever a failed test left behind: no mount, no daemon. */
static void leave_no_mount(void)
{
	if (is_mounted_at(g.mnt))
		umount2(g.mnt, MNT_DETACH);
	if (g.daemon > 0) {
		kill(g.daemon, SIGKILL);
		waitpid(g.daemon, NULL, 0);
		g.daemon = 0;
	}
}

static void mount_start(void)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (g.batch)
			execl(CAIRN_BIN, "cairn", "mount", g.vol, g.mnt, "--foreground", "--batch",
			      "5", (char *)NULL);
		else
			execl(CAIRN_BIN, "cairn", "mount", g.vol, g.mnt, "--foreground",
			      (char *)NULL);
		_exit(127);
	}
	g.daemon = pid;
	wait_for_mount(&g.daemon, g.mnt);
}

/* ---- the contents ---------------------------------------------------------- */

/* Version v of a region: v in every 8-byte word, the last word cut short. */
static void fill_version(char *buf, size_t len, uint64_t v)
{
	for (size_t i = 0; i < len; i += sizeof(v))
		memcpy(buf + i, &v, len - i < sizeof(v) ? len - i : sizeof(v));
}

/* Record r of an append file: r, then the byte r % 251 repeated. */
static void fill_record(char *rec, size_t len, uint64_t r)
{
	memset(rec, (int)(r % 251), len);
	memcpy(rec, &r, sizeof(r));
}

/* ---- the writers ----------------------------------------------------------- */

/* A kill before a writer opened its file is a round with nothing to write;
 * any other failure to open is the test's. */
static int open_or_exit(const char *rel, int flags)
{
	int fd = open(at(rel), flags);
	if (fd < 0)
		_exit(errno == ENOTCONN || errno == ECONNABORTED ? 0 : 1);
	return fd;
}

/* Replaces region k with its next version until the mount dies under it.
 * The big buffer is page-aligned, as the promise for 1 MiB asks; the
 * small ones are not. */
static void region_writer(size_t k)
{
	const struct region *rg = &regions[k];
	int fd = open_or_exit(rg->name, rg->flags);
	char *b;
	if (posix_memalign((void **)&b, 4096, rg->len + 64))
		_exit(1);
	char *buf = rg->len < (1 << 20) ? b + 27 : b;
	for (;;) {
		uint64_t v = g.acked->version[k] + 1;
		fill_version(buf, rg->len, v);
		if (pwrite(fd, buf, rg->len, rg->off) != (ssize_t)rg->len)
			_exit(0);
		g.acked->version[k] = v;
	}
}

/* Appends records to file j until the mount dies under it, or until the
 * file holds APPEND_CAP bytes: a fast machine would otherwise fill the
 * 64 MiB volume within the rounds, and the tests after this one would
 * meet ENOSPC instead of what they test. */
#define APPEND_CAP (8u << 20)

static void append_writer(size_t j)
{
	const struct appender *a = &appenders[j];
	int fd = open_or_exit(a->name, O_WRONLY | O_APPEND);
	char rec[MAX_REC];
	for (;;) {
		uint64_t r = g.acked->records[j];
		if ((r + 1) * a->rec > APPEND_CAP)
			_exit(0); /* as when the mount dies under it */
		fill_record(rec, a->rec, r);
		if (write(fd, rec, a->rec) != (ssize_t)a->rec)
			_exit(0);
		g.acked->records[j] = r + 1;
	}
}

/* ---- the checks ------------------------------------------------------------- */

static bool read_exactly(int fd, char *buf, size_t len, off_t off, const char *name)
{
	ssize_t n = pread(fd, buf, len, off);
	if (n == (ssize_t)len)
		return true;
	print_error("%s: read %zd of %zu bytes at %lld (%s)\n", name, n, len, (long long)off,
	            n < 0 ? strerror(errno) : "short");
	return false;
}

/* Whether region k holds one whole version from lo (the last acknowledged
 * in sync mode, the last one checked in batch mode) to the one in flight
 * after acked.  Says what is wrong if not. */
static bool check_region(size_t k, uint64_t lo, uint64_t acked)
{
	const struct region *rg = &regions[k];
	int fd = open(at(rg->name), O_RDONLY);
	assert_true(fd >= 0);
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	char *got = malloc(rg->len), *want = malloc(rg->len);
	assert_non_null(got);
	assert_non_null(want);
	bool ok = false;
	uint64_t v = 0;
	if (st.st_size != rg->off + (off_t)rg->len) {
		print_error("%s: size %lld, expected %lld\n", rg->name, (long long)st.st_size,
		            (long long)(rg->off + (off_t)rg->len));
	} else if (read_exactly(fd, got, rg->len, rg->off, rg->name)) {
		memcpy(&v, got, sizeof(v));
		fill_version(want, rg->len, v);
		size_t i = 0;
		while (i < rg->len && got[i] == want[i])
			i++;
		uint64_t other = 0;
		memcpy(&other, got + (i & ~(size_t)7), i + 8 <= rg->len ? 8 : rg->len - i);
		if (i < rg->len)
			print_error("%s: torn write: version %llu up to byte %lld of the file, "
			            "then version %llu (acknowledged: %llu)\n",
			            rg->name, (unsigned long long)v,
			            (long long)(rg->off + (off_t)i), (unsigned long long)other,
			            (unsigned long long)acked);
		else if (v < lo || v > acked + 1)
			print_error("%s: holds version %llu, expected %llu to %llu\n", rg->name,
			            (unsigned long long)v, (unsigned long long)lo,
			            (unsigned long long)acked + 1);
		else
			ok = true;
	}
	free(got);
	free(want);
	close(fd);
	g.version[k] = v;
	return ok;
}

/* Whether append file j holds whole records: at least lo (every
 * acknowledged one in sync mode, those checked before in batch mode) and
 * at most the one in flight after acked. */
static bool check_append(size_t j, uint64_t lo, uint64_t acked)
{
	const struct appender *a = &appenders[j];
	int fd = open(at(a->name), O_RDONLY);
	assert_true(fd >= 0);
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	uint64_t n = (uint64_t)st.st_size / a->rec;
	g.records[j] = n;
	bool ok = false;
	if ((uint64_t)st.st_size % a->rec)
		print_error("%s: torn record: size %lld is not a multiple of %zu (acknowledged: "
		            "%llu records)\n",
		            a->name, (long long)st.st_size, a->rec, (unsigned long long)acked);
	else if (n < lo || n > acked + 1)
		print_error("%s: %llu records, expected %llu to %llu\n", a->name,
		            (unsigned long long)n, (unsigned long long)lo,
		            (unsigned long long)acked + 1);
	else
		ok = true;
	char got[MAX_REC], want[MAX_REC];
	for (uint64_t r = 0; ok && r < n; r++) {
		ok = read_exactly(fd, got, a->rec, (off_t)(r * a->rec), a->name);
		fill_record(want, a->rec, r);
		if (ok && memcmp(got, want, a->rec)) {
			print_error("%s: record %llu of %llu is damaged\n", a->name,
			            (unsigned long long)r, (unsigned long long)n);
			ok = false;
		}
	}
	close(fd);
	return ok;
}

/* ---- the test --------------------------------------------------------------- */

/* The files with version 0 (and empty append files), written while
 * nothing is killed. */
static void create_files(void)
{
	for (size_t k = 0; k < NREGIONS; k++) {
		const struct region *rg = &regions[k];
		char *buf = malloc(rg->off + rg->len);
		assert_non_null(buf);
		memset(buf, 0xee, rg->off);
		fill_version(buf + rg->off, rg->len, 0);
		int fd = open(at(rg->name), O_CREAT | O_TRUNC | O_WRONLY, 0644);
		assert_true(fd >= 0);
		assert_int_equal(write(fd, buf, rg->off + rg->len), (ssize_t)(rg->off + rg->len));
		close(fd);
		free(buf);
		g.version[k] = 0;
	}
	for (size_t j = 0; j < NAPPENDERS; j++) {
		int fd = open(at(appenders[j].name), O_CREAT | O_TRUNC | O_WRONLY, 0644);
		assert_true(fd >= 0);
		close(fd);
		g.records[j] = 0;
	}
}

/* One round: write (one process per file), kill the daemon, detach, mount
 * again, check.  Returns how many files were wrong. */
static int kill_round(int round, unsigned *seed)
{
	enum { NWRITERS = NREGIONS + NAPPENDERS };
	pid_t w[NWRITERS];
	for (size_t i = 0; i < NWRITERS; i++) {
		if (i < NREGIONS)
			g.acked->version[i] = g.version[i];
		else
			g.acked->records[i - NREGIONS] = g.records[i - NREGIONS];
	}
	for (size_t i = 0; i < NWRITERS; i++) {
		w[i] = fork();
		assert_true(w[i] >= 0);
		if (w[i] == 0) {
			if (i < NREGIONS)
				region_writer(i);
			else
				append_writer(i - NREGIONS);
		}
	}
	sleep_ms(KILL_MIN_MS + (int)(rand_r(seed) % KILL_SPAN_MS));
	assert_int_equal(kill(g.daemon, SIGKILL), 0);
	int st;
	assert_int_equal(waitpid(g.daemon, &st, 0), g.daemon);
	g.daemon = 0;
	for (size_t i = 0; i < NWRITERS; i++) {
		assert_int_equal(waitpid(w[i], &st, 0), w[i]); /* the dead mount fails it */
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			fail_msg("round %d: writer %zu could not start (status %d)", round, i, st);
	}
	assert_int_equal(run_cairn("umount", g.mnt, "--lazy", NULL), 0);
	mount_start();
	int bad = 0;
	for (size_t k = 0; k < NREGIONS; k++) {
		uint64_t acked = g.acked->version[k];
		bad += !check_region(k, g.batch ? g.version[k] : acked, acked);
	}
	for (size_t j = 0; j < NAPPENDERS; j++) {
		uint64_t acked = g.acked->records[j];
		bad += !check_append(j, g.batch ? g.records[j] : acked, acked);
	}
	print_message("round %d: versions %llu %llu %llu, records %llu %llu%s\n", round,
	              (unsigned long long)g.version[0], (unsigned long long)g.version[1],
	              (unsigned long long)g.version[2], (unsigned long long)g.records[0],
	              (unsigned long long)g.records[1], bad ? " (wrong: above)" : "");
	return bad;
}

/* rounds kill rounds, in sync or batch mode. */
static void kill_rounds(int rounds, bool batch)
{
	leave_no_mount();
	g.batch = batch;
	mount_start();
	create_files();
	/* Start the rounds from an empty page cache too. */
	assert_int_equal(run_cairn("umount", g.mnt, NULL), 0);
	waitpid(g.daemon, NULL, 0);
	mount_start();
	const char *s = getenv("CAIRN_TEST_SEED");
	const unsigned seed0 = s ? (unsigned)strtoul(s, NULL, 0) : (unsigned)time(NULL);
	unsigned seed = seed0;
	print_message("seed %u (CAIRN_TEST_SEED)\n", seed0);
	int bad = 0;
	for (int round = 0; round < rounds && !bad; round++)
		bad += kill_round(round, &seed);
	if (bad)
		fail_msg("a write was torn or lost (CAIRN_TEST_SEED=%u)", seed0);
	assert_int_equal(run_cairn("umount", g.mnt, NULL), 0);
	int st;
	assert_int_equal(waitpid(g.daemon, &st, 0), g.daemon);
	g.daemon = 0;
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void test_no_torn_write(void **state)
{
	(void)state;
	kill_rounds(ROUNDS, false);
}

/* In batch mode a crash may lose the writes of the last few milliseconds,
 * but what stays is a prefix of whole writes. */
static void test_no_torn_write_batch(void **state)
{
	(void)state;
	kill_rounds(ROUNDS / 2, true);
}

/* ---- the page cache -------------------------------------------------------- */

static void expect_bytes(const char *what, const char *got, size_t off, size_t len, char c)
{
	for (size_t i = off; i < off + len; i++)
		if (got[i] != c)
			fail_msg("%s: byte %zu is '%c', expected '%c'", what, i, got[i], c);
}

/* A write-only descriptor writes around the page cache: pages that other
 * descriptors cached, or mapped and dirtied, must not hide its data, nor
 * it theirs. */
static void test_cache_coherent(void **state)
{
	(void)state;
	leave_no_mount();
	g.batch = false;
	mount_start();
	enum { SIZE = 3 * 4096 };
	char buf[SIZE];
	memset(buf, 'a', SIZE);
	int w = open(at("coherent"), O_CREAT | O_TRUNC | O_WRONLY, 0644);
	assert_true(w >= 0);
	assert_int_equal(write(w, buf, SIZE), SIZE);
	int r = open(at("coherent"), O_RDONLY), rw = open(at("coherent"), O_RDWR);
	assert_true(r >= 0 && rw >= 0);
	assert_int_equal(pread(r, buf, SIZE, 0), SIZE); /* now cached */
	char *map = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, rw, 0);
	assert_true(map != MAP_FAILED);
	expect_bytes("mapping before", map, 0, SIZE, 'a');

	/* Over cached and mapped clean pages. */
	char b[5000];
	memset(b, 'b', sizeof(b));
	assert_int_equal(pwrite(w, b, sizeof(b), 1000), (ssize_t)sizeof(b));
	assert_int_equal(pread(r, buf, SIZE, 0), SIZE);
	expect_bytes("read after the write", buf, 1000, sizeof(b), 'b');
	expect_bytes("read after the write", buf, 6000, SIZE - 6000, 'a');
	expect_bytes("mapping after the write", map, 1000, sizeof(b), 'b');

	/* Over a page dirtied through the mapping: both changes stay. */
	map[9000] = 'c';
	assert_int_equal(pwrite(w, "dddd", 4, 8192), 4);
	assert_int_equal(msync(map, SIZE, MS_SYNC), 0);
	assert_int_equal(pread(r, buf, SIZE, 0), SIZE);
	expect_bytes("the direct write", buf, 8192, 4, 'd');
	expect_bytes("the store through the mapping", buf, 9000, 1, 'c');
	expect_bytes("the rest of the page", buf, 8196, 9000 - 8196, 'a');
	expect_bytes("mapping after both", map, 8192, 4, 'd');

	/* And after a remount, from the volume. */
	munmap(map, SIZE);
	close(w);
	close(r);
	close(rw);
	assert_int_equal(run_cairn("umount", g.mnt, NULL), 0);
	waitpid(g.daemon, NULL, 0);
	g.daemon = 0;
	mount_start();
	r = open(at("coherent"), O_RDONLY);
	assert_true(r >= 0);
	assert_int_equal(pread(r, buf, SIZE, 0), SIZE);
	close(r);
	expect_bytes("remounted", buf, 0, 1000, 'a');
	expect_bytes("remounted", buf, 1000, sizeof(b), 'b');
	expect_bytes("remounted", buf, 8192, 4, 'd');
	expect_bytes("remounted", buf, 9000, 1, 'c');
	assert_int_equal(run_cairn("umount", g.mnt, NULL), 0);
	waitpid(g.daemon, NULL, 0);
	g.daemon = 0;
}

/* ---- fixtures --------------------------------------------------------------- */

static int group_setup(void **state)
{
	(void)state;
	g.acked =
	    mmap(NULL, sizeof(*g.acked), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (g.acked == MAP_FAILED)
		return -1;
	snprintf(g.root, sizeof(g.root), "/dev/shm/cairn-torn.XXXXXX");
	if (!mkdtemp(g.root))
		return -1;
	snprintf(g.vol, sizeof(g.vol), "%s/vol", g.root);
	snprintf(g.mnt, sizeof(g.mnt), "%s/mnt", g.root);
	if (mkdir(g.mnt, 0755))
		return -1;
	/* A small log, so that the digest runs (and is killed) too. */
	return run_cairn("mkfs", g.vol, "--media", "emul", "--log-size", "16M", "--fast-size",
	                 "64M", NULL) == 0
	           ? 0
	           : -1;
}

static int group_teardown(void **state)
{
	(void)state;
	if (!g.root[0])
		return 0;
	leave_no_mount();
	if (!getenv("CAIRN_TEST_KEEP")) {
		char cmd[PATH_MAX + 16];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g.root);
		if (system(cmd)) {
			/* nothing more to do: the directory is in /dev/shm */
		}
	}
	return 0;
}

int main(void)
{
	fuse_tests_require("test_fuse_torn");
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_no_torn_write),
	    cmocka_unit_test(test_no_torn_write_batch),
	    cmocka_unit_test(test_cache_coherent),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
