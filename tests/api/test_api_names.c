/*
 * test_api_names.c - the name space through the native API: unlink, rename
 * (every replace/refuse case, RENAME_NOREPLACE), mkdir/rmdir, hard links,
 * symlinks and readlink, and path resolution (ENAMETOOLONG, ENOTDIR, ELOOP,
 * ENOENT, ".", "..", trailing slashes, symlinks in the middle of a path,
 * resolved within the volume), all to Linux (ext4) semantics.
 */
#include "testvol.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static ino_t ino_of(cairn_fs *fs, const char *path)
{
	return tv_lstat(fs, path).st_ino;
}

static nlink_t nlink_of(cairn_fs *fs, const char *path)
{
	return tv_lstat(fs, path).st_nlink;
}

/* ---- unlink -------------------------------------------------------------- */

static void test_unlink_removes_name(void **state)
{
	cairn_fs *fs = TV_FS(state);
	tv_put_str(fs, "/f", "x");
	TV_OK(cairn_unlink(fs, "/f"));
	struct stat st;
	TV_ERR(cairn_stat(fs, "/f", &st), ENOENT);
	TV_ERR(cairn_open(fs, "/f", O_RDONLY), ENOENT);
	TV_ERR(cairn_unlink(fs, "/f"), ENOENT);
}

static void test_unlink_errors(void **state)
{
	cairn_fs *fs = TV_FS(state);
	TV_OK(cairn_mkdir(fs, "/d", 0755));
	tv_put_str(fs, "/f", "x");
	TV_ERR(cairn_unlink(fs, "/d"), EISDIR); /* Linux; POSIX says EPERM */
	TV_ERR(cairn_unlink(fs, "/missing"), ENOENT);
	TV_ERR(cairn_unlink(fs, "/nodir/f"), ENOENT);
	TV_ERR(cairn_unlink(fs, "/f/x"), ENOTDIR);
	TV_ERR(cairn_unlink(fs, ""), ENOENT);
	assert_true(tv_exists(fs, "/d"));
}

static void test_unlink_symlink_keeps_target(void **state)
{
	cairn_fs *fs = TV_FS(state);
	tv_put_str(fs, "/f", "target");
	TV_OK(cairn_symlink(fs, "/f", "/l"));
	TV_OK(cairn_unlink(fs, "/l"));
	assert_false(tv_exists(fs, "/l"));
	tv_expect_str(fs, "/f", "target");
}

/* ---- rename -------------------------------------------------------------- */

static void test_rename_file_to_new_name(void **state)
{
	cairn_fs *fs = TV_FS(state);
	TV_OK(cairn_mkdir(fs, "/d", 0755));
	tv_put_str(fs, "/a", "content");
	ino_t ino = ino_of(fs, "/a");
	TV_OK(cairn_rename(fs, "/a", "/d/b", 0));
	assert_false(tv_exists(fs, "/a"));
	tv_expect_str(fs, "/d/b", "content");
	TV_EQ(ino_of(fs, "/d/b"), ino);
	TV_EQ(nlink_of(fs, "/d/b"), 1);
}

static void test_rename_file_over_file(void **state)
{
	cairn_fs *fs = TV_FS(state);
	tv_put_str(fs, "/a", "from a");
	tv_put_str(fs, "/b", "old b");
	ino_t ino = ino_of(fs, "/a");
	TV_OK(cairn_rename(fs, "/a", "/b", 0));
	assert_false(tv_exists(fs, "/a"));
	tv_expect_str(fs, "/b", "from a");
	TV_EQ(ino_of(fs, "/b"), ino);
}

static void test_rename_over_file_with_other_link(void **state)
{
	cairn_fs *fs = TV_FS(state);
	tv_put_str(fs, "/a", "new");
	tv_put_str(fs, "/b", "old");
	TV_OK(cairn_link(fs, "/b", "/b2"));
	TV_EQ(nlink_of(fs, "/b2"), 2);
	TV_OK(cairn_rename(fs, "/a", "/b", 0));
	tv_expect_str(fs, "/b", "new");
	tv_expect_str(fs, "/b2", "old");
	TV_EQ(nlink_of(fs, "/b2"), 1);
}

static void test_rename_replaced_file_open_fd_survives(void **state)
{
	cairn_fs *fs = TV_FS(state);
	tv_put_str(fs, "/a", "new");
	tv_put_str(fs, "/b", "old");
	int fd = TV_OK(cairn_open(fs, "/b", O_RDONLY));
	TV_OK(cairn_rename(fs, "/a", "/b", 0));
	tv_expect_at(fs, fd, 0, "old", 3);
	struct stat st;
	TV_OK(cairn_fstat(fs, fd, &st));
	TV_EQ(st.st_nlink, 0);
	TV_OK(cairn_close(fs, fd));
	tv_expect_str(fs, "/b", "new");
}

