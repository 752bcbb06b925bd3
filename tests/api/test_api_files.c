/*
 * test_api_files.c - file descriptors and file data through the native API:
 * open flags (O_CREAT, O_EXCL, O_TRUNC, O_APPEND, access modes, O_DIRECTORY,
 * O_NOFOLLOW), read/write/pread/pwrite including holes and EOF, lseek with
 * SEEK_SET/CUR/END/DATA/HOLE, truncate grow/shrink, a 1 TiB sparse file,
 * large writes, fsync/sync, and the EBADF/EISDIR/EINVAL error cases, all to
 * Linux (ext4) semantics.
 */
#include "testvol.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static int open_new(cairn_fs *fs, const char *path, int flags)
{
	return TV_OK(cairn_open(fs, path, O_CREAT | flags, 0644));
}

/* ---- open flags ---------------------------------------------------------- */

static void test_open_creat_creates_empty_file(void **state)
{
	cairn_fs *fs = TV_FS(state);
	int fd = TV_OK(cairn_open(fs, "/f", O_CREAT | O_WRONLY, 0640));
	assert_true(fd >= 0);
	struct stat st = tv_stat(fs, "/f");
	assert_true(S_ISREG(st.st_mode));
	TV_EQ(st.st_mode & 07777, 0640);
	TV_EQ(st.st_size, 0);
	TV_EQ(st.st_nlink, 1);
	TV_OK(cairn_close(fs, fd));
	/* O_CREAT with O_RDONLY also creates (Linux). */
	fd = TV_OK(cairn_open(fs, "/g", O_CREAT | O_RDONLY, 0600));
	TV_EQ(tv_stat(fs, "/g").st_mode & 07777, 0600);
	TV_OK(cairn_close(fs, fd));
}

static void test_open_creat_existing_keeps_content(void **state)
{
	cairn_fs *fs = TV_FS(state);
	tv_put_str(fs, "/f", "hello");
	int fd = TV_OK(cairn_open(fs, "/f", O_CREAT | O_RDWR, 0600));
	TV_OK(cairn_close(fs, fd));
	tv_expect_str(fs, "/f", "hello");
	/* The mode argument is ignored for an existing file. */
	TV_EQ(tv_stat(fs, "/f").st_mode & 07777, 0644);
}

static void test_open_missing_without_creat_enoent(void **state)
{
	cairn_fs *fs = TV_FS(state);
	TV_ERR(cairn_open(fs, "/nope", O_RDONLY), ENOENT);
	TV_ERR(cairn_open(fs, "/nope", O_RDWR), ENOENT);
	TV_ERR(cairn_open(fs, "/nodir/f", O_CREAT | O_WRONLY, 0644), ENOENT);
	assert_false(tv_exists(fs, "/nope"));
}

static void test_open_excl(void **state)
{
	cairn_fs *fs = TV_FS(state);
	int fd = TV_OK(cairn_open(fs, "/f", O_CREAT | O_EXCL | O_WRONLY, 0644));
	TV_OK(cairn_close(fs, fd));
	TV_ERR(cairn_open(fs, "/f", O_CREAT | O_EXCL | O_WRONLY, 0644), EEXIST);
	TV_OK(cairn_mkdir(fs, "/d", 0755));
	TV_ERR(cairn_open(fs, "/d", O_CREAT | O_EXCL | O_RDONLY, 0644), EEXIST);
	/* O_EXCL does not follow a symlink, even a dangling one. */
	TV_OK(cairn_symlink(fs, "/target", "/dangling"));
	TV_ERR(cairn_open(fs, "/dangling", O_CREAT | O_EXCL | O_WRONLY, 0644), EEXIST);
	assert_false(tv_exists(fs, "/target"));
}

static void test_open_trunc(void **state)
{
	cairn_fs *fs = TV_FS(state);
	tv_put_str(fs, "/f", "0123456789");
	int fd = TV_OK(cairn_open(fs, "/f", O_WRONLY | O_TRUNC));
	struct stat st;
	TV_OK(cairn_fstat(fs, fd, &st));
	TV_EQ(st.st_size, 0);
	TV_OK(cairn_write(fs, fd, "ab", 2));
	TV_OK(cairn_close(fs, fd));
	tv_expect_str(fs, "/f", "ab");
	fd = TV_OK(cairn_open(fs, "/f", O_RDWR | O_TRUNC));
	TV_OK(cairn_close(fs, fd));
	tv_expect_str(fs, "/f", "");
}

