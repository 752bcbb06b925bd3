/*
 * test_api_persist.c - what survives unmount + mount, and what the volume
 * does at its limits: a rich tree (data, holes, links, symlinks, modes,
 * owners, times, renames) dumps identically before and after a remount, a
 * digest, and a batch-mode session; a 1 MiB log filled many times over
 * (digest must run, writers must wait) keeps every byte; ENOSPC on a full
 * fast tier loses nothing acknowledged and space comes back after unlink;
 * mounting a missing directory, a non-volume, a volume with a corrupted
 * superblock, manifest, truncated or missing part fails with errno and a
 * message (never a crash); mkfs over a volume fails with EEXIST; a
 * read-only mount refuses changes with EROFS and writes nothing.
 */
#include "testvol.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#define DUMP_FLAGS (TV_DUMP_MTIME | TV_DUMP_CTIME)

/* ---- the rich tree ------------------------------------------------------- */

static void put_pattern(cairn_fs *fs, const char *path, size_t len, uint64_t seed, mode_t mode)
{
	unsigned char *buf = malloc(len ? len : 1);
	tv_fill(buf, len, seed);
	tv_put(fs, path, buf, len, mode);
	free(buf);
}

static void set_times(cairn_fs *fs, const char *path, time_t sec, long nsec)
{
	struct timespec t[2] = {{.tv_sec = sec - 100, .tv_nsec = nsec / 2}, {.tv_sec = sec, .tv_nsec = nsec}};
	TV_OK(cairn_utimens(fs, path, t));
}

/* Builds a tree that exercises every kind of metadata; v varies contents. */
static void build_tree(cairn_fs *fs, unsigned v)
{
	char p[600];
	uint64_t s = 1000 * (uint64_t)v;
	TV_OK(cairn_mkdir(fs, "/dir1", 0755));
	TV_OK(cairn_mkdir(fs, "/dir1/dir2", 0700));
	TV_OK(cairn_mkdir(fs, "/dir1/dir2/dir3", 0750));
	put_pattern(fs, "/dir1/dir2/dir3/deep", 777, s + 1, 0644);
	static const size_t sizes[] = {0, 1, 4095, 4096, 4097, 65536 + 7, 1024 * 1024 + 3};
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		snprintf(p, sizeof(p), "/size%zu", sizes[i]);
		put_pattern(fs, p, sizes[i], s + 10 + i, 0644);
	}
	/* Holes: data at the start, in the middle and at the end of 256 MiB. */
	int fd = TV_OK(cairn_open(fs, "/sparse", O_CREAT | O_RDWR, 0644));
	unsigned char blk[8192];
	tv_fill(blk, sizeof(blk), s + 20);
	TV_EQ(cairn_pwrite(fs, fd, blk, 100, 0), 100);
	TV_EQ(cairn_pwrite(fs, fd, blk, sizeof(blk), 100 * TV_MiB + 3), sizeof(blk));
	TV_EQ(cairn_pwrite(fs, fd, blk, 10, 256 * TV_MiB - 10), 10);
	TV_OK(cairn_close(fs, fd));
	/* Appends, an overwrite in the middle, truncations. */
	fd = TV_OK(cairn_open(fs, "/appended", O_CREAT | O_WRONLY | O_APPEND, 0600));
	for (int i = 0; i < 20; i++) {
		tv_fill(blk, sizeof(blk), s + 30 + (uint64_t)i);
		TV_EQ(tv_write_full(fs, fd, blk, 1000 + (size_t)i * 300), 1000 + i * 300);
	}
	TV_OK(cairn_close(fs, fd));
	put_pattern(fs, "/trunc", 100000, s + 50, 0644);
	TV_OK(cairn_truncate(fs, "/trunc", 33333));
	TV_OK(cairn_truncate(fs, "/trunc", 50000));
	put_pattern(fs, "/overwritten", 20000, s + 51, 0644);
	fd = TV_OK(cairn_open(fs, "/overwritten", O_WRONLY));
	tv_fill(blk, sizeof(blk), s + 52);
	TV_EQ(cairn_pwrite(fs, fd, blk, 5000, 7000), 5000);
	TV_OK(cairn_close(fs, fd));
	/* Hard links. */
	TV_OK(cairn_mkdir(fs, "/links", 0755));
	put_pattern(fs, "/links/a", 3000, s + 60, 0644);
	TV_OK(cairn_link(fs, "/links/a", "/links/b"));
	TV_OK(cairn_link(fs, "/links/a", "/dir1/c"));
	put_pattern(fs, "/links/x", 10, s + 61, 0644);
	TV_OK(cairn_link(fs, "/links/x", "/links/y"));
	TV_OK(cairn_unlink(fs, "/links/x"));
	/* Symlinks. */
	TV_OK(cairn_symlink(fs, "dir1/dir2", "/sym-rel"));
	TV_OK(cairn_symlink(fs, "/links/a", "/sym-abs"));
	TV_OK(cairn_symlink(fs, "/no/such/target", "/sym-dangling"));
	TV_OK(cairn_symlink(fs, "/dir1", "/dir1/dir2/sym-up"));
	char *longt = malloc(4096);
	for (int i = 0; i < 4095; i++)
		longt[i] = (char)('A' + (i + (int)v) % 26);
	longt[4095] = '\0';
	TV_OK(cairn_symlink(fs, longt, "/sym-long"));
	free(longt);
	/* Modes and owners. */
	put_pattern(fs, "/mode0000", 5, s + 70, 0);
	put_pattern(fs, "/mode4755", 5, s + 71, 0755);
	TV_OK(cairn_chmod(fs, "/mode4755", 04755));
	TV_OK(cairn_mkdir(fs, "/sticky", 0755));
	TV_OK(cairn_chmod(fs, "/sticky", 01777));
	if (geteuid() == 0) {
		put_pattern(fs, "/owned", 5, s + 72, 0644);
		TV_OK(cairn_chown(fs, "/owned", 1000 + v, 2000 + v));
		TV_OK(cairn_chown(fs, "/sticky", 0, 100));
	}
	/* Renames and removals. */
	put_pattern(fs, "/tmp-a", 1234, s + 80, 0644);
	TV_OK(cairn_rename(fs, "/tmp-a", "/renamed", 0));
	TV_OK(cairn_mkdir(fs, "/olddir", 0755));
	put_pattern(fs, "/olddir/inside", 4321, s + 81, 0644);
	TV_OK(cairn_rename(fs, "/olddir", "/dir1/newdir", 0));
	put_pattern(fs, "/victim", 100, s + 82, 0644);
	put_pattern(fs, "/replacer", 200, s + 83, 0644);
	TV_OK(cairn_rename(fs, "/replacer", "/victim", 0));
	put_pattern(fs, "/gone", 5000, s + 84, 0644);
	TV_OK(cairn_unlink(fs, "/gone"));
	TV_OK(cairn_mkdir(fs, "/gonedir", 0755));
	TV_OK(cairn_rmdir(fs, "/gonedir"));
	/* A 255-byte name and a directory with many entries. */
	char name[256];
	memset(name, 'N', 255);
	name[255] = '\0';
	snprintf(p, sizeof(p), "/%s", name);
	put_pattern(fs, p, 55, s + 90, 0644);
	TV_OK(cairn_mkdir(fs, "/many", 0755));
	for (int i = 0; i < 300; i++) {
		snprintf(p, sizeof(p), "/many/file-%03d", i);
		put_pattern(fs, p, (size_t)i * 13, s + 100 + (uint64_t)i, 0644);
	}
	for (int i = 0; i < 300; i += 7) {
		snprintf(p, sizeof(p), "/many/file-%03d", i);
		TV_OK(cairn_unlink(fs, p));
	}
	/* Explicit times last, so later changes do not overwrite them. */
	set_times(fs, "/size4096", 1300000000, 123456789);
	set_times(fs, "/dir1/dir2", 1400000000, 1);
	set_times(fs, "/links/a", 1500000000, 999999999);
	set_times(fs, "/sparse", 1600000000, 500);
}

