/*
 * test_multi_clog.c - private client logs (src/libfs/clients.h) tried as
 * an adversary would, with real processes, the FUSE mount and `cairn
 * serve`:
 *
 *   1. coherence: a client's pwrite, write, O_APPEND write and ftruncate,
 *      made while the daemon is stopped (so they are local), are seen as soon as they
 *      return through the mount (stat, read) and by another client (pread,
 *      fstat); an open through the mount revokes the grant and the
 *      client's later writes are seen too; a file the mount had open when
 *      the client opened it is written correctly (and not granted); pages
 *      the mount kept of a file are dropped when a client is granted it; a
 *      mount open in the middle of a stream of large local writes, round
 *      after round, loses no acknowledged write; a size the mount reports
 *      is never older than a local write, while the mount lists the
 *      directory of the new files written; a client that closes its own
 *      connection (close_range) while it holds a grant gets EIO for its
 *      later local writes, and every one acknowledged is in the file; the
 *      next client's log file is made ahead, the next client starts in it,
 *      and the unmount removes the one left;
 *   2. kill -9 of a client in the middle of a stream of local writes,
 *      while the daemon is stopped, and while it runs: once its session
 *      has ended (its log files gone), every acknowledged write is there,
 *      through another client and through the mount, and nothing that
 *      was not written;
 *   3. kill -9 of `cairn serve` while clients write locally: calls that
 *      need the daemon fail with EIO, never hang; a new daemon and a local
 *      mount show every acknowledged write, once (an O_APPEND stream among
 *      them); a client that outlived the old daemon and writes after the
 *      new one recovered gets EIO;
 *   4. a raw client speaking src/proto/ctl.h forges records with valid
 *      checksums: an inode it holds no grant for, an epoch never given, an
 *      offset past the largest file, more blocks than its credit, a
 *      truncate of another inode, with bytes or past the largest file, a
 *      record of a type clients do not write.  Nothing
 *      of them is applied, its session ends, the daemon says so, and the
 *      other clients go on;
 *   5. an honest write across the largest file size is EFBIG, not a
 *      forgery;
 *   6. writes far beyond the client log's ring and its credit, in 4 KiB
 *      and about 1 MiB pieces, all read back right; a volume filled by a
 *      client's local writes ends with ENOSPC and fsck finds it clean.
 * Skipped unless root with /dev/fuse.
 */
#include <dirent.h>
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
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "log/clog_format.h"
#include "log/log.h"
#include "media/media.h"
#include "multitest.h"
#include "proto/ctl.h"

#define MIB (1u << 20)
/* The largest write a client log takes as one record: a quarter of its
 * ring, which is 4 MiB less the log's superblocks.  A larger write goes
 * through the daemon. */
#define LOCAL_MAX (1020u << 10)
/* The largest file, MAX_FILE_SIZE of src/libfs/fs_internal.h (which cmocka.h
 * cannot be included with). */
#define MAX_FILE_SIZE (1ull << 52)
/* A client's credit is at most 1/256 of the blocks available: this gives
 * it about 2 MiB, room for a 1020 KiB local write and the small ones. */
#define VOL_FAST "512M"
/* The volume test 6 fills. */
#define SMALL_FAST "128M"
#define RACE_ROUNDS 80   /* mount opens in the middle of a stream */
#define LIST_ROUNDS 3000 /* new files written while the mount lists them */
#define RACE_RECS 6      /* writes of LOCAL_MAX in each round */

static struct {
	char root[PATH_MAX], vol[PATH_MAX], small[PATH_MAX], mnt[PATH_MAX];
	char logpart[PATH_MAX], errlog[PATH_MAX];
	pid_t daemon;
} g;

/* ---- the scratch volumes ------------------------------------------------- */

static int mkfs(const char *vol, const char *fast)
{
	return run_cairn("mkfs", vol, "--media", "emul", "--log-size", "16M", "--fast-size", fast,
	                 NULL);
}

/* The log part's path, from the volume's manifest ("part log SIZE PATH"):
 * the client logs are made beside it. */
static int log_part_of(const char *vol, char *out)
{
	char path[PATH_MAX + 16], line[PATH_MAX + 64], p[PATH_MAX];
	snprintf(path, sizeof(path), "%s/cairn.volume", vol);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	unsigned long long size;
	out[0] = '\0';
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "part log %llu %4095s", &size, p) == 2)
			snprintf(out, PATH_MAX, "%s", p);
	fclose(f);
	return out[0] ? 0 : -1;
}

static int group_setup(void **state)
{
	umask(0);
	watchdog_cleanup(&g.daemon, g.mnt);
	snprintf(g.root, sizeof(g.root), "/dev/shm/cairn-mclog.XXXXXX");
	if (!mkdtemp(g.root) || chmod(g.root, 0755))
		return -1;
	snprintf(g.vol, sizeof(g.vol), "%s/vol", g.root);
	snprintf(g.small, sizeof(g.small), "%s/small", g.root);
	snprintf(g.mnt, sizeof(g.mnt), "%s/mnt", g.root);
	snprintf(g.errlog, sizeof(g.errlog), "%s/daemon.err", g.root);
	if (mkfs(g.vol, VOL_FAST) || mkfs(g.small, SMALL_FAST) || mkdir(g.mnt, 0755) ||
	    log_part_of(g.vol, g.logpart)) {
		printf("cannot make the volumes in %s\n", g.root);
		return -1;
	}
	return 0;
}

static int group_teardown(void **state)
{
	alarm(0);
	kill_reap(&g.daemon);
	if (g.root[0] && is_mounted_at(g.mnt))
		umount2(g.mnt, MNT_DETACH);
	scratch_remove(g.root);
	return 0;
}

/* How many files named LOGPART.client* there are: of clients if spare is
 * 0, else of logs made ahead for the next client (a log file without its
 * state file, clients_make_spare), whose path goes in spare. */
static int count_files(const char *logpart, char *spare)
{
	char dir[PATH_MAX], prefix[PATH_MAX], state[2 * PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", logpart);
	char *slash = strrchr(dir, '/');
	assert_non_null(slash);
	*slash = '\0';
	snprintf(prefix, sizeof(prefix), "%s.client", slash + 1);
	DIR *d = opendir(dir);
	assert_non_null(d);
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (strncmp(e->d_name, prefix, strlen(prefix)))
			continue;
		size_t len = strlen(e->d_name);
		int is_state = len > 6 && !strcmp(e->d_name + len - 6, ".state");
		snprintf(state, sizeof(state), "%s/%s.state", dir, e->d_name);
		int made_ahead = !is_state && access(state, F_OK) != 0;
		if (made_ahead && spare)
			snprintf(spare, PATH_MAX, "%s/%s", dir, e->d_name);
		n += made_ahead == (spare != NULL);
	}
	closedir(d);
	return n;
}

static int client_files(const char *logpart)
{
	return count_files(logpart, NULL);
}

/* Waits up to ms for exactly `want` client log files. */
static void await_client_files(const char *logpart, int want, int ms, const char *when)
{
	int n = 0;
	for (int t = 0; t <= ms; t += 10) {
		if ((n = client_files(logpart)) == want)
			return;
		sleep_ms(10);
	}
	fail_msg("%s: %d files %s.client* (expected %d) %d ms after %s", logpart, n, logpart, want,
	         ms, when);
}

/* Whether some client's state file holds a live grant of ino: read
 * beside the log part, as the client maps it. */
