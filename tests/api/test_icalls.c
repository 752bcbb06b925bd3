/*
 * test_icalls.c - the calls by inode number (src/libfs/icalls.h) that the
 * FUSE front end uses: the same operations as the path API, entered by
 * directory inode and name, returning negative errno values.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>

#include "libfs/icalls.h"
#include "testvol.h"

static const struct icaller who = {1234, 5678};

static void test_create_lookup_getattr(void **state)
{
	cairn_fs *fs = TV_FS(state);
	struct stat st, st2;
	int fd;
	assert_int_equal(ic_create(fs, &who, CAIRN_ROOT_INO, "f", 0640, O_WRONLY, &fd, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	TV_EQ(st.st_uid, 1234);
	TV_EQ(st.st_gid, 5678);
	TV_EQ(cairn_pwrite(fs, fd, "hello", 5, 0), 5);
	TV_OK(cairn_close(fs, fd));
	assert_int_equal(ic_lookup(fs, CAIRN_ROOT_INO, "f", &st2), 0);
	TV_EQ(st2.st_ino, st.st_ino);
	TV_EQ(st2.st_size, 5);
	assert_int_equal(ic_lookup(fs, CAIRN_ROOT_INO, "missing", &st2), -ENOENT);
	assert_int_equal(ic_lookup(fs, st.st_ino, "x", &st2), -ENOTDIR);
	char longname[300];
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = 0;
	assert_int_equal(ic_lookup(fs, CAIRN_ROOT_INO, longname, &st2), -ENAMETOOLONG);
	assert_int_equal(ic_create(fs, &who, CAIRN_ROOT_INO, "f", 0640, O_WRONLY | O_EXCL, &fd, &st),
			 -EEXIST);
	assert_int_equal(ic_getattr(fs, st.st_ino, &st2), 0);
	TV_EQ(st2.st_mode & 07777, 0640);
}

static void test_mknod_kinds(void **state)
{
	cairn_fs *fs = TV_FS(state);
	struct stat d, st;
	assert_int_equal(ic_mknod(fs, &who, CAIRN_ROOT_INO, "d", S_IFDIR | 0755, 0, &d), 0);
	assert_true(S_ISDIR(d.st_mode));
	TV_EQ(d.st_nlink, 2);
	assert_int_equal(ic_mknod(fs, &who, d.st_ino, "fifo", S_IFIFO | 0600, 0, &st), 0);
	assert_true(S_ISFIFO(st.st_mode));
	assert_int_equal(ic_mknod(fs, &who, d.st_ino, "sock", S_IFSOCK | 0600, 0, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(ic_mknod(fs, &who, d.st_ino, "chr", S_IFCHR | 0600, makedev(1, 3), &st), 0);
	TV_EQ(st.st_rdev, makedev(1, 3));
	assert_int_equal(ic_symlink(fs, &who, d.st_ino, "ln", "../f", &st), 0);
	char buf[16];
	TV_EQ(ic_readlink(fs, st.st_ino, buf, sizeof(buf)), 4);
	assert_memory_equal(buf, "../f", 4);
	assert_int_equal(ic_rmdir(fs, CAIRN_ROOT_INO, "d"), -ENOTEMPTY);
	for (const char *n = "fifo"; n; n = NULL)
		assert_int_equal(ic_unlink(fs, d.st_ino, n), 0);
	assert_int_equal(ic_unlink(fs, d.st_ino, "sock"), 0);
	assert_int_equal(ic_unlink(fs, d.st_ino, "chr"), 0);
	assert_int_equal(ic_unlink(fs, d.st_ino, "ln"), 0);
	assert_int_equal(ic_unlink(fs, CAIRN_ROOT_INO, "d"), -EISDIR);
	assert_int_equal(ic_rmdir(fs, CAIRN_ROOT_INO, "d"), 0);
	assert_int_equal(ic_lookup(fs, CAIRN_ROOT_INO, "d", &st), -ENOENT);
}

static void test_link_rename_setattr(void **state)
{
	cairn_fs *fs = TV_FS(state);
	struct stat st, st2;
	assert_int_equal(ic_mknod(fs, &who, CAIRN_ROOT_INO, "a", S_IFREG | 0644, 0, &st), 0);
	assert_int_equal(ic_link(fs, st.st_ino, CAIRN_ROOT_INO, "b", &st2), 0);
	TV_EQ(st2.st_nlink, 2);
	assert_int_equal(ic_rename(fs, CAIRN_ROOT_INO, "a", CAIRN_ROOT_INO, "c", 0), 0);
	assert_int_equal(ic_rename(fs, CAIRN_ROOT_INO, "c", CAIRN_ROOT_INO, "b",
				   CAIRN_RENAME_NOREPLACE),
			 -EEXIST);
	struct stat in = {0};
	in.st_size = 10000;
	in.st_mode = 0600;
	assert_int_equal(ic_setattr(fs, st.st_ino, IC_SET_SIZE | IC_SET_MODE, &in, &st2), 0);
	TV_EQ(st2.st_size, 10000);
	TV_EQ(st2.st_mode & 07777, 0600);
	in.st_mtim.tv_sec = 1600000000;
	in.st_mtim.tv_nsec = 7;
	assert_int_equal(ic_setattr(fs, st.st_ino, IC_SET_MTIME, &in, &st2), 0);
	TV_EQ(st2.st_mtim.tv_sec, 1600000000);
	TV_EQ(st2.st_mtim.tv_nsec, 7);
	int fd = ic_open(fs, st.st_ino, O_RDWR | O_TRUNC);
	assert_true(fd >= 0);
	TV_OK(cairn_close(fs, fd));
	assert_int_equal(ic_getattr(fs, st.st_ino, &st2), 0);
	TV_EQ(st2.st_size, 0);
}

struct seen {
	int count, dots;
	uint64_t last;
};

static int count_entry(void *arg, const char *name, uint64_t ino, unsigned char type,
		       uint64_t next)
{
	struct seen *s = arg;
	if (!strcmp(name, ".") || !strcmp(name, ".."))
		s->dots++;
	else
		s->count++;
	assert_true(next > s->last);
	s->last = next;
	return 0;
}

static int stop_after_ten(void *arg, const char *name, uint64_t ino, unsigned char type,
			  uint64_t next)
{
	struct seen *s = arg;
	s->count++;
	s->last = next;
	return s->count == 10;
}

static void test_readdir_cookies(void **state)
{
	cairn_fs *fs = TV_FS(state);
	struct stat d, st;
	assert_int_equal(ic_mknod(fs, &who, CAIRN_ROOT_INO, "dir", S_IFDIR | 0755, 0, &d), 0);
	char name[32];
	for (int i = 0; i < 500; i++) {
		snprintf(name, sizeof(name), "e%03d", i);
		assert_int_equal(ic_mknod(fs, &who, d.st_ino, name, S_IFREG | 0644, 0, &st), 0);
	}
	struct seen all = {0};
	assert_int_equal(ic_readdir(fs, d.st_ino, 0, count_entry, &all), 0);
	TV_EQ(all.count, 500);
	TV_EQ(all.dots, 2);
	/* Resume from a cookie: the rest, exactly once. */
	struct seen first = {0}, rest = {0};
	assert_int_equal(ic_readdir(fs, d.st_ino, 0, stop_after_ten, &first), 0);
	assert_int_equal(ic_readdir(fs, d.st_ino, first.last, count_entry, &rest), 0);
	TV_EQ(first.count + rest.count + rest.dots, 502);
	assert_int_equal(ic_readdir(fs, st.st_ino, 0, count_entry, &rest), -ENOTDIR);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_create_lookup_getattr, tv_setup, tv_teardown),
		cmocka_unit_test_setup_teardown(test_mknod_kinds, tv_setup, tv_teardown),
		cmocka_unit_test_setup_teardown(test_link_rename_setattr, tv_setup, tv_teardown),
		cmocka_unit_test_setup_teardown(test_readdir_cookies, tv_setup, tv_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
