/*
 * test_api_tier_ops.c - capacity tiers changed while a volume runs:
 * cairn_tier_add, cairn_tier_evacuate, cairn_tier_keep, cairn_tier_remove.
 *
 *   - a tier added to a volume that had none takes the data the fast tier
 *     cannot hold; every byte survives a remount; the manifest gains its
 *     `tier` line; fsck finds the volume clean;
 *   - a tier holding data is evacuated and removed with every byte intact
 *     (an mkfs tier and an added one); it stays listed with no blocks, its
 *     manifest line becomes `retired NAME`, and the next tier added gets
 *     the next number;
 *   - refusals change nothing: a name a tier has (EEXIST), "fast" and
 *     "log" (EINVAL), a non-empty file without force (EEXIST, the manifest
 *     byte for byte), an unknown name (ENOENT), a tier with data (EBUSY),
 *     an evacuation the other tiers cannot take (ENOSPC, the tier still
 *     takes data), a read-only mount (EROFS), a seventh tier over the
 *     volume's life (ENOSPC); NULL arguments as the API says;
 *   - a crash between the two steps of an add (a superblock without the
 *     tier under a manifest with it) or of a remove (a manifest still
 *     naming a retired tier) is finished by the next read-write mount; a
 *     read-only mount of either state works and writes nothing;
 *   - a draining tier takes no new data until cairn_tier_keep, and
 *     cairn_tier_draining says which tiers drain;
 *   - cairn_tier_grow: an mkfs tier grown twice and an added one, with
 *     every byte kept, the new blocks used and the volume clean; refusals;
 *     the header keeps the tier's first size, and one giving more than the
 *     superblock is refused;
 *   - the fast tier grows ("fast"), on emul and file media, twice: a full
 *     volume takes data again, every byte stays, the manifest and the
 *     part have the new size, fsck is clean; refusals change nothing; the
 *     states a crash between its steps leaves (a longer part under the old
 *     manifest; the new manifest over the old superblock, block 0 damaged
 *     or not) mount, read-only as they are, read-write finished.
 */
#include "fs/format.h"
#include "util/checksum.h"

#include "testvol.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define FILE_SIZE TV_MiB

/* Digest inline, no promotion, and low watermarks: a fast tier a third
 * full is demoted to a tenth at the next cairn_migrate. */
static const struct cairn_mount_opts MO = {
    .no_digest_thread = 1,
    .no_promotion = 1,
    .high_watermark = 30,
    .low_watermark = 10,
};

/* ---- helpers ------------------------------------------------------------- */

static struct cairn_info info_of(cairn_fs *fs)
{
	struct cairn_info in;
	TV_OK(cairn_info(fs, &in));
	return in;
}

/* Blocks in use on tier t (quarantined ones count as free in cairn_info). */
static uint64_t used_blocks(const struct cairn_info *in, unsigned t)
{
	return in->tiers[t].blocks - in->tiers[t].free_blocks;
}

static void tier_path(const struct testvol *tv, const char *name, char *out)
{
	snprintf(out, PATH_MAX, "%s/%s.tier", tv->root, name);
}

static struct cairn_tier_opts tier_opts(const char *name, const char *path, uint64_t size)
{
	return (struct cairn_tier_opts){.name = name, .path = path, .size = size, .unit = 0};
}

/* A scratch volume: a fast tier of `fast` bytes and, if ssd is not 0, an
 * mkfs-made capacity tier "ssd" of ssd bytes. */
static struct testvol *new_volume(const char *tag, enum cairn_media media, uint64_t fast,
                                  uint64_t ssd)
{
	umask(0);
	struct testvol *tv = tv_scratch(tag);
	struct cairn_mkfs_opts o;
	tv_default_mkfs_opts(&o);
	o.media = media;
	o.fast_size = fast;
	static char ssd_path[PATH_MAX];
	if (ssd) {
		tier_path(tv, "ssd", ssd_path);
		o.ntiers = 1;
		o.tiers[0] = tier_opts("ssd", ssd_path, ssd);
	}
	if (tv_mkfs(tv, &o))
		fail_msg("mkfs: %s", cairn_last_error());
	return tv;
}

/* Whole contents of a file (NUL-terminated), or NULL if it cannot be read;
 * *len (if given) gets its size. */
static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	size_t cap = 65536, n = 0;
	char *buf = malloc(cap + 1);
	assert_non_null(buf);
	size_t got;
	while ((got = fread(buf + n, 1, cap - n, f)) > 0) {
		n += got;
		if (n == cap) {
			cap *= 2;
			buf = realloc(buf, cap + 1);
			assert_non_null(buf);
		}
	}
	fclose(f);
	buf[n] = 0;
	if (len)
		*len = n;
	return buf;
}

static void spit(const char *path, const void *buf, size_t len)
{
	FILE *f = fopen(path, "wb");
	if (!f)
		fail_msg("cannot write %s: %s", path, strerror(errno));
	assert_int_equal(fwrite(buf, 1, len, f), len);
	assert_int_equal(fflush(f), 0);
	assert_int_equal(fsync(fileno(f)), 0);
	assert_int_equal(fclose(f), 0);
}

static void copy_file(const char *from, const char *to)
{
	size_t len;
	char *buf = slurp(from, &len);
	if (!buf)
		fail_msg("cannot read %s: %s", from, strerror(errno));
	spit(to, buf, len);
	free(buf);
}

static void manifest_path(const struct testvol *tv, char *out)
{
	snprintf(out, PATH_MAX, "%s/cairn.volume", tv->dir);
}

/* The manifest's text. */
static char *manifest_of(const struct testvol *tv)
{
	char p[PATH_MAX];
	manifest_path(tv, p);
	char *s = slurp(p, NULL);
	if (!s)
		fail_msg("cannot read %s: %s", p, strerror(errno));
	return s;
}

static void expect_manifest_has(const struct testvol *tv, const char *line)
{
	char *mf = manifest_of(tv);
	if (!strstr(mf, line))
		fail_msg("the manifest has no line '%.*s':\n%s", (int)strlen(line) - 1, line, mf);
	free(mf);
}

static void expect_manifest_lacks(const struct testvol *tv, const char *text)
{
	char *mf = manifest_of(tv);
	if (strstr(mf, text))
		fail_msg("the manifest still has '%s':\n%s", text, mf);
	free(mf);
}

/* "tier NAME SIZE UNIT PATH\n" of a tier whose file is at path. */
static void tier_line(char *out, const char *name, uint64_t size, unsigned unit_blocks,
                      const char *path)
{
	snprintf(out, PATH_MAX + 128, "tier %s %llu %u %s\n", name, (unsigned long long)size,
	         unit_blocks, path);
}

static void file_name(char *p, int k)
{
	snprintf(p, 32, "/f%03d", k);
}

static void put_file(cairn_fs *fs, int k)
{
	char p[32];
	unsigned char *buf = malloc(FILE_SIZE);
	file_name(p, k);
	tv_fill(buf, FILE_SIZE, 7000 + (uint64_t)k);
	tv_put(fs, p, buf, FILE_SIZE, 0644);
	free(buf);
}

/* Files first .. first+n-1, migrating after every `every` of them and at
 * the end. */
static void put_files(cairn_fs *fs, int first, int n, int every)
{
	for (int k = first; k < first + n; k++) {
		put_file(fs, k);
		if (every && (k - first) % every == every - 1) {
			TV_OK(cairn_digest(fs));
			TV_OK(cairn_migrate(fs));
		}
	}
	TV_OK(cairn_digest(fs));
	TV_OK(cairn_migrate(fs));
}

/* Files 0 .. n-1 hold what put_file wrote. */
static void expect_files(cairn_fs *fs, int n)
{
	unsigned char *buf = malloc(FILE_SIZE);
	for (int k = 0; k < n; k++) {
		char p[32];
		file_name(p, k);
		tv_fill(buf, FILE_SIZE, 7000 + (uint64_t)k);
		tv_expect(fs, p, buf, FILE_SIZE);
	}
	free(buf);
}

/* Unmounts and mounts again with opts: the tree dumps the same and files
 * 0 .. n-1 are intact. */