static void test_open_append_writes_at_end(void **state)
{
	cairn_fs *fs = TV_FS(state);
	tv_put_str(fs, "/f", "abc");
	int fd = TV_OK(cairn_open(fs, "/f", O_WRONLY | O_APPEND));
	TV_EQ(cairn_lseek(fs, fd, 0, SEEK_SET), 0);
	TV_EQ(cairn_write(fs, fd, "def", 3), 3);
	TV_EQ(cairn_lseek(fs, fd, 0, SEEK_CUR), 6);
	/* Another writer extends the file; the next append goes after it. */
	int fd2 = TV_OK(cairn_open(fs, "/f", O_WRONLY));
	TV_EQ(cairn_pwrite(fs, fd2, "XY", 2, 6), 2);
	TV_OK(cairn_close(fs, fd2));
	TV_EQ(cairn_lseek(fs, fd, 1, SEEK_SET), 1);
	TV_EQ(cairn_write(fs, fd, "gh", 2), 2);
	TV_EQ(cairn_lseek(fs, fd, 0, SEEK_CUR), 10);
	TV_OK(cairn_close(fs, fd));
	tv_expect_str(fs, "/f", "abcdefXYgh");
}

static void test_open_rdonly_rejects_writes(void **state)
{
	cairn_fs *fs = TV_FS(state);
	tv_put_str(fs, "/f", "data");
	int fd = TV_OK(cairn_open(fs, "/f", O_RDONLY));
	TV_ERR(cairn_write(fs, fd, "x", 1), EBADF);
	TV_ERR(cairn_pwrite(fs, fd, "x", 1, 0), EBADF);
	char buf[8];
	TV_EQ(cairn_read(fs, fd, buf, sizeof(buf)), 4);
	TV_OK(cairn_close(fs, fd));
	tv_expect_str(fs, "/f", "data");
}

static void test_open_wronly_rejects_reads(void **state)
{
	cairn_fs *fs = TV_FS(state);
	tv_put_str(fs, "/f", "data");
	int fd = TV_OK(cairn_open(fs, "/f", O_WRONLY));
	char buf[8];
	TV_ERR(cairn_read(fs, fd, buf, sizeof(buf)), EBADF);
	TV_ERR(cairn_pread(fs, fd, buf, sizeof(buf), 0), EBADF);
	TV_EQ(cairn_write(fs, fd, "D", 1), 1);
	TV_OK(cairn_close(fs, fd));
	tv_expect_str(fs, "/f", "Data");
}

static void test_open_rdwr_reads_own_writes(void **state)
{
	cairn_fs *fs = TV_FS(state);
	int fd = open_new(fs, "/f", O_RDWR);
	TV_EQ(cairn_write(fs, fd, "hello world", 11), 11);
	char buf[16] = {0};
	TV_EQ(cairn_pread(fs, fd, buf, sizeof(buf), 0), 11);
	assert_memory_equal(buf, "hello world", 11);
	TV_EQ(cairn_pwrite(fs, fd, "W", 1, 6), 1);
	TV_EQ(cairn_lseek(fs, fd, 0, SEEK_SET), 0);
	memset(buf, 0, sizeof(buf));
	TV_EQ(cairn_read(fs, fd, buf, sizeof(buf)), 11);
	assert_string_equal(buf, "hello World");
	TV_OK(cairn_close(fs, fd));
}

static void test_open_o_directory(void **state)
{
	cairn_fs *fs = TV_FS(state);
	tv_put_str(fs, "/f", "x");
	TV_OK(cairn_mkdir(fs, "/d", 0755));
	TV_ERR(cairn_open(fs, "/f", O_RDONLY | O_DIRECTORY), ENOTDIR);
	int fd = TV_OK(cairn_open(fs, "/d", O_RDONLY | O_DIRECTORY));
	struct stat st;
	TV_OK(cairn_fstat(fs, fd, &st));
	assert_true(S_ISDIR(st.st_mode));
	TV_OK(cairn_close(fs, fd));
	fd = TV_OK(cairn_open(fs, "/", O_RDONLY | O_DIRECTORY));
	TV_OK(cairn_close(fs, fd));
}

static void test_open_directory_for_writing_eisdir(void **state)
{
	cairn_fs *fs = TV_FS(state);
	TV_OK(cairn_mkdir(fs, "/d", 0755));
	TV_ERR(cairn_open(fs, "/d", O_WRONLY), EISDIR);
	TV_ERR(cairn_open(fs, "/d", O_RDWR), EISDIR);
	TV_ERR(cairn_open(fs, "/", O_WRONLY), EISDIR);
	TV_ERR(cairn_open(fs, "/d", O_CREAT | O_WRONLY, 0644), EISDIR);
	TV_ERR(cairn_open(fs, "/d", O_WRONLY | O_TRUNC), EISDIR);
	/* Linux refuses O_CREAT on an existing directory even read-only. */
	TV_ERR(cairn_open(fs, "/d", O_CREAT | O_RDONLY, 0644), EISDIR);
}

static void test_read_directory_fd_eisdir(void **state)
{
	cairn_fs *fs = TV_FS(state);
	TV_OK(cairn_mkdir(fs, "/d", 0755));
	int fd = TV_OK(cairn_open(fs, "/d", O_RDONLY));
	char buf[16];
	TV_ERR(cairn_read(fs, fd, buf, sizeof(buf)), EISDIR);
	TV_ERR(cairn_pread(fs, fd, buf, sizeof(buf), 0), EISDIR);
	TV_OK(cairn_close(fs, fd));
}

