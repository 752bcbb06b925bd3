/*
 * test_api_robust.c - the native API under misuse: a close racing calls on
 * the same fd in other threads, NULL buffers, paths and handles, counts too
 * large for a ssize_t result, and lseek offsets that would overflow.
 *
 * Each case is one a caller can make by mistake; the answer must be the
 * errno Linux gives (EBADF, EFAULT, EINVAL, EOVERFLOW), never a crash or a
 * read or write outside the caller's buffer.  Run it under ASan+UBSan.
 */
#include "testvol.h"

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* ---- close racing calls on the same fd ----------------------------------- */

#define RACE_ROUNDS 1000 /* open/close cycles */
#define RACE_WORKERS 2
#define RACE_CALLS 2000 /* calls per worker and round, at most */

/*
 * Each round the main thread opens a file, publishes its fd and waits until
 * every worker has begun calling on it; then it closes the fd under them.
 * The workers call without pause, so the close lands among calls in flight,
 * and stop a few calls after it (or after RACE_CALLS calls in the round).
 * The old fd number then gives EBADF, or the next round's file once the
 * number is reused: both are correct answers.
 */
struct race {
	cairn_fs *fs;
	atomic_int fd;      /* this round's fd */
	atomic_int round;   /* 1, 2, ...: set after fd */
	atomic_int started; /* workers that have begun this round */
	atomic_int stop;
	atomic_long closes;                   /* rounds closed */
	atomic_long calls, ok, ebadf, across; /* across: a close happened meanwhile */
	atomic_int bad_errno;                 /* first unexpected errno, 0 if none */
};

static void note(struct race *r, long closes, long rc)
{
	atomic_fetch_add(&r->calls, 1);
	if (atomic_load(&r->closes) != closes)
		atomic_fetch_add(&r->across, 1);
	if (rc >= 0) {
		atomic_fetch_add(&r->ok, 1);
		return;
	}
	if (errno == EBADF) {
		atomic_fetch_add(&r->ebadf, 1);
		return;
	}
	int zero = 0;
	atomic_compare_exchange_strong(&r->bad_errno, &zero, errno);
}

/* One call of every kind that takes an fd, in turn. */
static void race_call(struct race *r, int fd, unsigned k)
{
	cairn_fs *fs = r->fs;
	char buf[512];
	struct stat st;
	long closes = atomic_load(&r->closes);
	memset(buf, 'w', sizeof(buf));
	switch (k % 8) {
	case 0:
		note(r, closes, cairn_pread(fs, fd, buf, sizeof(buf), 0));
		break;
	case 1:
		note(r, closes, cairn_pwrite(fs, fd, buf, sizeof(buf), 4096));
		break;
	case 2:
		note(r, closes, cairn_lseek(fs, fd, 100, SEEK_CUR));
		break;
	case 3:
		note(r, closes, cairn_read(fs, fd, buf, sizeof(buf)));
		break;
	case 4:
		note(r, closes, cairn_write(fs, fd, buf, 100));
		break;
	case 5:
		note(r, closes, cairn_fstat(fs, fd, &st));
		break;
	case 6:
		note(r, closes, cairn_ftruncate(fs, fd, 8192));
		break;
	case 7:
		note(r, closes, cairn_fsync(fs, fd));
		break;
	}
}

static void *race_worker(void *arg)
{
	struct race *r = arg;
	unsigned k = 0;
	int round = 0, fd = -1, calls = RACE_CALLS, after = 0;
	while (!atomic_load(&r->stop)) {
		if (atomic_load(&r->round) != round) {
			round = atomic_load(&r->round);
			fd = atomic_load(&r->fd);
			calls = after = 0;
			atomic_fetch_add(&r->started, 1);
		}
		if (calls >= RACE_CALLS || after > 2) {
			sched_yield();
			continue;
		}
		after += atomic_load(&r->closes) >= round; /* this round's fd is closed */
		calls++;
		race_call(r, fd, k++);
	}
	return NULL;
}

/* Every other round unlinks the file while it is open, so that the last
 * reference, wherever it is dropped, releases an orphan. */