static cairn_fs *remount_same(struct testvol *tv, const struct cairn_mount_opts *opts, int n,
                              const char *what)
{
	char *before = tv_dump(tv->fs, TV_DUMP_ALL);
	TV_OK(tv_unmount(tv));
	cairn_fs *fs = tv_mount(tv, opts);
	assert_non_null(fs);
	char *after = tv_dump(fs, TV_DUMP_ALL);
	tv_assert_dump_eq(before, after, what);
	free(before);
	free(after);
	expect_files(fs, n);
	return fs;
}

static bool exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

/* ---- 1. add ------------------------------------------------------------ */

/* A volume with no capacity tier gets one while mounted; the data the
 * 16 MiB fast tier cannot hold goes there, and stays across a remount. */
static void test_add_takes_data(void **state)
{
	(void)state;
	struct testvol *tv = new_volume("tier-add", CAIRN_MEDIA_EMUL, 16 * TV_MiB, 0);
	cairn_fs *fs = tv_mount(tv, &MO);
	assert_non_null(fs);
	put_files(fs, 0, 4, 0);
	struct cairn_info in = info_of(fs);
	TV_EQ(in.tier_count, 1);

	char ssd[PATH_MAX];
	tier_path(tv, "ssd", ssd);
	assert_false(exists(ssd));
	struct cairn_tier_opts t = tier_opts("ssd", ssd, 64 * TV_MiB);
	TV_OK(cairn_tier_add(fs, &t, 0));
	struct stat st;
	assert_int_equal(stat(ssd, &st), 0);
	TV_EQ(st.st_size, 64 * TV_MiB);
	in = info_of(fs);
	TV_EQ(in.tier_count, 2);
	assert_string_equal(in.tiers[0].name, "fast");
	assert_string_equal(in.tiers[1].name, "ssd");
	assert_true(in.tiers[1].blocks > 64 * TV_MiB / 4096 - 16);
	assert_true(in.tiers[1].blocks <= 64 * TV_MiB / 4096);
	TV_EQ(in.tiers[1].free_blocks, in.tiers[1].blocks);
	TV_EQ(in.tiers[1].extents, 0);
	char line[PATH_MAX + 128];
	tier_line(line, "ssd", 64 * TV_MiB, 1, ssd);
	expect_manifest_has(tv, line);

	/* 24 MiB in all: at least 8 MiB cannot be on the fast tier. */
	put_files(fs, 4, 20, 4);
	in = info_of(fs);
	TV_EQ(in.tier_count, 2);
	if (in.tiers[1].extents == 0 || used_blocks(&in, 1) * 4096 < 8 * TV_MiB)
		fail_msg("the added tier holds %llu extents, %llu blocks: expected 8 MiB or more",
		         (unsigned long long)in.tiers[1].extents,
		         (unsigned long long)used_blocks(&in, 1));
	assert_true(in.tiers[1].in_down > 0);
	expect_files(fs, 24);

	fs = remount_same(tv, NULL, 24, "remount after a tier was added");
	in = info_of(fs);
	TV_EQ(in.tier_count, 2);
	assert_string_equal(in.tiers[1].name, "ssd");
	assert_true(in.tiers[1].extents > 0);
	TV_OK(tv_unmount(tv));
	expect_manifest_has(tv, line);
	tv_expect_fsck_clean(tv->dir);
	tv_destroy(tv);
}

/* ---- 2. evacuate and remove ---------------------------------------------- */

/* An mkfs tier and an added one, both holding data, evacuated and
 * removed; the tier added after them gets the next number. */
static void test_evacuate_and_remove(void **state)
{
	(void)state;
	struct testvol *tv = new_volume("tier-remove", CAIRN_MEDIA_EMUL, 32 * TV_MiB, 32 * TV_MiB);
	cairn_fs *fs = tv_mount(tv, &MO);
	assert_non_null(fs);
	char hdd[PATH_MAX], sata[PATH_MAX];
	tier_path(tv, "hdd", hdd);
	tier_path(tv, "sata", sata);
	struct cairn_tier_opts t = tier_opts("hdd", hdd, 64 * TV_MiB);
	TV_OK(cairn_tier_add(fs, &t, 0));
	put_files(fs, 0, 32, 4);
	struct cairn_info in = info_of(fs);
	TV_EQ(in.tier_count, 3);
	if (in.tiers[1].extents == 0 || in.tiers[2].extents == 0)
		fail_msg("ssd holds %llu extents, hdd %llu: both should hold data",
		         (unsigned long long)in.tiers[1].extents,
		         (unsigned long long)in.tiers[2].extents);

	/* The mkfs-made tier. */
	uint64_t left = 12345;
	TV_OK(cairn_tier_evacuate(fs, "ssd", 0, &left));
	TV_EQ(left, 0);
	in = info_of(fs);
	TV_EQ(in.tiers[1].extents, 0);
	TV_EQ(used_blocks(&in, 1), 0);
	assert_true(in.tiers[1].out > 0);
	expect_files(fs, 32);
	uint32_t mask = 0;
	TV_OK(cairn_tier_draining(fs, &mask));
	TV_EQ(mask, 1u << 1);
	TV_OK(cairn_tier_remove(fs, "ssd"));
	TV_OK(cairn_tier_draining(fs, &mask));
	TV_EQ(mask, 0); /* removed: no longer draining */
	in = info_of(fs);
	TV_EQ(in.tier_count, 3);
	assert_string_equal(in.tiers[1].name, "ssd");
	TV_EQ(in.tiers[1].blocks, 0);
	TV_EQ(in.tiers[1].free_blocks, 0);
	TV_EQ(in.tiers[1].extents, 0);
	assert_string_equal(in.tiers[2].name, "hdd");
	assert_true(in.tiers[2].blocks > 0);
	expect_manifest_has(tv, "\nretired ssd\n");
	expect_manifest_lacks(tv, "\ntier ssd ");
	expect_files(fs, 32);
	/* The removed tier's name is no tier's any more. */
	TV_ERR(cairn_tier_remove(fs, "ssd"), ENOENT);
	TV_ERR(cairn_tier_evacuate(fs, "ssd", 0, NULL), ENOENT);
	TV_ERR(cairn_tier_keep(fs, "ssd"), ENOENT);

	/* The next tier is number 3, after the removed one. */
	t = tier_opts("sata", sata, 48 * TV_MiB);
	TV_OK(cairn_tier_add(fs, &t, 0));
	in = info_of(fs);
	TV_EQ(in.tier_count, 4);
	assert_string_equal(in.tiers[3].name, "sata");
	TV_EQ(in.tiers[1].blocks, 0);

	/* The added tier, whose data goes to the slower sata first. */
	TV_OK(cairn_tier_evacuate(fs, "hdd", 0, &left));
	TV_EQ(left, 0);
	in = info_of(fs);
	TV_EQ(in.tiers[2].extents, 0);
	assert_true(in.tiers[3].extents > 0);
	TV_OK(cairn_tier_remove(fs, "hdd"));
	in = info_of(fs);
	TV_EQ(in.tier_count, 4);
	assert_string_equal(in.tiers[2].name, "hdd");
	TV_EQ(in.tiers[2].blocks, 0);
	TV_EQ(in.tiers[2].extents, 0);
	expect_files(fs, 32);

	/* New data and migration leave the removed tiers alone. */
	put_files(fs, 32, 8, 4);
	in = info_of(fs);
	TV_EQ(in.tiers[1].extents + in.tiers[2].extents, 0);
	TV_EQ(in.tiers[1].blocks + in.tiers[2].blocks, 0);

	fs = remount_same(tv, &MO, 40, "remount after two tiers were removed");
	in = info_of(fs);
	TV_EQ(in.tier_count, 4);
	assert_string_equal(in.tiers[1].name, "ssd");
	assert_string_equal(in.tiers[2].name, "hdd");
	assert_string_equal(in.tiers[3].name, "sata");
	TV_EQ(in.tiers[1].blocks + in.tiers[2].blocks, 0);
	TV_OK(tv_unmount(tv));
	expect_manifest_has(tv, "\nretired ssd\nretired hdd\ntier sata ");
	tv_expect_fsck_clean(tv->dir);
	tv_destroy(tv);
}

/* ---- 3. refusals ---------------------------------------------------------- */