static void test_open_nofollow(void **state)
{
	cairn_fs *fs = TV_FS(state);
	TV_OK(cairn_mkdir(fs, "/d", 0755));
	tv_put_str(fs, "/d/f", "content");
	TV_OK(cairn_symlink(fs, "/d/f", "/lf"));
	TV_OK(cairn_symlink(fs, "/d", "/ld"));
	TV_ERR(cairn_open(fs, "/lf", O_RDONLY | O_NOFOLLOW), ELOOP);
	TV_ERR(cairn_open(fs, "/lf", O_WRONLY | O_CREAT | O_NOFOLLOW, 0644), ELOOP);
	/* O_NOFOLLOW only concerns the last component. */
	int fd = TV_OK(cairn_open(fs, "/ld/f", O_RDONLY | O_NOFOLLOW));
	TV_OK(cairn_close(fs, fd));
	fd = TV_OK(cairn_open(fs, "/d/f", O_RDONLY | O_NOFOLLOW));
	TV_OK(cairn_close(fs, fd));
	/* Without O_NOFOLLOW the link is followed. */
	fd = TV_OK(cairn_open(fs, "/lf", O_RDONLY));
	char buf[16] = {0};
	TV_EQ(cairn_read(fs, fd, buf, sizeof(buf)), 7);
	assert_string_equal(buf, "content");
	TV_OK(cairn_close(fs, fd));
}

static void test_open_mode_bits(void **state)
{
	cairn_fs *fs = TV_FS(state);
	static const mode_t modes[] = {0, 0400, 0644, 0755, 0777, 0600, 0111};
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		char path[32];
		snprintf(path, sizeof(path), "/m%zu", i);
		int fd = TV_OK(cairn_open(fs, path, O_CREAT | O_WRONLY, modes[i]));
		TV_OK(cairn_close(fs, fd));
		struct stat st = tv_stat(fs, path);
		if ((st.st_mode & 07777) != modes[i])
			fail_msg("%s: created with mode %04o, stat says %04o", path, modes[i],
				 st.st_mode & 07777);
	}
}

/* ---- read / write -------------------------------------------------------- */

static void test_write_read_sequential_offsets(void **state)
{
	cairn_fs *fs = TV_FS(state);
	int fd = open_new(fs, "/f", O_RDWR);
	TV_EQ(cairn_write(fs, fd, "abc", 3), 3);
	TV_EQ(cairn_lseek(fs, fd, 0, SEEK_CUR), 3);
	TV_EQ(cairn_write(fs, fd, "defg", 4), 4);
	TV_EQ(cairn_lseek(fs, fd, 0, SEEK_CUR), 7);
	TV_EQ(cairn_lseek(fs, fd, 0, SEEK_SET), 0);
	char buf[4];
	TV_EQ(cairn_read(fs, fd, buf, 2), 2);
	assert_memory_equal(buf, "ab", 2);
	TV_EQ(cairn_read(fs, fd, buf, 4), 4);
	assert_memory_equal(buf, "cdef", 4);
	TV_EQ(cairn_lseek(fs, fd, 0, SEEK_CUR), 6);
	TV_OK(cairn_close(fs, fd));
}

static void test_read_short_at_eof(void **state)
{
	cairn_fs *fs = TV_FS(state);
	unsigned char data[100];
	tv_fill(data, sizeof(data), 1);
	tv_put(fs, "/f", data, sizeof(data), 0644);
	int fd = TV_OK(cairn_open(fs, "/f", O_RDONLY));
	unsigned char buf[256];
	TV_EQ(cairn_read(fs, fd, buf, sizeof(buf)), 100);
	assert_memory_equal(buf, data, 100);
	TV_EQ(cairn_read(fs, fd, buf, sizeof(buf)), 0);
	TV_EQ(cairn_pread(fs, fd, buf, sizeof(buf), 50), 50);
	assert_memory_equal(buf, data + 50, 50);
	TV_EQ(cairn_pread(fs, fd, buf, sizeof(buf), 100), 0);
	TV_EQ(cairn_pread(fs, fd, buf, sizeof(buf), 100000), 0);
	/* Reading from an offset past EOF returns 0 and moves nothing. */
	TV_EQ(cairn_lseek(fs, fd, 5000, SEEK_SET), 5000);
	TV_EQ(cairn_read(fs, fd, buf, sizeof(buf)), 0);
	TV_EQ(cairn_lseek(fs, fd, 0, SEEK_CUR), 5000);
	TV_OK(cairn_close(fs, fd));
}

static void test_zero_length_io(void **state)
{
	cairn_fs *fs = TV_FS(state);
	int fd = open_new(fs, "/f", O_RDWR);
	TV_EQ(cairn_write(fs, fd, "x", 0), 0);
	TV_EQ(cairn_pwrite(fs, fd, "x", 0, 4096), 0);
	char c;
	TV_EQ(cairn_read(fs, fd, &c, 0), 0);
	struct stat st;
	TV_OK(cairn_fstat(fs, fd, &st));
	/* A zero-length write does not extend the file. */
	TV_EQ(st.st_size, 0);
	TV_OK(cairn_close(fs, fd));
}