static int granted(uint64_t ino)
{
	char dir[PATH_MAX], prefix[PATH_MAX], path[2 * PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", g.logpart);
	char *slash = strrchr(dir, '/');
	*slash = '\0';
	snprintf(prefix, sizeof(prefix), "%s.client", slash + 1);
	DIR *d = opendir(dir);
	assert_non_null(d);
	int found = 0;
	struct dirent *e;
	while ((e = readdir(d)) && !found) {
		size_t n = strlen(e->d_name);
		if (strncmp(e->d_name, prefix, strlen(prefix)) || n < 6 ||
		    strcmp(e->d_name + n - 6, ".state"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		int fd = open(path, O_RDONLY);
		if (fd < 0)
			continue;
		struct clog_grant gr[CLOG_GRANTS];
		if (pread(fd, gr, sizeof(gr), CLOG_GRANTS_OFF) == (ssize_t)sizeof(gr))
			for (int i = 0; i < CLOG_GRANTS && !found; i++)
				found = gr[i].ino == ino && gr[i].live != 0;
		close(fd);
	}
	closedir(d);
	return found;
}

/* ---- daemons --------------------------------------------------------------- */

static void mount_up(void)
{
	kill_reap(&g.daemon);
	if (is_mounted_at(g.mnt))
		umount2(g.mnt, MNT_DETACH); /* left by a test that failed */
	g.daemon = spawn_cairn(0, "mount", g.vol, g.mnt, "--foreground", NULL);
	assert_true(g.daemon > 0);
	wait_for_mount(&g.daemon, g.mnt);
}

static void mount_down(void)
{
	assert_int_equal(run_cairn("umount", g.mnt, NULL), 0);
	int st;
	if (wait_bounded(g.daemon, &st, 20000) != g.daemon) {
		kill_reap(&g.daemon);
		fail_msg("cairn mount did not exit within 20 s of cairn umount");
	}
	g.daemon = 0;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail_msg("cairn mount ended with status %#x", st);
}

/* `cairn serve vol` with its standard error (where it says what it did to
 * whom) into g.errlog. */
static cairn_fs *serve_logged(const char *vol)
{
	kill_reap(&g.daemon);
	pid_t parent = getpid();
	g.daemon = fork();
	assert_true(g.daemon >= 0);
	if (g.daemon == 0) {
		int fd = open(g.errlog, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd < 0 || dup2(fd, 2) < 0)
			_exit(126);
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) || getppid() != parent)
			_exit(126);
		execl(CAIRN_BIN, "cairn", "serve", vol, (char *)NULL);
		_exit(127);
	}
	return attach_wait(vol, &g.daemon);
}

/* What the daemon said so far on its standard error (g.errlog). */
static char *daemon_said(void)
{
	static char buf[65536];
	buf[0] = '\0';
	int fd = open(g.errlog, O_RDONLY);
	if (fd >= 0) {
		ssize_t n = read(fd, buf, sizeof(buf) - 1);
		buf[n > 0 ? n : 0] = '\0';
		close(fd);
	}
	return buf;
}

/* Waits up to 5 s for the daemon to have said `what` `times` times. */
static void await_said(const char *what, int times)
{
	int n = 0;
	for (int t = 0; t < 5000; t += 10) {
		n = 0;
		for (const char *p = daemon_said(); (p = strstr(p, what)); p++)
			n++;
		if (n >= times)
			return;
		sleep_ms(10);
	}
	fail_msg("the daemon said \"%s\" %d times, expected %d; it said:\n%s", what, n, times,
	         daemon_said());
}

static cairn_fs *mount_local(const char *vol)
{
	cairn_fs *fs = cairn_mount(vol, &(struct cairn_mount_opts){0});
	if (!fs)
		fail_msg("cairn_mount %s: %s", vol, cairn_last_error());
	return fs;
}

/* ---- files and streams ------------------------------------------------------ */

static char *at(const char *rel)
{
	static char bufs[4][PATH_MAX];
	static int next;
	char *b = bufs[next++ % 4];
	snprintf(b, PATH_MAX, "%s%s", g.mnt, rel);
	return b;
}

static int64_t now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* A writer's report, sent once its write returned. */
struct ack {
	uint64_t i, off, len;
};

/* Record i of a stream: its length varies so that records straddle
 * blocks, the ring's end and one another. */
static size_t rec_len(uint64_t i)
{
	return 100 + (size_t)((i * 2654435761ull) % 4000);
}

/* Reads a whole file through a client (*size bytes, malloc'd). */
static char *client_slurp(cairn_fs *fs, const char *path, size_t *size)
{
	int fd = cairn_open(fs, path, O_RDONLY);
	if (fd < 0)
		fail_msg("open %s: %s", path, strerror(errno));
	struct stat st;
	CHECK(cairn_fstat(fs, fd, &st));
	char *buf = malloc((size_t)st.st_size + 1);
	assert_non_null(buf);
	assert_int_equal(pread_full(fs, fd, buf, (size_t)st.st_size, 0), st.st_size);
	char extra;
	assert_int_equal(cairn_pread(fs, fd, &extra, 1, st.st_size), 0);
	CHECK(cairn_close(fs, fd));
	*size = (size_t)st.st_size;
	return buf;
}

/* The same through the mount, with read() and the size from stat(). */
static char *mount_slurp(const char *rel, size_t *size)
{
	struct stat st;
	CHECK(stat(at(rel), &st));
	int fd = open(at(rel), O_RDONLY);
	CHECK(fd);
	char *buf = malloc((size_t)st.st_size + 1);
	assert_non_null(buf);
	size_t got = 0;
	ssize_t n = 1;
	while (got <= (size_t)st.st_size && n > 0) {
		n = read(fd, buf + got, (size_t)st.st_size + 1 - got);
		CHECK(n);
		got += (size_t)n;
	}
	close(fd);
	if (got != (size_t)st.st_size)
		fail_msg("%s: read %zu bytes, stat says %lld", rel, got, (long long)st.st_size);
	*size = got;
	return buf;
}

/* Whether data (size bytes) is records 0..k-1 of writer `who`, with k
 * `acked` or one more (the write in flight when the writer died); why
 * not in the failure. */
static void assert_records(const char *where, const char *data, size_t size, uint64_t who,
                           uint64_t acked)
{
	char want[8192];
	size_t off = 0;
	uint64_t i = 0;
	while (off < size) {
		size_t l = rec_len(i);
		if (off + l > size)
			fail_msg("%s: record %llu at %zu is cut short (%zu bytes in all)", where,
			         (unsigned long long)i, off, size);
		stamp(want, l, who, i);
		if (memcmp(data + off, want, l))
			fail_msg("%s: record %llu at %zu is not what was written", where,
			         (unsigned long long)i, off);
		off += l;
		i++;
	}
	if (i < acked || i > acked + 1)
		fail_msg("%s holds %llu records, %llu were acknowledged", where,
		         (unsigned long long)i, (unsigned long long)acked);
}

/* Reads acks from fd until `want` came or ms passed; the count in all. */
static uint64_t read_acks(int fd, uint64_t have, uint64_t want, int ms, pid_t child)
{
	struct ack k;
	int64_t end = now_ms() + ms;
	while (have < want && now_ms() < end) {
		ssize_t n = read(fd, &k, sizeof(k));
		if (n != sizeof(k)) {
			int st;
			if (waitpid(child, &st, WNOHANG) == child)
				fail_msg("the writer ended early (status %#x)", st);
			fail_msg("ack pipe: %zd", n);
		}
		assert_int_equal(k.i, have);
		have++;
	}
	return have;
}

/* Reads what is left in a pipe whose writer is gone. */
static uint64_t drain_acks(int fd, uint64_t have)
{
	struct ack k;
	while (read(fd, &k, sizeof(k)) == sizeof(k)) {
		assert_int_equal(k.i, have);
		have++;
	}
	close(fd);
	return have;
}

static void send_ack(int fd, uint64_t i, uint64_t off, uint64_t len)
{
	struct ack k = {i, off, len};
	if (write(fd, &k, sizeof(k)) != sizeof(k))
		C_FAIL("ack: %s", strerror(errno));
}

/* A pipe to read acks from without blocking forever: big, so that a
 * writer is not held up by a parent busy elsewhere. */
static void ack_pipe(int p[2])
{
	CHECK(pipe(p));
	fcntl(p[1], F_SETPIPE_SZ, 1 << 20);
}

/* Stops the daemon: a call that still reaches it hangs, and the watchdog
 * says what hung. */
static void daemon_pause(void)
{
	assert_int_equal(kill(g.daemon, SIGSTOP), 0);
}

static void daemon_resume(void)
{
	assert_int_equal(kill(g.daemon, SIGCONT), 0);
}

/* ---- 1. coherence ------------------------------------------------------------ */

/* A file's expected bytes, kept beside it. */
struct model {
	const char *path;
	char bytes[65536];
	size_t size;
};

static void model_write(struct model *m, const void *buf, size_t len, size_t off)
{
	assert_true(off + len <= sizeof(m->bytes));
	if (off > m->size)
		memset(m->bytes + m->size, 0, off - m->size);
	memcpy(m->bytes + off, buf, len);
	if (off + len > m->size)
		m->size = off + len;
}

static void model_truncate(struct model *m, size_t size)
{
	assert_true(size <= sizeof(m->bytes));
	if (size > m->size)
		memset(m->bytes + m->size, 0, size - m->size);
	m->size = size;
}

/* The other client sees exactly m, by fstat and pread on a descriptor it
 * holds (bfd). */
static void client_sees(cairn_fs *b, int bfd, const struct model *m, const char *when)
{
	static char buf[65536 + 1];
	struct stat st;
	CHECK(cairn_fstat(b, bfd, &st));
	if ((size_t)st.st_size != m->size)
		fail_msg("%s: %s: the other client's fstat says %lld bytes, expected %zu", when,
		         m->path, (long long)st.st_size, m->size);
	ssize_t n = pread_full(b, bfd, buf, sizeof(buf), 0);
	if (n != (ssize_t)m->size || memcmp(buf, m->bytes, m->size))
		fail_msg("%s: %s: the other client reads %zd bytes, not the %zu written", when,
		         m->path, n, m->size);
}

/* The mount sees exactly m: by stat(), and by read() when `open_too` (an
 * open through the mount revokes the grant). */
static void mount_sees(const struct model *m, int open_too, const char *when)
{
	struct stat st;
	CHECK(stat(at(m->path), &st));
	if ((size_t)st.st_size != m->size)
		fail_msg("%s: %s: stat through the mount says %lld bytes, expected %zu", when,
		         m->path, (long long)st.st_size, m->size);
	if (!open_too)
		return;
	size_t got;
	char *data = mount_slurp(m->path, &got);
	if (got != m->size || memcmp(data, m->bytes, m->size))
		fail_msg("%s: %s: read through the mount differs from what was written", when,
		         m->path);
	free(data);
}

/* Both see m, the mount first or the client first: either one's request
 * alone must make the daemon apply what the writer's log holds. */
static void assert_seen(cairn_fs *b, int bfd, const struct model *m, int open_too, int mount_first,
                        const char *when)
{
	if (mount_first)
		mount_sees(m, open_too, when);
	client_sees(b, bfd, m, when);
	if (!mount_first)
		mount_sees(m, open_too, when);
}

/* A kernel descriptor reads exactly m (through its page cache). */
static void assert_kernel_fd(int kfd, const struct model *m, const char *when)
{
	static char buf[65536 + 1];
	ssize_t n = pread(kfd, buf, sizeof(buf), 0);
	if (n != (ssize_t)m->size || memcmp(buf, m->bytes, m->size))
		fail_msg("%s: %s: the mount's open descriptor reads %zd bytes, not the %zu "
		         "written",
		         when, m->path, n, m->size);
}

/* Client a's writes while the daemon is stopped: they can only be local;
 * each is seen at once when it runs again. */
static void local_writes(cairn_fs *a, cairn_fs *b)
{
	static struct model p = {.path = "/co-p"}, s = {.path = "/co-s"}, ap = {.path = "/co-a"};
	int pf = cairn_open(a, p.path, O_CREAT | O_RDWR, 0644);
	int sf = cairn_open(a, s.path, O_CREAT | O_RDWR, 0644);
	int af = cairn_open(a, ap.path, O_CREAT | O_WRONLY | O_APPEND, 0644);
	CHECK(pf);
	CHECK(sf);
	CHECK(af);
	int bp = cairn_open(b, p.path, O_RDONLY), bs = cairn_open(b, s.path, O_RDONLY),
	    ba = cairn_open(b, ap.path, O_RDONLY);
	CHECK(bp);
	CHECK(bs);
	CHECK(ba);
	char buf[8192];
	for (int round = 0; round < 12; round++) {
		/* Unaligned, past the end (a hole), over earlier bytes. */
		size_t off = (size_t)round * 3001 + (round % 2 ? 5000 : 0), len = 700 + 613 * round;
		stamp(buf, len, 1, (uint64_t)round);
		daemon_pause();
		watchdog(10, "a write to a granted file while the daemon was stopped");
		assert_int_equal(cairn_pwrite(a, pf, buf, len, (off_t)off), (ssize_t)len);
		assert_int_equal(cairn_write(a, sf, buf, len), (ssize_t)len);
		assert_int_equal(cairn_write(a, af, buf, len), (ssize_t)len);
		/* A truncate too, cutting a block in the middle. */
		size_t pcut = (p.size > off + len ? p.size : off + len) * 2 / 3;
		if (round % 3 == 2)
			CHECK(cairn_ftruncate(a, pf, (off_t)pcut));
		daemon_resume();
		watchdog(60, "test_coherence");
		/* One that leaves a hole the next append goes after: it asks
		 * the daemon first for the position the appends left at "the
		 * end" (a truncate does not move it), so not while stopped. */
		if (round % 4 == 1) {
			CHECK(cairn_ftruncate(a, af, (off_t)(ap.size + len + 3000)));
			assert_int_equal(cairn_lseek(a, af, 0, SEEK_CUR), (off_t)(ap.size + len));
		}
		model_write(&p, buf, len, off);
		model_write(&s, buf, len, s.size);
		model_write(&ap, buf, len, ap.size);
		if (round % 3 == 2)
			model_truncate(&p, pcut);
		if (round % 4 == 1)
			model_truncate(&ap, ap.size + 3000);
		assert_seen(b, bp, &p, 0, round % 2, "after a local pwrite");
		assert_seen(b, bs, &s, 0, round % 2, "after a local write");
		assert_seen(b, ba, &ap, 0, round % 2, "after a local O_APPEND write");
	}
	/* The positions: write() kept its own, O_APPEND's is the end. */
	assert_int_equal(cairn_lseek(a, sf, 0, SEEK_CUR), (off_t)s.size);
	assert_int_equal(cairn_lseek(a, af, 0, SEEK_CUR), (off_t)ap.size);
	assert_int_equal(cairn_lseek(a, pf, 0, SEEK_CUR), 0);

	/* An open through the mount revokes the grants (after applying what
	 * the client wrote); the kernel's descriptor then sees every later
	 * write of the client, which goes through the daemon. */
	int kp = open(at(p.path), O_RDONLY), ka = open(at(ap.path), O_RDONLY);
	CHECK(kp);
	CHECK(ka);
	assert_kernel_fd(kp, &p, "the mount's open");
	assert_kernel_fd(ka, &ap, "the mount's open");
	for (int round = 12; round < 16; round++) {
		size_t off = (size_t)round * 1999, len = 300 + 77 * round;
		stamp(buf, len, 1, (uint64_t)round);
		assert_int_equal(cairn_pwrite(a, pf, buf, len, (off_t)off), (ssize_t)len);
		assert_int_equal(cairn_write(a, sf, buf, len), (ssize_t)len);
		assert_int_equal(cairn_write(a, af, buf, len), (ssize_t)len);
		model_write(&p, buf, len, off);
		model_write(&s, buf, len, s.size);
		model_write(&ap, buf, len, ap.size);
		assert_kernel_fd(kp, &p, "a pwrite after the mount's open");
		assert_kernel_fd(ka, &ap, "an O_APPEND write after the mount's open");
		assert_seen(b, bp, &p, 1, round % 2, "a pwrite after the mount's open");
		assert_seen(b, bs, &s, round == 15, round % 2, "a write beside a revoked grant");
		assert_seen(b, ba, &ap, 1, round % 2, "an O_APPEND write after the mount's open");
	}
	assert_int_equal(cairn_lseek(a, af, 0, SEEK_CUR), (off_t)ap.size);
	assert_int_equal(cairn_lseek(a, sf, 0, SEEK_CUR), (off_t)s.size);
	close(kp);
	close(ka);
	CHECK(cairn_close(a, pf));
	CHECK(cairn_close(a, sf));
	CHECK(cairn_close(a, af));
	CHECK(cairn_close(b, bp));
	CHECK(cairn_close(b, bs));
	CHECK(cairn_close(b, ba));
}

/* The mount has the file open, its pages cached, when the client opens
 * it for writing: the client's writes must reach the kernel's view. */
static void mount_open_first(cairn_fs *a, cairn_fs *b)
{
	static struct model k = {.path = "/co-k"};
	char buf[8192];
	int kfd = open(at(k.path), O_CREAT | O_RDWR, 0644);
	CHECK(kfd);
	stamp(buf, 8192, 2, 0);
	assert_int_equal(pwrite(kfd, buf, 8192, 0), 8192);
	model_write(&k, buf, 8192, 0);
	assert_kernel_fd(kfd, &k, "the kernel's own write");
	int fd = cairn_open(a, k.path, O_RDWR);
	CHECK(fd);
	int bfd = cairn_open(b, k.path, O_RDONLY);
	CHECK(bfd);
	struct stat st;
	CHECK(fstat(kfd, &st));
	if (granted((uint64_t)st.st_ino))
		fail_msg("%s: a client was granted a file the mount has open", k.path);
	for (int round = 1; round < 8; round++) {
		size_t off = (size_t)round * 1777, len = 100 + 500 * round;
		stamp(buf, len, 2, (uint64_t)round);
		if (round % 2)
			assert_int_equal(cairn_pwrite(a, fd, buf, len, (off_t)off), (ssize_t)len);
		else {
			assert_int_equal(cairn_lseek(a, fd, (off_t)off, SEEK_SET), (off_t)off);
			assert_int_equal(cairn_write(a, fd, buf, len), (ssize_t)len);
		}
		model_write(&k, buf, len, off);
		assert_kernel_fd(kfd, &k, "a client's write to a file the mount has open");
		assert_seen(b, bfd, &k, 0, round % 2,
		            "a client's write to a file the mount has open");
	}
	/* The mount lets go.  A second descriptor of the client may get a
	 * grant now; the first has none: writes through either, over the
	 * same bytes, land in the order they were made. */
	close(kfd);
	int fd2 = cairn_open(a, k.path, O_RDWR);
	CHECK(fd2);
	for (int round = 8; round < 20; round++) {
		size_t off = (size_t)(round % 3) * 1777, len = 1000 + (size_t)round;
		stamp(buf, len, 2, (uint64_t)round);
		int which = round % 2 ? fd : fd2;
		assert_int_equal(cairn_pwrite(a, which, buf, len, (off_t)off), (ssize_t)len);
		model_write(&k, buf, len, off);
		assert_seen(b, bfd, &k, round == 19, round % 2, "writes through two descriptors");
	}
	CHECK(cairn_close(a, fd2));
	CHECK(cairn_close(a, fd));
	CHECK(cairn_close(b, bfd));
}

/* The mount read a file and closed it, its pages kept (keep_cache); then
 * a client is granted it and overwrites a few bytes, the size unchanged:
 * the mount's next open must read them, not the pages it kept. */
static void mount_cached_before(cairn_fs *a)
{
	const char *path = "/co-c";
	char buf[8192], back[8192];
	int kfd = open(at(path), O_CREAT | O_RDWR, 0644);
	CHECK(kfd);
	stamp(buf, sizeof(buf), 5, 0);
	assert_int_equal(pwrite(kfd, buf, sizeof(buf), 0), (ssize_t)sizeof(buf));
	assert_int_equal(pread(kfd, back, sizeof(back), 0), (ssize_t)sizeof(back));
	struct stat st;
	CHECK(fstat(kfd, &st));
	close(kfd);
	/* The mount's release reaches the daemon after close() returned:
	 * open until the client is granted the file. */
	int fd = -1;
	for (int ms = 0; ms < 5000 && fd < 0; ms += 10) {
		fd = cairn_open(a, path, O_RDWR);
		CHECK(fd);
		if (!granted((uint64_t)st.st_ino)) {
			CHECK(cairn_close(a, fd));
			fd = -1;
			sleep_ms(10);
		}
	}
	if (fd < 0)
		fail_msg("%s: the client got no grant once the mount had closed it", path);
	memset(buf + 100, 'Z', 50);
	assert_int_equal(cairn_pwrite(a, fd, buf + 100, 50, 100), 50);
	kfd = open(at(path), O_RDONLY);
	CHECK(kfd);
	assert_int_equal(pread(kfd, back, sizeof(back), 0), (ssize_t)sizeof(back));
	if (memcmp(buf, back, sizeof(buf)))
		fail_msg("%s: the mount reads the pages it kept, not the client's write", path);
	close(kfd);
	CHECK(cairn_close(a, fd));
}

/* A client process that closes its own connection to the daemon (every
 * descriptor from 3 on, as a program starting a daemon does) while it
 * holds a grant: the daemon ends the session, and from then on a local
 * write must fail (EIO), never land in a log nobody reads any more.  Every
 * write that returned is in the file, through the mount. */
#define LOST_BEFORE 100 /* writes made before the daemon has seen it */
#define LOST_AFTER 1000 /* one of these must fail */
static void session_lost(void)
{
	const char *path = "/co-lost";
	int before = client_files(g.logpart);
	int ack[2];
	assert_int_equal(pipe(ack), 0);
	pid_t p = fork();
	if (p == 0) {
		close(ack[0]);
		cairn_fs *c = cairn_attach(g.mnt);
		int fd = c ? cairn_open(c, path, O_CREAT | O_RDWR | O_TRUNC, 0644) : -1;
		char buf[512];
		uint64_t i = 0;
		stamp(buf, sizeof(buf), 31, i);
		if (fd < 0 || cairn_pwrite(c, fd, buf, sizeof(buf), 0) != (ssize_t)sizeof(buf))
			_exit(2);
		i++;
		/* The pipe to the parent is kept: the one descriptor moved
		 * below the range closed. */
		if (dup2(ack[1], 0) < 0 || close_range(3, ~0U, 0))
			_exit(3);
		int e = 0;
		for (; i < LOST_BEFORE + LOST_AFTER && !e; i++) {
			/* Once the daemon has ended the session, its log files
			 * are gone. */
			for (int t = 0; i == LOST_BEFORE && client_files(g.logpart) != before;
			     t++) {
				if (t == 10000)
					_exit(6);
				sleep_ms(1);
			}
			stamp(buf, sizeof(buf), 31, i);
			if (cairn_pwrite(c, fd, buf, sizeof(buf), (off_t)(i * 512)) < 0)
				e = errno;
			else if (write(0, &i, sizeof(i)) != sizeof(i))
				_exit(4);
		}
		_exit(e == EIO ? 0 : 5);
	}
	close(ack[1]);
	uint64_t acked = 0, i;
	while (read(ack[0], &i, sizeof(i)) == sizeof(i))
		acked = i + 1;
	close(ack[0]);
	int st;
	assert_int_equal(waitpid(p, &st, 0), p);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail_msg("the client that closed its connection: status %d (5: %d local writes "
		         "after its session ended, none failed; 6: its log files stayed 10 s)",
		         WIFEXITED(st) ? WEXITSTATUS(st) : -1, LOST_AFTER);
	int kfd = open(at(path), O_RDONLY);
	CHECK(kfd);
	char want[512], got[512];
	for (uint64_t k = 0; k < acked; k++) {
		stamp(want, sizeof(want), 31, k);
		if (pread(kfd, got, sizeof(got), (off_t)(k * 512)) != (ssize_t)sizeof(got) ||
		    memcmp(got, want, sizeof(got)))
			fail_msg("%s: acknowledged write %llu of %llu is not in the file after the "
			         "client closed its connection",
			         path, (unsigned long long)k, (unsigned long long)acked);
	}
	close(kfd);
}

/* A listing through the mount racing a client's new files: an entry the
 * listing brings for an inode the kernel does not hold yet becomes one
 * only when the lister runs again, possibly after the client was granted
 * the file and wrote it, so it must not carry attributes the kernel may
 * keep (src/fuse/fuse_ops.c, entry_attr_timeout).  A child lists the
 * directory without pause while the client makes files, writes them
 * and asks the mount for their size. */
static void mount_listing_race(cairn_fs *a)
{
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", at("/listed"));
	CHECK(cairn_mkdir(a, "/listed", 0755));
	pid_t lister = fork();
	assert_true(lister >= 0);
	if (lister == 0) {
		for (;;) {
			DIR *d = opendir(dir);
			while (d && readdir(d))
				;
			if (d)
				closedir(d);
		}
	}
	char buf[4096], rel[64];
	memset(buf, 'l', sizeof(buf));
	for (int i = 0; i < LIST_ROUNDS; i++) {
		snprintf(rel, sizeof(rel), "/listed/f%d", i % 8);
		if (cairn_unlink(a, rel) && errno != ENOENT)
			fail_msg("unlink %s: %s", rel, strerror(errno));
		int fd = cairn_open(a, rel, O_CREAT | O_EXCL | O_WRONLY, 0644);
		CHECK(fd);
		assert_int_equal(cairn_write(a, fd, buf, 100), 100);
		CHECK(cairn_close(a, fd));
		CHECK(fd = cairn_open(a, rel, O_WRONLY));
		assert_int_equal(cairn_pwrite(a, fd, buf, sizeof(buf), 8192), (ssize_t)sizeof(buf));
		struct stat st;
		CHECK(lstat(at(rel), &st));
		if (st.st_size != 8192 + (off_t)sizeof(buf)) {
			kill_reap(&lister);
			fail_msg("round %d: %s: the mount says %lld bytes after the client's write "
			         "returned, not %zu",
			         i, rel, (long long)st.st_size, 8192 + sizeof(buf));
		}
		CHECK(cairn_close(a, fd));
	}
	kill_reap(&lister);
}

/* The racing writer: round after round, a new file written in pieces of
 * LOCAL_MAX, each acknowledged after it returned; a round starts when the
 * parent says so. */
static void race_writer(int ack, int go)
{
	watchdog(60, "the racing writer");
	cairn_fs *fs = cairn_attach(g.vol);
	if (!fs)
		C_FAIL("cairn_attach: %s", strerror(errno));
	static char buf[LOCAL_MAX];
	char path[64], c;
	for (uint64_t r = 0; r < RACE_ROUNDS; r++) {
		if (read(go, &c, 1) != 1)
			_exit(1); /* the parent failed */
		snprintf(path, sizeof(path), "/race%llu", (unsigned long long)r);
		int fd;
		C_OK(fd = cairn_open(fs, path, O_CREAT | O_EXCL | O_RDWR, 0644));
		for (uint64_t i = 0; i < RACE_RECS; i++) {
			stamp(buf, LOCAL_MAX, 100 + r, i);
			ssize_t n = cairn_pwrite(fs, fd, buf, LOCAL_MAX, (off_t)(i * LOCAL_MAX));
			if (n != LOCAL_MAX)
				C_FAIL("round %llu write %llu: %zd (%s)", (unsigned long long)r,
				       (unsigned long long)i, n, strerror(errno));
			send_ack(ack, i, i * LOCAL_MAX, LOCAL_MAX);
		}
		C_OK(cairn_close(fs, fd));
	}
	cairn_unmount(fs);
	_exit(0);
}

/* Whether len bytes (at most 1 MiB) at buf are stamp(who, i). */
static int big_stamped(const char *buf, size_t len, uint64_t who, uint64_t i)
{
	static char want[MIB];
	assert_true(len <= MIB);
	stamp(want, len, who, i);
	return !memcmp(buf, want, len);
}

/* Opens through the mount while a client streams local writes: whenever
 * the revocation lands, before, inside or after a write, every
 * acknowledged write is there, through the kernel's descriptor that
 * revoked it and through another client. */
static void mount_open_midstream(cairn_fs *b)
{
	int ack[2], go[2];
	ack_pipe(ack);
	CHECK(pipe(go));
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(ack[0]);
		close(go[1]);
		race_writer(ack[1], go[0]);
	}
	close(ack[1]);
	close(go[0]);
	static char buf[LOCAL_MAX];
	char path[64];
	for (uint64_t r = 0; r < RACE_ROUNDS; r++) {
		assert_int_equal(write(go[1], "g", 1), 1);
		uint64_t n = read_acks(ack[0], 0, 1, 10000, pid);
		assert_int_equal(n, 1);
		/* From at once to a few hundred microseconds later: within a
		 * write of the client, or between two. */
		if (r % 4)
			nanosleep(&(struct timespec){0, (long)(r % 4) * 120000}, NULL);
		snprintf(path, sizeof(path), "/race%llu", (unsigned long long)r);
		int kfd = open(at(path), O_RDONLY);
		CHECK(kfd);
		n = read_acks(ack[0], n, RACE_RECS, 10000, pid);
		assert_int_equal(n, RACE_RECS);
		int bfd = cairn_open(b, path, O_RDONLY);
		CHECK(bfd);
		struct stat st;
		CHECK(cairn_fstat(b, bfd, &st));
		assert_int_equal(st.st_size, (off_t)RACE_RECS * LOCAL_MAX);
		for (uint64_t i = 0; i < RACE_RECS; i++) {
			off_t off = (off_t)(i * LOCAL_MAX);
			assert_int_equal(pread_full(b, bfd, buf, LOCAL_MAX, off), LOCAL_MAX);
			if (!big_stamped(buf, LOCAL_MAX, 100 + r, i))
				fail_msg("round %llu: write %llu, acknowledged, is not there for "
				         "another client",
				         (unsigned long long)r, (unsigned long long)i);
			size_t got = 0;
			while (got < LOCAL_MAX) {
				ssize_t k =
				    pread(kfd, buf + got, LOCAL_MAX - got, off + (off_t)got);
				CHECK(k);
				if (k == 0)
					break;
				got += (size_t)k;
			}
			if (got != LOCAL_MAX || !big_stamped(buf, LOCAL_MAX, 100 + r, i))
				fail_msg(
				    "round %llu: write %llu, acknowledged, is not there for the "
				    "mount's descriptor",
				    (unsigned long long)r, (unsigned long long)i);
		}
		CHECK(cairn_close(b, bfd));
		close(kfd);
		CHECK(cairn_unlink(b, path));
	}
	close(go[1]);
	child_ok(pid, 20000, "the racing writer");
	close(ack[0]);
}

