/*
 * test_multi_garbage.c - the volume daemon's socket faces any local
 * process: what such a process sends must never take the daemon down or
 * stop it serving the others, and a client facing something that is not
 * a cairn daemon must fail, not hang.
 *
 *   1. raw connections to VOLUME/cairn.sock that send random bytes, a
 *      header claiming a 4 GiB payload, a few bytes and then nothing, or
 *      nothing at all; many at once; meanwhile and afterwards a well-
 *      behaved client writes and reads as usual, and at the end the daemon
 *      exits 0 on SIGTERM and fsck finds the volume clean;
 *   2. cairn_attach to a daemon that refuses its greeting as of another
 *      build (the recorded greeting, one byte altered on the way) fails
 *      with EPROTO;
 *   3. cairn_attach on a socket whose server closes at once or answers
 *      random bytes fails (NULL) within seconds.
 * The wire format is not assumed beyond "random bytes are not a valid
 * request": to get past the greeting, the test records what a real
 * client sends (through a relay it puts between the two) and replays it
 * with the requests after the greeting damaged: bytes flipped, each
 * 32-bit word of the first request's first 64 bytes set to 0xffffffff
 * (one of them is a length) and followed by 2 MiB, cut short.
 * Skipped unless root with /dev/fuse.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <grp.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "multitest.h"

#define HOLD 64 /* connections held open at once */

static struct {
	char root[PATH_MAX], vol[PATH_MAX], sock[PATH_MAX];
	pid_t daemon;
	cairn_fs *fs; /* the well-behaved client */
} g;

static int group_setup(void **state)
{
	umask(0);
	watchdog_cleanup(&g.daemon, NULL);
	signal(SIGPIPE, SIG_IGN); /* writes to a connection the daemon dropped */
	if (scratch_volume("mgarbage", g.root, g.vol))
		return -1;
	snprintf(g.sock, sizeof(g.sock), "%s/cairn.sock", g.vol);
	return 0;
}

static int group_teardown(void **state)
{
	alarm(0);
	kill_reap(&g.daemon);
	scratch_remove(g.root);
	return 0;
}

static int raw_connect(const char *path)
{
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(s >= 0);
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	if (connect(s, (struct sockaddr *)&a, sizeof(a)))
		fail_msg("connect %s: %s", path, strerror(errno));
	return s;
}

/* Sends what it can of buf (the daemon may drop us half way). */
static void send_some(int s, const void *buf, size_t len)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = send(s, (const char *)buf + done, len - done, MSG_NOSIGNAL);
		if (n <= 0)
			return;
		done += (size_t)n;
	}
}

/* Reads whatever the daemon answers for up to ms, or until it closes. */
static void drain(int s, int ms)
{
	char buf[4096];
	struct pollfd p = {.fd = s, .events = POLLIN};
	while (poll(&p, 1, ms) > 0 && read(s, buf, sizeof(buf)) > 0)
		;
}

/* The well-behaved client: a write and a read back, with a new file each
 * time; the daemon must be alive. */
