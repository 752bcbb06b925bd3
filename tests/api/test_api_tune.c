/*
 * test_api_tune.c - cairn_tune: the options a running volume may change.
 *
 *   - the watermarks and promotion change at once (cairn_info shows them)
 *     and are stored: the next mount starts from them, and a mount's own
 *     options still win;
 *   - a lower high watermark makes the digest thread migrate now;
 *   - every bad value is EINVAL and changes nothing, in the running volume
 *     or in its manifest; a read-only mount is EROFS; NULLs as the API says;
 *   - batch_ms changes a batch-mode mount's interval and is refused in sync
 *     mode;
 *   - a manifest whose option line is damaged is refused at mount, with the
 *     line named.
 */
#include "testvol.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static struct cairn_info info_of(cairn_fs *fs)
{
	struct cairn_info in;
	TV_OK(cairn_info(fs, &in));
	return in;
}

/* The manifest's bytes, to see that a refused change wrote nothing. */
static char *manifest_of(const struct testvol *tv)
{
	char path[PATH_MAX + 32];
	snprintf(path, sizeof(path), "%s/cairn.volume", tv->dir);
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	char *buf = calloc(1, 65536);
	size_t n = fread(buf, 1, 65535, f);
	buf[n] = 0;
	fclose(f);
	return buf;
}

static void test_tune_changes_and_stores(void **state)
{
	(void)state;
	struct testvol *tv = tv_create(NULL);
	cairn_fs *fs = tv_mount(tv, NULL);
	assert_non_null(fs);
	struct cairn_info in = info_of(fs);
	TV_EQ(in.high_watermark, 80);
	TV_EQ(in.low_watermark, 60);
	TV_EQ(in.promotion, 1);
	struct cairn_tuning t = {.high_watermark = 90, .promotion = -1};
	TV_OK(cairn_tune(fs, &t));
	in = info_of(fs);
	TV_EQ(in.high_watermark, 90);
	TV_EQ(in.low_watermark, 60);
	TV_EQ(in.promotion, 0);
	tv_put_str(fs, "/kept", "written after the tune");
	TV_OK(tv_unmount(tv));

	/* Stored: both watermarks (the low one as it was) and promotion. */
	char *mf = manifest_of(tv);
	assert_non_null(strstr(mf, "option high_watermark 90\n"));
	assert_non_null(strstr(mf, "option low_watermark 60\n"));
	assert_non_null(strstr(mf, "option promotion off\n"));
	free(mf);
	fs = tv_mount(tv, NULL);
	assert_non_null(fs);
	in = info_of(fs);
	TV_EQ(in.high_watermark, 90);
	TV_EQ(in.low_watermark, 60);
	TV_EQ(in.promotion, 0);
	tv_expect_str(fs, "/kept", "written after the tune");
	t = (struct cairn_tuning){.low_watermark = 75, .promotion = 1};
	TV_OK(cairn_tune(fs, &t));
	TV_OK(tv_unmount(tv));

	/* A mount that gives one watermark pairs it with the other's default,
	 * not with the stored one (which could make the pair invalid). */
	struct cairn_mount_opts one = {.high_watermark = 70};
	fs = tv_mount(tv, &one);
	assert_non_null(fs);
	in = info_of(fs);
	TV_EQ(in.high_watermark, 70);
	TV_EQ(in.low_watermark, 60);
	TV_OK(tv_unmount(tv));

	/* A mount's own options win for that mount, and leave the store be. */
	struct cairn_mount_opts mo = {.high_watermark = 99, .low_watermark = 10};
	fs = tv_mount(tv, &mo);
	assert_non_null(fs);
	in = info_of(fs);
	TV_EQ(in.high_watermark, 99);
	TV_EQ(in.low_watermark, 10);
	TV_EQ(in.promotion, 1);
	TV_OK(tv_unmount(tv));
	fs = tv_mount(tv, NULL);
	assert_non_null(fs);
	in = info_of(fs);
	TV_EQ(in.high_watermark, 90);
	TV_EQ(in.low_watermark, 75);
	TV_OK(tv_unmount(tv));
	tv_expect_fsck_clean(tv->dir);
	tv_destroy(tv);
}

