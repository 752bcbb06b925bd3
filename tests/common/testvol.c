/*
 * testvol.c - scratch volumes, the canonical tree dump (the oracle of the
 * crash tests) and whole-file helpers shared by the tests.  See testvol.h.
 */
#include "testvol.h"

#include "fsck/fsck.h"

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

/* ---- scratch directories ------------------------------------------------ */

/* Scratch roots not yet removed, removed at exit by the process that made
 * them (never by a forked child). */
struct tv_root {
	char path[PATH_MAX];
	pid_t owner;
	struct tv_root *next;
};
static struct tv_root *tv_roots;
static bool tv_atexit_set;

static bool tv_keep(void)
{
	const char *k = getenv("CAIRN_TEST_KEEP");
	return k && *k && strcmp(k, "0") != 0;
}

static int tv_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	if (remove(path) != 0 && errno != ENOENT)
		fprintf(stderr, "testvol: cannot remove %s: %s\n", path, strerror(errno));
	return 0;
}

int tv_rmtree(const char *path)
{
	struct stat st;
	if (lstat(path, &st) != 0)
		return errno == ENOENT ? 0 : -1;
	return nftw(path, tv_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void tv_forget_root(const char *path)
{
	for (struct tv_root **p = &tv_roots; *p; p = &(*p)->next) {
		if (strcmp((*p)->path, path) == 0) {
			struct tv_root *r = *p;
			*p = r->next;
			free(r);
			return;
		}
	}
}

int tv_manifest_parts(const char *voldir, char names[][32], char paths[][PATH_MAX],
		      uint64_t *sizes, int max)
{
	DIR *d = opendir(voldir);
	if (!d)
		return 0;
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL && n < max) {
		char p[PATH_MAX];
		if (snprintf(p, sizeof(p), "%s/%s", voldir, de->d_name) >= (int)sizeof(p))
			continue;
		struct stat st;
		if (stat(p, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > 65536)
			continue;
		FILE *f = fopen(p, "r");
		if (!f)
			continue;
		char line[PATH_MAX + 128];
		while (fgets(line, sizeof(line), f) && n < max) {
			char name[32], path[PATH_MAX];
			unsigned long long size;
			if (sscanf(line, "part %31s %llu %4095[^\n]", name, &size, path) == 3 &&
			    path[0] == '/') {
				snprintf(names[n], 32, "%s", name);
				snprintf(paths[n], PATH_MAX, "%s", path);
				if (sizes)
					sizes[n] = size;
				n++;
			}
		}
		fclose(f);
	}
	closedir(d);
	return n;
}

/* Removes the parts named by the manifest in root/vol, then root. */
static void tv_remove_all(const char *root)
{
	char voldir[PATH_MAX + 8];
	snprintf(voldir, sizeof(voldir), "%s/vol", root);
	static char names[8][32], paths[8][PATH_MAX];
	int n = tv_manifest_parts(voldir, names, paths, NULL, 8);
	for (int i = 0; i < n; i++)
		unlink(paths[i]);
	tv_rmtree(root);
}

static void tv_atexit(void)
{
	pid_t me = getpid();
	struct tv_root *r = tv_roots;
	while (r) {
		struct tv_root *next = r->next;
		if (r->owner == me && !tv_keep())
			tv_remove_all(r->path);
		free(r);
		r = next;
	}
	tv_roots = NULL;
}

void tv_default_mkfs_opts(struct cairn_mkfs_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->log_size = 8 * TV_MiB;
	o->fast_size = 64 * TV_MiB;
	o->media = CAIRN_MEDIA_EMUL;
}

struct testvol *tv_scratch(const char *tag)
{
	const char *base = getenv("CAIRN_TEST_DIR");
	if (!base || !*base)
		base = "/dev/shm";
	struct testvol *tv = calloc(1, sizeof(*tv));
	if (!tv)
		fail_msg("testvol: out of memory");
	snprintf(tv->root, sizeof(tv->root), "%s/cairn-%s-%d-XXXXXX", base,
		 tag ? tag : "test", (int)getpid());
	if (!mkdtemp(tv->root)) {
		int e = errno;
		free(tv);
		fail_msg("testvol: mkdtemp under %s: %s", base, strerror(e));
	}
	if (snprintf(tv->dir, sizeof(tv->dir), "%s/vol", tv->root) >= (int)sizeof(tv->dir) ||
	    snprintf(tv->log_part, sizeof(tv->log_part), "%s/log.part", tv->root) >=
		    (int)sizeof(tv->log_part) ||
	    snprintf(tv->fast_part, sizeof(tv->fast_part), "%s/fast.part", tv->root) >=
		    (int)sizeof(tv->fast_part))
		fail_msg("testvol: scratch path too long: %s", tv->root);
	tv_default_mkfs_opts(&tv->mkfs);
	struct tv_root *r = calloc(1, sizeof(*r));
	if (r) {
		snprintf(r->path, sizeof(r->path), "%s", tv->root);
		r->owner = getpid();
		r->next = tv_roots;
		tv_roots = r;
	}
	if (!tv_atexit_set) {
		atexit(tv_atexit);
		tv_atexit_set = true;
	}
	return tv;
}

int tv_mkfs(struct testvol *tv, const struct cairn_mkfs_opts *opts)
{
	if (opts)
		tv->mkfs = *opts;
	if (!tv->mkfs.log_path)
		tv->mkfs.log_path = tv->log_part;
	if (!tv->mkfs.fast_path)
		tv->mkfs.fast_path = tv->fast_part;
	errno = 0;
	int r = cairn_mkfs(tv->dir, &tv->mkfs);
	if (r != 0 && errno == ENOENT) {
		/* The engine may want the volume directory to exist already. */
		if (mkdir(tv->dir, 0755) == 0) {
			errno = 0;
			r = cairn_mkfs(tv->dir, &tv->mkfs);
		}
	}
	if (r != 0) {
		int e = errno;
		const char *msg = cairn_last_error();
		print_error("testvol: cairn_mkfs(%s) failed: %s: %s\n", tv->dir, tv_errname(e),
			    msg ? msg : "(no message)");
		errno = e;
	}
	return r;
}

struct testvol *tv_create(const struct cairn_mkfs_opts *opts)
{
	umask(0);
	struct testvol *tv = tv_scratch("vol");
	if (tv_mkfs(tv, opts) != 0) {
		tv_destroy(tv);
		return NULL;
	}
	return tv;
}

cairn_fs *tv_mount(struct testvol *tv, const struct cairn_mount_opts *opts)
{
	errno = 0;
	tv->fs = cairn_mount(tv->dir, opts);
	if (!tv->fs) {
		int e = errno;
		const char *msg = cairn_last_error();
		print_error("testvol: cairn_mount(%s) failed: %s: %s\n", tv->dir, tv_errname(e),
			    msg ? msg : "(no message)");
		errno = e;
	}
	return tv->fs;
}

int tv_unmount(struct testvol *tv)
{
	if (!tv->fs)
		return 0;
	cairn_fs *fs = tv->fs;
	tv->fs = NULL;
	errno = 0;
	int r = cairn_unmount(fs);
	if (r != 0)
		print_error("testvol: cairn_unmount(%s) failed: %s\n", tv->dir, tv_errname(errno));
	return r;
}

void tv_destroy(struct testvol *tv)
{
	if (!tv)
		return;
	tv_unmount(tv);
	if (!tv_keep())
		tv_remove_all(tv->root);
	else
		fprintf(stderr, "testvol: kept %s\n", tv->root);
	tv_forget_root(tv->root);
	free(tv);
}

int tv_setup(void **state)
{
	struct testvol *tv = tv_create(NULL);
	if (!tv)
		return -1;
	if (!tv_mount(tv, NULL)) {
		tv_destroy(tv);
		return -1;
	}
	*state = tv;
	return 0;
}

int tv_teardown(void **state)
{
	struct testvol *tv = *state;
	int r = tv ? tv_unmount(tv) : 0;
	tv_destroy(tv);
	*state = NULL;
	return r == 0 ? 0 : -1;
}

/* ---- the canonical dump ------------------------------------------------- */

struct sbuf {
	char *s;
	size_t len, cap;
};

static void sb_grow(struct sbuf *b, size_t more)
{
	if (b->len + more + 1 <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 4096;
	while (cap < b->len + more + 1)
		cap *= 2;
	char *s = realloc(b->s, cap);
	if (!s) {
		fprintf(stderr, "testvol: out of memory\n");
		abort();
	}
	b->s = s;
	b->cap = cap;
}

__attribute__((format(printf, 2, 3))) static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	sb_grow(b, (size_t)n);
	va_start(ap, fmt);
	vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

static void sb_escaped(struct sbuf *b, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x21 || c > 0x7e || c == '\\')
			sb_printf(b, "\\x%02x", c);
		else
			sb_printf(b, "%c", c);
	}
}

struct dent {
	char *path;
	struct stat st;
	bool st_ok;
	size_t entries;        /* directories: names besides . and .. */
	unsigned char d_type;  /* as readdir reported it (DT_UNKNOWN for "/") */
	struct sbuf errors;    /* " ERROR(...)" notes */
	const char *link_to;   /* first path of the same inode, if nlink > 1 */
};

struct dvec {
	struct dent *v;
	size_t n, cap;
};

static struct dent *dvec_add(struct dvec *d, const char *path)
{
	if (d->n == d->cap) {
		d->cap = d->cap ? d->cap * 2 : 256;
		d->v = realloc(d->v, d->cap * sizeof(*d->v));
		if (!d->v) {
			fprintf(stderr, "testvol: out of memory\n");
			abort();
		}
	}
	struct dent *e = &d->v[d->n++];
	memset(e, 0, sizeof(*e));
	e->path = strdup(path);
	return e;
}

static void dent_error(struct dent *e, const char *call, int err)
{
	sb_printf(&e->errors, " ERROR(%s:%s)", call, tv_errname(err));
}

/*
 * What a dump reads: a mounted volume, or a directory of the host (the
 * independent model a crash test compares with).  Paths are the volume's
 * ("/" and "/a/b"); on the host they are taken relative to the directory,
 * which no path leaves (the walk follows no symlink).
 */
struct tree {
	cairn_fs *fs;	      /* the volume, or NULL for the host directory: */
	int root;	      /* its descriptor */
	const char *rootpath; /* and its path (for the xattr calls) */
};

struct tree_dir {
	cairn_dir *cd;
	DIR *hd;
};

static const char *host_rel(const char *path)
{
	return path[1] ? path + 1 : ".";
}

static int t_lstat(const struct tree *t, const char *path, struct stat *st)
{
	if (t->fs)
		return cairn_lstat(t->fs, path, st);
	return fstatat(t->root, host_rel(path), st, AT_SYMLINK_NOFOLLOW);
}

static int t_opendir(const struct tree *t, const char *path, struct tree_dir *d)
{
	memset(d, 0, sizeof(*d));
	if (t->fs) {
		d->cd = cairn_opendir(t->fs, path);
		return d->cd ? 0 : -1;
	}
	int fd = openat(t->root, host_rel(path), O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
	if (fd < 0)
		return -1;
	d->hd = fdopendir(fd);
	if (!d->hd) {
		close(fd);
		return -1;
	}
	return 0;
}

/* The next entry, or NULL at the end (errno set on error). */
static const char *t_readdir(struct tree_dir *d, unsigned char *type)
{
	if (d->cd) {
		struct cairn_dirent *de = cairn_readdir(d->cd);
		if (!de)
			return NULL;
		*type = de->d_type;
		return de->d_name;
	}
	struct dirent *de = readdir(d->hd);
	if (!de)
		return NULL;
	*type = de->d_type;
	return de->d_name;
}

static int t_closedir(struct tree_dir *d)
{
	return d->cd ? cairn_closedir(d->cd) : closedir(d->hd);
}

static int t_open(const struct tree *t, const char *path)
{
	if (t->fs)
		return cairn_open(t->fs, path, O_RDONLY | O_NOFOLLOW);
	return openat(t->root, host_rel(path), O_RDONLY | O_NOFOLLOW);
}

static ssize_t t_pread(const struct tree *t, int fd, void *buf, size_t len, off_t off)
{
	return t->fs ? cairn_pread(t->fs, fd, buf, len, off) : pread(fd, buf, len, off);
}

static off_t t_lseek(const struct tree *t, int fd, off_t off, int whence)
{
	return t->fs ? cairn_lseek(t->fs, fd, off, whence) : lseek(fd, off, whence);
}

static int t_close(const struct tree *t, int fd)
{
	return t->fs ? cairn_close(t->fs, fd) : close(fd);
}

static ssize_t t_readlink(const struct tree *t, const char *path, char *buf, size_t len)
{
	if (t->fs)
		return cairn_readlink(t->fs, path, buf, len);
	return readlinkat(t->root, host_rel(path), buf, len);
}

static ssize_t t_listxattr(const struct tree *t, const char *path, char *list, size_t len)
{
	if (t->fs)
		return cairn_listxattr(t->fs, path, list, len);
	char full[PATH_MAX * 2];
	snprintf(full, sizeof(full), "%s%s", t->rootpath, path);
	return llistxattr(full, list, len);
}

static ssize_t t_getxattr(const struct tree *t, const char *path, const char *name, void *value,
			  size_t len)
{
	if (t->fs)
		return cairn_getxattr(t->fs, path, name, value, len);
	char full[PATH_MAX * 2];
	snprintf(full, sizeof(full), "%s%s", t->rootpath, path);
	return lgetxattr(full, name, value, len);
}

static void walk(const struct tree *t, struct dvec *d, size_t idx, int depth)
{
	/* idx rather than a pointer: the vector moves as it grows. */
	char path[PATH_MAX + 256];
	snprintf(path, sizeof(path), "%s", d->v[idx].path);
	if (depth > 256) {
		dent_error(&d->v[idx], "depth", ELOOP);
		return;
	}
	errno = 0;
	struct tree_dir dir;
	if (t_opendir(t, path, &dir) != 0) {
		dent_error(&d->v[idx], "opendir", errno);
		return;
	}
	size_t entries = 0;
	bool dot = false, dotdot = false;
	const char *name;
	unsigned char type;
	for (;;) {
		errno = 0;
		name = t_readdir(&dir, &type);
		if (!name)
			break;
		if (strcmp(name, ".") == 0) {
			if (dot)
				dent_error(&d->v[idx], "readdir-dup-.", EEXIST);
			dot = true;
			continue;
		}
		if (strcmp(name, "..") == 0) {
			if (dotdot)
				dent_error(&d->v[idx], "readdir-dup-..", EEXIST);
			dotdot = true;
			continue;
		}
		entries++;
		char child[PATH_MAX + 256];
		if (snprintf(child, sizeof(child), "%s%s%s", path, strcmp(path, "/") == 0 ? "" : "/",
			     name) >= (int)sizeof(child)) {
			dent_error(&d->v[idx], "path-too-long", ENAMETOOLONG);
			continue;
		}
		struct dent *c = dvec_add(d, child);
		c->d_type = type;
		errno = 0;
		if (t_lstat(t, child, &c->st) == 0)
			c->st_ok = true;
		else
			dent_error(c, "lstat", errno);
	}
	if (errno != 0)
		dent_error(&d->v[idx], "readdir", errno);
	if (!dot || !dotdot)
		dent_error(&d->v[idx], !dot ? "readdir-no-." : "readdir-no-..", ENOENT);
	errno = 0;
	if (t_closedir(&dir) != 0)
		dent_error(&d->v[idx], "closedir", errno);
	d->v[idx].entries = entries;
	/* Recurse after closing, so that at most one stream per level is open. */
	size_t first = d->n - entries, last = d->n;
	for (size_t i = first; i < last; i++)
		if (d->v[i].st_ok && S_ISDIR(d->v[i].st.st_mode))
			walk(t, d, i, depth + 1);
}

static int cmp_dent_path(const void *a, const void *b)
{
	return strcmp(((const struct dent *)a)->path, ((const struct dent *)b)->path);
}

static const struct dent *ino_sort_base;
static int cmp_idx_ino(const void *a, const void *b)
{
	const struct dent *x = &ino_sort_base[*(const size_t *)a];
	const struct dent *y = &ino_sort_base[*(const size_t *)b];
	if (x->st.st_ino != y->st.st_ino)
		return x->st.st_ino < y->st.st_ino ? -1 : 1;
	return strcmp(x->path, y->path);
}

#define HASH_CHUNK (64 * 1024)
#define FULL_READ_LIMIT (64 * TV_MiB)

static const unsigned char tv_zero_chunk[HASH_CHUNK];

/* Reads chunk k (bytes [k*CHUNK, min((k+1)*CHUNK, size))) into buf.
 * Returns the number of bytes read, or -1 with errno. */
static ssize_t read_chunk(const struct tree *t, int fd, uint64_t k, uint64_t size,
			  unsigned char *buf)
{
	uint64_t start = k * HASH_CHUNK;
	uint64_t end = start + HASH_CHUNK < size ? start + HASH_CHUNK : size;
	size_t got = 0;
	while (start + got < end) {
		ssize_t n = t_pread(t, fd, buf + got, end - start - got, (off_t)(start + got));
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

static void hash_chunk(XXH3_state_t *h, uint64_t k, const unsigned char *buf, size_t n)
{
	if (n == 0 || memcmp(buf, tv_zero_chunk, n) == 0)
		return;
	unsigned char le[8];
	for (int i = 0; i < 8; i++)
		le[i] = (unsigned char)(k >> (8 * i));
	XXH3_64bits_update(h, le, sizeof(le));
	XXH3_64bits_update(h, buf, n);
}

static void hash_file(const struct tree *t, struct dent *e, struct sbuf *out)
{
	uint64_t size = (uint64_t)e->st.st_size;
	errno = 0;
	int fd = t_open(t, e->path);
	if (fd < 0) {
		dent_error(e, "open", errno);
		return;
	}
	unsigned char *buf = malloc(HASH_CHUNK);
	XXH3_state_t *h = XXH3_createState();
	if (!buf || !h) {
		fprintf(stderr, "testvol: out of memory\n");
		abort();
	}
	XXH3_64bits_reset(h);
	uint64_t nchunks = (size + HASH_CHUNK - 1) / HASH_CHUNK;
	bool done = false;
	if (size > FULL_READ_LIMIT) {
		/* Visit only chunks that touch data regions.  The hash is the same
		 * as a full read as long as holes read as zeros. */
		uint64_t next = 0; /* first chunk not yet hashed */
		off_t pos = 0;
		done = true;
		while ((uint64_t)pos < size) {
			errno = 0;
			off_t d = t_lseek(t, fd, pos, SEEK_DATA);
			if (d < 0) {
				if (errno != ENXIO) {
					/* No SEEK_DATA: fall back to reading everything. */
					done = false;
					XXH3_64bits_reset(h);
				}
				break;
			}
			if (d < pos) {
				sb_printf(&e->errors, " SEEK_DATA-BACKWARDS(%lld<%lld)", (long long)d,
					  (long long)pos);
				d = pos;
			}
			off_t hole = t_lseek(t, fd, d, SEEK_HOLE);
			if (hole < 0 || hole <= d)
				hole = (off_t)size;
			uint64_t k0 = (uint64_t)d / HASH_CHUNK;
			uint64_t k1 = ((uint64_t)hole + HASH_CHUNK - 1) / HASH_CHUNK;
			if (k0 < next)
				k0 = next;
			if (k1 <= k0)
				k1 = k0 + 1;
			for (uint64_t k = k0; k < k1 && k < nchunks; k++) {
				ssize_t n = read_chunk(t, fd, k, size, buf);
				if (n < 0) {
					dent_error(e, "pread", errno);
					break;
				}
				hash_chunk(h, k, buf, (size_t)n);
				uint64_t want = (k + 1) * HASH_CHUNK < size ? HASH_CHUNK : size - k * HASH_CHUNK;
				if ((uint64_t)n != want)
					sb_printf(&e->errors, " SHORT-READ(%" PRIu64 ")", k * HASH_CHUNK + (uint64_t)n);
			}
			if (k1 > next)
				next = k1;
			pos = (off_t)(next * HASH_CHUNK);
		}
	}
	if (!done) {
		for (uint64_t k = 0; k < nchunks; k++) {
			ssize_t n = read_chunk(t, fd, k, size, buf);
			if (n < 0) {
				dent_error(e, "pread", errno);
				break;
			}
			hash_chunk(h, k, buf, (size_t)n);
			uint64_t want = (k + 1) * HASH_CHUNK < size ? HASH_CHUNK : size - k * HASH_CHUNK;
			if ((uint64_t)n != want) {
				sb_printf(&e->errors, " SHORT-READ(%" PRIu64 ")", k * HASH_CHUNK + (uint64_t)n);
				break;
			}
		}
	}
	/* Nothing may be readable past the size. */
	ssize_t n = t_pread(t, fd, buf, 1, (off_t)size);
	if (n != 0)
		sb_printf(&e->errors, " READ-PAST-EOF(%zd)", n);
	sb_printf(out, " xxh3=%016llx", (unsigned long long)XXH3_64bits_digest(h));
	XXH3_freeState(h);
	free(buf);
	errno = 0;
	if (t_close(t, fd) != 0)
		dent_error(e, "close", errno);
}

static char type_char(mode_t m)
{
	switch (m & S_IFMT) {
	case S_IFREG: return '-';
	case S_IFDIR: return 'd';
	case S_IFLNK: return 'l';
	case S_IFIFO: return 'p';
	case S_IFCHR: return 'c';
	case S_IFBLK: return 'b';
	case S_IFSOCK: return 's';
	default: return '?';
	}
}

static unsigned char dtype_of(mode_t m)
{
	switch (m & S_IFMT) {
	case S_IFREG: return DT_REG;
	case S_IFDIR: return DT_DIR;
	case S_IFLNK: return DT_LNK;
	case S_IFIFO: return DT_FIFO;
	case S_IFCHR: return DT_CHR;
	case S_IFBLK: return DT_BLK;
	case S_IFSOCK: return DT_SOCK;
	default: return DT_UNKNOWN;
	}
}

static int cmp_cstr(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Extended attributes, sorted by name: " xattr=<name>:<xxh3 of value>".
 * On the host only the user namespace counts (the host may add its own,
 * security.* say, where a volume has none). */
static void dump_xattrs(const struct tree *t, struct dent *e, struct sbuf *out)
{
	char list[8192];
	errno = 0;
	ssize_t n = t_listxattr(t, e->path, list, sizeof(list));
	if (n < 0) {
		dent_error(e, "listxattr", errno);
		return;
	}
	char *names[512];
	size_t count = 0;
	for (ssize_t at = 0; at < n && count < 512; at += (ssize_t)strlen(list + at) + 1)
		if (t->fs || strncmp(list + at, "user.", 5) == 0)
			names[count++] = list + at;
	qsort(names, count, sizeof(*names), cmp_cstr);
	for (size_t i = 0; i < count; i++) {
		char value[2048];
		ssize_t v = t_getxattr(t, e->path, names[i], value, sizeof(value));
		if (v < 0) {
			dent_error(e, "getxattr", errno);
			continue;
		}
		sb_printf(out, " xattr=");
		sb_escaped(out, names[i], strlen(names[i]));
		sb_printf(out, ":%016llx", (unsigned long long)XXH3_64bits(value, (size_t)v));
	}
}

static char *dump_tree(const struct tree *t, unsigned flags)
{
	struct dvec d = {0};
	struct dent *root = dvec_add(&d, "/");
	root->d_type = DT_DIR;
	errno = 0;
	if (t_lstat(t, "/", &root->st) == 0) {
		root->st_ok = true;
		walk(t, &d, 0, 0);
	} else {
		dent_error(root, "lstat", errno);
	}
	qsort(d.v, d.n, sizeof(*d.v), cmp_dent_path);

	/* Hard-link groups, named by their first path. */
	size_t *idx = malloc((d.n ? d.n : 1) * sizeof(*idx));
	size_t m = 0;
	for (size_t i = 0; i < d.n; i++)
		if (d.v[i].st_ok && !S_ISDIR(d.v[i].st.st_mode) && d.v[i].st.st_nlink > 1)
			idx[m++] = i;
	ino_sort_base = d.v;
	qsort(idx, m, sizeof(*idx), cmp_idx_ino);
	for (size_t i = 0; i < m;) {
		size_t j = i;
		while (j < m && d.v[idx[j]].st.st_ino == d.v[idx[i]].st.st_ino)
			j++;
		for (size_t k = i; k < j; k++)
			d.v[idx[k]].link_to = d.v[idx[i]].path;
		i = j;
	}
	free(idx);

	struct sbuf out = {0};
	sb_grow(&out, 0);
	out.s[0] = '\0';
	for (size_t i = 0; i < d.n; i++) {
		struct dent *e = &d.v[i];
		sb_escaped(&out, e->path, strlen(e->path));
		if (!e->st_ok) {
			sb_printf(&out, " ?%s\n", e->errors.s ? e->errors.s : "");
			continue;
		}
		const struct stat *st = &e->st;
		sb_printf(&out, " %c mode=%04o nlink=%lu uid=%lu gid=%lu", type_char(st->st_mode),
			  (unsigned)(st->st_mode & 07777), (unsigned long)st->st_nlink,
			  (unsigned long)st->st_uid, (unsigned long)st->st_gid);
		if (e->d_type != DT_UNKNOWN && e->d_type != dtype_of(st->st_mode))
			sb_printf(&out, " D_TYPE-MISMATCH(%u)", e->d_type);
		if (S_ISDIR(st->st_mode)) {
			sb_printf(&out, " entries=%zu", e->entries);
			if (flags & TV_DUMP_DIRSIZE)
				sb_printf(&out, " size=%lld", (long long)st->st_size);
		} else if (S_ISREG(st->st_mode)) {
			sb_printf(&out, " size=%lld", (long long)st->st_size);
			hash_file(t, e, &out);
		} else if (S_ISLNK(st->st_mode)) {
			sb_printf(&out, " size=%lld target=", (long long)st->st_size);
			char target[PATH_MAX + 2];
			errno = 0;
			ssize_t n = t_readlink(t, e->path, target, sizeof(target));
			if (n < 0)
				dent_error(e, "readlink", errno);
			else
				sb_escaped(&out, target, (size_t)n);
		} else {
			sb_printf(&out, " size=%lld rdev=%llu", (long long)st->st_size,
				  (unsigned long long)st->st_rdev);
		}
		if (flags & TV_DUMP_MTIME)
			sb_printf(&out, " mtime=%lld", (long long)tv_ts_ns(&st->st_mtim));
		if (flags & TV_DUMP_CTIME)
			sb_printf(&out, " ctime=%lld", (long long)tv_ts_ns(&st->st_ctim));
		if (!S_ISLNK(st->st_mode))
			dump_xattrs(t, e, &out);
		if (e->link_to) {
			sb_printf(&out, " link=");
			sb_escaped(&out, e->link_to, strlen(e->link_to));
		}
		if (e->errors.s)
			sb_printf(&out, "%s", e->errors.s);
		sb_printf(&out, "\n");
	}
	for (size_t i = 0; i < d.n; i++) {
		free(d.v[i].path);
		free(d.v[i].errors.s);
	}
	free(d.v);
	return out.s;
}

char *tv_dump(cairn_fs *fs, unsigned flags)
{
	struct tree t = {.fs = fs, .root = -1};
	return dump_tree(&t, flags);
}

char *tv_dump_dir(const char *dir, unsigned flags)
{
	struct tree t = {.root = open(dir, O_RDONLY | O_DIRECTORY), .rootpath = dir};
	if (t.root < 0) {
		struct sbuf out = {0};
		sb_grow(&out, 0);
		out.s[0] = '\0';
		sb_printf(&out, "/ ? ERROR(open:%s)\n", tv_errname(errno));
		return out.s;
	}
	char *s = dump_tree(&t, flags);
	close(t.root);
	return s;
}

static size_t line_len(const char *s)
{
	const char *nl = strchr(s, '\n');
	return nl ? (size_t)(nl - s) : strlen(s);
}

int tv_dump_compare(const char *expected, const char *actual, const char *what)
{
	if (strcmp(expected, actual) == 0)
		return 0;
	const char *a = expected, *b = actual;
	int line = 1;
	for (;;) {
		size_t la = line_len(a), lb = line_len(b);
		if (la != lb || memcmp(a, b, la) != 0 || !*a || !*b)
			break;
		a += la + (a[la] == '\n');
		b += lb + (b[lb] == '\n');
		line++;
	}
	const char *eod = "<end of dump>";
	size_t la = *a ? line_len(a) : strlen(eod), lb = *b ? line_len(b) : strlen(eod);
	print_error("dump mismatch (%s) at line %d:\n  expected: %.*s\n  actual:   %.*s\n", what,
		    line, (int)la, *a ? a : eod, (int)lb, *b ? b : eod);
	const char *v = getenv("CAIRN_TEST_VERBOSE");
	if (v && *v && strcmp(v, "0") != 0)
		print_error("---- expected dump ----\n%s---- actual dump ----\n%s----\n", expected,
			    actual);
	return line;
}

/* ---- data and file helpers ---------------------------------------------- */

uint64_t tv_splitmix(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

void tv_fill(void *buf, size_t len, uint64_t seed)
{
	unsigned char *p = buf;
	uint64_t st = seed * 0x2545f4914f6cdd1dull + 1;
	size_t i = 0;
	while (i < len) {
		uint64_t r = tv_splitmix(&st);
		for (int k = 0; k < 8 && i < len; k++, i++)
			p[i] = (unsigned char)(r >> (8 * k));
	}
}

ssize_t tv_pwrite_full(cairn_fs *fs, int fd, const void *buf, size_t len, off_t off)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = cairn_pwrite(fs, fd, (const char *)buf + done, len - done, off + (off_t)done);
		if (n < 0)
			return -1;
		if (n == 0) {
			errno = EIO;
			return -1;
		}
		done += (size_t)n;
	}
	return (ssize_t)done;
}

ssize_t tv_write_full(cairn_fs *fs, int fd, const void *buf, size_t len)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = cairn_write(fs, fd, (const char *)buf + done, len - done);
		if (n < 0)
			return -1;
		if (n == 0) {
			errno = EIO;
			return -1;
		}
		done += (size_t)n;
	}
	return (ssize_t)done;
}

void tv_put(cairn_fs *fs, const char *path, const void *buf, size_t len, mode_t mode)
{
	errno = 0;
	int fd = cairn_open(fs, path, O_CREAT | O_WRONLY | O_TRUNC, mode);
	if (fd < 0)
		fail_msg("tv_put: open(%s): %s", path, tv_errname(errno));
	if (len && tv_write_full(fs, fd, buf, len) != (ssize_t)len)
		fail_msg("tv_put: write(%s, %zu): %s", path, len, tv_errname(errno));
	if (cairn_close(fs, fd) != 0)
		fail_msg("tv_put: close(%s): %s", path, tv_errname(errno));
}

void tv_put_str(cairn_fs *fs, const char *path, const char *s)
{
	tv_put(fs, path, s, strlen(s), 0644);
}

void tv_expect_at(cairn_fs *fs, int fd, off_t off, const void *buf, size_t len)
{
	unsigned char *got = malloc(len ? len : 1);
	if (!got)
		fail_msg("tv_expect_at: out of memory");
	size_t done = 0;
	while (done < len) {
		errno = 0;
		ssize_t n = cairn_pread(fs, fd, got + done, len - done, off + (off_t)done);
		if (n < 0) {
			free(got);
			fail_msg("tv_expect_at: pread(fd %d, %zu, %lld): %s", fd, len - done,
				 (long long)(off + (off_t)done), tv_errname(errno));
		}
		if (n == 0) {
			free(got);
			fail_msg("tv_expect_at: pread(fd %d) hit EOF at %lld, wanted %zu bytes from %lld",
				 fd, (long long)(off + (off_t)done), len, (long long)off);
		}
		done += (size_t)n;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char want = buf ? ((const unsigned char *)buf)[i] : 0;
		if (got[i] != want) {
			unsigned char g = got[i];
			free(got);
			fail_msg("tv_expect_at: byte at offset %lld is 0x%02x, expected 0x%02x",
				 (long long)(off + (off_t)i), g, want);
		}
	}
	free(got);
}

void tv_expect(cairn_fs *fs, const char *path, const void *buf, size_t len)
{
	struct stat st;
	errno = 0;
	if (cairn_stat(fs, path, &st) != 0)
		fail_msg("tv_expect: stat(%s): %s", path, tv_errname(errno));
	if ((uint64_t)st.st_size != len)
		fail_msg("tv_expect: %s has size %lld, expected %zu", path, (long long)st.st_size, len);
	int fd = cairn_open(fs, path, O_RDONLY);
	if (fd < 0)
		fail_msg("tv_expect: open(%s): %s", path, tv_errname(errno));
	tv_expect_at(fs, fd, 0, buf, len);
	char c;
	ssize_t n = cairn_pread(fs, fd, &c, 1, (off_t)len);
	cairn_close(fs, fd);
	if (n != 0)
		fail_msg("tv_expect: %s: pread at EOF returned %zd, expected 0", path, n);
}

void tv_expect_str(cairn_fs *fs, const char *path, const char *s)
{
	tv_expect(fs, path, s, strlen(s));
}

bool tv_exists(cairn_fs *fs, const char *path)
{
	struct stat st;
	return cairn_lstat(fs, path, &st) == 0;
}

struct stat tv_stat(cairn_fs *fs, const char *path)
{
	struct stat st;
	errno = 0;
	if (cairn_stat(fs, path, &st) != 0)
		fail_msg("stat(%s): %s", path, tv_errname(errno));
	return st;
}

struct stat tv_lstat(cairn_fs *fs, const char *path)
{
	struct stat st;
	errno = 0;
	if (cairn_lstat(fs, path, &st) != 0)
		fail_msg("lstat(%s): %s", path, tv_errname(errno));
	return st;
}

int64_t tv_ts_ns(const struct timespec *ts)
{
	return (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec;
}

int64_t tv_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return tv_ts_ns(&ts);
}

void tv_sleep_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

const char *tv_errname(int e)
{
	if (e == 0)
		return "0 (errno not set)";
	const char *n = strerrorname_np(e);
	if (n)
		return n;
	static __thread char buf[32];
	snprintf(buf, sizeof(buf), "errno %d", e);
	return buf;
}

void tv_expect_fsck_clean(const char *dir)
{
	struct fsck_opts o = {0};
	struct fsck_report r;
	int rc = fsck_run(dir, &o, &r);
	if (rc != FSCK_CLEAN)
		fsck_print_text(stderr, dir, &r);
	fsck_report_free(&r);
	assert_int_equal(rc, FSCK_CLEAN);
}