static void test_pwrite_past_eof_leaves_zero_hole(void **state)
{
	cairn_fs *fs = TV_FS(state);
	int fd = open_new(fs, "/f", O_RDWR);
	TV_EQ(cairn_write(fs, fd, "head", 4), 4);
	const off_t off = 1 * TV_MiB + 10;
	TV_EQ(cairn_pwrite(fs, fd, "xyz", 3, off), 3);
	/* pwrite does not move the file offset. */
	TV_EQ(cairn_lseek(fs, fd, 0, SEEK_CUR), 4);
	struct stat st;
	TV_OK(cairn_fstat(fs, fd, &st));
	TV_EQ(st.st_size, off + 3);
	tv_expect_at(fs, fd, 0, "head", 4);
	tv_expect_at(fs, fd, 4, NULL, (size_t)(off - 4));
	tv_expect_at(fs, fd, off, "xyz", 3);
	TV_OK(cairn_close(fs, fd));
}

static void test_write_after_seek_past_eof(void **state)
{
	cairn_fs *fs = TV_FS(state);
	int fd = open_new(fs, "/f", O_RDWR);
	TV_EQ(cairn_lseek(fs, fd, 100000, SEEK_SET), 100000);
	struct stat st;
	TV_OK(cairn_fstat(fs, fd, &st));
	TV_EQ(st.st_size, 0); /* seeking alone does not extend */
	TV_EQ(cairn_write(fs, fd, "tail", 4), 4);
	TV_OK(cairn_fstat(fs, fd, &st));
	TV_EQ(st.st_size, 100004);
	tv_expect_at(fs, fd, 0, NULL, 100000);
	tv_expect_at(fs, fd, 100000, "tail", 4);
	TV_OK(cairn_close(fs, fd));
}

static void test_overwrite_middle_keeps_size(void **state)
{
	cairn_fs *fs = TV_FS(state);
	size_t len = 3 * 4096 + 123;
	unsigned char *data = malloc(len);
	tv_fill(data, len, 7);
	tv_put(fs, "/f", data, len, 0644);
	int fd = TV_OK(cairn_open(fs, "/f", O_WRONLY));
	unsigned char patch[5000];
	tv_fill(patch, sizeof(patch), 8);
	/* Crosses a 4 KiB boundary, unaligned at both ends. */
	TV_EQ(cairn_pwrite(fs, fd, patch, sizeof(patch), 3000), sizeof(patch));
	TV_OK(cairn_close(fs, fd));
	memcpy(data + 3000, patch, sizeof(patch));
	tv_expect(fs, "/f", data, len);
	free(data);
}

static void test_two_fds_independent_offsets_shared_data(void **state)
{
	cairn_fs *fs = TV_FS(state);
	int a = open_new(fs, "/f", O_RDWR);
	int b = TV_OK(cairn_open(fs, "/f", O_RDWR));
	assert_int_not_equal(a, b);
	TV_EQ(cairn_write(fs, a, "AAAA", 4), 4);
	TV_EQ(cairn_lseek(fs, b, 0, SEEK_CUR), 0);
	char buf[8] = {0};
	TV_EQ(cairn_read(fs, b, buf, 8), 4);
	assert_memory_equal(buf, "AAAA", 4);
	TV_EQ(cairn_pwrite(fs, b, "B", 1, 1), 1);
	TV_EQ(cairn_pread(fs, a, buf, 8, 0), 4);
	assert_memory_equal(buf, "ABAA", 4);
	TV_OK(cairn_close(fs, a));
	TV_OK(cairn_close(fs, b));
}

static void test_unlinked_open_file_stays_usable(void **state)
{
	cairn_fs *fs = TV_FS(state);
	int fd = open_new(fs, "/f", O_RDWR);
	TV_EQ(cairn_write(fs, fd, "before", 6), 6);
	TV_OK(cairn_unlink(fs, "/f"));
	assert_false(tv_exists(fs, "/f"));
	TV_EQ(cairn_write(fs, fd, "+after", 6), 6);
	struct stat st;
	TV_OK(cairn_fstat(fs, fd, &st));
	TV_EQ(st.st_nlink, 0);
	TV_EQ(st.st_size, 12);
	tv_expect_at(fs, fd, 0, "before+after", 12);
	/* A new file of the same name is a different file. */
	tv_put_str(fs, "/f", "new");
	tv_expect_at(fs, fd, 0, "before+after", 12);
	TV_OK(cairn_close(fs, fd));
	tv_expect_str(fs, "/f", "new");
}

/* ---- lseek --------------------------------------------------------------- */