static void test_rename_dir_over_empty_dir(void **state)
{
	cairn_fs *fs = TV_FS(state);
	TV_OK(cairn_mkdir(fs, "/p", 0755));
	TV_OK(cairn_mkdir(fs, "/p/a", 0755));
	TV_OK(cairn_mkdir(fs, "/p/b", 0755));
	tv_put_str(fs, "/p/a/f", "in a");
	ino_t ino = ino_of(fs, "/p/a");
	TV_EQ(nlink_of(fs, "/p"), 4);
	TV_OK(cairn_rename(fs, "/p/a", "/p/b", 0));
	assert_false(tv_exists(fs, "/p/a"));
	TV_EQ(ino_of(fs, "/p/b"), ino);
	tv_expect_str(fs, "/p/b/f", "in a");
	TV_EQ(nlink_of(fs, "/p"), 3);
	TV_EQ(nlink_of(fs, "/p/b"), 2);
}

static void test_rename_dir_over_nonempty_dir_enotempty(void **state)
{
	cairn_fs *fs = TV_FS(state);
	TV_OK(cairn_mkdir(fs, "/a", 0755));
	TV_OK(cairn_mkdir(fs, "/b", 0755));
	tv_put_str(fs, "/b/f", "keep");
	/* ext4 gives ENOTEMPTY (POSIX also allows EEXIST). */
	TV_ERR(cairn_rename(fs, "/a", "/b", 0), ENOTEMPTY);
	assert_true(tv_exists(fs, "/a"));
	tv_expect_str(fs, "/b/f", "keep");
}

static void test_rename_file_over_dir_eisdir(void **state)
{
	cairn_fs *fs = TV_FS(state);
	tv_put_str(fs, "/f", "x");
	TV_OK(cairn_mkdir(fs, "/d", 0755));
	TV_ERR(cairn_rename(fs, "/f", "/d", 0), EISDIR);
	assert_true(S_ISDIR(tv_lstat(fs, "/d").st_mode));
	tv_expect_str(fs, "/f", "x");
}

static void test_rename_dir_over_file_enotdir(void **state)
{
	cairn_fs *fs = TV_FS(state);
	tv_put_str(fs, "/f", "x");
	TV_OK(cairn_mkdir(fs, "/d", 0755));
	TV_ERR(cairn_rename(fs, "/d", "/f", 0), ENOTDIR);
	assert_true(S_ISDIR(tv_lstat(fs, "/d").st_mode));
	tv_expect_str(fs, "/f", "x");
}

static void test_rename_dir_into_own_subtree_einval(void **state)
{
	cairn_fs *fs = TV_FS(state);
	TV_OK(cairn_mkdir(fs, "/a", 0755));
	TV_OK(cairn_mkdir(fs, "/a/b", 0755));
	TV_OK(cairn_mkdir(fs, "/a/b/c", 0755));
	TV_ERR(cairn_rename(fs, "/a", "/a/b/c/x", 0), EINVAL);
	TV_ERR(cairn_rename(fs, "/a", "/a/x", 0), EINVAL);
	TV_ERR(cairn_rename(fs, "/a/b", "/a/b/c/d", 0), EINVAL);
	/* Onto an existing (empty) descendant: still EINVAL, not ENOTEMPTY. */
	TV_ERR(cairn_rename(fs, "/a", "/a/b/c", 0), EINVAL);
	/* ... unless NOREPLACE: Linux checks the existing target first. */
	TV_ERR(cairn_rename(fs, "/a", "/a/b/c", CAIRN_RENAME_NOREPLACE), EEXIST);
	assert_true(tv_exists(fs, "/a/b/c"));
}

/* Onto one of its own ancestors: Linux answers ENOTEMPTY before it looks
 * at the types (a file renamed onto its directory is not EISDIR). */
static void test_rename_onto_ancestor_enotempty(void **state)
{
	cairn_fs *fs = TV_FS(state);
	TV_OK(cairn_mkdir(fs, "/d", 0755));
	TV_OK(cairn_mkdir(fs, "/d/e", 0755));
	tv_put_str(fs, "/d/f", "x");
	tv_put_str(fs, "/d/e/g", "y");
	TV_ERR(cairn_rename(fs, "/d/f", "/d", 0), ENOTEMPTY);
	TV_ERR(cairn_rename(fs, "/d/e/g", "/d", 0), ENOTEMPTY);
	TV_ERR(cairn_rename(fs, "/d/e", "/d", 0), ENOTEMPTY);
	tv_expect_str(fs, "/d/f", "x");
	tv_expect_str(fs, "/d/e/g", "y");
}

static void test_rename_to_itself_is_noop(void **state)
{
	cairn_fs *fs = TV_FS(state);
	tv_put_str(fs, "/f", "same");
	TV_OK(cairn_mkdir(fs, "/d", 0755));
	tv_put_str(fs, "/d/g", "inner");
	TV_OK(cairn_rename(fs, "/f", "/f", 0));
	tv_expect_str(fs, "/f", "same");
	TV_OK(cairn_rename(fs, "/d", "/d", 0));
	tv_expect_str(fs, "/d/g", "inner");
	TV_EQ(nlink_of(fs, "/d"), 2);
	TV_EQ(nlink_of(fs, "/f"), 1);
}

static void test_rename_between_hard_links_is_noop(void **state)
{
	cairn_fs *fs = TV_FS(state);
	tv_put_str(fs, "/a", "one inode");
	TV_OK(cairn_link(fs, "/a", "/b"));
	/* POSIX: same file -> do nothing, both names stay. */
	TV_OK(cairn_rename(fs, "/a", "/b", 0));
	assert_true(tv_exists(fs, "/a"));
	assert_true(tv_exists(fs, "/b"));
	TV_EQ(nlink_of(fs, "/a"), 2);
}

