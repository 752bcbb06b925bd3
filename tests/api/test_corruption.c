/*
 * test_corruption.c - seeded damage to every part of small volumes.
 *
 * Two template volumes are made once: "clean" (populated, digested and
 * unmounted: an empty log) and "log" (the same, then changed again and
 * copied while mounted, as a crash leaves it: undigested records in the
 * log).  Their bytes are classified by what they hold (docs/FORMAT.md):
 * the manifest, the log's superblocks, epoch slots, live and stale
 * records, the fast part's superblocks, checkpoint slots, journal,
 * bitmaps, inodes in use and free, tree nodes, file data blocks and free
 * blocks.  Each trial copies a template, damages it once (a bit flip, a
 * zeroed range or a truncation, at a place chosen from one area) and then,
 * in a child process bounded by a timeout:
 *
 *   1. fsck checks the damaged volume;
 *   2. a mount either refuses with a message (and then fsck must have
 *      reported the damage), or serves the template's
 *      tree (the canonical dump plus extended attributes): "identical",
 *      or something else: "fsck-detected" when step 1 reported damage,
 *      "undetected" otherwise;
 *   3. where fsck reported damage, `fsck --repair` on a fresh damaged copy
 *      must leave a volume that mounts and that fsck then finds clean, but
 *      for damaged file data, which no repair can restore: those blocks
 *      must stay reported (data-checksum) and read as EIO.
 *
 * Undetected wrong reads are allowed only where the format cannot notice
 * them yet (known_limit): an inode's unconfirmed fields (permission bits, uid, gid, size, times,
 * generation: inodes carry no checksum) and the last records of the log
 * (a torn tail).  A repair stopped because a log record does not apply to
 * the damaged shared area is counted apart ("blocked").  A crash, a hang (the timeout), a sanitizer
 * report, a refusal without a message or a failed repair fails the test, printing the seed and the
 * damage; CAIRN_CORRUPT_SEED and CAIRN_CORRUPT_ONLY replay one trial.  At the end the test prints
 * how each area's trials ended.
 *
 * Environment: CAIRN_CORRUPT_TRIALS (default 300; 60 under the
 * sanitizers), CAIRN_CORRUPT_SEED (default 1), CAIRN_CORRUPT_ONLY=N (run
 * trial N only, with its output), CAIRN_CORRUPT_VERBOSE=1 (a line per
 * trial).
 *
 * May call: the public API, fsck_run, the manifest (volume.h), and the
 * format headers to find the areas.
 */
#include "testvol.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fs/format.h"
#include "fsck/fsck.h"
#include "log/log_format.h"
#include "volume/volume.h"

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

/* ---- areas ----------------------------------------------------------------------- */

enum area {
	A_MANIFEST,
	A_LOG_SUPER,
	A_LOG_BACKUP,
	A_LOG_EPOCH,
	A_LOG_LIVE,
	A_LOG_STALE,
	A_FS_SUPER,
	A_FS_BACKUP,
	A_CKPT,
	A_JOURNAL,
	A_IBITMAP,
	A_INODES,
	A_INODE_ATTRS,
	A_FREE_INODES,
	A_BBITMAP,
	A_TREE,
	A_DATA,
	A_FREE,
	A_COUNT
};

static const char *const area_name[A_COUNT] = {
    "manifest",     "log superblock",  "log backup sb",    "epoch slots",      "log live records",
    "log stale",    "fast superblock", "fast backup sb",   "checkpoint slots", "journal",
    "inode bitmap", "inode structure", "inode attributes", "free inodes",      "block bitmap",
    "tree nodes",   "file data",       "free blocks",
};

/* The parts a trial damages. */
enum { P_LOG, P_FAST, P_MANIFEST, P_COUNT };
static const char *const part_name[P_COUNT] = {"log", "fast", "manifest"};

struct region {
	int part;
	uint64_t off, len;
};

struct regions {
	struct region *v;
	size_t n, cap;
	uint64_t bytes;
};

static void region_add(struct regions *r, int part, uint64_t off, uint64_t len)
{
	if (!len)
		return;
	if (r->n && r->v[r->n - 1].part == part && r->v[r->n - 1].off + r->v[r->n - 1].len == off) {
		r->v[r->n - 1].len += len; /* merge neighbours: fewer regions */
		r->bytes += len;
		return;
	}
	if (r->n == r->cap) {
		r->cap = r->cap ? 2 * r->cap : 16;
		r->v = realloc(r->v, r->cap * sizeof(*r->v));
		assert_non_null(r->v);
	}
	r->v[r->n++] = (struct region){part, off, len};
	r->bytes += len;
}

/* ---- templates ------------------------------------------------------------------- */

enum { T_CLEAN, T_LOG, T_COUNT };
static const char *const tmpl_name[T_COUNT] = {"clean", "log"};

struct tmpl {
	char part[2][PATH_MAX];          /* log, fast: the template's bytes, never mounted again */
	struct manifest mf;              /* its manifest (paths replaced per trial) */
	char *oracle;                    /* what a mount of the undamaged volume serves */
	uint64_t last_rec;               /* offset of the last live log record, 0 = none */
	uint64_t itable_off, itable_end; /* the inode table's bytes in the fast part */
	struct regions areas[A_COUNT];
};

