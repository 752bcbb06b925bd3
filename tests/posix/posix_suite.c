/*
 * posix_suite.c - cairn's own POSIX conformance suite, covering the ground
 * pjdfstest covers: chmod, chown, link, mkdir, mkfifo/mknod, open, rename,
 * rmdir, symlink, truncate/ftruncate, unlink, utimensat and
 * posix_fallocate, each with its success and errno cases.
 *
 * Usage: posix_suite DIR [SUBSTRING]
 *
 * Runs every case (or those whose name holds SUBSTRING) with ordinary system
 * calls inside DIR/posix-suite, each case in a fresh subdirectory that is
 * its working directory, and prints one line per case:
 *
 *	case-name: <result>
 *
 * where a result is "ok", an errno name, or normalized values: file types,
 * modes, link counts, owners, sizes, data checks, and times compared as
 * "chg" / "same" / "back" (before and after an operation) rather than
 * printed.  Inode numbers, device numbers and clock readings never appear,
 * so the transcript is deterministic and the same on any file system that
 * behaves like Linux ext4: run.sh diffs the transcript of a cairn mount
 * against that of ext4 (or tmpfs).
 *
 * Must run as root: permission cases fork a child that drops to uid/gid
 * 65534 (setresuid) and reports its errno through its exit status.  A case
 * runs on as far as it can; a failed setup step shows as setup@LINE:ERRNO.
 * Paths are relative to the case directory, so the 4095/4096-byte path
 * cases do not depend on where DIR is.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define UID_U 65534 /* the unprivileged user of the permission cases */
#define GID_U 65534
#define UID_O 65533 /* some other user */
#define GID_O 12345 /* a group the user is not in */
#define ROOT_FD 9   /* DIR/posix-suite stays open here */

/* ---- the result line of the current case ---------------------------------- */

static char res[16384];
static size_t reslen;

static void add(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void add(const char *fmt, ...)
{
	if (reslen && reslen < sizeof(res) - 1)
		res[reslen++] = ' ';
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(res + reslen, sizeof(res) - reslen, fmt, ap);
	va_end(ap);
	if (n > 0)
		reslen = reslen + (size_t)n < sizeof(res) ? reslen + (size_t)n : sizeof(res) - 1;
}

static const char *en(int e)
{
	static char b[16];
	const char *s = strerrorname_np(e);
	if (s)
		return s;
	snprintf(b, sizeof(b), "E%d", e);
	return b;
}

static long ret_(long r)
{
	add("%s", r == -1 ? en(errno) : "ok");
	return r;
}

/* E(call): the result of a call that returns -1 and sets errno. */
#define E(call) ret_((long)(call))
/* S(call): a setup step; the case ends if it fails. */
#define S(call)                                                                         \
	do {                                                                            \
		if ((long)(call) == -1) {                                               \
			add("setup@%d:%s", __LINE__, en(errno));                        \
			return;                                                         \
		}                                                                       \
	} while (0)

/* posix_fallocate returns an errno: convert to the -1/errno convention. */
static int pfa(int fd, off_t off, off_t len)
{
	int e = posix_fallocate(fd, off, len);
	if (e) {
		errno = e;
		return -1;
	}
	return 0;
}

/* ---- running as the unprivileged user --------------------------------------- */

static void drop(uid_t u, gid_t g)
{
	if (setgroups(0, NULL) || setresgid(g, g, g) || setresuid(u, u, u))
		_exit(254);
}

static void child_result(pid_t p)
{
	int st;
	if (p < 0) {
		add("fork:%s", en(errno));
		return;
	}
	while (waitpid(p, &st, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(st))
		add("child-signal%d", WIFSIGNALED(st) ? WTERMSIG(st) : 0);
	else if (WEXITSTATUS(st) == 0)
		add("ok");
	else if (WEXITSTATUS(st) == 254)
		add("setuid-failed");
	else if (WEXITSTATUS(st) == 253)
		add("child-bad-errno");
	else
		add("%s", en(WEXITSTATUS(st)));
}

/* AS(uid, gid, expr): evaluates expr in a child running as uid/gid; adds
 * "ok" or the errno name (expr returns -1 and sets errno on failure). */
#define AS(u, g, ...)                                                                   \
	do {                                                                            \
		fflush(stdout);                                                         \
		pid_t p_ = fork();                                                      \
		if (p_ == 0) {                                                          \
			drop(u, g);                                                     \
			errno = 0;                                                      \
			long r_ = (long)(__VA_ARGS__);                                  \
			_exit(r_ == -1 ? (errno > 0 && errno < 250 ? errno : 253) : 0); \
		}                                                                       \
		child_result(p_);                                                       \
	} while (0)
#define U(...) AS(UID_U, GID_U, __VA_ARGS__)

/* ---- files, data and attributes ------------------------------------------- */

static int mkf(const char *p, mode_t mode)
{
	int fd = open(p, O_CREAT | O_EXCL | O_WRONLY, mode);
	if (fd < 0)
		return -1;
	return close(fd);
}

/* A byte pattern that shows misplaced data: depends on the offset. */
static void pattern(char *b, size_t n, size_t off)
{
	for (size_t i = 0; i < n; i++)
		b[i] = (char)('a' + ((off + i) * 7 + (off + i) / 4096) % 26);
}

static int put(const char *p, mode_t mode, const void *buf, size_t n)
{
	int fd = open(p, O_CREAT | O_WRONLY | O_TRUNC, mode);
	if (fd < 0)
		return -1;
	size_t done = 0;
	while (done < n) {
		ssize_t w = write(fd, (const char *)buf + done, n - done);
		if (w <= 0) {
			int e = w < 0 ? errno : EIO;
			close(fd);
			errno = e;
			return -1;
		}
		done += (size_t)w;
	}
	return close(fd);
}

static int putpat(const char *p, size_t n)
{
	char *b = malloc(n ? n : 1);
	if (!b)
		return -1;
	pattern(b, n, 0);
	int r = put(p, 0644, b, n);
	free(b);
	return r;
}

static ssize_t readall(int fd, char *buf, size_t n)
{
	size_t done = 0;
	while (done < n) {
		ssize_t r = pread(fd, buf + done, n - done, (off_t)done);
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		done += (size_t)r;
	}
	return (ssize_t)done;
}

/* Compares the content of the open file fd with exp[0..n): "data=ok",
 * "data=len:N" (a size mismatch) or "data=diff@OFF". */
static void add_fddata(int fd, const char *exp, size_t n)
{
	char *b = malloc(n + 1);
	if (!b) {
		add("data=nomem");
		return;
	}
	ssize_t r = readall(fd, b, n + 1);
	if (r < 0)
		add("data=%s", en(errno));
	else if ((size_t)r != n)
		add("data=len:%zd", r);
	else {
		size_t i = 0;
		while (i < n && b[i] == exp[i])
			i++;
		if (i == n)
			add("data=ok");
		else
			add("data=diff@%zu", i);
	}
	free(b);
}

static void add_data(const char *p, const char *exp, size_t n)
{
	int fd = open(p, O_RDONLY);
	if (fd < 0) {
		add("data=%s", en(errno));
		return;
	}
	add_fddata(fd, exp, n);
	close(fd);
}

static const char *tname(mode_t m)
{
	switch (m & S_IFMT) {
	case S_IFREG:
		return "reg";
	case S_IFDIR:
		return "dir";
	case S_IFLNK:
		return "lnk";
	case S_IFIFO:
		return "fifo";
	case S_IFCHR:
		return "chr";
	case S_IFBLK:
		return "blk";
	case S_IFSOCK:
		return "sock";
	}
	return "?";
}

static void add_stat_fields(const struct stat *st, const char *f)
{
	for (; *f; f++) {
		switch (*f) {
		case 't':
			add("%s", tname(st->st_mode));
			break;
		case 'm':
			add("m=%04o", (unsigned)(st->st_mode & 07777));
			break;
		case 'n':
			add("n=%lu", (unsigned long)st->st_nlink);
			break;
		case 'u':
			add("u=%u:%u", (unsigned)st->st_uid, (unsigned)st->st_gid);
			break;
		case 's': /* directory sizes are file-system specific */
			if (!S_ISDIR(st->st_mode))
				add("s=%lld", (long long)st->st_size);
			break;
		case 'b':
			add("blocks%s", st->st_blocks > 0 ? ">0" : "=0");
			break;
		case 'A': /* allocated at least the size, or sparse */
			add("%s", (long long)st->st_blocks * 512 >= (long long)st->st_size ? "alloc>=size"
											    : "sparse");
			break;
		case 'T': /* creation: atime, mtime and ctime equal */
			add("amc=%s", st->st_atim.tv_sec == st->st_mtim.tv_sec &&
						       st->st_atim.tv_nsec == st->st_mtim.tv_nsec &&
						       st->st_ctim.tv_sec == st->st_mtim.tv_sec &&
						       st->st_ctim.tv_nsec == st->st_mtim.tv_nsec
					       ? "eq"
					       : "ne");
			break;
		case 'R': { /* mtime and ctime near the clock */
			struct timespec now;
			clock_gettime(CLOCK_REALTIME, &now);
			long long dm = (long long)now.tv_sec - st->st_mtim.tv_sec;
			long long dc = (long long)now.tv_sec - st->st_ctim.tv_sec;
			add("%s", dm >= -30 && dm <= 30 && dc >= -30 && dc <= 30 ? "recent" : "stale");
			break;
		}
		}
	}
}

/* Fields of lstat (follow = 0) or stat (follow = 1) of p, or the errno. */
static void add_stf(const char *p, int follow, const char *f)
{
	struct stat st;
	if ((follow ? stat(p, &st) : lstat(p, &st)) < 0) {
		add("%s", en(errno));
		return;
	}
	add_stat_fields(&st, f);
}

static void add_fstf(int fd, const char *f)
{
	struct stat st;
	if (fstat(fd, &st) < 0) {
		add("%s", en(errno));
		return;
	}
	add_stat_fields(&st, f);
}

/* The usual summary: type, mode, links, owner, size. */
static void add_st(const char *p)
{
	add_stf(p, 0, "tmnus");
}

static void add_mode(const char *p)
{
	add_stf(p, 0, "m");
}

static void add_same(const char *a, const char *b)
{
	struct stat x, y;
	if (lstat(a, &x) || lstat(b, &y))
		add("same=%s", en(errno));
	else
		add("%s", x.st_ino == y.st_ino && x.st_dev == y.st_dev ? "same-ino" : "diff-ino");
}

static nlink_t nlinks(const char *p)
{
	struct stat st;
	return lstat(p, &st) ? 0 : st.st_nlink;
}

static int cmpstr(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The sorted names in directory p. */
static void add_ls(const char *p)
{
	DIR *d = opendir(p);
	if (!d) {
		add("ls=%s", en(errno));
		return;
	}
	char *names[256];
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)) && n < 256)
		names[n++] = strdup(e->d_name);
	closedir(d);
	qsort(names, (size_t)n, sizeof(names[0]), cmpstr);
	char buf[2048] = "ls=[";
	for (int i = 0; i < n; i++) {
		if (i)
			strncat(buf, ",", sizeof(buf) - strlen(buf) - 1);
		strncat(buf, names[i] ? names[i] : "?", sizeof(buf) - strlen(buf) - 1);
		free(names[i]);
	}
	strncat(buf, "]", sizeof(buf) - strlen(buf) - 1);
	add("%s", buf);
}

/* ---- times ------------------------------------------------------------------ */

struct ts3 {
	struct timespec a, m, c;
	int err;
};

static struct ts3 snap(const char *p)
{
	struct ts3 t = {0};
	struct stat st;
	if (lstat(p, &st))
		t.err = errno;
	else {
		t.a = st.st_atim;
		t.m = st.st_mtim;
		t.c = st.st_ctim;
	}
	return t;
}

static struct ts3 fsnap(int fd)
{
	struct ts3 t = {0};
	struct stat st;
	if (fstat(fd, &st))
		t.err = errno;
	else {
		t.a = st.st_atim;
		t.m = st.st_mtim;
		t.c = st.st_ctim;
	}
	return t;
}

/* Lets the file-system clock (coarse, one tick) move on. */
static void tick(void)
{
	struct timespec d = {0, 25 * 1000 * 1000};
	while (nanosleep(&d, &d) < 0 && errno == EINTR)
		;
}

static const char *tcmp(struct timespec before, struct timespec after)
{
	if (after.tv_sec == before.tv_sec && after.tv_nsec == before.tv_nsec)
		return "same";
	if (after.tv_sec > before.tv_sec ||
	    (after.tv_sec == before.tv_sec && after.tv_nsec > before.tv_nsec))
		return "chg";
	return "back";
}

static void add_tdiff(const char *label, const struct ts3 *b, const struct ts3 *a, const char *which)
{
	if (b->err || a->err) {
		add("%s.t=%s", label, en(b->err ? b->err : a->err));
		return;
	}
	for (; *which; which++) {
		const struct timespec *x = *which == 'a' ? &b->a : *which == 'm' ? &b->m : &b->c;
		const struct timespec *y = *which == 'a' ? &a->a : *which == 'm' ? &a->m : &a->c;
		add("%s.%c=%s", label, *which, tcmp(*x, *y));
	}
}

/* Compares the times of p now with the snapshot b: "label.m=chg ...". */
static void add_tchg(const char *label, const char *p, const struct ts3 *b, const char *which)
{
	struct ts3 a = snap(p);
	add_tdiff(label, b, &a, which);
}

static void add_time(const char *label, struct timespec t)
{
	add("%s=%lld.%09ld", label, (long long)t.tv_sec, t.tv_nsec);
}

/* ---- long names and paths ---------------------------------------------------- */

static void longname(char *p, size_t n, char c)
{
	memset(p, c, n);
	p[n] = '\0';
}

/* Builds in p a relative path of exactly len bytes: directories of 100-byte
 * names (created), then one last component of 101 to 200 bytes (not
 * created).  Returns 0 or -1. */
static int deep(char *p, size_t len)
{
	size_t pos = 0;
	while (len - pos > 200) {
		memset(p + pos, 'p', 100);
		p[pos + 100] = '\0';
		if (mkdir(p, 0755) < 0)
			return -1;
		p[pos + 100] = '/';
		pos += 101;
	}
	memset(p + pos, 'q', len - pos);
	p[len] = '\0';
	return 0;
}

/* ---- the case table ------------------------------------------------------- */

struct tcase {
	char name[80];
	void (*fn)(const struct tcase *);
	int a, b;
};

static struct tcase *cases;
static int ncases, capcases;