/* Paths whose inode numbers must survive a remount. */
static const char *ino_paths[] = {"/", "/dir1", "/dir1/dir2/dir3/deep", "/links/a", "/dir1/c",
				  "/sym-rel", "/sparse", "/many/file-001", "/renamed"};
#define N_INO (sizeof(ino_paths) / sizeof(ino_paths[0]))

static void save_inos(cairn_fs *fs, ino_t *inos)
{
	for (size_t i = 0; i < N_INO; i++)
		inos[i] = tv_lstat(fs, ino_paths[i]).st_ino;
}

static void check_inos(cairn_fs *fs, const ino_t *inos)
{
	for (size_t i = 0; i < N_INO; i++) {
		ino_t now = tv_lstat(fs, ino_paths[i]).st_ino;
		if (now != inos[i])
			fail_msg("%s: st_ino %llu became %llu across remount", ino_paths[i],
				 (unsigned long long)inos[i], (unsigned long long)now);
	}
}

static void remount(struct testvol *tv, const struct cairn_mount_opts *opts)
{
	TV_OK(tv_unmount(tv));
	if (!tv_mount(tv, opts))
		fail_msg("remount failed");
}

static void test_tree_survives_remount(void **state)
{
	struct testvol *tv = *state;
	build_tree(tv->fs, 1);
	ino_t inos[N_INO];
	save_inos(tv->fs, inos);
	char *a = tv_dump(tv->fs, DUMP_FLAGS);
	/* atime is not in the dump (reading for the dump may update it under
	 * relatime rules); it must persist all the same. */
	struct stat before = tv_stat(tv->fs, "/size4096");
	remount(tv, NULL);
	struct stat after = tv_stat(tv->fs, "/size4096");
	TV_EQ(tv_ts_ns(&after.st_atim), tv_ts_ns(&before.st_atim));
	char *b = tv_dump(tv->fs, DUMP_FLAGS);
	tv_assert_dump_eq(a, b, "after remount");
	check_inos(tv->fs, inos);
	/* A second cycle, now from a volume that was itself remounted. */
	remount(tv, NULL);
	char *c = tv_dump(tv->fs, DUMP_FLAGS);
	tv_assert_dump_eq(a, c, "after second remount");
	free(a);
	free(b);
	free(c);
}

static void test_tree_survives_digest(void **state)
{
	struct testvol *tv = *state;
	build_tree(tv->fs, 2);
	char *a = tv_dump(tv->fs, DUMP_FLAGS);
	TV_EQ(cairn_digest(tv->fs), 0);
	char *b = tv_dump(tv->fs, DUMP_FLAGS);
	tv_assert_dump_eq(a, b, "after cairn_digest");
	TV_EQ(cairn_digest(tv->fs), 0); /* nothing left to digest: still fine */
	remount(tv, NULL);
	char *c = tv_dump(tv->fs, DUMP_FLAGS);
	tv_assert_dump_eq(a, c, "after digest and remount");
	free(a);
	free(b);
	free(c);
}

