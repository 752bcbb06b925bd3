/*
 * test_multi_stress.c - many client processes and threads on one volume at
 * once, checked against a model of what each of them did.
 *
 * Six worker processes of one to three threads each ("agents") run a
 * seeded random mix of calls for a bounded time, in two phases on one
 * volume:
 *   1. under `cairn serve`, every agent through cairn_attach (threads of
 *      some workers share one handle, others attach one each);
 *   2. under `cairn mount`, some workers through the FUSE mount with plain
 *      system calls, some through cairn_attach, and some pick either for
 *      each call, so that a change made through one is checked through the
 *      other at once (names, sizes, data, link counts, xattrs; and a page
 *      the kernel has cached, rewritten by the client, and the reverse).
 * Each agent owns a private tree (/aN, its subdirectories, and the names
 * oN-* in /shared, into and out of which it renames files and whole
 * directories) and keeps, in memory shared with the parent, its exact
 * expected state: every name, inode, byte, link count, xattr and symlink
 * target.  Every call's result, errno included, is predicted by the model
 * and checked at once.  Across agents, in /shared: files handed over
 * (pool-X-N, published by rename, claimed by any agent with a rename into
 * its own tree, so that several rename one name at once and exactly one
 * may win) and O_EXCL creates of one name by many agents (race-K, exactly
 * one winner each).
 * After each phase the whole volume is compared with the models and the
 * handover and race ledgers: through the daemon (a fresh attach; in phase
 * 2 also through the kernel's mount), then, the daemon stopped (exit 0),
 * through a local cairn_mount, and `cairn fsck` must pass.
 *
 *   CAIRN_STRESS_SECONDS  length of each phase (default 4)
 *   CAIRN_STRESS_SEED     seed of the agents' choices (default: the time;
 *                         printed, so that a failing mix can be rerun)
 * Skipped unless root with /dev/fuse.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "multitest.h"

#define NWORK 6  /* worker processes */
#define MAXTHR 3 /* threads of a worker at most; agent = w * MAXTHR + t */
#define NAG (NWORK * MAXTHR)
#define NDIR 5        /* an agent's directories: 0 /aN, 1-3 subdirs, 4 /shared */
#define NK 8          /* names per directory: fK (in /shared: oN-fK) */
#define MAXINO 48     /* inodes an agent's model holds */
#define MAXDATA 20000 /* bytes of a file at most */
#define XLEN 32       /* bytes of an xattr value at most */
#define MAXGIVE 512   /* files an agent hands over */
#define MAXRACE 4096  /* names raced for */

/* Threads of worker w, and how it reaches the volume in phase 2. */
static const int nthreads[NWORK] = {2, 1, 3, 3, 2, 1};
enum via { VIA_ATTACH, VIA_FUSE, VIA_MIXED };
static const enum via phase2_via[NWORK] = {VIA_FUSE, VIA_ATTACH, VIA_MIXED,
                                           VIA_FUSE, VIA_ATTACH, VIA_MIXED};
/* Workers from 3 on attach once per thread; the others share one handle. */
#define HANDLE_PER_THREAD(w) ((w) >= 3)

struct m_inode {
	int used;
	char type; /* 'f' regular file, 'l' symlink */
	int nlink, size, xlen;
	char x[XLEN];    /* the value of user.k, if xlen > 0 */
	char target[64]; /* a symlink's */
	unsigned char data[MAXDATA];
};

struct m_agent {
	int active;
	int dloc[4];        /* subdir i (1-3): 0 none, 1 /aN/dI, 2 /shared/oN-dI */
	int name[NDIR][NK]; /* the inode a name holds, or -1 */
	struct m_inode ino[MAXINO];
	_Atomic int gives; /* pool-N-0 .. pool-N-(gives-1) were handed over */
	long ops, failed_as_predicted;
};

/* Shared between the parent and every worker (MAP_SHARED). */
struct model {
	struct m_agent ag[NAG];
	_Atomic int claimed[NAG][MAXGIVE]; /* agent that took pool-X-N, or -1 */
	_Atomic int race_round;            /* the name race-K raced for now */
	_Atomic int race_winner[MAXRACE];  /* -1, or the agent that created race-K */
};

static struct model *M;

static struct {
	char root[PATH_MAX], vol[PATH_MAX], mnt[PATH_MAX];
	pid_t daemon;
	pid_t parent;
	uint64_t seed;
	int seconds;
	char root_names[8][64]; /* what a new volume's root holds */
	int nroot_names;
	int phase1_ok; /* phase 2 goes on from the state phase 1 left */
} g;

/* ---- failing: cmocka in the parent, exit status 1 in a worker ------------- */

