/*
 * test_api_fallocate.c - cairn_fallocate: mode 0 extends the size,
 * KEEP_SIZE does not, PUNCH_HOLE|KEEP_SIZE frees whole blocks and zeroes
 * partial ones (digested or still in the log), the errno cases, and
 * SEEK_DATA/SEEK_HOLE over the holes these leave.
 */
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdlib.h>
#include <string.h>

#include "testvol.h"

#define SZ (64 * 1024)

static int make_file(cairn_fs *fs, unsigned char *buf)
{
	tv_fill(buf, SZ, 42);
	int fd = TV_OK(cairn_open(fs, "/f", O_CREAT | O_RDWR, 0644));
	TV_EQ(tv_pwrite_full(fs, fd, buf, SZ, 0), SZ);
	return fd;
}

static void punch_and_check(cairn_fs *fs, int fd, unsigned char *buf, off_t off, off_t len)
{
	TV_OK(cairn_fallocate(fs, fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len));
	memset(buf + off, 0, (size_t)len);
	tv_expect_at(fs, fd, 0, buf, SZ);
	TV_EQ(tv_stat(fs, "/f").st_size, SZ);
}

static void test_punch_in_log(void **state)
{
	cairn_fs *fs = TV_FS(state);
	static unsigned char buf[SZ];
	int fd = make_file(fs, buf);
	punch_and_check(fs, fd, buf, 5000, 20000); /* partial blocks at both ends */
	TV_OK(cairn_digest(fs));
	tv_expect_at(fs, fd, 0, buf, SZ);
	TV_OK(cairn_close(fs, fd));
}

static void test_punch_digested(void **state)
{
	cairn_fs *fs = TV_FS(state);
	static unsigned char buf[SZ];
	int fd = make_file(fs, buf);
	TV_OK(cairn_digest(fs));
	blkcnt_t before = tv_stat(fs, "/f").st_blocks;
	punch_and_check(fs, fd, buf, 8192, 32768); /* eight whole blocks */
	punch_and_check(fs, fd, buf, 100, 10);     /* inside one block */
	TV_OK(cairn_digest(fs));
	tv_expect_at(fs, fd, 0, buf, SZ);
	/* Eight blocks fewer, less the tree node the map may have gained:
	 * the hole splits what was the file's one (inline) extent. */
	assert_true(tv_stat(fs, "/f").st_blocks <= before - 8 * 8 + 8);
	/* A write into the hole comes back. */
	TV_EQ(cairn_pwrite(fs, fd, "back", 4, 10000), 4);
	memcpy(buf + 10000, "back", 4);
	tv_expect_at(fs, fd, 0, buf, SZ);
	/* Past EOF: nothing changes. */
	TV_OK(cairn_fallocate(fs, fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, SZ, 4096));
	TV_EQ(tv_stat(fs, "/f").st_size, SZ);
	TV_OK(cairn_close(fs, fd));
}

static void test_modes_and_errors(void **state)
{
	cairn_fs *fs = TV_FS(state);
	int fd = TV_OK(cairn_open(fs, "/g", O_CREAT | O_RDWR, 0644));
	TV_OK(cairn_fallocate(fs, fd, 0, 0, 100000));
	TV_EQ(tv_stat(fs, "/g").st_size, 100000);
	TV_OK(cairn_fallocate(fs, fd, FALLOC_FL_KEEP_SIZE, 0, 200000));
	TV_EQ(tv_stat(fs, "/g").st_size, 100000);
	TV_OK(cairn_fallocate(fs, fd, 0, 10, 10)); /* inside: no change */
	TV_EQ(tv_stat(fs, "/g").st_size, 100000);
	tv_expect_at(fs, fd, 0, NULL, 100000);
	TV_ERR(cairn_fallocate(fs, fd, FALLOC_FL_PUNCH_HOLE, 0, 10), EOPNOTSUPP);
	TV_ERR(cairn_fallocate(fs, fd, FALLOC_FL_COLLAPSE_RANGE, 0, 4096), EOPNOTSUPP);
	TV_ERR(cairn_fallocate(fs, fd, 0, -1, 10), EINVAL);
	TV_ERR(cairn_fallocate(fs, fd, 0, 0, 0), EINVAL);
	TV_ERR(cairn_fallocate(fs, 99, 0, 0, 10), EBADF);
	TV_ERR(cairn_fallocate(fs, fd, 0, 0, 1ll << 62), EFBIG);
	TV_OK(cairn_close(fs, fd));
	fd = TV_OK(cairn_open(fs, "/g", O_RDONLY));
	TV_ERR(cairn_fallocate(fs, fd, 0, 0, 10), EBADF);
	TV_OK(cairn_close(fs, fd));
}

/* SEEK_DATA / SEEK_HOLE find the holes, in the log and after digest. */
static void test_seek_data_hole(void **state)
{
	cairn_fs *fs = TV_FS(state);
	static unsigned char buf[8192];
	tv_fill(buf, sizeof(buf), 5);
	int fd = TV_OK(cairn_open(fs, "/s", O_CREAT | O_RDWR, 0644));
	const off_t mib = 1 << 20;
	for (int pass = 0; pass < 2; pass++) {
		TV_EQ(tv_pwrite_full(fs, fd, buf, 4096, 0), 4096);
		TV_EQ(tv_pwrite_full(fs, fd, buf, 8192, mib), 8192);
		TV_EQ(cairn_lseek(fs, fd, 0, SEEK_DATA), 0);
		TV_EQ(cairn_lseek(fs, fd, 0, SEEK_HOLE), 4096);
		TV_EQ(cairn_lseek(fs, fd, 4096, SEEK_DATA), mib);
		TV_EQ(cairn_lseek(fs, fd, 5000, SEEK_HOLE), 5000);
		TV_EQ(cairn_lseek(fs, fd, mib + 100, SEEK_HOLE), mib + 8192); /* EOF */
		TV_ERR(cairn_lseek(fs, fd, mib + 8192, SEEK_DATA), ENXIO);
		TV_OK(cairn_digest(fs)); /* the second pass sees the same in the shared area */
	}
	/* A punched hole is found too (the extent is gone). */
	TV_OK(cairn_fallocate(fs, fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, mib, 4096));
	TV_OK(cairn_digest(fs));
	TV_EQ(cairn_lseek(fs, fd, 4096, SEEK_DATA), mib + 4096);
	TV_OK(cairn_close(fs, fd));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_punch_in_log, tv_setup, tv_teardown),
		cmocka_unit_test_setup_teardown(test_punch_digested, tv_setup, tv_teardown),
		cmocka_unit_test_setup_teardown(test_modes_and_errors, tv_setup, tv_teardown),
		cmocka_unit_test_setup_teardown(test_seek_data_hole, tv_setup, tv_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