static void test_lseek_set_cur_end(void **state)
{
	cairn_fs *fs = TV_FS(state);
	tv_put_str(fs, "/f", "0123456789");
	int fd = TV_OK(cairn_open(fs, "/f", O_RDONLY));
	TV_EQ(cairn_lseek(fs, fd, 3, SEEK_SET), 3);
	TV_EQ(cairn_lseek(fs, fd, 2, SEEK_CUR), 5);
	TV_EQ(cairn_lseek(fs, fd, -1, SEEK_CUR), 4);
	char c;
	TV_EQ(cairn_read(fs, fd, &c, 1), 1);
	TV_EQ(c, '4');
	TV_EQ(cairn_lseek(fs, fd, 0, SEEK_END), 10);
	TV_EQ(cairn_lseek(fs, fd, -3, SEEK_END), 7);
	TV_EQ(cairn_read(fs, fd, &c, 1), 1);
	TV_EQ(c, '7');
	TV_EQ(cairn_lseek(fs, fd, 5, SEEK_END), 15); /* past EOF is allowed */
	TV_EQ(cairn_lseek(fs, fd, (off_t)TV_TiB, SEEK_SET), (off_t)TV_TiB);
	TV_OK(cairn_close(fs, fd));
}

static void test_lseek_negative_result_einval(void **state)
{
	cairn_fs *fs = TV_FS(state);
	tv_put_str(fs, "/f", "0123456789");
	int fd = TV_OK(cairn_open(fs, "/f", O_RDONLY));
	TV_EQ(cairn_lseek(fs, fd, 4, SEEK_SET), 4);
	TV_ERR(cairn_lseek(fs, fd, -1, SEEK_SET), EINVAL);
	TV_ERR(cairn_lseek(fs, fd, -5, SEEK_CUR), EINVAL);
	TV_ERR(cairn_lseek(fs, fd, -11, SEEK_END), EINVAL);
	TV_ERR(cairn_lseek(fs, fd, 0, 12345), EINVAL);
	/* A failed lseek leaves the offset alone. */
	TV_EQ(cairn_lseek(fs, fd, 0, SEEK_CUR), 4);
	TV_OK(cairn_close(fs, fd));
}

static void test_lseek_data_hole(void **state)
{
	cairn_fs *fs = TV_FS(state);
	int fd = open_new(fs, "/f", O_RDWR);
	unsigned char blk[4096];
	tv_fill(blk, sizeof(blk), 3);
	const off_t far = 4 * TV_MiB;
	TV_EQ(cairn_pwrite(fs, fd, blk, sizeof(blk), 0), 4096);
	TV_EQ(cairn_pwrite(fs, fd, blk, sizeof(blk), far), 4096);
	const off_t size = far + 4096;

	TV_EQ(cairn_lseek(fs, fd, 0, SEEK_DATA), 0);
	off_t h = TV_OK(cairn_lseek(fs, fd, 0, SEEK_HOLE));
	if (h < 4096 || h > size)
		fail_msg("SEEK_HOLE from 0 gave %lld, expected within [4096, %lld]", (long long)h,
			 (long long)size);
	/* From inside the hole: that offset (holes may be reported as data) or
	 * the next data, never before the offset nor beyond the data at far. */
	off_t d = TV_OK(cairn_lseek(fs, fd, 65536, SEEK_DATA));
	if (d < 65536 || d > far)
		fail_msg("SEEK_DATA from 65536 gave %lld, expected within [65536, %lld]",
			 (long long)d, (long long)far);
	TV_EQ(cairn_lseek(fs, fd, far + 100, SEEK_DATA), far + 100);
	h = TV_OK(cairn_lseek(fs, fd, far, SEEK_HOLE));
	if (h < far + 4096 || h > size)
		fail_msg("SEEK_HOLE from %lld gave %lld, expected %lld", (long long)far, (long long)h,
			 (long long)size);
	/* At or past EOF: ENXIO. */
	TV_ERR(cairn_lseek(fs, fd, size, SEEK_DATA), ENXIO);
	TV_ERR(cairn_lseek(fs, fd, size, SEEK_HOLE), ENXIO);
	TV_ERR(cairn_lseek(fs, fd, size + 12345, SEEK_DATA), ENXIO);
	TV_OK(cairn_close(fs, fd));
}

static void test_lseek_data_hole_empty_file_enxio(void **state)
{
	cairn_fs *fs = TV_FS(state);
	int fd = open_new(fs, "/f", O_RDWR);
	TV_ERR(cairn_lseek(fs, fd, 0, SEEK_DATA), ENXIO);
	TV_ERR(cairn_lseek(fs, fd, 0, SEEK_HOLE), ENXIO);
	TV_OK(cairn_close(fs, fd));
}

/* ---- truncate ------------------------------------------------------------ */