static void test_digested_then_changed_survives_remount(void **state)
{
	struct testvol *tv = *state;
	cairn_fs *fs = tv->fs;
	build_tree(fs, 3);
	TV_OK(cairn_digest(fs));
	/* Change digested state through the log: overwrite, truncate, unlink,
	 * rename, relink, chmod. */
	int fd = TV_OK(cairn_open(fs, "/size1048579", O_WRONLY));
	unsigned char blk[10000];
	tv_fill(blk, sizeof(blk), 4242);
	TV_EQ(cairn_pwrite(fs, fd, blk, sizeof(blk), 500000), sizeof(blk));
	TV_OK(cairn_close(fs, fd));
	TV_OK(cairn_truncate(fs, "/size65543", 10));
	TV_OK(cairn_unlink(fs, "/links/b"));
	TV_OK(cairn_rename(fs, "/dir1/dir2", "/moved-dir2", 0));
	TV_OK(cairn_link(fs, "/renamed", "/renamed-link"));
	TV_OK(cairn_chmod(fs, "/mode0000", 0640));
	TV_ERR(cairn_rmdir(fs, "/dir1/newdir"), ENOTEMPTY);
	TV_OK(cairn_unlink(fs, "/dir1/newdir/inside"));
	TV_OK(cairn_rmdir(fs, "/dir1/newdir"));
	char *a = tv_dump(fs, DUMP_FLAGS);
	remount(tv, NULL);
	char *b = tv_dump(tv->fs, DUMP_FLAGS);
	tv_assert_dump_eq(a, b, "digested + logged state after remount");
	free(a);
	free(b);
}

static void test_repeated_remounts(void **state)
{
	struct testvol *tv = *state;
	for (int round = 0; round < 6; round++) {
		char p[64];
		snprintf(p, sizeof(p), "/round%d", round);
		put_pattern(tv->fs, p, 10000 + (size_t)round * 5000, 77 + (uint64_t)round, 0644);
		if (round > 0) {
			snprintf(p, sizeof(p), "/round%d", round - 1);
			int fd = TV_OK(cairn_open(tv->fs, p, O_WRONLY | O_APPEND));
			TV_EQ(cairn_write(tv->fs, fd, "tail", 4), 4);
			TV_OK(cairn_close(tv->fs, fd));
		}
		if (round % 2)
			TV_OK(cairn_digest(tv->fs));
		char *a = tv_dump(tv->fs, DUMP_FLAGS);
		remount(tv, NULL);
		char *b = tv_dump(tv->fs, DUMP_FLAGS);
		char what[64];
		snprintf(what, sizeof(what), "remount round %d", round);
		tv_assert_dump_eq(a, b, what);
		free(a);
		free(b);
	}
}

static void test_sparse_1tib_survives_remount(void **state)
{
	struct testvol *tv = *state;
	unsigned char blk[4096];
	tv_fill(blk, sizeof(blk), 1);
	int fd = TV_OK(cairn_open(tv->fs, "/big", O_CREAT | O_WRONLY, 0644));
	TV_EQ(cairn_pwrite(tv->fs, fd, blk, sizeof(blk), (off_t)TV_TiB - 4096), 4096);
	TV_OK(cairn_close(tv->fs, fd));
	remount(tv, NULL);
	struct stat st = tv_stat(tv->fs, "/big");
	TV_EQ(st.st_size, TV_TiB);
	if (st.st_blocks > 2048)
		fail_msg("st_blocks %lld after remount", (long long)st.st_blocks);
	fd = TV_OK(cairn_open(tv->fs, "/big", O_RDONLY));
	tv_expect_at(tv->fs, fd, (off_t)TV_TiB - 4096, blk, 4096);
	tv_expect_at(tv->fs, fd, 0, NULL, 4096);
	tv_expect_at(tv->fs, fd, (off_t)(TV_TiB / 2), NULL, 4096);
	TV_OK(cairn_close(tv->fs, fd));
}

static void test_unlinked_open_file_gone_after_remount(void **state)
{
	struct testvol *tv = *state;
	struct statvfs a, b;
	TV_OK(cairn_digest(tv->fs));
	TV_OK(cairn_statvfs(tv->fs, "/", &a));
	int fd = TV_OK(cairn_open(tv->fs, "/orphan", O_CREAT | O_RDWR, 0644));
	unsigned char *buf = malloc(TV_MiB);
	tv_fill(buf, TV_MiB, 5);
	TV_EQ(tv_write_full(tv->fs, fd, buf, TV_MiB), TV_MiB);
	TV_OK(cairn_unlink(tv->fs, "/orphan"));
	TV_OK(cairn_digest(tv->fs));
	tv_expect_at(tv->fs, fd, 0, buf, TV_MiB); /* still readable after digest */
	TV_OK(cairn_close(tv->fs, fd));
	remount(tv, NULL);
	assert_false(tv_exists(tv->fs, "/orphan"));
	TV_OK(cairn_digest(tv->fs));
	TV_OK(cairn_statvfs(tv->fs, "/", &b));
	TV_EQ(b.f_ffree, a.f_ffree);
	/* The 1 MiB of the orphan is free again (a directory block or two may
	 * stay allocated). */
	if ((b.f_bfree + 16) * b.f_frsize < a.f_bfree * a.f_frsize)
		fail_msg("f_bfree %llu after remount, %llu before the orphan: its blocks leaked",
			 (unsigned long long)b.f_bfree, (unsigned long long)a.f_bfree);
	free(buf);
}

static void test_batch_mode_survives_remount(void **state)
{
	struct testvol *tv = *state;
	struct cairn_mount_opts batch = {.batch_ms = 5};
	remount(tv, &batch);
	build_tree(tv->fs, 4);
	TV_EQ(cairn_sync(tv->fs), 0);
	char *a = tv_dump(tv->fs, DUMP_FLAGS);
	remount(tv, NULL);
	char *b = tv_dump(tv->fs, DUMP_FLAGS);
	tv_assert_dump_eq(a, b, "batch-mode tree after remount");
	free(a);
	free(b);
}

/* ---- filling the log many times over ------------------------------------ */

enum { NFILES = 8 };
#define FILE_SPAN (2 * TV_MiB)

/* Writes total bytes in pieces of 1..256 KiB at random offsets over NFILES
 * files of FILE_SPAN, keeping a model; verifies against the model. */