static void reg(void (*fn)(const struct tcase *), int a, int b, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void reg(void (*fn)(const struct tcase *), int a, int b, const char *fmt, ...)
{
	if (ncases == capcases) {
		capcases = capcases ? capcases * 2 : 256;
		cases = realloc(cases, (size_t)capcases * sizeof(*cases));
		if (!cases) {
			perror("posix_suite: realloc");
			exit(2);
		}
	}
	struct tcase *t = &cases[ncases++];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(t->name, sizeof(t->name), fmt, ap);
	va_end(ap);
	t->fn = fn;
	t->a = a;
	t->b = b;
}

#define T(fn) static void fn(const struct tcase *t __attribute__((unused)))

/* Object kinds of the typed cases. */
enum { K_FILE, K_DIR, K_FIFO, K_SYMLINK, K_COUNT };
static const char *const kind_names[] = {"file", "dir", "fifo", "symlink"};

/* Creates an object of kind k at p with mode (symlink: to "tgt", a file). */
static int mkobj(int k, const char *p, mode_t mode)
{
	switch (k) {
	case K_FILE:
		return mkf(p, mode);
	case K_DIR:
		return mkdir(p, mode);
	case K_FIFO:
		return mkfifo(p, mode);
	default:
		if (access("tgt", F_OK) && mkf("tgt", 0644))
			return -1;
		return symlink("tgt", p);
	}
}

/* ======================================================================== */
/* The operation x path-condition matrix: every operation against the same
 * list of path conditions (missing, wrong type, long names, loops,
 * permissions...).  The result is the operation's, then "|" and the
 * lstat summary of the path afterwards. */

enum need { N_NONE, N_FILE, N_DIR };

struct gop {
	const char *name;
	enum need need; /* what must exist at the path for success */
	long (*fn)(const char *p);
	const char *other; /* the other name the operation touches, or NULL */
};

static long g_chmod(const char *p) { return chmod(p, 0600); }
static long g_chown(const char *p) { return chown(p, UID_U, GID_U); }
static long g_lchown(const char *p) { return lchown(p, UID_U, GID_U); }
static long g_linksrc(const char *p) { return link(p, "zlink"); }
static long g_linkdst(const char *p) { return link("zsrc", p); }
static long g_mkdir(const char *p) { return mkdir(p, 0755); }
static long g_mkfifo(const char *p) { return mkfifo(p, 0644); }
static long g_mknod(const char *p) { return mknod(p, S_IFREG | 0644, 0); }
static long g_creat(const char *p) { return open(p, O_CREAT | O_RDWR | O_NONBLOCK, 0644); }
static long g_excl(const char *p) { return open(p, O_CREAT | O_EXCL | O_RDWR | O_NONBLOCK, 0644); }
static long g_open(const char *p) { return open(p, O_RDONLY | O_NONBLOCK); }
static long g_renamesrc(const char *p) { return rename(p, "zren"); }
static long g_renamedst(const char *p) { return rename("zsrc", p); }
static long g_rmdir(const char *p) { return rmdir(p); }
static long g_symlink(const char *p) { return symlink("zsrc", p); }
static long g_truncate(const char *p) { return truncate(p, 100); }
static long g_unlink(const char *p) { return unlink(p); }
static long g_utimens(const char *p) { return utimensat(AT_FDCWD, p, NULL, 0); }
static long g_stat(const char *p)
{
	struct stat st;
	return stat(p, &st);
}

static const struct gop gops[] = {
	{"chmod", N_FILE, g_chmod, NULL},
	{"chown", N_FILE, g_chown, NULL},
	{"lchown", N_FILE, g_lchown, NULL},
	{"link-src", N_FILE, g_linksrc, "zlink"},
	{"link-dst", N_NONE, g_linkdst, "zsrc"},
	{"mkdir", N_NONE, g_mkdir, NULL},
	{"mkfifo", N_NONE, g_mkfifo, NULL},
	{"mknod-reg", N_NONE, g_mknod, NULL},
	{"open-creat", N_NONE, g_creat, NULL},
	{"open-excl", N_NONE, g_excl, NULL},
	{"open-rdonly", N_FILE, g_open, NULL},
	{"rename-src", N_FILE, g_renamesrc, "zren"},
	{"rename-dst", N_NONE, g_renamedst, "zsrc"},
	{"rmdir", N_DIR, g_rmdir, NULL},
	{"symlink", N_NONE, g_symlink, NULL},
	{"truncate", N_FILE, g_truncate, NULL},
	{"unlink", N_FILE, g_unlink, NULL},
	{"utimensat", N_FILE, g_utimens, NULL},
	{"stat", N_FILE, g_stat, NULL},
};
#define NGOPS ((int)(sizeof(gops) / sizeof(gops[0])))

enum cond {
	C_PLAIN,
	C_MISSING,
	C_ISFILE,
	C_ISDIR,
	C_ISFIFO,
	C_SYMLINK,
	C_DANGLING,
	C_LOOP,
	C_ENOENT_PARENT,
	C_ENOTDIR_PARENT,
	C_TRAILING,
	C_DOT,
	C_NAME255,
	C_NAME256,
	C_PATH4095,
	C_PATH4096,
	C_ELOOP_PARENT,
	C_USER_OWN,
	C_USER_FOREIGN,
	C_USER_STICKY,
	C_USER_NOWRITE,
	C_USER_NOSEARCH,
	C_COUNT
};
static const char *const cond_names[] = {
	"plain",          "missing",     "is-file",      "is-dir",       "is-fifo",
	"is-symlink",     "is-dangling", "is-loop",      "enoent-parent", "enotdir-parent",
	"trailing-slash", "dot",         "name-255",     "name-256",      "path-4095",
	"path-4096",      "eloop-parent", "user-owner",  "user-foreign",  "user-sticky-foreign",
	"user-nowrite-dir", "user-nosearch-dir"};

static int prep(enum need n, const char *p)
{
	if (n == N_FILE)
		return mkf(p, 0666);
	if (n == N_DIR)
		return mkdir(p, 0777);
	return 0;
}

static int cond_applies(const struct gop *o, int c)
{
	switch (c) {
	case C_MISSING:
		return o->need != N_NONE;
	case C_ISFILE:
		return o->need != N_FILE;
	case C_ISDIR:
		return o->need != N_DIR;
	}
	return 1;
}

T(t_matrix)
{
	const struct gop *o = &gops[t->a];
	char p[PATH_MAX + 16] = "obj";
	int user = 0;
	S(mkf("zsrc", 0644));
	switch (t->b) {
	case C_PLAIN:
		S(prep(o->need, p));
		break;
	case C_MISSING:
		strcpy(p, "missing");
		break;
	case C_ISFILE:
		S(mkf(p, 0666));
		break;
	case C_ISDIR:
		S(mkdir(p, 0777));
		break;
	case C_ISFIFO:
		S(mkfifo(p, 0666));
		break;
	case C_SYMLINK:
		S(prep(o->need == N_DIR ? N_DIR : N_FILE, "tgt"));
		S(symlink("tgt", p));
		break;
	case C_DANGLING:
		S(symlink("nowhere", p));
		break;
	case C_LOOP:
		S(symlink("obj", p));
		break;
	case C_ENOENT_PARENT:
		strcpy(p, "nodir/obj");
		break;
	case C_ENOTDIR_PARENT:
		S(mkf("file", 0644));
		strcpy(p, "file/obj");
		break;
	case C_TRAILING:
		S(prep(o->need, p));
		strcpy(p, "obj/");
		break;
	case C_DOT:
		strcpy(p, ".");
		break;
	case C_NAME255:
		longname(p, 255, 'n');
		S(prep(o->need, p));
		break;
	case C_NAME256:
		longname(p, 256, 'n');
		break;
	case C_PATH4095:
		S(deep(p, 4095));
		S(prep(o->need, p));
		break;
	case C_PATH4096:
		S(deep(p, 4096));
		break;
	case C_ELOOP_PARENT:
		S(symlink("loop2", "loop1"));
		S(symlink("loop1", "loop2"));
		strcpy(p, "loop1/obj");
		break;
	case C_USER_OWN:
		S(chmod(".", 0777));
		S(prep(o->need, p));
		if (o->need != N_NONE)
			S(lchown(p, UID_U, GID_U));
		S(lchown("zsrc", UID_U, GID_U));
		user = 1;
		break;
	case C_USER_FOREIGN:
		S(chmod(".", 0777));
		S(prep(o->need, p));
		S(lchown("zsrc", UID_U, GID_U));
		user = 1;
		break;
	case C_USER_STICKY:
		S(chmod(".", 01777));
		S(prep(o->need, p));
		S(lchown("zsrc", UID_U, GID_U));
		user = 1;
		break;
	case C_USER_NOWRITE:
		S(prep(o->need, p));
		user = 1;
		break;
	case C_USER_NOSEARCH:
		S(mkdir("d", 0777));
		strcpy(p, "d/obj");
		S(prep(o->need, p));
		S(chmod("d", 0666));
		user = 1;
		break;
	}
	if (user)
		U(o->fn(p));
	else
		E(o->fn(p));
	add("|");
	add_st(p);
	if (t->b == C_SYMLINK) {
		add("| tgt:");
		add_st("tgt");
	}
	if (o->other) {
		add("| %s:", o->other);
		add_st(o->other);
	}
}

/* ======================================================================== */
/* chmod */

static const mode_t chmod_modes[] = {0, 0111, 0644, 0777, 04755, 02755, 01755, 07777};
#define NCHMOD ((int)(sizeof(chmod_modes) / sizeof(chmod_modes[0])))

T(t_chmod_mode)
{
	S(mkobj(t->a, "obj", 0644));
	E(chmod("obj", chmod_modes[t->b]));
	add_mode("obj");
	if (t->a == K_SYMLINK)
		add_stf("obj", 1, "m");
}

T(t_chmod_ctime)
{
	S(mkobj(t->a, "obj", 0644));
	struct ts3 b = snap("obj");
	tick();
	E(chmod("obj", 0700));
	add_tchg("obj", "obj", &b, "mc");
}

T(t_chmod_eperm_ctime)
{
	S(mkf("f", 0644));
	struct ts3 b = snap("f");
	tick();
	U(chmod("f", 0600));
	add_mode("f");
	add_tchg("f", "f", &b, "c");
}

T(t_chmod_symlink_follows)
{
	S(mkf("f", 0644));
	S(symlink("f", "l"));
	E(chmod("l", 0600));
	add_mode("f");
	add_mode("l");
}

T(t_fchmod)
{
	S(mkf("f", 0644));
	int fd;
	S(fd = open("f", t->a ? O_RDONLY : O_RDWR));
	E(fchmod(fd, 0604));
	add_mode("f");
}

T(t_fchmod_opath)
{
	S(mkf("f", 0644));
	int fd;
	S(fd = open("f", O_PATH));
	E(fchmod(fd, 0600));
	add_mode("f");
}

T(t_fchmodat_nofollow)
{
	S(mkf("f", 0644));
	S(symlink("f", "l"));
	E(fchmodat(AT_FDCWD, t->a ? "f" : "l", 0600, AT_SYMLINK_NOFOLLOW));
	add_mode("f");
	add_mode("l");
}

T(t_chmod_user_own)
{
	S(chmod(".", 0777));
	U(mkf("f", 0644));
	U(chmod("f", 0600));
	add_stf("f", 0, "mu");
}

T(t_chmod_user_sgid)
{
	/* a: 0 = file group is not the user's, 1 = it is; b: 0 file, 1 dir */
	S(mkobj(t->b ? K_DIR : K_FILE, "f", 0755));
	S(chown("f", UID_U, t->a ? GID_U : 0));
	U(chmod("f", 02755));
	add_mode("f");
}

T(t_chmod_user_sticky_file)
{
	S(mkf("f", 0644));
	S(chown("f", UID_U, GID_U));
	U(chmod("f", 01644));
	add_mode("f");
}

T(t_chmod_user_via_fd)
{
	/* fchmod checks ownership, not how the fd was opened */
	S(mkf("f", 0666));
	U(({
		int fd = open("f", O_RDWR);
		fd < 0 ? -1 : fchmod(fd, 0600);
	}));
	add_mode("f");
}

/* ======================================================================== */
/* write and truncate clear set-id bits */

T(t_write_clears_setid)
{
	/* a: mode; b: 0 root writes, 1 user writes, 2 user writes a file of
	 * the user's group (set-group-ID without group execute stays) */
	S(mkf("f", 0644));
	if (t->b == 2)
		S(chown("f", 0, GID_U));
	S(chmod("f", (mode_t)t->a));
	if (t->b)
		U(({
			int fd = open("f", O_WRONLY);
			fd < 0 ? -1 : write(fd, "x", 1);
		}));
	else
		E(({
			int fd = open("f", O_WRONLY);
			fd < 0 ? -1 : write(fd, "x", 1);
		}));
	add_stf("f", 0, "ms");
}

T(t_truncate_clears_setid)
{
	S(mkf("f", 0644));
	S(chmod("f", (mode_t)t->a));
	if (t->b)
		U(truncate("f", 10));
	else
		E(truncate("f", 10));
	add_stf("f", 0, "ms");
}

T(t_ftruncate_clears_setid)
{
	S(mkf("f", 0644));
	S(chmod("f", 04777));
	U(({
		int fd = open("f", O_WRONLY);
		fd < 0 ? -1 : ftruncate(fd, 5);
	}));
	add_stf("f", 0, "ms");
}

/* ======================================================================== */
/* chown */

T(t_chown_kind)
{
	S(mkobj(t->a, "obj", 0644));
	E(chown("obj", UID_U, GID_U));
	add_stf("obj", 0, "u");
	if (t->a == K_SYMLINK)
		add_stf("obj", 1, "u");
}

T(t_lchown_kind)
{
	S(mkobj(t->a, "obj", 0644));
	E(lchown("obj", UID_U, GID_U));
	add_stf("obj", 0, "u");
	if (t->a == K_SYMLINK)
		add_stf("obj", 1, "u");
}

T(t_chown_partial)
{
	/* a: 0 uid only, 1 gid only, 2 neither (-1, -1) */
	S(mkf("f", 0644));
	struct ts3 b = snap("f");
	tick();
	if (t->a == 0)
		E(chown("f", UID_U, (gid_t)-1));
	else if (t->a == 1)
		E(chown("f", (uid_t)-1, GID_U));
	else
		E(chown("f", (uid_t)-1, (gid_t)-1));
	add_stf("f", 0, "u");
	add_tchg("f", "f", &b, "mc");
}

T(t_chown_ctime)
{
	S(mkobj(t->a, "obj", 0644));
	struct ts3 b = snap("obj");
	tick();
	E(lchown("obj", UID_U, GID_U));
	add_tchg("obj", "obj", &b, "mc");
}

T(t_fchown)
{
	S(mkf("f", 0644));
	int fd;
	S(fd = open("f", O_RDONLY));
	E(fchown(fd, UID_U, GID_U));
	add_stf("f", 0, "u");
}

T(t_fchownat_nofollow)
{
	S(mkf("f", 0644));
	S(symlink("f", "l"));
	E(fchownat(AT_FDCWD, "l", UID_U, GID_U, AT_SYMLINK_NOFOLLOW));
	add_stf("l", 0, "u");
	add_stf("f", 0, "u");
}

T(t_chown_setid)
{
	/* a: mode; b: kind (K_FILE / K_DIR); chown by root to the user (c=0)
	 * or to root itself */
	S(mkobj(t->b, "f", 0755));
	S(chmod("f", (mode_t)(t->a & 07777)));
	E(chown("f", (t->a & 0100000) ? 0 : UID_U, (t->a & 0100000) ? 0 : GID_U));
	add_stf("f", 0, "mu");
}

T(t_chown_user)
{
	/* a selects what the user (owner of f unless stated) tries */
	S(mkf("f", 0644));
	if (t->a != 5)
		S(chown("f", UID_U, GID_U));
	struct ts3 b = snap("f");
	tick();
	switch (t->a) {
	case 0: /* give it away */
		U(chown("f", UID_O, (gid_t)-1));
		break;
	case 1: /* to the user's own group */
		U(chown("f", (uid_t)-1, GID_U));
		break;
	case 2: /* to a group the user is not in */
		U(chown("f", (uid_t)-1, 0));
		break;
	case 3: /* to its own uid */
		U(chown("f", UID_U, (gid_t)-1));
		break;
	case 4: /* -1, -1 */
		U(chown("f", (uid_t)-1, (gid_t)-1));
		break;
	case 5: /* someone else's file to itself */
		U(chown("f", UID_U, (gid_t)-1));
		break;
	}
	add_stf("f", 0, "u");
	add_tchg("f", "f", &b, "c");
}

T(t_chown_user_clears_suid)
{
	S(mkf("f", 0644));
	S(chown("f", UID_U, 0));
	S(chmod("f", 06755));
	U(chown("f", (uid_t)-1, GID_U));
	add_stf("f", 0, "mu");
}

/* ======================================================================== */
/* link */

T(t_link_basic)
{
	S(mkf("f", 0644));
	struct ts3 bf = snap("f"), bd = snap(".");
	tick();
	E(link("f", "g"));
	add_stf("f", 0, "n");
	add_stf("g", 0, "tn");
	add_same("f", "g");
	add_tchg("f", "f", &bf, "mc");
	add_tchg("dir", ".", &bd, "mc");
}

T(t_link_unlink_one)
{
	S(mkf("f", 0644));
	S(link("f", "g"));
	struct ts3 b = snap("f"), bd = snap(".");
	tick();
	E(unlink("g"));
	add_stf("f", 0, "n");
	add_stf("g", 0, "t");
	add_tchg("f", "f", &b, "mc");
	add_tchg("dir", ".", &bd, "mc");
}

T(t_link_kind)
{
	S(mkobj(t->a, "obj", 0644));
	E(link("obj", "g"));
	add_stf("g", 0, "tn");
	add_same("obj", "g");
	if (t->a == K_SYMLINK)
		add_stf("tgt", 0, "n");
}

T(t_linkat_follow)
{
	S(mkf("f", 0644));
	S(symlink("f", "l"));
	E(linkat(AT_FDCWD, "l", AT_FDCWD, "g", AT_SYMLINK_FOLLOW));
	add_stf("g", 0, "tn");
	add_same("f", "g");
}

T(t_link_self)
{
	S(mkf("f", 0644));
	E(link("f", "f"));
	add_stf("f", 0, "n");
}

T(t_link_existing)
{
	/* a: kind of what already holds the new name */
	S(mkf("f", 0644));
	if (t->a == K_SYMLINK)
		S(symlink("nowhere", "g"));
	else
		S(mkobj(t->a, "g", 0644));
	E(link("f", "g"));
	add_stf("f", 0, "n");
	add_stf("g", 0, "t");
}

T(t_link_many)
{
	S(mkf("f", 0644));
	char n[32];
	for (int i = 0; i < 20; i++) {
		snprintf(n, sizeof(n), "l%02d", i);
		S(link("f", n));
	}
	add_stf("f", 0, "n");
	for (int i = 0; i < 20; i++) {
		snprintf(n, sizeof(n), "l%02d", i);
		S(unlink(n));
		if (i == 9)
			add_stf("f", 0, "n");
	}
	add_stf("f", 0, "n");
}

T(t_link_across_dirs)
{
	S(mkdir("a", 0755));
	S(mkdir("b", 0755));
	S(putpat("a/f", 5000));
	E(link("a/f", "b/g"));
	add_stf("a/f", 0, "n");
	char buf[5000];
	pattern(buf, sizeof(buf), 0);
	add_data("b/g", buf, sizeof(buf));
	S(unlink("a/f"));
	add_stf("b/g", 0, "n");
	add_data("b/g", buf, sizeof(buf));
	add_ls("a");
}

T(t_link_shared_data)
{
	S(mkf("f", 0644));
	S(link("f", "g"));
	S(put("f", 0644, "hello", 5));
	add_data("g", "hello", 5);
	S(truncate("g", 2));
	add_stf("f", 0, "s");
}

T(t_link_user)
{
	/* a: 0 user's own file, 1 root's 0644 file (protected_hardlinks),
	 * 2 root's 0666 file, 3 own file into root's 0755 dir */
	S(chmod(".", 0777));
	S(mkdir("ro", 0755));
	S(mkf("f", t->a == 2 ? 0666 : 0644));
	if (t->a == 0 || t->a == 3)
		S(chown("f", UID_U, GID_U));
	U(link("f", t->a == 3 ? "ro/g" : "g"));
	add_stf("f", 0, "n");
}

T(t_link_after_rename)
{
	S(mkf("f", 0644));
	S(rename("f", "h"));
	E(link("h", "g"));
	add_stf("h", 0, "n");
	add_stf("f", 0, "t");
}

T(t_link_trailing_slash)
{
	S(mkf("f", 0644));
	E(link("f", "g/"));
	add_stf("g", 0, "t");
}

/* ======================================================================== */
/* mkdir */

static const mode_t mkdir_modes[] = {0, 0700, 0755, 0777, 01777, 02755, 04755, 07777};
#define NMKDIR ((int)(sizeof(mkdir_modes) / sizeof(mkdir_modes[0])))

T(t_mkdir_mode)
{
	E(mkdir("d", mkdir_modes[t->a]));
	add_stf("d", 0, "tmnu");
}

T(t_mkdir_umask)
{
	umask((mode_t)t->a);
	E(mkdir("d", 0777));
	umask(0);
	add_mode("d");
}

T(t_mkdir_nlink)
{
	nlink_t before = nlinks(".");
	E(mkdir("d", 0755));
	add("parent+%ld", (long)nlinks(".") - (long)before);
	add_stf("d", 0, "n");
	S(mkdir("d/e", 0755));
	S(mkdir("d/f", 0755));
	S(mkf("d/g", 0644));
	add_stf("d", 0, "n");
	S(rmdir("d/e"));
	add_stf("d", 0, "n");
}

T(t_mkdir_times)
{
	struct ts3 b = snap(".");
	tick();
	E(mkdir("d", 0755));
	add_stf("d", 0, "TR");
	add_tchg("dir", ".", &b, "mc");
}

T(t_mkdir_user)
{
	S(chmod(".", 0777));
	U(mkdir("d", 0777));
	add_stf("d", 0, "tmu");
}

T(t_sgid_dir)
{
	/* a setgid directory owned by group GID_O: new entries take its group,
	 * new directories its setgid bit.  a: 0 root creates, 1 user creates;
	 * b: 0 dir, 1 file 0644, 2 file 02755 */
	S(mkdir("s", 0777));
	S(chown("s", 0, GID_O));
	S(chmod("s", 02777));
	if (t->b == 0) {
		if (t->a)
			U(mkdir("s/x", 0755));
		else
			E(mkdir("s/x", 0755));
	} else {
		mode_t m = t->b == 1 ? 0644 : 02755;
		if (t->a)
			U(mkf("s/x", m));
		else
			E(mkf("s/x", m));
	}
	add_stf("s/x", 0, "tmu");
}

T(t_mkdir_dot)
{
	E(mkdir(t->a ? ".." : ".", 0755));
}

T(t_mkdir_readdir)
{
	S(mkdir("d", 0755));
	S(mkf("d/c", 0644));
	S(mkdir("d/a", 0755));
	S(mkfifo("d/b", 0644));
	S(symlink("x", "d/e"));
	S(mkf("d/gone", 0644));
	S(unlink("d/gone"));
	add_ls("d");
}

T(t_mkdir_in_removed)
{
	S(mkdir("d", 0755));
	int fd;
	S(fd = open("d", O_RDONLY | O_DIRECTORY));
	S(rmdir("d"));
	E(mkdirat(fd, "x", 0755));
	E(openat(fd, "y", O_CREAT | O_WRONLY, 0644));
	add_fstf(fd, "tn");
}

T(t_mkdir_trailing)
{
	E(mkdir("d/", 0755));
	add_stf("d", 0, "t");
	E(mkdir("e//", 0755));
	add_stf("e", 0, "t");
}

/* ======================================================================== */
/* mkfifo and mknod */

static const mode_t fifo_modes[] = {0, 0600, 0644, 0777};

T(t_mkfifo_mode)
{
	E(mkfifo("p", fifo_modes[t->a]));
	add_stf("p", 0, "tmnus");
}

T(t_mkfifo_times)
{
	struct ts3 b = snap(".");
	tick();
	E(mkfifo("p", 0644));
	add_stf("p", 0, "TR");
	add_tchg("dir", ".", &b, "mc");
}

T(t_mkfifo_user)
{
	S(chmod(".", 0777));
	U(mkfifo("p", 0640));
	add_stf("p", 0, "tmu");
}

T(t_fifo_nonblock)
{
	S(mkfifo("p", 0644));
	E(open("p", O_WRONLY | O_NONBLOCK));
	int r;
	S(r = open("p", O_RDONLY | O_NONBLOCK));
	int w;
	E(w = open("p", O_WRONLY | O_NONBLOCK));
	if (w >= 0) {
		E(write(w, "hello", 5));
		char buf[16] = {0};
		ssize_t n = read(r, buf, sizeof(buf));
		add("read=%zd:%.*s", n, n > 0 ? (int)n : 0, buf);
	}
	add_stf("p", 0, "ts");
}

T(t_mknod)
{
	/* a: file type; b: 1 = as the user */
	mode_t m = (mode_t)t->a | 0640;
	dev_t dev = (t->a == S_IFCHR || t->a == S_IFBLK) ? makedev(1, 3) : 0;
	if (t->b) {
		S(chmod(".", 0777));
		U(mknod("n", m, dev));
	} else
		E(mknod("n", m, dev));
	add_stf("n", 0, "tmu");
	struct stat st;
	if (!lstat("n", &st) && (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)))
		add("rdev=%s", st.st_rdev == dev ? "match" : "differs");
}

