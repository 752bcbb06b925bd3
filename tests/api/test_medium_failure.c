/*
 * test_medium_failure.c - a capacity tier whose medium rejects writes (the
 * kernel's pwrite answering ENOSPC, as a thin-provisioned or hole-punched
 * tier file on a full file system does, or an fdatasync answering EIO).
 * Every part is allocated whole at mkfs, so such an answer is a broken
 * medium, not a full volume:
 *   - the writer whose call needs the digest gets EIO, never ENOSPC (the
 *     fast tier full and the tier empty would otherwise read as "full");
 *   - a migration onto the tier fails with EIO instead of passing for a
 *     full tier;
 *   - unmount fails with EIO and its message names the tier's part and the
 *     offset the write failed at;
 *   - a mount that cannot digest its log refuses with the tier named, not
 *     the fast part;
 *   - once the medium works again, the volume mounts with every
 *     acknowledged byte, and fsck finds it clean.
 *
 * The failures are injected here: this program defines pwrite() and
 * fdatasync(), so every call the engine makes passes through them, and a
 * call on the tier's file (recognised by device and inode) fails while
 * armed.
 */
#include "testvol.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fsck/fsck.h"

#define FAST (4 * TV_MiB)
#define CHUNK (256 * 1024)

/* ---- the tier's medium, failing on demand ------------------------------- */

static struct {
	dev_t dev;
	ino_t ino;
	int write_errno; /* pwrite on the tier fails with this (0: works) */
	int sync_errno;  /* fdatasync on the tier fails with this (0: works) */
	unsigned failed; /* calls failed so far */
} tier;