static void test_rename_noreplace(void **state)
{
	cairn_fs *fs = TV_FS(state);
	tv_put_str(fs, "/a", "A");
	tv_put_str(fs, "/b", "B");
	TV_ERR(cairn_rename(fs, "/a", "/b", CAIRN_RENAME_NOREPLACE), EEXIST);
	tv_expect_str(fs, "/a", "A");
	tv_expect_str(fs, "/b", "B");
	TV_OK(cairn_mkdir(fs, "/d", 0755));
	TV_ERR(cairn_rename(fs, "/a", "/d", CAIRN_RENAME_NOREPLACE), EEXIST);
	TV_OK(cairn_symlink(fs, "/nowhere", "/dangling"));
	TV_ERR(cairn_rename(fs, "/a", "/dangling", CAIRN_RENAME_NOREPLACE), EEXIST);
	TV_OK(cairn_rename(fs, "/a", "/c", CAIRN_RENAME_NOREPLACE));
	assert_false(tv_exists(fs, "/a"));
	tv_expect_str(fs, "/c", "A");
}

static void test_rename_invalid_flags_einval(void **state)
{
	cairn_fs *fs = TV_FS(state);
	tv_put_str(fs, "/a", "A");
	TV_ERR(cairn_rename(fs, "/a", "/b", 0x80000000u), EINVAL);
	assert_true(tv_exists(fs, "/a"));
	assert_false(tv_exists(fs, "/b"));
}

static void test_rename_errors(void **state)
{
	cairn_fs *fs = TV_FS(state);
	tv_put_str(fs, "/f", "x");
	TV_ERR(cairn_rename(fs, "/missing", "/x", 0), ENOENT);
	TV_ERR(cairn_rename(fs, "/f", "/nodir/x", 0), ENOENT);
	TV_ERR(cairn_rename(fs, "/f", "/f/x", 0), ENOTDIR);
	TV_ERR(cairn_rename(fs, "/f/x", "/y", 0), ENOTDIR);
	TV_ERR(cairn_rename(fs, "", "/y", 0), ENOENT);
	TV_ERR(cairn_rename(fs, "/f", "", 0), ENOENT);
	/* Both parents are resolved before the source's name: a new path
	 * through a file outranks a missing source. */
	TV_ERR(cairn_rename(fs, "/missing", "/f/x", 0), ENOTDIR);
	tv_expect_str(fs, "/f", "x");
}

static void test_rename_dir_across_parents_updates_dotdot(void **state)
{
	cairn_fs *fs = TV_FS(state);
	TV_OK(cairn_mkdir(fs, "/a", 0755));
	TV_OK(cairn_mkdir(fs, "/b", 0755));
	TV_OK(cairn_mkdir(fs, "/a/d", 0755));
	tv_put_str(fs, "/a/d/f", "deep");
	TV_EQ(nlink_of(fs, "/a"), 3);
	TV_EQ(nlink_of(fs, "/b"), 2);
	TV_OK(cairn_rename(fs, "/a/d", "/b/d", 0));
	TV_EQ(nlink_of(fs, "/a"), 2);
	TV_EQ(nlink_of(fs, "/b"), 3);
	TV_EQ(tv_stat(fs, "/b/d/..").st_ino, ino_of(fs, "/b"));
	tv_expect_str(fs, "/b/d/../d/f", "deep");
	/* The emptied source parent can be removed. */
	TV_OK(cairn_rmdir(fs, "/a"));
}

static void test_rename_symlink_moves_link(void **state)
{
	cairn_fs *fs = TV_FS(state);
	tv_put_str(fs, "/f", "target");
	TV_OK(cairn_symlink(fs, "f", "/l"));
	TV_OK(cairn_rename(fs, "/l", "/l2", 0));
	assert_true(S_ISLNK(tv_lstat(fs, "/l2").st_mode));
	tv_expect_str(fs, "/f", "target");
	tv_expect_str(fs, "/l2", "target");
	assert_false(tv_exists(fs, "/l"));
}

/* ---- mkdir / rmdir ------------------------------------------------------- */

static void test_mkdir_creates_directory(void **state)
{
	cairn_fs *fs = TV_FS(state);
	nlink_t root_links = nlink_of(fs, "/");
	TV_OK(cairn_mkdir(fs, "/d", 0750));
	struct stat st = tv_stat(fs, "/d");
	assert_true(S_ISDIR(st.st_mode));
	TV_EQ(st.st_mode & 07777, 0750);
	TV_EQ(st.st_nlink, 2);
	TV_EQ(nlink_of(fs, "/"), root_links + 1);
	TV_OK(cairn_mkdir(fs, "/d/e", 0700));
	TV_EQ(nlink_of(fs, "/d"), 3);
	TV_EQ(tv_stat(fs, "/d/e/..").st_ino, st.st_ino);
	TV_EQ(tv_stat(fs, "/d/.").st_ino, st.st_ino);
}