static void test_ftruncate_shrink(void **state)
{
	cairn_fs *fs = TV_FS(state);
	unsigned char data[10000];
	tv_fill(data, sizeof(data), 11);
	tv_put(fs, "/f", data, sizeof(data), 0644);
	int fd = TV_OK(cairn_open(fs, "/f", O_RDWR));
	TV_EQ(cairn_lseek(fs, fd, 0, SEEK_END), 10000);
	TV_OK(cairn_ftruncate(fs, fd, 5000));
	/* The offset is not moved; reading there gives EOF. */
	TV_EQ(cairn_lseek(fs, fd, 0, SEEK_CUR), 10000);
	char c;
	TV_EQ(cairn_read(fs, fd, &c, 1), 0);
	TV_OK(cairn_close(fs, fd));
	tv_expect(fs, "/f", data, 5000);
}

static void test_ftruncate_grow_reads_zeros(void **state)
{
	cairn_fs *fs = TV_FS(state);
	tv_put_str(fs, "/f", "abc");
	int fd = TV_OK(cairn_open(fs, "/f", O_RDWR));
	TV_OK(cairn_ftruncate(fs, fd, 3 * TV_MiB + 5));
	struct stat st;
	TV_OK(cairn_fstat(fs, fd, &st));
	TV_EQ(st.st_size, 3 * TV_MiB + 5);
	tv_expect_at(fs, fd, 0, "abc", 3);
	tv_expect_at(fs, fd, 3, NULL, 3 * TV_MiB + 2);
	TV_OK(cairn_close(fs, fd));
}

static void test_truncate_shrink_then_grow_reads_zeros(void **state)
{
	cairn_fs *fs = TV_FS(state);
	const size_t len = 3 * 4096 + 200;
	unsigned char *data = malloc(len);
	tv_fill(data, len, 12);
	tv_put(fs, "/f", data, len, 0644);
	/* Shrink into the middle of a block, then grow again: the old bytes
	 * past the cut must not come back. */
	TV_OK(cairn_truncate(fs, "/f", 1000));
	TV_OK(cairn_truncate(fs, "/f", (off_t)len));
	memset(data + 1000, 0, len - 1000);
	tv_expect(fs, "/f", data, len);
	/* The same through a file descriptor, on data written just before
	 * (still in the log, not yet digested). */
	int fd = TV_OK(cairn_open(fs, "/f", O_RDWR));
	unsigned char blk[8192];
	tv_fill(blk, sizeof(blk), 13);
	TV_EQ(cairn_pwrite(fs, fd, blk, sizeof(blk), 4000), sizeof(blk));
	TV_OK(cairn_ftruncate(fs, fd, 4100));
	TV_OK(cairn_ftruncate(fs, fd, 20000));
	tv_expect_at(fs, fd, 4000, blk, 100);
	tv_expect_at(fs, fd, 4100, NULL, 20000 - 4100);
	TV_OK(cairn_close(fs, fd));
	free(data);
}

static void test_truncate_to_zero_and_rewrite(void **state)
{
	cairn_fs *fs = TV_FS(state);
	unsigned char data[20000];
	tv_fill(data, sizeof(data), 14);
	tv_put(fs, "/f", data, sizeof(data), 0644);
	TV_OK(cairn_truncate(fs, "/f", 0));
	tv_expect(fs, "/f", NULL, 0);
	int fd = TV_OK(cairn_open(fs, "/f", O_WRONLY));
	TV_EQ(cairn_pwrite(fs, fd, "z", 1, 10000), 1);
	TV_OK(cairn_close(fs, fd));
	unsigned char want[10001] = {0};
	want[10000] = 'z';
	tv_expect(fs, "/f", want, sizeof(want));
}

static void test_truncate_errors(void **state)
{
	cairn_fs *fs = TV_FS(state);
	tv_put_str(fs, "/f", "abc");
	TV_OK(cairn_mkdir(fs, "/d", 0755));
	TV_ERR(cairn_truncate(fs, "/f", -1), EINVAL);
	TV_ERR(cairn_truncate(fs, "/d", 0), EISDIR);
	TV_ERR(cairn_truncate(fs, "/missing", 0), ENOENT);
	TV_ERR(cairn_truncate(fs, "/f/x", 0), ENOTDIR);
	int fd = TV_OK(cairn_open(fs, "/f", O_RDWR));
	TV_ERR(cairn_ftruncate(fs, fd, -1), EINVAL);
	TV_OK(cairn_close(fs, fd));
	/* Linux gives EINVAL for a descriptor not open for writing (POSIX
	 * allows EBADF too). */
	fd = TV_OK(cairn_open(fs, "/f", O_RDONLY));
	TV_ERR2(cairn_ftruncate(fs, fd, 0), EINVAL, EBADF);
	TV_OK(cairn_close(fs, fd));
	TV_ERR(cairn_ftruncate(fs, 987654, 0), EBADF);
	tv_expect_str(fs, "/f", "abc");
}

/* ---- big files ----------------------------------------------------------- */