/* After clients started, the daemon has made one log file ahead, and the
 * next client to start writes into that file: its state file appears
 * beside it, and no other log file is made. */
static void next_log_made_ahead(void)
{
	char spare[PATH_MAX], state[PATH_MAX + 8];
	const char *path = "/made-ahead";
	int n = 0;
	for (int t = 0; t < 5000 && (n = count_files(g.logpart, spare)) != 1; t += 10)
		sleep_ms(10);
	if (n != 1)
		fail_msg("%d log files made ahead for the next client, expected 1", n);
	cairn_fs *c = attach_wait(g.mnt, &g.daemon);
	int fd = cairn_open(c, path, O_CREAT | O_WRONLY | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(cairn_write(c, fd, "made ahead", 10), 10);
	snprintf(state, sizeof(state), "%s.state", spare);
	if (access(state, F_OK))
		fail_msg("the client did not start in the log made ahead (%s): %s", spare,
		         strerror(errno));
	assert_int_equal(client_files(g.logpart), 2);
	CHECK(cairn_close(c, fd));
	CHECK(cairn_unlink(c, path));
	CHECK(cairn_unmount(c));
	await_client_files(g.logpart, 0, 5000, "the client that took the log made ahead detached");
}

static void test_coherence(void **state)
{
	watchdog(60, "test_coherence");
	mount_up();
	cairn_fs *a = attach_wait(g.mnt, &g.daemon), *b = attach_wait(g.vol, &g.daemon);
	local_writes(a, b);
	mount_open_first(a, b);
	mount_cached_before(a);
	mount_open_midstream(b);
	mount_listing_race(a);
	session_lost();
	CHECK(cairn_unmount(a));
	CHECK(cairn_unmount(b));
	await_client_files(g.logpart, 0, 5000, "the clients detached");
	next_log_made_ahead();
	mount_down();
	char spare[PATH_MAX];
	assert_int_equal(client_files(g.logpart) + count_files(g.logpart, spare), 0);
	alarm(0);
	assert_int_equal(run_cairn("fsck", g.vol, NULL), 0);
}

/* ---- 2. a client killed ------------------------------------------------------ */

/* Each iteration writes record i of three streams into dir: by pwrite at
 * its offset (who 21), by O_APPEND write (22), by write at the
 * descriptor's position (23); then acknowledges i.  It starts when the
 * parent says so; past 4000 it waits to be killed. */
static void kill_writer(const char *dir, int ack, int go)
{
	watchdog(60, "the writer to be killed");
	cairn_fs *fs = cairn_attach(g.mnt);
	if (!fs)
		C_FAIL("cairn_attach: %s", strerror(errno));
	char path[64], buf[8192], c;
	int fd[3];
	static const char *names[3] = {"pw", "ap", "sw"};
	static const int flags[3] = {O_RDWR, O_WRONLY | O_APPEND, O_WRONLY};
	for (int k = 0; k < 3; k++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[k]);
		C_OK(fd[k] = cairn_open(fs, path, O_CREAT | flags[k], 0644));
	}
	send_ack(ack, UINT64_MAX, 0, 0); /* ready */
	if (read(go, &c, 1) != 1)
		_exit(1); /* the parent failed */
	uint64_t off = 0;
	for (uint64_t i = 0; i < 4000; i++) {
		size_t l = rec_len(i);
		stamp(buf, l, 21, i);
		if (cairn_pwrite(fs, fd[0], buf, l, (off_t)off) != (ssize_t)l)
			C_FAIL("pwrite %llu: %s", (unsigned long long)i, strerror(errno));
		stamp(buf, l, 22, i);
		if (cairn_write(fs, fd[1], buf, l) != (ssize_t)l)
			C_FAIL("append %llu: %s", (unsigned long long)i, strerror(errno));
		stamp(buf, l, 23, i);
		if (cairn_write(fs, fd[2], buf, l) != (ssize_t)l)
			C_FAIL("write %llu: %s", (unsigned long long)i, strerror(errno));
		send_ack(ack, i, off, l);
		off += l;
	}
	for (;;)
		pause();
}