static struct tmpl tmpls[T_COUNT];
static struct testvol *scratch; /* holds the templates and the trial volume */
static char trial_dir[PATH_MAX], trial_part[2][PATH_MAX], trial_err[PATH_MAX];

static const struct cairn_mkfs_opts vol_opts = {
    .log_size = 1 * TV_MiB,
    .fast_size = 8 * TV_MiB,
    .media = CAIRN_MEDIA_EMUL,
};

#define SPARSE_EXTENTS 24
#define BIG_DIR_FILES 200

/* Names of every kind, an inline extent, an extent tree, a directory tree
 * of more than one level, extended attributes. */
static void populate(cairn_fs *fs)
{
	static unsigned char buf[5 * 4096];
	tv_fill(buf, sizeof(buf), 7);
	TV_OK(cairn_mkdir(fs, "/a", 0755));
	TV_OK(cairn_mkdir(fs, "/a/b", 0700));
	TV_OK(cairn_mkdir(fs, "/d", 0755));
	tv_put_str(fs, "/a/small", "hello, small file");
	tv_put(fs, "/a/data", buf, sizeof(buf), 0644);
	tv_put(fs, "/a/b/empty", "", 0, 0600);
	int fd = TV_OK(cairn_open(fs, "/a/sparse", O_CREAT | O_WRONLY, 0644));
	for (int i = 0; i < SPARSE_EXTENTS; i++)
		TV_EQ(cairn_pwrite(fs, fd, buf + i * 100, 4096, (off_t)i * 2 * 4096), 4096);
	TV_OK(cairn_close(fs, fd));
	for (int i = 0; i < BIG_DIR_FILES; i++) {
		char path[64];
		snprintf(path, sizeof(path), "/d/file-with-a-name-%03d", i);
		tv_put(fs, path, "", 0, 0644);
	}
	TV_OK(cairn_link(fs, "/a/data", "/hard"));
	TV_OK(cairn_symlink(fs, "/a/data", "/sym"));
	TV_OK(cairn_setxattr(fs, "/a/small", "user.k", "value", 5, 0));
	TV_OK(cairn_setxattr(fs, "/a/b", "user.dir", "x", 1, 0));
}

/* Changes that stay in the log of the "log" template. */
static void change_again(cairn_fs *fs)
{
	static unsigned char buf[3000];
	tv_fill(buf, sizeof(buf), 9);
	tv_put(fs, "/new", buf, sizeof(buf), 0644);
	int fd = TV_OK(cairn_open(fs, "/a/data", O_WRONLY));
	TV_EQ(cairn_pwrite(fs, fd, "overwritten", 11, 4096 + 5), 11);
	TV_OK(cairn_close(fs, fd));
	TV_OK(cairn_rename(fs, "/a/small", "/a/b/moved", 0));
	TV_OK(cairn_unlink(fs, "/d/file-with-a-name-007"));
	TV_OK(cairn_mkdir(fs, "/e", 0755));
	TV_OK(cairn_symlink(fs, "/new", "/e/s2"));
	TV_OK(cairn_setxattr(fs, "/hard", "user.new", "v2", 2, 0));
	TV_OK(cairn_truncate(fs, "/a/sparse", 30000));
	TV_OK(cairn_chmod(fs, "/a", 0711));
}

/* The paths whose extended attributes the oracle lists. */
static const char *const xattr_paths[] = {"/a/small", "/a/b/moved", "/a/b", "/a/data", "/hard"};

/* What a mount serves: the canonical dump and the extended attributes.
 * Never fails the test (it runs in a child): failures show in the text. */
static char *oracle(cairn_fs *fs)
{
	char *dump = tv_dump(fs, TV_DUMP_ALL), *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	fputs(dump, f);
	free(dump);
	for (size_t i = 0; i < sizeof(xattr_paths) / sizeof(xattr_paths[0]); i++) {
		char list[512], val[1100];
		ssize_t n = cairn_listxattr(fs, xattr_paths[i], list, sizeof(list));
		fprintf(f, "xattr %s:", xattr_paths[i]);
		if (n < 0) {
			fprintf(f, " ERROR %s\n", tv_errname(errno));
			continue;
		}
		for (ssize_t k = 0; k < n; k += (ssize_t)strlen(list + k) + 1) {
			ssize_t v = cairn_getxattr(fs, xattr_paths[i], list + k, val, sizeof(val));
			fprintf(f, " %s=", list + k);
			if (v < 0)
				fprintf(f, "ERROR %s", tv_errname(errno));
			else
				fprintf(f, "%.*s", (int)v, val);
		}
		fputc('\n', f);
	}
	fclose(f);
	return text;
}

static void copy_file(const char *from, const char *to)
{
	int in = open(from, O_RDONLY), out = open(to, O_CREAT | O_WRONLY | O_TRUNC, 0600);
	assert_true(in >= 0 && out >= 0);
	static char buf[1 << 16];
	ssize_t n;
	while ((n = read(in, buf, sizeof(buf))) > 0)
		assert_true(write(out, buf, (size_t)n) == n);
	close(in);
	close(out);
}

/* The trial volume: the template's parts copied to the trial paths and a
 * manifest naming them.  Returns 0 or -1 (runs in the child too). */
