/*
 * test_api_dirs.c - directory streams and directory link counts through the
 * native API: opendir/readdir/closedir list ".", ".." and every entry exactly
 * once with the right d_type and d_ino, 10,000 entries, readdir while
 * entries are unlinked or created, unusual names, the ENOTDIR/ENOENT errors
 * of opendir, and st_nlink of directories (2 + subdirectories).
 */
#include "testvol.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* One listing: names (strdup'd) with d_type and d_ino. */
struct listing {
	size_t n;
	char **names;
	unsigned char *types;
	uint64_t *inos;
};

static void list_free(struct listing *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->names[i]);
	free(l->names);
	free(l->types);
	free(l->inos);
	memset(l, 0, sizeof(*l));
}

static struct listing list_dir(cairn_fs *fs, const char *path)
{
	struct listing l = {0};
	size_t cap = 0;
	cairn_dir *d = TV_NN(cairn_opendir(fs, path));
	for (;;) {
		errno = 0;
		struct cairn_dirent *de = cairn_readdir(d);
		if (!de) {
			if (errno != 0)
				fail_msg("readdir(%s): %s", path, tv_errname(errno));
			break;
		}
		if (memchr(de->d_name, '\0', sizeof(de->d_name)) == NULL)
			fail_msg("readdir(%s): d_name not NUL-terminated", path);
		if (l.n == cap) {
			cap = cap ? cap * 2 : 64;
			l.names = realloc(l.names, cap * sizeof(*l.names));
			l.types = realloc(l.types, cap * sizeof(*l.types));
			l.inos = realloc(l.inos, cap * sizeof(*l.inos));
		}
		l.names[l.n] = strdup(de->d_name);
		l.types[l.n] = de->d_type;
		l.inos[l.n] = de->d_ino;
		l.n++;
	}
	TV_OK(cairn_closedir(d));
	return l;
}

/* Index of name in l, failing if it appears more than once; -1 if absent. */
static long find_once(const struct listing *l, const char *name)
{
	long at = -1;
	for (size_t i = 0; i < l->n; i++) {
		if (strcmp(l->names[i], name) == 0) {
			if (at >= 0)
				fail_msg("readdir returned \"%s\" twice", name);
			at = (long)i;
		}
	}
	return at;
}

static void expect_entry(const struct listing *l, const char *name, unsigned char type, uint64_t ino)
{
	long i = find_once(l, name);
	if (i < 0)
		fail_msg("readdir did not return \"%s\"", name);
	if (l->types[i] != type)
		fail_msg("\"%s\": d_type %u, expected %u", name, l->types[i], type);
	if (l->inos[i] != ino)
		fail_msg("\"%s\": d_ino %llu, expected %llu", name, (unsigned long long)l->inos[i],
			 (unsigned long long)ino);
}

static void test_readdir_lists_each_entry_once_with_type(void **state)
{
	cairn_fs *fs = TV_FS(state);
	TV_OK(cairn_mkdir(fs, "/top", 0755));
	tv_put_str(fs, "/top/file", "x");
	TV_OK(cairn_mkdir(fs, "/top/dir", 0755));
	TV_OK(cairn_symlink(fs, "file", "/top/link"));
	TV_OK(cairn_symlink(fs, "/nowhere", "/top/dangling"));
	TV_OK(cairn_link(fs, "/top/file", "/top/hard"));
	struct listing l = list_dir(fs, "/top");
	TV_EQ(l.n, 7);
	expect_entry(&l, ".", DT_DIR, tv_stat(fs, "/top").st_ino);
	expect_entry(&l, "..", DT_DIR, tv_stat(fs, "/").st_ino);
	expect_entry(&l, "file", DT_REG, tv_lstat(fs, "/top/file").st_ino);
	expect_entry(&l, "hard", DT_REG, tv_lstat(fs, "/top/file").st_ino);
	expect_entry(&l, "dir", DT_DIR, tv_lstat(fs, "/top/dir").st_ino);
	expect_entry(&l, "link", DT_LNK, tv_lstat(fs, "/top/link").st_ino);
	expect_entry(&l, "dangling", DT_LNK, tv_lstat(fs, "/top/dangling").st_ino);
	list_free(&l);
}