static void still_serves(const char *why)
{
	static int round;
	char path[64], text[64], buf[64];
	snprintf(path, sizeof(path), "/ok-%d", round);
	snprintf(text, sizeof(text), "round %d: %s", round, why);
	round++;
	int fd = cairn_open(g.fs, path, O_CREAT | O_EXCL | O_RDWR, 0644);
	if (fd < 0)
		fail_msg("after %s: open: %s", why, strerror(errno));
	assert_int_equal(cairn_write(g.fs, fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(cairn_pread(g.fs, fd, buf, sizeof(buf), 0), (ssize_t)strlen(text));
	assert_memory_equal(buf, text, strlen(text));
	CHECK(cairn_close(g.fs, fd));
	int st;
	if (waitpid(g.daemon, &st, WNOHANG) == g.daemon) {
		g.daemon = 0;
		fail_msg("after %s: the daemon ended (status %#x)", why, st);
	}
}

static void random_bytes(char *buf, size_t len, unsigned *seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (char)(rand_r(seed) >> 7);
}

/* ---- a recorded session, replayed damaged ------------------------------ */

#define MAXREQ 64
static struct {
	uint8_t buf[1 << 16]; /* what the client sent */
	size_t len;
	size_t cut[MAXREQ]; /* where each request starts: the client sends the
	                       next one only once the reply to the last came */
	int n;
	int listener;
} rec;

static int connect_quiet(const char *path)
{
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	if (s >= 0 && connect(s, (struct sockaddr *)&a, sizeof(a))) {
		close(s);
		return -1;
	}
	return s;
}

/* Relays one connection to the daemon, recording the client's side. */
/* With arg NULL; with arg pointing to an offset, it records nothing and
 * instead alters the client's byte at that offset of its stream. */
static void *relay(void *arg)
{
	int c = accept(rec.listener, NULL, NULL), d = connect_quiet(g.sock);
	struct pollfd p[2] = {{c, POLLIN, 0}, {d, POLLIN, 0}};
	int replied = 1;
	const size_t *mutate = arg;
	size_t sent = 0;
	char tmp[65536];
	while (c >= 0 && d >= 0 && poll(p, 2, 5000) > 0) {
		if (p[0].revents) {
			ssize_t n = read(c, tmp, sizeof(tmp));
			if (n <= 0)
				break;
			if (mutate && *mutate >= sent && *mutate < sent + (size_t)n)
				tmp[*mutate - sent] ^= 0x10;
			sent += (size_t)n;
			if (replied && rec.n < MAXREQ && !mutate)
				rec.cut[rec.n++] = rec.len;
			replied = 0;
			if (!mutate && rec.len + (size_t)n <= sizeof(rec.buf)) {
				memcpy(rec.buf + rec.len, tmp, (size_t)n);
				rec.len += (size_t)n;
			}
			send_some(d, tmp, (size_t)n);
		}
		if (p[1].revents) {
			ssize_t n = read(d, tmp, sizeof(tmp));
			if (n <= 0)
				break;
			replied = 1;
			send_some(c, tmp, (size_t)n);
		}
	}
	if (c >= 0)
		close(c);
	if (d >= 0)
		close(d);
	return NULL;
}

/* A client attached through the relay (to a directory whose cairn.sock is
 * the relay's) makes a few calls. */
static void record_session(void)
{
	char dir[PATH_MAX], sock[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s/relay", g.root);
	CHECK(mkdir(dir, 0755));
	snprintf(sock, sizeof(sock), "%s/cairn.sock", dir);
	rec.listener = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(rec.listener >= 0);
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", sock);
	CHECK(bind(rec.listener, (struct sockaddr *)&a, sizeof(a)));
	CHECK(listen(rec.listener, 1));
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, relay, NULL), 0);
	cairn_fs *fs = cairn_attach(dir);
	if (!fs)
		fail_msg("cairn_attach through the relay: %s", strerror(errno));
	int fd = cairn_open(fs, "/rec", O_CREAT | O_RDWR, 0644);
	CHECK(fd);
	assert_int_equal(cairn_pwrite(fs, fd, "recorded", 8, 0), 8);
	char b[8];
	assert_int_equal(cairn_pread(fs, fd, b, 8, 0), 8);
	struct stat st;
	CHECK(cairn_fstat(fs, fd, &st));
	CHECK(cairn_stat(fs, "/rec", &st));
	CHECK(cairn_mkdir(fs, "/recdir", 0755));
	CHECK(cairn_setxattr(fs, "/rec", "user.r", "v", 1, 0));
	CHECK(cairn_close(fs, fd));
	CHECK(cairn_unmount(fs));
	pthread_join(t, NULL);
	close(rec.listener);
	print_message("recorded %zu bytes in %d requests\n", rec.len, rec.n);
	assert_true(rec.n >= 8); /* the greeting and the calls above */
}

/* Replays the greeting exactly, then the rest damaged in one of several
 * ways, on new connections. */
static void fuzz_session(unsigned *seed)
{
	static uint8_t dmg[(1 << 16) + (2 << 20)];
	size_t hello = rec.cut[1], rest = rec.len - hello;
	size_t first = rec.cut[2] - rec.cut[1]; /* the first request after it */
	for (int t = 0; t < 90; t++) {
		int s = connect_quiet(g.sock);
		assert_true(s >= 0);
		send_some(s, rec.buf, hello);
		struct pollfd p = {.fd = s, .events = POLLIN};
		char r[4096];
		if (poll(&p, 1, 2000) <= 0 || read(s, r, sizeof(r)) <= 0) {
			int st;
			if (waitpid(g.daemon, &st, WNOHANG) == g.daemon) {
				g.daemon = 0;
				fail_msg("the daemon died (status %#x) of damaged request %d", st,
				         t - 1);
			}
			fail_msg("the daemon did not answer a recorded greeting");
		}
		memcpy(dmg, rec.buf + hello, rest);
		size_t len = rest;
		switch (t % 3) {
		case 0: /* a few bytes flipped */
			for (int k = 0, n = 1 + rand_r(seed) % 8; k < n; k++)
				dmg[(size_t)rand_r(seed) % rest] ^=
				    (uint8_t)(1 + rand_r(seed) % 255);
			break;
		case 1: { /* a 32-bit word at the start set to all ones, 2 MiB after */
			size_t w = (size_t)(t / 3 % 16) * 4;
			if (w + 4 <= first)
				memset(dmg + w, 0xff, 4);
			random_bytes((char *)dmg + first, 2 << 20, seed);
			len = first + (2 << 20);
			break;
		}
		default: /* cut short, or garbage after a prefix */
			len = (size_t)rand_r(seed) % rest;
			if (t % 2)
				random_bytes((char *)dmg + len, 100, seed), len += 100;
		}
		send_some(s, dmg, len);
		drain(s, 5);
		close(s);
	}
}

static void test_garbage(void **state)
{
	watchdog(60, "test_garbage");
	serve_and_attach(g.vol, &g.daemon, &g.fs);
	still_serves("start");
	static char buf[256 * 1024];
	unsigned seed = 12345;

	/* Random bytes, of many lengths, on new connections. */
	for (int i = 0; i < 40; i++) {
		size_t len = 1 + (size_t)rand_r(&seed) % (i < 30 ? 300 : sizeof(buf));
		random_bytes(buf, len, &seed);
		int s = raw_connect(g.sock);
		send_some(s, buf, len);
		drain(s, i < 5 ? 200 : 0);
		close(s);
	}
	still_serves("random bytes");

	/* A header claiming a 4 GiB payload: every length field of a header
	 * says 0xffffffff; then some of it, then silence with the connection
	 * open, then a close. */
	memset(buf, 0xff, 64);
	int s = raw_connect(g.sock);
	send_some(s, buf, 64);
	random_bytes(buf + 64, 65536, &seed);
	send_some(s, buf + 64, 65536);
	still_serves("a 4 GiB header with the connection open");
	close(s);

	/* Past the greeting: a real client's session, recorded, replayed
	 * with its requests damaged. */
	record_session();
	still_serves("the recorded session");
	fuzz_session(&seed);
	still_serves("damaged requests after a valid greeting");

	/* Connect and close at once; connect and send half a header and
	 * stay: neither may hold up the well-behaved client. */
	for (int i = 0; i < 20; i++)
		close(raw_connect(g.sock));
	still_serves("connections closed at once");
	int held[HOLD];
	for (int i = 0; i < HOLD; i++) {
		held[i] = raw_connect(g.sock);
		if (i % 2)
			send_some(held[i], "\x43\x4e", 2);
	}
	still_serves("connections held open");
	/* The client attaches anew while they are held, too. */
	cairn_fs *other = attach_wait(g.vol, &g.daemon);
	struct stat st;
	CHECK(cairn_stat(other, "/ok-0", &st));
	CHECK(cairn_unmount(other));
	for (int i = 0; i < HOLD; i++)
		close(held[i]);
	still_serves("connections closed");

	/* Garbage in the middle of a stream: a connection whose owner dies
	 * with a request half sent. */
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int c = raw_connect(g.sock);
		send_some(c, buf, 10);
		kill(getpid(), SIGKILL);
	}
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	still_serves("a peer killed mid-request");

	CHECK(cairn_unmount(g.fs));
	g.fs = NULL;
	daemon_stop(&g.daemon);
	alarm(0);
	assert_int_equal(run_cairn("fsck", g.vol, NULL), 0);
}