static void expect_same_tiers(const struct cairn_info *a, const struct cairn_info *b)
{
	TV_EQ(a->tier_count, b->tier_count);
	for (unsigned t = 0; t < a->tier_count; t++) {
		assert_string_equal(a->tiers[t].name, b->tiers[t].name);
		TV_EQ(a->tiers[t].blocks, b->tiers[t].blocks);
		TV_EQ(a->tiers[t].free_blocks, b->tiers[t].free_blocks);
		TV_EQ(a->tiers[t].extents, b->tiers[t].extents);
	}
}

static void test_add_refusals(void **state)
{
	(void)state;
	struct testvol *tv = new_volume("tier-refuse", CAIRN_MEDIA_EMUL, 16 * TV_MiB, 16 * TV_MiB);
	cairn_fs *fs = tv_mount(tv, &MO);
	assert_non_null(fs);
	put_files(fs, 0, 2, 0);
	char *mf0 = manifest_of(tv);
	struct cairn_info in0 = info_of(fs);
	char other[PATH_MAX], used[PATH_MAX];
	tier_path(tv, "other", other);
	tier_path(tv, "used", used);

	struct cairn_tier_opts t = tier_opts("ssd", other, 16 * TV_MiB);
	TV_ERR(cairn_tier_add(fs, &t, 0), EEXIST);
	TV_ERR(cairn_tier_add(fs, &t, 1), EEXIST); /* force is for files */
	assert_false(exists(other));
	t.name = "fast";
	TV_ERR(cairn_tier_add(fs, &t, 0), EINVAL);
	t.name = "log";
	TV_ERR(cairn_tier_add(fs, &t, 1), EINVAL);
	t.name = "a b";
	TV_ERR(cairn_tier_add(fs, &t, 0), EINVAL);
	t.name = "";
	TV_ERR(cairn_tier_add(fs, &t, 0), EINVAL);
	t.name = "abcdefghijklmnop"; /* 16 characters */
	TV_ERR(cairn_tier_add(fs, &t, 0), EINVAL);
	t = tier_opts("odd", other, 16 * TV_MiB);
	t.unit = 1000;
	TV_ERR(cairn_tier_add(fs, &t, 0), EINVAL);
	assert_false(exists(other));

	/* An existing file with data in it. */
	unsigned char *junk = malloc(4 * TV_MiB);
	tv_fill(junk, 4 * TV_MiB, 99);
	spit(used, junk, 4 * TV_MiB);
	t = tier_opts("old", used, 0); /* 0: the file's size */
	TV_ERR(cairn_tier_add(fs, &t, 0), EEXIST);
	size_t len;
	char *now = slurp(used, &len);
	assert_non_null(now);
	TV_EQ(len, 4 * TV_MiB);
	assert_memory_equal(now, junk, 4 * TV_MiB);
	free(now);
	free(junk);

	/* Nothing of the refusals shows. */
	char *mf = manifest_of(tv);
	assert_string_equal(mf0, mf);
	free(mf);
	struct cairn_info in = info_of(fs);
	expect_same_tiers(&in0, &in);

	/* Unknown names. */
	uint64_t left = 777;
	TV_ERR(cairn_tier_evacuate(fs, "nosuch", 0, &left), ENOENT);
	TV_ERR(cairn_tier_remove(fs, "nosuch"), ENOENT);
	TV_ERR(cairn_tier_keep(fs, "nosuch"), ENOENT);
	TV_ERR(cairn_tier_evacuate(fs, "fast", 0, NULL), ENOENT);
	TV_ERR(cairn_tier_remove(fs, "fast"), ENOENT);
	TV_ERR(cairn_tier_keep(fs, "log"), ENOENT);
	mf = manifest_of(tv);
	assert_string_equal(mf0, mf);
	free(mf);
	in = info_of(fs);
	expect_same_tiers(&in0, &in);

	/* Forced, the file becomes the tier. */
	TV_OK(cairn_tier_add(fs, &t, 1));
	in = info_of(fs);
	TV_EQ(in.tier_count, 3);
	assert_string_equal(in.tiers[2].name, "old");
	assert_true(in.tiers[2].blocks > 4 * TV_MiB / 4096 - 16);
	assert_true(in.tiers[2].blocks <= 4 * TV_MiB / 4096);
	TV_EQ(in.tiers[2].free_blocks, in.tiers[2].blocks);
	char line[PATH_MAX + 128];
	tier_line(line, "old", 4 * TV_MiB, 1, used);
	expect_manifest_has(tv, line);
	/* And its name is taken now. */
	t.path = other;
	TV_ERR(cairn_tier_add(fs, &t, 0), EEXIST);
	expect_files(fs, 2);
	TV_OK(tv_unmount(tv));
	free(mf0);
	tv_expect_fsck_clean(tv->dir);
	tv_destroy(tv);
}

/* NULL arguments: a NULL handle is EINVAL, a NULL options pointer or
 * tier name EFAULT (cairn.h: "a NULL path, name, or result pointer is
 * EFAULT").  Every call is tried; the failures are listed together. */
static void null_check(char *why, size_t n, const char *call, int r, int e, int want)
{
	if (r == -1 && e == want)
		return;
	size_t l = strlen(why);
	snprintf(why + l, n - l, "\n  %s: %d with %s, expected -1 with %s", call, r,
	         r == -1 ? tv_errname(e) : "no error", tv_errname(want));
}