static size_t count_subdirs(const struct listing *l)
{
	size_t n = 0;
	for (size_t i = 0; i < l->n; i++)
		if (l->types[i] == DT_DIR && strcmp(l->names[i], ".") != 0 &&
		    strcmp(l->names[i], "..") != 0)
			n++;
	return n;
}

static void test_readdir_root(void **state)
{
	cairn_fs *fs = TV_FS(state);
	struct listing l = list_dir(fs, "/");
	/* In the root, ".." is the root itself. */
	ino_t root = tv_stat(fs, "/").st_ino;
	expect_entry(&l, ".", DT_DIR, root);
	expect_entry(&l, "..", DT_DIR, root);
	size_t before = l.n;
	TV_EQ(tv_stat(fs, "/").st_nlink, 2 + count_subdirs(&l));
	list_free(&l);
	tv_put_str(fs, "/a", "x");
	TV_OK(cairn_mkdir(fs, "/b", 0755));
	l = list_dir(fs, "/");
	TV_EQ(l.n, before + 2);
	expect_entry(&l, "a", DT_REG, tv_stat(fs, "/a").st_ino);
	expect_entry(&l, "b", DT_DIR, tv_stat(fs, "/b").st_ino);
	TV_EQ(tv_stat(fs, "/").st_nlink, 2 + count_subdirs(&l));
	list_free(&l);
}

static void test_readdir_empty_and_emptied_dir(void **state)
{
	cairn_fs *fs = TV_FS(state);
	TV_OK(cairn_mkdir(fs, "/d", 0755));
	struct listing l = list_dir(fs, "/d");
	TV_EQ(l.n, 2);
	list_free(&l);
	tv_put_str(fs, "/d/a", "x");
	TV_OK(cairn_mkdir(fs, "/d/b", 0755));
	TV_OK(cairn_unlink(fs, "/d/a"));
	TV_OK(cairn_rmdir(fs, "/d/b"));
	l = list_dir(fs, "/d");
	TV_EQ(l.n, 2);
	assert_true(find_once(&l, ".") >= 0 && find_once(&l, "..") >= 0);
	list_free(&l);
	TV_OK(cairn_rmdir(fs, "/d"));
}

static void test_readdir_10000_entries(void **state)
{
	cairn_fs *fs = TV_FS(state);
	enum { N = 10000 };
	TV_OK(cairn_mkdir(fs, "/big", 0755));
	char path[64];
	for (int i = 0; i < N; i++) {
		snprintf(path, sizeof(path), "/big/entry-%05d", i);
		if (i % 10 == 0) {
			TV_OK(cairn_mkdir(fs, path, 0755));
		} else {
			int fd = TV_OK(cairn_open(fs, path, O_CREAT | O_EXCL | O_WRONLY, 0644));
			TV_OK(cairn_close(fs, fd));
		}
	}
	TV_EQ(tv_stat(fs, "/big").st_nlink, 2 + N / 10);
	static unsigned char seen[N];
	memset(seen, 0, sizeof(seen));
	size_t dots = 0, total = 0;
	cairn_dir *d = TV_NN(cairn_opendir(fs, "/big"));
	struct cairn_dirent *de;
	while ((de = cairn_readdir(d)) != NULL) {
		total++;
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) {
			dots++;
			continue;
		}
		int i;
		if (sscanf(de->d_name, "entry-%05d", &i) != 1 || i < 0 || i >= N)
			fail_msg("unexpected entry \"%s\"", de->d_name);
		if (seen[i]++)
			fail_msg("entry \"%s\" returned twice", de->d_name);
		unsigned char want = i % 10 == 0 ? DT_DIR : DT_REG;
		if (de->d_type != want)
			fail_msg("entry \"%s\": d_type %u, expected %u", de->d_name, de->d_type, want);
	}
	TV_OK(cairn_closedir(d));
	TV_EQ(dots, 2);
	TV_EQ(total, N + 2);
	for (int i = 0; i < N; i++)
		if (!seen[i])
			fail_msg("entry-%05d missing from readdir", i);
	/* Lookups in the big directory. */
	uint64_t rs = 77;
	for (int k = 0; k < 500; k++) {
		int i = (int)(tv_splitmix(&rs) % N);
		snprintf(path, sizeof(path), "/big/entry-%05d", i);
		struct stat st = tv_lstat(fs, path);
		assert_true(i % 10 == 0 ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode));
	}
	struct stat st;
	TV_ERR(cairn_stat(fs, "/big/entry-10000", &st), ENOENT);
	TV_ERR(cairn_rmdir(fs, "/big"), ENOTEMPTY);
	/* Remove everything; the directory must end up empty. */
	for (int i = 0; i < N; i++) {
		snprintf(path, sizeof(path), "/big/entry-%05d", i);
		if (i % 10 == 0)
			TV_OK(cairn_rmdir(fs, path));
		else
			TV_OK(cairn_unlink(fs, path));
	}
	TV_EQ(tv_stat(fs, "/big").st_nlink, 2);
	struct listing l = list_dir(fs, "/big");
	TV_EQ(l.n, 2);
	list_free(&l);
	TV_OK(cairn_rmdir(fs, "/big"));
}

