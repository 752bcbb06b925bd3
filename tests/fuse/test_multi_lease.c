/*
 * test_multi_lease.c - one inode written by two clients, each of which may
 * write in a log of its own: the order of their writes is the order in
 * which they returned (src/libfs/clients.h: one client at a time holds an
 * inode's grant, and the daemon ingests the holder's log before it serves
 * the other).
 *
 *   1. Two processes take turns writing the same block of one file (each
 *      waits for the other's turn through a pipe): after every write, the
 *      other process reads the block and must find that write, and at
 *      the end a fresh handle finds the last one.  Then the same with
 *      O_APPEND: the file must hold the records in the order written.
 *      Then "blind" rounds of 2..11 turns, where neither reads before it
 *      writes, so that both logs may hold a write not yet applied.
 *   2. Both processes write at once, each its own records into one
 *      O_APPEND file: every record is whole, each process's records are
 *      in its own order, and none is lost.
 * Skipped unless root with /dev/fuse.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "multitest.h"

#define TURNS 300
#define BLOCK 4096
#define REC 512
#define RECS 2000

static struct multi_scratch g;

static int group_setup(void **state)
{
	(void)state;
	return multi_setup(&g, "mlease");
}

static int group_teardown(void **state)
{
	(void)state;
	return multi_teardown(&g);
}

/* Process `who` of two: on its turns writes stamp(who, turn) at offset 0
 * (or appends it), and on the other's turns reads what the other wrote
 * (unless blind: then both logs may hold a write not yet applied, and
 * only the last one may be seen at the end). */
static void take_turns(int who, int in, int out, int append, int blind, int turns)
{
	cairn_fs *fs = attach_wait(g.vol, NULL);
	int flags = O_RDWR | (append ? O_APPEND : 0);
	int fd = cairn_open(fs, append ? "/turns-append" : "/turns", flags, 0);
	C_TRUE(fd >= 0);
	char buf[BLOCK], got[BLOCK];
	for (int t = 0; t < turns; t++) {
		if (t % 2 != who && blind) {
			char c;
			C_TRUE(read(in, &c, 1) == 1);
		} else if (t % 2 == who) {
			stamp(buf, BLOCK, (uint64_t)who, (uint64_t)t);
			if (append)
				C_TRUE(cairn_write(fs, fd, buf, BLOCK) == BLOCK);
			else
				C_TRUE(cairn_pwrite(fs, fd, buf, BLOCK, 0) == BLOCK);
		} else {
			char c;
			C_TRUE(read(in, &c, 1) == 1); /* the other's write returned */
			off_t at = append ? (off_t)t * BLOCK : 0;
			C_TRUE(pread_full(fs, fd, got, BLOCK, at) == BLOCK);
			if (!stamped(got, BLOCK, (uint64_t)!who, (uint64_t)t))
				C_FAIL("turn %d: process %d does not see the other's write", t,
				       who);
		}
		if (t % 2 == who)
			C_TRUE(write(out, "x", 1) == 1);
	}
	C_OK(cairn_close(fs, fd));
	cairn_unmount(fs);
	_exit(0);
}

static void turns(int append, int blind, int n)
{
	cairn_fs *fs = attach_wait(g.vol, &g.daemon);
	const char *name = append ? "/turns-append" : "/turns";
	int fd = cairn_open(fs, name, O_CREAT | O_TRUNC | O_WRONLY, 0644);
	assert_true(fd >= 0);
	assert_int_equal(cairn_close(fs, fd), 0);
	int ab[2], ba[2];
	assert_int_equal(pipe(ab), 0);
	assert_int_equal(pipe(ba), 0);
	pid_t a = fork();
	if (a == 0)
		take_turns(0, ba[0], ab[1], append, blind, n);
	pid_t b = fork();
	if (b == 0)
		take_turns(1, ab[0], ba[1], append, blind, n);
	child_ok(a, 60000, "process 0");
	child_ok(b, 60000, "process 1");
	for (int i = 0; i < 2; i++) {
		close(ab[i]);
		close(ba[i]);
	}
	/* A fresh handle: the last write wins, or every record in order. */
	fd = cairn_open(fs, name, O_RDONLY);
	assert_true(fd >= 0);
	char got[BLOCK];
	for (int t = append ? 0 : n - 1; t < n; t++) {
		off_t at = append ? (off_t)t * BLOCK : 0;
		assert_int_equal(pread_full(fs, fd, got, BLOCK, at), BLOCK);
		if (!stamped(got, BLOCK, (uint64_t)(t % 2), (uint64_t)t))
			fail_msg("%s: write %d is not where it belongs", name, t);
	}
	struct stat st;
	assert_int_equal(cairn_fstat(fs, fd, &st), 0);
	assert_int_equal(st.st_size, append ? (off_t)n * BLOCK : BLOCK);
	assert_int_equal(cairn_close(fs, fd), 0);
	cairn_unmount(fs);
}

static void test_turns(void **state)
{
	(void)state;
	watchdog(120, "turns");
	kill_reap(&g.daemon);
	g.daemon = spawn_cairn(0, "serve", g.vol, NULL);
	turns(0, 0, TURNS);
	turns(1, 0, TURNS);
	/* Blind: whichever of the two holds the lower slot writes last in
	 * some round. */
	for (int n = 2; n < 12; n++) {
		turns(0, 1, n);
		turns(1, 1, n);
	}
	alarm(0);
}

static void append_records(int who)
{
	cairn_fs *fs = attach_wait(g.vol, NULL);
	int fd = cairn_open(fs, "/together", O_WRONLY | O_APPEND, 0);
	C_TRUE(fd >= 0);
	char buf[REC];
	for (int i = 0; i < RECS; i++) {
		stamp(buf, REC, (uint64_t)who, (uint64_t)i);
		C_TRUE(cairn_write(fs, fd, buf, REC) == REC);
	}
	cairn_unmount(fs);
	_exit(0);
}

static void test_together(void **state)
{
	(void)state;
	watchdog(120, "together");
	cairn_fs *fs = attach_wait(g.vol, &g.daemon);
	int fd = cairn_open(fs, "/together", O_CREAT | O_TRUNC | O_RDWR, 0644);
	assert_true(fd >= 0);
	pid_t p[2];
	for (int w = 0; w < 2; w++)
		if ((p[w] = fork()) == 0)
			append_records(w);
	for (int w = 0; w < 2; w++)
		child_ok(p[w], 60000, "appender");
	uint64_t next[2] = {0, 0};
	char got[REC];
	for (int i = 0; i < 2 * RECS; i++) {
		assert_int_equal(pread_full(fs, fd, got, REC, (off_t)i * REC), REC);
		uint64_t who;
		memcpy(&who, got, 8);
		if (who > 1 || !stamped(got, REC, who, next[who]))
			fail_msg("record %d: not whole, or not next of its writer", i);
		next[who]++;
	}
	struct stat st;
	assert_int_equal(cairn_fstat(fs, fd, &st), 0);
	assert_int_equal(st.st_size, (off_t)2 * RECS * REC);
	assert_int_equal(cairn_close(fs, fd), 0);
	cairn_unmount(fs);
	alarm(0);
}

int main(int argc, char **argv)
{
	(void)argc;
	fuse_tests_require(argv[0]);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_turns),
	    cmocka_unit_test(test_together),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