#define NULL_CHECK(call, want)                                                                     \
	do {                                                                                       \
		errno = 0;                                                                         \
		int _r = (call);                                                                   \
		null_check(why, sizeof(why), #call, _r, errno, (want));                            \
	} while (0)

static void test_null_arguments(void **state)
{
	(void)state;
	struct testvol *tv = new_volume("tier-null", CAIRN_MEDIA_EMUL, 16 * TV_MiB, 16 * TV_MiB);
	cairn_fs *fs = tv_mount(tv, &MO);
	assert_non_null(fs);
	char other[PATH_MAX], why[4096] = "";
	tier_path(tv, "other", other);
	struct cairn_tier_opts t = tier_opts("hdd", other, 16 * TV_MiB);
	NULL_CHECK(cairn_tier_add(NULL, &t, 0), EINVAL);
	NULL_CHECK(cairn_tier_evacuate(NULL, "ssd", 0, NULL), EINVAL);
	NULL_CHECK(cairn_tier_keep(NULL, "ssd"), EINVAL);
	NULL_CHECK(cairn_tier_remove(NULL, "ssd"), EINVAL);
	NULL_CHECK(cairn_tier_add(fs, NULL, 0), EFAULT);
	NULL_CHECK(cairn_tier_evacuate(fs, NULL, 0, NULL), EFAULT);
	NULL_CHECK(cairn_tier_keep(fs, NULL), EFAULT);
	NULL_CHECK(cairn_tier_remove(fs, NULL), EFAULT);
	assert_false(exists(other));
	/* A NULL left is allowed ("if given"). */
	TV_OK(cairn_tier_evacuate(fs, "ssd", 0, NULL));
	TV_OK(cairn_tier_keep(fs, "ssd"));
	TV_EQ(info_of(fs).tier_count, 2);
	TV_OK(tv_unmount(tv));
	tv_destroy(tv);
	if (why[0])
		fail_msg("NULL arguments:%s", why);
}

/* A tier with data cannot be removed, and the refusal changes nothing: it
 * still takes data. */
static void test_remove_busy(void **state)
{
	(void)state;
	struct testvol *tv = new_volume("tier-busy", CAIRN_MEDIA_EMUL, 16 * TV_MiB, 64 * TV_MiB);
	cairn_fs *fs = tv_mount(tv, &MO);
	assert_non_null(fs);
	put_files(fs, 0, 12, 4);
	struct cairn_info in0 = info_of(fs);
	assert_true(in0.tiers[1].extents > 0);
	char *mf0 = manifest_of(tv);
	TV_ERR(cairn_tier_remove(fs, "ssd"), EBUSY);
	struct cairn_info in = info_of(fs);
	expect_same_tiers(&in0, &in);
	char *mf = manifest_of(tv);
	assert_string_equal(mf0, mf);
	free(mf);
	expect_files(fs, 12);
	/* Not draining: migration still sends data down to it. */
	put_files(fs, 12, 6, 0);
	in = info_of(fs);
	if (in.tiers[1].in_down <= in0.tiers[1].in_down ||
	    used_blocks(&in, 1) <= used_blocks(&in0, 1))
		fail_msg("after the refused remove, migration sent nothing to ssd (in_down %llu "
		         "-> %llu)",
		         (unsigned long long)in0.tiers[1].in_down,
		         (unsigned long long)in.tiers[1].in_down);
	fs = remount_same(tv, &MO, 18, "remount after a refused remove");
	TV_EQ(info_of(fs).tier_count, 2);
	TV_OK(tv_unmount(tv));
	mf = manifest_of(tv);
	assert_string_equal(mf0, mf);
	free(mf);
	free(mf0);
	tv_expect_fsck_clean(tv->dir);
	tv_destroy(tv);
}

/* The other tiers cannot take the tier's data: ENOSPC, nothing moves, and
 * the tier is not left draining. */
static void test_evacuate_no_room(void **state)
{
	(void)state;
	struct testvol *tv = new_volume("tier-noroom", CAIRN_MEDIA_EMUL, 16 * TV_MiB, 64 * TV_MiB);
	cairn_fs *fs = tv_mount(tv, &MO);
	assert_non_null(fs);
	put_files(fs, 0, 40, 4); /* 40 MiB: 24 MiB at least on ssd */
	struct cairn_info in0 = info_of(fs);
	assert_true(used_blocks(&in0, 1) * 4096 >= 24 * TV_MiB);
	uint64_t left = 0;
	TV_ERR(cairn_tier_evacuate(fs, "ssd", 0, &left), ENOSPC);
	if (left < used_blocks(&in0, 1) * 4096)
		fail_msg("left %llu bytes; ssd holds %llu", (unsigned long long)left,
		         (unsigned long long)(used_blocks(&in0, 1) * 4096));
	struct cairn_info in = info_of(fs);
	TV_EQ(in.tiers[1].extents, in0.tiers[1].extents);
	TV_EQ(used_blocks(&in, 1), used_blocks(&in0, 1));
	TV_EQ(in.tiers[1].out, in0.tiers[1].out);
	expect_files(fs, 40);
	/* Still takes data: new files go down to it. */
	put_files(fs, 40, 6, 0);
	in = info_of(fs);
	if (in.tiers[1].in_down <= in0.tiers[1].in_down ||
	    used_blocks(&in, 1) <= used_blocks(&in0, 1))
		fail_msg("after the refused evacuation, migration sent nothing to ssd (in_down "
		         "%llu -> %llu): left draining?",
		         (unsigned long long)in0.tiers[1].in_down,
		         (unsigned long long)in.tiers[1].in_down);
	expect_files(fs, 46);
	TV_OK(tv_unmount(tv));
	tv_expect_fsck_clean(tv->dir);
	tv_destroy(tv);
}

static void test_read_only(void **state)
{
	(void)state;
	struct testvol *tv = new_volume("tier-ro", CAIRN_MEDIA_EMUL, 16 * TV_MiB, 16 * TV_MiB);
	cairn_fs *fs = tv_mount(tv, NULL);
	assert_non_null(fs);
	put_files(fs, 0, 2, 0);
	TV_OK(tv_unmount(tv));
	char *mf0 = manifest_of(tv);
	struct cairn_mount_opts ro = {.read_only = 1};
	fs = tv_mount(tv, &ro);
	assert_non_null(fs);
	char other[PATH_MAX];
	tier_path(tv, "other", other);
	struct cairn_tier_opts t = tier_opts("hdd", other, 16 * TV_MiB);
	TV_ERR(cairn_tier_add(fs, &t, 0), EROFS);
	assert_false(exists(other));
	TV_ERR(cairn_tier_evacuate(fs, "ssd", 0, NULL), EROFS);
	TV_ERR(cairn_tier_remove(fs, "ssd"), EROFS);
	TV_EQ(info_of(fs).tier_count, 2);
	expect_files(fs, 2);
	TV_OK(tv_unmount(tv));
	char *mf = manifest_of(tv);
	assert_string_equal(mf0, mf);
	free(mf);
	free(mf0);
	fs = tv_mount(tv, NULL);
	assert_non_null(fs);
	TV_EQ(info_of(fs).tier_count, 2);
	TV_OK(tv_unmount(tv));
	/* cairn.h: "a read-only mount refuses (EROFS)": keep too. */
	fs = tv_mount(tv, &ro);
	assert_non_null(fs);
	errno = 0;
	int r = cairn_tier_keep(fs, "ssd");
	int e = errno;
	TV_OK(tv_unmount(tv));
	tv_destroy(tv);
	if (r != -1 || e != EROFS)
		fail_msg("cairn_tier_keep on a read-only mount: %d with %s, expected -1 with EROFS",
		         r, r == -1 ? tv_errname(e) : "no error");
}

/* Six capacity tiers over the volume's life, removed ones included: the
 * seventh is refused, even with only one of them left. */
static void test_seventh_tier(void **state)
{
	(void)state;
	struct testvol *tv = new_volume("tier-limit", CAIRN_MEDIA_EMUL, 32 * TV_MiB, 0);
	cairn_fs *fs = tv_mount(tv, &MO);
	assert_non_null(fs);
	put_files(fs, 0, 2, 0);
	char path[8][PATH_MAX], name[8][8];
	for (int i = 0; i < 8; i++) {
		snprintf(name[i], sizeof(name[i]), "t%d", i);
		tier_path(tv, name[i], path[i]);
	}
	for (int i = 0; i < 6; i++) {
		struct cairn_tier_opts t = tier_opts(name[i], path[i], 2 * TV_MiB);
		TV_OK(cairn_tier_add(fs, &t, 0));
		struct cairn_info in = info_of(fs);
		TV_EQ(in.tier_count, i + 2);
		assert_string_equal(in.tiers[i + 1].name, name[i]);
		if (i < 4)
			TV_OK(cairn_tier_remove(fs, name[i]));
	}
	char *mf0 = manifest_of(tv);
	struct cairn_tier_opts t7 = tier_opts(name[6], path[6], 2 * TV_MiB);
	TV_ERR(cairn_tier_add(fs, &t7, 0), ENOSPC);
	char *mf = manifest_of(tv);
	assert_string_equal(mf0, mf);
	free(mf);
	TV_EQ(info_of(fs).tier_count, 7);
	/* One live tier left: still no number free. */
	TV_OK(cairn_tier_remove(fs, name[5]));
	free(mf0);
	mf0 = manifest_of(tv);
	TV_ERR(cairn_tier_add(fs, &t7, 0), ENOSPC);
	t7.name = "t0"; /* a removed tier's name does not give its number back */
	TV_ERR(cairn_tier_add(fs, &t7, 0), ENOSPC);
	mf = manifest_of(tv);
	assert_string_equal(mf0, mf);
	free(mf);

	fs = remount_same(tv, &MO, 2, "remount after six tiers");
	struct cairn_info in = info_of(fs);
	TV_EQ(in.tier_count, 7);
	for (int i = 0; i < 6; i++) {
		assert_string_equal(in.tiers[i + 1].name, name[i]);
		TV_EQ(in.tiers[i + 1].blocks, i == 4 ? 2 * TV_MiB / 4096 - 1 : 0);
	}
	t7 = tier_opts(name[7], path[7], 2 * TV_MiB);
	TV_ERR(cairn_tier_add(fs, &t7, 0), ENOSPC);
	TV_OK(tv_unmount(tv));
	mf = manifest_of(tv);
	assert_string_equal(mf0, mf);
	free(mf);
	free(mf0);
	tv_expect_fsck_clean(tv->dir);
	tv_destroy(tv);
}

/* ---- 4. a crash between the steps ---------------------------------------- */

/* The add's manifest is durable, its checkpoint is not: the fast part as
 * it was before the add, under the new manifest.  fresh_tier: the crash
 * came before the tier's header was written too (its file all zeros). */
static void crash_inside_add(int fresh_tier)
{
	struct testvol *tv = new_volume("tier-crash-add", CAIRN_MEDIA_FILE, 16 * TV_MiB, 0);
	cairn_fs *fs = tv_mount(tv, &MO);
	assert_non_null(fs);
	put_files(fs, 0, 6, 0);
	char *tree = tv_dump(fs, TV_DUMP_ALL);
	TV_OK(tv_unmount(tv));
	char saved[PATH_MAX + 16], ssd[PATH_MAX];
	snprintf(saved, sizeof(saved), "%s/fast.saved", tv->root);
	copy_file(tv->fast_part, saved);

	fs = tv_mount(tv, &MO);
	assert_non_null(fs);
	tier_path(tv, "ssd", ssd);
	struct cairn_tier_opts t = tier_opts("ssd", ssd, 32 * TV_MiB);
	TV_OK(cairn_tier_add(fs, &t, 0));
	TV_EQ(info_of(fs).tier_count, 2);
	TV_OK(tv_unmount(tv));
	char line[PATH_MAX + 128];
	tier_line(line, "ssd", 32 * TV_MiB, 1, ssd);
	expect_manifest_has(tv, line);

	/* The crash state. */
	copy_file(saved, tv->fast_part);
	if (fresh_tier) {
		assert_int_equal(truncate(ssd, 0), 0);
		assert_int_equal(truncate(ssd, 32 * TV_MiB), 0);
	}
	char *mf_crash = manifest_of(tv);
	size_t fast_len;
	char *fast_crash = slurp(tv->fast_part, &fast_len);
	assert_non_null(fast_crash);

	/* Read-only: mounts, reads, writes nothing. */
	struct cairn_mount_opts ro = {.read_only = 1};
	fs = tv_mount(tv, &ro);
	assert_non_null(fs);
	/* The superblock does not know the tier (the state is the split one),
	 * and a read-only mount leaves it unused (src/libfs/tiers.c). */
	TV_EQ(info_of(fs).tier_count, 1);
	char *now = tv_dump(fs, TV_DUMP_ALL);
	tv_assert_dump_eq(tree, now, "read-only mount of a half-added tier");
	free(now);
	expect_files(fs, 6);
	TV_OK(tv_unmount(tv));
	char *mf = manifest_of(tv);
	assert_string_equal(mf_crash, mf);
	free(mf);
	size_t len;
	char *fast_now = slurp(tv->fast_part, &len);
	assert_non_null(fast_now);
	TV_EQ(len, fast_len);
	if (memcmp(fast_now, fast_crash, len) != 0)
		fail_msg("a read-only mount wrote the fast part");
	free(fast_now);
	free(fast_crash);

	/* Read-write: finishes the add. */
	fs = tv_mount(tv, &MO);
	assert_non_null(fs);
	struct cairn_info in = info_of(fs);
	TV_EQ(in.tier_count, 2);
	assert_string_equal(in.tiers[1].name, "ssd");
	assert_true(in.tiers[1].blocks > 32 * TV_MiB / 4096 - 16);
	TV_EQ(in.tiers[1].free_blocks, in.tiers[1].blocks);
	now = tv_dump(fs, TV_DUMP_ALL);
	tv_assert_dump_eq(tree, now, "read-write mount of a half-added tier");
	free(now);
	free(tree);
	expect_files(fs, 6);
	/* The tier works: 24 MiB in all, 8 MiB at least on it. */
	put_files(fs, 6, 18, 4);
	in = info_of(fs);
	assert_true(in.tiers[1].extents > 0);
	assert_true(used_blocks(&in, 1) * 4096 >= 8 * TV_MiB);
	fs = remount_same(tv, &MO, 24, "remount after the add was finished");
	TV_EQ(info_of(fs).tier_count, 2);
	TV_OK(tv_unmount(tv));
	mf = manifest_of(tv);
	assert_string_equal(mf_crash, mf);
	free(mf);
	free(mf_crash);
	tv_expect_fsck_clean(tv->dir);
	tv_destroy(tv);
}

static void test_crash_inside_add(void **state)
{
	(void)state;
	crash_inside_add(0);
}

static void test_crash_inside_add_fresh_tier(void **state)
{
	(void)state;
	crash_inside_add(1);
}

/* The remove's checkpoint is durable, its manifest is not: the manifest
 * still names the retired tier's part. */
static void test_crash_inside_remove(void **state)
{
	(void)state;
	struct testvol *tv =
	    new_volume("tier-crash-remove", CAIRN_MEDIA_FILE, 32 * TV_MiB, 32 * TV_MiB);
	cairn_fs *fs = tv_mount(tv, &MO);
	assert_non_null(fs);
	put_files(fs, 0, 16, 4);
	struct cairn_info in = info_of(fs);
	assert_true(in.tiers[1].extents > 0);
	uint64_t left = 1;
	TV_OK(cairn_tier_evacuate(fs, "ssd", 0, &left));
	TV_EQ(left, 0);
	char *mf_before = manifest_of(tv);
	assert_non_null(strstr(mf_before, "\ntier ssd "));
	TV_OK(cairn_tier_remove(fs, "ssd"));
	char *tree = tv_dump(fs, TV_DUMP_ALL);
	TV_OK(tv_unmount(tv));
	char *mf_after = manifest_of(tv);
	assert_non_null(strstr(mf_after, "\nretired ssd\n"));
	assert_null(strstr(mf_after, "\ntier ssd "));

	/* The crash state. */
	char mpath[PATH_MAX];
	manifest_path(tv, mpath);
	spit(mpath, mf_before, strlen(mf_before));

	/* Read-only: mounts, the part unused, the manifest left as it is. */
	struct cairn_mount_opts ro = {.read_only = 1};
	fs = tv_mount(tv, &ro);
	assert_non_null(fs);
	in = info_of(fs);
	TV_EQ(in.tier_count, 2);
	TV_EQ(in.tiers[1].blocks, 0);
	char *now = tv_dump(fs, TV_DUMP_ALL);
	tv_assert_dump_eq(tree, now, "read-only mount of a half-removed tier");
	free(now);
	expect_files(fs, 16);
	TV_OK(tv_unmount(tv));
	char *mf = manifest_of(tv);
	assert_string_equal(mf_before, mf);
	free(mf);

	/* Read-write: rewrites the line. */
	fs = tv_mount(tv, &MO);
	assert_non_null(fs);
	mf = manifest_of(tv);
	if (strcmp(mf, mf_after) != 0)
		fail_msg("the manifest after the mount:\n%s\nexpected:\n%s", mf, mf_after);
	free(mf);
	in = info_of(fs);
	TV_EQ(in.tier_count, 2);
	assert_string_equal(in.tiers[1].name, "ssd");
	TV_EQ(in.tiers[1].blocks, 0);
	now = tv_dump(fs, TV_DUMP_ALL);
	tv_assert_dump_eq(tree, now, "read-write mount of a half-removed tier");
	free(now);
	free(tree);
	expect_files(fs, 16);
	put_files(fs, 16, 8, 4);
	in = info_of(fs);
	TV_EQ(in.tiers[1].extents, 0);
	TV_EQ(in.tiers[1].blocks, 0);
	fs = remount_same(tv, &MO, 24, "remount after the remove was finished");
	TV_OK(tv_unmount(tv));
	mf = manifest_of(tv);
	assert_string_equal(mf_after, mf);
	free(mf);
	free(mf_before);
	free(mf_after);
	tv_expect_fsck_clean(tv->dir);
	tv_destroy(tv);
}

/* ---- 5. draining ---------------------------------------------------------- */

static void test_draining(void **state)
{
	(void)state;
	struct testvol *tv = new_volume("tier-drain", CAIRN_MEDIA_EMUL, 16 * TV_MiB, 0);
	cairn_fs *fs = tv_mount(tv, &MO);
	assert_non_null(fs);
	char ssd[PATH_MAX];
	tier_path(tv, "ssd", ssd);
	struct cairn_tier_opts t = tier_opts("ssd", ssd, 64 * TV_MiB);
	TV_OK(cairn_tier_add(fs, &t, 0));
	put_files(fs, 0, 12, 4);
	struct cairn_info in0 = info_of(fs);
	uint64_t on_ssd = used_blocks(&in0, 1) * 4096;
	if (on_ssd < 4 * TV_MiB)
		fail_msg("ssd holds %llu bytes: too little to test", (unsigned long long)on_ssd);

	uint32_t mask = 99;
	TV_OK(cairn_tier_draining(fs, &mask));
	TV_EQ(mask, 0);
	TV_ERR(cairn_tier_draining(fs, NULL), EFAULT);
	TV_ERR(cairn_tier_draining(NULL, &mask), EINVAL);

	/* One block's worth moved: the tier is draining, most of it left. */
	uint64_t left = 0;
	TV_OK(cairn_tier_evacuate(fs, "ssd", 4096, &left));
	TV_OK(cairn_tier_draining(fs, &mask));
	TV_EQ(mask, 1u << 1);
	if (left == 0 || left >= on_ssd)
		fail_msg("evacuating 4096 bytes of %llu left %llu", (unsigned long long)on_ssd,
		         (unsigned long long)left);
	struct cairn_info in1 = info_of(fs);
	assert_true(in1.tiers[1].out > in0.tiers[1].out);
	expect_files(fs, 12);

	/* New data stays on the fast tier, above its high watermark. */
	put_files(fs, 12, 6, 2);
	struct cairn_info in2 = info_of(fs);
	TV_EQ(in2.tiers[1].in_down, in1.tiers[1].in_down);
	if (used_blocks(&in2, 1) > used_blocks(&in1, 1))
		fail_msg("the draining tier went from %llu to %llu blocks in use",
		         (unsigned long long)used_blocks(&in1, 1),
		         (unsigned long long)used_blocks(&in2, 1));
	if (used_blocks(&in2, 0) * 100 <= in2.tiers[0].blocks * 30)
		fail_msg("the fast tier is only %llu%% full: the test proves nothing",
		         (unsigned long long)(used_blocks(&in2, 0) * 100 / in2.tiers[0].blocks));
	TV_OK(cairn_migrate(fs));
	TV_EQ(info_of(fs).tiers[1].in_down, in1.tiers[1].in_down);
	expect_files(fs, 18);

	/* Kept: migration sends data to it again. */
	TV_OK(cairn_tier_keep(fs, "ssd"));
	TV_OK(cairn_tier_draining(fs, &mask));
	TV_EQ(mask, 0);
	TV_OK(cairn_migrate(fs));
	struct cairn_info in3 = info_of(fs);
	if (in3.tiers[1].in_down <= in2.tiers[1].in_down ||
	    used_blocks(&in3, 1) <= used_blocks(&in2, 1))
		fail_msg("after cairn_tier_keep, migration sent nothing to ssd");
	assert_true(used_blocks(&in3, 0) * 100 <= in3.tiers[0].blocks * 30);
	expect_files(fs, 18);
	fs = remount_same(tv, &MO, 18, "remount after draining and keeping");
	TV_EQ(info_of(fs).tier_count, 2);
	TV_OK(tv_unmount(tv));
	tv_expect_fsck_clean(tv->dir);
	tv_destroy(tv);
}

/* ---- 6. grow --------------------------------------------------------------- */

/* An mkfs tier grows (its regions move out of the room mkfs laid out,
 * which stays reserved), then grows again (the moved regions are freed),
 * then a tier added later grows: each time the data stays, the new blocks
 * take data, and the volume checks clean. */
static void test_grow(void **state)
{
	(void)state;
	struct testvol *tv = new_volume("tier-grow", CAIRN_MEDIA_FILE, 16 * TV_MiB, 8 * TV_MiB);
	cairn_fs *fs = tv_mount(tv, &MO);
	assert_non_null(fs);
	put_files(fs, 0, 12, 3);
	struct cairn_info in = info_of(fs);
	uint64_t before = in.tiers[1].blocks;
	assert_true(used_blocks(&in, 1) > before / 2); /* the tier is well used */
	TV_OK(cairn_tier_grow(fs, "ssd", 24 * TV_MiB));
	in = info_of(fs);
	TV_EQ(in.tiers[1].blocks, 24 * TV_MiB / 4096 - 1);
	char p[PATH_MAX];
	tier_path(tv, "ssd", p);
	struct stat st;
	TV_OK(stat(p, &st));
	TV_EQ(st.st_size, 24 * TV_MiB);
	char line[PATH_MAX + 64];
	tier_line(line, "ssd", 24 * TV_MiB, 1, p);
	expect_manifest_has(tv, line);
	put_files(fs, 12, 12, 3);
	in = info_of(fs);
	assert_true(used_blocks(&in, 1) > before); /* the new blocks took data */
	fs = remount_same(tv, &MO, 24, "remount after a grow");
	TV_OK(cairn_tier_grow(fs, "ssd", 40 * TV_MiB));
	char other[PATH_MAX];
	tier_path(tv, "hdd", other);
	struct cairn_tier_opts t = tier_opts("hdd", other, 8 * TV_MiB);
	TV_OK(cairn_tier_add(fs, &t, 0));
	TV_OK(cairn_tier_grow(fs, "hdd", 16 * TV_MiB));
	TV_EQ(info_of(fs).tiers[2].blocks, 16 * TV_MiB / 4096 - 1);
	put_files(fs, 24, 16, 4);
	fs = remount_same(tv, &MO, 40, "remount after more grows");
	TV_OK(tv_unmount(tv));
	tv_expect_fsck_clean(tv->dir);
	tv_destroy(tv);
}

static void test_grow_refusals(void **state)
{
	(void)state;
	struct testvol *tv = new_volume("tier-grow-no", CAIRN_MEDIA_FILE, 16 * TV_MiB, 8 * TV_MiB);
	cairn_fs *fs = tv_mount(tv, &MO);
	assert_non_null(fs);
	put_files(fs, 0, 4, 2);
	char *mf = manifest_of(tv);
	TV_ERR(cairn_tier_grow(fs, "ssd", 8 * TV_MiB), EINVAL); /* not larger */
	TV_ERR(cairn_tier_grow(fs, "ssd", 4 * TV_MiB), EINVAL); /* smaller */
	TV_ERR(cairn_tier_grow(fs, "ssd", 0), EINVAL);          /* all of it: as now */
	TV_ERR(cairn_tier_grow(fs, "nosuch", 64 * TV_MiB), ENOENT);
	TV_ERR(cairn_tier_grow(fs, "log", 64 * TV_MiB), ENOENT);
	TV_ERR(cairn_tier_grow(fs, NULL, 64 * TV_MiB), EFAULT);
	char *now = manifest_of(tv);
	assert_string_equal(mf, now);
	free(now);
	TV_EQ(info_of(fs).tiers[1].blocks, 8 * TV_MiB / 4096 - 1);
	TV_OK(tv_unmount(tv));
	struct cairn_mount_opts ro = {.read_only = 1};
	fs = tv_mount(tv, &ro);
	assert_non_null(fs);
	TV_ERR(cairn_tier_grow(fs, "ssd", 64 * TV_MiB), EROFS);
	TV_OK(tv_unmount(tv));
	char p[PATH_MAX];
	tier_path(tv, "ssd", p);
	struct stat st;
	TV_OK(stat(p, &st));
	TV_EQ(st.st_size, 8 * TV_MiB);
	free(mf);
	tv_expect_fsck_clean(tv->dir);
	tv_destroy(tv);
}

/* A grow leaves the tier's header as it was (its size when made: a
 * rewrite of the one block could be torn), and the volume mounts with it;
 * a header claiming more blocks than the superblock gives is refused. */
static void test_grow_header(void **state)
{
	(void)state;
	struct testvol *tv =
	    new_volume("tier-crash-grow", CAIRN_MEDIA_FILE, 16 * TV_MiB, 8 * TV_MiB);
	cairn_fs *fs = tv_mount(tv, &MO);
	assert_non_null(fs);
	put_files(fs, 0, 12, 3);
	char p[PATH_MAX], saved[PATH_MAX];
	tier_path(tv, "ssd", p);
	snprintf(saved, sizeof(saved), "%s/ssd.header", tv->root);
	size_t len;
	char *header = slurp(p, &len);
	assert_non_null(header);
	spit(saved, header, 4096);
	free(header);
	TV_OK(cairn_tier_grow(fs, "ssd", 24 * TV_MiB));
	put_files(fs, 12, 8, 4);
	TV_OK(tv_unmount(tv));
	/* The old header back over the new one. */
	char *old = slurp(saved, NULL);
	int fd = open(p, O_WRONLY);
	assert_true(fd >= 0);
	TV_EQ(pwrite(fd, old, 4096, 0), 4096);
	close(fd);
	fs = tv_mount(tv, &MO);
	assert_non_null(fs);
	TV_EQ(info_of(fs).tiers[1].blocks, 24 * TV_MiB / 4096 - 1);
	expect_files(fs, 20);
	TV_OK(tv_unmount(tv));
	char *now = slurp(p, NULL);
	assert_true(memcmp(now, old, 4096) == 0); /* never rewritten */
	free(now);
	free(old);
	tv_expect_fsck_clean(tv->dir);
	/* A header giving more blocks than the tier has is not this tier's. */
	fd = open(p, O_RDWR);
	assert_true(fd >= 0);
	struct fs_tier_header h;
	TV_EQ(pread(fd, &h, sizeof(h), 0), sizeof(h));
	h.total_blocks = 32 * TV_MiB / 4096;
	h.checksum = checksum_struct(&h, sizeof(h));
	TV_EQ(pwrite(fd, &h, sizeof(h), 0), sizeof(h));
	close(fd);
	struct cairn_mount_opts ro = {.read_only = 1};
	assert_null(tv_mount(tv, &ro));
	assert_non_null(strstr(cairn_last_error(), "tier ssd"));
	tv_destroy(tv);
}

/* A tier whose bitmap and checksums the fast tier has no room for is
 * refused with ENOSPC and leaves nothing: not in the manifest (or the
 * next mount would try again and refuse the volume), no file.  A manifest
 * a cut-short add left naming such a tier mounts, with the line dropped. */
static void test_add_no_room(void **state)
{
	(void)state;
	struct testvol *tv = new_volume("tier-no-room", CAIRN_MEDIA_EMUL, 4 * TV_MiB, 0);
	cairn_fs *fs = tv_mount(tv, &MO);
	assert_non_null(fs);
	put_files(fs, 0, 1, 1);
	char *mf = manifest_of(tv);
	/* 4 GiB, preallocated: on the disk, not in memory.  Its checksum
	 * table alone takes 4 MiB of the 4 MiB fast tier. */
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "/var/tmp/cairn-tier-no-room-%d.tier", (int)getpid());
	unlink(p);
	struct cairn_tier_opts t = tier_opts("huge", p, 4 * TV_GiB);
	TV_ERR(cairn_tier_add(fs, &t, 0), ENOSPC);
	if (!strstr(cairn_last_error(), "huge"))
		fail_msg("the refusal says: %s", cairn_last_error());
	assert_false(exists(p));
	char *now = manifest_of(tv);
	assert_string_equal(mf, now);
	free(now);
	TV_EQ(info_of(fs).tier_count, 1);
	fs = remount_same(tv, &MO, 1, "remount after a refused add");
	TV_OK(tv_unmount(tv));
	/* The state a crash between the manifest and the superblock leaves. */
	int fd = open(p, O_CREAT | O_RDWR, 0600);
	assert_true(fd >= 0);
	TV_OK(ftruncate(fd, (off_t)(4 * TV_GiB)));
	close(fd);
	char line[PATH_MAX + 64], mpath[PATH_MAX];
	tier_line(line, "huge", 4 * TV_GiB, 1, p);
	manifest_path(tv, mpath);
	size_t len = strlen(mf);
	char *grown = malloc(len + strlen(line) + 2);
	assert_non_null(grown);
	snprintf(grown, len + strlen(line) + 1, "%s%s", mf, line);
	spit(mpath, grown, strlen(grown));
	free(grown);
	fs = tv_mount(tv, &MO);
	assert_non_null(fs);
	TV_EQ(info_of(fs).tier_count, 1);
	expect_files(fs, 1);
	now = manifest_of(tv);
	assert_string_equal(mf, now);
	free(now);
	free(mf);
	TV_OK(tv_unmount(tv));
	unlink(p);
	tv_expect_fsck_clean(tv->dir);
	tv_destroy(tv);
}