T(t_mknod_bad)
{
	E(mknod("n", (mode_t)t->a | 0644, 0));
	add_stf("n", 0, "t");
}

/* ======================================================================== */
/* open */

static const mode_t creat_modes[] = {0, 0600, 0644, 0777, 04755, 02755, 01777};
#define NCREAT ((int)(sizeof(creat_modes) / sizeof(creat_modes[0])))

T(t_open_creat_mode)
{
	E(open("f", O_CREAT | O_WRONLY, creat_modes[t->a]));
	add_stf("f", 0, "tmnus");
}

T(t_open_creat_umask)
{
	umask((mode_t)t->a);
	E(open("f", O_CREAT | O_WRONLY, 0777));
	umask(0);
	add_mode("f");
}

T(t_open_creat_times)
{
	struct ts3 b = snap(".");
	tick();
	E(open("f", O_CREAT | O_WRONLY, 0644));
	add_stf("f", 0, "TR");
	add_tchg("dir", ".", &b, "mc");
}

T(t_open_creat_existing)
{
	S(put("f", 0600, "abc", 3));
	struct ts3 b = snap("f"), bd = snap(".");
	tick();
	E(open("f", O_CREAT | O_WRONLY, 0777));
	add_stf("f", 0, "ms");
	add_tchg("f", "f", &b, "mc");
	add_tchg("dir", ".", &bd, "mc");
}

T(t_open_excl)
{
	if (t->a == K_SYMLINK)
		S(symlink(t->b ? "nowhere" : ".", "x"));
	else
		S(mkobj(t->a, "x", 0644));
	E(open("x", O_CREAT | O_EXCL | O_RDWR | O_NONBLOCK, 0644));
	add_stf("x", 0, "t");
}

T(t_open_creat_dangling)
{
	S(symlink("target", "l"));
	E(open("l", O_CREAT | O_WRONLY | (t->a ? O_NOFOLLOW : 0), 0640));
	add_stf("target", 0, "tm");
	add_stf("l", 0, "t");
}

T(t_open_trunc)
{
	/* a: initial size; b: access mode flag */
	S(putpat("f", (size_t)t->a));
	struct ts3 b = snap("f");
	tick();
	E(open("f", O_TRUNC | t->b));
	add_stf("f", 0, "s");
	add_tchg("f", "f", &b, "mc");
}

T(t_open_trunc_user)
{
	/* a: mode of root's file; the user opens it O_RDONLY|O_TRUNC */
	S(putpat("f", 100));
	S(chmod("f", (mode_t)t->a));
	U(open("f", O_RDONLY | O_TRUNC));
	add_stf("f", 0, "s");
}

T(t_open_trunc_fifo)
{
	S(mkfifo("p", 0644));
	E(open("p", O_RDWR | O_TRUNC));
}

T(t_open_dir_flags)
{
	S(mkdir("d", 0755));
	E(open("d", t->a));
}

T(t_open_file_flags)
{
	S(mkf("f", 0644));
	E(open("f", t->a, 0644));
}

T(t_open_creat_directory)
{
	E(open("new", O_CREAT | O_DIRECTORY | O_RDONLY, 0755));
	add_stf("new", 0, "t");
}

T(t_open_nofollow)
{
	/* a: 0 trailing symlink, 1 O_PATH on it, 2 symlink in the middle */
	S(mkdir("d", 0755));
	S(mkf("d/f", 0644));
	S(symlink("d/f", "l"));
	S(symlink("d", "ld"));
	if (t->a == 0)
		E(open("l", O_RDONLY | O_NOFOLLOW));
	else if (t->a == 1) {
		int fd;
		E(fd = open("l", O_PATH | O_NOFOLLOW));
		if (fd >= 0)
			add_fstf(fd, "t");
	} else
		E(open("ld/f", O_RDONLY | O_NOFOLLOW));
}

T(t_open_noatime)
{
	S(mkf("f", 0644));
	if (t->a)
		U(open("f", O_RDONLY | O_NOATIME));
	else
		E(open("f", O_RDONLY | O_NOATIME));
}

static const struct {
	mode_t mode;
	int owner; /* 0 root:root, 1 user:user, 2 root:user's group */
	int flags;
} perm_cases[] = {
	{0660, 0, O_RDONLY}, {0604, 0, O_RDONLY}, {0604, 0, O_WRONLY}, {0602, 0, O_WRONLY},
	{0602, 0, O_RDWR},   {0606, 0, O_RDWR},   {0066, 1, O_RDONLY}, {0400, 1, O_RDONLY},
	{0400, 1, O_WRONLY}, {0200, 1, O_WRONLY}, {0604, 2, O_RDONLY}, {0640, 2, O_RDONLY},
	{0620, 2, O_WRONLY}, {0000, 1, O_RDONLY}, {0111, 0, O_RDONLY},
};
#define NPERM ((int)(sizeof(perm_cases) / sizeof(perm_cases[0])))