static void test_bad_values_change_nothing(void **state)
{
	(void)state;
	struct testvol *tv = tv_create(NULL);
	cairn_fs *fs = tv_mount(tv, NULL);
	assert_non_null(fs);
	char *before = manifest_of(tv);
	const struct cairn_tuning bad[] = {
	    {.high_watermark = 50, .low_watermark = 50}, /* low must be below high */
	    {.low_watermark = 80},                       /* == the high watermark */
	    {.high_watermark = 55},                      /* below the low one */
	    {.high_watermark = 101},
	    {.low_watermark = -1},
	    {.promotion = 2},
	    {.high_watermark = 70, .promotion = -2}, /* one bad field spoils all */
	    {.batch_ms = 5},                         /* sync mode */
	    {.batch_ms = -1},
	    {.high_watermark = 90, .batch_ms = 3600001},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		errno = 0;
		if (cairn_tune(fs, &bad[i]) != -1 || errno != EINVAL)
			fail_msg("bad tuning %zu: %s, not EINVAL", i, strerror(errno));
		struct cairn_info in = info_of(fs);
		if (in.high_watermark != 80 || in.low_watermark != 60 || !in.promotion ||
		    in.batch_ms)
			fail_msg("bad tuning %zu changed the volume", i);
	}
	char *after = manifest_of(tv);
	assert_string_equal(before, after);
	free(after);
	errno = 0;
	assert_int_equal(cairn_tune(fs, NULL), -1);
	TV_EQ(errno, EFAULT);
	errno = 0;
	assert_int_equal(cairn_tune(NULL, &bad[0]), -1);
	TV_EQ(errno, EINVAL);
	TV_OK(tv_unmount(tv));

	struct cairn_mount_opts ro = {.read_only = 1};
	fs = tv_mount(tv, &ro);
	assert_non_null(fs);
	struct cairn_tuning t = {.high_watermark = 90};
	errno = 0;
	assert_int_equal(cairn_tune(fs, &t), -1);
	TV_EQ(errno, EROFS);
	TV_OK(tv_unmount(tv));
	after = manifest_of(tv);
	assert_string_equal(before, after);
	free(before);
	free(after);
	tv_destroy(tv);
}

static void test_batch_interval(void **state)
{
	(void)state;
	struct testvol *tv = tv_create(NULL);
	struct cairn_mount_opts mo = {.batch_ms = 200};
	cairn_fs *fs = tv_mount(tv, &mo);
	assert_non_null(fs);
	TV_EQ(info_of(fs).batch_ms, 200);
	struct cairn_tuning t = {.batch_ms = 7};
	TV_OK(cairn_tune(fs, &t));
	TV_EQ(info_of(fs).batch_ms, 7);
	tv_put_str(fs, "/batched", "durable within 7 ms");
	TV_OK(tv_unmount(tv));
	/* Not stored: the mode and its interval are the mount's. */
	char *mf = manifest_of(tv);
	assert_null(strstr(mf, "option"));
	free(mf);
	fs = tv_mount(tv, NULL);
	assert_non_null(fs);
	TV_EQ(info_of(fs).batch_ms, 0);
	tv_expect_str(fs, "/batched", "durable within 7 ms");
	TV_OK(tv_unmount(tv));
	tv_destroy(tv);
}