/* ---- the fast tier grows --------------------------------------------------- */

/* Writes 1 MiB files from `first` on until the volume says ENOSPC (or
 * `max` files); returns how many it wrote whole.  The one cut short is
 * removed. */
static int fill_until_full(cairn_fs *fs, int first, int max)
{
	unsigned char *buf = malloc(FILE_SIZE);
	int k = first;
	for (; k < first + max; k++) {
		char p[32];
		file_name(p, k);
		tv_fill(buf, FILE_SIZE, 7000 + (uint64_t)k);
		int fd = cairn_open(fs, p, O_CREAT | O_WRONLY | O_TRUNC, 0644);
		if (fd < 0)
			break;
		ssize_t n = cairn_write(fs, fd, buf, FILE_SIZE);
		int e = errno;
		TV_OK(cairn_close(fs, fd));
		if (n != (ssize_t)FILE_SIZE) {
			if (n >= 0 || e != ENOSPC)
				fail_msg("file %d: wrote %zd bytes: %s", k, n, tv_errname(e));
			TV_OK(cairn_unlink(fs, p));
			break;
		}
		if (k % 4 == 3)
			TV_OK(cairn_digest(fs));
	}
	free(buf);
	TV_OK(cairn_digest(fs));
	return k - first;
}

static uint64_t file_size_of(const char *path)
{
	struct stat st;
	TV_OK(stat(path, &st));
	return (uint64_t)st.st_size;
}