/* The three streams of dir hold every acknowledged record, and at most
 * the one in flight besides; through fs, and through the mount if
 * by_mount. */
static void verify_killed(cairn_fs *fs, const char *dir, uint64_t acked, int by_mount)
{
	static const char *names[3] = {"pw", "ap", "sw"};
	char path[64], where[128];
	for (int k = 0; k < 3; k++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[k]);
		size_t size;
		char *data = client_slurp(fs, path, &size);
		snprintf(where, sizeof(where), "%s through a client", path);
		assert_records(where, data, size, 21 + (uint64_t)k, acked);
		free(data);
		if (!by_mount)
			continue;
		data = mount_slurp(path, &size);
		snprintf(where, sizeof(where), "%s through the mount", path);
		assert_records(where, data, size, 21 + (uint64_t)k, acked);
		free(data);
	}
}

/* Runs a writer into dir and kills it: with `after` 0, while the daemon
 * is stopped from before its first write (every write then local, none
 * applied when it dies); else after that many iterations, the daemon
 * copying its log all along (but not the last millisecond's) and its ring
 * gone round.  Once its session has ended (its files gone), every
 * acknowledged write is there.  The count acknowledged. */
static uint64_t kill_client(const char *dir, uint64_t after)
{
	int paused = after == 0;
	CHECK(mkdir(at(dir), 0755));
	int ack[2], go[2];
	ack_pipe(ack);
	CHECK(pipe(go));
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(ack[0]);
		close(go[1]);
		kill_writer(dir, ack[1], go[0]);
	}
	close(ack[1]);
	close(go[0]);
	struct ack k;
	if (read(ack[0], &k, sizeof(k)) != sizeof(k) || k.i != UINT64_MAX)
		fail_msg("the writer did not open its files");
	/* Its log and state file are there beside the log part. */
	assert_int_equal(client_files(g.logpart), 2);
	if (paused)
		daemon_pause();
	assert_int_equal(write(go[1], "g", 1), 1);
	close(go[1]);
	if (paused)
		after = 20;
	uint64_t n = read_acks(ack[0], 0, after, paused ? 3000 : 20000, pid);
	if (n < after) {
		if (paused)
			daemon_resume();
		fail_msg("only %llu writes returned%s", (unsigned long long)n,
		         paused ? " in 3 s while the daemon was stopped: are they local?" : "");
	}
	assert_int_equal(kill(pid, SIGKILL), 0);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	if (paused)
		daemon_resume();
	uint64_t acked = drain_acks(ack[0], n);
	/* Its session ends: what its log held is applied, then its files
	 * go.  No request reaches the daemon before. */
	await_client_files(g.logpart, 0, 5000, "the client was killed");
	return acked;
}