static void churn(struct testvol *tv, uint64_t total, uint64_t seed)
{
	cairn_fs *fs = tv->fs;
	unsigned char *model = calloc(NFILES, FILE_SPAN);
	size_t sizes[NFILES] = {0};
	unsigned char *buf = malloc(256 * 1024);
	int fds[NFILES];
	for (int i = 0; i < NFILES; i++) {
		char p[32];
		snprintf(p, sizeof(p), "/churn%d", i);
		fds[i] = TV_OK(cairn_open(fs, p, O_CREAT | O_RDWR, 0644));
	}
	uint64_t rs = seed, written = 0, ops = 0;
	while (written < total) {
		int f = (int)(tv_splitmix(&rs) % NFILES);
		size_t len = 1 + tv_splitmix(&rs) % (256 * 1024);
		size_t off = tv_splitmix(&rs) % (FILE_SPAN - len);
		tv_fill(buf, len, tv_splitmix(&rs));
		if (tv_pwrite_full(fs, fds[f], buf, len, (off_t)off) != (ssize_t)len)
			fail_msg("pwrite #%llu (%zu bytes at %zu of churn%d) after %llu bytes: %s",
				 (unsigned long long)ops, len, off, f, (unsigned long long)written,
				 tv_errname(errno));
		memcpy(model + (size_t)f * FILE_SPAN + off, buf, len);
		if (off + len > sizes[f])
			sizes[f] = off + len;
		written += len;
		ops++;
		/* Now and then, check a random recent range through another path. */
		if (ops % 200 == 0)
			tv_expect_at(fs, fds[f], (off_t)off, buf, len);
	}
	for (int i = 0; i < NFILES; i++)
		TV_OK(cairn_close(fs, fds[i]));
	for (int pass = 0; pass < 2; pass++) {
		for (int i = 0; i < NFILES; i++) {
			char p[32];
			snprintf(p, sizeof(p), "/churn%d", i);
			tv_expect(tv->fs, p, model + (size_t)i * FILE_SPAN, sizes[i]);
		}
		if (pass == 0)
			remount(tv, NULL);
	}
	free(buf);
	free(model);
}

static int small_log_setup(void **state)
{
	struct cairn_mkfs_opts o;
	tv_default_mkfs_opts(&o);
	o.log_size = 1 * TV_MiB;
	o.fast_size = 64 * TV_MiB;
	struct testvol *tv = tv_create(&o);
	if (!tv)
		return -1;
	if (!tv_mount(tv, NULL)) {
		tv_destroy(tv);
		return -1;
	}
	*state = tv;
	return 0;
}

static void test_log_filled_many_times_digest_thread(void **state)
{
	churn(*state, 100 * TV_MiB, 1);
}

static void test_log_filled_many_times_inline_digest(void **state)
{
	struct testvol *tv = *state;
	struct cairn_mount_opts inl = {.no_digest_thread = 1};
	remount(tv, &inl);
	churn(tv, 40 * TV_MiB, 2);
}

static void test_write_larger_than_log(void **state)
{
	struct testvol *tv = *state;
	const size_t len = 3 * TV_MiB; /* three times the log */
	unsigned char *buf = malloc(len);
	tv_fill(buf, len, 3);
	int fd = TV_OK(cairn_open(tv->fs, "/big", O_CREAT | O_RDWR, 0644));
	/* A short count is allowed; an error is not. */
	TV_EQ(tv_pwrite_full(tv->fs, fd, buf, len, 12345), len);
	tv_expect_at(tv->fs, fd, 12345, buf, len);
	TV_OK(cairn_close(tv->fs, fd));
	remount(tv, NULL);
	fd = TV_OK(cairn_open(tv->fs, "/big", O_RDONLY));
	tv_expect_at(tv->fs, fd, 12345, buf, len);
	tv_expect_at(tv->fs, fd, 0, NULL, 12345);
	TV_OK(cairn_close(tv->fs, fd));
	free(buf);
}

static void test_log_filled_by_metadata(void **state)
{
	struct testvol *tv = *state;
	cairn_fs *fs = tv->fs;
	char p[64];
	TV_OK(cairn_mkdir(fs, "/m", 0755));
	for (int i = 0; i < 20000; i++) {
		snprintf(p, sizeof(p), "/m/f%d", i % 500);
		if (i < 500) {
			tv_put(fs, p, NULL, 0, 0644);
		} else if (i % 3 == 0) {
			char q[64];
			snprintf(q, sizeof(q), "/m/r%d", i % 500);
			if (cairn_rename(fs, p, q, 0) == 0)
				TV_OK(cairn_rename(fs, q, p, 0));
		} else {
			TV_OK(cairn_chmod(fs, p, (mode_t)(0600 + (i % 64))));
		}
	}
	char *a = tv_dump(fs, DUMP_FLAGS);
	remount(tv, NULL);
	char *b = tv_dump(tv->fs, DUMP_FLAGS);
	tv_assert_dump_eq(a, b, "after 20,000 metadata operations in a 1 MiB log");
	free(a);
	free(b);
}

/* ---- ENOSPC -------------------------------------------------------------- */

enum { MAXF = 256 };

static int tiny_setup(void **state)
{
	struct cairn_mkfs_opts o;
	tv_default_mkfs_opts(&o);
	o.log_size = 1 * TV_MiB;
	o.fast_size = 8 * TV_MiB;
	struct testvol *tv = tv_create(&o);
	if (!tv)
		return -1;
	if (!tv_mount(tv, NULL)) {
		tv_destroy(tv);
		return -1;
	}
	*state = tv;
	return 0;
}

static void chunk_data(unsigned char *buf, size_t len, int file, size_t off)
{
	/* Content depends on (file, offset) only, 4 KiB-aligned pieces. */
	for (size_t done = 0; done < len;) {
		size_t at = off + done;
		size_t blk = at / 4096, in = at % 4096;
		size_t n = 4096 - in < len - done ? 4096 - in : len - done;
		unsigned char tmp[4096];
		tv_fill(tmp, 4096, (uint64_t)file * 1000003 + blk);
		memcpy(buf + done, tmp + in, n);
		done += n;
	}
}