static int build_trial(const struct tmpl *t)
{
	struct manifest mf = t->mf;
	char err[512];
	for (int p = 0; p < 2; p++) {
		int in = open(t->part[p], O_RDONLY),
		    out = open(trial_part[p], O_CREAT | O_WRONLY | O_TRUNC, 0600);
		if (in < 0 || out < 0)
			return -1;
		static char buf[1 << 16];
		ssize_t n;
		while ((n = read(in, buf, sizeof(buf))) > 0)
			if (write(out, buf, (size_t)n) != n)
				return -1;
		close(in);
		close(out);
		snprintf(mf.path[p], sizeof(mf.path[p]), "%s", trial_part[p]);
	}
	mkdir(trial_dir, 0755);
	if (manifest_write(trial_dir, &mf, err, sizeof(err)) != 0) {
		fprintf(stderr, "manifest_write: %s\n", err);
		return -1;
	}
	return 0;
}

static char *read_whole(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	char *b = malloc((size_t)st.st_size + 1);
	assert_non_null(b);
	assert_true(pread(fd, b, (size_t)st.st_size, 0) == st.st_size);
	close(fd);
	b[st.st_size] = 0;
	*len = (size_t)st.st_size;
	return b;
}

static uint16_t rd16(const uint8_t *p)
{
	uint16_t v;
	memcpy(&v, p, 2);
	return v;
}

static uint64_t rd64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

/* The bytes of an inode that nothing else on the volume confirms
 * (docs/FORMAT.md, "Inode"): the permission bits (the low byte of the
 * mode; its second byte mixes them with the type), uid, gid, size (a
 * file may be sparse or preallocated past its end), the three times and
 * the generation.  Inodes carry no checksum, so damage confined to these
 * bytes changes what stat returns and cannot be detected, like damage to
 * file data. */
static int is_attr_byte(unsigned b)
{
	return b == 0 || (b >= 8 && b < 24) || (b >= 32 && b < 56) || (b >= 88 && b < 92);
}

/* Marks the blocks of a tree (and, for an extent tree, its data blocks). */
static void mark_tree(const uint8_t *img, uint64_t nblocks, uint64_t root, int extents,
                      uint8_t *map, int depth)
{
	if (!root || root >= nblocks || depth > 16)
		return;
	const uint8_t *node = img + root * FS_BLOCK_SIZE;
	map[root] = A_TREE;
	uint16_t level = rd16(node + 4), count = rd16(node + 6);
	for (unsigned i = 0; i < count; i++) {
		if (level) {
			mark_tree(img, nblocks, rd64(node + 40 + 16 * i), extents, map, depth + 1);
			continue;
		}
		if (!extents)
			continue;
		const uint8_t *rec = node + rd16(node + 32 + 4 * i);
		uint64_t pblk = rd64(rec + 8), len = rd64(rec + 16) & ~FS_EXTENT_STATE;
		for (uint64_t b = 0; FS_PBLK_TIER(pblk) == 0 && b < len && pblk + b < nblocks; b++)
			map[pblk + b] = A_DATA;
	}
}

/* Splits the fast part's blocks into areas by walking every inode. */
static void classify_fast(struct tmpl *t)
{
	size_t len;
	uint8_t *img = (uint8_t *)read_whole(t->part[P_FAST], &len);
	struct fs_super sb;
	memcpy(&sb, img, sizeof(sb));
	assert_true(sb.magic == FS_SUPER_MAGIC);
	uint64_t nb = sb.total_blocks;
	uint8_t *map = calloc(nb, 1);
	assert_non_null(map);
	for (uint64_t b = sb.data_start; b < nb; b++)
		map[b] = A_FREE;
	for (uint64_t ino = 1; ino < sb.inode_count; ino++) {
		struct fs_inode in;
		memcpy(&in, img + sb.itable_start * FS_BLOCK_SIZE + ino * FS_INODE_SIZE,
		       sizeof(in));
		if (!in.mode)
			continue;
		if (S_ISDIR(in.mode))
			mark_tree(img, nb, in.tree_root, 0, map, 0);
		else if ((S_ISREG(in.mode) || S_ISLNK(in.mode)) &&
		         (in.flags & FS_INODE_INLINE_EXTENT))
			for (uint64_t b = 0; b < in.inline_len && in.rdev + b < nb; b++)
				map[in.rdev + b] = A_DATA;
		else if (S_ISREG(in.mode) || S_ISLNK(in.mode))
			mark_tree(img, nb, in.tree_root, 1, map, 0);
		mark_tree(img, nb, in.xattr_root, 0, map, 0);
	}
	struct regions *a = t->areas;
	region_add(&a[A_FS_SUPER], P_FAST, 0, FS_BLOCK_SIZE);
	region_add(&a[A_FS_BACKUP], P_FAST, FS_BACKUP_BLOCK(len) * FS_BLOCK_SIZE, FS_BLOCK_SIZE);
	region_add(&a[A_CKPT], P_FAST, 1 * FS_BLOCK_SIZE, sizeof(struct fs_checkpoint));
	region_add(&a[A_CKPT], P_FAST, 2 * FS_BLOCK_SIZE, sizeof(struct fs_checkpoint));
	region_add(&a[A_JOURNAL], P_FAST, sb.journal_start * FS_BLOCK_SIZE,
	           sb.journal_blocks * FS_BLOCK_SIZE);
	region_add(&a[A_IBITMAP], P_FAST, sb.ibitmap_start * FS_BLOCK_SIZE,
	           (sb.inode_count + 7) / 8);
	region_add(&a[A_BBITMAP], P_FAST, sb.bbitmap_start * FS_BLOCK_SIZE, (nb + 7) / 8);
	t->itable_off = sb.itable_start * FS_BLOCK_SIZE;
	t->itable_end = t->itable_off + sb.inode_count * FS_INODE_SIZE;
	for (uint64_t ino = 0; ino < sb.inode_count; ino++) {
		uint64_t off = t->itable_off + ino * FS_INODE_SIZE;
		uint32_t mode;
		memcpy(&mode, img + off, 4);
		if (!mode) {
			region_add(&a[A_FREE_INODES], P_FAST, off, FS_INODE_SIZE);
			continue;
		}
		for (unsigned b = 0; b < FS_INODE_SIZE; b++)
			region_add(&a[is_attr_byte(b) ? A_INODE_ATTRS : A_INODES], P_FAST, off + b,
			           1);
	}
	for (uint64_t b = sb.data_start; b < nb; b++)
		region_add(&a[map[b]], P_FAST, b * FS_BLOCK_SIZE, FS_BLOCK_SIZE);
	free(map);
	free(img);
}