/* A lower high watermark: the digest thread migrates without being asked. */
static void test_lower_watermark_migrates(void **state)
{
	(void)state;
	struct testvol *tv = tv_scratch("tune-tiers");
	struct cairn_mkfs_opts o;
	tv_default_mkfs_opts(&o);
	o.fast_size = 16 * TV_MiB;
	o.ntiers = 1;
	char ssd[PATH_MAX + 16];
	snprintf(ssd, sizeof(ssd), "%s/ssd.tier", tv->root);
	o.tiers[0] = (struct cairn_tier_opts){"ssd", ssd, 64 * TV_MiB, 0};
	if (tv_mkfs(tv, &o))
		fail_msg("mkfs: %s", cairn_last_error());
	struct cairn_mount_opts mo = {.no_promotion = 1};
	cairn_fs *fs = tv_mount(tv, &mo);
	assert_non_null(fs);
	/* About 60% of the fast tier: under the default 80%. */
	size_t len = TV_MiB;
	char *buf = malloc(len);
	for (int k = 0; k < 9; k++) {
		char p[32];
		snprintf(p, sizeof(p), "/f%d", k);
		tv_fill(buf, len, (uint64_t)k);
		tv_put(fs, p, buf, len, 0644);
	}
	TV_OK(cairn_digest(fs));
	TV_OK(cairn_migrate(fs));
	struct cairn_info in = info_of(fs);
	uint64_t used = in.tiers[0].blocks - in.tiers[0].free_blocks;
	if (used * 100 <= in.tiers[0].blocks * 40)
		fail_msg("the fast tier is %llu%% full before the tune: too little to test",
		         (unsigned long long)(used * 100 / in.tiers[0].blocks));
	TV_EQ(in.tiers[1].in_down, 0);
	struct cairn_tuning t = {.high_watermark = 30, .low_watermark = 20};
	TV_OK(cairn_tune(fs, &t));
	/* No cairn_migrate: the digest thread was woken by the tune.  Within 3
	 * s, before its idle digest (every 5 s, digest.c) would migrate too. */
	for (int i = 0; i < 60; i++) {
		in = info_of(fs);
		used = in.tiers[0].blocks - in.tiers[0].free_blocks;
		if (used * 100 <= in.tiers[0].blocks * 30)
			break;
		nanosleep(&(struct timespec){0, 50 * 1000 * 1000}, NULL);
	}
	if (used * 100 > in.tiers[0].blocks * 30)
		fail_msg("3 s after the tune the fast tier is still %llu%% full",
		         (unsigned long long)(used * 100 / in.tiers[0].blocks));
	assert_true(in.tiers[1].in_down > 0);
	for (int k = 0; k < 9; k++) {
		char p[32];
		snprintf(p, sizeof(p), "/f%d", k);
		tv_fill(buf, len, (uint64_t)k);
		tv_expect(fs, p, buf, len);
	}
	free(buf);
	TV_OK(tv_unmount(tv));
	tv_expect_fsck_clean(tv->dir);
	tv_destroy(tv);
}

/* A damaged option line: the mount says which line, and does not guess. */
static void test_bad_option_line_refused(void **state)
{
	(void)state;
	struct testvol *tv = tv_create(NULL);
	static const char *const lines[] = {
	    "option high_watermark 0\n", "option high_watermark ninety\n",
	    "option promotion maybe\n",  "option colour blue\n",
	    "option high_watermark\n",   "option low_watermark 85x\n",
	};
	char path[PATH_MAX + 32];
	snprintf(path, sizeof(path), "%s/cairn.volume", tv->dir);
	char *good = manifest_of(tv);
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		FILE *f = fopen(path, "w");
		assert_non_null(f);
		fprintf(f, "%s%s", good, lines[i]);
		fclose(f);
		errno = 0;
		cairn_fs *fs = cairn_mount(tv->dir, NULL);
		if (fs)
			fail_msg("a manifest with '%.*s' was mounted", (int)strlen(lines[i]) - 1,
			         lines[i]);
		TV_EQ(errno, EUCLEAN);
		if (!strstr(cairn_last_error(), "cairn.volume: line"))
			fail_msg("the refusal does not name the line: %s", cairn_last_error());
	}
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(good, f);
	fclose(f);
	free(good);
	assert_non_null(tv_mount(tv, NULL));
	TV_OK(tv_unmount(tv));
	tv_destroy(tv);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_tune_changes_and_stores),
	    cmocka_unit_test(test_bad_values_change_nothing),
	    cmocka_unit_test(test_batch_interval),
	    cmocka_unit_test(test_lower_watermark_migrates),
	    cmocka_unit_test(test_bad_option_line_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
