/*
 * testvol.h - helpers shared by the API and crash tests: scratch volumes in
 * /dev/shm, the canonical tree dump that is the oracle of the crash tests,
 * and small assertion helpers that print errno names on failure.
 *
 * Environment: CAIRN_TEST_DIR puts scratch volumes elsewhere than /dev/shm;
 * CAIRN_TEST_KEEP=1 keeps them after the tests; CAIRN_TEST_VERBOSE=1 prints
 * both whole dumps when two dumps differ.
 */
#ifndef CAIRN_TESTVOL_H
#define CAIRN_TESTVOL_H

#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <cmocka.h>

#include "cairn.h"

#define TV_KiB ((uint64_t)1024)
#define TV_MiB ((uint64_t)1024 * 1024)
#define TV_GiB ((uint64_t)1024 * 1024 * 1024)
#define TV_TiB ((uint64_t)1024 * 1024 * 1024 * 1024)

/* A scratch volume: root is a unique directory removed by tv_destroy();
 * dir (root/vol) is the volume directory given to cairn_mkfs/cairn_mount. */
struct testvol {
	char root[PATH_MAX];
	char dir[PATH_MAX];
	struct cairn_mkfs_opts mkfs;
	cairn_fs *fs; /* mounted file system, or NULL */
	/* Where tv_mkfs puts the parts when the options name no path: inside
	 * root, so that removing root removes everything. */
	char log_part[PATH_MAX];
	char fast_part[PATH_MAX];
};

/* The defaults of the API tests: 8 MiB log, 64 MiB fast tier, emul media. */
void tv_default_mkfs_opts(struct cairn_mkfs_opts *o);

/* A new unique scratch directory with no volume in it yet (dir is set but
 * not created).  Never NULL (aborts the test on failure). */
struct testvol *tv_scratch(const char *tag);
/* cairn_mkfs on tv->dir with opts (NULL = defaults); a NULL log_path or
 * fast_path becomes tv->log_part / tv->fast_part (inside the scratch root).
 * Prints the reason on failure.  Returns cairn_mkfs's result. */
int tv_mkfs(struct testvol *tv, const struct cairn_mkfs_opts *opts);
/* Scratch directory + mkfs.  NULL (with a message printed) on failure.
 * Sets the process umask to 0, so that the modes the tests pass to create
 * calls are exact whether or not the engine applies the umask. */
struct testvol *tv_create(const struct cairn_mkfs_opts *opts);
/* Mounts tv (opts may be NULL), sets tv->fs; prints cairn_last_error() on
 * failure and returns NULL. */
cairn_fs *tv_mount(struct testvol *tv, const struct cairn_mount_opts *opts);
/* Unmounts tv->fs if mounted.  Returns cairn_unmount's result. */
int tv_unmount(struct testvol *tv);
/* Unmounts, then removes the whole scratch directory tree and every part
 * file the volume's manifest names (wherever it is). */
void tv_destroy(struct testvol *tv);
/* The parts a volume's manifest names ("part <name> <size> <path>" lines of
 * the text files in the volume directory).  Returns how many were found
 * (at most max); names and paths are copied into the arrays. */
int tv_manifest_parts(const char *voldir, char names[][32], char paths[][PATH_MAX],
		      uint64_t *sizes, int max);
/* Removes a directory tree (like rm -rf); 0 or -1. */
int tv_rmtree(const char *path);
/* fsck of the unmounted volume in dir must find it clean (the report is
 * printed when it does not). */
void tv_expect_fsck_clean(const char *dir);

/* cmocka fixtures: *state becomes a mounted default volume. */
int tv_setup(void **state);
int tv_teardown(void **state);
#define TV_FS(state) (((struct testvol *)*(state))->fs)

/*
 * The canonical dump of a mounted volume: one line per path, in strcmp
 * order of the full path, starting with "/":
 *
 *   <path> <type> mode=<octal perms> nlink=N uid=N gid=N <type fields>
 *          [mtime=<ns>] [ctime=<ns>] [link=<first path of the same inode>]
 *
 * type is - d l p c b s.  Regular files: size=N xxh3=<hex>, the XXH3-64 of
 * the content in a sparse-independent canonical form (for each 64 KiB chunk
 * that is not all zeros: its index as a little-endian uint64 and its bytes),
 * so a hole and written zeros hash the same.  Symlinks: size=N target=<t>.
 * Directories: entries=N (names besides . and ..) [size=N].  Paths and
 * targets escape bytes outside 0x21..0x7e and the backslash as \xHH.
 * link= appears on non-directories with nlink > 1 (names the group without
 * depending on inode numbers).  A call that fails while dumping adds
 * ERROR(<call>:<errno name>) to the line, so a broken volume gives a
 * different dump rather than a crash.
 */
enum {
	TV_DUMP_MTIME = 1,   /* include mtime in ns */
	TV_DUMP_CTIME = 2,   /* include ctime in ns */
	TV_DUMP_DIRSIZE = 4, /* include st_size of directories */
	TV_DUMP_ALL = 7,
};
/* Returns a malloc'd string (never NULL; a failure shows inside). */
char *tv_dump(cairn_fs *fs, unsigned flags);
/* The same dump of a directory tree of the host, dir standing for "/"
 * (an independent model to compare a volume with); only user.* extended
 * attributes are listed. */