/* The log part: superblocks, epoch slots, [head, end) live, the rest of
 * the ring stale (earlier laps, digested records, zeros). */
static void classify_log(struct tmpl *t, uint64_t head, uint64_t end)
{
	struct stat st;
	assert_int_equal(stat(t->part[P_LOG], &st), 0);
	uint64_t backup = LOG_BACKUP_OFF((uint64_t)st.st_size);
	struct regions *a = t->areas;
	region_add(&a[A_LOG_SUPER], P_LOG, 0, LOG_BLOCK);
	region_add(&a[A_LOG_BACKUP], P_LOG, backup, LOG_BLOCK);
	region_add(&a[A_LOG_EPOCH], P_LOG, LOG_BLOCK, sizeof(struct log_epoch));
	region_add(&a[A_LOG_EPOCH], P_LOG, 2 * LOG_BLOCK, sizeof(struct log_epoch));
	int fd = open(t->part[P_LOG], O_RDONLY);
	assert_true(fd >= 0);
	for (uint64_t off = head, n = 0; off != end && n < 100000; n++) {
		struct log_rec_hdr h;
		assert_true(pread(fd, &h, sizeof(h), (off_t)off) == sizeof(h));
		if (off + sizeof(h) > backup || h.magic != LOG_REC_MAGIC) {
			off = LOG_RING_START; /* a header that did not fit wrapped */
			continue;
		}
		t->last_rec = off;
		off += h.len;
	}
	close(fd);
	if (head <= end) {
		region_add(&a[A_LOG_STALE], P_LOG, LOG_RING_START, head - LOG_RING_START);
		region_add(&a[A_LOG_LIVE], P_LOG, head, end - head);
		region_add(&a[A_LOG_STALE], P_LOG, end, backup - end);
	} else { /* the live records wrap */
		region_add(&a[A_LOG_LIVE], P_LOG, LOG_RING_START, end - LOG_RING_START);
		region_add(&a[A_LOG_STALE], P_LOG, end, head - end);
		region_add(&a[A_LOG_LIVE], P_LOG, head, backup - head);
	}
}

static int run_fsck(const char *dir, int repair, struct fsck_report *r)
{
	struct fsck_opts o = {.repair = repair};
	return fsck_run(dir, &o, r);
}

/* Copies the parts of tv (mounted or not) to the template's files. */
static void take_template(struct tmpl *t, struct testvol *tv, const char *name)
{
	char err[512];
	assert_int_equal(manifest_read(tv->dir, &t->mf, err, sizeof(err)), 0);
	for (int p = 0; p < 2; p++) {
		snprintf(t->part[p], sizeof(t->part[p]), "%s/%s.%s", scratch->root, name,
		         part_name[p]);
		copy_file(t->mf.path[p], t->part[p]);
	}
	/* The undamaged trial volume: fsck finds it clean, the mount gives
	 * the oracle. */
	assert_int_equal(build_trial(t), 0);
	struct fsck_report r;
	int rc = run_fsck(trial_dir, 0, &r);
	if (rc != FSCK_CLEAN)
		fsck_print_text(stderr, trial_dir, &r);
	assert_int_equal(rc, FSCK_CLEAN);
	classify_log(t, r.log_head_off, r.log_end_off);
	fsck_report_free(&r);
	classify_fast(t);
	cairn_fs *fs = cairn_mount(trial_dir, NULL);
	assert_non_null(fs);
	t->oracle = oracle(fs);
	assert_int_equal(cairn_unmount(fs), 0);
	/* The manifest: its area is the trial's own file. */
	assert_int_equal(build_trial(t), 0);
	struct stat st;
	char mpath[PATH_MAX + 32];
	snprintf(mpath, sizeof(mpath), "%s/cairn.volume", trial_dir);
	assert_int_equal(stat(mpath, &st), 0);
	region_add(&t->areas[A_MANIFEST], P_MANIFEST, 0, (uint64_t)st.st_size);
}