T(t_open_perm)
{
	S(mkf("f", 0644));
	S(chown("f", perm_cases[t->a].owner == 1 ? UID_U : 0, perm_cases[t->a].owner ? GID_U : 0));
	S(chmod("f", perm_cases[t->a].mode));
	U(open("f", perm_cases[t->a].flags));
}

T(t_open_user_creat)
{
	/* a: 0 new file in root's 0755 dir, 1 existing 0666 file there,
	 * 2 new file in a 0777 dir */
	S(mkdir("d", t->a == 2 ? 0777 : 0755));
	if (t->a == 1)
		S(mkf("d/f", 0666));
	U(open("d/f", O_CREAT | O_RDWR, 0644));
	add_stf("d/f", 0, "tmu");
}

T(t_open_append)
{
	S(put("f", 0644, "abc", 3));
	int fd;
	S(fd = open("f", O_WRONLY | O_APPEND));
	S(lseek(fd, 0, SEEK_SET));
	E(write(fd, "de", 2));
	E(pwrite(fd, "fg", 2, 0));
	add("pos=%lld", (long long)lseek(fd, 0, SEEK_CUR));
	add_data("f", "abcdefg", 7);
}

/* O_APPEND belongs to the open file: F_SETFL takes it off (a: through a
 * copy made by dup) or puts it on, for every later write. */
T(t_setfl_append)
{
	S(put("f", 0644, "abcdef", 6));
	int fd, fd2;
	S(fd = open("f", t->b ? O_WRONLY : O_WRONLY | O_APPEND));
	S(fd2 = dup(fd));
	E(write(fd2, "g", 1));
	S(fcntl(t->a ? fd2 : fd, F_SETFL, t->b ? O_APPEND : 0));
	add("fl=%d", (fcntl(fd, F_GETFL) & O_APPEND) != 0);
	S(lseek(fd, 1, SEEK_SET));
	E(write(fd2, "XY", 2));
	add("pos=%lld", (long long)lseek(fd, 0, SEEK_CUR));
	add_data("f", t->b ? "gbcdefXY" : "aXYdefg", t->b ? 8 : 7);
}

T(t_open_wrong_access)
{
	S(put("f", 0644, "abc", 3));
	int fd;
	char c;
	if (t->a) {
		S(fd = open("f", O_RDONLY));
		E(write(fd, "x", 1));
	} else {
		S(fd = open("f", O_WRONLY));
		E(read(fd, &c, 1));
	}
	add_stf("f", 0, "s");
}

T(t_open_tmpfile)
{
	S(mkdir("d", 0755));
	int fd;
	E(fd = open("d", O_TMPFILE | O_RDWR, 0600));
	if (fd < 0)
		return;
	add_fstf(fd, "tmn");
	E(write(fd, "data", 4));
	char pp[64];
	snprintf(pp, sizeof(pp), "/proc/self/fd/%d", fd);
	E(linkat(AT_FDCWD, pp, AT_FDCWD, "d/named", AT_SYMLINK_FOLLOW));
	add_stf("d/named", 0, "tmns");
	add_data("d/named", "data", 4);
	add_ls("d");
}

T(t_open_tmpfile_excl)
{
	S(mkdir("d", 0755));
	int fd;
	E(fd = open("d", O_TMPFILE | O_EXCL | O_RDWR, 0600));
	if (fd < 0)
		return;
	char pp[64];
	snprintf(pp, sizeof(pp), "/proc/self/fd/%d", fd);
	E(linkat(AT_FDCWD, pp, AT_FDCWD, "d/named", AT_SYMLINK_FOLLOW));
}

T(t_open_read_past_eof)
{
	S(put("f", 0644, "abc", 3));
	int fd;
	S(fd = open("f", O_RDONLY));
	char b[8];
	add("pread@3=%zd", pread(fd, b, sizeof(b), 3));
	add("pread@100=%zd", pread(fd, b, sizeof(b), 100));
	add("pread@1=%zd", pread(fd, b, sizeof(b), 1));
}

T(t_write_hole)
{
	int fd;
	S(fd = open("f", O_CREAT | O_RDWR, 0644));
	E(pwrite(fd, "x", 1, (off_t)t->a));
	add_fstf(fd, "s");
	char *exp = calloc((size_t)t->a + 1, 1);
	if (!exp)
		return;
	exp[t->a] = 'x';
	add_fddata(fd, exp, (size_t)t->a + 1);
	free(exp);
}

T(t_write_blocks)
{
	int fd;
	S(fd = open("f", O_CREAT | O_RDWR, 0644));
	add_fstf(fd, "b");
	char buf[8192];
	pattern(buf, sizeof(buf), 0);
	E(write(fd, buf, sizeof(buf)));
	E(fsync(fd));
	add_fstf(fd, "sbA");
}

T(t_write_times)
{
	S(put("f", 0644, "abc", 3));
	struct ts3 b = snap("f"), bd = snap(".");
	tick();
	int fd;
	S(fd = open("f", O_WRONLY));
	E(pwrite(fd, "xy", 2, 1));
	add_tchg("f", "f", &b, "mc");
	add_tchg("dir", ".", &bd, "mc");
	add_data("f", "axy", 3);
}

T(t_write_big)
{
	/* data that spans many blocks, overwritten in the middle */
	size_t n = (size_t)t->a;
	char *b = malloc(n);
	if (!b)
		return;
	pattern(b, n, 0);
	S(put("f", 0644, b, n));
	int fd;
	S(fd = open("f", O_WRONLY));
	memset(b + n / 3, 'Z', n / 3);
	E(pwrite(fd, b + n / 3, n / 3, (off_t)(n / 3)));
	close(fd);
	add_stf("f", 0, "s");
	add_data("f", b, n);
	free(b);
}

T(t_open_in_removed_dir)
{
	S(mkdir("d", 0755));
	S(chdir("d"));
	S(rmdir("../d"));
	E(open("f", O_CREAT | O_WRONLY, 0644));
	E(mkdir("e", 0755));
	add_stf(".", 0, "tn");
}

T(t_open_fifo_rdonly_nonblock)
{
	S(mkfifo("p", 0644));
	E(open("p", O_RDONLY | O_NONBLOCK));
}

T(t_open_opath_ops)
{
	S(put("f", 0644, "abc", 3));
	int fd;
	S(fd = open("f", O_PATH));
	char c;
	E(read(fd, &c, 1));
	add_fstf(fd, "ts");
}

T(t_open_name_dots)
{
	/* names that are only dots and other odd bytes are ordinary names */
	static const char *const names[] = {"...", ".a", "a.", " ", "-", "\x01", "\xff\xfe",
					    "a b", "a\\b", "*"};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		E(mkf(names[i], 0644));
	add_stf("...", 0, "t");
	DIR *d = opendir(".");
	int n = 0;
	if (d) {
		while (readdir(d))
			n++;
		closedir(d);
	}
	add("entries=%d", n);
}

/* ======================================================================== */
/* rename */

T(t_rename_kind)
{
	S(mkobj(t->a, "obj", 0755));
	if (t->a == K_DIR)
		S(mkf("obj/inside", 0644));
	struct ts3 bd = snap(".");
	nlink_t n0 = nlinks("obj");
	tick();
	E(rename("obj", "new"));
	add_stf("obj", 0, "t");
	add_stf("new", 0, "tm");
	add("n:%ld->%ld", (long)n0, (long)nlinks("new"));
	if (t->a == K_DIR)
		add_stf("new/inside", 0, "t");
	if (t->a == K_SYMLINK) {
		char buf[64] = {0};
		add("readlink=%zd:%s", readlink("new", buf, sizeof(buf) - 1), buf);
		add_stf("new", 1, "t");
	}
	add_tchg("dir", ".", &bd, "mc");
}

T(t_rename_ctime)
{
	S(mkobj(t->a, "obj", 0755));
	struct ts3 b = snap("obj");
	tick();
	E(rename("obj", "new"));
	add_tchg("obj", "new", &b, "mc");
}

T(t_rename_across)
{
	/* a: kind moved from a/ to b/ */
	S(mkdir("a", 0755));
	S(mkdir("b", 0755));
	S(mkobj(t->a, "a/x", 0755));
	nlink_t na = nlinks("a"), nb = nlinks("b");
	struct ts3 ba = snap("a"), bb = snap("b");
	tick();
	E(rename("a/x", "b/x"));
	add("a.n%+ld b.n%+ld", (long)nlinks("a") - (long)na, (long)nlinks("b") - (long)nb);
	add_tchg("a", "a", &ba, "mc");
	add_tchg("b", "b", &bb, "mc");
	if (t->a == K_DIR) {
		add_same("b/x/..", "b");
		add_stf("b/x", 0, "n");
	}
	add_ls("a");
	add_ls("b");
}

T(t_rename_over_file)
{
	S(putpat("f", 3000));
	S(put("g", 0600, "old", 3));
	S(link("g", "keep"));
	int fd;
	S(fd = open("g", O_RDONLY));
	struct ts3 bk = snap("keep");
	tick();
	E(rename("f", "g"));
	add_stf("f", 0, "t");
	add_stf("g", 0, "mns");
	add_stf("keep", 0, "n");
	add_tchg("replaced", "keep", &bk, "mc");
	add_fddata(fd, "old", 3);
	char buf[3000];
	pattern(buf, sizeof(buf), 0);
	add_data("g", buf, sizeof(buf));
}

T(t_rename_over_unlinked_open)
{
	S(put("g", 0644, "old", 3));
	S(put("f", 0644, "new", 3));
	int fd;
	S(fd = open("g", O_RDWR));
	E(rename("f", "g"));
	add_fstf(fd, "n");
	E(pwrite(fd, "OLD!", 4, 0));
	add_fddata(fd, "OLD!", 4);
	add_data("g", "new", 3);
}

T(t_rename_over_dir)
{
	/* a: 0 empty dir over empty dir, 1 over non-empty dir,
	 * 2 file over dir, 3 dir over file, 4 dir over symlink to dir,
	 * 5 non-empty dir over empty dir */
	switch (t->a) {
	case 0:
	case 1:
	case 5:
		S(mkdir("s", 0755));
		S(mkdir("t", 0755));
		if (t->a == 1)
			S(mkf("t/x", 0644));
		if (t->a == 5)
			S(mkf("s/y", 0644));
		break;
	case 2:
		S(mkf("s", 0644));
		S(mkdir("t", 0755));
		break;
	case 3:
		S(mkdir("s", 0755));
		S(mkf("t", 0644));
		break;
	case 4:
		S(mkdir("s", 0755));
		S(mkdir("u", 0755));
		S(symlink("u", "t"));
		break;
	}
	nlink_t n0 = nlinks(".");
	E(rename("s", "t"));
	add("parent.n%+ld", (long)nlinks(".") - (long)n0);
	add_stf("s", 0, "t");
	add_stf("t", 0, "t");
	add_ls("t");
}

T(t_rename_over_dir_across)
{
	S(mkdir("a", 0755));
	S(mkdir("b", 0755));
	S(mkdir("a/s", 0755));
	S(mkdir("b/t", 0755));
	int fd;
	S(fd = open("b/t", O_RDONLY | O_DIRECTORY));
	nlink_t na = nlinks("a"), nb = nlinks("b");
	E(rename("a/s", "b/t"));
	add("a.n%+ld b.n%+ld", (long)nlinks("a") - (long)na, (long)nlinks("b") - (long)nb);
	add_fstf(fd, "n");
	add_same("b/t/..", "b");
}

T(t_rename_hardlinks)
{
	S(mkf("f", 0644));
	S(link("f", "g"));
	E(rename("f", "g"));
	add_stf("f", 0, "tn");
	add_stf("g", 0, "tn");
}

T(t_rename_same)
{
	S(mkobj(t->a, "x", 0755));
	struct ts3 b = snap(".");
	tick();
	E(rename("x", "x"));
	add_stf("x", 0, "t");
	add_tchg("dir", ".", &b, "m");
}

T(t_rename_subtree)
{
	S(mkdir("d", 0755));
	S(mkdir("d/e", 0755));
	S(mkdir("d/e/f", 0755));
	static const char *const pairs[][2] = {
		{"d", "d/x"}, {"d", "d/e/f/x"}, {"d/e", "d/e/f/x"}, {"d/e/f", "d"},
		{"d/e", "d"}, {"d/e/f", "d/e"}, {".", "x"},         {"d/.", "x"},
		{"d/..", "x"}, {"d", "."},      {"d", ".."},        {"d", "d/e/.."},
	};
	E(rename(pairs[t->a][0], pairs[t->a][1]));
	add_stf("d/e/f", 0, "t");
}

T(t_rename_trailing)
{
	/* a: 0 "f/" -> "g", 1 "f" -> "g/", 2 dir "d/" -> "e/", 3 dir "d" -> "e/" */
	if (t->a < 2)
		S(mkf("f", 0644));
	else
		S(mkdir("d", 0755));
	static const char *const pairs[][2] = {{"f/", "g"}, {"f", "g/"}, {"d/", "e/"}, {"d", "e/"}};
	E(rename(pairs[t->a][0], pairs[t->a][1]));
	add_ls(".");
}

T(t_rename_sticky)
{
	/* a sticky 01777 directory; a: 0 user renames root's file, 1 own
	 * file, 2 own file over root's file, 3 user owns the sticky dir,
	 * 4 root's file to the user's own dir */
	S(mkdir("s", 01777));
	if (t->a == 3)
		S(chown("s", UID_U, GID_U));
	S(mkf("s/f", 0666));
	if (t->a == 1 || t->a == 2)
		S(chown("s/f", UID_U, GID_U));
	if (t->a == 2)
		S(mkf("s/g", 0666));
	S(mkdir("u", 0777));
	U(rename("s/f", t->a == 4 ? "u/f" : "s/g"));
	add_ls("s");
}

T(t_rename_user)
{
	/* a: 0 source dir not writable, 1 target dir not writable,
	 * 2 no search in source dir, 3 moving a dir the user cannot write
	 * (its ".." changes), 4 same, within its parent, 5 user-owned dir */
	S(mkdir("a", 0777));
	S(mkdir("b", 0777));
	switch (t->a) {
	case 0:
		S(mkf("a/f", 0666));
		S(chmod("a", 0755));
		break;
	case 1:
		S(mkf("a/f", 0666));
		S(chmod("b", 0755));
		break;
	case 2:
		S(mkf("a/f", 0666));
		S(chmod("a", 0766));
		break;
	case 3:
	case 4:
		S(mkdir("a/f", 0755));
		break;
	case 5:
		S(mkdir("a/f", 0755));
		S(chown("a/f", UID_U, GID_U));
		break;
	}
	U(rename("a/f", t->a == 4 ? "a/g" : "b/f"));
	add_ls("a");
	add_ls("b");
}