static void test_readdir_while_unlinking(void **state)
{
	cairn_fs *fs = TV_FS(state);
	enum { N = 2000 };
	TV_OK(cairn_mkdir(fs, "/d", 0755));
	char path[64];
	for (int i = 0; i < N; i++) {
		snprintf(path, sizeof(path), "/d/f%d", i);
		int fd = TV_OK(cairn_open(fs, path, O_CREAT | O_WRONLY, 0644));
		TV_OK(cairn_close(fs, fd));
	}
	/* rm -r style: unlink each entry as it is returned, and also its
	 * partner (i ^ 1), which may not have been returned yet.  No entry may
	 * be returned twice; every entry is returned or had been unlinked. */
	static unsigned char seen[N], gone[N];
	memset(seen, 0, sizeof(seen));
	memset(gone, 0, sizeof(gone));
	cairn_dir *d = TV_NN(cairn_opendir(fs, "/d"));
	struct cairn_dirent *de;
	while ((de = cairn_readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		int i;
		if (sscanf(de->d_name, "f%d", &i) != 1 || i < 0 || i >= N)
			fail_msg("unexpected entry \"%s\"", de->d_name);
		if (seen[i]++)
			fail_msg("entry \"%s\" returned twice while unlinking", de->d_name);
		int pair[2] = {i, i ^ 1};
		for (int k = 0; k < 2; k++) {
			if (pair[k] >= N || gone[pair[k]])
				continue;
			snprintf(path, sizeof(path), "/d/f%d", pair[k]);
			TV_OK(cairn_unlink(fs, path));
			gone[pair[k]] = 1;
		}
	}
	TV_OK(cairn_closedir(d));
	for (int i = 0; i < N; i++)
		if (!seen[i] && !gone[i])
			fail_msg("f%d was neither returned nor unlinked", i);
	struct listing l = list_dir(fs, "/d");
	TV_EQ(l.n, 2);
	list_free(&l);
	TV_OK(cairn_rmdir(fs, "/d"));
}

static void test_readdir_while_creating(void **state)
{
	cairn_fs *fs = TV_FS(state);
	enum { N = 1000 };
	TV_OK(cairn_mkdir(fs, "/d", 0755));
	char path[64];
	for (int i = 0; i < N; i++) {
		snprintf(path, sizeof(path), "/d/old%d", i);
		int fd = TV_OK(cairn_open(fs, path, O_CREAT | O_WRONLY, 0644));
		TV_OK(cairn_close(fs, fd));
	}
	/* New entries may or may not be returned; the old ones exactly once. */
	static unsigned char seen_old[N], seen_new[2 * N];
	memset(seen_old, 0, sizeof(seen_old));
	memset(seen_new, 0, sizeof(seen_new));
	int created = 0;
	cairn_dir *d = TV_NN(cairn_opendir(fs, "/d"));
	struct cairn_dirent *de;
	while ((de = cairn_readdir(d)) != NULL) {
		int i;
		if (sscanf(de->d_name, "old%d", &i) == 1) {
			if (i < 0 || i >= N || seen_old[i]++)
				fail_msg("entry \"%s\" unexpected or returned twice", de->d_name);
		} else if (sscanf(de->d_name, "new%d", &i) == 1) {
			if (i < 0 || i >= created || seen_new[i]++)
				fail_msg("entry \"%s\" unexpected or returned twice", de->d_name);
		} else if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
			fail_msg("unexpected entry \"%s\"", de->d_name);
		}
		if (created < 2 * N) {
			for (int k = 0; k < 2; k++) {
				snprintf(path, sizeof(path), "/d/new%d", created++);
				int fd = TV_OK(cairn_open(fs, path, O_CREAT | O_WRONLY, 0644));
				TV_OK(cairn_close(fs, fd));
			}
		}
	}
	TV_OK(cairn_closedir(d));
	for (int i = 0; i < N; i++)
		if (!seen_old[i])
			fail_msg("old%d not returned", i);
	/* A fresh listing has everything. */
	struct listing l = list_dir(fs, "/d");
	TV_EQ(l.n, (size_t)(N + created + 2));
	list_free(&l);
}