/* ---- a daemon of another build ---------------------------------------- */

/* What the daemon answers to a greeting: the bytes of its reply, or 0
 * when it closes without one. */
static size_t greet(const uint8_t *hello, size_t len, char *reply, size_t size)
{
	int s = connect_quiet(g.sock);
	assert_true(s >= 0);
	send_some(s, hello, len);
	struct pollfd p = {.fd = s, .events = POLLIN};
	ssize_t n = poll(&p, 1, 2000) > 0 ? read(s, reply, size) : 0;
	close(s);
	return n > 0 ? (size_t)n : 0;
}

/* A client whose greeting a daemon of another build would send: found as
 * the first byte of the recorded greeting that, altered, gets an answer
 * other than the usual one rather than a closed connection (a version or
 * a layout the daemon does not speak).  cairn_attach through a relay that
 * alters that byte must fail with EPROTO. */
static void test_other_build(void **state)
{
	watchdog(60, "test_other_build");
	cairn_fs *fs;
	serve_and_attach(g.vol, &g.daemon, &fs);
	if (rec.n < 2)
		record_session();
	size_t hello = rec.cut[1];
	char good[4096], other[4096];
	size_t glen = greet(rec.buf, hello, good, sizeof(good));
	assert_true(glen > 0);
	size_t at = hello;
	static uint8_t h[4096];
	assert_true(hello <= sizeof(h));
	for (size_t i = 0; i < hello && at == hello; i++) {
		memcpy(h, rec.buf, hello);
		h[i] ^= 0x10;
		size_t olen = greet(h, hello, other, sizeof(other));
		if (olen && (olen != glen || memcmp(good, other, glen)))
			at = i;
	}
	if (at == hello)
		fail_msg("no altered byte of the %zu-byte greeting got a refusal", hello);
	print_message("byte %zu of the greeting makes another build\n", at);

	char dir[PATH_MAX], sock[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s/other-build", g.root);
	CHECK(mkdir(dir, 0755));
	snprintf(sock, sizeof(sock), "%s/cairn.sock", dir);
	rec.listener = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(rec.listener >= 0);
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", sock);
	CHECK(bind(rec.listener, (struct sockaddr *)&a, sizeof(a)));
	CHECK(listen(rec.listener, 1));
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, relay, &at), 0);
	errno = 0;
	cairn_fs *bad = cairn_attach(dir);
	int e = errno;
	pthread_join(t, NULL);
	close(rec.listener);
	if (bad)
		fail_msg("cairn_attach accepted a daemon that refused its greeting");
	if (e != EPROTO)
		fail_msg("cairn_attach to a daemon of another build: %s, expected EPROTO",
		         strerror(e));
	/* The real daemon, untouched, serves on. */
	struct stat st;
	CHECK(cairn_stat(fs, "/", &st));
	CHECK(cairn_unmount(fs));
	daemon_stop(&g.daemon);
	alarm(0);
}