T(t_renameat2)
{
	/* a: 0 NOREPLACE over a file, 1 NOREPLACE to a free name,
	 * 2 EXCHANGE two files, 3 EXCHANGE with a missing name,
	 * 4 EXCHANGE file and dir, 5 NOREPLACE|EXCHANGE, 6 bad flag */
	S(put("f", 0644, "eff", 3));
	if (t->a != 1 && t->a != 3) {
		if (t->a == 4)
			S(mkdir("g", 0755));
		else
			S(put("g", 0644, "gee", 3));
	}
	static const unsigned flags[] = {RENAME_NOREPLACE, RENAME_NOREPLACE, RENAME_EXCHANGE,
					 RENAME_EXCHANGE,  RENAME_EXCHANGE,
					 RENAME_NOREPLACE | RENAME_EXCHANGE, 0x80};
	E(renameat2(AT_FDCWD, "f", AT_FDCWD, "g", flags[t->a]));
	add_stf("f", 0, "ts");
	add_stf("g", 0, "ts");
	if (t->a == 2) {
		add_data("f", "gee", 3);
		add_data("g", "eff", 3);
	}
}

T(t_rename_dir_exchange_across)
{
	S(mkdir("a", 0755));
	S(mkdir("b", 0755));
	S(mkdir("a/x", 0755));
	S(mkf("b/y", 0644));
	nlink_t na = nlinks("a"), nb = nlinks("b");
	E(renameat2(AT_FDCWD, "a/x", AT_FDCWD, "b/y", RENAME_EXCHANGE));
	add("a.n%+ld b.n%+ld", (long)nlinks("a") - (long)na, (long)nlinks("b") - (long)nb);
	add_stf("a/x", 0, "t");
	add_stf("b/y", 0, "t");
	add_same("b/y/..", "b");
}

T(t_rename_chain)
{
	S(put("a", 0644, "A", 1));
	S(put("b", 0644, "B", 1));
	E(rename("a", "c"));
	E(rename("b", "a"));
	E(rename("c", "b"));
	add_data("a", "B", 1);
	add_data("b", "A", 1);
	add_ls(".");
}

T(t_rename_many)
{
	/* a directory of entries renamed in a loop; readdir sees each once */
	S(mkdir("d", 0755));
	char a[64], b[64];
	for (int i = 0; i < 50; i++) {
		snprintf(a, sizeof(a), "d/f%02d", i);
		S(mkf(a, 0644));
	}
	for (int i = 0; i < 50; i++) {
		snprintf(a, sizeof(a), "d/f%02d", i);
		snprintf(b, sizeof(b), "d/g%02d", 49 - i);
		S(rename(a, b));
	}
	DIR *d = opendir("d");
	int n = 0, g = 0;
	struct dirent *e;
	if (d) {
		while ((e = readdir(d))) {
			n++;
			g += e->d_name[0] == 'g';
		}
		closedir(d);
	}
	add("entries=%d g=%d", n, g);
}

/* ======================================================================== */
/* rmdir */

T(t_rmdir_basic)
{
	S(mkdir("d", 0755));
	nlink_t n0 = nlinks(".");
	struct ts3 b = snap(".");
	tick();
	E(rmdir("d"));
	add_stf("d", 0, "t");
	add("parent.n%+ld", (long)nlinks(".") - (long)n0);
	add_tchg("dir", ".", &b, "mc");
}

T(t_rmdir_nonempty)
{
	S(mkdir("d", 0755));
	S(mkobj(t->a, "d/x", 0755));
	E(rmdir("d"));
	add_stf("d", 0, "t");
	S(t->a == K_DIR ? rmdir("d/x") : unlink("d/x"));
	E(rmdir("d"));
}

T(t_rmdir_special)
{
	/* a: path to remove */
	static const char *const paths[] = {".", "..", "d/.", "d/..", "d/", "d//", "l", "l/", "f"};
	S(mkdir("d", 0755));
	S(symlink("d", "l"));
	S(mkf("f", 0644));
	E(rmdir(paths[t->a]));
	add_stf("d", 0, "t");
	add_stf("l", 0, "t");
}

T(t_rmdir_open)
{
	S(mkdir("d", 0755));
	int fd;
	S(fd = open("d", O_RDONLY | O_DIRECTORY));
	E(rmdir("d"));
	add_fstf(fd, "tn");
	DIR *dd = fdopendir(fd);
	int n = 0;
	if (dd) {
		while (readdir(dd))
			n++;
		closedir(dd);
	}
	add("entries=%d", n);
}

T(t_rmdir_user)
{
	/* a: 0 root's dir in sticky 01777, 1 own dir there, 2 root's dir in
	 * root's 0755 dir, 3 root's dir in 0777 dir, 4 user owns sticky dir */
	S(mkdir("s", t->a == 2 ? 0755 : t->a == 3 ? 0777 : 01777));
	if (t->a == 4)
		S(chown("s", UID_U, GID_U));
	S(mkdir("s/d", 0777));
	if (t->a == 1)
		S(chown("s/d", UID_U, GID_U));
	U(rmdir("s/d"));
	add_stf("s/d", 0, "t");
}

T(t_rmdir_cwd)
{
	S(mkdir("d", 0755));
	S(chdir("d"));
	E(rmdir("../d"));
	add_stf(".", 0, "tn");
	E(open(".", O_RDONLY));
	add_stf("..", 0, "t");
}

/* ======================================================================== */
/* symlink and readlink */

T(t_symlink_basic)
{
	S(mkf("f", 0640));
	struct ts3 b = snap(".");
	tick();
	E(symlink("f", "l"));
	add_stf("l", 0, "tmnsTR");
	add_stf("l", 1, "tm");
	char buf[16] = {0};
	add("readlink=%zd:%s", readlink("l", buf, sizeof(buf) - 1), buf);
	add_tchg("dir", ".", &b, "mc");
}

T(t_symlink_dangling)
{
	E(symlink("nowhere/x", "l"));
	add_stf("l", 0, "ts");
	add_stf("l", 1, "t");
}

T(t_symlink_target_len)
{
	char *tg = malloc((size_t)t->a + 1);
	if (!tg)
		return;
	memset(tg, 'x', (size_t)t->a);
	for (int i = 100; i < t->a; i += 100)
		tg[i] = '/';
	tg[t->a] = '\0';
	E(symlink(tg, "l"));
	char *buf = malloc(8192);
	if (buf) {
		ssize_t n = readlink("l", buf, 8192);
		add("readlink=%zd:%s", n, n == t->a && !memcmp(buf, tg, (size_t)n) ? "same" : "differs");
		free(buf);
	}
	add_stf("l", 0, "ts");
	free(tg);
}

T(t_symlink_chain)
{
	S(mkf("f", 0644));
	char a[16], b[16];
	S(symlink("f", "l0"));
	for (int i = 1; i <= t->a; i++) {
		snprintf(a, sizeof(a), "l%d", i - 1);
		snprintf(b, sizeof(b), "l%d", i);
		S(symlink(a, b));
	}
	snprintf(b, sizeof(b), "l%d", t->a);
	E(open(b, O_RDONLY));
	add_stf(b, 1, "t");
}

T(t_symlink_loop)
{
	S(symlink("l", "l"));
	add_stf("l", 1, "t");
	add_stf("l", 0, "t");
	E(open("l", O_RDONLY));
	E(open("l", O_CREAT | O_WRONLY, 0644));
	E(unlink("l"));
}

T(t_symlink_resolve)
{
	/* a: 0 relative "../f" from a subdir, 1 "/" absolute, 2 dir with a
	 * trailing slash, 3 file with a trailing slash, 4 through a dir link */
	S(mkdir("d", 0755));
	S(mkf("f", 0644));
	S(mkf("d/g", 0644));
	switch (t->a) {
	case 0:
		S(symlink("../f", "d/l"));
		add_stf("d/l", 1, "tm");
		E(open("d/l", O_RDONLY));
		break;
	case 1:
		S(symlink("/", "l"));
		add_stf("l", 1, "t");
		break;
	case 2:
		S(symlink("d", "l"));
		add_stf("l/", 0, "t");
		add_stf("l", 0, "t");
		break;
	case 3:
		S(symlink("f", "l"));
		add_stf("l/", 0, "t");
		break;
	case 4:
		S(symlink("d", "l"));
		add_stf("l/g", 0, "t");
		E(mkf("l/h", 0644));
		add_stf("d/h", 0, "t");
		break;
	}
}

T(t_symlink_empty)
{
	E(symlink("", "l"));
	add_stf("l", 0, "t");
}

T(t_symlink_user)
{
	S(chmod(".", 0777));
	U(symlink("f", "l"));
	add_stf("l", 0, "tmu");
}

T(t_readlink)
{
	/* a: 0 on a file, 1 on a dir, 2 short buffer, 3 missing, 4 fifo */
	S(mkf("f", 0644));
	S(mkdir("d", 0755));
	S(mkfifo("p", 0644));
	S(symlink("abcdef", "l"));
	char buf[16] = {0};
	static const char *const paths[] = {"f", "d", "l", "missing", "p"};
	ssize_t n;
	E(n = readlink(paths[t->a], buf, t->a == 2 ? 3 : sizeof(buf) - 1));
	if (n >= 0)
		add("%zd:%.*s", n, (int)n, buf);
}

/* ======================================================================== */
/* truncate and ftruncate */

/* Writes a pattern of a bytes, truncates to each size of the list (b
 * selects the list), and checks size and data after each step. */
static const long trunc_lists[][4] = {
	{100, 10000, -1, 0},        /* grow */
	{10000, 5000, -1, 0},       /* shrink */
	{10000, 5000, 10000, -1},   /* shrink then grow: zeros, not old data */
	{12345, 4097, 8191, -1},    /* unaligned shrink then grow */
	{8192, 0, 8192, -1},        /* to zero and back */
	{5000, 1 << 20, 100, 4000}, /* far grow, shrink, grow */
	{65536, 4095, 65536, -1},   /* many blocks */
	{1, 0, 1, -1},              /* one byte */
};
#define NTRUNC ((int)(sizeof(trunc_lists) / sizeof(trunc_lists[0])))

T(t_truncate_seq)
{
	const long *l = trunc_lists[t->a];
	size_t max = (size_t)l[0];
	for (int i = 1; i < 4 && l[i] >= 0; i++)
		if ((size_t)l[i] > max)
			max = (size_t)l[i];
	char *exp = calloc(max, 1);
	if (!exp)
		return;
	pattern(exp, (size_t)l[0], 0);
	size_t cur = (size_t)l[0];
	if (putpat("f", cur) < 0) {
		add("setup:%s", en(errno));
		free(exp);
		return;
	}
	int fd = t->b ? open("f", O_RDWR) : -1;
	for (int i = 1; i < 4 && l[i] >= 0; i++) {
		size_t n = (size_t)l[i];
		if (t->b)
			E(ftruncate(fd, (off_t)n));
		else
			E(truncate("f", (off_t)n));
		if (n < cur)
			memset(exp + n, 0, cur - n);
		cur = n;
		add_stf("f", 0, "s");
		add_data("f", exp, cur);
	}
	free(exp);
}

T(t_truncate_times)
{
	/* a: new size (the file holds 100 bytes); b: 1 = ftruncate */
	S(putpat("f", 100));
	int fd;
	S(fd = open("f", O_RDWR));
	struct ts3 b = snap("f");
	tick();
	if (t->b)
		E(ftruncate(fd, t->a));
	else
		E(truncate("f", t->a));
	add_tchg("f", "f", &b, "mc");
}

T(t_truncate_sparse)
{
	S(mkf("f", 0644));
	E(truncate("f", 1 << 20));
	add_stf("f", 0, "sA");
	int fd;
	S(fd = open("f", O_RDONLY));
	char b[4096], z[4096] = {0};
	add("zeros=%s", pread(fd, b, sizeof(b), 512 * 1024) == 4096 && !memcmp(b, z, 4096) ? "yes" : "no");
}

T(t_truncate_bad)
{
	/* a: 0 dir, 1 fifo, 2 negative, 3 symlink to file (follows),
	 * 4 symlink to dir */
	S(mkdir("d", 0755));
	S(mkfifo("p", 0644));
	S(put("f", 0644, "abc", 3));
	S(symlink("f", "lf"));
	S(symlink("d", "ld"));
	static const char *const paths[] = {"d", "p", "f", "lf", "ld"};
	E(truncate(paths[t->a], t->a == 2 ? -1 : 1));
	add_stf("f", 0, "s");
	add_stf("lf", 0, "ts");
}

T(t_truncate_user)
{
	/* a: mode of root's file */
	S(putpat("f", 100));
	S(chmod("f", (mode_t)t->a));
	U(truncate("f", 10));
	add_stf("f", 0, "s");
}

T(t_ftruncate_bad)
{
	/* a: 0 read-only fd, 1 negative, 2 dir fd, 3 O_PATH fd, 4 fifo fd,
	 * 5 O_APPEND fd (allowed) */
	S(put("f", 0644, "abc", 3));
	S(mkdir("d", 0755));
	S(mkfifo("p", 0644));
	int fd;
	switch (t->a) {
	case 0:
		S(fd = open("f", O_RDONLY));
		break;
	case 1:
		S(fd = open("f", O_RDWR));
		break;
	case 2:
		S(fd = open("d", O_RDONLY));
		break;
	case 3:
		S(fd = open("f", O_PATH));
		break;
	case 4:
		S(fd = open("p", O_RDWR));
		break;
	default:
		S(fd = open("f", O_WRONLY | O_APPEND));
		break;
	}
	E(ftruncate(fd, t->a == 1 ? -1 : 1));
	add_stf("f", 0, "s");
}

T(t_ftruncate_after_chmod)
{
	/* permission is checked at open: the user's writable fd stays usable */
	S(chmod(".", 0777));
	S(putpat("f", 100));
	S(chown("f", UID_U, GID_U));
	U(({
		int fd = open("f", O_RDWR);
		fd < 0 || chmod("f", 0) < 0 ? -1 : ftruncate(fd, 5);
	}));
	add_stf("f", 0, "ms");
}

T(t_truncate_open_fd)
{
	/* a file truncated by path while open: the fd sees it */
	S(putpat("f", 9000));
	int fd;
	S(fd = open("f", O_RDWR));
	E(truncate("f", 3000));
	add_fstf(fd, "s");
	E(pwrite(fd, "Z", 1, 6000));
	char *exp = calloc(6001, 1);
	if (!exp)
		return;
	pattern(exp, 3000, 0);
	exp[6000] = 'Z';
	add_data("f", exp, 6001);
	free(exp);
}

/* ======================================================================== */
/* unlink */

T(t_unlink_kind)
{
	/* a: kind; b: mknod type for the extra kinds (sock, chr) */
	if (t->b)
		S(mknod("obj", (mode_t)t->b | 0644, t->b == S_IFCHR ? makedev(1, 3) : 0));
	else
		S(mkobj(t->a, "obj", 0644));
	struct ts3 b = snap(".");
	tick();
	E(unlink("obj"));
	add_stf("obj", 0, "t");
	if (t->a == K_SYMLINK && !t->b)
		add_stf("tgt", 0, "t");
	add_tchg("dir", ".", &b, "mc");
}