static void test_readdir_unusual_names(void **state)
{
	cairn_fs *fs = TV_FS(state);
	static const char *names[] = {
		"with space", "tab\there", "new\nline", "\xc3\xbc" "ber-utf8", ".hidden",
		"...", "-dash", "a=b", "back\\slash", "\x01\x7f\xff", "x",
	};
	const size_t n = sizeof(names) / sizeof(names[0]);
	char name255[256];
	memset(name255, 'L', 255);
	name255[255] = '\0';
	TV_OK(cairn_mkdir(fs, "/d", 0755));
	char path[600];
	for (size_t i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "/d/%s", names[i]);
		tv_put_str(fs, path, names[i]);
	}
	snprintf(path, sizeof(path), "/d/%s", name255);
	tv_put_str(fs, path, "long");
	struct listing l = list_dir(fs, "/d");
	TV_EQ(l.n, n + 3);
	for (size_t i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "/d/%s", names[i]);
		expect_entry(&l, names[i], DT_REG, tv_lstat(fs, path).st_ino);
		tv_expect_str(fs, path, names[i]);
	}
	snprintf(path, sizeof(path), "/d/%s", name255);
	expect_entry(&l, name255, DT_REG, tv_lstat(fs, path).st_ino);
	list_free(&l);
}

static void test_two_streams_are_independent(void **state)
{
	cairn_fs *fs = TV_FS(state);
	TV_OK(cairn_mkdir(fs, "/d", 0755));
	char path[32];
	for (int i = 0; i < 50; i++) {
		snprintf(path, sizeof(path), "/d/%d", i);
		tv_put_str(fs, path, "");
	}
	cairn_dir *a = TV_NN(cairn_opendir(fs, "/d"));
	cairn_dir *b = TV_NN(cairn_opendir(fs, "/d"));
	int na = 0, nb = 0;
	/* Interleave: a reads two for each one b reads. */
	for (;;) {
		struct cairn_dirent *x = cairn_readdir(a);
		if (x)
			na++;
		if (x && cairn_readdir(a))
			na++;
		struct cairn_dirent *y = cairn_readdir(b);
		if (y)
			nb++;
		if (!x && !y)
			break;
	}
	while (cairn_readdir(b))
		nb++;
	TV_EQ(na, 52);
	TV_EQ(nb, 52);
	TV_OK(cairn_closedir(a));
	TV_OK(cairn_closedir(b));
}