static void test_mkdir_errors(void **state)
{
	cairn_fs *fs = TV_FS(state);
	TV_OK(cairn_mkdir(fs, "/d", 0755));
	tv_put_str(fs, "/f", "x");
	TV_OK(cairn_symlink(fs, "/nowhere", "/dangling"));
	TV_ERR(cairn_mkdir(fs, "/d", 0755), EEXIST);
	TV_ERR(cairn_mkdir(fs, "/f", 0755), EEXIST);
	TV_ERR(cairn_mkdir(fs, "/dangling", 0755), EEXIST);
	assert_false(tv_exists(fs, "/nowhere"));
	TV_ERR(cairn_mkdir(fs, "/", 0755), EEXIST);
	TV_ERR(cairn_mkdir(fs, "/no/such", 0755), ENOENT);
	TV_ERR(cairn_mkdir(fs, "/f/sub", 0755), ENOTDIR);
	TV_ERR(cairn_mkdir(fs, "", 0755), ENOENT);
}

static void test_mkdir_trailing_slash(void **state)
{
	cairn_fs *fs = TV_FS(state);
	TV_OK(cairn_mkdir(fs, "/d/", 0755));
	assert_true(S_ISDIR(tv_stat(fs, "/d").st_mode));
	TV_OK(cairn_mkdir(fs, "/d/e//", 0755));
	assert_true(S_ISDIR(tv_stat(fs, "/d/e").st_mode));
	TV_OK(cairn_rmdir(fs, "/d/e/"));
	assert_false(tv_exists(fs, "/d/e"));
}

static void test_rmdir_removes_empty_directory(void **state)
{
	cairn_fs *fs = TV_FS(state);
	nlink_t root_links = nlink_of(fs, "/");
	TV_OK(cairn_mkdir(fs, "/d", 0755));
	TV_OK(cairn_rmdir(fs, "/d"));
	assert_false(tv_exists(fs, "/d"));
	TV_EQ(nlink_of(fs, "/"), root_links);
	/* The name can be reused at once, as either type. */
	tv_put_str(fs, "/d", "now a file");
	tv_expect_str(fs, "/d", "now a file");
}

static void test_rmdir_errors(void **state)
{
	cairn_fs *fs = TV_FS(state);
	TV_OK(cairn_mkdir(fs, "/d", 0755));
	tv_put_str(fs, "/d/f", "x");
	tv_put_str(fs, "/f", "x");
	TV_OK(cairn_mkdir(fs, "/e", 0755));
	TV_OK(cairn_symlink(fs, "/e", "/le"));
	TV_ERR(cairn_rmdir(fs, "/d"), ENOTEMPTY);
	TV_ERR(cairn_rmdir(fs, "/missing"), ENOENT);
	TV_ERR(cairn_rmdir(fs, "/f"), ENOTDIR);
	TV_ERR(cairn_rmdir(fs, "/f/x"), ENOTDIR);
	TV_ERR(cairn_rmdir(fs, "/le"), ENOTDIR); /* a symlink to a dir is not a dir */
	TV_ERR(cairn_rmdir(fs, "/"), EBUSY);     /* ext4: EBUSY */
	TV_ERR(cairn_rmdir(fs, "/e/."), EINVAL); /* last component "." */
	TV_ERR(cairn_rmdir(fs, ""), ENOENT);
	assert_true(tv_exists(fs, "/d/f"));
	assert_true(tv_exists(fs, "/e"));
	/* A directory that only held a removed subdirectory is empty. */
	TV_OK(cairn_mkdir(fs, "/e/sub", 0755));
	TV_OK(cairn_rmdir(fs, "/e/sub"));
	TV_OK(cairn_rmdir(fs, "/e"));
}

/* ---- link ---------------------------------------------------------------- */

static void test_link_counts_and_shares_data(void **state)
{
	cairn_fs *fs = TV_FS(state);
	TV_OK(cairn_mkdir(fs, "/d", 0755));
	tv_put_str(fs, "/a", "shared");
	TV_OK(cairn_link(fs, "/a", "/d/b"));
	TV_OK(cairn_link(fs, "/d/b", "/c"));
	TV_EQ(nlink_of(fs, "/a"), 3);
	TV_EQ(nlink_of(fs, "/d/b"), 3);
	TV_EQ(ino_of(fs, "/a"), ino_of(fs, "/c"));
	/* A write through one name is seen through the others. */
	int fd = TV_OK(cairn_open(fs, "/c", O_WRONLY | O_APPEND));
	TV_EQ(cairn_write(fs, fd, "!", 1), 1);
	TV_OK(cairn_close(fs, fd));
	tv_expect_str(fs, "/a", "shared!");
	tv_expect_str(fs, "/d/b", "shared!");
	TV_OK(cairn_unlink(fs, "/a"));
	TV_EQ(nlink_of(fs, "/c"), 2);
	TV_OK(cairn_unlink(fs, "/c"));
	TV_EQ(nlink_of(fs, "/d/b"), 1);
	tv_expect_str(fs, "/d/b", "shared!");
	/* A directory's link count is not changed by links to files in it. */
	TV_EQ(nlink_of(fs, "/d"), 2);
}