#define KILLS 10 /* the first six with the daemon stopped */

static void test_client_killed(void **state)
{
	watchdog(60, "test_client_killed");
	mount_up();
	/* When a writer dies with records its daemon has not applied yet,
	 * the end of its session and the daemon's thread that copies client
	 * logs every millisecond race for them: whichever comes first must
	 * apply them.  So, several times. */
	uint64_t acked[KILLS];
	char dir[32];
	for (int k = 0; k < KILLS; k++) {
		snprintf(dir, sizeof(dir), "/k%d", k);
		acked[k] = kill_client(dir, k < 6 ? 0 : 500 * (uint64_t)(k - 5));
	}
	cairn_fs *b = attach_wait(g.vol, &g.daemon);
	for (int k = 0; k < KILLS; k++) {
		snprintf(dir, sizeof(dir), "/k%d", k);
		verify_killed(b, dir, acked[k], 1);
	}
	CHECK(cairn_unmount(b));
	mount_down();
	alarm(0);
	assert_int_equal(run_cairn("fsck", g.vol, NULL), 0);
	cairn_fs *fs = mount_local(g.vol);
	for (int k = 0; k < KILLS; k++) {
		snprintf(dir, sizeof(dir), "/k%d", k);
		verify_killed(fs, dir, acked[k], 0);
	}
	CHECK(cairn_unmount(fs));
}

/* ---- 3. the daemon killed -------------------------------------------------- */

/* Writes stream `who` into path, acknowledging each record, a record
 * every `pace_us`: by pwrite, or with `append` by O_APPEND write (a record
 * applied twice would show).  With check_every, an fstat (which needs the
 * daemon) every so many records.  Its first failure must be EIO (the
 * daemon is gone); then every call fails with EIO at once.  Exits 0. */
static void daemon_kill_writer(uint64_t who, const char *path, int append, int pace_us,
                               int check_every, int ack)
{
	watchdog(30, "a writer when the daemon died");
	cairn_fs *fs = cairn_attach(g.vol);
	if (!fs)
		C_FAIL("cairn_attach: %s", strerror(errno));
	int fd;
	C_OK(fd = cairn_open(fs, path, O_CREAT | O_RDWR | (append ? O_APPEND : 0), 0644));
	char buf[8192];
	uint64_t off = 0;
	struct stat st;
	for (uint64_t i = 0; i < 20000; i++) {
		size_t l = rec_len(i);
		stamp(buf, l, who, i);
		ssize_t n =
		    append ? cairn_write(fs, fd, buf, l) : cairn_pwrite(fs, fd, buf, l, (off_t)off);
		if (n != (ssize_t)l)
			break;
		send_ack(ack, i, off, l);
		off += l;
		if (check_every && i % (uint64_t)check_every == 0 && cairn_fstat(fs, fd, &st))
			break;
		if (pace_us)
			nanosleep(&(struct timespec){0, pace_us * 1000L}, NULL);
	}
	if (errno != EIO)
		C_FAIL("the call the daemon's death ended: %s, expected EIO", strerror(errno));
	watchdog(10, "calls after the daemon died");
	stamp(buf, 100, who, 99999);
	C_ERR(cairn_pwrite(fs, fd, buf, 100, (off_t)off), EIO);
	C_ERR(cairn_write(fs, fd, buf, 100), EIO);
	C_ERR(cairn_fstat(fs, fd, &st), EIO);
	C_ERR(cairn_open(fs, path, O_RDONLY), EIO);
	C_ERR(cairn_close(fs, fd), EIO);
	cairn_unmount(fs);
	_exit(0);
}

/* A client that writes a little, then waits (knowing nothing of the
 * daemon's death) until the new daemon has recovered, and writes again:
 * the recovery revoked its grant, so that write asks the dead daemon and
 * fails with EIO. */
static void outliver(int ack, int go)
{
	watchdog(30, "the client that outlived its daemon");
	cairn_fs *fs = cairn_attach(g.vol);
	if (!fs)
		C_FAIL("cairn_attach: %s", strerror(errno));
	int fd;
	C_OK(fd = cairn_open(fs, "/d/w3", O_CREAT | O_RDWR, 0644));
	char buf[8192], c;
	uint64_t off = 0, i;
	for (i = 0; i < 10; i++) {
		size_t l = rec_len(i);
		stamp(buf, l, 33, i);
		C_TRUE(cairn_pwrite(fs, fd, buf, l, (off_t)off) == (ssize_t)l);
		send_ack(ack, i, off, l);
		off += l;
	}
	if (read(go, &c, 1) != 1)
		C_FAIL("go: %s", strerror(errno));
	size_t l = rec_len(i);
	stamp(buf, l, 33, i);
	C_ERR(cairn_pwrite(fs, fd, buf, l, (off_t)off), EIO);
	C_ERR(cairn_write(fs, fd, buf, l), EIO);
	struct stat st;
	C_ERR(cairn_fstat(fs, fd, &st), EIO);
	cairn_unmount(fs);
	_exit(0);
}

static pid_t fork_writer(int ack[2], int go[2], int kind)
{
	ack_pipe(ack);
	if (go)
		CHECK(pipe(go));
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(ack[0]);
		if (go)
			close(go[1]);
		if (kind == 1)
			daemon_kill_writer(31, "/d/w1", 0, 200, 16, ack[1]);
		else if (kind == 2)
			daemon_kill_writer(32, "/d/w2", 1, 300, 0, ack[1]);
		else
			outliver(ack[1], go[0]);
	}
	close(ack[1]);
	if (go)
		close(go[0]);
	return pid;
}

static void verify_daemon_killed(cairn_fs *fs, const uint64_t acked[3])
{
	static const char *paths[3] = {"/d/w1", "/d/w2", "/d/w3"};
	for (int k = 0; k < 3; k++) {
		size_t size;
		char *data = client_slurp(fs, paths[k], &size);
		assert_records(paths[k], data, size, 31 + (uint64_t)k, acked[k]);
		free(data);
	}
}