static void oops(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void oops(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (getpid() == g.parent) {
		fail_msg("%s", msg);
		abort(); /* not reached */
	}
	fprintf(stderr, "worker %d (seed %llu): %s\n", (int)getpid(), (unsigned long long)g.seed,
	        msg);
	_exit(1);
}

/* ---- one set of calls, through a handle or through the kernel's mount ------ */

struct io {
	cairn_fs *fs;    /* attached or locally mounted, or NULL */
	const char *mnt; /* the FUSE mount point, or NULL */
};

#define KP(p) kpath(io, (p), (char[PATH_MAX]){0})
static char *kpath(const struct io *io, const char *p, char *buf)
{
	snprintf(buf, PATH_MAX, "%s%s", io->mnt, p);
	return buf;
}

static int v_open(const struct io *io, int k, const char *p, int flags, mode_t mode)
{
	return k ? open(KP(p), flags | O_CLOEXEC, mode) : cairn_open(io->fs, p, flags, mode);
}
static int v_close(const struct io *io, int k, int fd)
{
	return k ? close(fd) : cairn_close(io->fs, fd);
}
static ssize_t v_pread(const struct io *io, int k, int fd, void *b, size_t n, off_t off)
{
	return k ? pread(fd, b, n, off) : cairn_pread(io->fs, fd, b, n, off);
}
static ssize_t v_pwrite(const struct io *io, int k, int fd, const void *b, size_t n, off_t off)
{
	return k ? pwrite(fd, b, n, off) : cairn_pwrite(io->fs, fd, b, n, off);
}
static ssize_t v_write(const struct io *io, int k, int fd, const void *b, size_t n)
{
	return k ? write(fd, b, n) : cairn_write(io->fs, fd, b, n);
}
static int v_unlink(const struct io *io, int k, const char *p)
{
	return k ? unlink(KP(p)) : cairn_unlink(io->fs, p);
}
static int v_rename(const struct io *io, int k, const char *a, const char *b, unsigned flags)
{
	if (!k)
		return cairn_rename(io->fs, a, b, flags);
	return (int)syscall(SYS_renameat2, AT_FDCWD, KP(a), AT_FDCWD, KP(b), flags);
}
static int v_mkdir(const struct io *io, int k, const char *p)
{
	return k ? mkdir(KP(p), 0755) : cairn_mkdir(io->fs, p, 0755);
}
static int v_rmdir(const struct io *io, int k, const char *p)
{
	return k ? rmdir(KP(p)) : cairn_rmdir(io->fs, p);
}
static int v_link(const struct io *io, int k, const char *a, const char *b)
{
	return k ? link(KP(a), KP(b)) : cairn_link(io->fs, a, b);
}
static int v_symlink(const struct io *io, int k, const char *target, const char *p)
{
	return k ? symlink(target, KP(p)) : cairn_symlink(io->fs, target, p);
}
static ssize_t v_readlink(const struct io *io, int k, const char *p, char *b, size_t n)
{
	return k ? readlink(KP(p), b, n) : cairn_readlink(io->fs, p, b, n);
}
static int v_truncate(const struct io *io, int k, const char *p, off_t len)
{
	return k ? truncate(KP(p), len) : cairn_truncate(io->fs, p, len);
}
static int v_setxattr(const struct io *io, int k, const char *p, const void *v, size_t n)
{
	return k ? setxattr(KP(p), "user.k", v, n, 0)
	         : cairn_setxattr(io->fs, p, "user.k", v, n, 0);
}
static ssize_t v_getxattr(const struct io *io, int k, const char *p, void *v, size_t n)
{
	return k ? getxattr(KP(p), "user.k", v, n) : cairn_getxattr(io->fs, p, "user.k", v, n);
}
static int v_lstat(const struct io *io, int k, const char *p, struct stat *st)
{
	return k ? lstat(KP(p), st) : cairn_lstat(io->fs, p, st);
}
static int v_fstat(const struct io *io, int k, int fd, struct stat *st)
{
	return k ? fstat(fd, st) : cairn_fstat(io->fs, fd, st);
}

/* Calls fn for each name of directory p but . and ..; -1 if it cannot be
 * read. */
static int v_list(const struct io *io, int k, const char *p,
                  void (*fn)(void *arg, const char *name), void *arg)
{
	if (k) {
		DIR *d = opendir(KP(p));
		if (!d)
			return -1;
		struct dirent *e;
		while ((e = readdir(d)))
			if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
				fn(arg, e->d_name);
		return closedir(d);
	}
	cairn_dir *d = cairn_opendir(io->fs, p);
	if (!d)
		return -1;
	struct cairn_dirent *e;
	while ((e = cairn_readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			fn(arg, e->d_name);
	return cairn_closedir(d);
}

static int write_all(const struct io *io, int k, int fd, const void *b, size_t n)
{
	for (size_t done = 0; done < n;) {
		ssize_t w = v_write(io, k, fd, (const char *)b + done, n - done);
		if (w <= 0)
			return -1;
		done += (size_t)w;
	}
	return 0;
}

/* The whole file from offset 0, at most max bytes; the count or -1. */
static ssize_t read_all(const struct io *io, int k, int fd, void *b, size_t max)
{
	size_t got = 0;
	while (got < max) {
		ssize_t r = v_pread(io, k, fd, (char *)b + got, max - got, (off_t)got);
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

/* ---- names ------------------------------------------------------------------ */

static void dir_path(int a, int d, char *buf)
{
	if (d == 0)
		snprintf(buf, PATH_MAX, "/a%d", a);
	else if (d == 4)
		snprintf(buf, PATH_MAX, "/shared");
	else if (M->ag[a].dloc[d] == 2)
		snprintf(buf, PATH_MAX, "/shared/o%d-d%d", a, d);
	else
		snprintf(buf, PATH_MAX, "/a%d/d%d", a, d);
}

static void name_path(int a, int d, int k, char *buf)
{
	if (d == 4) {
		snprintf(buf, PATH_MAX, "/shared/o%d-f%d", a, k);
		return;
	}
	dir_path(a, d, buf);
	size_t n = strlen(buf);
	snprintf(buf + n, PATH_MAX - n, "/f%d", k);
}

static int dir_exists(int a, int d)
{
	return d == 0 || d == 4 || M->ag[a].dloc[d] != 0;
}

/* The bytes of pool-X-N: a length and content that only X and N decide. */
static int pool_len(int x, int n)
{
	return 1 + (int)(((unsigned)x * 7919u + (unsigned)n * 104729u) % 5000u);
}
static void pool_fill(unsigned char *b, int x, int n)
{
	for (int i = 0, len = pool_len(x, n); i < len; i++)
		b[i] = (unsigned char)(x * 131 + n * 31 + i * 7 + (i >> 8));
}

/* ---- an agent --------------------------------------------------------------- */

struct agent {
	int a, w, t;
	enum via via;
	struct io io;
	uint64_t rng;
	unsigned char buf[MAXDATA + 16], buf2[MAXDATA + 16];
	char what[160]; /* the call now running, for failure messages */
};

static uint64_t rnd(struct agent *ag)
{
	uint64_t z = (ag->rng += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}
static int below(struct agent *ag, int n)
{
	return (int)(rnd(ag) % (uint64_t)n);
}

static void fill(struct agent *ag, unsigned char *b, int len)
{
	uint64_t v = rnd(ag);
	for (int i = 0; i < len; i++) {
		if (!(i & 7))
			v = v * 6364136223846793005ull + 1442695040888963407ull;
		b[i] = (unsigned char)(v >> (8 * (i & 7)));
	}
}

/* Whether this call goes through the kernel's mount. */
static int kern(struct agent *ag)
{
	return ag->via == VIA_FUSE || (ag->via == VIA_MIXED && (rnd(ag) & 1));
}

#define AFAIL(ag, ...)                                                                             \
	oops("agent %d (%s) op %ld, %s: %s", (ag)->a,                                              \
	     (ag)->via == VIA_FUSE     ? "fuse"                                                    \
	     : (ag)->via == VIA_ATTACH ? "attach"                                                  \
	                               : "mixed",                                                  \
	     M->ag[(ag)->a].ops, (ag)->what, fmt_(__VA_ARGS__))
static const char *fmt_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const char *fmt_(const char *fmt, ...)
{
	static __thread char b[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(b, sizeof(b), fmt, ap);
	va_end(ap);
	return b;
}

/* The result r of the call described in ag->what must be what the model
 * predicts: success (want 0) or -1 with errno want. */
static void expect(struct agent *ag, long r, int want)
{
	int e = errno;
	if (want == 0 && r < 0)
		AFAIL(ag, "failed with %s, the model expects success", strerror(e));
	if (want != 0 && (r != -1 || e != want))
		AFAIL(ag, "returned %ld (%s), the model expects %s", r, r < 0 ? strerror(e) : "",
		      strerror(want));
	if (want)
		M->ag[ag->a].failed_as_predicted++;
}

static int alloc_inode(struct m_agent *m)
{
	for (int i = 0; i < MAXINO; i++)
		if (!m->ino[i].used) {
			memset(&m->ino[i], 0, offsetof(struct m_inode, data));
			m->ino[i].used = 1;
			m->ino[i].nlink = 1;
			return i;
		}
	return -1;
}

static void drop_link(struct m_agent *m, int i)
{
	if (--m->ino[i].nlink == 0)
		m->ino[i].used = 0;
}

/* A random name that holds an inode (of type, or any if 0): 0 and *d, *k,
 * or -1 if there is none. */
static int pick_name(struct agent *ag, char type, int *d, int *k)
{
	struct m_agent *m = &M->ag[ag->a];
	int start = below(ag, NDIR * NK);
	for (int j = 0; j < NDIR * NK; j++) {
		int s = (start + j) % (NDIR * NK), i = m->name[s / NK][s % NK];
		if (i >= 0 && (!type || m->ino[i].type == type)) {
			*d = s / NK;
			*k = s % NK;
			return 0;
		}
	}
	return -1;
}

/* Checks the name (d, k) against the model through the chosen path. */
static void check_name(struct agent *ag, int d, int k)
{
	struct m_agent *m = &M->ag[ag->a];
	char p[PATH_MAX];
	name_path(ag->a, d, k, p);
	int kk = kern(ag), i = m->name[d][k];
	snprintf(ag->what, sizeof(ag->what), "check %s via %s", p, kk ? "fuse" : "attach");
	struct stat st;
	int r = v_lstat(&ag->io, kk, p, &st);
	if (i < 0) {
		expect(ag, r, ENOENT);
		return;
	}
	expect(ag, r, 0);
	struct m_inode *n = &m->ino[i];
	if (n->type == 'l') {
		if (!S_ISLNK(st.st_mode))
			AFAIL(ag, "mode %o, expected a symlink", st.st_mode);
		ssize_t len = v_readlink(&ag->io, kk, p, (char *)ag->buf, sizeof(ag->buf));
		if (len != (ssize_t)strlen(n->target) || memcmp(ag->buf, n->target, (size_t)len))
			AFAIL(ag, "readlink %zd, expected %s", len, n->target);
	} else {
		if (!S_ISREG(st.st_mode))
			AFAIL(ag, "mode %o, expected a file", st.st_mode);
		if (st.st_size != n->size)
			AFAIL(ag, "size %lld, expected %d", (long long)st.st_size, n->size);
		int fd = v_open(&ag->io, kk, p, O_RDONLY, 0);
		expect(ag, fd, 0);
		ssize_t len = read_all(&ag->io, kk, fd, ag->buf, sizeof(ag->buf));
		v_close(&ag->io, kk, fd);
		if (len != n->size)
			AFAIL(ag, "read %zd bytes, expected %d", len, n->size);
		for (int b = 0; b < n->size; b++)
			if (ag->buf[b] != n->data[b])
				AFAIL(ag, "byte %d is %#x, expected %#x", b, ag->buf[b],
				      n->data[b]);
		errno = 0;
		char x[XLEN + 1];
		ssize_t xl = v_getxattr(&ag->io, kk, p, x, sizeof(x));
		if (n->xlen ? xl != n->xlen || memcmp(x, n->x, (size_t)xl)
		            : xl != -1 || errno != ENODATA)
			AFAIL(ag, "user.k: %zd (%s), expected %d bytes", xl, strerror(errno),
			      n->xlen);
	}
	if ((int)st.st_nlink != n->nlink)
		AFAIL(ag, "nlink %d, expected %d", (int)st.st_nlink, n->nlink);
}

static void op_create(struct agent *ag)
{
	struct m_agent *m = &M->ag[ag->a];
	int d = below(ag, NDIR), k = below(ag, NK), kk = kern(ag);
	char p[PATH_MAX];
	name_path(ag->a, d, k, p);
	int i = -1;
	if (dir_exists(ag->a, d) && m->name[d][k] < 0 && (i = alloc_inode(m)) < 0)
		return; /* no room in the model */
	snprintf(ag->what, sizeof(ag->what), "create %s via %s", p, kk ? "fuse" : "attach");
	int fd = v_open(&ag->io, kk, p, O_CREAT | O_EXCL | O_WRONLY, 0644);
	expect(ag, fd, !dir_exists(ag->a, d) ? ENOENT : m->name[d][k] >= 0 ? EEXIST : 0);
	if (fd < 0)
		return;
	int len = below(ag, 3) ? below(ag, 6000) : 0;
	fill(ag, m->ino[i].data, len);
	m->ino[i].type = 'f';
	m->ino[i].size = len;
	m->name[d][k] = i;
	if (write_all(&ag->io, kk, fd, m->ino[i].data, (size_t)len))
		AFAIL(ag, "write of %d bytes: %s", len, strerror(errno));
	expect(ag, v_close(&ag->io, kk, fd), 0);
}

/* pwrite (mode 0), append (1) or truncate (2) of a file. */
static void op_data(struct agent *ag, int mode)
{
	struct m_agent *m = &M->ag[ag->a];
	int d, k, kk = kern(ag);
	if (pick_name(ag, 'f', &d, &k))
		return;
	struct m_inode *n = &m->ino[m->name[d][k]];
	char p[PATH_MAX];
	name_path(ag->a, d, k, p);
	if (mode == 2) {
		int len = below(ag, 4) ? below(ag, MAXDATA) : 0;
		snprintf(ag->what, sizeof(ag->what), "truncate %s to %d via %s", p, len,
		         kk ? "fuse" : "attach");
		expect(ag, v_truncate(&ag->io, kk, p, len), 0);
		if (len > n->size)
			memset(n->data + n->size, 0, (size_t)(len - n->size));
		n->size = len;
		return;
	}
	int off = mode == 1 ? n->size : below(ag, MAXDATA - 1);
	if (off >= MAXDATA - 1)
		return;
	int max = MAXDATA - off < 9000 ? MAXDATA - off : 9000;
	int len = 1 + below(ag, max);
	snprintf(ag->what, sizeof(ag->what), "%s %d bytes at %d of %s via %s",
	         mode ? "append" : "pwrite", len, off, p, kk ? "fuse" : "attach");
	int fd = v_open(&ag->io, kk, p, O_WRONLY | (mode == 1 ? O_APPEND : 0), 0);
	expect(ag, fd, 0);
	fill(ag, ag->buf, len);
	ssize_t w = mode == 1 ? v_write(&ag->io, kk, fd, ag->buf, (size_t)len)
	                      : v_pwrite(&ag->io, kk, fd, ag->buf, (size_t)len, off);
	if (w != len)
		AFAIL(ag, "wrote %zd (%s)", w, strerror(errno));
	if (off > n->size)
		memset(n->data + n->size, 0, (size_t)(off - n->size));
	memcpy(n->data + off, ag->buf, (size_t)len);
	if (off + len > n->size)
		n->size = off + len;
	/* What was written shows at once through the other path too. */
	if (ag->via == VIA_MIXED) {
		struct stat st;
		expect(ag, v_lstat(&ag->io, !kk, p, &st), 0);
		if (st.st_size != n->size)
			AFAIL(ag, "the other path says size %lld, expected %d",
			      (long long)st.st_size, n->size);
	}
	expect(ag, v_close(&ag->io, kk, fd), 0);
}

static void op_unlink(struct agent *ag)
{
	struct m_agent *m = &M->ag[ag->a];
	int d = below(ag, NDIR), k = below(ag, NK), kk = kern(ag);
	char p[PATH_MAX];
	name_path(ag->a, d, k, p);
	snprintf(ag->what, sizeof(ag->what), "unlink %s via %s", p, kk ? "fuse" : "attach");
	int i = dir_exists(ag->a, d) ? m->name[d][k] : -1;
	expect(ag, v_unlink(&ag->io, kk, p), i < 0 ? ENOENT : 0);
	if (i >= 0) {
		m->name[d][k] = -1;
		drop_link(m, i);
	}
}

static void op_rename(struct agent *ag)
{
	struct m_agent *m = &M->ag[ag->a];
	int d, k, kk = kern(ag);
	if (pick_name(ag, 0, &d, &k))
		return;
	int d2 = below(ag, NDIR), k2 = below(ag, NK);
	int i = m->name[d][k], j = dir_exists(ag->a, d2) ? m->name[d2][k2] : -1;
	unsigned flags = j != i && !below(ag, 4) ? CAIRN_RENAME_NOREPLACE : 0;
	char p[PATH_MAX], q[PATH_MAX];
	name_path(ag->a, d, k, p);
	name_path(ag->a, d2, k2, q);
	snprintf(ag->what, sizeof(ag->what), "rename%s %s to %s via %s", flags ? "(noreplace)" : "",
	         p, q, kk ? "fuse" : "attach");
	int want = !dir_exists(ag->a, d2) ? ENOENT : j >= 0 && flags ? EEXIST : 0;
	expect(ag, v_rename(&ag->io, kk, p, q, flags), want);
	if (want || j == i)
		return; /* failed, or two names of one inode: nothing changes */
	if (j >= 0)
		drop_link(m, j);
	m->name[d2][k2] = i;
	m->name[d][k] = -1;
}

static int dir_empty(const struct m_agent *m, int d)
{
	for (int k = 0; k < NK; k++)
		if (m->name[d][k] >= 0)
			return 0;
	return 1;
}

/* mkdir (mode 0), rmdir (1) or a move between /aN and /shared (2) of a
 * subdirectory. */
static void op_dir(struct agent *ag, int mode)
{
	struct m_agent *m = &M->ag[ag->a];
	int d = 1 + below(ag, 3), kk = kern(ag);
	char p[PATH_MAX], q[PATH_MAX];
	dir_path(ag->a, d, p);
	if (mode == 0) {
		int loc = m->dloc[d] ? m->dloc[d] : 1 + below(ag, 2);
		int had = m->dloc[d];
		m->dloc[d] = loc;
		dir_path(ag->a, d, p);
		snprintf(ag->what, sizeof(ag->what), "mkdir %s via %s", p, kk ? "fuse" : "attach");
		expect(ag, v_mkdir(&ag->io, kk, p), had ? EEXIST : 0);
	} else if (mode == 1) {
		snprintf(ag->what, sizeof(ag->what), "rmdir %s via %s", p, kk ? "fuse" : "attach");
		int want = !m->dloc[d] ? ENOENT : !dir_empty(m, d) ? ENOTEMPTY : 0;
		expect(ag, v_rmdir(&ag->io, kk, p), want);
		if (!want)
			m->dloc[d] = 0;
	} else if (m->dloc[d]) {
		m->dloc[d] = 3 - m->dloc[d];
		dir_path(ag->a, d, q);
		snprintf(ag->what, sizeof(ag->what), "rename directory %s to %s via %s", p, q,
		         kk ? "fuse" : "attach");
		expect(ag, v_rename(&ag->io, kk, p, q, below(ag, 2) ? CAIRN_RENAME_NOREPLACE : 0),
		       0);
		/* Its names went with it. */
		int k;
		for (k = 0; k < NK && m->name[d][k] < 0; k++)
			;
		if (k < NK)
			check_name(ag, d, k);
	}
}

/* link (mode 0) of a file, or a new symlink (1). */
static void op_link(struct agent *ag, int mode)
{
	struct m_agent *m = &M->ag[ag->a];
	int d, k, kk = kern(ag);
	if (mode == 0 && pick_name(ag, 'f', &d, &k))
		return;
	int d2 = below(ag, NDIR), k2 = below(ag, NK);
	int want = !dir_exists(ag->a, d2) ? ENOENT : m->name[d2][k2] >= 0 ? EEXIST : 0;
	char p[PATH_MAX], q[PATH_MAX];
	name_path(ag->a, d2, k2, q);
	if (mode == 0) {
		name_path(ag->a, d, k, p);
		snprintf(ag->what, sizeof(ag->what), "link %s to %s via %s", q, p,
		         kk ? "fuse" : "attach");
		expect(ag, v_link(&ag->io, kk, p, q), want);
		if (!want) {
			m->name[d2][k2] = m->name[d][k];
			m->ino[m->name[d][k]].nlink++;
		}
		return;
	}
	int i = -1;
	if (!want && (i = alloc_inode(m)) < 0)
		return;
	char target[64];
	snprintf(target, sizeof(target), "nowhere-%d-%llx", ag->a,
	         (unsigned long long)(rnd(ag) >> 20));
	snprintf(ag->what, sizeof(ag->what), "symlink %s -> %s via %s", q, target,
	         kk ? "fuse" : "attach");
	expect(ag, v_symlink(&ag->io, kk, target, q), want);
	if (!want) {
		m->ino[i].type = 'l';
		strcpy(m->ino[i].target, target);
		m->ino[i].size = (int)strlen(target);
		m->name[d2][k2] = i;
	}
}

static void op_setxattr(struct agent *ag)
{
	struct m_agent *m = &M->ag[ag->a];
	int d, k, kk = kern(ag);
	if (pick_name(ag, 'f', &d, &k))
		return;
	struct m_inode *n = &m->ino[m->name[d][k]];
	char p[PATH_MAX];
	name_path(ag->a, d, k, p);
	snprintf(ag->what, sizeof(ag->what), "setxattr %s via %s", p, kk ? "fuse" : "attach");
	int len = 1 + below(ag, XLEN);
	fill(ag, (unsigned char *)n->x, len);
	n->xlen = len;
	expect(ag, v_setxattr(&ag->io, kk, p, n->x, (size_t)len), 0);
}

/* Collects names for op_list. */
struct listing {
	char names[64][32];
	int n, dups, over;
	int total; /* names listed, those of other agents included */
	const char *prefix;
};
static void collect(void *arg, const char *name)
{
	struct listing *l = arg;
	l->total++;
	if (l->prefix && strncmp(name, l->prefix, strlen(l->prefix)))
		return;
	for (int i = 0; i < l->n; i++)
		if (!strcmp(l->names[i], name)) {
			l->dups++;
			return;
		}
	if (l->n == 64 || strlen(name) >= 32) {
		l->over++;
		return;
	}
	strcpy(l->names[l->n++], name);
}

/* The names the model says directory d of agent a holds (only a's in
 * /shared), into want (64 at most); their count. */
static int model_names(int a, int d, char want[64][32])
{
	const struct m_agent *m = &M->ag[a];
	int n = 0;
	for (int k = 0; k < NK; k++) {
		if (m->name[d][k] < 0)
			continue;
		if (d == 4)
			snprintf(want[n++], 32, "o%d-f%d", a, k);
		else
			snprintf(want[n++], 32, "f%d", k);
	}
	for (int i = 1; i <= 3; i++) {
		if (d == 0 && m->dloc[i] == 1)
			snprintf(want[n++], 32, "d%d", i);
		if (d == 4 && m->dloc[i] == 2)
			snprintf(want[n++], 32, "o%d-d%d", a, i);
	}
	return n;
}

/* Whether listing l holds exactly names want[0..n-1]. */
static const char *listing_differs(const struct listing *l, char want[64][32], int n)
{
	static __thread char why[128];
	if (l->dups || l->over)
		return "a name listed twice, or too many names";
	for (int i = 0; i < n; i++) {
		int j;
		for (j = 0; j < l->n && strcmp(l->names[j], want[i]); j++)
			;
		if (j == l->n) {
			snprintf(why, sizeof(why), "%s is missing", want[i]);
			return why;
		}
	}
	if (l->n != n) {
		snprintf(why, sizeof(why), "%d names, expected %d", l->n, n);
		return why;
	}
	return NULL;
}

/* A listing that differs from the model: says which names differ, and
 * whether lstat and another listing, through each path, see them. */
static void list_failure(struct agent *ag, const struct listing *l, const char *dir,
                         const char *why, char want[64][32], int n)
{
	char diff[64][34];
	int nd = 0;
	for (int i = 0; i < l->n; i++) {
		int j;
		for (j = 0; j < n && strcmp(l->names[i], want[j]); j++)
			;
		if (j == n)
			snprintf(diff[nd++], 34, "+%s", l->names[i]);
	}
	for (int j = 0; j < n; j++) {
		int i;
		for (i = 0; i < l->n && strcmp(l->names[i], want[j]); i++)
			;
		if (i == l->n)
			snprintf(diff[nd++], 34, "-%s", want[j]);
	}
	struct io both = ag->io;
	if (!both.fs)
		both.fs = cairn_attach(g.mnt);
	for (int i = 0; i < nd; i++) {
		char p[PATH_MAX];
		snprintf(p, sizeof(p), "%s/%s", dir, diff[i] + 1);
		for (int k = 0; k < 2; k++) {
			if (k ? !both.mnt : !both.fs)
				continue;
			struct stat st;
			errno = 0;
			int r = v_lstat(&both, k, p, &st);
			fprintf(stderr, "agent %d: %s listed %s, lstat %s via %s: %d %s ino %llu\n",
			        ag->a, diff[i][0] == '+' ? "wrongly" : "not", diff[i] + 1, p,
			        k ? "fuse" : "attach", r, strerror(errno),
			        r ? 0ull : (unsigned long long)st.st_ino);
		}
	}
	for (int k = 0; k < 2; k++) {
		if (k ? !both.mnt : !both.fs)
			continue;
		struct listing again = {.prefix = l->prefix};
		v_list(&both, k, dir, collect, &again);
		fprintf(stderr, "agent %d: listed again via %s: %d of %d names: %s\n", ag->a,
		        k ? "fuse" : "attach", again.n, again.total,
		        listing_differs(&again, want, n) ? listing_differs(&again, want, n)
		                                         : "as the model says");
	}
	AFAIL(ag, "%s (%d of %d names listed were ours)", why, l->n, l->total);
}

static void op_list(struct agent *ag)
{
	int d = below(ag, NDIR), kk = kern(ag);
	if (!dir_exists(ag->a, d))
		return;
	char p[PATH_MAX], pre[32];
	dir_path(ag->a, d, p);
	snprintf(pre, sizeof(pre), "o%d-", ag->a);
	snprintf(ag->what, sizeof(ag->what), "list %s via %s", p, kk ? "fuse" : "attach");
	struct listing l = {.prefix = d == 4 ? pre : NULL};
	expect(ag, v_list(&ag->io, kk, p, collect, &l), 0);
	char want[64][32];
	const char *why = listing_differs(&l, want, model_names(ag->a, d, want));
	if (why)
		list_failure(ag, &l, p, why, want, model_names(ag->a, d, want));
	if (d != 4) { /* a directory's link count: 2 and one per subdirectory */
		struct stat st;
		expect(ag, v_lstat(&ag->io, kk, p, &st), 0);
		int subdirs = 0;
		for (int i = 1; i <= 3; i++)
			subdirs += d == 0 && M->ag[ag->a].dloc[i] == 1;
		if ((int)st.st_nlink != 2 + subdirs)
			AFAIL(ag, "nlink %d, expected %d", (int)st.st_nlink, 2 + subdirs);
	}
}

/* Hands a file over: written under a private name, published by rename. */
static void op_give(struct agent *ag)
{
	int n = atomic_load(&M->ag[ag->a].gives), kk = kern(ag);
	if (n >= MAXGIVE)
		return;
	char p[PATH_MAX], q[PATH_MAX];
	snprintf(p, sizeof(p), "/a%d/gtmp", ag->a);
	snprintf(q, sizeof(q), "/shared/pool-%d-%d", ag->a, n);
	snprintf(ag->what, sizeof(ag->what), "give %s via %s", q, kk ? "fuse" : "attach");
	int fd = v_open(&ag->io, kk, p, O_CREAT | O_EXCL | O_WRONLY, 0644);
	expect(ag, fd, 0);
	pool_fill(ag->buf, ag->a, n);
	if (write_all(&ag->io, kk, fd, ag->buf, (size_t)pool_len(ag->a, n)))
		AFAIL(ag, "write: %s", strerror(errno));
	expect(ag, v_close(&ag->io, kk, fd), 0);
	atomic_store(&M->ag[ag->a].gives, n + 1); /* before: a claim may follow at once */
	expect(ag, v_rename(&ag->io, kk, p, q, CAIRN_RENAME_NOREPLACE), 0);
}

/* Takes a file another agent (or this one) handed over, racing the
 * others that want it: one rename wins, the rest find no name. */
static void op_claim(struct agent *ag)
{
	struct m_agent *m = &M->ag[ag->a];
	int x = below(ag, NAG);
	if (!M->ag[x].active)
		return;
	int gives = atomic_load(&M->ag[x].gives), n;
	for (n = 0; n < gives && atomic_load(&M->claimed[x][n]) >= 0; n++)
		;
	n += below(ag, 2); /* mostly the oldest free one, which the others want too */
	if (n >= gives)
		return;
	int d = below(ag, NDIR), k = below(ag, NK), i;
	if (!dir_exists(ag->a, d) || m->name[d][k] >= 0 || (i = alloc_inode(m)) < 0)
		return;
	int kk = kern(ag);
	char p[PATH_MAX], q[PATH_MAX];
	snprintf(p, sizeof(p), "/shared/pool-%d-%d", x, n);
	name_path(ag->a, d, k, q);
	snprintf(ag->what, sizeof(ag->what), "claim %s as %s via %s", p, q, kk ? "fuse" : "attach");
	errno = 0;
	if (v_rename(&ag->io, kk, p, q, CAIRN_RENAME_NOREPLACE)) {
		m->ino[i].used = 0;
		if (errno != ENOENT)
			AFAIL(ag, "%s", strerror(errno));
		m->failed_as_predicted++;
		return;
	}
	int none = -1;
	if (!atomic_compare_exchange_strong(&M->claimed[x][n], &none, ag->a))
		AFAIL(ag, "agent %d renamed it away too", none);
	m->ino[i].type = 'f';
	m->ino[i].size = pool_len(x, n);
	pool_fill(m->ino[i].data, x, n);
	m->name[d][k] = i;
	check_name(ag, d, k);
}

/* Creates race-K with O_EXCL beside the others: exactly one wins. */
static void op_race(struct agent *ag)
{
	int r = atomic_load(&M->race_round), kk = kern(ag);
	if (r >= MAXRACE)
		return;
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "/shared/race-%d", r);
	snprintf(ag->what, sizeof(ag->what), "O_EXCL create of %s via %s", p,
	         kk ? "fuse" : "attach");
	errno = 0;
	int fd = v_open(&ag->io, kk, p, O_CREAT | O_EXCL | O_WRONLY, 0644);
	if (fd < 0) {
		if (errno != EEXIST)
			AFAIL(ag, "%s", strerror(errno));
		M->ag[ag->a].failed_as_predicted++;
		return;
	}
	int none = -1;
	if (!atomic_compare_exchange_strong(&M->race_winner[r], &none, ag->a))
		AFAIL(ag, "agent %d created it too", none);
	char who[16];
	int len = snprintf(who, sizeof(who), "%d", ag->a);
	if (write_all(&ag->io, kk, fd, who, (size_t)len) || v_close(&ag->io, kk, fd))
		AFAIL(ag, "write: %s", strerror(errno));
	atomic_compare_exchange_strong(&M->race_round, &r, r + 1);
}

/* A page the kernel has cached, rewritten through the handle, and the
 * reverse: each side reads the other's write at once, through a
 * descriptor it opened before. */
static void op_coherence(struct agent *ag)
{
	struct m_agent *m = &M->ag[ag->a];
	int d, k;
	if (ag->via != VIA_MIXED || pick_name(ag, 'f', &d, &k))
		return;
	struct m_inode *n = &m->ino[m->name[d][k]];
	if (n->size == 0)
		return;
	char p[PATH_MAX];
	name_path(ag->a, d, k, p);
	snprintf(ag->what, sizeof(ag->what), "coherence of %s", p);
	int kfd = v_open(&ag->io, 1, p, O_RDWR, 0), cfd = v_open(&ag->io, 0, p, O_RDWR, 0);
	expect(ag, kfd, 0);
	expect(ag, cfd, 0);
	if (read_all(&ag->io, 1, kfd, ag->buf2, sizeof(ag->buf2)) != n->size)
		AFAIL(ag, "the kernel read a wrong size");
	for (int side = 0; side < 2; side++) {
		int off = below(ag, n->size),
		    len = 1 + below(ag, MAXDATA - off < 5000 ? MAXDATA - off : 5000);
		fill(ag, ag->buf, len);
		if (v_pwrite(&ag->io, side, side ? kfd : cfd, ag->buf, (size_t)len, off) != len)
			AFAIL(ag, "pwrite through %s: %s", side ? "fuse" : "attach",
			      strerror(errno));
		memcpy(n->data + off, ag->buf, (size_t)len);
		if (off + len > n->size)
			n->size = off + len;
		struct stat st;
		expect(ag, v_fstat(&ag->io, !side, side ? cfd : kfd, &st), 0);
		if (st.st_size != n->size)
			AFAIL(ag, "after a pwrite through %s the other says size %lld, expected %d",
			      side ? "fuse" : "attach", (long long)st.st_size, n->size);
		ssize_t got =
		    read_all(&ag->io, !side, side ? cfd : kfd, ag->buf2, sizeof(ag->buf2));
		if (got != n->size || memcmp(ag->buf2, n->data, (size_t)n->size))
			AFAIL(ag,
			      "after a pwrite of %d at %d through %s the other reads %zd bytes, "
			      "not what was written",
			      len, off, side ? "fuse" : "attach", got);
	}
	expect(ag, v_close(&ag->io, 1, kfd), 0);
	expect(ag, v_close(&ag->io, 0, cfd), 0);
}

static void one_op(struct agent *ag)
{
	int d, k, c = below(ag, 100);
	M->ag[ag->a].ops++;
	if (c < 12)
		op_create(ag);
	else if (c < 24)
		op_data(ag, 0);
	else if (c < 31)
		op_data(ag, 1);
	else if (c < 36)
		op_data(ag, 2);
	else if (c < 44)
		op_unlink(ag);
	else if (c < 58)
		op_rename(ag);
	else if (c < 62)
		op_dir(ag, 0);
	else if (c < 65)
		op_dir(ag, 1);
	else if (c < 68)
		op_dir(ag, 2);
	else if (c < 73)
		op_link(ag, 0);
	else if (c < 76)
		op_link(ag, 1);
	else if (c < 80)
		op_setxattr(ag);
	else if (c < 87) {
		if (!pick_name(ag, 0, &d, &k))
			check_name(ag, d, k);
	} else if (c < 89)
		op_list(ag);
	else if (c < 91)
		op_give(ag);
	else if (c < 95)
		op_claim(ag);
	else if (c < 96)
		op_race(ag);
	else
		op_coherence(ag);
}

/* ---- workers ---------------------------------------------------------------- */

struct thread_arg {
	struct agent *ag;
	const char *attach_path; /* attach in the thread, or NULL */
	double deadline;
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void *agent_main(void *arg)
{
	struct thread_arg *ta = arg;
	struct agent *ag = ta->ag;
	if (ta->attach_path && !(ag->io.fs = cairn_attach(ta->attach_path)))
		oops("agent %d: attach %s: %s", ag->a, ta->attach_path, strerror(errno));
	while (now_s() < ta->deadline)
		one_op(ag);
	/* The whole tree, once more, by the agent itself. */
	for (int d = 0; d < NDIR; d++) {
		for (int k = 0; k < NK; k++)
			check_name(ag, d, k);
		if (dir_exists(ag->a, d))
			op_list(ag);
	}
	if (ta->attach_path)
		cairn_unmount(ag->io.fs);
	return NULL;
}

static void worker(int w, int phase, const char *mnt)
{
	watchdog((unsigned)g.seconds + 120, "a worker");
	enum via via = phase == 1 ? VIA_ATTACH : phase2_via[w];
	/* Phase 2 attaches through the mount point, phase 1 through the volume. */
	const char *path = phase == 1 ? g.vol : mnt;
	cairn_fs *shared = NULL;
	if (via != VIA_FUSE && !HANDLE_PER_THREAD(w) && !(shared = cairn_attach(path)))
		oops("worker %d: attach %s: %s", w, path, strerror(errno));
	pthread_t th[MAXTHR];
	struct thread_arg ta[MAXTHR];
	struct agent *ags = calloc(MAXTHR, sizeof(*ags));
	double deadline = now_s() + g.seconds;
	for (int t = 0; t < nthreads[w]; t++) {
		struct agent *ag = &ags[t];
		ag->a = w * MAXTHR + t;
		ag->w = w;
		ag->t = t;
		ag->via = via;
		ag->io = (struct io){.fs = shared, .mnt = mnt};
		ag->rng = g.seed ^ ((uint64_t)(ag->a + 1) << 32) ^ (uint64_t)phase;
		ta[t] = (struct thread_arg){
		    ag, via != VIA_FUSE && HANDLE_PER_THREAD(w) ? path : NULL, deadline};
		if (pthread_create(&th[t], NULL, agent_main, &ta[t]))
			oops("pthread_create");
	}
	for (int t = 0; t < nthreads[w]; t++)
		pthread_join(th[t], NULL);
	if (shared)
		cairn_unmount(shared);
	free(ags);
	_exit(0);
}

/* Runs the workers of a phase to the end; each must exit 0. */
static void run_workers(int phase, const char *mnt)
{
	pid_t kids[NWORK];
	for (int w = 0; w < NWORK; w++) {
		kids[w] = fork();
		assert_true(kids[w] >= 0);
		if (kids[w] == 0)
			worker(w, phase, mnt);
	}
	int failed = 0;
	for (int w = 0; w < NWORK; w++) {
		int st = 0;
		if (wait_bounded(kids[w], &st, (g.seconds + 150) * 1000) != kids[w]) {
			kill_reap(&kids[w]);
			printf("worker %d did not finish\n", w);
			failed = 1;
		} else if (!WIFEXITED(st) || WEXITSTATUS(st)) {
			printf("worker %d: %s %d\n", w, WIFEXITED(st) ? "exit" : "signal",
			       WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
			failed = 1;
		}
	}
	if (failed)
		fail_msg("phase %d: a worker failed (seed %llu)", phase,
		         (unsigned long long)g.seed);
	long ops = 0, predicted = 0;
	for (int a = 0; a < NAG; a++) {
		ops += M->ag[a].ops;
		predicted += M->ag[a].failed_as_predicted;
	}
	printf("phase %d: %ld calls so far (%ld failed as the model said), %d names raced\n", phase,
	       ops, predicted, atomic_load(&M->race_round));
}

/* ---- the whole volume against the models ------------------------------------- */

struct vstate {
	const struct io *io;
	int k;
	const char *where;
	/* st_ino of each modelled inode, to check which names share one */
	uint64_t ino_of[NAG][MAXINO];
	int seen_pool[NAG][MAXGIVE];
	char bad[256];
};

static void vfail(struct vstate *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void vfail(struct vstate *v, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fail_msg("%s (seed %llu): %s", v->where, (unsigned long long)g.seed, msg);
}

static void read_file(struct vstate *v, const char *p, unsigned char *buf, ssize_t *len)
{
	int fd = v_open(v->io, v->k, p, O_RDONLY, 0);
	if (fd < 0)
		vfail(v, "open %s: %s", p, strerror(errno));
	*len = read_all(v->io, v->k, fd, buf, MAXDATA + 8);
	v_close(v->io, v->k, fd);
}

static void verify_name(struct vstate *v, int a, int d, int kname)
{
	const struct m_agent *m = &M->ag[a];
	char p[PATH_MAX];
	name_path(a, d, kname, p);
	struct stat st;
	int i = m->name[d][kname];
	if (v_lstat(v->io, v->k, p, &st))
		vfail(v, "%s: %s", p, strerror(errno));
	const struct m_inode *n = &m->ino[i];
	if (!n->used)
		vfail(v, "%s: the model names a free inode", p);
	if (n->type == 'l' ? !S_ISLNK(st.st_mode) : !S_ISREG(st.st_mode))
		vfail(v, "%s: mode %o, expected a %s", p, st.st_mode,
		      n->type == 'l' ? "symlink" : "file");
	if ((int)st.st_nlink != n->nlink)
		vfail(v, "%s: nlink %d, expected %d", p, (int)st.st_nlink, n->nlink);
	if (v->ino_of[a][i] && v->ino_of[a][i] != st.st_ino)
		vfail(v, "%s: inode %llu, but a link of it is inode %llu", p,
		      (unsigned long long)st.st_ino, (unsigned long long)v->ino_of[a][i]);
	v->ino_of[a][i] = st.st_ino;
	static unsigned char buf[MAXDATA + 16];
	if (n->type == 'l') {
		ssize_t len = v_readlink(v->io, v->k, p, (char *)buf, sizeof(buf));
		if (len != (ssize_t)strlen(n->target) || memcmp(buf, n->target, (size_t)len))
			vfail(v, "%s: readlink %zd, expected %s", p, len, n->target);
		return;
	}
	if (st.st_size != n->size)
		vfail(v, "%s: size %lld, expected %d", p, (long long)st.st_size, n->size);
	ssize_t len;
	read_file(v, p, buf, &len);
	if (len != n->size)
		vfail(v, "%s: read %zd bytes, expected %d", p, len, n->size);
	for (int b = 0; b < n->size; b++)
		if (buf[b] != n->data[b])
			vfail(v, "%s: byte %d is %#x, expected %#x", p, b, buf[b], n->data[b]);
	char x[XLEN + 1];
	errno = 0;
	ssize_t xl = v_getxattr(v->io, v->k, p, x, sizeof(x));
	if (n->xlen ? xl != n->xlen || memcmp(x, n->x, (size_t)xl) : xl != -1 || errno != ENODATA)
		vfail(v, "%s: user.k: %zd (%s), expected %d bytes", p, xl, strerror(errno),
		      n->xlen);
}

static void verify_dir(struct vstate *v, int a, int d)
{
	char p[PATH_MAX], pre[32], want[64][32];
	dir_path(a, d, p);
	snprintf(pre, sizeof(pre), "o%d-", a);
	struct listing l = {.prefix = d == 4 ? pre : NULL};
	if (v_list(v->io, v->k, p, collect, &l))
		vfail(v, "list %s: %s", p, strerror(errno));
	const char *why = listing_differs(&l, want, model_names(a, d, want));
	if (why)
		vfail(v, "%s of agent %d: %s", p, a, why);
	if (d == 4)
		return;
	struct stat st;
	if (v_lstat(v->io, v->k, p, &st) || !S_ISDIR(st.st_mode))
		vfail(v, "%s is not a directory", p);
	int subdirs = 0;
	for (int i = 1; i <= 3; i++)
		subdirs += d == 0 && M->ag[a].dloc[i] == 1;
	if ((int)st.st_nlink != 2 + subdirs)
		vfail(v, "%s: nlink %d, expected %d", p, (int)st.st_nlink, 2 + subdirs);
	for (int k = 0; k < NK; k++)
		if (M->ag[a].name[d][k] >= 0)
			verify_name(v, a, d, k);
}

/* Each name of /shared: one that an agent's model holds, a handed-over
 * file nobody claimed, or a raced name that has its winner.  Counts the
 * subdirectories into *dirs. */
static void shared_name(void *arg, const char *name)
{
	struct vstate *v = arg;
	int a, x, n, end = 0;
	char c;
	if (v->bad[0])
		return;
	if (sscanf(name, "o%d-%c%d%n", &a, &c, &x, &end) == 3 && !name[end] && a >= 0 && a < NAG &&
	    M->ag[a].active && x >= 0 && ((c == 'f' && x < NK) || (c == 'd' && x >= 1 && x <= 3)))
		return; /* checked against a's model by verify_dir */
	if (sscanf(name, "pool-%d-%d%n", &x, &n, &end) == 2 && !name[end] && x >= 0 && x < NAG &&
	    n >= 0 && n < atomic_load(&M->ag[x].gives)) {
		v->seen_pool[x][n]++;
		return;
	}
	if (sscanf(name, "race-%d%n", &n, &end) == 1 && !name[end] && n >= 0 && n < MAXRACE &&
	    atomic_load(&M->race_winner[n]) >= 0)
		return;
	snprintf(v->bad, sizeof(v->bad), "/shared/%s: nobody made this name", name);
}

static void root_name(void *arg, const char *name)
{
	struct vstate *v = arg;
	int a, end = 0;
	if (!strcmp(name, "shared") || v->bad[0])
		return;
	if (sscanf(name, "a%d%n", &a, &end) == 1 && !name[end] && a >= 0 && a < NAG &&
	    M->ag[a].active)
		return;
	for (int i = 0; i < g.nroot_names; i++)
		if (!strcmp(name, g.root_names[i]))
			return;
	snprintf(v->bad, sizeof(v->bad), "/%s: nobody made this name", name);
}

static void verify_volume(const struct io *io, int k, const char *where)
{
	static struct vstate v;
	memset(&v, 0, sizeof(v));
	v.io = io;
	v.k = k;
	v.where = where;
	if (v_list(io, k, "/", root_name, &v))
		vfail(&v, "list /: %s", strerror(errno));
	if (v.bad[0])
		vfail(&v, "%s", v.bad);
	int shared_dirs = 0;
	for (int a = 0; a < NAG; a++) {
		if (!M->ag[a].active)
			continue;
		for (int d = 0; d < NDIR; d++)
			if (dir_exists(a, d))
				verify_dir(&v, a, d);
		for (int i = 1; i <= 3; i++)
			shared_dirs += M->ag[a].dloc[i] == 2;
	}
	/* Distinct modelled inodes are distinct inodes. */
	for (int a = 0; a < NAG; a++)
		for (int i = 0; i < MAXINO; i++)
			for (int b = a; v.ino_of[a][i] && b < NAG; b++)
				for (int j = b == a ? i + 1 : 0; j < MAXINO; j++)
					if (v.ino_of[a][i] == v.ino_of[b][j])
						vfail(&v,
						      "inodes %d/%d and %d/%d of the models are "
						      "one, %llu",
						      a, i, b, j,
						      (unsigned long long)v.ino_of[a][i]);
	if (v_list(io, k, "/shared", shared_name, &v))
		vfail(&v, "list /shared: %s", strerror(errno));
	if (v.bad[0])
		vfail(&v, "%s", v.bad);
	struct stat st;
	if (v_lstat(io, k, "/shared", &st))
		vfail(&v, "/shared: %s", strerror(errno));
	if ((int)st.st_nlink != 2 + shared_dirs)
		vfail(&v, "/shared: nlink %d, expected %d", (int)st.st_nlink, 2 + shared_dirs);
	/* Every file handed over is either still there, whole, or was taken
	 * by exactly one agent (whose model then holds it). */
	static unsigned char buf[MAXDATA + 16], want[MAXDATA];
	long pooled = 0, claimed = 0;
	for (int x = 0; x < NAG; x++)
		for (int n = 0; n < atomic_load(&M->ag[x].gives); n++) {
			int by = atomic_load(&M->claimed[x][n]);
			if ((by >= 0) == (v.seen_pool[x][n] == 1) || v.seen_pool[x][n] > 1)
				vfail(&v, "pool-%d-%d: listed %d times, claimed by %d", x, n,
				      v.seen_pool[x][n], by);
			if (by >= 0) {
				claimed++;
				continue;
			}
			pooled++;
			char p[64];
			snprintf(p, sizeof(p), "/shared/pool-%d-%d", x, n);
			ssize_t len;
			read_file(&v, p, buf, &len);
			pool_fill(want, x, n);
			if (len != pool_len(x, n) || memcmp(buf, want, (size_t)len))
				vfail(&v, "%s: not the bytes handed over", p);
		}
	/* Every name raced for has one winner, and holds its number. */
	int rounds = atomic_load(&M->race_round);
	for (int r = 0; r < MAXRACE && r < rounds + 64; r++) {
		int wnr = atomic_load(&M->race_winner[r]);
		if ((r < rounds) != (wnr >= 0))
			vfail(&v, "race-%d: winner %d, but %d names were raced", r, wnr, rounds);
		char p[64], who[16];
		snprintf(p, sizeof(p), "/shared/race-%d", r);
		if (wnr < 0) {
			if (!v_lstat(io, k, p, &st))
				vfail(&v, "%s exists, but nobody won it", p);
			continue;
		}
		ssize_t len;
		read_file(&v, p, buf, &len);
		int wl = snprintf(who, sizeof(who), "%d", wnr);
		if (len != wl || memcmp(buf, who, (size_t)wl))
			vfail(&v, "%s: holds %.*s, but agent %d won it", p, (int)len, buf, wnr);
	}
	printf("%s: the volume matches the models (%ld handed over and waiting, %ld claimed, "
	       "%d raced)\n",
	       where, pooled, claimed, rounds);
}

/* ---- the test ------------------------------------------------------------------- */

static int group_setup(void **state)
{
	(void)state;
	umask(0);
	g.parent = getpid();
	watchdog_cleanup(&g.daemon, g.mnt);
	const char *s = getenv("CAIRN_STRESS_SECONDS");
	g.seconds = s && atoi(s) > 0 ? atoi(s) : 4;
	s = getenv("CAIRN_STRESS_SEED");
	g.seed = s ? strtoull(s, NULL, 0) : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 20);
	printf("seed %llu (CAIRN_STRESS_SEED), %d s a phase (CAIRN_STRESS_SECONDS)\n",
	       (unsigned long long)g.seed, g.seconds);
	M = mmap(NULL, sizeof(*M), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (M == MAP_FAILED)
		return -1;
	for (int a = 0; a < NAG; a++) {
		M->ag[a].active = a % MAXTHR < nthreads[a / MAXTHR];
		memset(M->ag[a].name, -1, sizeof(M->ag[a].name));
		for (int n = 0; n < MAXGIVE; n++)
			M->claimed[a][n] = -1;
	}
	for (int r = 0; r < MAXRACE; r++)
		M->race_winner[r] = -1;

	snprintf(g.root, sizeof(g.root), "/dev/shm/cairn-mstress.XXXXXX");
	if (!mkdtemp(g.root))
		return -1;
	snprintf(g.vol, sizeof(g.vol), "%s/vol", g.root);
	snprintf(g.mnt, sizeof(g.mnt), "%s/mnt", g.root);
	if (mkdir(g.mnt, 0755) || run_cairn("mkfs", g.vol, "--media", "emul", "--log-size", "32M",
	                                    "--fast-size", "128M", NULL) != 0) {
		printf("cannot make the volume in %s\n", g.root);
		return -1;
	}
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	alarm(0);
	if (g.root[0] && is_mounted_at(g.mnt))
		umount2(g.mnt, MNT_DETACH);
	kill_reap(&g.daemon);
	scratch_remove(g.root);
	return 0;
}

static void add_root_name(void *arg, const char *name)
{
	(void)arg;
	if (g.nroot_names < 8)
		snprintf(g.root_names[g.nroot_names++], 64, "%s", name);
}

/* The daemon stopped: the volume, mounted here, and fsck. */
static void verify_local(const char *where)
{
	cairn_fs *local = cairn_mount(g.vol, &(struct cairn_mount_opts){0});
	if (!local)
		fail_msg("cairn_mount: %s", cairn_last_error());
	verify_volume(&(struct io){.fs = local}, 0, where);
	CHECK(cairn_unmount(local));
	assert_int_equal(run_cairn("fsck", g.vol, NULL), 0);
}

static void test_phase_serve(void **state)
{
	(void)state;
	watchdog((unsigned)g.seconds + 240, "phase 1 (cairn serve)");
	cairn_fs *fs;
	serve_and_attach(g.vol, &g.daemon, &fs);
	CHECK(v_list(&(struct io){.fs = fs}, 0, "/", add_root_name, NULL));
	CHECK(cairn_mkdir(fs, "/shared", 0755));
	for (int a = 0; a < NAG; a++)
		if (M->ag[a].active) {
			char p[32];
			snprintf(p, sizeof(p), "/a%d", a);
			CHECK(cairn_mkdir(fs, p, 0755));
		}
	run_workers(1, NULL);
	verify_volume(&(struct io){.fs = fs}, 0, "phase 1, through the daemon");
	CHECK(cairn_unmount(fs));
	daemon_stop(&g.daemon);
	verify_local("phase 1, mounted locally");
	alarm(0);
	g.phase1_ok = 1;
}

static void test_phase_mount(void **state)
{
	(void)state;
	if (!g.phase1_ok)
		skip();
	watchdog((unsigned)g.seconds + 240, "phase 2 (cairn mount)");
	kill_reap(&g.daemon);
	g.daemon = spawn_cairn(0, "mount", g.vol, g.mnt, "--foreground", NULL);
	assert_true(g.daemon > 0);
	wait_for_mount(&g.daemon, g.mnt);
	cairn_fs *fs = attach_wait(g.mnt, &g.daemon);
	run_workers(2, g.mnt);
	verify_volume(&(struct io){.fs = fs}, 0, "phase 2, through the daemon");
	verify_volume(&(struct io){.mnt = g.mnt}, 1, "phase 2, through the mount");
	CHECK(cairn_unmount(fs));
	assert_int_equal(run_cairn("umount", g.mnt, NULL), 0);
	int st;
	assert_int_equal(wait_bounded(g.daemon, &st, 20000), g.daemon);
	g.daemon = 0;
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	verify_local("phase 2, mounted locally");
	alarm(0);
}

int main(int argc, char **argv)
{
	(void)argc;
	fuse_tests_require(argv[0]);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_phase_serve),
	    cmocka_unit_test(test_phase_mount),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
