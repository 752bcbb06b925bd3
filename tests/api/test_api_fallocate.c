/*
 * test_api_fallocate.c - cairn_fallocate: mode 0 extends the size,
 * KEEP_SIZE does not, PUNCH_HOLE|KEEP_SIZE frees whole blocks and zeroes
 * partial ones (digested or still in the log), the errno cases, and
 * SEEK_DATA/SEEK_HOLE over the holes these leave.  Preallocation: the
 * blocks are set aside (st_blocks), read as zeros whatever they held and
 * count as holes for SEEK_DATA until written, and scrub does not verify
 * them (their checksums mean nothing yet); partial writes into them
 * read back with zeros around them, in the log, after a digest and after a
 * remount; KEEP_SIZE past the end, then truncate to the same size and
 * punch give the blocks back; a range larger than a record's share takes
 * several, and one larger than the volume sets nothing aside.
 */
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdlib.h>
#include <string.h>

#include "fsck/fsck.h"
#include "testvol.h"
#include "tvsoil.h"

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

static int64_t blocks_of(cairn_fs *fs, const char *path)
{
	return (int64_t)tv_stat(fs, path).st_blocks * 512 / 4096;
}

/* Unmount, fsck (clean), mount again. */
static cairn_fs *remount(void **state)
{
	struct testvol *tv = *state;
	TV_OK(tv_unmount(tv));
	tv_expect_fsck_clean(tv->dir);
	assert_non_null(tv_mount(tv, NULL));
	return tv->fs;
}

#define PB 64 /* blocks preallocated */

static void test_prealloc_contents(void **state)
{
	cairn_fs *fs = TV_FS(state);
	static unsigned char exp[PB * 4096];
	memset(exp, 0, sizeof(exp));
	int fd = TV_OK(cairn_open(fs, "/p", O_CREAT | O_RDWR, 0644));
	TV_OK(cairn_fallocate(fs, fd, 0, 0, sizeof(exp)));
	TV_EQ(tv_stat(fs, "/p").st_size, sizeof(exp));
	assert_true(blocks_of(fs, "/p") >= PB);
	int64_t blocks = blocks_of(fs, "/p");
	/* Their checksum entries mean nothing yet: scrub does not look. */
	struct cairn_scrub sc = {0};
	TV_OK(cairn_scrub(fs, &sc));
	TV_EQ(sc.damaged_blocks, 0);
	TV_EQ(tv_soil_unwritten(fs, "/p"), PB);
	tv_expect_at(fs, fd, 0, exp, sizeof(exp));
	/* Nothing written yet: all of it is a hole to SEEK_DATA, as on ext4. */
	TV_ERR(cairn_lseek(fs, fd, 0, SEEK_DATA), ENXIO);
	TV_EQ(cairn_lseek(fs, fd, 100, SEEK_HOLE), 100);
	/* Partial writes: inside a block, across a boundary, a whole block. */
	static const struct {
		off_t off;
		size_t len;
	} w[] = {{4096 + 100, 50}, {3 * 4096 - 10, 30}, {10 * 4096, 4096}, {PB * 4096 - 1, 1}};
	for (size_t i = 0; i < sizeof(w) / sizeof(w[0]); i++) {
		tv_fill(exp + w[i].off, w[i].len, 300 + i);
		TV_EQ(cairn_pwrite(fs, fd, exp + w[i].off, w[i].len, w[i].off), w[i].len);
	}
	tv_expect_at(fs, fd, 0, exp, sizeof(exp));
	TV_OK(cairn_digest(fs));
	tv_expect_at(fs, fd, 0, exp, sizeof(exp));
	/* The written blocks are data now; the others are still holes. */
	TV_EQ(cairn_lseek(fs, fd, 0, SEEK_DATA), 4096);
	TV_EQ(cairn_lseek(fs, fd, 4096, SEEK_HOLE), 4 * 4096);
	TV_EQ(cairn_lseek(fs, fd, 4 * 4096, SEEK_DATA), 10 * 4096);
	TV_EQ(cairn_lseek(fs, fd, 10 * 4096, SEEK_HOLE), 11 * 4096);
	TV_EQ(cairn_lseek(fs, fd, 11 * 4096, SEEK_DATA), (PB - 1) * 4096);
	/* No data block more: at most the tree node the map split into. */
	assert_true(blocks_of(fs, "/p") <= blocks + 1);
	TV_OK(cairn_close(fs, fd));
	fs = remount(state);
	fd = TV_OK(cairn_open(fs, "/p", O_RDONLY));
	tv_expect_at(fs, fd, 0, exp, sizeof(exp));
	assert_true(blocks_of(fs, "/p") <= blocks + 1);
	TV_OK(cairn_close(fs, fd));
}