static int make_templates(void **state)
{
	(void)state;
	umask(0);
	scratch = tv_scratch("corrupt");
	snprintf(trial_dir, sizeof(trial_dir), "%s/trial", scratch->root);
	snprintf(trial_part[P_LOG], sizeof(trial_part[0]), "%s/trial.log", scratch->root);
	snprintf(trial_part[P_FAST], sizeof(trial_part[0]), "%s/trial.fast", scratch->root);
	snprintf(trial_err, sizeof(trial_err), "%s/trial.stderr", scratch->root);

	struct testvol *tv = tv_create(&vol_opts);
	assert_non_null(tv);
	struct cairn_mount_opts mo = {.no_digest_thread = 1, .digest_threshold = 90};
	assert_non_null(tv_mount(tv, &mo));
	populate(tv->fs);
	TV_OK(cairn_digest(tv->fs));
	TV_OK(tv_unmount(tv));
	take_template(&tmpls[T_CLEAN], tv, tmpl_name[T_CLEAN]);

	assert_non_null(tv_mount(tv, &mo));
	change_again(tv->fs);
	take_template(&tmpls[T_LOG], tv, tmpl_name[T_LOG]); /* copied while mounted */
	TV_OK(tv_unmount(tv));
	tv_destroy(tv);
	return 0;
}

static int drop_templates(void **state)
{
	(void)state;
	for (int t = 0; t < T_COUNT; t++) {
		free(tmpls[t].oracle);
		for (int a = 0; a < A_COUNT; a++)
			free(tmpls[t].areas[a].v);
	}
	tv_destroy(scratch);
	return 0;
}

/* ---- damage ---------------------------------------------------------------------- */

enum kind { K_FLIP, K_ZERO, K_TRUNC };

struct damage {
	int tmpl, area, part, kind;
	uint64_t off; /* byte flipped, first byte zeroed, or the new size */
	uint64_t len; /* bytes zeroed */
	int bit;      /* bit flipped */
};

static void describe(const struct damage *d, char *buf, size_t len)
{
	if (d->kind == K_FLIP)
		snprintf(buf, len, "%s volume, %s (%s part): bit %d of byte %llu flipped",
		         tmpl_name[d->tmpl], area_name[d->area], part_name[d->part], d->bit,
		         (unsigned long long)d->off);
	else if (d->kind == K_ZERO)
		snprintf(buf, len, "%s volume, %s (%s part): %llu bytes zeroed from %llu",
		         tmpl_name[d->tmpl], area_name[d->area], part_name[d->part],
		         (unsigned long long)d->len, (unsigned long long)d->off);
	else
		snprintf(buf, len, "%s volume, %s (%s part): truncated to %llu bytes",
		         tmpl_name[d->tmpl], area_name[d->area], part_name[d->part],
		         (unsigned long long)d->off);
}

static uint64_t rnd(uint64_t *s, uint64_t n)
{
	return n ? tv_splitmix(s) % n : 0;
}

/* The damage of trial `trial` under `seed`: a template, an area with
 * bytes in it, a place in the area, a kind. */
static struct damage choose(uint64_t seed, unsigned trial)
{
	uint64_t s = seed * 0x9e3779b97f4a7c15ull + trial;
	tv_splitmix(&s);
	struct damage d = {0};
	d.tmpl = (int)(trial % T_COUNT);
	const struct tmpl *t = &tmpls[d.tmpl];
	int live[A_COUNT], n = 0;
	for (int a = 0; a < A_COUNT; a++)
		if (t->areas[a].bytes)
			live[n++] = a;
	d.area = live[rnd(&s, (uint64_t)n)];
	const struct regions *r = &t->areas[d.area];
	uint64_t at = rnd(&s, r->bytes);
	size_t i = 0;
	while (at >= r->v[i].len)
		at -= r->v[i++].len;
	d.part = r->v[i].part;
	d.off = r->v[i].off + at;
	uint64_t k = rnd(&s, 100);
	d.kind = k < 60 ? K_FLIP : k < 92 ? K_ZERO : K_TRUNC;
	d.bit = (int)rnd(&s, 8);
	static const uint64_t lens[] = {1, 8, 64, 512, 4096};
	d.len = 1 + rnd(&s, lens[rnd(&s, 5)]);
	return d;
}

static const char *damaged_path(int part)
{
	static char mpath[PATH_MAX + 32];
	if (part != P_MANIFEST)
		return trial_part[part];
	snprintf(mpath, sizeof(mpath), "%s/cairn.volume", trial_dir);
	return mpath;
}

static int apply_damage(const struct damage *d)
{
	const char *path = damaged_path(d->part);
	if (d->kind == K_TRUNC)
		return truncate(path, (off_t)d->off);
	int fd = open(path, O_RDWR);
	if (fd < 0)
		return -1;
	int rc = 0;
	if (d->kind == K_FLIP) {
		uint8_t b;
		rc = pread(fd, &b, 1, (off_t)d->off) == 1 ? 0 : -1;
		b ^= (uint8_t)(1u << d->bit);
		if (!rc)
			rc = pwrite(fd, &b, 1, (off_t)d->off) == 1 ? 0 : -1;
	} else {
		struct stat st;
		fstat(fd, &st);
		uint64_t len = d->len;
		if (d->off + len > (uint64_t)st.st_size)
			len = (uint64_t)st.st_size - d->off;
		static const uint8_t zeros[4096];
		rc = pwrite(fd, zeros, len, (off_t)d->off) == (ssize_t)len ? 0 : -1;
	}
	close(fd);
	return rc;
}