static void test_daemon_killed(void **state)
{
	watchdog(60, "test_daemon_killed");
	cairn_fs *fs;
	serve_and_attach(g.vol, &g.daemon, &fs);
	CHECK(cairn_mkdir(fs, "/d", 0755));
	int ack[3][2], go[2];
	pid_t pid[3];
	pid[2] = fork_writer(ack[2], go, 3);
	pid[0] = fork_writer(ack[0], NULL, 1);
	pid[1] = fork_writer(ack[1], NULL, 2);
	uint64_t n[3];
	n[2] = read_acks(ack[2][0], 0, 10, 10000, pid[2]);
	assert_int_equal(n[2], 10);
	n[0] = read_acks(ack[0][0], 0, 300, 10000, pid[0]);
	n[1] = read_acks(ack[1][0], 0, 300, 10000, pid[1]);
	/* The daemon made the next client's log file ahead when they started:
	 * it dies with one there. */
	char spare[PATH_MAX], spare_state[PATH_MAX + 8];
	assert_int_equal(count_files(g.logpart, spare), 1);
	assert_int_equal(kill(g.daemon, SIGKILL), 0);
	int st;
	assert_int_equal(wait_bounded(g.daemon, &st, 10000), g.daemon);
	g.daemon = 0;
	uint64_t at_kill[2] = {n[0], n[1]};
	/* A new daemon recovers the volume, the client logs included, while
	 * the writers may still be writing into theirs.  The log made ahead
	 * is no client's: it goes (no client has started since). */
	cairn_fs *fresh;
	serve_and_attach(g.vol, &g.daemon, &fresh);
	snprintf(spare_state, sizeof(spare_state), "%s.state", spare);
	if (access(spare, F_OK) == 0 && access(spare_state, F_OK) != 0)
		fail_msg("%s, made ahead by the killed daemon, is still there", spare);
	/* Now the client that slept through it all writes. */
	assert_int_equal(write(go[1], "g", 1), 1);
	close(go[1]);
	child_ok(pid[2], 20000, "the client that outlived its daemon");
	child_ok(pid[0], 20000, "the writer that checks with the daemon");
	child_ok(pid[1], 20000, "the writer that only writes");
	uint64_t acked[3];
	for (int k = 0; k < 3; k++)
		acked[k] = drain_acks(ack[k][0], n[k]);
	print_message("acknowledged writes: %llu and %llu (%llu and %llu after the kill), "
	              "%llu\n",
	              (unsigned long long)acked[0], (unsigned long long)acked[1],
	              (unsigned long long)(acked[0] - at_kill[0]),
	              (unsigned long long)(acked[1] - at_kill[1]), (unsigned long long)acked[2]);
	/* The handle of this process, idle since, fails at once too. */
	struct stat sb;
	int64_t t0 = now_ms();
	CHECK_ERRNO(cairn_stat(fs, "/d", &sb), EIO);
	assert_true(now_ms() - t0 < 5000);
	cairn_unmount(fs);

	verify_daemon_killed(fresh, acked);
	CHECK(cairn_unmount(fresh));
	/* Recovery took the dead clients' logs in, and removed them. */
	await_client_files(g.logpart, 0, 5000, "the new daemon recovered");
	daemon_stop(&g.daemon);
	alarm(0);
	assert_int_equal(run_cairn("fsck", g.vol, NULL), 0);
	fs = mount_local(g.vol);
	verify_daemon_killed(fs, acked);
	CHECK(cairn_unmount(fs));
}

/* ---- 4. forged records --------------------------------------------------------- */

/* A client that speaks the protocol itself, as client.c and client_log.c
 * do, and then writes into its log what they never would. */
struct raw {
	int sock;
	struct ctl_clog info;
	int fds[2];
	struct media *m;
	struct log *log;
	const struct clog_grant *grants;
	void *state_map;
};

/* One request and its reply (at most outlen bytes into out); -1 when the
 * connection failed (the daemon ended the session). */
static int raw_call(struct raw *r, int op, int64_t a0, int64_t a1, int64_t a2, const char *str,
                    struct ctl_rep *rp, void *out, size_t outlen)
{
	struct ctl_req h = {.magic = CTL_MAGIC,
	                    .op = (uint16_t)op,
	                    .nstr = str ? 1 : 0,
	                    .len = str ? (uint32_t)strlen(str) + 1 : 0,
	                    .a = {a0, a1, a2}};
	struct iovec iov[2] = {{&h, sizeof(h)}, {(void *)str, h.len}};
	struct msghdr m = {.msg_iov = iov, .msg_iovlen = str ? 2 : 1};
	if (sendmsg(r->sock, &m, MSG_NOSIGNAL) != (ssize_t)(sizeof(h) + h.len))
		return -1;
	if (ctl_recv_all(r->sock, rp, sizeof(*rp)) || rp->len > outlen)
		return -1;
	return rp->len ? ctl_recv_all(r->sock, out, rp->len) : 0;
}

static int no_replay(void *arg, const struct log_rec_hdr *h, const void *p, uint64_t off)
{
	return 0;
}

/* Connects, greets, starts a log and maps it (as client_log_open). */
static void raw_start(struct raw *r, const char *vol)
{
	memset(r, 0, sizeof(*r));
	r->sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(r->sock >= 0);
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	snprintf(a.sun_path, sizeof(a.sun_path), "%s/%s", vol, CTL_SOCKET_NAME);
	CHECK(connect(r->sock, (struct sockaddr *)&a, sizeof(a)));
	struct ctl_req h = {.magic = CTL_MAGIC,
	                    .op = CTL_HELLO,
	                    .a = {CTL_VERSION, sizeof(struct stat), sizeof(struct cairn_info),
	                          sizeof(struct ctl_dirent)}};
	struct ctl_rep rp;
	struct iovec iov = {&h, sizeof(h)};
	assert_int_equal(ctl_send_all(r->sock, &iov, 1), 0);
	assert_int_equal(ctl_recv_all(r->sock, &rp, sizeof(rp)), 0);
	assert_int_equal(rp.err, 0);
	assert_int_equal(rp.len, 0);

	struct ctl_req s = {.magic = CTL_MAGIC, .op = CTL_CLOG_START};
	iov = (struct iovec){&s, sizeof(s)};
	assert_int_equal(ctl_send_all(r->sock, &iov, 1), 0);
	int nfds = 0;
	assert_int_equal(ctl_recv_fds(r->sock, &rp, sizeof(rp), r->fds, 2, &nfds), 0);
	assert_int_equal(rp.err, 0);
	assert_int_equal(nfds, 2);
	assert_int_equal(rp.len, sizeof(r->info));
	assert_int_equal(ctl_recv_all(r->sock, &r->info, sizeof(r->info)), 0);
	char err[512];
	if (media_open_given(&r->m, (enum media_kind)r->info.media_kind, r->fds[0], "raw log", err,
	                     sizeof(err)) ||
	    log_open(&r->log, r->m, r->info.log_id, err, sizeof(err)))
		fail_msg("the raw client's log: %s", err);
	assert_int_equal(log_recover(r->log, LOG_RING_START, 1, no_replay, NULL, 1), 0);
	r->state_map = mmap(NULL, CLOG_STATE_SIZE, PROT_READ, MAP_SHARED, r->fds[1], 0);
	assert_true(r->state_map != MAP_FAILED);
	r->grants = (const struct clog_grant *)((const uint8_t *)r->state_map + CLOG_GRANTS_OFF);
}

static void raw_end(struct raw *r)
{
	munmap(r->state_map, CLOG_STATE_SIZE);
	log_close(r->log);
	media_close(r->m);
	close(r->fds[0]);
	close(r->fds[1]);
	close(r->sock);
}

/* Opens path for writing with a grant: its descriptor, *g the grant. */
static int raw_open_granted(struct raw *r, const char *path, struct ctl_grant *gr)
{
	struct ctl_rep rp;
	memset(gr, 0, sizeof(*gr));
	assert_int_equal(raw_call(r, CTL_OPEN, O_CREAT | O_RDWR, 0644, CTL_OPEN_GRANT, path, &rp,
	                          gr, sizeof(*gr)),
	                 0);
	assert_int_equal(rp.err, 0);
	assert_int_equal(rp.len, sizeof(*gr));
	assert_true(gr->epoch != 0);
	assert_int_equal(r->grants[gr->index].live, gr->epoch);
	return (int)rp.ret;
}

/* Appends a record with a valid checksum, durably: -ENOSPC when the ring
 * is full. */
static int raw_record(struct raw *r, uint16_t type, uint64_t ino, uint64_t off, uint64_t epoch,
                      const void *buf, size_t len)
{
	uint64_t args[LOG_REC_ARGS] = {ino, off, epoch};
	struct iovec iov = {(void *)buf, len};
	struct log_pos pos;
	int rc = log_append(r->log, type, args, &iov, len ? 1 : 0, &pos);
	if (rc)
		return rc;
	assert_int_equal(log_commit(r->log, pos.seq), 0);
	return 0;
}

static int raw_append(struct raw *r, uint64_t ino, uint64_t off, uint64_t epoch, const void *buf,
                      size_t len)
{
	return raw_record(r, CLOG_REC_WRITE, ino, off, epoch, buf, len);
}

/* The session is over: a call gets no answer. */
static void assert_session_ended(struct raw *r, int fd, const char *what)
{
	struct ctl_rep rp;
	struct stat st;
	if (raw_call(r, CTL_FSTAT, fd, 0, 0, NULL, &rp, &st, sizeof(st)) == 0)
		fail_msg("%s: the forger's session goes on (fstat: %s)", what,
		         rp.err ? strerror(rp.err) : "answered");
}

static uint64_t ino_of(cairn_fs *fs, const char *path)
{
	struct stat st;
	CHECK(cairn_stat(fs, path, &st));
	return (uint64_t)st.st_ino;
}