static void fast_part(const struct testvol *tv, char *out)
{
	snprintf(out, PATH_MAX, "%s/fast.part", tv->root);
}

/* The fast tier's data blocks of a volume made with a 16 MiB fast tier. */
static uint64_t fast_blocks_made;

/* The fast tier is `bytes` long: the data blocks a 16 MiB one had and
 * every block it gained, the part's file, the manifest's line. */
static void expect_fast_size(struct testvol *tv, cairn_fs *fs, uint64_t bytes)
{
	TV_EQ(info_of(fs).tiers[0].blocks, fast_blocks_made + (bytes - 16 * TV_MiB) / 4096);
	char p[PATH_MAX], line[PATH_MAX + 64];
	fast_part(tv, p);
	TV_EQ(file_size_of(p), bytes);
	snprintf(line, sizeof(line), "part fast %llu %s\n", (unsigned long long)bytes, p);
	expect_manifest_has(tv, line);
}

/* A full fast tier (no capacity tier) grows twice while mounted: each
 * time the volume takes data again, and every byte stays. */
static void grow_fast_twice(enum cairn_media media, const char *tag)
{
	struct testvol *tv = new_volume(tag, media, 16 * TV_MiB, 0);
	cairn_fs *fs = tv_mount(tv, &MO);
	assert_non_null(fs);
	fast_blocks_made = info_of(fs).tiers[0].blocks;
	int n = fill_until_full(fs, 0, 64);
	assert_true(n >= 8 && n < 16);
	TV_OK(cairn_tier_grow(fs, "fast", 40 * TV_MiB));
	expect_fast_size(tv, fs, 40 * TV_MiB);
	int more = fill_until_full(fs, n, 64);
	if (more < 20)
		fail_msg("the grown fast tier took %d files of 1 MiB more", more);
	n += more;
	fs = remount_same(tv, &MO, n, "remount after a fast grow");
	/* Again: the bitmap and checksums the first grow moved are freed. */
	TV_OK(cairn_tier_grow(fs, "fast", 72 * TV_MiB));
	expect_fast_size(tv, fs, 72 * TV_MiB);
	more = fill_until_full(fs, n, 64);
	if (more < 28)
		fail_msg("the fast tier grown again took %d files of 1 MiB more", more);
	n += more;
	for (int k = 0; k < n; k += 3) {
		char p[32];
		file_name(p, k);
		TV_OK(cairn_unlink(fs, p));
	}
	TV_OK(cairn_digest(fs));
	char *before = tv_dump(fs, TV_DUMP_ALL);
	TV_OK(tv_unmount(tv));
	tv_expect_fsck_clean(tv->dir);
	fs = tv_mount(tv, &MO);
	assert_non_null(fs);
	char *after = tv_dump(fs, TV_DUMP_ALL);
	tv_assert_dump_eq(before, after, "remount after the second fast grow");
	free(before);
	free(after);
	TV_OK(tv_unmount(tv));
	tv_destroy(tv);
}