static void verify_acked(cairn_fs *fs, int nfiles, const size_t *acked)
{
	unsigned char *want = malloc(TV_MiB);
	for (int f = 0; f < nfiles; f++) {
		char p[32];
		snprintf(p, sizeof(p), "/fill%d", f);
		struct stat st = tv_stat(fs, p);
		if ((size_t)st.st_size != acked[f])
			fail_msg("%s: size %lld, but %zu bytes were acknowledged", p,
				 (long long)st.st_size, acked[f]);
		int fd = TV_OK(cairn_open(fs, p, O_RDONLY));
		for (size_t off = 0; off < acked[f]; off += TV_MiB) {
			size_t n = acked[f] - off < TV_MiB ? acked[f] - off : TV_MiB;
			chunk_data(want, n, f, off);
			tv_expect_at(fs, fd, (off_t)off, want, n);
		}
		TV_OK(cairn_close(fs, fd));
	}
	free(want);
}

/* Writes 1 MiB files in 60 KiB pieces until ENOSPC; returns the number of
 * files and fills acked[] with the acknowledged bytes of each. */
static int fill_until_enospc(cairn_fs *fs, size_t *acked)
{
	unsigned char buf[60 * 1024];
	int f = 0;
	uint64_t total = 0;
	for (;;) {
		if (f >= MAXF || total > 64 * TV_MiB)
			fail_msg("no ENOSPC after writing %llu bytes to an 8 MiB tier",
				 (unsigned long long)total);
		char p[32];
		snprintf(p, sizeof(p), "/fill%d", f);
		errno = 0;
		int fd = cairn_open(fs, p, O_CREAT | O_WRONLY, 0644);
		if (fd < 0) {
			if (errno == ENOSPC)
				return f;
			fail_msg("open(%s): %s", p, tv_errname(errno));
		}
		acked[f] = 0;
		f++;
		while (acked[f - 1] < TV_MiB) {
			size_t n = sizeof(buf);
			chunk_data(buf, n, f - 1, acked[f - 1]);
			errno = 0;
			ssize_t w = cairn_pwrite(fs, fd, buf, n, (off_t)acked[f - 1]);
			if (w < 0) {
				if (errno != ENOSPC)
					fail_msg("pwrite(%s): %s, expected ENOSPC or success", p,
						 tv_errname(errno));
				TV_OK(cairn_close(fs, fd));
				return f;
			}
			if (w == 0)
				fail_msg("pwrite(%s) returned 0", p);
			acked[f - 1] += (size_t)w;
			total += (uint64_t)w;
		}
		TV_OK(cairn_close(fs, fd));
	}
}

static void test_enospc_keeps_acknowledged_data(void **state)
{
	struct testvol *tv = *state;
	static size_t acked[MAXF];
	int n = fill_until_enospc(tv->fs, acked);
	assert_true(n > 0);
	size_t sum = 0;
	for (int i = 0; i < n; i++)
		sum += acked[i];
	if (sum < 2 * TV_MiB)
		fail_msg("ENOSPC after only %zu bytes on an 8 MiB tier", sum);
	verify_acked(tv->fs, n, acked);
	remount(tv, NULL);
	verify_acked(tv->fs, n, acked);
}

static void test_enospc_space_reusable_after_unlink(void **state)
{
	struct testvol *tv = *state;
	static size_t acked[MAXF];
	int n = fill_until_enospc(tv->fs, acked);
	/* Unlink works on a full volume and frees the space without any
	 * explicit digest from the application. */
	for (int i = 0; i < n; i++) {
		char p[32];
		snprintf(p, sizeof(p), "/fill%d", i);
		TV_OK(cairn_unlink(tv->fs, p));
	}
	const size_t len = 4 * TV_MiB;
	unsigned char *buf = malloc(len);
	tv_fill(buf, len, 66);
	tv_put(tv->fs, "/after", buf, len, 0644);
	tv_expect(tv->fs, "/after", buf, len);
	remount(tv, NULL);
	tv_expect(tv->fs, "/after", buf, len);
	/* And the whole cycle again after the remount. */
	TV_OK(cairn_unlink(tv->fs, "/after"));
	n = fill_until_enospc(tv->fs, acked);
	verify_acked(tv->fs, n, acked);
	free(buf);
}

/* ---- mount failures ------------------------------------------------------ */

static void expect_mount_fails(const char *dir, const char *why, const char *must_name)
{
	errno = 0;
	cairn_fs *fs = cairn_mount(dir, NULL);
	int e = errno;
	if (fs) {
		cairn_unmount(fs);
		fail_msg("mount of %s succeeded (%s)", dir, why);
	}
	if (e == 0)
		fail_msg("mount of %s failed without errno (%s)", dir, why);
	const char *msg = cairn_last_error();
	if (!msg || !*msg)
		fail_msg("mount of %s failed (%s) with an empty cairn_last_error()", dir, why);
	if (must_name && !strstr(msg, must_name))
		fail_msg("mount (%s): message \"%s\" does not name \"%s\"", why, msg, must_name);
	print_message("  %s: %s: %s\n", why, tv_errname(e), msg);
}

struct part {
	char path[PATH_MAX];
	off_t size;
	bool text;
};