static void test_sparse_1tib_file(void **state)
{
	cairn_fs *fs = TV_FS(state);
	const off_t size = (off_t)TV_TiB;
	unsigned char blk[4096], buf[4096];
	tv_fill(blk, sizeof(blk), 99);
	int fd = open_new(fs, "/big", O_RDWR);
	TV_EQ(cairn_pwrite(fs, fd, blk, sizeof(blk), size - 4096), 4096);
	struct stat st;
	TV_OK(cairn_fstat(fs, fd, &st));
	TV_EQ(st.st_size, size);
	if (st.st_blocks > 2048)
		fail_msg("1 TiB sparse file with 4 KiB of data has st_blocks %lld",
			 (long long)st.st_blocks);
	tv_expect_at(fs, fd, size - 4096, blk, 4096);
	tv_expect_at(fs, fd, 0, NULL, 4096);
	tv_expect_at(fs, fd, size / 2 + 12345, NULL, 4096);
	tv_expect_at(fs, fd, size - 8192, NULL, 4096);
	TV_EQ(cairn_pread(fs, fd, buf, sizeof(buf), size), 0);
	TV_EQ(cairn_pread(fs, fd, buf, sizeof(buf), size - 100), 100);
	assert_memory_equal(buf, blk + 4096 - 100, 100);
	TV_EQ(cairn_lseek(fs, fd, 0, SEEK_END), size);
	/* The same after the log is applied to the shared area. */
	TV_OK(cairn_digest(fs));
	TV_OK(cairn_fstat(fs, fd, &st));
	TV_EQ(st.st_size, size);
	if (st.st_blocks > 2048)
		fail_msg("after digest: st_blocks %lld", (long long)st.st_blocks);
	tv_expect_at(fs, fd, size - 4096, blk, 4096);
	tv_expect_at(fs, fd, size / 3, NULL, 4096);
	TV_OK(cairn_close(fs, fd));
}

static void test_large_write_20mib(void **state)
{
	cairn_fs *fs = TV_FS(state);
	const size_t piece = TV_MiB, total = 20 * TV_MiB;
	unsigned char *data = malloc(total);
	assert_non_null(data);
	tv_fill(data, total, 2020);
	int fd = open_new(fs, "/big", O_RDWR);
	for (size_t off = 0; off < total; off += piece)
		TV_EQ(tv_write_full(fs, fd, data + off, piece), piece);
	struct stat st;
	TV_OK(cairn_fstat(fs, fd, &st));
	TV_EQ(st.st_size, total);
	/* Read back sequentially in pieces that do not align with the writes. */
	TV_EQ(cairn_lseek(fs, fd, 0, SEEK_SET), 0);
	unsigned char *buf = malloc(300 * 1024);
	size_t pos = 0;
	while (pos < total) {
		ssize_t n = TV_OK(cairn_read(fs, fd, buf, 300 * 1024));
		if (n == 0)
			fail_msg("early EOF at %zu", pos);
		if (memcmp(buf, data + pos, (size_t)n) != 0)
			fail_msg("data differs in [%zu, %zu)", pos, pos + (size_t)n);
		pos += (size_t)n;
	}
	TV_EQ(pos, total);
	/* Random unaligned preads. */
	uint64_t rs = 5;
	for (int i = 0; i < 200; i++) {
		size_t off = tv_splitmix(&rs) % total;
		size_t len = 1 + tv_splitmix(&rs) % (256 * 1024);
		if (off + len > total)
			len = total - off;
		tv_expect_at(fs, fd, (off_t)off, data + off, len);
	}
	TV_OK(cairn_close(fs, fd));
	tv_expect(fs, "/big", data, total);
	free(buf);
	free(data);
}

/* ---- fsync / sync -------------------------------------------------------- */

static void test_fsync_and_sync_return_zero(void **state)
{
	cairn_fs *fs = TV_FS(state);
	int fd = open_new(fs, "/f", O_RDWR);
	TV_EQ(cairn_write(fs, fd, "x", 1), 1);
	TV_EQ(cairn_fsync(fs, fd), 0);
	TV_EQ(cairn_sync(fs), 0);
	TV_OK(cairn_close(fs, fd));
	/* fsync of a read-only descriptor and of a directory are fine too. */
	fd = TV_OK(cairn_open(fs, "/f", O_RDONLY));
	TV_EQ(cairn_fsync(fs, fd), 0);
	TV_OK(cairn_close(fs, fd));
	fd = TV_OK(cairn_open(fs, "/", O_RDONLY | O_DIRECTORY));
	TV_EQ(cairn_fsync(fs, fd), 0);
	TV_OK(cairn_close(fs, fd));
	TV_ERR(cairn_fsync(fs, -1), EBADF);
}

/* ---- bad descriptors and arguments --------------------------------------- */