T(t_unlink_special)
{
	static const char *const paths[] = {".", "..", "d", "d/", "f/", "l/", "l"};
	S(mkdir("d", 0755));
	S(mkf("f", 0644));
	S(symlink("d", "l"));
	E(unlink(paths[t->a]));
	add_stf("d", 0, "t");
	add_stf("f", 0, "t");
	add_stf("l", 0, "t");
}

T(t_unlink_open)
{
	S(putpat("f", 5000));
	int fd;
	S(fd = open("f", O_RDWR));
	E(unlink("f"));
	add_fstf(fd, "ns");
	char buf[5000];
	pattern(buf, sizeof(buf), 0);
	add_fddata(fd, buf, sizeof(buf));
	E(pwrite(fd, "tail", 4, 5000));
	add_fstf(fd, "s");
	E(ftruncate(fd, 10));
	add_fstf(fd, "s");
	add_ls(".");
}

T(t_unlink_recreate)
{
	S(putpat("f", 5000));
	E(unlink("f"));
	E(mkf("f", 0600));
	add_stf("f", 0, "mns");
	add_data("f", "", 0);
}

T(t_unlink_user)
{
	/* a: 0 root's file in sticky dir, 1 own file there, 2 user owns the
	 * sticky dir, 3 root's file in 0777 dir, 4 root's file in root's
	 * 0755 dir, 5 own file in root's 0755 dir, 6 no search */
	mode_t dm = t->a <= 2 ? 01777 : t->a == 3 ? 0777 : 0755;
	S(mkdir("s", 0777));
	S(mkf("s/f", 0644));
	if (t->a == 1 || t->a == 5)
		S(chown("s/f", UID_U, GID_U));
	if (t->a == 2)
		S(chown("s", UID_U, GID_U));
	S(chmod("s", t->a == 6 ? 0776 : dm));
	U(unlink("s/f"));
	add_stf("s/f", 0, "t");
}

T(t_unlink_nlink_ctime)
{
	S(mkf("f", 0644));
	S(link("f", "g"));
	S(link("f", "h"));
	struct ts3 b = snap("f");
	tick();
	E(unlink("h"));
	add_stf("f", 0, "n");
	add_tchg("f", "f", &b, "mc");
}

/* ======================================================================== */
/* utimensat and futimens */

static const struct timespec tv_a = {1000000000, 123456789};
static const struct timespec tv_m = {1200000000, 987654321};

/* A time set by the case is printed; one near the clock (not set) is "now". */
static void add_set_time(const char *label, struct timespec t)
{
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	long long d = (long long)now.tv_sec - t.tv_sec;
	if (d >= -60 && d <= 60)
		add("%s=now", label);
	else
		add_time(label, t);
}

static void add_am(const char *p, int follow)
{
	struct stat st;
	if ((follow ? stat(p, &st) : lstat(p, &st)) < 0) {
		add("%s", en(errno));
		return;
	}
	add_set_time("a", st.st_atim);
	add_set_time("m", st.st_mtim);
}

T(t_utimens_explicit)
{
	S(mkobj(t->a, "obj", 0644));
	struct ts3 b = snap("obj"), bt = snap("tgt");
	tick();
	struct timespec ts[2] = {tv_a, tv_m};
	E(utimensat(AT_FDCWD, "obj", ts, t->a == K_SYMLINK ? AT_SYMLINK_NOFOLLOW : 0));
	add_am("obj", 0);
	add_tchg("obj", "obj", &b, "c");
	if (t->a == K_SYMLINK)
		add_tchg("tgt", "tgt", &bt, "mc");
}

T(t_utimens_values)
{
	/* explicit values: seconds and nanoseconds edge cases */
	static const struct timespec vals[] = {
		{0, 0}, {1, 1}, {1, 999999999}, {-1, 0}, {-100000, 500000000},
		{2147483647, 0}, {2147483648LL, 0}, {4000000000LL, 123}, {1700000000, 100},
	};
	S(mkf("f", 0644));
	struct timespec ts[2] = {vals[t->a], vals[t->a]};
	E(utimensat(AT_FDCWD, "f", ts, 0));
	add_am("f", 0);
}

T(t_utimens_special)
{
	/* a: 0 NOW/NOW, 1 NULL, 2 OMIT/OMIT, 3 OMIT/value, 4 NOW/OMIT,
	 * 5 value/NOW */
	S(mkf("f", 0644));
	struct timespec init[2] = {tv_a, tv_m};
	S(utimensat(AT_FDCWD, "f", init, 0));
	struct ts3 b = snap("f");
	tick();
	struct timespec ts[2];
	struct timespec now = {0, UTIME_NOW}, omit = {0, UTIME_OMIT};
	const struct timespec vals[6][2] = {{now, now}, {now, now},   {omit, omit},
					    {omit, tv_a}, {now, omit}, {tv_m, now}};
	memcpy(ts, vals[t->a], sizeof(ts));
	E(utimensat(AT_FDCWD, "f", t->a == 1 ? NULL : ts, 0));
	add_tchg("f", "f", &b, "amc");
	struct stat st;
	if (!stat("f", &st)) {
		if (t->a == 3)
			add_time("m", st.st_mtim);
		if (t->a == 5)
			add_time("a", st.st_atim);
		if (t->a == 0 || t->a == 1)
			add_stf("f", 0, "R");
	}
}

T(t_utimens_einval)
{
	/* a: 0 nsec 1e9, 1 nsec -1, 2 bad flag, 3 nsec 1e9 with OMIT in the
	 * other, 4 empty path */
	S(mkf("f", 0644));
	struct timespec ts[2] = {tv_a, tv_m};
	int flags = 0;
	const char *p = "f";
	switch (t->a) {
	case 0:
		ts[1].tv_nsec = 1000000000;
		break;
	case 1:
		ts[0].tv_nsec = -1;
		break;
	case 2:
		flags = 0x4000000;
		break;
	case 3:
		ts[0].tv_nsec = UTIME_OMIT;
		ts[1].tv_nsec = 1000000000;
		break;
	case 4:
		p = "";
		break;
	}
	E(utimensat(AT_FDCWD, p, ts, flags));
}

T(t_utimens_user)
{
	/* a: owner; b: the times asked.  owner 0: user owns f (0644);
	 * 1: root's f 0666; 2: root's f 0644.  times: 0 NULL, 1 explicit,
	 * 2 NOW/NOW, 3 NOW/OMIT, 4 OMIT/OMIT */
	S(mkf("f", t->a == 1 ? 0666 : 0644));
	if (t->a == 0)
		S(chown("f", UID_U, GID_U));
	struct timespec now = {0, UTIME_NOW}, omit = {0, UTIME_OMIT};
	const struct timespec vals[5][2] = {{now, now}, {tv_a, tv_m}, {now, now}, {now, omit},
					    {omit, omit}};
	U(utimensat(AT_FDCWD, "f", t->b == 0 ? NULL : vals[t->b], 0));
}

T(t_futimens)
{
	/* a: 0 rw fd, 1 read-only fd, 2 O_PATH fd */
	S(mkf("f", 0644));
	int fd;
	S(fd = open("f", t->a == 0 ? O_RDWR : t->a == 1 ? O_RDONLY : O_PATH));
	struct timespec ts[2] = {tv_a, tv_m};
	E(futimens(fd, ts));
	add_am("f", 0);
}

T(t_utimens_follow)
{
	S(mkf("f", 0644));
	S(symlink("f", "l"));
	struct timespec ts[2] = {tv_a, tv_m};
	E(utimensat(AT_FDCWD, "l", ts, 0));
	add_am("f", 0);
	struct stat st;
	if (!lstat("l", &st))
		add("link.m=%s", st.st_mtim.tv_sec == tv_m.tv_sec ? "set" : "untouched");
}

T(t_utimens_then_write)
{
	S(mkf("f", 0644));
	struct timespec ts[2] = {tv_a, tv_m};
	S(utimensat(AT_FDCWD, "f", ts, 0));
	struct ts3 b = snap("f");
	tick();
	int fd;
	S(fd = open("f", O_WRONLY));
	E(write(fd, "x", 1));
	add_tchg("f", "f", &b, "amc");
	add_stf("f", 0, "R");
}

T(t_utimens_dir_entries)
{
	/* creating and removing entries updates the directory's set mtime */
	S(mkdir("d", 0755));
	struct timespec ts[2] = {tv_a, tv_m};
	S(utimensat(AT_FDCWD, "d", ts, 0));
	struct ts3 b = snap("d");
	tick();
	S(mkf("d/x", 0644));
	add_tchg("d", "d", &b, "amc");
	S(utimensat(AT_FDCWD, "d", ts, 0));
	b = snap("d");
	tick();
	S(unlink("d/x"));
	add_tchg("d", "d", &b, "amc");
}

/* ======================================================================== */
/* posix_fallocate and fallocate */

T(t_fallocate)
{
	/* a: initial size; b: case index into (offset, len) */
	static const off_t ranges[][2] = {
		{0, 1 << 20}, {8192, 4096}, {0, 4096}, {8192, 8192}, {1, 1}, {4095, 2}, {100000, 1},
	};
	size_t n0 = (size_t)t->a;
	S(putpat("f", n0));
	int fd;
	S(fd = open("f", O_RDWR));
	struct ts3 b = fsnap(fd);
	tick();
	off_t off = ranges[t->b][0], len = ranges[t->b][1];
	E(pfa(fd, off, len));
	struct ts3 a = fsnap(fd);
	add_fstf(fd, "s");
	struct stat st;
	if (!fstat(fd, &st))
		add("%s", (long long)st.st_blocks * 512 >= (long long)len ? "alloc>=len" : "alloc<len");
	add_tdiff("f", &b, &a, "mc");
	size_t end = (size_t)(off + len) > n0 ? (size_t)(off + len) : n0;
	char *exp = calloc(end, 1);
	if (!exp)
		return;
	pattern(exp, n0, 0);
	add_fddata(fd, exp, end);
	free(exp);
}

T(t_fallocate_bad)
{
	/* a: 0 len 0, 1 negative offset, 2 negative len, 3 read-only fd,
	 * 4 fifo, 5 dir fd, 6 O_APPEND fd, 7 O_PATH fd */
	S(mkf("f", 0644));
	S(mkfifo("p", 0644));
	S(mkdir("d", 0755));
	int fd;
	off_t off = 0, len = 4096;
	switch (t->a) {
	case 0:
		len = 0;
		break;
	case 1:
		off = -1;
		break;
	case 2:
		len = -1;
		break;
	}
	if (t->a == 3)
		S(fd = open("f", O_RDONLY));
	else if (t->a == 4)
		S(fd = open("p", O_RDWR));
	else if (t->a == 5)
		S(fd = open("d", O_RDONLY));
	else if (t->a == 6)
		S(fd = open("f", O_WRONLY | O_APPEND));
	else if (t->a == 7)
		S(fd = open("f", O_PATH));
	else
		S(fd = open("f", O_RDWR));
	E(pfa(fd, off, len));
	add_stf("f", 0, "s");
}

T(t_fallocate_linux)
{
	/* a: 0 KEEP_SIZE beyond EOF, 1 PUNCH_HOLE|KEEP_SIZE in the middle,
	 * 2 PUNCH_HOLE without KEEP_SIZE (EOPNOTSUPP).  (ZERO_RANGE is left
	 * out: tmpfs lacks it, so it is not Linux behaviour everywhere.) */
	S(putpat("f", 16384));
	int fd;
	S(fd = open("f", O_RDWR));
	char exp[16384];
	pattern(exp, sizeof(exp), 0);
	switch (t->a) {
	case 0:
		E(fallocate(fd, FALLOC_FL_KEEP_SIZE, 16384, 65536));
		break;
	case 1:
		if (E(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 4096, 8192)) == 0)
			memset(exp + 4096, 0, 8192);
		break;
	case 2:
		E(fallocate(fd, FALLOC_FL_PUNCH_HOLE, 4096, 8192));
		break;
	}
	add_fstf(fd, "s");
	add_fddata(fd, exp, sizeof(exp));
}

T(t_fallocate_user)
{
	/* the user with a writable fd on root's 0666 file */
	S(mkf("f", 0666));
	U(({
		int fd = open("f", O_RDWR);
		fd < 0 ? -1 : pfa(fd, 0, 8192);
	}));
	add_stf("f", 0, "s");
}

/* ======================================================================== */
/* stat of directories */

T(t_dir_nlink)
{
	S(mkdir("d", 0755));
	add_stf("d", 0, "n");
	for (int i = 0; i < t->a; i++) {
		char n[16];
		snprintf(n, sizeof(n), "d/s%d", i);
		S(mkdir(n, 0755));
	}
	S(mkf("d/file", 0644));
	add_stf("d", 0, "n");
}

T(t_readdir_big)
{
	/* a directory of a entries: readdir returns each once */
	S(mkdir("d", 0755));
	char n[32];
	for (int i = 0; i < t->a; i++) {
		snprintf(n, sizeof(n), "d/entry-%04d", i);
		S(mkf(n, 0644));
	}
	for (int i = 0; i < t->a; i += 3) {
		snprintf(n, sizeof(n), "d/entry-%04d", i);
		S(unlink(n));
	}
	DIR *d = opendir("d");
	if (!d) {
		add("%s", en(errno));
		return;
	}
	int count = 0, bad = 0;
	char *seen = calloc((size_t)t->a, 1);
	struct dirent *e;
	while ((e = readdir(d))) {
		count++;
		int k;
		if (sscanf(e->d_name, "entry-%d", &k) == 1 && k >= 0 && k < t->a && seen) {
			if (seen[k]++ || k % 3 == 0)
				bad++;
		}
	}
	closedir(d);
	free(seen);
	add("entries=%d bad=%d", count, bad);
}

/* ======================================================================== */