/* The regular files of a volume directory (recursively). */
static int list_parts(const char *dir, struct part *parts, int max, int n)
{
	DIR *d = opendir(dir);
	if (!d)
		return n;
	struct dirent *de;
	while ((de = readdir(d)) && n < max) {
		if (de->d_name[0] == '.' && (!de->d_name[1] || (de->d_name[1] == '.' && !de->d_name[2])))
			continue;
		char p[PATH_MAX];
		if (snprintf(p, sizeof(p), "%s/%s", dir, de->d_name) >= (int)sizeof(p))
			continue;
		struct stat st;
		if (lstat(p, &st) != 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			n = list_parts(p, parts, max, n);
		} else if (S_ISREG(st.st_mode)) {
			struct part *pt = &parts[n++];
			snprintf(pt->path, sizeof(pt->path), "%s", p);
			pt->size = st.st_size;
			pt->text = false;
			if (st.st_size > 0 && st.st_size < 65536) {
				FILE *f = fopen(p, "rb");
				if (f) {
					pt->text = true;
					int c;
					while ((c = fgetc(f)) != EOF)
						if (!(c == '\n' || c == '\t' || c == '\r' || (c >= 0x20 && c < 0x7f)))
							pt->text = false;
					fclose(f);
				}
			}
		}
	}
	closedir(d);
	return n;
}

/* The path of part `name` ("log", "fast"): as the manifest names it, else
 * the non-text file of the expected size anywhere in the scratch root. */
static void part_path(const struct testvol *tv, const char *name, uint64_t size, char *out)
{
	static char names[8][32], paths[8][PATH_MAX];
	int n = tv_manifest_parts(tv->dir, names, paths, NULL, 8);
	for (int i = 0; i < n; i++) {
		if (strcmp(names[i], name) == 0) {
			snprintf(out, PATH_MAX, "%s", paths[i]);
			return;
		}
	}
	static struct part parts[64];
	n = list_parts(tv->root, parts, 64, 0);
	for (int i = 0; i < n; i++) {
		if (!parts[i].text && (uint64_t)parts[i].size == size) {
			snprintf(out, PATH_MAX, "%s", parts[i].path);
			return;
		}
	}
	fail_msg("cannot find the %s part of %s (no manifest line, no file of %llu bytes)", name,
		 tv->dir, (unsigned long long)size);
}

static const struct part *find_manifest(const struct part *parts, int n)
{
	for (int i = 0; i < n; i++)
		if (parts[i].text)
			return &parts[i];
	return NULL;
}

static const char *base_name(const char *p)
{
	const char *s = strrchr(p, '/');
	return s ? s + 1 : p;
}

static void flip_byte(const char *path, off_t off)
{
	int fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	unsigned char c;
	assert_int_equal(pread(fd, &c, 1, off), 1);
	c ^= 0x5a;
	assert_int_equal(pwrite(fd, &c, 1, off), 1);
	close(fd);
}

static unsigned char *slurp(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	unsigned char *b = malloc((size_t)st.st_size + 1);
	size_t got = 0;
	while (got < (size_t)st.st_size) {
		ssize_t n = pread(fd, b + got, (size_t)st.st_size - got, (off_t)got);
		assert_true(n > 0);
		got += (size_t)n;
	}
	close(fd);
	*len = got;
	return b;
}

static void spill(const char *path, const unsigned char *b, size_t len)
{
	int fd = open(path, O_WRONLY | O_TRUNC | O_CREAT, 0644);
	assert_true(fd >= 0);
	size_t done = 0;
	while (done < len) {
		ssize_t n = pwrite(fd, b + done, len - done, (off_t)done);
		assert_true(n > 0);
		done += (size_t)n;
	}
	close(fd);
}

/* A small unmounted volume with one known file in it. */
static struct testvol *small_volume_with_file(void)
{
	struct cairn_mkfs_opts o;
	tv_default_mkfs_opts(&o);
	o.log_size = 1 * TV_MiB;
	o.fast_size = 8 * TV_MiB;
	struct testvol *tv = tv_create(&o);
	assert_non_null(tv);
	assert_non_null(tv_mount(tv, NULL));
	tv_put_str(tv->fs, "/canary", "still here");
	TV_OK(cairn_digest(tv->fs));
	TV_OK(tv_unmount(tv));
	return tv;
}

static void expect_mount_ok_with_canary(struct testvol *tv, const char *after)
{
	if (!tv_mount(tv, NULL))
		fail_msg("volume does not mount after %s", after);
	tv_expect_str(tv->fs, "/canary", "still here");
	TV_OK(tv_unmount(tv));
}

static void test_mount_nonexistent_directory(void **state)
{
	(void)state;
	struct testvol *tv = tv_scratch("nomount");
	char p[PATH_MAX + 16];
	snprintf(p, sizeof(p), "%s/does-not-exist", tv->root);
	errno = 0;
	cairn_fs *fs = cairn_mount(p, NULL);
	int e = errno;
	assert_null(fs);
	TV_EQ(e, ENOENT);
	const char *msg = cairn_last_error();
	assert_true(msg && *msg);
	tv_destroy(tv);
}

static void test_mount_not_a_volume(void **state)
{
	(void)state;
	struct testvol *tv = tv_scratch("notvol");
	/* An empty directory. */
	assert_int_equal(mkdir(tv->dir, 0755), 0);
	expect_mount_fails(tv->dir, "empty directory", NULL);
	/* A directory of unrelated files. */
	char p[PATH_MAX + 32];
	snprintf(p, sizeof(p), "%s/readme.txt", tv->dir);
	spill(p, (const unsigned char *)"hello\n", 6);
	snprintf(p, sizeof(p), "%s/blob", tv->dir);
	unsigned char junk[8192];
	tv_fill(junk, sizeof(junk), 9);
	spill(p, junk, sizeof(junk));
	expect_mount_fails(tv->dir, "directory of unrelated files", NULL);
	/* A regular file. */
	expect_mount_fails(p, "regular file", NULL);
	tv_destroy(tv);
}