static void check_ebadf(cairn_fs *fs, int fd)
{
	char buf[4];
	struct stat st;
	TV_ERR(cairn_read(fs, fd, buf, sizeof(buf)), EBADF);
	TV_ERR(cairn_write(fs, fd, "x", 1), EBADF);
	TV_ERR(cairn_pread(fs, fd, buf, sizeof(buf), 0), EBADF);
	TV_ERR(cairn_pwrite(fs, fd, "x", 1, 0), EBADF);
	TV_ERR(cairn_lseek(fs, fd, 0, SEEK_SET), EBADF);
	TV_ERR(cairn_fstat(fs, fd, &st), EBADF);
	TV_ERR(cairn_fsync(fs, fd), EBADF);
	TV_ERR(cairn_ftruncate(fs, fd, 0), EBADF);
	TV_ERR(cairn_close(fs, fd), EBADF);
}

static void test_ebadf_invalid_fds(void **state)
{
	cairn_fs *fs = TV_FS(state);
	check_ebadf(fs, -1);
	check_ebadf(fs, -12345);
	check_ebadf(fs, 1 << 20);
	check_ebadf(fs, INT32_MAX);
}

static void test_ebadf_closed_fd(void **state)
{
	cairn_fs *fs = TV_FS(state);
	int fd = open_new(fs, "/f", O_RDWR);
	TV_EQ(cairn_write(fs, fd, "abc", 3), 3);
	TV_OK(cairn_close(fs, fd));
	check_ebadf(fs, fd);
	/* The failed calls changed nothing. */
	tv_expect_str(fs, "/f", "abc");
	/* A descriptor number may be reused by a later open. */
	int fd2 = TV_OK(cairn_open(fs, "/f", O_RDONLY));
	char buf[4];
	TV_EQ(cairn_read(fs, fd2, buf, 4), 3);
	TV_OK(cairn_close(fs, fd2));
}

static void test_negative_offsets_einval(void **state)
{
	cairn_fs *fs = TV_FS(state);
	int fd = open_new(fs, "/f", O_RDWR);
	char buf[4];
	TV_ERR(cairn_pread(fs, fd, buf, sizeof(buf), -1), EINVAL);
	TV_ERR(cairn_pwrite(fs, fd, "x", 1, -1), EINVAL);
	TV_ERR(cairn_pwrite(fs, fd, "x", 1, INT64_MIN), EINVAL);
	struct stat st;
	TV_OK(cairn_fstat(fs, fd, &st));
	TV_EQ(st.st_size, 0);
	TV_OK(cairn_close(fs, fd));
}

static void test_many_open_descriptors(void **state)
{
	cairn_fs *fs = TV_FS(state);
	enum { N = 512 };
	static int fds[N];
	tv_put_str(fs, "/f", "shared");
	for (int i = 0; i < N; i++)
		fds[i] = TV_OK(cairn_open(fs, "/f", O_RDONLY));
	for (int i = 0; i < N; i++)
		for (int j = i + 1; j < N; j++)
			if (fds[i] == fds[j])
				fail_msg("descriptors %d and %d are both %d", i, j, fds[i]);
	for (int i = 0; i < N; i += 37) {
		char buf[8];
		TV_EQ(cairn_read(fs, fds[i], buf, sizeof(buf)), 6);
	}
	for (int i = 0; i < N; i++)
		TV_OK(cairn_close(fs, fds[i]));
}

#define T(f) cmocka_unit_test_setup_teardown(f, tv_setup, tv_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_open_creat_creates_empty_file),
		T(test_open_creat_existing_keeps_content),
		T(test_open_missing_without_creat_enoent),
		T(test_open_excl),
		T(test_open_trunc),
		T(test_open_append_writes_at_end),
		T(test_open_rdonly_rejects_writes),
		T(test_open_wronly_rejects_reads),
		T(test_open_rdwr_reads_own_writes),
		T(test_open_o_directory),
		T(test_open_directory_for_writing_eisdir),
		T(test_read_directory_fd_eisdir),
		T(test_open_nofollow),
		T(test_open_mode_bits),
		T(test_write_read_sequential_offsets),
		T(test_read_short_at_eof),
		T(test_zero_length_io),
		T(test_pwrite_past_eof_leaves_zero_hole),
		T(test_write_after_seek_past_eof),
		T(test_overwrite_middle_keeps_size),
		T(test_two_fds_independent_offsets_shared_data),
		T(test_unlinked_open_file_stays_usable),
		T(test_lseek_set_cur_end),
		T(test_lseek_negative_result_einval),
		T(test_lseek_data_hole),
		T(test_lseek_data_hole_empty_file_enxio),
		T(test_ftruncate_shrink),
		T(test_ftruncate_grow_reads_zeros),
		T(test_truncate_shrink_then_grow_reads_zeros),
		T(test_truncate_to_zero_and_rewrite),
		T(test_truncate_errors),
		T(test_sparse_1tib_file),
		T(test_large_write_20mib),
		T(test_fsync_and_sync_return_zero),
		T(test_ebadf_invalid_fds),
		T(test_ebadf_closed_fd),
		T(test_negative_offsets_einval),
		T(test_many_open_descriptors),
	};
	return cmocka_run_group_tests_name("api_files", tests, NULL, NULL);
}