static void register_all(void)
{
	for (int k = 0; k < K_COUNT; k++)
		for (int i = 0; i < NCHMOD; i++)
			if (k != K_SYMLINK || i == 2)
				reg(t_chmod_mode, k, i, "chmod/%s-mode-%04o", kind_names[k],
				    (unsigned)chmod_modes[i]);
	for (int k = 0; k < K_COUNT; k++)
		reg(t_chmod_ctime, k, 0, "chmod/ctime-%s", kind_names[k]);
	reg(t_chmod_eperm_ctime, 0, 0, "chmod/user-not-owner-eperm");
	reg(t_chmod_symlink_follows, 0, 0, "chmod/via-symlink");
	reg(t_fchmod, 0, 0, "chmod/fchmod");
	reg(t_fchmod, 1, 0, "chmod/fchmod-rdonly-fd");
	reg(t_fchmod_opath, 0, 0, "chmod/fchmod-opath-fd");
	reg(t_fchmodat_nofollow, 0, 0, "chmod/fchmodat-nofollow-symlink");
	reg(t_fchmodat_nofollow, 1, 0, "chmod/fchmodat-nofollow-file");
	reg(t_chmod_user_own, 0, 0, "chmod/user-owner");
	reg(t_chmod_user_sgid, 0, 0, "chmod/user-sgid-file-nonmember");
	reg(t_chmod_user_sgid, 1, 0, "chmod/user-sgid-file-member");
	reg(t_chmod_user_sgid, 0, 1, "chmod/user-sgid-dir-nonmember");
	reg(t_chmod_user_sgid, 1, 1, "chmod/user-sgid-dir-member");
	reg(t_chmod_user_sticky_file, 0, 0, "chmod/user-sticky-file");
	reg(t_chmod_user_via_fd, 0, 0, "chmod/user-fchmod-not-owner");

	reg(t_write_clears_setid, 04777, 1, "write/user-clears-suid");
	reg(t_write_clears_setid, 02777, 1, "write/user-clears-sgid");
	reg(t_write_clears_setid, 02767, 1, "write/user-nonmember-clears-sgid-without-gx");
	reg(t_write_clears_setid, 02767, 2, "write/user-member-keeps-sgid-without-gx");
	reg(t_write_clears_setid, 02777, 2, "write/user-member-clears-sgid-with-gx");
	reg(t_write_clears_setid, 06777, 1, "write/user-clears-suid-sgid");
	reg(t_write_clears_setid, 04777, 0, "write/root-keeps-suid");
	reg(t_truncate_clears_setid, 04777, 1, "truncate/user-clears-suid");
	reg(t_truncate_clears_setid, 04777, 0, "truncate/root-keeps-suid");
	reg(t_ftruncate_clears_setid, 0, 0, "ftruncate/user-clears-suid");

	for (int k = 0; k < K_COUNT; k++)
		reg(t_chown_kind, k, 0, "chown/%s", kind_names[k]);
	for (int k = 0; k < K_COUNT; k++)
		reg(t_lchown_kind, k, 0, "chown/lchown-%s", kind_names[k]);
	reg(t_chown_partial, 0, 0, "chown/uid-only");
	reg(t_chown_partial, 1, 0, "chown/gid-only");
	reg(t_chown_partial, 2, 0, "chown/neither");
	for (int k = 0; k < K_COUNT; k++)
		reg(t_chown_ctime, k, 0, "chown/ctime-%s", kind_names[k]);
	reg(t_fchown, 0, 0, "chown/fchown-rdonly-fd");
	reg(t_fchownat_nofollow, 0, 0, "chown/fchownat-nofollow");
	reg(t_chown_setid, 04755, K_FILE, "chown/clears-suid");
	reg(t_chown_setid, 02755, K_FILE, "chown/clears-sgid-with-gx");
	reg(t_chown_setid, 02745, K_FILE, "chown/keeps-sgid-without-gx");
	reg(t_chown_setid, 06755, K_FILE, "chown/clears-suid-sgid");
	reg(t_chown_setid, 0100000 | 04755, K_FILE, "chown/same-owner-clears-suid");
	reg(t_chown_setid, 06755, K_DIR, "chown/dir-keeps-setid");
	reg(t_chown_setid, 04755, K_FIFO, "chown/fifo-suid");
	reg(t_chown_user, 0, 0, "chown/user-give-away");
	reg(t_chown_user, 1, 0, "chown/user-own-group");
	reg(t_chown_user, 2, 0, "chown/user-foreign-group");
	reg(t_chown_user, 3, 0, "chown/user-own-uid");
	reg(t_chown_user, 4, 0, "chown/user-minus-one");
	reg(t_chown_user, 5, 0, "chown/user-take-foreign");
	reg(t_chown_user_clears_suid, 0, 0, "chown/user-clears-suid-sgid");

	reg(t_link_basic, 0, 0, "link/basic");
	reg(t_link_unlink_one, 0, 0, "link/unlink-one");
	for (int k = 0; k < K_COUNT; k++)
		reg(t_link_kind, k, 0, "link/%s", kind_names[k]);
	reg(t_linkat_follow, 0, 0, "link/linkat-follow");
	reg(t_link_self, 0, 0, "link/self");
	for (int k = 0; k < K_COUNT; k++)
		reg(t_link_existing, k, 0, "link/over-%s", kind_names[k]);
	reg(t_link_many, 0, 0, "link/twenty");
	reg(t_link_across_dirs, 0, 0, "link/across-dirs");
	reg(t_link_shared_data, 0, 0, "link/shared-data");
	reg(t_link_user, 0, 0, "link/user-own-file");
	reg(t_link_user, 1, 0, "link/user-protected-hardlink");
	reg(t_link_user, 2, 0, "link/user-rw-foreign-file");
	reg(t_link_user, 3, 0, "link/user-nowrite-dir");
	reg(t_link_after_rename, 0, 0, "link/after-rename");
	reg(t_link_trailing_slash, 0, 0, "link/trailing-slash-new");

	for (int i = 0; i < NMKDIR; i++)
		reg(t_mkdir_mode, i, 0, "mkdir/mode-%04o", (unsigned)mkdir_modes[i]);
	reg(t_mkdir_umask, 022, 0, "mkdir/umask-022");
	reg(t_mkdir_umask, 077, 0, "mkdir/umask-077");
	reg(t_mkdir_nlink, 0, 0, "mkdir/nlink");
	reg(t_mkdir_times, 0, 0, "mkdir/times");
	reg(t_mkdir_user, 0, 0, "mkdir/user");
	reg(t_sgid_dir, 0, 0, "sgid-dir/root-mkdir");
	reg(t_sgid_dir, 1, 0, "sgid-dir/user-mkdir");
	reg(t_sgid_dir, 0, 1, "sgid-dir/root-file");
	reg(t_sgid_dir, 1, 1, "sgid-dir/user-file");
	reg(t_sgid_dir, 0, 2, "sgid-dir/root-file-02755");
	reg(t_sgid_dir, 1, 2, "sgid-dir/user-file-02755");
	reg(t_mkdir_dot, 0, 0, "mkdir/dot");
	reg(t_mkdir_dot, 1, 0, "mkdir/dotdot");
	reg(t_mkdir_readdir, 0, 0, "mkdir/readdir");
	reg(t_mkdir_in_removed, 0, 0, "mkdir/in-removed-dir");
	reg(t_mkdir_trailing, 0, 0, "mkdir/trailing-slashes");

	for (int i = 0; i < 4; i++)
		reg(t_mkfifo_mode, i, 0, "mkfifo/mode-%04o", (unsigned)fifo_modes[i]);
	reg(t_mkfifo_times, 0, 0, "mkfifo/times");
	reg(t_mkfifo_user, 0, 0, "mkfifo/user");
	reg(t_fifo_nonblock, 0, 0, "mkfifo/nonblock-io");
	reg(t_open_fifo_rdonly_nonblock, 0, 0, "mkfifo/open-rdonly-nonblock");
	reg(t_mknod, S_IFIFO, 0, "mknod/fifo");
	reg(t_mknod, S_IFREG, 0, "mknod/reg");
	reg(t_mknod, 0, 0, "mknod/type-zero");
	reg(t_mknod, S_IFSOCK, 0, "mknod/sock");
	reg(t_mknod, S_IFCHR, 0, "mknod/chr");
	reg(t_mknod, S_IFBLK, 0, "mknod/blk");
	reg(t_mknod, S_IFCHR, 1, "mknod/user-chr");
	reg(t_mknod, S_IFIFO, 1, "mknod/user-fifo");
	reg(t_mknod_bad, S_IFDIR, 0, "mknod/dir-type");
	reg(t_mknod_bad, S_IFMT, 0, "mknod/bad-type");
	reg(t_mknod_bad, S_IFLNK, 0, "mknod/lnk-type");

	for (int i = 0; i < NCREAT; i++)
		reg(t_open_creat_mode, i, 0, "open/creat-mode-%04o", (unsigned)creat_modes[i]);
	reg(t_open_creat_umask, 022, 0, "open/creat-umask-022");
	reg(t_open_creat_umask, 0777, 0, "open/creat-umask-0777");
	reg(t_open_creat_times, 0, 0, "open/creat-times");
	reg(t_open_creat_existing, 0, 0, "open/creat-existing");
	reg(t_open_excl, K_FILE, 0, "open/excl-file");
	reg(t_open_excl, K_DIR, 0, "open/excl-dir");
	reg(t_open_excl, K_FIFO, 0, "open/excl-fifo");
	reg(t_open_excl, K_SYMLINK, 0, "open/excl-symlink");
	reg(t_open_excl, K_SYMLINK, 1, "open/excl-dangling-symlink");
	reg(t_open_creat_dangling, 0, 0, "open/creat-dangling-symlink");
	reg(t_open_creat_dangling, 1, 0, "open/creat-dangling-nofollow");
	reg(t_open_trunc, 5000, O_WRONLY, "open/trunc-wronly");
	reg(t_open_trunc, 5000, O_RDONLY, "open/trunc-rdonly");
	reg(t_open_trunc, 0, O_WRONLY, "open/trunc-empty");
	reg(t_open_trunc_user, 0644, 0, "open/trunc-rdonly-user-readonly-file");
	reg(t_open_trunc_user, 0666, 0, "open/trunc-rdonly-user-writable-file");
	reg(t_open_trunc_fifo, 0, 0, "open/trunc-fifo");
	reg(t_open_dir_flags, O_WRONLY, 0, "open/dir-wronly");
	reg(t_open_dir_flags, O_RDWR, 0, "open/dir-rdwr");
	reg(t_open_dir_flags, O_RDONLY | O_CREAT, 0, "open/dir-creat");
	reg(t_open_dir_flags, O_RDONLY | O_TRUNC, 0, "open/dir-trunc");
	reg(t_open_dir_flags, O_RDONLY | O_DIRECTORY, 0, "open/dir-directory");
	reg(t_open_dir_flags, O_RDONLY | O_CREAT | O_EXCL, 0, "open/dir-creat-excl");
	reg(t_open_file_flags, O_RDONLY | O_DIRECTORY, 0, "open/file-directory");
	reg(t_open_file_flags, O_WRONLY | O_DIRECTORY, 0, "open/file-wronly-directory");
	reg(t_open_file_flags, O_RDWR | O_CREAT | O_DIRECTORY, 0, "open/file-creat-directory");
	reg(t_open_file_flags, O_ACCMODE, 0, "open/file-accmode-3");
	reg(t_open_creat_directory, 0, 0, "open/new-creat-directory");
	reg(t_open_nofollow, 0, 0, "open/nofollow-symlink");
	reg(t_open_nofollow, 1, 0, "open/nofollow-opath");
	reg(t_open_nofollow, 2, 0, "open/nofollow-intermediate");
	reg(t_open_noatime, 0, 0, "open/noatime-root");
	reg(t_open_noatime, 1, 0, "open/noatime-user-not-owner");
	for (int i = 0; i < NPERM; i++)
		reg(t_open_perm, i, 0, "open/perm-%04o-%s-%s", (unsigned)perm_cases[i].mode,
		    perm_cases[i].owner == 0 ? "root" : perm_cases[i].owner == 1 ? "user" : "group",
		    perm_cases[i].flags == O_RDONLY   ? "rd"
		    : perm_cases[i].flags == O_WRONLY ? "wr"
						      : "rdwr");
	reg(t_open_user_creat, 0, 0, "open/user-creat-nowrite-dir");
	reg(t_open_user_creat, 1, 0, "open/user-creat-existing-nowrite-dir");
	reg(t_open_user_creat, 2, 0, "open/user-creat");
	reg(t_open_append, 0, 0, "open/append");
	for (int a = 0; a < 2; a++)
		for (int b = 0; b < 2; b++)
			reg(t_setfl_append, a, b, "fcntl/setfl-append-%s-%s", a ? "dup" : "same",
			    b ? "on" : "off");
	reg(t_open_wrong_access, 1, 0, "open/write-rdonly-fd");
	reg(t_open_wrong_access, 0, 0, "open/read-wronly-fd");
	reg(t_open_tmpfile, 0, 0, "open/tmpfile");
	reg(t_open_tmpfile_excl, 0, 0, "open/tmpfile-excl");
	reg(t_open_read_past_eof, 0, 0, "open/read-past-eof");
	reg(t_open_in_removed_dir, 0, 0, "open/creat-in-removed-cwd");
	reg(t_open_opath_ops, 0, 0, "open/opath-read");
	reg(t_open_name_dots, 0, 0, "open/odd-names");
	reg(t_write_hole, 1, 0, "write/hole-1");
	reg(t_write_hole, 8192, 0, "write/hole-8192");
	reg(t_write_hole, 1000000, 0, "write/hole-1000000");
	reg(t_write_blocks, 0, 0, "write/blocks");
	reg(t_write_times, 0, 0, "write/times");
	reg(t_write_big, 100000, 0, "write/overwrite-100000");
	reg(t_write_big, 3 << 20, 0, "write/overwrite-3MiB");

	for (int k = 0; k < K_COUNT; k++)
		reg(t_rename_kind, k, 0, "rename/%s", kind_names[k]);
	for (int k = 0; k < K_COUNT; k++)
		reg(t_rename_ctime, k, 0, "rename/ctime-%s", kind_names[k]);
	for (int k = 0; k < K_COUNT; k++)
		reg(t_rename_across, k, 0, "rename/across-dirs-%s", kind_names[k]);
	reg(t_rename_over_file, 0, 0, "rename/over-file");
	reg(t_rename_over_unlinked_open, 0, 0, "rename/over-open-file");
	reg(t_rename_over_dir, 0, 0, "rename/dir-over-empty-dir");
	reg(t_rename_over_dir, 1, 0, "rename/dir-over-nonempty-dir");
	reg(t_rename_over_dir, 2, 0, "rename/file-over-dir");
	reg(t_rename_over_dir, 3, 0, "rename/dir-over-file");
	reg(t_rename_over_dir, 4, 0, "rename/dir-over-symlink-to-dir");
	reg(t_rename_over_dir, 5, 0, "rename/nonempty-dir-over-empty-dir");
	reg(t_rename_over_dir_across, 0, 0, "rename/dir-over-empty-dir-across");
	reg(t_rename_hardlinks, 0, 0, "rename/hardlinks-same-inode");
	for (int k = 0; k < K_COUNT; k++)
		reg(t_rename_same, k, 0, "rename/same-name-%s", kind_names[k]);
	static const char *const subtree_names[] = {
		"dir-into-child",    "dir-into-grandchild", "child-into-grandchild", "onto-grandparent",
		"onto-parent",       "grandchild-onto-parent", "dot-source",        "dir-dot-source",
		"dir-dotdot-source", "onto-dot",            "onto-dotdot",           "onto-dir-dotdot"};
	for (int i = 0; i < 12; i++)
		reg(t_rename_subtree, i, 0, "rename/%s", subtree_names[i]);
	reg(t_rename_trailing, 0, 0, "rename/trailing-slash-file-src");
	reg(t_rename_trailing, 1, 0, "rename/trailing-slash-file-dst");
	reg(t_rename_trailing, 2, 0, "rename/trailing-slash-dir-both");
	reg(t_rename_trailing, 3, 0, "rename/trailing-slash-dir-dst");
	reg(t_rename_sticky, 0, 0, "rename/user-sticky-foreign");
	reg(t_rename_sticky, 1, 0, "rename/user-sticky-own");
	reg(t_rename_sticky, 2, 0, "rename/user-sticky-over-foreign");
	reg(t_rename_sticky, 3, 0, "rename/user-sticky-dir-owner");
	reg(t_rename_sticky, 4, 0, "rename/user-sticky-foreign-out");
	reg(t_rename_user, 0, 0, "rename/user-src-dir-nowrite");
	reg(t_rename_user, 1, 0, "rename/user-dst-dir-nowrite");
	reg(t_rename_user, 2, 0, "rename/user-src-dir-nosearch");
	reg(t_rename_user, 3, 0, "rename/user-foreign-dir-across");
	reg(t_rename_user, 4, 0, "rename/user-foreign-dir-same-parent");
	reg(t_rename_user, 5, 0, "rename/user-own-dir-across");
	static const char *const r2[] = {"noreplace-exists", "noreplace-free", "exchange-files",
					 "exchange-missing", "exchange-file-dir",
					 "noreplace-exchange", "bad-flag"};
	for (int i = 0; i < 7; i++)
		reg(t_renameat2, i, 0, "renameat2/%s", r2[i]);
	reg(t_rename_dir_exchange_across, 0, 0, "renameat2/exchange-dir-file-across");
	reg(t_rename_chain, 0, 0, "rename/swap-by-three");
	reg(t_rename_many, 0, 0, "rename/fifty-in-dir");

	reg(t_rmdir_basic, 0, 0, "rmdir/basic");
	for (int k = 0; k < K_COUNT; k++)
		reg(t_rmdir_nonempty, k, 0, "rmdir/nonempty-%s", kind_names[k]);
	static const char *const rmp[] = {"dot", "dotdot", "dir-dot", "dir-dotdot", "trailing-slash",
					  "double-slash", "symlink-to-dir", "symlink-to-dir-slash",
					  "file"};
	for (int i = 0; i < 9; i++)
		reg(t_rmdir_special, i, 0, "rmdir/%s", rmp[i]);
	reg(t_rmdir_open, 0, 0, "rmdir/open-dir");
	reg(t_rmdir_user, 0, 0, "rmdir/user-sticky-foreign");
	reg(t_rmdir_user, 1, 0, "rmdir/user-sticky-own");
	reg(t_rmdir_user, 2, 0, "rmdir/user-nowrite-parent");
	reg(t_rmdir_user, 3, 0, "rmdir/user-writable-parent");
	reg(t_rmdir_user, 4, 0, "rmdir/user-sticky-dir-owner");
	reg(t_rmdir_cwd, 0, 0, "rmdir/cwd");

	reg(t_symlink_basic, 0, 0, "symlink/basic");
	reg(t_symlink_dangling, 0, 0, "symlink/dangling");
	reg(t_symlink_target_len, 1, 0, "symlink/target-1");
	reg(t_symlink_target_len, 255, 0, "symlink/target-255");
	reg(t_symlink_target_len, 1023, 0, "symlink/target-1023");
	reg(t_symlink_target_len, 4095, 0, "symlink/target-4095");
	reg(t_symlink_target_len, 4096, 0, "symlink/target-4096");
	reg(t_symlink_chain, 39, 0, "symlink/chain-40");
	reg(t_symlink_chain, 40, 0, "symlink/chain-41");
	reg(t_symlink_loop, 0, 0, "symlink/loop-self");
	reg(t_symlink_resolve, 0, 0, "symlink/relative-dotdot");
	reg(t_symlink_resolve, 1, 0, "symlink/absolute-root");
	reg(t_symlink_resolve, 2, 0, "symlink/dir-trailing-slash");
	reg(t_symlink_resolve, 3, 0, "symlink/file-trailing-slash");
	reg(t_symlink_resolve, 4, 0, "symlink/through-dir-link");
	reg(t_symlink_empty, 0, 0, "symlink/empty-target");
	reg(t_symlink_user, 0, 0, "symlink/user");
	static const char *const rl[] = {"file", "dir", "short-buffer", "missing", "fifo"};
	for (int i = 0; i < 5; i++)
		reg(t_readlink, i, 0, "readlink/%s", rl[i]);

	static const char *const tl[] = {"grow", "shrink", "shrink-grow-zeros", "unaligned",
					 "zero-and-back", "far-grow", "many-blocks", "one-byte"};
	for (int i = 0; i < NTRUNC; i++) {
		reg(t_truncate_seq, i, 0, "truncate/%s", tl[i]);
		reg(t_truncate_seq, i, 1, "ftruncate/%s", tl[i]);
	}
	reg(t_truncate_times, 100, 0, "truncate/same-size-times");
	reg(t_truncate_times, 50, 0, "truncate/shrink-times");
	reg(t_truncate_times, 200, 0, "truncate/grow-times");
	reg(t_truncate_times, 100, 1, "ftruncate/same-size-times");
	reg(t_truncate_times, 50, 1, "ftruncate/shrink-times");
	reg(t_truncate_sparse, 0, 0, "truncate/sparse");
	static const char *const tb[] = {"dir", "fifo", "negative", "via-symlink", "symlink-to-dir"};
	for (int i = 0; i < 5; i++)
		reg(t_truncate_bad, i, 0, "truncate/%s", tb[i]);
	reg(t_truncate_user, 0644, 0, "truncate/user-nowrite");
	reg(t_truncate_user, 0666, 0, "truncate/user-write");
	reg(t_truncate_user, 0660, 0, "truncate/user-group-only");
	static const char *const fb[] = {"rdonly-fd", "negative", "dir-fd", "opath-fd", "fifo-fd",
					 "append-fd"};
	for (int i = 0; i < 6; i++)
		reg(t_ftruncate_bad, i, 0, "ftruncate/%s", fb[i]);
	reg(t_ftruncate_after_chmod, 0, 0, "ftruncate/user-after-chmod-0");
	reg(t_truncate_open_fd, 0, 0, "truncate/open-fd");

	for (int k = 0; k < K_COUNT; k++)
		reg(t_unlink_kind, k, 0, "unlink/%s", kind_names[k]);
	reg(t_unlink_kind, K_FILE, S_IFSOCK, "unlink/sock");
	reg(t_unlink_kind, K_FILE, S_IFCHR, "unlink/chr");
	static const char *const up[] = {"dot", "dotdot", "plain-dir", "plain-dir-slash", "file-slash",
					 "symlink-to-dir-slash", "symlink-to-dir"};
	for (int i = 0; i < 7; i++)
		reg(t_unlink_special, i, 0, "unlink/%s", up[i]);
	reg(t_unlink_open, 0, 0, "unlink/open-file");
	reg(t_unlink_recreate, 0, 0, "unlink/recreate");
	static const char *const uu[] = {"sticky-foreign", "sticky-own", "sticky-dir-owner",
					 "writable-dir", "nowrite-dir", "own-file-nowrite-dir",
					 "nosearch-dir"};
	for (int i = 0; i < 7; i++)
		reg(t_unlink_user, i, 0, "unlink/user-%s", uu[i]);
	reg(t_unlink_nlink_ctime, 0, 0, "unlink/nlink-ctime");

	for (int k = 0; k < K_COUNT; k++)
		reg(t_utimens_explicit, k, 0, "utimensat/explicit-%s", kind_names[k]);
	static const char *const uv[] = {"zero", "one-ns", "max-ns", "minus-one", "pre-epoch",
					 "int32-max", "2038", "year-2096", "recent"};
	for (int i = 0; i < 9; i++)
		reg(t_utimens_values, i, 0, "utimensat/value-%s", uv[i]);
	static const char *const us[] = {"now-now", "null", "omit-omit", "omit-value", "now-omit",
					 "value-now"};
	for (int i = 0; i < 6; i++)
		reg(t_utimens_special, i, 0, "utimensat/%s", us[i]);
	static const char *const ue[] = {"nsec-1e9", "nsec-negative", "bad-flag", "omit-and-bad",
					 "empty-path"};
	for (int i = 0; i < 5; i++)
		reg(t_utimens_einval, i, 0, "utimensat/einval-%s", ue[i]);
	static const char *const uo[] = {"owner", "writable", "readonly"};
	static const char *const ut[] = {"null", "explicit", "now-now", "now-omit", "omit-omit"};
	for (int o = 0; o < 3; o++)
		for (int i = 0; i < 5; i++)
			reg(t_utimens_user, o, i, "utimensat/user-%s-%s", uo[o], ut[i]);
	reg(t_futimens, 0, 0, "futimens/rdwr-fd");
	reg(t_futimens, 1, 0, "futimens/rdonly-fd");
	reg(t_futimens, 2, 0, "futimens/opath-fd");
	reg(t_utimens_follow, 0, 0, "utimensat/follows-symlink");
	reg(t_utimens_then_write, 0, 0, "utimensat/then-write");
	reg(t_utimens_dir_entries, 0, 0, "utimensat/dir-then-entries");

	static const char *const fr[] = {"0+1MiB", "8192+4096", "0+4096", "8192+8192", "1+1",
					 "4095+2", "100000+1"};
	static const int fsz[] = {0, 10000};
	for (int s = 0; s < 2; s++)
		for (int i = 0; i < 7; i++)
			reg(t_fallocate, fsz[s], i, "posix_fallocate/size%d-%s", fsz[s], fr[i]);
	static const char *const fbad[] = {"len-0", "negative-offset", "negative-len", "rdonly-fd",
					   "fifo", "dir-fd", "append-fd", "opath-fd"};
	for (int i = 0; i < 8; i++)
		reg(t_fallocate_bad, i, 0, "posix_fallocate/%s", fbad[i]);
	reg(t_fallocate_user, 0, 0, "posix_fallocate/user-writable");
	static const char *const fl[] = {"keep-size", "punch-hole", "punch-no-keep-size"};
	for (int i = 0; i < 3; i++)
		reg(t_fallocate_linux, i, 0, "fallocate/%s", fl[i]);

	reg(t_dir_nlink, 0, 0, "stat/dir-nlink-0");
	reg(t_dir_nlink, 3, 0, "stat/dir-nlink-3");
	reg(t_dir_nlink, 40, 0, "stat/dir-nlink-40");
	reg(t_readdir_big, 300, 0, "readdir/300-entries");
	reg(t_readdir_big, 3000, 0, "readdir/3000-entries");

	for (int o = 0; o < NGOPS; o++)
		for (int c = 0; c < C_COUNT; c++)
			if (cond_applies(&gops[o], c))
				reg(t_matrix, o, c, "%s:%s", gops[o].name, cond_names[c]);
}