/* KEEP_SIZE past the end sets blocks aside without changing the size; a
 * write there lands in them; a truncate to the size then gives back what
 * lies past it (as ext4 does), and a punch what it covers. */
static void test_prealloc_keep_size(void **state)
{
	cairn_fs *fs = TV_FS(state);
	static unsigned char exp[256 * 1024];
	memset(exp, 0, sizeof(exp));
	tv_fill(exp, 10000, 9);
	int fd = TV_OK(cairn_open(fs, "/k", O_CREAT | O_RDWR, 0644));
	TV_EQ(tv_pwrite_full(fs, fd, exp, 10000, 0), 10000);
	TV_OK(cairn_fallocate(fs, fd, FALLOC_FL_KEEP_SIZE, 0, sizeof(exp)));
	TV_EQ(tv_stat(fs, "/k").st_size, 10000);
	assert_true(blocks_of(fs, "/k") >= 64);
	tv_soil_unwritten(fs, "/k");
	char c;
	TV_EQ(cairn_pread(fs, fd, &c, 1, 10000), 0); /* the end is still the end */
	tv_expect_at(fs, fd, 0, exp, 10000);
	TV_OK(cairn_digest(fs));
	tv_soil_unwritten(fs, "/k");
	tv_fill(exp + 100000, 5000, 10);
	TV_EQ(tv_pwrite_full(fs, fd, exp + 100000, 5000, 100000), 5000);
	tv_expect_at(fs, fd, 0, exp, 105000);
	TV_OK(cairn_digest(fs));
	tv_expect_at(fs, fd, 0, exp, 105000);
	int64_t before = blocks_of(fs, "/k");
	TV_OK(cairn_ftruncate(fs, fd, 105000)); /* the same size */
	int64_t after = blocks_of(fs, "/k");
	assert_true(after <= before - (64 - 26)); /* blocks 26..63 went */
	tv_expect_at(fs, fd, 0, exp, 105000);
	TV_OK(cairn_fallocate(fs, fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 4 * 4096,
	                      16 * 4096));
	memset(exp + 4 * 4096, 0, 16 * 4096);
	assert_true(blocks_of(fs, "/k") <= after - 16 + 1);
	tv_expect_at(fs, fd, 0, exp, 105000);
	TV_OK(cairn_close(fs, fd));
	fs = remount(state);
	fd = TV_OK(cairn_open(fs, "/k", O_RDONLY));
	tv_expect_at(fs, fd, 0, exp, 105000);
	TV_OK(cairn_close(fs, fd));
}

/* On the 64 MiB test volume a record sets aside at most 32 MiB: 40 MiB
 * take two records.  A range the volume cannot hold is refused before
 * anything is set aside. */
static void test_prealloc_large(void **state)
{
	cairn_fs *fs = TV_FS(state);
	int fd = TV_OK(cairn_open(fs, "/l", O_CREAT | O_RDWR, 0644));
	/* Its first records would fit, all of them not. */
	TV_ERR(cairn_fallocate(fs, fd, 0, 0, 100 * TV_MiB), ENOSPC);
	TV_EQ(tv_stat(fs, "/l").st_size, 0);
	TV_EQ(blocks_of(fs, "/l"), 0);
	struct cairn_info a, b;
	TV_OK(cairn_info(fs, &a));
	TV_OK(cairn_fallocate(fs, fd, 0, 0, 40 * TV_MiB));
	TV_OK(cairn_info(fs, &b));
	assert_true(b.ops_logged - a.ops_logged >= 2);
	TV_EQ(tv_stat(fs, "/l").st_size, 40 * TV_MiB);
	assert_true(blocks_of(fs, "/l") >= 40 * 256);
	TV_OK(cairn_ftruncate(fs, fd, 0));
	TV_EQ(blocks_of(fs, "/l"), 0);
	TV_OK(cairn_close(fs, fd));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_punch_in_log, tv_setup, tv_teardown),
		cmocka_unit_test_setup_teardown(test_punch_digested, tv_setup, tv_teardown),
		cmocka_unit_test_setup_teardown(test_modes_and_errors, tv_setup, tv_teardown),
		cmocka_unit_test_setup_teardown(test_seek_data_hole, tv_setup, tv_teardown),
		cmocka_unit_test_setup_teardown(test_prealloc_contents, tv_setup, tv_teardown),
		cmocka_unit_test_setup_teardown(test_prealloc_keep_size, tv_setup, tv_teardown),
		cmocka_unit_test_setup_teardown(test_prealloc_large, tv_setup, tv_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