char *tv_dump_dir(const char *dir, unsigned flags);
/* 0 if equal; otherwise prints what and the first differing line of each
 * (to stderr, via cmocka's print_error) and returns the 1-based line number. */
int tv_dump_compare(const char *expected, const char *actual, const char *what);
#define tv_assert_dump_eq(expected, actual, what)                                       \
	do {                                                                            \
		if (tv_dump_compare((expected), (actual), (what)) != 0)                  \
			fail_msg("%s:%d: dumps differ (%s)", __FILE__, __LINE__, (what)); \
	} while (0)

/* Deterministic pseudo-random bytes from a seed (the same seed and offset
 * give the same bytes: byte i of tv_fill(buf, n, s) does not depend on n). */
void tv_fill(void *buf, size_t len, uint64_t seed);
uint64_t tv_splitmix(uint64_t *state);

/* Whole-file helpers; they fail the current test on error. */
void tv_put(cairn_fs *fs, const char *path, const void *buf, size_t len, mode_t mode);
void tv_put_str(cairn_fs *fs, const char *path, const char *s);
/* Asserts the file's size is len and its content equals buf. */
void tv_expect(cairn_fs *fs, const char *path, const void *buf, size_t len);
void tv_expect_str(cairn_fs *fs, const char *path, const char *s);
/* Asserts pread(fd, len, off) returns len bytes equal to buf (NULL: zeros). */
void tv_expect_at(cairn_fs *fs, int fd, off_t off, const void *buf, size_t len);
/* pwrite/write all of buf, looping on short writes; -1 + errno on error. */
ssize_t tv_pwrite_full(cairn_fs *fs, int fd, const void *buf, size_t len, off_t off);
ssize_t tv_write_full(cairn_fs *fs, int fd, const void *buf, size_t len);
bool tv_exists(cairn_fs *fs, const char *path); /* lstat succeeds */
struct stat tv_stat(cairn_fs *fs, const char *path);  /* fails the test on error */
struct stat tv_lstat(cairn_fs *fs, const char *path); /* fails the test on error */

int64_t tv_ts_ns(const struct timespec *ts);
int64_t tv_now_ns(void); /* CLOCK_REALTIME */
void tv_sleep_ms(unsigned ms);
const char *tv_errname(int e); /* "ENOENT", ... */

/* Expressions that must succeed: evaluates to the result, fails the test with
 * the errno name if the result is -1 (TV_NN: if NULL). */
#define TV_OK(expr)                                                                      \
	({                                                                               \
		errno = 0;                                                               \
		__typeof__(expr) _tv_r = (expr);                                         \
		if (_tv_r == -1)                                                         \
			fail_msg("%s:%d: %s failed: %s", __FILE__, __LINE__, #expr,      \
				 tv_errname(errno));                                     \
		_tv_r;                                                                   \
	})
#define TV_NN(expr)                                                                      \
	({                                                                               \
		errno = 0;                                                               \
		__typeof__(expr) _tv_p = (expr);                                         \
		if (_tv_p == NULL)                                                       \
			fail_msg("%s:%d: %s returned NULL: %s", __FILE__, __LINE__,      \
				 #expr, tv_errname(errno));                              \
		_tv_p;                                                                   \
	})
/* Expressions that must fail with -1 and errno e (or e2). */
#define TV_ERR2(expr, e, e2)                                                             \
	do {                                                                             \
		errno = 0;                                                               \
		long long _tv_r = (long long)(expr);                                     \
		int _tv_e = errno;                                                       \
		if (_tv_r != -1 || (_tv_e != (e) && _tv_e != (e2)))                      \
			fail_msg("%s:%d: %s: expected -1 with %s, got %lld with %s",     \
				 __FILE__, __LINE__, #expr, tv_errname(e), _tv_r,        \
				 _tv_r == -1 ? tv_errname(_tv_e) : "no error");          \
	} while (0)
#define TV_ERR(expr, e) TV_ERR2(expr, e, e)
#define TV_ERR_NULL(expr, e)                                                             \
	do {                                                                             \
		errno = 0;                                                               \
		void *_tv_p = (void *)(expr);                                            \
		int _tv_e = errno;                                                       \
		if (_tv_p != NULL || _tv_e != (e))                                       \
			fail_msg("%s:%d: %s: expected NULL with %s, got %s with %s",     \
				 __FILE__, __LINE__, #expr, tv_errname(e),               \
				 _tv_p ? "non-NULL" : "NULL", tv_errname(_tv_e));        \
	} while (0)
/* Integer equality with both values printed. */
#define TV_EQ(a, b)                                                                      \
	do {                                                                             \
		long long _tv_a = (long long)(a), _tv_b = (long long)(b);                \
		if (_tv_a != _tv_b)                                                      \
			fail_msg("%s:%d: %s == %s: %lld != %lld", __FILE__, __LINE__,    \
				 #a, #b, _tv_a, _tv_b);                                  \
	} while (0)

#endif