static void test_mount_corrupt_superblock(void **state)
{
	(void)state;
	struct testvol *tv = small_volume_with_file();
	char fast[PATH_MAX];
	part_path(tv, "fast", tv->mkfs.fast_size, fast);
	struct stat st;
	assert_int_equal(stat(fast, &st), 0);
	off_t back = st.st_size - 4096; /* the backup copy: the part's last block */
	/* Magic, version, geometry, reserved bytes and the checksum itself:
	 * every byte of the superblock is covered by its checksum.  One
	 * damaged copy is worked around (and said); both refuse the mount. */
	static const off_t offs[] = {0, 8, 40, 80, 2000, 4000, 4095};
	for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
		char why[96];
		snprintf(why, sizeof(why), "superblock byte %lld flipped", (long long)offs[i]);
		flip_byte(fast, offs[i]);
		expect_mount_ok_with_canary(tv, why);
		if (!strstr(cairn_last_error(), "superblock copy at offset 0 is damaged"))
			fail_msg("no warning about the damaged copy: \"%s\"", cairn_last_error());
		flip_byte(fast, back + offs[i]);
		snprintf(why, sizeof(why), "superblock byte %lld flipped in both copies",
			 (long long)offs[i]);
		expect_mount_fails(tv->dir, why, NULL);
		const char *msg = cairn_last_error();
		if (!strstr(msg, base_name(fast)) || !strcasestr(msg, "both superblock copies"))
			fail_msg("message \"%s\" names neither %s nor both superblock copies", msg,
				 base_name(fast));
		flip_byte(fast, offs[i]); /* restore */
		flip_byte(fast, back + offs[i]);
		expect_mount_ok_with_canary(tv, "restoring the superblock");
	}
	tv_destroy(tv);
}

static void test_mount_corrupt_manifest(void **state)
{
	(void)state;
	struct testvol *tv = small_volume_with_file();
	struct part parts[64];
	int n = list_parts(tv->dir, parts, 64, 0);
	const struct part *man = find_manifest(parts, n);
	if (!man)
		fail_msg("no text manifest found in %s", tv->dir);
	size_t len;
	unsigned char *orig = slurp(man->path, &len);
	spill(man->path, (const unsigned char *)"this is not a manifest\n", 23);
	expect_mount_fails(tv->dir, "garbage manifest", NULL);
	spill(man->path, (const unsigned char *)"", 0);
	expect_mount_fails(tv->dir, "empty manifest", NULL);
	spill(man->path, orig, len / 2);
	expect_mount_fails(tv->dir, "manifest cut in half", NULL);
	unlink(man->path);
	expect_mount_fails(tv->dir, "missing manifest", NULL);
	spill(man->path, orig, len);
	expect_mount_ok_with_canary(tv, "restoring the manifest");
	free(orig);
	tv_destroy(tv);
}

static void test_mount_truncated_part(void **state)
{
	(void)state;
	struct testvol *tv = small_volume_with_file();
	static char which[2][PATH_MAX];
	part_path(tv, "fast", tv->mkfs.fast_size, which[0]);
	part_path(tv, "log", tv->mkfs.log_size, which[1]);
	for (int i = 0; i < 2; i++) {
		size_t len;
		unsigned char *orig = slurp(which[i], &len);
		assert_int_equal(truncate(which[i], (off_t)len / 2), 0);
		expect_mount_fails(tv->dir, i ? "log part truncated" : "fast part truncated",
				   NULL);
		assert_int_equal(truncate(which[i], 0), 0);
		expect_mount_fails(tv->dir, i ? "log part empty" : "fast part empty", NULL);
		spill(which[i], orig, len);
		free(orig);
		expect_mount_ok_with_canary(tv, "restoring a truncated part");
	}
	tv_destroy(tv);
}

static void test_mount_missing_part(void **state)
{
	(void)state;
	struct testvol *tv = small_volume_with_file();
	static char which[2][PATH_MAX];
	part_path(tv, "fast", tv->mkfs.fast_size, which[0]);
	part_path(tv, "log", tv->mkfs.log_size, which[1]);
	for (int i = 0; i < 2; i++) {
		char moved[PATH_MAX + 8];
		snprintf(moved, sizeof(moved), "%s.away", which[i]);
		assert_int_equal(rename(which[i], moved), 0);
		expect_mount_fails(tv->dir, i ? "log part missing" : "fast part missing",
				   base_name(which[i]));
		assert_int_equal(rename(moved, which[i]), 0);
		expect_mount_ok_with_canary(tv, "putting a missing part back");
	}
	tv_destroy(tv);
}

static void test_mount_swapped_parts_of_two_volumes(void **state)
{
	(void)state;
	/* The log of one volume next to the fast tier of another: the UUIDs
	 * differ, so the volume must be refused, not mixed up. */
	struct testvol *a = small_volume_with_file();
	struct testvol *b = small_volume_with_file();
	static char la[PATH_MAX], lb[PATH_MAX];
	part_path(a, "log", a->mkfs.log_size, la);
	part_path(b, "log", b->mkfs.log_size, lb);
	size_t len_a, len_b;
	unsigned char *log_a = slurp(la, &len_a);
	unsigned char *log_b = slurp(lb, &len_b);
	spill(la, log_b, len_b);
	expect_mount_fails(a->dir, "log part of another volume", NULL);
	spill(la, log_a, len_a);
	expect_mount_ok_with_canary(a, "putting the right log back");
	free(log_a);
	free(log_b);
	tv_destroy(a);
	tv_destroy(b);
}

static void test_mkfs_existing_volume_eexist(void **state)
{
	(void)state;
	struct testvol *tv = small_volume_with_file();
	struct cairn_mkfs_opts o;
	tv_default_mkfs_opts(&o);
	char lp[PATH_MAX + 16], fp[PATH_MAX + 16];
	snprintf(lp, sizeof(lp), "%s/second.log", tv->root);
	snprintf(fp, sizeof(fp), "%s/second.fast", tv->root);
	o.log_path = lp;
	o.fast_path = fp;
	TV_ERR(cairn_mkfs(tv->dir, &o), EEXIST);
	const char *msg = cairn_last_error();
	assert_true(msg && *msg);
	/* The refused mkfs did not touch the volume. */
	expect_mount_ok_with_canary(tv, "a refused mkfs");
	tv_destroy(tv);
}