static void test_link_errors(void **state)
{
	cairn_fs *fs = TV_FS(state);
	TV_OK(cairn_mkdir(fs, "/d", 0755));
	tv_put_str(fs, "/f", "x");
	tv_put_str(fs, "/g", "y");
	TV_ERR(cairn_link(fs, "/d", "/d2"), EPERM);
	/* The new name is checked before the source's type, as Linux does. */
	TV_ERR(cairn_link(fs, "/d", "/f"), EEXIST);
	TV_ERR(cairn_link(fs, "/d", "/d"), EEXIST);
	TV_ERR(cairn_link(fs, "/d", "/f/h"), ENOTDIR);
	/* But the source is resolved whole first. */
	TV_ERR(cairn_link(fs, "/missing", "/f/h"), ENOENT);
	TV_ERR(cairn_link(fs, "/f", "/g"), EEXIST);
	TV_ERR(cairn_link(fs, "/f", "/d"), EEXIST);
	TV_ERR(cairn_link(fs, "/missing", "/h"), ENOENT);
	TV_ERR(cairn_link(fs, "/f", "/nodir/h"), ENOENT);
	TV_ERR(cairn_link(fs, "/f", "/g/h"), ENOTDIR);
	TV_EQ(nlink_of(fs, "/f"), 1);
	assert_false(tv_exists(fs, "/d2"));
}

static void test_link_to_symlink_links_the_symlink(void **state)
{
	cairn_fs *fs = TV_FS(state);
	tv_put_str(fs, "/f", "x");
	TV_OK(cairn_symlink(fs, "/f", "/l"));
	/* Linux link() does not follow a symlink in the source. */
	TV_OK(cairn_link(fs, "/l", "/l2"));
	struct stat st = tv_lstat(fs, "/l2");
	assert_true(S_ISLNK(st.st_mode));
	TV_EQ(st.st_ino, ino_of(fs, "/l"));
	TV_EQ(st.st_nlink, 2);
	TV_EQ(nlink_of(fs, "/f"), 1);
}

/* ---- symlink / readlink -------------------------------------------------- */

static void test_symlink_readlink(void **state)
{
	cairn_fs *fs = TV_FS(state);
	const char *target = "some/relative/../target";
	TV_OK(cairn_symlink(fs, target, "/l"));
	struct stat st = tv_lstat(fs, "/l");
	assert_true(S_ISLNK(st.st_mode));
	TV_EQ(st.st_size, strlen(target));
	char buf[64];
	memset(buf, 'X', sizeof(buf));
	TV_EQ(cairn_readlink(fs, "/l", buf, sizeof(buf)), strlen(target));
	assert_memory_equal(buf, target, strlen(target));
	TV_EQ(buf[strlen(target)], 'X'); /* no terminating NUL is written */
	TV_ERR(cairn_symlink(fs, "other", "/l"), EEXIST);
	TV_ERR(cairn_symlink(fs, "x", "/nodir/l"), ENOENT);
	/* Dangling: stat fails, lstat works. */
	TV_ERR(cairn_stat(fs, "/l", &st), ENOENT);
}

static void test_symlink_long_targets(void **state)
{
	cairn_fs *fs = TV_FS(state);
	char *t = malloc(4097);
	char *buf = malloc(5000);
	for (int i = 0; i < 4096; i++)
		t[i] = (char)('a' + i % 26);
	/* 4095 bytes is the longest target (PATH_MAX with its NUL). */
	t[4095] = '\0';
	TV_OK(cairn_symlink(fs, t, "/long"));
	TV_EQ(tv_lstat(fs, "/long").st_size, 4095);
	TV_EQ(cairn_readlink(fs, "/long", buf, 5000), 4095);
	assert_memory_equal(buf, t, 4095);
	t[4095] = 'x';
	t[4096] = '\0';
	TV_ERR(cairn_symlink(fs, t, "/toolong"), ENAMETOOLONG);
	assert_false(tv_exists(fs, "/toolong"));
	/* A target of a few hundred bytes (past any inline area). */
	t[300] = '\0';
	TV_OK(cairn_symlink(fs, t, "/mid"));
	TV_EQ(cairn_readlink(fs, "/mid", buf, 5000), 300);
	assert_memory_equal(buf, t, 300);
	free(t);
	free(buf);
}

static void test_readlink_truncates(void **state)
{
	cairn_fs *fs = TV_FS(state);
	TV_OK(cairn_symlink(fs, "0123456789", "/l"));
	char buf[16];
	memset(buf, 'X', sizeof(buf));
	TV_EQ(cairn_readlink(fs, "/l", buf, 4), 4);
	assert_memory_equal(buf, "0123", 4);
	TV_EQ(buf[4], 'X');
	TV_EQ(cairn_readlink(fs, "/l", buf, 10), 10);
	assert_memory_equal(buf, "0123456789", 10);
}

static void test_readlink_errors(void **state)
{
	cairn_fs *fs = TV_FS(state);
	tv_put_str(fs, "/f", "x");
	TV_OK(cairn_mkdir(fs, "/d", 0755));
	char buf[16];
	TV_ERR(cairn_readlink(fs, "/f", buf, sizeof(buf)), EINVAL);
	TV_ERR(cairn_readlink(fs, "/d", buf, sizeof(buf)), EINVAL);
	TV_ERR(cairn_readlink(fs, "/", buf, sizeof(buf)), EINVAL);
	TV_ERR(cairn_readlink(fs, "/missing", buf, sizeof(buf)), ENOENT);
	TV_ERR(cairn_readlink(fs, "", buf, sizeof(buf)), ENOENT);
}