static bool on_tier(int fd)
{
	struct stat st;
	return tier.ino && fstat(fd, &st) == 0 && st.st_dev == tier.dev && st.st_ino == tier.ino;
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
	int e = __atomic_load_n(&tier.write_errno, __ATOMIC_ACQUIRE);
	if (e && on_tier(fd)) {
		__atomic_fetch_add(&tier.failed, 1, __ATOMIC_RELAXED);
		errno = e;
		return -1;
	}
	return syscall(SYS_pwrite64, fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off)
{
	return pwrite(fd, buf, n, off);
}

int fdatasync(int fd)
{
	int e = __atomic_load_n(&tier.sync_errno, __ATOMIC_ACQUIRE);
	if (e && on_tier(fd)) {
		__atomic_fetch_add(&tier.failed, 1, __ATOMIC_RELAXED);
		errno = e;
		return -1;
	}
	return (int)syscall(SYS_fdatasync, fd);
}

static char tier_path[PATH_MAX];

/* A 4 MiB fast tier over a 32 MiB "ssd" tier (on the file medium, as every
 * capacity tier). */
static struct testvol *volume(void)
{
	struct testvol *tv = tv_scratch("medium-failure");
	struct cairn_mkfs_opts o;
	tv_default_mkfs_opts(&o);
	o.log_size = 2 * TV_MiB;
	o.fast_size = FAST;
	o.ntiers = 1;
	snprintf(tier_path, sizeof(tier_path), "%s/ssd.tier", tv->root);
	o.tiers[0] = (struct cairn_tier_opts){"ssd", tier_path, 32 * TV_MiB, 0};
	if (tv_mkfs(tv, &o))
		fail_msg("mkfs: %s", cairn_last_error());
	struct stat st;
	TV_OK(stat(tier_path, &st));
	tier.dev = st.st_dev;
	tier.ino = st.st_ino;
	tier.failed = 0;
	return tv;
}

static void arm(int write_errno, int sync_errno)
{
	__atomic_store_n(&tier.write_errno, write_errno, __ATOMIC_RELEASE);
	__atomic_store_n(&tier.sync_errno, sync_errno, __ATOMIC_RELEASE);
}

/* The message names the tier's part and says what failed: the write, at
 * which offset, or the sync. */
static void expect_tier_named(const char *what, const char *msg, bool sync)
{
	char part[PATH_MAX + 32];
	snprintf(part, sizeof(part), "tier ssd part %s: ", tier_path);
	bool says = strstr(msg, "failed: ") &&
	            (sync ? strstr(msg, "sync failed") : strstr(msg, "at offset"));
	if (!strstr(msg, part) || !says || strstr(msg, "fast part"))
		fail_msg("%s: the message does not name the failing tier and what failed: \"%s\"",
		         what, msg);
}

/* Writing past what the fast tier holds: the digest spills onto the tier,
 * whose medium answers ENOSPC. */
static void test_spill_onto_failing_tier(void **state)
{
	(void)state;
	struct testvol *tv = volume();
	struct cairn_mount_opts mo = {.no_digest_thread = 1};
	cairn_fs *fs = tv_mount(tv, &mo);
	assert_non_null(fs);
	arm(ENOSPC, 0);
	static unsigned char buf[CHUNK];
	int fd = TV_OK(cairn_open(fs, "/f", O_CREAT | O_WRONLY, 0644));
	uint64_t acked = 0;
	int err = 0;
	for (int i = 0; i < 64 && !err; i++) { /* 16 MiB at most: four fast tiers */
		tv_fill(buf, CHUNK, (uint64_t)i);
		if (cairn_pwrite(fs, fd, buf, CHUNK, (off_t)acked) == CHUNK)
			acked += CHUNK;
		else
			err = errno;
	}
	if (err != EIO)
		fail_msg("after %llu bytes, with the fast tier full and the tier empty: %s, "
		         "expected EIO",
		         (unsigned long long)acked, err ? tv_errname(err) : "no error");
	assert_true(tier.failed > 0);
	assert_true(acked > 0);
	cairn_close(fs, fd);

	/* Unmount says what failed. */
	tv->fs = NULL;
	errno = 0;
	TV_EQ(cairn_unmount(fs), -1);
	TV_EQ(errno, EIO);
	expect_tier_named("unmount", cairn_last_error(), false);

	/* So does a mount that cannot digest the recovered log. */
	errno = 0;
	assert_null(cairn_mount(tv->dir, &mo));
	TV_EQ(errno, EIO);
	expect_tier_named("mount", cairn_last_error(), false);

	/* The medium works again: every acknowledged byte is there. */
	arm(0, 0);
	fs = tv_mount(tv, &mo);
	assert_non_null(fs);
	TV_EQ(tv_stat(fs, "/f").st_size, (off_t)acked);
	fd = TV_OK(cairn_open(fs, "/f", O_RDONLY));
	for (uint64_t off = 0; off < acked; off += CHUNK) {
		tv_fill(buf, CHUNK, off / CHUNK);
		tv_expect_at(fs, fd, (off_t)off, buf, CHUNK);
	}
	TV_OK(cairn_close(fs, fd));
	TV_OK(tv_unmount(tv));
	tv_expect_fsck_clean(tv->dir);
	tv_destroy(tv);
}

/* A migration onto the tier whose writes fail (ENOSPC), or whose sync
 * fails (EIO): EIO, not a "full tier" that ends the pass quietly; the data
 * stays where it was, readable.  A failed sync stays failed for the rest
 * of the mount (the kernel may have dropped the pages it did not write), so
 * the tier works again only after a remount. */
static void run_migration_failure(int write_errno, int sync_errno)
{
	struct testvol *tv = volume();
	struct cairn_mount_opts mo = {
	    .no_digest_thread = 1, .high_watermark = 10, .low_watermark = 5};
	cairn_fs *fs = tv_mount(tv, &mo);
	assert_non_null(fs);
	static unsigned char buf[CHUNK];
	for (int i = 0; i < 4; i++) {
		char p[32];
		snprintf(p, sizeof(p), "/m%d", i);
		tv_fill(buf, CHUNK, 100 + (uint64_t)i);
		tv_put(fs, p, buf, CHUNK, 0644);
	}
	TV_OK(cairn_digest(fs));
	arm(write_errno, sync_errno);
	errno = 0;
	TV_EQ(cairn_migrate(fs), -1);
	TV_EQ(errno, EIO);
	assert_true(tier.failed > 0);
	for (int i = 0; i < 4; i++) {
		char p[32];
		snprintf(p, sizeof(p), "/m%d", i);
		tv_fill(buf, CHUNK, 100 + (uint64_t)i);
		tv_expect(fs, p, buf, CHUNK);
	}
	expect_tier_named("migrate", cairn_last_error(), sync_errno != 0);
	arm(0, 0);
	if (sync_errno) {
		errno = 0;
		TV_EQ(cairn_migrate(fs), -1);
		TV_EQ(errno, EIO);
		tv->fs = NULL;
		errno = 0;
		TV_EQ(cairn_unmount(fs), -1);
		TV_EQ(errno, EIO);
		expect_tier_named("unmount", cairn_last_error(), true);
		fs = tv_mount(tv, &mo);
		assert_non_null(fs);
	}
	TV_OK(cairn_migrate(fs));
	struct cairn_info in;
	TV_OK(cairn_info(fs, &in));
	assert_true(in.tiers[1].in_down > 0); /* it moved once the medium worked */
	TV_OK(tv_unmount(tv));
	tv_expect_fsck_clean(tv->dir);
	tv_destroy(tv);
}

static void test_migration_onto_failing_tier(void **state)
{
	(void)state;
	run_migration_failure(ENOSPC, 0);
}

static void test_migration_sync_fails(void **state)
{
	(void)state;
	run_migration_failure(0, EIO);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_spill_onto_failing_tier),
	    cmocka_unit_test(test_migration_onto_failing_tier),
	    cmocka_unit_test(test_migration_sync_fails),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