/* ---- running ---------------------------------------------------------------- */

/* Removes the entry name in dirfd and everything under it. */
static int rm_rf_at(int dirfd, const char *name)
{
	struct stat st;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISDIR(st.st_mode))
		return unlinkat(dirfd, name, 0);
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
	if (fd < 0)
		return -1;
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -1;
	}
	int rc = 0;
	struct dirent *e;
	for (;;) {
		errno = 0;
		e = readdir(d);
		if (!e) {
			if (errno)
				rc = -1;
			break;
		}
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (rm_rf_at(fd, e->d_name) < 0) {
			rc = -1;
			break;
		}
		/* the directory changed: start again from its beginning */
		rewinddir(d);
	}
	int e2 = errno;
	closedir(d);
	if (rc < 0) {
		errno = e2;
		return -1;
	}
	return unlinkat(dirfd, name, AT_REMOVEDIR);
}

static void run_case(int i)
{
	const struct tcase *t = &cases[i];
	char dname[32];
	snprintf(dname, sizeof(dname), "c%04d", i);
	reslen = 0;
	res[0] = '\0';
	umask(0);
	if (mkdirat(ROOT_FD, dname, 0755) < 0 || fchmodat(ROOT_FD, dname, 0755, 0) < 0 ||
	    fchdir(ROOT_FD) < 0 || chdir(dname) < 0)
		add("casedir:%s", en(errno));
	else
		t->fn(t);
	close_range(3, ROOT_FD - 1, 0);
	close_range(ROOT_FD + 1, ~0U, 0);
	umask(0);
	if (fchdir(ROOT_FD) < 0)
		add("fchdir:%s", en(errno));
	if (rm_rf_at(ROOT_FD, dname) < 0)
		add("cleanup:%s", en(errno));
	printf("%s: %s\n", t->name, res);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	if (argc < 2 || argc > 3 || !strcmp(argv[1], "--help")) {
		fprintf(stderr, "usage: posix_suite DIR [SUBSTRING]\n"
				"  runs the POSIX conformance cases in DIR/posix-suite (as root)\n");
		return 2;
	}
	register_all();
	if (!strcmp(argv[1], "--list")) {
		for (int i = 0; i < ncases; i++)
			printf("%s\n", cases[i].name);
		return 0;
	}
	if (geteuid() != 0) {
		fprintf(stderr, "posix_suite: must run as root (permission cases drop to uid %d)\n",
			UID_U);
		return 77;
	}
	/* the names are unique: run.sh matches the transcripts by name */
	for (int i = 0; i < ncases; i++)
		for (int j = i + 1; j < ncases; j++)
			if (!strcmp(cases[i].name, cases[j].name)) {
				fprintf(stderr, "posix_suite: duplicate case %s\n", cases[i].name);
				return 2;
			}
	setvbuf(stdout, NULL, _IOLBF, 0);
	umask(0);
	int dfd = open(argv[1], O_RDONLY | O_DIRECTORY);
	if (dfd < 0) {
		fprintf(stderr, "posix_suite: %s: %s\n", argv[1], strerror(errno));
		return 2;
	}
	if (rm_rf_at(dfd, "posix-suite") < 0 || mkdirat(dfd, "posix-suite", 0755) < 0) {
		fprintf(stderr, "posix_suite: %s/posix-suite: %s\n", argv[1], strerror(errno));
		return 2;
	}
	int fd = openat(dfd, "posix-suite", O_RDONLY | O_DIRECTORY);
	if (fd < 0 || dup2(fd, ROOT_FD) < 0) {
		fprintf(stderr, "posix_suite: %s/posix-suite: %s\n", argv[1], strerror(errno));
		return 2;
	}
	close(fd);
	close(dfd);
	fchmod(ROOT_FD, 0755);
	int ran = 0;
	for (int i = 0; i < ncases; i++) {
		if (argc == 3 && !strstr(cases[i].name, argv[2]))
			continue;
		run_case(i);
		ran++;
	}
	dfd = open(argv[1], O_RDONLY | O_DIRECTORY);
	if (dfd >= 0 && rm_rf_at(dfd, "posix-suite") < 0)
		fprintf(stderr, "posix_suite: removing %s/posix-suite: %s\n", argv[1], strerror(errno));
	fprintf(stderr, "posix_suite: %d cases run\n", ran);
	return 0;
}