static void test_grow_fast_emul(void **state)
{
	(void)state;
	grow_fast_twice(CAIRN_MEDIA_EMUL, "fast-grow-emul");
}

static void test_grow_fast_file(void **state)
{
	(void)state;
	grow_fast_twice(CAIRN_MEDIA_FILE, "fast-grow-file");
}

/* With a capacity tier under it, and "0": all the part has (the file made
 * longer by hand first); migration goes on across the grow. */
static void test_grow_fast_tiered(void **state)
{
	(void)state;
	struct testvol *tv =
	    new_volume("fast-grow-tiered", CAIRN_MEDIA_EMUL, 16 * TV_MiB, 32 * TV_MiB);
	cairn_fs *fs = tv_mount(tv, &MO);
	assert_non_null(fs);
	fast_blocks_made = info_of(fs).tiers[0].blocks;
	put_files(fs, 0, 16, 4);
	char p[PATH_MAX];
	fast_part(tv, p);
	TV_OK(truncate(p, (off_t)(32 * TV_MiB)));
	TV_OK(cairn_tier_grow(fs, "fast", 0));
	expect_fast_size(tv, fs, 32 * TV_MiB);
	put_files(fs, 16, 16, 4);
	struct cairn_info in = info_of(fs);
	assert_true(used_blocks(&in, 1) > 0);
	fs = remount_same(tv, &MO, 32, "remount after a fast grow over a capacity tier");
	TV_OK(tv_unmount(tv));
	tv_expect_fsck_clean(tv->dir);
	tv_destroy(tv);
}