static void race_round(struct race *r, int i)
{
	cairn_fs *fs = r->fs;
	char path[32];
	snprintf(path, sizeof(path), "/race%d", i % 4);
	int fd = TV_OK(cairn_open(fs, path, O_CREAT | O_RDWR, 0644));
	if (i % 2)
		TV_OK(cairn_unlink(fs, path));
	atomic_store(&r->started, 0);
	atomic_store(&r->fd, fd);
	atomic_store(&r->round, i + 1);
	while (atomic_load(&r->started) < RACE_WORKERS)
		sched_yield();
	TV_OK(cairn_close(fs, fd));
	atomic_fetch_add(&r->closes, 1);
	TV_ERR(cairn_close(fs, fd), EBADF);
}

static void test_close_races_calls_on_the_same_fd(void **state)
{
	cairn_fs *fs = TV_FS(state);
	struct statvfs before, after;
	TV_OK(cairn_statvfs(fs, "/", &before));
	struct race r = {.fs = fs};
	atomic_init(&r.fd, -1);
	pthread_t t[RACE_WORKERS];
	for (int i = 0; i < RACE_WORKERS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, race_worker, &r), 0);
	for (int i = 0; i < RACE_ROUNDS; i++)
		race_round(&r, i);
	atomic_store(&r.stop, 1);
	for (int i = 0; i < RACE_WORKERS; i++)
		pthread_join(t[i], NULL);
	if (atomic_load(&r.bad_errno))
		fail_msg("a call racing close failed with %s (expected success or EBADF)",
		         tv_errname(atomic_load(&r.bad_errno)));
	print_message("%ld calls: %ld succeeded, %ld EBADF, %ld overlapped a close\n",
	              (long)r.calls, (long)r.ok, (long)r.ebadf, (long)r.across);
	assert_true(r.ok > 0);
	/* Every unlinked file was released by its last reference: the inodes
	 * in use are the names left. */
	for (int i = 0; i < 4; i++) {
		char path[32];
		snprintf(path, sizeof(path), "/race%d", i);
		cairn_unlink(fs, path);
	}
	TV_OK(cairn_statvfs(fs, "/", &after));
	TV_EQ(after.f_ffree, before.f_ffree);
	/* The fd numbers all came back. */
	int fd = TV_OK(cairn_open(fs, "/after", O_CREAT | O_RDWR, 0644));
	TV_EQ(fd, 0);
	TV_OK(cairn_close(fs, fd));
}

/* A file closed while another fd of it stays open keeps its data and the
 * other fd keeps working. */
static void test_close_leaves_other_fds_of_the_file(void **state)
{
	cairn_fs *fs = TV_FS(state);
	int a = TV_OK(cairn_open(fs, "/f", O_CREAT | O_RDWR, 0644));
	int b = TV_OK(cairn_open(fs, "/f", O_RDWR));
	TV_OK(cairn_unlink(fs, "/f"));
	TV_EQ(cairn_pwrite(fs, a, "hello", 5, 0), 5);
	TV_OK(cairn_close(fs, a));
	TV_ERR(cairn_pread(fs, a, (char[8]){0}, 5, 0), EBADF);
	char buf[8] = {0};
	TV_EQ(cairn_pread(fs, b, buf, 5, 0), 5);
	assert_string_equal(buf, "hello");
	TV_OK(cairn_close(fs, b));
}

/* ---- NULL buffers -------------------------------------------------------- */