/* A file of `size` bytes of stamp(who, 0), through fs. */
static void make_file(cairn_fs *fs, const char *path, uint64_t who, size_t size)
{
	static char buf[65536];
	stamp(buf, size, who, 0);
	int fd = cairn_open(fs, path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
	CHECK(fd);
	assert_int_equal(cairn_write(fs, fd, buf, size), (ssize_t)size);
	CHECK(cairn_close(fs, fd));
}

static void assert_file(cairn_fs *fs, const char *path, uint64_t who, size_t size, const char *when)
{
	static char want[65536];
	size_t got;
	char *data = client_slurp(fs, path, &got);
	stamp(want, size, who, 0);
	if (got != size || memcmp(data, want, size))
		fail_msg("%s: %s changed (%zu bytes, expected %zu as made)", when, path, got, size);
	free(data);
}

/* The honest client goes on writing locally and reading back. */
static void honest_goes_on(cairn_fs *fs, int fd, uint64_t round)
{
	char buf[4096], back[4096];
	stamp(buf, sizeof(buf), 40, round);
	assert_int_equal(cairn_pwrite(fs, fd, buf, sizeof(buf), (off_t)(round * 4096)), 4096);
	assert_int_equal(cairn_pread(fs, fd, back, sizeof(back), (off_t)(round * 4096)), 4096);
	assert_memory_equal(buf, back, sizeof(buf));
}

static void test_forged(void **state)
{
	watchdog(60, "test_forged");
	cairn_fs *honest = serve_logged(g.vol);
	/* A file the forger may read but never write, and the honest
	 * client's own file, written locally. */
	make_file(honest, "/victim", 41, 8192);
	uint64_t victim = ino_of(honest, "/victim");
	int hfd = cairn_open(honest, "/honest", O_CREAT | O_RDWR, 0644);
	CHECK(hfd);
	honest_goes_on(honest, hfd, 0);
	assert_int_equal(client_files(g.logpart), 2);
	char rec[65536];
	const char *whys[] = {"an inode its grant does not name",
	                      "no such grant",
	                      "no such grant",
	                      "past the largest file size",
	                      "past the largest file size",
	                      "an inode its grant does not name",
	                      "a truncate with a payload",
	                      "a size past the largest file size",
	                      "of no type a client may write"};
	for (int v = 0; v < 9; v++) {
		struct raw r;
		raw_start(&r, g.vol);
		assert_int_equal(client_files(g.logpart), 4);
		char own[32];
		snprintf(own, sizeof(own), "/own%d", v);
		struct ctl_grant gr;
		int fd = raw_open_granted(&r, own, &gr);
		assert_int_equal(gr.ino, ino_of(honest, own));
		/* An honest record first: it is applied. */
		stamp(rec, 4096, 50 + (uint64_t)v, 0);
		assert_int_equal(raw_append(&r, gr.ino, 0, gr.epoch, rec, 4096), 0);
		/* Then the forgery, with an honest record after it. */
		uint64_t ino = gr.ino, off = 4096, epoch = gr.epoch;
		size_t len = 4096;
		uint16_t type = CLOG_REC_WRITE;
		const char *what = "";
		switch (v) {
		case 0:
			ino = victim, off = 0, what = "the epoch of its own grant, another inode";
			break;
		case 1:
			ino = victim, off = 0, epoch = gr.epoch + 1000,
			what = "an epoch never given";
			break;
		case 2:
			epoch = 0, what = "epoch 0 (revoked)";
			break;
		case 3:
			off = MAX_FILE_SIZE - 100, what = "a write across the largest file size";
			break;
		case 4:
			off = 1ull << 62, what = "an offset far past the largest file size";
			break;
		case 5:
			type = CLOG_REC_TRUNCATE, ino = victim, off = 0, len = 0,
			what = "a truncate of another inode";
			break;
		case 6:
			type = CLOG_REC_TRUNCATE, off = 0, what = "a truncate with bytes";
			break;
		case 7:
			type = CLOG_REC_TRUNCATE, off = MAX_FILE_SIZE + 1, len = 0,
			what = "a truncate past the largest file size";
			break;
		case 8:
			type = 99, off = 0, what = "a record of no client type";
			break;
		}
		stamp(rec, len, 60 + (uint64_t)v, 1);
		assert_int_equal(raw_record(&r, type, ino, off, epoch, rec, len), 0);
		stamp(rec, 4096, 50 + (uint64_t)v, 2);
		assert_int_equal(raw_append(&r, gr.ino, 8192, gr.epoch, rec, 4096), 0);
		/* Any request makes the daemon look at every log. */
		struct stat st;
		CHECK(cairn_stat(honest, "/", &st));
		/* Nothing of the forgery, nor after it, is applied... */
		assert_file(honest, "/victim", 41, 8192, what);
		size_t got;
		char *data = client_slurp(honest, own, &got);
		if (got != 4096 || !stamped(data, 4096, 50 + (uint64_t)v, 0))
			fail_msg("%s: %s holds %zu bytes, expected the 4096 before the forgery",
			         what, own, got);
		free(data);
		/* ... the session is over, its files gone, and said so. */
		assert_session_ended(&r, fd, what);
		await_client_files(g.logpart, 2, 5000, "a forged record");
		await_said("refused", v + 1);
		if (!strstr(daemon_said(), whys[v]))
			fail_msg("%s: the daemon did not say \"%s\":\n%s", what, whys[v],
			         daemon_said());
		raw_end(&r);
		/* The others go on. */
		honest_goes_on(honest, hfd, (uint64_t)v + 1);
		assert_file(honest, "/victim", 41, 8192, what);
	}

	/* More blocks than its credit: records of LOCAL_MAX over the start of
	 * its own file, its ring reclaimed behind the daemon's back each time
	 * the daemon has ingested it, never asking for more credit.  Written
	 * while the daemon is stopped: as it ingests, the daemon tops a
	 * client's credit up (the credit word), and a look between two records
	 * could make the one past the first credit one within the credit
	 * given. */
	struct raw r;
	raw_start(&r, g.vol);
	struct ctl_grant gr;
	int fd = raw_open_granted(&r, "/own-credit", &gr);
	uint64_t cost = clog_record_cost(0, LOCAL_MAX), fit = r.info.credit / cost;
	if (fit == 0)
		fail_msg("a credit of %llu blocks takes no record of %u bytes",
		         (unsigned long long)r.info.credit, LOCAL_MAX);
	static char big[LOCAL_MAX];
	daemon_pause();
	for (uint64_t i = 0; i <= fit; i++) {
		stamp(big, LOCAL_MAX, 70, i);
		int rc = raw_append(&r, gr.ino, 0, gr.epoch, big, LOCAL_MAX);
		if (rc == -ENOSPC) {
			struct stat st;
			daemon_resume();
			CHECK(cairn_stat(honest, "/", &st)); /* the daemon ingests */
			daemon_pause();
			log_reclaim(r.log, log_tail_off(r.log), log_tail_seq(r.log));
			rc = raw_append(&r, gr.ino, 0, gr.epoch, big, LOCAL_MAX);
		}
		assert_int_equal(rc, 0);
	}
	daemon_resume();
	struct stat st;
	CHECK(cairn_stat(honest, "/", &st));
	/* The last record that fit is there, the one past the credit not. */
	size_t got;
	char *data = client_slurp(honest, "/own-credit", &got);
	if (got != LOCAL_MAX || !big_stamped(data, LOCAL_MAX, 70, fit - 1))
		fail_msg(
		    "/own-credit does not hold record %llu, the last within the credit of %llu "
		    "blocks",
		    (unsigned long long)(fit - 1), (unsigned long long)r.info.credit);
	free(data);
	assert_session_ended(&r, fd, "more blocks than its credit");
	await_client_files(g.logpart, 2, 5000, "a record past the credit");
	await_said("more blocks than its credit", 1);
	raw_end(&r);
	honest_goes_on(honest, hfd, 10);

	CHECK(cairn_close(honest, hfd));
	CHECK(cairn_unmount(honest));
	daemon_stop(&g.daemon);
	alarm(0);
	print_message("the daemon said:\n%s", daemon_said());
	assert_int_equal(run_cairn("fsck", g.vol, NULL), 0);
}

/* ---- 5. the largest file ----------------------------------------------------- */

/* An honest client's write across the largest file size fails with
 * EFBIG, as through the daemon: it is no forgery, and its session goes
 * on.  By pwrite at such an offset and by write at such a position. */
static void test_largest_file(void **state)
{
	watchdog(60, "test_largest_file");
	cairn_fs *fs = serve_logged(g.vol);
	int fd = cairn_open(fs, "/huge", O_CREAT | O_TRUNC | O_RDWR, 0644);
	CHECK(fd);
	char buf[4096];
	stamp(buf, sizeof(buf), 42, 0);
	assert_int_equal(cairn_pwrite(fs, fd, buf, 4096, 0), 4096);
	CHECK_ERRNO(cairn_pwrite(fs, fd, buf, 4096, (off_t)(MAX_FILE_SIZE - 100)), EFBIG);
	CHECK_ERRNO(cairn_pwrite(fs, fd, buf, 4096, (off_t)MAX_FILE_SIZE), EFBIG);
	assert_int_equal(cairn_lseek(fs, fd, (off_t)(MAX_FILE_SIZE - 4095), SEEK_SET),
	                 (off_t)(MAX_FILE_SIZE - 4095));
	CHECK_ERRNO(cairn_write(fs, fd, buf, 4096), EFBIG);
	/* Up to the last byte is fine. */
	assert_int_equal(cairn_pwrite(fs, fd, buf, 4096, (off_t)(MAX_FILE_SIZE - 4096)), 4096);
	/* The session goes on, and nothing of the failed writes is there. */
	struct stat st;
	CHECK(cairn_fstat(fs, fd, &st));
	assert_int_equal(st.st_size, (off_t)MAX_FILE_SIZE);
	CHECK(cairn_ftruncate(fs, fd, 4096));
	assert_int_equal(cairn_pwrite(fs, fd, buf, 4096, 4096), 4096);
	CHECK(cairn_fstat(fs, fd, &st));
	assert_int_equal(st.st_size, 8192);
	if (strstr(daemon_said(), "refused"))
		fail_msg("the daemon took an honest write for a forgery:\n%s", daemon_said());
	CHECK(cairn_close(fs, fd));
	CHECK(cairn_unlink(fs, "/huge"));
	CHECK(cairn_unmount(fs));
	daemon_stop(&g.daemon);
	alarm(0);
	assert_int_equal(run_cairn("fsck", g.vol, NULL), 0);
}

/* ---- 6. credit, ring and a full volume ----------------------------------------- */

#define SMALL_WRITES 20480 /* 4 KiB each: 80 MiB, over 8 MiB of the file */
#define SPAN (8u << 20)    /* the bytes of the file they all go to */
#define BIG_WRITES 120     /* 1020 KiB (local) or 1 MiB (not), over the same */

/* What the file holds: every write made into it, in order. */
static char model8[SPAN];

static void assert_model(cairn_fs *fs, const char *when)
{
	static char buf[SPAN];
	int fd = cairn_open(fs, "/big", O_RDONLY);
	CHECK(fd);
	struct stat st;
	CHECK(cairn_fstat(fs, fd, &st));
	assert_int_equal(st.st_size, SPAN);
	assert_int_equal(pread_full(fs, fd, buf, SPAN, 0), SPAN);
	for (size_t b = 0; b < SPAN; b += 4096)
		if (memcmp(buf + b, model8 + b, 4096))
			fail_msg("%s: block %zu of /big is not the last write into it", when,
			         b / 4096);
	CHECK(cairn_close(fs, fd));
}

static void test_credit_and_ring(void **state)
{
	watchdog(60, "test_credit_and_ring");
	cairn_fs *a, *b;
	serve_and_attach(g.vol, &g.daemon, &a);
	b = attach_wait(g.vol, &g.daemon);
	int fd = cairn_open(a, "/big", O_CREAT | O_TRUNC | O_RDWR, 0644);
	CHECK(fd);
	int bfd = cairn_open(b, "/big", O_RDONLY);
	CHECK(bfd);
	static char big[MIB];
	char back[4096];
	/* Writes of 4 KiB and of 1020 KiB are local: they return with the
	 * daemon stopped, as long as the client's first credit lasts (at most
	 * 1/256 of the blocks available). */
	struct statvfs sv;
	CHECK(cairn_statvfs(b, "/", &sv));
	if ((uint64_t)sv.f_bavail * sv.f_frsize / 4096 / 256 < 300)
		fail_msg("the volume is too small for a first credit of 300 blocks");
	memset(model8, 0, sizeof(model8));
	daemon_pause();
	watchdog(10, "a write to a granted file while the daemon was stopped");
	for (uint64_t i = 0; i < 8; i++) {
		if (i == 1) {
			daemon_resume();
			watchdog(60, "test_credit_and_ring");
		}
		stamp(big, LOCAL_MAX, 79, i);
		assert_int_equal(cairn_pwrite(a, fd, big, LOCAL_MAX, (off_t)(i * MIB)), LOCAL_MAX);
		memcpy(model8 + i * MIB, big, LOCAL_MAX);
		for (uint64_t k = 0; k < 8; k++) {
			stamp(big, 512, 79, 100 + i * 8 + k);
			off_t off = (off_t)(i * MIB + LOCAL_MAX + k * 512);
			assert_int_equal(cairn_pwrite(a, fd, big, 512, off), 512);
			memcpy(model8 + off, big, 512);
		}
	}
	assert_model(b, "after local writes");
	/* 80 MiB in 4 KiB writes: the ring goes round twenty times, the
	 * credit runs out and is topped up again and again. */
	for (uint64_t i = 0; i < SMALL_WRITES; i++) {
		off_t off = (off_t)(((i * 7) % (SPAN / 4096)) * 4096);
		stamp(big, 4096, 80, i);
		assert_int_equal(cairn_pwrite(a, fd, big, 4096, off), 4096);
		memcpy(model8 + off, big, 4096);
		if (i % 997 == 0) {
			assert_int_equal(cairn_pread(b, bfd, back, 4096, off), 4096);
			if (memcmp(big, back, 4096))
				fail_msg("4 KiB write %llu is not what another client reads",
				         (unsigned long long)i);
		}
	}
	assert_model(b, "after 80 MiB in 4 KiB writes");
	/* About 120 MiB more, local (1020 KiB, at unaligned offsets too) and
	 * through the daemon (1 MiB) in turn, over the same bytes. */
	for (uint64_t i = 0; i < BIG_WRITES; i++) {
		size_t len = i % 3 ? LOCAL_MAX : MIB;
		off_t off = (off_t)(((i * 5) % 8) * MIB + (len == LOCAL_MAX ? (i % 2) * 4000 : 0));
		stamp(big, len, 81, i);
		if (i % 4 == 1) {
			assert_int_equal(cairn_lseek(a, fd, off, SEEK_SET), off);
			assert_int_equal(cairn_write(a, fd, big, len), (ssize_t)len);
		} else {
			assert_int_equal(cairn_pwrite(a, fd, big, len, off), (ssize_t)len);
		}
		memcpy(model8 + off, big, len);
		if (i % 17 == 0) {
			assert_int_equal(cairn_pread(b, bfd, back, 4096, off + 8192), 4096);
			if (memcmp(big + 8192, back, 4096))
				fail_msg("write %llu is not what another client reads",
				         (unsigned long long)i);
		}
	}
	assert_model(b, "after 120 MiB in writes of about 1 MiB");
	CHECK(cairn_close(a, fd));
	CHECK(cairn_close(b, bfd));
	CHECK(cairn_unmount(a));
	CHECK(cairn_unmount(b));
	await_client_files(g.logpart, 0, 5000, "the clients detached");
	daemon_stop(&g.daemon);
	alarm(0);
	a = mount_local(g.vol);
	assert_model(a, "after a remount");
	CHECK(cairn_unmount(a));
	assert_int_equal(run_cairn("fsck", g.vol, NULL), 0);
}

#define FILL_PIECE (16u << 10) /* bytes of each write that fills */

static void test_fill(void **state)
{
	watchdog(60, "test_fill");
	cairn_fs *a, *b;
	serve_and_attach(g.small, &g.daemon, &a);
	b = attach_wait(g.small, &g.daemon);
	int fd = cairn_open(a, "/fill", O_CREAT | O_RDWR, 0644);
	CHECK(fd);
	int bfd = cairn_open(b, "/fill", O_RDONLY);
	CHECK(bfd);
	char piece[FILL_PIECE];
	/* The first writes are local: they return with the daemon stopped. */
	daemon_pause();
	watchdog(10, "a write to a granted file while the daemon was stopped");
	for (uint64_t i = 0; i < 4; i++) {
		stamp(piece, FILL_PIECE, 90, i);
		assert_int_equal(cairn_pwrite(a, fd, piece, FILL_PIECE, (off_t)(i * FILL_PIECE)),
		                 FILL_PIECE);
	}
	daemon_resume();
	watchdog(60, "test_fill");
	/* New data, piece i stamped i, until the volume is full: local while
	 * the client's credit (a share of what is left) covers a piece, then
	 * through the daemon.  A short write goes on with the rest of its
	 * piece. */
	uint64_t written = 4 * FILL_PIECE;
	int e = 0;
	for (uint64_t i = 4; i < (1u << 20) && !e; i++) {
		stamp(piece, FILL_PIECE, 90, i);
		for (size_t done = 0; done < FILL_PIECE && !e;) {
			ssize_t n =
			    cairn_pwrite(a, fd, piece + done, FILL_PIECE - done, (off_t)written);
			if (n <= 0)
				e = n < 0 ? errno : -1;
			else
				done += (size_t)n, written += (uint64_t)n;
		}
	}
	if (e != ENOSPC)
		fail_msg("filling the volume ended with %s after %llu MiB, expected ENOSPC",
		         e > 0 ? strerror(e) : "no error", (unsigned long long)(written >> 20));
	print_message("the volume took %llu MiB before ENOSPC\n",
	              (unsigned long long)(written >> 20));
	assert_true(written > 100ull * MIB); /* most of its 128 MiB */
	/* Another client sees all of it, and no more. */
	struct stat st;
	CHECK(cairn_fstat(b, bfd, &st));
	assert_int_equal(st.st_size, (off_t)written);
	CHECK(cairn_close(a, fd));
	CHECK(cairn_close(b, bfd));
	CHECK(cairn_unmount(a));
	CHECK(cairn_unmount(b));
	daemon_stop(&g.daemon);
	alarm(0);
	assert_int_equal(run_cairn("fsck", g.small, NULL), 0);
	a = mount_local(g.small);
	fd = cairn_open(a, "/fill", O_RDONLY);
	CHECK(fd);
	static char all[MIB];
	for (uint64_t off = 0; off < written; off += MIB) {
		size_t len = written - off < MIB ? (size_t)(written - off) : MIB;
		assert_int_equal(pread_full(a, fd, all, len, (off_t)off), (ssize_t)len);
		for (size_t p = 0; p < len; p += FILL_PIECE) {
			size_t l = len - p < FILL_PIECE ? len - p : FILL_PIECE;
			if (!big_stamped(all + p, l, 90, (off + p) / FILL_PIECE))
				fail_msg("piece %llu of the full volume's file is not what was "
				         "written",
				         (unsigned long long)((off + p) / FILL_PIECE));
		}
	}
	CHECK(cairn_close(a, fd));
	/* The volume goes on: the space freed is there again. */
	CHECK(cairn_unlink(a, "/fill"));
	fd = cairn_open(a, "/after", O_CREAT | O_WRONLY, 0644);
	CHECK(fd);
	assert_int_equal(cairn_pwrite(a, fd, all, MIB, 0), MIB);
	CHECK(cairn_close(a, fd));
	CHECK(cairn_unmount(a));
	assert_int_equal(run_cairn("fsck", g.small, NULL), 0);
}

int main(int argc, char **argv)
{
	fuse_tests_require(argv[0]);
	/* A client whose daemon died must not be killed by SIGPIPE: left at
	 * its default so that the test sees it if it happens. */
	signal(SIGPIPE, SIG_DFL);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_coherence),     cmocka_unit_test(test_client_killed),
	    cmocka_unit_test(test_daemon_killed), cmocka_unit_test(test_forged),
	    cmocka_unit_test(test_largest_file),  cmocka_unit_test(test_credit_and_ring),
	    cmocka_unit_test(test_fill),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