static void test_grow_fast_refusals(void **state)
{
	(void)state;
	struct testvol *tv = new_volume("fast-grow-no", CAIRN_MEDIA_EMUL, 16 * TV_MiB, 0);
	cairn_fs *fs = tv_mount(tv, &MO);
	assert_non_null(fs);
	fast_blocks_made = info_of(fs).tiers[0].blocks;
	put_files(fs, 0, 2, 0);
	char *mf = manifest_of(tv);
	TV_ERR(cairn_tier_grow(fs, "fast", 16 * TV_MiB), EINVAL);        /* not larger */
	TV_ERR(cairn_tier_grow(fs, "fast", 8 * TV_MiB), EINVAL);         /* smaller */
	TV_ERR(cairn_tier_grow(fs, "fast", 16 * TV_MiB + 4095), EINVAL); /* not a block more */
	TV_ERR(cairn_tier_grow(fs, "fast", 0), EINVAL);                  /* all of it: as now */
	/* A block more cannot hold the tier's own larger bitmap. */
	TV_ERR(cairn_tier_grow(fs, "fast", 16 * TV_MiB + 4096), EINVAL);
	char *now = manifest_of(tv);
	assert_string_equal(mf, now);
	free(now);
	TV_EQ(info_of(fs).tiers[0].blocks, fast_blocks_made);
	expect_files(fs, 2);
	TV_OK(tv_unmount(tv));
	struct cairn_mount_opts ro = {.read_only = 1};
	fs = tv_mount(tv, &ro);
	assert_non_null(fs);
	TV_ERR(cairn_tier_grow(fs, "fast", 64 * TV_MiB), EROFS);
	TV_OK(tv_unmount(tv));
	char p[PATH_MAX];
	fast_part(tv, p);
	free(mf);
	tv_expect_fsck_clean(tv->dir);
	tv_destroy(tv);
}

/* The manifest with the fast part's size set to `bytes`. */
static void set_fast_size_in_manifest(struct testvol *tv, uint64_t bytes)
{
	char *mf = manifest_of(tv);
	char p[PATH_MAX], mpath[PATH_MAX];
	fast_part(tv, p);
	char *line = strstr(mf, "part fast ");
	assert_non_null(line);
	char *end = strchr(line, '\n');
	assert_non_null(end);
	size_t cap = strlen(mf) + PATH_MAX + 64;
	char *out = malloc(cap);
	assert_non_null(out);
	snprintf(out, cap, "%.*spart fast %llu %s%s", (int)(line - mf), mf,
	         (unsigned long long)bytes, p, end);
	manifest_path(tv, mpath);
	spit(mpath, out, strlen(out));
	free(out);
	free(mf);
}

/* Block `blk` of the fast part copied to the part's last block. */
static void copy_super_to_end(struct testvol *tv, uint64_t blk)
{
	char p[PATH_MAX];
	fast_part(tv, p);
	int fd = open(p, O_RDWR);
	assert_true(fd >= 0);
	char sb[4096];
	TV_EQ(pread(fd, sb, sizeof(sb), (off_t)(blk * 4096)), sizeof(sb));
	off_t end = lseek(fd, 0, SEEK_END);
	TV_EQ(pwrite(fd, sb, sizeof(sb), end - 4096), sizeof(sb));
	TV_OK(fsync(fd));
	close(fd);
}

/* The states a crash between the steps of a fast grow leaves, made by
 * hand: the part extended (and the superblock copied to its new end)
 * under the old manifest, then the new manifest over the old superblock. */
static void test_crash_inside_fast_grow(void **state)
{
	(void)state;
	struct testvol *tv = new_volume("fast-grow-crash", CAIRN_MEDIA_EMUL, 16 * TV_MiB, 0);
	cairn_fs *fs = tv_mount(tv, &MO);
	assert_non_null(fs);
	fast_blocks_made = info_of(fs).tiers[0].blocks;
	put_files(fs, 0, 6, 0);
	TV_OK(tv_unmount(tv));
	char p[PATH_MAX];
	fast_part(tv, p);
	/* 1. The part longer, the manifest as it was: the tier as it was. */
	TV_OK(truncate(p, (off_t)(40 * TV_MiB)));
	copy_super_to_end(tv, 0);
	char *mf0 = manifest_of(tv);
	fs = tv_mount(tv, &MO);
	assert_non_null(fs);
	TV_EQ(info_of(fs).tiers[0].blocks, fast_blocks_made);
	expect_files(fs, 6);
	TV_OK(tv_unmount(tv));
	char *mf = manifest_of(tv);
	assert_string_equal(mf0, mf);
	free(mf);
	free(mf0);
	tv_expect_fsck_clean(tv->dir);
	/* 2. The manifest says 40 MiB, the superblock 16: fsck says what
	 * was cut short; read-only, the volume is used as it is. */
	set_fast_size_in_manifest(tv, 40 * TV_MiB);
	tv_expect_fsck_clean(tv->dir);
	struct cairn_mount_opts ro = {.read_only = 1};
	fs = tv_mount(tv, &ro);
	assert_non_null(fs);
	TV_EQ(info_of(fs).tiers[0].blocks, fast_blocks_made);
	expect_files(fs, 6);
	TV_OK(tv_unmount(tv));
	/* With block 0 damaged too: the copy at the new end is found. */
	char *saved = slurp(p, NULL);
	assert_non_null(saved);
	int fd = open(p, O_RDWR);
	assert_true(fd >= 0);
	char junk[4096];
	memset(junk, 0x5a, sizeof(junk));
	TV_EQ(pwrite(fd, junk, sizeof(junk), 0), sizeof(junk));
	close(fd);
	/* Read-write, the grow is finished. */
	fs = tv_mount(tv, &MO);
	if (!fs)
		fail_msg("mount of the cut-short grow with block 0 damaged: %s",
		         cairn_last_error());
	expect_fast_size(tv, fs, 40 * TV_MiB);
	expect_files(fs, 6);
	put_files(fs, 6, 20, 4);
	fs = remount_same(tv, &MO, 26, "remount after the finished grow");
	expect_fast_size(tv, fs, 40 * TV_MiB);
	TV_OK(tv_unmount(tv));
	tv_expect_fsck_clean(tv->dir);
	free(saved);
	tv_destroy(tv);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_add_takes_data),
	    cmocka_unit_test(test_evacuate_and_remove),
	    cmocka_unit_test(test_add_refusals),
	    cmocka_unit_test(test_null_arguments),
	    cmocka_unit_test(test_remove_busy),
	    cmocka_unit_test(test_evacuate_no_room),
	    cmocka_unit_test(test_read_only),
	    cmocka_unit_test(test_seventh_tier),
	    cmocka_unit_test(test_crash_inside_add),
	    cmocka_unit_test(test_crash_inside_add_fresh_tier),
	    cmocka_unit_test(test_crash_inside_remove),
	    cmocka_unit_test(test_draining),
	    cmocka_unit_test(test_grow),
	    cmocka_unit_test(test_grow_refusals),
	    cmocka_unit_test(test_grow_header),
	    cmocka_unit_test(test_add_no_room),
	    cmocka_unit_test(test_grow_fast_emul),
	    cmocka_unit_test(test_grow_fast_file),
	    cmocka_unit_test(test_grow_fast_tiered),
	    cmocka_unit_test(test_grow_fast_refusals),
	    cmocka_unit_test(test_crash_inside_fast_grow),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