static void test_null_buffer_with_bytes_is_efault(void **state)
{
	cairn_fs *fs = TV_FS(state);
	tv_put_str(fs, "/f", "0123456789");
	int fd = TV_OK(cairn_open(fs, "/f", O_RDWR));
	TV_ERR(cairn_write(fs, fd, NULL, 10), EFAULT);
	TV_ERR(cairn_pwrite(fs, fd, NULL, 10, 0), EFAULT);
	TV_ERR(cairn_read(fs, fd, NULL, 10), EFAULT);
	TV_ERR(cairn_pread(fs, fd, NULL, 10, 0), EFAULT);
	TV_ERR(cairn_fstat(fs, fd, NULL), EFAULT);
	/* Nothing to move: valid calls that move nothing. */
	TV_EQ(cairn_write(fs, fd, NULL, 0), 0);
	TV_EQ(cairn_pwrite(fs, fd, NULL, 0, 0), 0);
	TV_EQ(cairn_read(fs, fd, NULL, 0), 0);
	TV_EQ(cairn_pread(fs, fd, NULL, 0, 0), 0);
	TV_EQ(cairn_lseek(fs, fd, 0, SEEK_CUR), 0);
	TV_OK(cairn_close(fs, fd));
	tv_expect_str(fs, "/f", "0123456789");

	TV_ERR(cairn_stat(fs, "/f", NULL), EFAULT);
	TV_ERR(cairn_lstat(fs, "/f", NULL), EFAULT);
	TV_ERR(cairn_statvfs(fs, "/", NULL), EFAULT);
	TV_ERR(cairn_info(fs, NULL), EFAULT);
	TV_OK(cairn_symlink(fs, "/f", "/l"));
	TV_ERR(cairn_readlink(fs, "/l", NULL, 10), EFAULT);
}

static void test_null_xattr_buffers(void **state)
{
	cairn_fs *fs = TV_FS(state);
	tv_put_str(fs, "/f", "x");
	TV_OK(cairn_setxattr(fs, "/f", "user.a", "1234", 4, 0));
	TV_ERR(cairn_listxattr(fs, "/f", NULL, 10), EFAULT);
	TV_ERR(cairn_getxattr(fs, "/f", "user.a", NULL, 10), EFAULT);
	TV_ERR(cairn_setxattr(fs, "/f", "user.b", NULL, 4, 0), EFAULT);
	/* Size queries, and an empty value given as NULL (setxattr(2) takes
	 * it: the value is not read when size is 0). */
	TV_EQ(cairn_listxattr(fs, "/f", NULL, 0), sizeof("user.a"));
	TV_EQ(cairn_getxattr(fs, "/f", "user.a", NULL, 0), 4);
	TV_OK(cairn_setxattr(fs, "/f", "user.empty", NULL, 0, 0));
	TV_EQ(cairn_getxattr(fs, "/f", "user.empty", NULL, 0), 0);
	TV_EQ(cairn_listxattr(fs, "/f", NULL, 0), sizeof("user.a") + sizeof("user.empty"));
}

/* ---- NULL paths and names ------------------------------------------------ */

static void test_null_path_is_efault(void **state)
{
	cairn_fs *fs = TV_FS(state);
	tv_put_str(fs, "/f", "x");
	struct stat st;
	struct statvfs sv;
	char buf[16];
	TV_ERR(cairn_open(fs, NULL, O_RDONLY), EFAULT);
	TV_ERR(cairn_open(fs, NULL, O_CREAT | O_RDWR, 0644), EFAULT);
	TV_ERR(cairn_stat(fs, NULL, &st), EFAULT);
	TV_ERR(cairn_lstat(fs, NULL, &st), EFAULT);
	TV_ERR(cairn_truncate(fs, NULL, 0), EFAULT);
	TV_ERR(cairn_unlink(fs, NULL), EFAULT);
	TV_ERR(cairn_rename(fs, NULL, "/g", 0), EFAULT);
	TV_ERR(cairn_rename(fs, "/f", NULL, 0), EFAULT);
	TV_ERR(cairn_mkdir(fs, NULL, 0755), EFAULT);
	TV_ERR(cairn_rmdir(fs, NULL), EFAULT);
	TV_ERR(cairn_link(fs, NULL, "/g"), EFAULT);
	TV_ERR(cairn_link(fs, "/f", NULL), EFAULT);
	TV_ERR(cairn_symlink(fs, NULL, "/g"), EFAULT);
	TV_ERR(cairn_symlink(fs, "/f", NULL), EFAULT);
	TV_ERR(cairn_readlink(fs, NULL, buf, sizeof(buf)), EFAULT);
	TV_ERR_NULL(cairn_opendir(fs, NULL), EFAULT);
	TV_ERR(cairn_chmod(fs, NULL, 0600), EFAULT);
	TV_ERR(cairn_chown(fs, NULL, 0, 0), EFAULT);
	TV_ERR(cairn_utimens(fs, NULL, NULL), EFAULT);
	TV_ERR(cairn_statvfs(fs, NULL, &sv), EFAULT);
	TV_ERR(cairn_setxattr(fs, NULL, "user.a", "1", 1, 0), EFAULT);
	TV_ERR(cairn_getxattr(fs, NULL, "user.a", buf, sizeof(buf)), EFAULT);
	TV_ERR(cairn_listxattr(fs, NULL, buf, sizeof(buf)), EFAULT);
	TV_ERR(cairn_removexattr(fs, NULL, "user.a"), EFAULT);
	TV_ERR(cairn_setxattr(fs, "/f", NULL, "1", 1, 0), EFAULT);
	TV_ERR(cairn_getxattr(fs, "/f", NULL, buf, sizeof(buf)), EFAULT);
	TV_ERR(cairn_removexattr(fs, "/f", NULL), EFAULT);
	/* Nothing changed: the root holds /f alone. */
	TV_EQ(tv_stat(fs, "/").st_nlink, 2);
	tv_expect_str(fs, "/f", "x");
	assert_false(tv_exists(fs, "/g"));
}

