/*
 * test_api_xattr.c - extended attributes through the native API: set, get,
 * list, remove, XATTR_CREATE/XATTR_REPLACE, the errno cases Linux gives,
 * persistence across a remount, and the space freed with the inode.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "testvol.h"

#define XCREATE 1
#define XREPLACE 2

static void test_set_get_list_remove(void **state)
{
	cairn_fs *fs = TV_FS(state);
	tv_put_str(fs, "/f", "x");
	TV_OK(cairn_setxattr(fs, "/f", "user.color", "blue", 4, 0));
	TV_OK(cairn_setxattr(fs, "/f", "user.empty", "", 0, 0));
	char buf[64];
	TV_EQ(cairn_getxattr(fs, "/f", "user.color", buf, sizeof(buf)), 4);
	assert_memory_equal(buf, "blue", 4);
	TV_EQ(cairn_getxattr(fs, "/f", "user.color", NULL, 0), 4); /* size query */
	TV_EQ(cairn_getxattr(fs, "/f", "user.empty", buf, sizeof(buf)), 0);
	TV_ERR(cairn_getxattr(fs, "/f", "user.color", buf, 2), ERANGE);
	TV_ERR(cairn_getxattr(fs, "/f", "user.none", buf, sizeof(buf)), ENODATA);
	ssize_t n = TV_OK(cairn_listxattr(fs, "/f", buf, sizeof(buf)));
	TV_EQ(n, (ssize_t)strlen("user.color") + 1 + (ssize_t)strlen("user.empty") + 1);
	TV_EQ(cairn_listxattr(fs, "/f", NULL, 0), n);
	TV_ERR(cairn_listxattr(fs, "/f", buf, 3), ERANGE);
	/* Replace with a longer value, then a shorter one. */
	TV_OK(cairn_setxattr(fs, "/f", "user.color", "ultramarine", 11, 0));
	TV_EQ(cairn_getxattr(fs, "/f", "user.color", buf, sizeof(buf)), 11);
	TV_OK(cairn_setxattr(fs, "/f", "user.color", "red", 3, XREPLACE));
	TV_EQ(cairn_getxattr(fs, "/f", "user.color", buf, sizeof(buf)), 3);
	assert_memory_equal(buf, "red", 3);
	TV_OK(cairn_removexattr(fs, "/f", "user.color"));
	TV_ERR(cairn_removexattr(fs, "/f", "user.color"), ENODATA);
	TV_ERR(cairn_getxattr(fs, "/f", "user.color", buf, sizeof(buf)), ENODATA);
}

static void test_flags_and_errors(void **state)
{
	cairn_fs *fs = TV_FS(state);
	tv_put_str(fs, "/f", "x");
	TV_ERR(cairn_setxattr(fs, "/f", "user.a", "1", 1, XREPLACE), ENODATA);
	TV_OK(cairn_setxattr(fs, "/f", "user.a", "1", 1, XCREATE));
	TV_ERR(cairn_setxattr(fs, "/f", "user.a", "2", 1, XCREATE), EEXIST);
	TV_ERR(cairn_setxattr(fs, "/f", "user.a", "2", 1, 4), EINVAL);
	TV_ERR(cairn_setxattr(fs, "/f", "nonamespace", "2", 1, 0), EOPNOTSUPP);
	TV_ERR(cairn_setxattr(fs, "/f", "", "2", 1, 0), ERANGE);
	TV_ERR(cairn_setxattr(fs, "/f", "user.", "2", 1, 0), EINVAL); /* as Linux's VFS */
	char longname[300];
	memcpy(longname, "user.", 5);
	memset(longname + 5, 'n', sizeof(longname) - 6);
	longname[sizeof(longname) - 1] = 0;
	TV_ERR(cairn_setxattr(fs, "/f", longname, "2", 1, 0), ERANGE);
	static char big[70000];
	TV_ERR(cairn_setxattr(fs, "/f", "user.big", big, sizeof(big), 0), E2BIG);
	TV_ERR(cairn_setxattr(fs, "/missing", "user.a", "1", 1, 0), ENOENT);
	/* The largest value cairn keeps. */
	TV_OK(cairn_setxattr(fs, "/f", "user.max", big, 1024, 0));
	TV_ERR2(cairn_setxattr(fs, "/f", "user.over", big, 1025, 0), ENOSPC, E2BIG);
}

static void test_on_dirs_symlinks_and_ctime(void **state)
{
	cairn_fs *fs = TV_FS(state);
	TV_OK(cairn_mkdir(fs, "/d", 0755));
	tv_put_str(fs, "/d/f", "x");
	TV_OK(cairn_symlink(fs, "/d/f", "/ln"));
	struct stat before = tv_stat(fs, "/d/f");
	tv_sleep_ms(5);
	TV_OK(cairn_setxattr(fs, "/ln", "user.via", "link", 4, 0)); /* follows the link */
	char buf[16];
	TV_EQ(cairn_getxattr(fs, "/d/f", "user.via", buf, sizeof(buf)), 4);
	struct stat after = tv_stat(fs, "/d/f");
	assert_true(tv_ts_ns(&after.st_ctim) > tv_ts_ns(&before.st_ctim));
	TV_EQ(tv_ts_ns(&after.st_mtim), tv_ts_ns(&before.st_mtim));
	TV_OK(cairn_setxattr(fs, "/d", "user.dir", "yes", 3, 0));
	TV_EQ(cairn_getxattr(fs, "/d", "user.dir", buf, sizeof(buf)), 3);
}

static void test_persist_and_free(void **state)
{
	struct testvol *tv = *state;
	cairn_fs *fs = tv->fs;
	tv_put_str(fs, "/keep", "x");
	char name[32], value[200];
	for (int i = 0; i < 200; i++) { /* more than one tree leaf */
		snprintf(name, sizeof(name), "user.attr-%03d", i);
		memset(value, 'a' + i % 26, sizeof(value));
		TV_OK(cairn_setxattr(fs, "/keep", name, value, sizeof(value), 0));
	}
	char *dump = tv_dump(fs, TV_DUMP_ALL);
	TV_OK(tv_unmount(tv));
	fs = TV_NN(tv_mount(tv, NULL));
	char *again = tv_dump(fs, TV_DUMP_ALL);
	tv_assert_dump_eq(dump, again, "xattrs across a remount");
	free(dump);
	free(again);
	char buf[256];
	TV_EQ(cairn_getxattr(fs, "/keep", "user.attr-123", buf, sizeof(buf)), 200);
	TV_EQ(buf[0], 'a' + 123 % 26);
	/* Unlinking the file frees its attribute tree. */
	TV_OK(cairn_digest(fs));
	struct statvfs sv1, sv2;
	TV_OK(cairn_statvfs(fs, "/", &sv1));
	TV_OK(cairn_unlink(fs, "/keep"));
	TV_OK(cairn_digest(fs));
	TV_OK(cairn_digest(fs)); /* freed blocks return after the checkpoint that frees them */
	TV_OK(cairn_statvfs(fs, "/", &sv2));
	assert_true(sv2.f_bfree > sv1.f_bfree);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_set_get_list_remove, tv_setup, tv_teardown),
	    cmocka_unit_test_setup_teardown(test_flags_and_errors, tv_setup, tv_teardown),
	    cmocka_unit_test_setup_teardown(test_on_dirs_symlinks_and_ctime, tv_setup, tv_teardown),
	    cmocka_unit_test_setup_teardown(test_persist_and_free, tv_setup, tv_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