/* ---- 2. a client facing something else ------------------------------------ */

struct fake {
	int listener;
	int mode; /* 0: close at once; 1: random bytes, then close */
};

static void *fake_daemon(void *arg)
{
	struct fake *f = arg;
	int c = accept(f->listener, NULL, NULL);
	if (c < 0)
		return NULL;
	if (f->mode == 1) {
		char junk[4096];
		unsigned seed = 99;
		drain(c, 100); /* whatever it says first */
		random_bytes(junk, sizeof(junk), &seed);
		send_some(c, junk, sizeof(junk));
		drain(c, 2000);
	}
	close(c);
	return NULL;
}

static void test_not_a_daemon(void **state)
{
	char dir[PATH_MAX], sock[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s/fake", g.root);
	CHECK(mkdir(dir, 0755));
	snprintf(sock, sizeof(sock), "%s/cairn.sock", dir);
	for (int mode = 0; mode < 2; mode++) {
		watchdog(15, mode ? "cairn_attach to a server of random bytes"
		                  : "cairn_attach to a server that closes at once");
		unlink(sock);
		int l = socket(AF_UNIX, SOCK_STREAM, 0);
		assert_true(l >= 0);
		struct sockaddr_un a = {.sun_family = AF_UNIX};
		snprintf(a.sun_path, sizeof(a.sun_path), "%s", sock);
		CHECK(bind(l, (struct sockaddr *)&a, sizeof(a)));
		CHECK(listen(l, 4));
		struct fake f = {.listener = l, .mode = mode};
		pthread_t t;
		assert_int_equal(pthread_create(&t, NULL, fake_daemon, &f), 0);
		errno = 0;
		cairn_fs *fs = cairn_attach(dir);
		int e = errno;
		pthread_join(t, NULL);
		close(l);
		if (fs)
			fail_msg("cairn_attach accepted a server that %s",
			         mode ? "answered random bytes" : "closed at once");
		print_message("cairn_attach to a server that %s: %s\n",
		              mode ? "answers random bytes" : "closes at once", strerror(e));
		/* Not a daemon of this build, or one that went away: EPROTO
		 * or EIO, and never a hang or a crash. */
		if (e != EPROTO && e != EIO)
			fail_msg("cairn_attach: %s, expected EPROTO or EIO", strerror(e));
		alarm(0);
	}
	/* A socket nobody listens on any more: no daemon. */
	CHECK_PTR_ERRNO(cairn_attach(dir), ENOENT);
}

/* One user opens more connections than its share (256): the rest are
 * closed at once, with a log line, and root still attaches and is served. */
#define SHARE 256
#define OVER 300

static int closed_by_peer(int s)
{
	struct pollfd p = {.fd = s, .events = POLLIN};
	char b;
	return poll(&p, 1, 0) == 1 && recv(s, &b, 1, MSG_DONTWAIT) == 0;
}

static void test_one_user_share(void **state)
{
	watchdog(60, "test_one_user_share");
	assert_int_equal(chmod(g.root, 0755), 0);
	assert_int_equal(chmod(g.vol, 0755), 0);
	serve_and_attach(g.vol, &g.daemon, &g.fs);
	int go[2], done[2];
	CHECK(pipe(go));
	CHECK(pipe(done));
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(go[1]);
		close(done[0]);
		if (setgroups(0, NULL) || setgid(65534) || setuid(65534))
			_exit(2);
		static int held[OVER];
		for (int i = 0; i < OVER; i++)
			held[i] = raw_connect(g.sock);
		usleep(500 * 1000); /* the daemon accepts them all meanwhile */
		int closed = 0;
		for (int i = 0; i < OVER; i++)
			closed += closed_by_peer(held[i]);
		if (write(done[1], &closed, sizeof(closed)) != sizeof(closed))
			_exit(3);
		char b;
		if (read(go[0], &b, 1) < 0) /* hold them until the parent looked */
			_exit(4);
		_exit(0);
	}
	close(go[0]);
	close(done[1]);
	int closed = -1;
	assert_int_equal(read(done[0], &closed, sizeof(closed)), sizeof(closed));
	/* While they are held: root attaches and is served. */
	cairn_fs *other = attach_wait(g.vol, &g.daemon);
	struct stat st;
	CHECK(cairn_stat(other, "/", &st));
	CHECK(cairn_unmount(other));
	still_serves("one user holding its whole share");
	assert_int_equal(write(go[1], "x", 1), 1);
	close(go[1]);
	child_ok(pid, 10000, "the user holding connections");
	if (closed != OVER - SHARE)
		fail_msg("%d of %d connections of one user were refused, expected %d", closed, OVER,
		         OVER - SHARE);
	CHECK(cairn_unmount(g.fs));
	g.fs = NULL;
	daemon_stop(&g.daemon);
}

int main(int argc, char **argv)
{
	fuse_tests_require(argv[0]);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_garbage),
	    cmocka_unit_test(test_other_build),
	    cmocka_unit_test(test_not_a_daemon),
	    cmocka_unit_test(test_one_user_share),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