/* A NULL file-system handle is EINVAL, whatever the call. */
static void test_null_fs_is_einval(void **state)
{
	(void)state;
	struct stat st;
	char buf[16];
	TV_ERR(cairn_open(NULL, "/f", O_RDONLY), EINVAL);
	TV_ERR(cairn_close(NULL, 0), EINVAL);
	TV_ERR(cairn_read(NULL, 0, buf, 1), EINVAL);
	TV_ERR(cairn_write(NULL, 0, buf, 1), EINVAL);
	TV_ERR(cairn_pread(NULL, 0, buf, 1, 0), EINVAL);
	TV_ERR(cairn_pwrite(NULL, 0, buf, 1, 0), EINVAL);
	TV_ERR(cairn_lseek(NULL, 0, 0, SEEK_SET), EINVAL);
	TV_ERR(cairn_fsync(NULL, 0), EINVAL);
	TV_ERR(cairn_sync(NULL), EINVAL);
	TV_ERR(cairn_ftruncate(NULL, 0, 0), EINVAL);
	TV_ERR(cairn_truncate(NULL, "/f", 0), EINVAL);
	TV_ERR(cairn_fstat(NULL, 0, &st), EINVAL);
	TV_ERR(cairn_fallocate(NULL, 0, 0, 0, 1), EINVAL);
	TV_ERR(cairn_stat(NULL, "/f", &st), EINVAL);
	TV_ERR(cairn_lstat(NULL, "/f", &st), EINVAL);
	TV_ERR(cairn_unlink(NULL, "/f"), EINVAL);
	TV_ERR(cairn_rename(NULL, "/f", "/g", 0), EINVAL);
	TV_ERR(cairn_mkdir(NULL, "/d", 0755), EINVAL);
	TV_ERR(cairn_rmdir(NULL, "/d"), EINVAL);
	TV_ERR(cairn_link(NULL, "/f", "/g"), EINVAL);
	TV_ERR(cairn_symlink(NULL, "/f", "/g"), EINVAL);
	TV_ERR(cairn_readlink(NULL, "/l", buf, sizeof(buf)), EINVAL);
	TV_ERR_NULL(cairn_opendir(NULL, "/"), EINVAL);
	TV_ERR(cairn_chmod(NULL, "/f", 0600), EINVAL);
	TV_ERR(cairn_chown(NULL, "/f", 0, 0), EINVAL);
	TV_ERR(cairn_utimens(NULL, "/f", NULL), EINVAL);
	TV_ERR(cairn_setxattr(NULL, "/f", "user.a", "1", 1, 0), EINVAL);
	TV_ERR(cairn_getxattr(NULL, "/f", "user.a", buf, sizeof(buf)), EINVAL);
	TV_ERR(cairn_listxattr(NULL, "/f", buf, sizeof(buf)), EINVAL);
	TV_ERR(cairn_removexattr(NULL, "/f", "user.a"), EINVAL);
	TV_ERR(cairn_unmount(NULL), EINVAL);
	TV_ERR(cairn_digest(NULL), EINVAL);
	TV_ERR(cairn_migrate(NULL), EINVAL);
	/* Directory streams are their own handle: EBADF, as for a bad DIR *. */
	TV_ERR_NULL(cairn_readdir(NULL), EBADF);
	TV_ERR(cairn_closedir(NULL), EBADF);
}