/* Why wrong reads that fsck does not notice are beyond what the format
 * can detect, or NULL when they are a bug. */
static const char *known_limit(const struct damage *d)
{
	const struct tmpl *t = &tmpls[d->tmpl];
	uint64_t len = d->kind == K_FLIP ? 1 : d->len;
	if (d->kind == K_TRUNC)
		return NULL;
	if (d->area == A_DATA && d->tmpl == T_LOG)
		return "a block that undigested records write may have been rewritten in place "
		       "before the crash: its checksum is not trusted when they are replayed";
	if (d->area == A_LOG_LIVE && d->off + len > t->last_rec)
		return "the last records of the log are torn, as a crash leaves them";
	if (d->part == P_FAST && d->off >= t->itable_off && d->off + len <= t->itable_end) {
		/* Zeros over bytes that were zeros change nothing: only the
		 * bytes the damage changed count. */
		uint8_t was[4096];
		int fd = open(t->part[P_FAST], O_RDONLY);
		if (fd < 0 || pread(fd, was, len, (off_t)d->off) != (ssize_t)len) {
			if (fd >= 0)
				close(fd);
			return NULL;
		}
		close(fd);
		for (uint64_t i = 0; i < len; i++) {
			uint64_t b = (d->off + i - t->itable_off) % FS_INODE_SIZE;
			if (d->kind == K_ZERO && !was[i])
				continue;
			if (!is_attr_byte((unsigned)b) &&
			    !(b == 1 && d->kind == K_FLIP && d->bit < 4))
				return NULL;
		}
		return "an inode's attributes carry no checksum";
	}
	return NULL;
}

/* ---- one trial, in a child ------------------------------------------------------- */

enum outcome { O_REFUSED, O_IDENTICAL, O_DETECTED, O_UNDETECTED, O_COUNT };
static const char *const outcome_name[O_COUNT] = {"refused", "identical", "fsck-detected",
                                                  "undetected"};

struct result {
	int done;        /* the child got to the end */
	int outcome;     /* enum outcome */
	int fsck_check;  /* fsck's result on the damaged volume */
	int fsck_repair; /* with --repair (-1: not run) */
	int blocked;     /* repair stopped: the log's records do not apply (a known gap) */
	char failure[1024];
	char note[512]; /* the refusal's message, or fsck's first problem */
};

static void fail_with(struct result *res, const char *fmt, ...)
{
	if (res->failure[0])
		return; /* the first failure is the one to see */
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(res->failure, sizeof(res->failure), fmt, ap);
	va_end(ap);
}

/* Whether every problem of l is damaged file data (which repair cannot
 * restore: cairn keeps one copy of each block). */
static int only_data_damage(const struct fsck_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i].severity == FSCK_ERROR &&
		    strcmp(fsck_code_name(l->v[i].code), "data-checksum"))
			return 0;
	return 1;
}

/* fsck --repair on a fresh damaged copy, then a mount and a final check. */
static void repair_and_recheck(const struct damage *d, struct result *res)
{
	if (build_trial(&tmpls[d->tmpl]) || apply_damage(d)) {
		fail_with(res, "could not rebuild the damaged volume");
		return;
	}
	struct fsck_report r;
	res->fsck_repair = run_fsck(trial_dir, 1, &r);
	int left = (int)r.errors_left;
	char first[512] = "";
	if (r.remaining.n)
		snprintf(first, sizeof(first), "%s", r.remaining.v[0].msg);
	else if (r.refused[0])
		snprintf(first, sizeof(first), "%s", r.refused);
	/* Known gap, counted apart and not failed: repair first mounts the
	 * volume to digest its log, and a record that does not apply to the
	 * damaged shared area stops it (docs/ARCHITECTURE.md, "fsck"). */
	for (size_t i = 0; i < r.notes.n; i++)
		if (strstr(r.notes.v[i].msg, "repair stopped: mounting the volume to recover") &&
		    strstr(r.notes.v[i].msg, "does not apply"))
			res->blocked = 1;
	int data_only = res->fsck_repair == FSCK_PROBLEMS && only_data_damage(&r.remaining);
	fsck_report_free(&r);
	if (res->blocked)
		return;
	if (res->fsck_repair != FSCK_REPAIRED && res->fsck_repair != FSCK_CLEAN && !data_only) {
		fail_with(res, "fsck --repair returned %d, %d problems left (%s)", res->fsck_repair,
		          left, first);
		return;
	}
	errno = 0;
	cairn_fs *fs = cairn_mount(trial_dir, NULL);
	if (!fs) {
		fail_with(res, "after fsck --repair, the mount refuses: %s", cairn_last_error());
		return;
	}
	char *text = oracle(fs);
	free(text); /* reads must work; what they return may have been lost */
	if (cairn_unmount(fs) != 0) {
		fail_with(res, "after fsck --repair, unmount fails: %s", tv_errname(errno));
		return;
	}
	int rc = run_fsck(trial_dir, 0, &r);
	if (rc != FSCK_CLEAN && !(rc == FSCK_PROBLEMS && only_data_damage(&r.found)))
		fail_with(res, "after fsck --repair and a mount, fsck returns %d (%s)", rc,
		          r.found.n ? r.found.v[0].msg : r.refused);
	fsck_report_free(&r);
}