static void test_symlink_empty_target_enoent(void **state)
{
	cairn_fs *fs = TV_FS(state);
	/* Linux refuses an empty target with ENOENT. */
	TV_ERR(cairn_symlink(fs, "", "/l"), ENOENT);
	assert_false(tv_exists(fs, "/l"));
}

/* ---- path resolution ----------------------------------------------------- */

static char *repeat(char c, size_t n)
{
	char *s = malloc(n + 1);
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

static void test_name_255_ok_256_enametoolong(void **state)
{
	cairn_fs *fs = TV_FS(state);
	char *n255 = repeat('n', 255), *n256 = repeat('m', 256);
	char p255[300], p256[300], pd[600];
	snprintf(p255, sizeof(p255), "/%s", n255);
	snprintf(p256, sizeof(p256), "/%s", n256);
	tv_put_str(fs, p255, "max");
	tv_expect_str(fs, p255, "max");
	struct stat st;
	TV_ERR(cairn_open(fs, p256, O_CREAT | O_WRONLY, 0644), ENAMETOOLONG);
	TV_ERR(cairn_mkdir(fs, p256, 0755), ENAMETOOLONG);
	TV_ERR(cairn_stat(fs, p256, &st), ENAMETOOLONG);
	TV_ERR(cairn_lstat(fs, p256, &st), ENAMETOOLONG);
	TV_ERR(cairn_symlink(fs, "x", p256), ENAMETOOLONG);
	TV_ERR(cairn_link(fs, p255, p256), ENAMETOOLONG);
	TV_ERR(cairn_rename(fs, p255, p256, 0), ENAMETOOLONG);
	TV_ERR(cairn_unlink(fs, p256), ENAMETOOLONG);
	/* In the middle of a path too. */
	snprintf(pd, sizeof(pd), "%s/x", p256);
	TV_ERR(cairn_stat(fs, pd, &st), ENAMETOOLONG);
	tv_expect_str(fs, p255, "max");
	free(n255);
	free(n256);
}

static void test_path_over_4096_enametoolong(void **state)
{
	cairn_fs *fs = TV_FS(state);
	/* 4096 bytes or more (no room for the NUL within PATH_MAX). */
	char *p = malloc(5000);
	size_t len = 0;
	while (len < 4096) {
		len += (size_t)snprintf(p + len, 5000 - len, "/%s", "abcdefghij");
	}
	p[4096] = '\0';
	struct stat st;
	TV_ERR(cairn_stat(fs, p, &st), ENAMETOOLONG);
	TV_ERR(cairn_open(fs, p, O_CREAT | O_WRONLY, 0644), ENAMETOOLONG);
	TV_ERR(cairn_mkdir(fs, p, 0755), ENAMETOOLONG);
	TV_ERR(cairn_unlink(fs, p), ENAMETOOLONG);
	free(p);
}

static void test_long_path_under_limit_works(void **state)
{
	cairn_fs *fs = TV_FS(state);
	/* 15 levels of 250-byte names: a path of ~3800 bytes, real dirs. */
	char *comp = repeat('q', 250);
	char *p = malloc(4096);
	size_t len = 0;
	for (int i = 0; i < 15; i++) {
		len += (size_t)snprintf(p + len, 4096 - len, "/%s", comp);
		TV_OK(cairn_mkdir(fs, p, 0755));
	}
	snprintf(p + len, 4096 - len, "/file");
	tv_put_str(fs, p, "deep");
	tv_expect_str(fs, p, "deep");
	assert_true(strlen(p) < 4095);
	free(comp);
	free(p);
}

static void test_path_through_file_enotdir(void **state)
{
	cairn_fs *fs = TV_FS(state);
	tv_put_str(fs, "/f", "x");
	struct stat st;
	TV_ERR(cairn_stat(fs, "/f/x", &st), ENOTDIR);
	TV_ERR(cairn_lstat(fs, "/f/x", &st), ENOTDIR);
	TV_ERR(cairn_open(fs, "/f/x", O_RDONLY), ENOTDIR);
	TV_ERR(cairn_open(fs, "/f/x", O_CREAT | O_WRONLY, 0644), ENOTDIR);
	TV_ERR(cairn_mkdir(fs, "/f/d", 0755), ENOTDIR);
	TV_ERR(cairn_symlink(fs, "t", "/f/l"), ENOTDIR);
	TV_ERR_NULL(cairn_opendir(fs, "/f/x"), ENOTDIR);
	/* A symlink to a file in the middle of a path too. */
	TV_OK(cairn_symlink(fs, "/f", "/lf"));
	TV_ERR(cairn_stat(fs, "/lf/x", &st), ENOTDIR);
}

static void test_trailing_slash_on_file_enotdir(void **state)
{
	cairn_fs *fs = TV_FS(state);
	tv_put_str(fs, "/f", "x");
	struct stat st;
	TV_ERR(cairn_stat(fs, "/f/", &st), ENOTDIR);
	TV_ERR(cairn_open(fs, "/f/", O_RDONLY), ENOTDIR);
	TV_ERR(cairn_unlink(fs, "/f/"), ENOTDIR);
	/* A directory accepts them. */
	TV_OK(cairn_mkdir(fs, "/d", 0755));
	TV_OK(cairn_stat(fs, "/d/", &st));
	TV_OK(cairn_stat(fs, "/d//", &st));
	tv_expect_str(fs, "/f", "x");
}

static void test_symlink_loop_eloop(void **state)
{
	cairn_fs *fs = TV_FS(state);
	TV_OK(cairn_symlink(fs, "/b", "/a"));
	TV_OK(cairn_symlink(fs, "/a", "/b"));
	TV_OK(cairn_symlink(fs, "self", "/self"));
	struct stat st;
	TV_ERR(cairn_stat(fs, "/a", &st), ELOOP);
	TV_ERR(cairn_stat(fs, "/self", &st), ELOOP);
	TV_ERR(cairn_stat(fs, "/a/x", &st), ELOOP);
	TV_ERR(cairn_open(fs, "/a", O_RDONLY), ELOOP);
	TV_ERR(cairn_open(fs, "/a", O_CREAT | O_WRONLY, 0644), ELOOP);
	TV_ERR(cairn_mkdir(fs, "/a/x", 0755), ELOOP);
	TV_ERR_NULL(cairn_opendir(fs, "/b"), ELOOP);
	/* lstat and readlink do not follow. */
	TV_OK(cairn_lstat(fs, "/a", &st));
	char buf[8];
	TV_EQ(cairn_readlink(fs, "/a", buf, sizeof(buf)), 2);
}

static void test_symlink_chain_resolves(void **state)
{
	cairn_fs *fs = TV_FS(state);
	tv_put_str(fs, "/f", "end of chain");
	/* /l0 -> /l1 -> ... -> /l9 -> /f: ten links, well under the limit. */
	for (int i = 0; i < 10; i++) {
		char name[16], target[16];
		snprintf(name, sizeof(name), "/l%d", i);
		if (i == 9)
			snprintf(target, sizeof(target), "/f");
		else
			snprintf(target, sizeof(target), "l%d", i + 1);
		TV_OK(cairn_symlink(fs, target, name));
	}
	tv_expect_str(fs, "/l0", "end of chain");
}

static void test_empty_path_and_missing_parents_enoent(void **state)
{
	cairn_fs *fs = TV_FS(state);
	struct stat st;
	TV_ERR(cairn_stat(fs, "", &st), ENOENT);
	TV_ERR(cairn_lstat(fs, "", &st), ENOENT);
	TV_ERR(cairn_open(fs, "", O_RDONLY), ENOENT);
	TV_ERR(cairn_open(fs, "", O_CREAT | O_WRONLY, 0644), ENOENT);
	TV_ERR(cairn_truncate(fs, "", 0), ENOENT);
	TV_ERR(cairn_chmod(fs, "", 0644), ENOENT);
	TV_ERR_NULL(cairn_opendir(fs, ""), ENOENT);
	TV_ERR(cairn_stat(fs, "/a/b/c", &st), ENOENT);
	TV_ERR(cairn_open(fs, "/a/b/c", O_CREAT | O_WRONLY, 0644), ENOENT);
	TV_ERR(cairn_mkdir(fs, "/a/b", 0755), ENOENT);
	TV_ERR(cairn_symlink(fs, "x", "/a/b"), ENOENT);
	assert_false(tv_exists(fs, "/a"));
}

static void test_symlinks_in_middle_of_path(void **state)
{
	cairn_fs *fs = TV_FS(state);
	TV_OK(cairn_mkdir(fs, "/real", 0755));
	TV_OK(cairn_mkdir(fs, "/real/dir", 0755));
	tv_put_str(fs, "/real/dir/f", "found");
	TV_OK(cairn_symlink(fs, "/real", "/abs"));    /* absolute target */
	TV_OK(cairn_symlink(fs, "real", "/rel"));     /* relative target */
	TV_OK(cairn_mkdir(fs, "/other", 0755));
	TV_OK(cairn_symlink(fs, "../real/dir", "/other/up")); /* relative with .. */
	TV_OK(cairn_symlink(fs, "/abs/dir", "/twice"));   /* a link through a link */
	tv_expect_str(fs, "/abs/dir/f", "found");
	tv_expect_str(fs, "/rel/dir/f", "found");
	tv_expect_str(fs, "/other/up/f", "found");
	tv_expect_str(fs, "/twice/f", "found");
	ino_t ino = ino_of(fs, "/real/dir/f");
	TV_EQ(tv_stat(fs, "/abs/dir/f").st_ino, ino);
	/* Creating through a symlinked directory creates in the target. */
	tv_put_str(fs, "/rel/dir/new", "made via link");
	tv_expect_str(fs, "/real/dir/new", "made via link");
	TV_OK(cairn_mkdir(fs, "/abs/dir/sub", 0755));
	assert_true(S_ISDIR(tv_lstat(fs, "/real/dir/sub").st_mode));
	/* Operations on the last component act on the link, not the target. */
	TV_OK(cairn_rename(fs, "/twice/new", "/twice/renamed", 0));
	tv_expect_str(fs, "/real/dir/renamed", "made via link");
}

static void test_dotdot_after_symlink_is_physical(void **state)
{
	cairn_fs *fs = TV_FS(state);
	TV_OK(cairn_mkdir(fs, "/real", 0755));
	TV_OK(cairn_mkdir(fs, "/real/dir", 0755));
	TV_OK(cairn_symlink(fs, "/real/dir", "/lnk"));
	/* "/lnk/.." is the parent of the target, not "/". */
	TV_EQ(tv_stat(fs, "/lnk/..").st_ino, ino_of(fs, "/real"));
}

static void test_symlinks_resolve_within_volume(void **state)
{
	cairn_fs *fs = TV_FS(state);
	TV_OK(cairn_mkdir(fs, "/real", 0755));
	tv_put_str(fs, "/real/f", "inside");
	/* ".." above the root stays at the root, as in a chroot. */
	TV_OK(cairn_symlink(fs, "../../../../real", "/esc"));
	TV_OK(cairn_symlink(fs, "/../../real", "/esc2"));
	tv_expect_str(fs, "/esc/f", "inside");
	tv_expect_str(fs, "/esc2/f", "inside");
	tv_expect_str(fs, "/../../real/f", "inside");
	TV_EQ(tv_stat(fs, "/..").st_ino, ino_of(fs, "/"));
}

static void test_dot_and_slash_components(void **state)
{
	cairn_fs *fs = TV_FS(state);
	TV_OK(cairn_mkdir(fs, "/a", 0755));
	TV_OK(cairn_mkdir(fs, "/a/b", 0755));
	tv_put_str(fs, "/a/b/f", "x");
	tv_expect_str(fs, "/a/./b/../b/f", "x");
	tv_expect_str(fs, "//a///b//f", "x");
	tv_expect_str(fs, "/./a/b/./f", "x");
	/* ".." through a missing name fails even if it would cancel out. */
	struct stat st;
	TV_ERR(cairn_stat(fs, "/a/missing/../b/f", &st), ENOENT);
	TV_EQ(tv_stat(fs, "/.").st_ino, ino_of(fs, "/"));
}

static void test_creat_through_dangling_symlink(void **state)
{
	cairn_fs *fs = TV_FS(state);
	TV_OK(cairn_mkdir(fs, "/d", 0755));
	TV_OK(cairn_symlink(fs, "/d/target", "/l"));
	/* Linux: O_CREAT without O_EXCL follows the link and creates its target. */
	int fd = TV_OK(cairn_open(fs, "/l", O_CREAT | O_WRONLY, 0644));
	TV_EQ(cairn_write(fs, fd, "via", 3), 3);
	TV_OK(cairn_close(fs, fd));
	tv_expect_str(fs, "/d/target", "via");
	assert_true(S_ISLNK(tv_lstat(fs, "/l").st_mode));
}

#define T(f) cmocka_unit_test_setup_teardown(f, tv_setup, tv_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_unlink_removes_name),
		T(test_unlink_errors),
		T(test_unlink_symlink_keeps_target),
		T(test_rename_file_to_new_name),
		T(test_rename_file_over_file),
		T(test_rename_over_file_with_other_link),
		T(test_rename_replaced_file_open_fd_survives),
		T(test_rename_dir_over_empty_dir),
		T(test_rename_dir_over_nonempty_dir_enotempty),
		T(test_rename_file_over_dir_eisdir),
		T(test_rename_dir_over_file_enotdir),
		T(test_rename_dir_into_own_subtree_einval),
		T(test_rename_onto_ancestor_enotempty),
		T(test_rename_to_itself_is_noop),
		T(test_rename_between_hard_links_is_noop),
		T(test_rename_noreplace),
		T(test_rename_invalid_flags_einval),
		T(test_rename_errors),
		T(test_rename_dir_across_parents_updates_dotdot),
		T(test_rename_symlink_moves_link),
		T(test_mkdir_creates_directory),
		T(test_mkdir_errors),
		T(test_mkdir_trailing_slash),
		T(test_rmdir_removes_empty_directory),
		T(test_rmdir_errors),
		T(test_link_counts_and_shares_data),
		T(test_link_errors),
		T(test_link_to_symlink_links_the_symlink),
		T(test_symlink_readlink),
		T(test_symlink_long_targets),
		T(test_readlink_truncates),
		T(test_readlink_errors),
		T(test_symlink_empty_target_enoent),
		T(test_name_255_ok_256_enametoolong),
		T(test_path_over_4096_enametoolong),
		T(test_long_path_under_limit_works),
		T(test_path_through_file_enotdir),
		T(test_trailing_slash_on_file_enotdir),
		T(test_symlink_loop_eloop),
		T(test_symlink_chain_resolves),
		T(test_empty_path_and_missing_parents_enoent),
		T(test_symlinks_in_middle_of_path),
		T(test_dotdot_after_symlink_is_physical),
		T(test_symlinks_resolve_within_volume),
		T(test_dot_and_slash_components),
		T(test_creat_through_dangling_symlink),
	};
	return cmocka_run_group_tests_name("api_names", tests, NULL, NULL);
}