/* ---- counts too large ---------------------------------------------------- */

static void test_count_above_ssize_max_is_einval(void **state)
{
	cairn_fs *fs = TV_FS(state);
	tv_put_str(fs, "/f", "0123456789");
	int fd = TV_OK(cairn_open(fs, "/f", O_RDWR));
	char *buf = malloc(16); /* on the heap, so ASan sees a read past it */
	assert_non_null(buf);
	memset(buf, 'z', 16);
	const size_t huge[] = {SIZE_MAX, (size_t)SSIZE_MAX + 1};
	for (int i = 0; i < 2; i++) {
		TV_ERR(cairn_write(fs, fd, buf, huge[i]), EINVAL);
		TV_ERR(cairn_pwrite(fs, fd, buf, huge[i], 0), EINVAL);
		TV_ERR(cairn_read(fs, fd, buf, huge[i]), EINVAL);
		TV_ERR(cairn_pread(fs, fd, buf, huge[i], 0), EINVAL);
	}
	TV_EQ(cairn_lseek(fs, fd, 0, SEEK_CUR), 0);
	TV_OK(cairn_close(fs, fd));
	free(buf);
	tv_expect_str(fs, "/f", "0123456789");
}

/* ---- lseek at the ends of off_t ------------------------------------------ */

static void test_lseek_overflow_is_checked_without_overflowing(void **state)
{
	cairn_fs *fs = TV_FS(state);
	tv_put_str(fs, "/f", "0123456789");
	int fd = TV_OK(cairn_open(fs, "/f", O_RDONLY));
	const off_t max = INT64_MAX;
	TV_EQ(cairn_lseek(fs, fd, max - 10, SEEK_SET), max - 10);
	TV_ERR(cairn_lseek(fs, fd, 100, SEEK_CUR), EOVERFLOW);
	TV_ERR(cairn_lseek(fs, fd, max, SEEK_CUR), EOVERFLOW);
	TV_EQ(cairn_lseek(fs, fd, 10, SEEK_CUR), max); /* exactly the largest */
	TV_ERR(cairn_lseek(fs, fd, 1, SEEK_CUR), EOVERFLOW);
	TV_EQ(cairn_lseek(fs, fd, 0, SEEK_CUR), max); /* a failed seek moves nothing */
	TV_ERR(cairn_lseek(fs, fd, max, SEEK_END), EOVERFLOW);
	TV_EQ(cairn_lseek(fs, fd, max - 10, SEEK_END), max);
	TV_EQ(cairn_lseek(fs, fd, 5, SEEK_SET), 5);
	TV_ERR(cairn_lseek(fs, fd, INT64_MIN, SEEK_CUR), EINVAL);
	TV_ERR(cairn_lseek(fs, fd, -6, SEEK_CUR), EINVAL);
	TV_ERR(cairn_lseek(fs, fd, INT64_MIN, SEEK_END), EINVAL);
	TV_ERR(cairn_lseek(fs, fd, -1, SEEK_SET), EINVAL);
	TV_EQ(cairn_lseek(fs, fd, -5, SEEK_CUR), 0);
	TV_OK(cairn_close(fs, fd));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_close_races_calls_on_the_same_fd, tv_setup,
	                                    tv_teardown),
	    cmocka_unit_test_setup_teardown(test_close_leaves_other_fds_of_the_file, tv_setup,
	                                    tv_teardown),
	    cmocka_unit_test_setup_teardown(test_null_buffer_with_bytes_is_efault, tv_setup,
	                                    tv_teardown),
	    cmocka_unit_test_setup_teardown(test_null_xattr_buffers, tv_setup, tv_teardown),
	    cmocka_unit_test_setup_teardown(test_null_path_is_efault, tv_setup, tv_teardown),
	    cmocka_unit_test(test_null_fs_is_einval),
	    cmocka_unit_test_setup_teardown(test_count_above_ssize_max_is_einval, tv_setup,
	                                    tv_teardown),
	    cmocka_unit_test_setup_teardown(test_lseek_overflow_is_checked_without_overflowing,
	                                    tv_setup, tv_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