static void run_trial(const struct damage *d, struct result *res)
{
	memset(res, 0, sizeof(*res));
	res->fsck_repair = -1;
	const struct tmpl *t = &tmpls[d->tmpl];
	if (build_trial(t) || apply_damage(d)) {
		fail_with(res, "could not build the damaged volume");
		return;
	}
	struct fsck_report r;
	res->fsck_check = run_fsck(trial_dir, 0, &r);
	if (r.found.n)
		snprintf(res->note, sizeof(res->note), "fsck: %s", r.found.v[0].msg);
	else if (r.refused[0])
		snprintf(res->note, sizeof(res->note), "fsck: %s", r.refused);
	fsck_report_free(&r);

	errno = 0;
	cairn_fs *fs = cairn_mount(trial_dir, NULL);
	if (!fs) {
		res->outcome = O_REFUSED;
		const char *msg = cairn_last_error();
		if (!msg || !msg[0])
			fail_with(res, "the mount refused (%s) without a message",
			          tv_errname(errno));
		else if (res->fsck_check == FSCK_CLEAN)
			fail_with(res, "the mount refuses a volume fsck finds clean: %s", msg);
		else if (!res->note[0])
			snprintf(res->note, sizeof(res->note), "mount: %s", msg);
	} else {
		char *text = oracle(fs);
		if (!strcmp(text, t->oracle))
			res->outcome = O_IDENTICAL;
		else
			res->outcome = res->fsck_check != FSCK_CLEAN ? O_DETECTED : O_UNDETECTED;
		if (res->outcome == O_UNDETECTED && !known_limit(d)) {
			tv_dump_compare(t->oracle, text, "served after damage");
			fail_with(res, "the mount served other data than was written, and fsck "
			               "found the volume clean");
		}
		free(text);
		cairn_unmount(fs);
	}
	if (res->fsck_check == FSCK_PROBLEMS)
		repair_and_recheck(d, res);
	res->done = 1;
}

/* Runs the trial in a child bounded by `secs`; its stderr goes to a file
 * that is printed when the trial fails. */
static void fork_trial(const struct damage *d, unsigned secs, int quiet, struct result *res)
{
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(fds[0]);
		if (quiet) {
			int e = open(trial_err, O_CREAT | O_WRONLY | O_TRUNC, 0600);
			if (e >= 0)
				dup2(e, 2);
		}
		alarm(secs);
		struct result mine;
		run_trial(d, &mine);
		ssize_t w = write(fds[1], &mine, sizeof(mine));
		(void)w;
		exit(0); /* exit, not _exit: the leak checker runs at exit */
	}
	close(fds[1]);
	memset(res, 0, sizeof(*res));
	ssize_t n = read(fds[0], res, sizeof(*res));
	close(fds[0]);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (WIFSIGNALED(status))
		snprintf(res->failure, sizeof(res->failure), "%s (signal %d)",
		         WTERMSIG(status) == SIGALRM ? "a hang: no end within the time limit"
		                                     : "a crash",
		         WTERMSIG(status));
	else if (WEXITSTATUS(status) != 0)
		snprintf(res->failure, sizeof(res->failure),
		         "the trial exited with status %d (a sanitizer report?)",
		         WEXITSTATUS(status));
	else if (n != (ssize_t)sizeof(*res) || !res->done)
		snprintf(res->failure, sizeof(res->failure), "the trial did not report");
}

static void print_stderr_of_trial(void)
{
	size_t len;
	char *text = read_whole(trial_err, &len);
	if (len > 8000) { /* the end holds the sanitizer's report */
		fprintf(stderr, "...\n%s", text + len - 8000);
	} else {
		fprintf(stderr, "%s", text);
	}
	free(text);
}

/* ---- the test -------------------------------------------------------------------- */

static unsigned env_uint(const char *name, unsigned dflt)
{
	const char *v = getenv(name);
	return v && *v ? (unsigned)strtoul(v, NULL, 0) : dflt;
}

static unsigned trial_seconds(void)
{
	return SANITIZED ? 120 : 30;
}