static void test_mkfs_rejects_impossible_sizes(void **state)
{
	(void)state;
	struct testvol *tv = tv_scratch("badmkfs");
	struct cairn_mkfs_opts o;
	tv_default_mkfs_opts(&o);
	o.fast_size = 4096; /* not even room for the superblock and checkpoints */
	o.log_path = tv->log_part;
	o.fast_path = tv->fast_part;
	errno = 0;
	int r = cairn_mkfs(tv->dir, &o);
	int e = errno;
	if (r == 0)
		fail_msg("mkfs with a 4 KiB fast tier succeeded");
	if (e == 0)
		fail_msg("mkfs failed without errno");
	const char *msg = cairn_last_error();
	assert_true(msg && *msg);
	print_message("  4 KiB fast tier: %s: %s\n", tv_errname(e), msg);
	tv_destroy(tv);
}

/* ---- read-only mount ----------------------------------------------------- */

/* A hash of every file of the volume: the scratch root's files and the
 * parts the manifest names (wherever they are). */
static uint64_t hash_volume_files(const struct testvol *tv)
{
	static struct part parts[64];
	int n = list_parts(tv->root, parts, 64, 0);
	static char names[8][32], paths[8][PATH_MAX];
	int m = tv_manifest_parts(tv->dir, names, paths, NULL, 8);
	uint64_t h = 0;
	for (int i = 0; i < n + m; i++) {
		const char *path = i < n ? parts[i].path : paths[i - n];
		size_t len;
		unsigned char *b = slurp(path, &len);
		h ^= XXH3_64bits(b, len) + (uint64_t)i;
		free(b);
	}
	return h;
}

static void test_read_only_mount_refuses_changes(void **state)
{
	(void)state;
	struct testvol *tv = small_volume_with_file();
	/* Leave undigested records in the log for recovery to replay. */
	assert_non_null(tv_mount(tv, NULL));
	tv_put_str(tv->fs, "/logged", "only in the log");
	TV_OK(cairn_mkdir(tv->fs, "/d", 0755));
	TV_OK(tv_unmount(tv));
	uint64_t before = hash_volume_files(tv);
	struct cairn_mount_opts ro = {.read_only = 1};
	cairn_fs *fs = tv_mount(tv, &ro);
	assert_non_null(fs);
	tv_expect_str(fs, "/canary", "still here");
	tv_expect_str(fs, "/logged", "only in the log");
	TV_ERR(cairn_open(fs, "/new", O_CREAT | O_WRONLY, 0644), EROFS);
	TV_ERR(cairn_open(fs, "/canary", O_WRONLY), EROFS);
	TV_ERR(cairn_open(fs, "/canary", O_RDWR), EROFS);
	TV_ERR(cairn_truncate(fs, "/canary", 0), EROFS);
	TV_ERR(cairn_mkdir(fs, "/d2", 0755), EROFS);
	TV_ERR(cairn_rmdir(fs, "/d"), EROFS);
	TV_ERR(cairn_unlink(fs, "/canary"), EROFS);
	TV_ERR(cairn_rename(fs, "/canary", "/x", 0), EROFS);
	TV_ERR(cairn_link(fs, "/canary", "/x"), EROFS);
	TV_ERR(cairn_symlink(fs, "/canary", "/x"), EROFS);
	TV_ERR(cairn_chmod(fs, "/canary", 0600), EROFS);
	TV_ERR(cairn_chown(fs, "/canary", 1, 1), EROFS);
	TV_ERR(cairn_utimens(fs, "/canary", NULL), EROFS);
	int fd = TV_OK(cairn_open(fs, "/canary", O_RDONLY));
	TV_OK(cairn_close(fs, fd));
	TV_OK(tv_unmount(tv));
	if (hash_volume_files(tv) != before)
		fail_msg("a read-only mount changed the volume's files");
	tv_destroy(tv);
}

#define T(f) cmocka_unit_test_setup_teardown(f, tv_setup, tv_teardown)
#define T_SMALLLOG(f) cmocka_unit_test_setup_teardown(f, small_log_setup, tv_teardown)
#define T_TINY(f) cmocka_unit_test_setup_teardown(f, tiny_setup, tv_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_tree_survives_remount),
		T(test_tree_survives_digest),
		T(test_digested_then_changed_survives_remount),
		T(test_repeated_remounts),
		T(test_sparse_1tib_survives_remount),
		T(test_unlinked_open_file_gone_after_remount),
		T(test_batch_mode_survives_remount),
		T_SMALLLOG(test_log_filled_many_times_digest_thread),
		T_SMALLLOG(test_log_filled_many_times_inline_digest),
		T_SMALLLOG(test_write_larger_than_log),
		T_SMALLLOG(test_log_filled_by_metadata),
		T_TINY(test_enospc_keeps_acknowledged_data),
		T_TINY(test_enospc_space_reusable_after_unlink),
		cmocka_unit_test(test_mount_nonexistent_directory),
		cmocka_unit_test(test_mount_not_a_volume),
		cmocka_unit_test(test_mount_corrupt_superblock),
		cmocka_unit_test(test_mount_corrupt_manifest),
		cmocka_unit_test(test_mount_truncated_part),
		cmocka_unit_test(test_mount_missing_part),
		cmocka_unit_test(test_mount_swapped_parts_of_two_volumes),
		cmocka_unit_test(test_mkfs_existing_volume_eexist),
		cmocka_unit_test(test_mkfs_rejects_impossible_sizes),
		cmocka_unit_test(test_read_only_mount_refuses_changes),
	};
	return cmocka_run_group_tests_name("api_persist", tests, NULL, NULL);
}