static void test_opendir_errors(void **state)
{
	cairn_fs *fs = TV_FS(state);
	tv_put_str(fs, "/f", "x");
	TV_OK(cairn_symlink(fs, "/f", "/lf"));
	TV_OK(cairn_symlink(fs, "/missing", "/dangling"));
	TV_ERR_NULL(cairn_opendir(fs, "/f"), ENOTDIR);
	TV_ERR_NULL(cairn_opendir(fs, "/lf"), ENOTDIR);
	TV_ERR_NULL(cairn_opendir(fs, "/f/sub"), ENOTDIR);
	TV_ERR_NULL(cairn_opendir(fs, "/missing"), ENOENT);
	TV_ERR_NULL(cairn_opendir(fs, "/dangling"), ENOENT);
	TV_ERR_NULL(cairn_opendir(fs, "/no/such/dir"), ENOENT);
	TV_ERR_NULL(cairn_opendir(fs, ""), ENOENT);
}

static void test_opendir_through_symlink(void **state)
{
	cairn_fs *fs = TV_FS(state);
	TV_OK(cairn_mkdir(fs, "/real", 0755));
	tv_put_str(fs, "/real/inside", "x");
	TV_OK(cairn_symlink(fs, "real", "/ln"));
	struct listing l = list_dir(fs, "/ln");
	TV_EQ(l.n, 3);
	expect_entry(&l, "inside", DT_REG, tv_lstat(fs, "/real/inside").st_ino);
	expect_entry(&l, ".", DT_DIR, tv_stat(fs, "/real").st_ino);
	list_free(&l);
}

static void test_dir_nlink_counts_subdirectories(void **state)
{
	cairn_fs *fs = TV_FS(state);
	nlink_t root = tv_stat(fs, "/").st_nlink;
	TV_OK(cairn_mkdir(fs, "/d", 0755));
	TV_EQ(tv_stat(fs, "/d").st_nlink, 2);
	for (int i = 0; i < 5; i++) {
		char p[32];
		snprintf(p, sizeof(p), "/d/sub%d", i);
		TV_OK(cairn_mkdir(fs, p, 0755));
		snprintf(p, sizeof(p), "/d/file%d", i);
		tv_put_str(fs, p, "");
	}
	TV_OK(cairn_symlink(fs, "/d/sub0", "/d/lnk"));
	TV_EQ(tv_stat(fs, "/d").st_nlink, 2 + 5);
	TV_EQ(tv_stat(fs, "/").st_nlink, root + 1);
	TV_OK(cairn_rmdir(fs, "/d/sub4"));
	TV_EQ(tv_stat(fs, "/d").st_nlink, 2 + 4);
	TV_OK(cairn_rename(fs, "/d/sub3", "/moved", 0));
	TV_EQ(tv_stat(fs, "/d").st_nlink, 2 + 3);
	TV_EQ(tv_stat(fs, "/").st_nlink, root + 2);
	/* Renaming within the same directory changes nothing. */
	TV_OK(cairn_rename(fs, "/d/sub2", "/d/sub2b", 0));
	TV_EQ(tv_stat(fs, "/d").st_nlink, 2 + 3);
	/* Replacing an empty directory by rename: one fewer. */
	TV_OK(cairn_rename(fs, "/d/sub1", "/d/sub0", 0));
	TV_EQ(tv_stat(fs, "/d").st_nlink, 2 + 2);
	/* Files and unlinks of files do not count. */
	TV_OK(cairn_unlink(fs, "/d/file0"));
	TV_EQ(tv_stat(fs, "/d").st_nlink, 2 + 2);
}

#define T(f) cmocka_unit_test_setup_teardown(f, tv_setup, tv_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_readdir_lists_each_entry_once_with_type),
		T(test_readdir_root),
		T(test_readdir_empty_and_emptied_dir),
		T(test_readdir_10000_entries),
		T(test_readdir_while_unlinking),
		T(test_readdir_while_creating),
		T(test_readdir_unusual_names),
		T(test_two_streams_are_independent),
		T(test_opendir_errors),
		T(test_opendir_through_symlink),
		T(test_dir_nlink_counts_subdirectories),
	};
	return cmocka_run_group_tests_name("api_dirs", tests, NULL, NULL);
}