static void test_seeded_damage(void **state)
{
	(void)state;
	uint64_t seed =
	    strtoull(getenv("CAIRN_CORRUPT_SEED") ? getenv("CAIRN_CORRUPT_SEED") : "1", NULL, 0);
	unsigned trials = env_uint("CAIRN_CORRUPT_TRIALS", SANITIZED ? 60 : 300);
	const char *only = getenv("CAIRN_CORRUPT_ONLY");
	int verbose = env_uint("CAIRN_CORRUPT_VERBOSE", 0) || (only && *only);
	if (only && *only && strtoul(only, NULL, 0) >= trials)
		trials = (unsigned)strtoul(only, NULL, 0) + 1;
	unsigned count[A_COUNT][O_COUNT] = {{0}}, fsck_found[A_COUNT] = {0},
	         repaired[A_COUNT] = {0}, blocked[A_COUNT] = {0}, failures = 0;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (unsigned i = 0; i < trials; i++) {
		if (only && *only && i != (unsigned)strtoul(only, NULL, 0))
			continue;
		struct damage d = choose(seed, i);
		struct result res;
		fork_trial(&d, trial_seconds(), !verbose, &res);
		char what[256];
		describe(&d, what, sizeof(what));
		if (verbose)
			print_message("trial %u: %s: %s, fsck %d, repair %d; %s\n", i, what,
			              outcome_name[res.outcome], res.fsck_check, res.fsck_repair,
			              res.note);
		if (res.failure[0]) {
			failures++;
			if (!verbose)
				print_stderr_of_trial();
			print_error("FAILED trial %u (replay: CAIRN_CORRUPT_SEED=%llu "
			            "CAIRN_CORRUPT_ONLY=%u): %s: %s\n",
			            i, (unsigned long long)seed, i, what, res.failure);
			continue;
		}
		count[d.area][res.outcome]++;
		fsck_found[d.area] += res.fsck_check != FSCK_CLEAN;
		repaired[d.area] += res.fsck_repair == FSCK_REPAIRED;
		blocked[d.area] += res.blocked;
		if (res.blocked)
			print_message("trial %u (seed %llu): %s: repair blocked: a log record does "
			              "not apply to the damaged shared area\n",
			              i, (unsigned long long)seed, what);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	print_message("%-18s %8s %9s %13s %10s | %10s %8s %8s\n", "area", "refused", "identical",
	              "fsck-detected", "undetected", "fsck-found", "repaired", "blocked");
	for (int a = 0; a < A_COUNT; a++)
		print_message("%-18s %8u %9u %13u %10u | %10u %8u %8u\n", area_name[a], count[a][0],
		              count[a][1], count[a][2], count[a][3], fsck_found[a], repaired[a],
		              blocked[a]);
	print_message(
	    "%u trials (seed %llu) in %.1f s, %u failed\n", trials, (unsigned long long)seed,
	    (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9, failures);
	TV_EQ(failures, 0);
}

/* Damage that trials found to be mishandled, kept as it was found (the
 * seed and trial that found each in the comment).  The offsets assume the
 * templates above: change those and these must be found again. */
static const struct damage regressions[] = {
    /* Seed 1, trials 71, 81, 175: a bit of the current epoch slot, with
     * records of that epoch in the log: the mount served the volume as it
     * was before them, and fsck called the damage a torn write. */
    {.tmpl = T_LOG, .area = A_LOG_EPOCH, .part = P_LOG, .kind = K_FLIP, .off = 4152, .bit = 0},
    {.tmpl = T_LOG, .area = A_LOG_EPOCH, .part = P_LOG, .kind = K_FLIP, .off = 4106, .bit = 3},
    /* Seed 1, trial 29: zeros over the log superblock's end and the
     * whole current epoch slot: zeros were taken for a slot never
     * written, and the records of its epoch were dropped. */
    {.tmpl = T_LOG, .area = A_LOG_SUPER, .part = P_LOG, .kind = K_ZERO, .off = 1432, .len = 3365},
    /* Seed 1, trial 79: zeros over the start of a name in a directory
     * leaf: fsck reported the name invalid and repair left it. */
    {.tmpl = T_LOG, .area = A_TREE, .part = P_FAST, .kind = K_ZERO, .off = 817888, .len = 11},
    /* Seed 2, trial 246: one byte of an xattr tree node: fsck reported
     * the tree damaged and repair left it. */
    {.tmpl = T_CLEAN, .area = A_TREE, .part = P_FAST, .kind = K_ZERO, .off = 835616, .len = 1},
    /* Seed 6, trial 372: a bit of a file's mode makes it a socket: fsck
     * reported the entry's type as disagreeing and repair left it. */
    {.tmpl = T_CLEAN, .area = A_INODES, .part = P_FAST, .kind = K_FLIP, .off = 547457, .bit = 6},
    /* Seed 9, trial 87: zeros over most of an xattr leaf: its records no
     * longer decoded (listxattr answered EUCLEAN) but the tree's nodes
     * were sound, and fsck called the volume clean. */
    {.tmpl = T_LOG, .area = A_TREE, .part = P_FAST, .kind = K_ZERO, .off = 836400, .len = 3510},
};

static void test_regressions(void **state)
{
	(void)state;
	unsigned failures = 0;
	for (size_t i = 0; i < sizeof(regressions) / sizeof(regressions[0]); i++) {
		struct result res;
		char what[256];
		describe(&regressions[i], what, sizeof(what));
		fork_trial(&regressions[i], trial_seconds(), 1, &res);
		if (!res.failure[0])
			continue;
		failures++;
		print_stderr_of_trial();
		print_error("FAILED regression %zu: %s: %s\n", i, what, res.failure);
	}
	TV_EQ(failures, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_regressions),
	    cmocka_unit_test(test_seeded_damage),
	};
	return cmocka_run_group_tests(tests, make_templates, drop_templates);
}
