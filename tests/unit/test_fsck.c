/*
 * test_fsck.c - cairn fsck (src/fsck) on real volumes in /dev/shm.
 *
 * Covers: a fresh and a populated volume (directories, data, a sparse
 * file, a symlink, a hard link, an xattr) are clean, and so is a copy of
 * its parts taken while mounted (a simulated crash) holding an orphan
 * (open and unlinked) and undigested log records; the text and JSON
 * reports.  Damage is injected without the API, by editing the part files
 * at offsets computed from the superblock: a leaked bitmap bit, a wrong
 * nlink, a zeroed directory node (with and without data below it), a bad
 * slot in a directory leaf, a directory named twice, a zeroed leaf of a
 * two-level block map, an entry key outside its bucket, an extent outside
 * the tier, a used block marked free, an in-use inode free in the inode
 * bitmap, a damaged checkpoint slot, blocks claimed twice, a bad
 * superblock.  Each is found with its message; --repair fixes what it
 * claims, a second check is clean, and the repaired volume mounts and
 * reads back (blocks claimed twice are left, by design).  In a crashed
 * copy (undigested log), damage is repaired after a recovery mount, and an
 * orphan list naming a linked file is cut before that mount.  A volume
 * with "ssd" and "hdd" capacity tiers, data migrated down to them, is
 * clean (with per-tier counts in the reports); on those tiers, a used
 * block marked free, leaked bits, blocks claimed twice, an extent past a
 * tier's end and one naming a missing tier are found and repaired as on
 * the fast tier, and a damaged tier header refuses the check by name.
 * Preallocated files (unwritten extents, inline and in a tree, past the
 * end too) are clean; an extent whose state is neither written nor
 * unwritten, and an unwritten one in a symlink, are found and repaired;
 * unwritten extents salvaged from a damaged map stay unwritten.
 */
#include "testvol.h"
#include "tvsoil.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <xxhash.h>

#include "fs/dir.h"
#include "fs/format.h"
#include "fsck/fsck.h"
#include "log/log_format.h"
#include "volume/volume.h"

#define DATA_LEN (3 * 4096 + 100) /* 4 blocks */
#define SPARSE_OFF (64 * TV_MiB)

static const struct cairn_mkfs_opts small_opts = {
    .log_size = 1 * TV_MiB,
    .fast_size = 8 * TV_MiB,
    .media = CAIRN_MEDIA_EMUL,
};

/* ---- the volume -------------------------------------------------------------- */

static void data_pattern(unsigned char *buf)
{
	tv_fill(buf, DATA_LEN, 42);
}

/* Everything fsck must accept: data, a hole, names of every kind. */
static void populate(cairn_fs *fs)
{
	static unsigned char buf[DATA_LEN];
	data_pattern(buf);
	TV_OK(cairn_mkdir(fs, "/a", 0755));
	TV_OK(cairn_mkdir(fs, "/a/b", 0755));
	tv_put(fs, "/a/data", buf, sizeof(buf), 0644);
	tv_put_str(fs, "/a/b/small", "hello");
	tv_put(fs, "/a/empty", "", 0, 0644);
	TV_OK(cairn_link(fs, "/a/data", "/hard"));
	TV_OK(cairn_symlink(fs, "/a/data", "/sym"));
	int fd = TV_OK(cairn_open(fs, "/sparse", O_CREAT | O_WRONLY, 0644));
	TV_EQ(cairn_pwrite(fs, fd, buf, 4096, SPARSE_OFF), 4096);
	TV_OK(cairn_close(fs, fd));
	TV_OK(cairn_setxattr(fs, "/a/b/small", "user.k", "value", 5, 0));
	TV_OK(cairn_digest(fs));
}

/* zero_blocks: how many leading blocks of /a/data repair turned to zeros. */
static void verify(cairn_fs *fs, uint64_t zero_blocks)
{
	static unsigned char buf[DATA_LEN];
	data_pattern(buf);
	memset(buf, 0, zero_blocks * 4096 < DATA_LEN ? zero_blocks * 4096 : DATA_LEN);
	tv_expect(fs, "/a/data", buf, sizeof(buf));
	tv_expect(fs, "/hard", buf, sizeof(buf));
	tv_expect_str(fs, "/a/b/small", "hello");
	char target[64] = "";
	TV_EQ(cairn_readlink(fs, "/sym", target, sizeof(target)), 7);
	assert_memory_equal(target, "/a/data", 7);
	TV_EQ(tv_stat(fs, "/sparse").st_size, SPARSE_OFF + 4096);
	TV_EQ(tv_stat(fs, "/a/data").st_nlink, 2);
}

static struct testvol *make_volume(void)
{
	struct testvol *tv = tv_create(&small_opts);
	assert_non_null(tv);
	assert_non_null(tv_mount(tv, NULL));
	populate(tv->fs);
	return tv;
}

static uint64_t ino_of(cairn_fs *fs, const char *path)
{
	return (uint64_t)tv_lstat(fs, path).st_ino;
}

/* ---- fsck ---------------------------------------------------------------------- */

static void print_report(const char *dir, const struct fsck_report *r)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	fsck_print_text(f, dir, r);
	fclose(f);
	print_message("%s", text);
	free(text);
}

static int run_fsck(struct testvol *tv, int repair, struct fsck_report *r)
{
	struct fsck_opts o = {.repair = repair};
	return fsck_run(tv->dir, &o, r);
}

static const struct fsck_item *find_item(const struct fsck_list *l, const char *code,
                                         const char *text)
{
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(fsck_code_name(l->v[i].code), code) && strstr(l->v[i].msg, text))
			return &l->v[i];
	return NULL;
}

static void expect_item(struct testvol *tv, const struct fsck_report *r, const struct fsck_list *l,
                        const char *code, const char *text)
{
	if (!find_item(l, code, text)) {
		print_report(tv->dir, r);
		fail_msg("no %s problem saying \"%s\"", code, text);
	}
}

static void expect_result(struct testvol *tv, const struct fsck_report *r, int got, int want)
{
	if (got != want) {
		print_report(tv->dir, r);
		fail_msg("fsck returned %d, expected %d", got, want);
	}
}

static void expect_clean(struct testvol *tv)
{
	struct fsck_report r;
	expect_result(tv, &r, run_fsck(tv, 0, &r), FSCK_CLEAN);
	TV_EQ(r.errors, 0);
	fsck_report_free(&r);
}

/* fsck finds the damage with its message; --repair fixes it; a second
 * check is clean. */
static void expect_found_then_repaired(struct testvol *tv, const char *code, const char *text)
{
	struct fsck_report r;
	expect_result(tv, &r, run_fsck(tv, 0, &r), FSCK_PROBLEMS);
	expect_item(tv, &r, &r.found, code, text);
	fsck_report_free(&r);
	expect_result(tv, &r, run_fsck(tv, 1, &r), FSCK_REPAIRED);
	expect_item(tv, &r, &r.found, code, text);
	assert_true(r.repairs.n >= 1);
	TV_EQ(r.errors_left, 0);
	fsck_report_free(&r);
	expect_clean(tv);
}

/* ---- editing the fast part ----------------------------------------------------- */

struct fast {
	int fd;
	struct fs_super sb;
};

static void fast_open(struct testvol *tv, struct fast *f)
{
	f->fd = open(tv->fast_part, O_RDWR);
	assert_true(f->fd >= 0);
	TV_EQ(pread(f->fd, &f->sb, sizeof(f->sb), 0), sizeof(f->sb));
	TV_EQ(f->sb.magic, FS_SUPER_MAGIC);
}

static void fast_close(struct fast *f)
{
	close(f->fd);
}

static void get_bytes(struct fast *f, uint64_t off, void *buf, size_t len)
{
	TV_EQ(pread(f->fd, buf, len, (off_t)off), len);
}

static void put_bytes(struct fast *f, uint64_t off, const void *buf, size_t len)
{
	TV_EQ(pwrite(f->fd, buf, len, (off_t)off), len);
}

static uint64_t inode_off(struct fast *f, uint64_t ino)
{
	return f->sb.itable_start * FS_BLOCK_SIZE + ino * FS_INODE_SIZE;
}

static void get_inode(struct fast *f, uint64_t ino, struct fs_inode *in)
{
	get_bytes(f, inode_off(f, ino), in, sizeof(*in));
}

static void put_inode(struct fast *f, uint64_t ino, const struct fs_inode *in)
{
	put_bytes(f, inode_off(f, ino), in, sizeof(*in));
}

static void change_bit(struct fast *f, uint64_t bitmap_start, uint64_t unit, int set)
{
	uint64_t off = bitmap_start * FS_BLOCK_SIZE + unit / 8;
	uint8_t byte;
	get_bytes(f, off, &byte, 1);
	if (set)
		byte |= (uint8_t)(1u << (unit % 8));
	else
		byte &= (uint8_t) ~(1u << (unit % 8));
	put_bytes(f, off, &byte, 1);
}

static int get_bit(struct fast *f, uint64_t bitmap_start, uint64_t unit)
{
	uint8_t byte;
	get_bytes(f, bitmap_start * FS_BLOCK_SIZE + unit / 8, &byte, 1);
	return (byte >> (unit % 8)) & 1;
}

/* Offset of the first record of a tree whose root is a leaf (FORMAT.md:
 * the slot array at byte 32 holds {u16 offset, u16 length}). */
static uint64_t first_record_off(struct fast *f, uint64_t root)
{
	uint16_t level, slot_off;
	get_bytes(f, root * FS_BLOCK_SIZE + 4, &level, 2);
	TV_EQ(level, 0);
	get_bytes(f, root * FS_BLOCK_SIZE + 32, &slot_off, 2);
	return root * FS_BLOCK_SIZE + slot_off;
}

/* Where an extent lives: a byte offset of a tree record, or, with
 * INLINE_AT set, the inode whose inline extent it is. */
#define INLINE_AT (1ull << 63)

/* The first extent of a file: {lblk, pblk, len} and where it lives. */
static uint64_t first_extent(struct fast *f, uint64_t ino, uint64_t ext[3])
{
	struct fs_inode in;
	get_inode(f, ino, &in);
	if (in.flags & FS_INODE_INLINE_EXTENT) {
		ext[0] = in.inline_lblk;
		ext[1] = in.rdev;
		ext[2] = in.inline_len;
		return INLINE_AT | ino;
	}
	assert_true(in.tree_root != 0);
	uint64_t off = first_record_off(f, in.tree_root);
	get_bytes(f, off, ext, 24);
	return off;
}

/* Writes an extent back where first_extent found it. */
static void put_extent(struct fast *f, uint64_t where, const uint64_t ext[3])
{
	if (!(where & INLINE_AT)) {
		put_bytes(f, where, ext, 24);
		return;
	}
	struct fs_inode in;
	get_inode(f, where & ~INLINE_AT, &in);
	in.inline_lblk = (uint32_t)ext[0];
	in.rdev = ext[1];
	in.inline_len = (uint32_t)ext[2];
	put_inode(f, where & ~INLINE_AT, &in);
}

/* ---- clean volumes ----------------------------------------------------------------- */

static void test_fresh_volume_is_clean(void **state)
{
	struct testvol *tv = tv_create(&small_opts);
	assert_non_null(tv);
	struct fsck_report r;
	expect_result(tv, &r, run_fsck(tv, 0, &r), FSCK_CLEAN);
	TV_EQ(r.inodes, 1);
	TV_EQ(r.directories, 1);
	TV_EQ(r.blocks_in_use, 0);
	fsck_report_free(&r);
	tv_destroy(tv);
}

static void test_populated_volume_is_clean(void **state)
{
	struct testvol *tv = make_volume();
	TV_OK(tv_unmount(tv));
	struct fsck_report r;
	expect_result(tv, &r, run_fsck(tv, 0, &r), FSCK_CLEAN);
	TV_EQ(r.directories, 3);
	TV_EQ(r.files, 4);
	TV_EQ(r.symlinks, 1);
	TV_EQ(r.inodes, 8);
	TV_EQ(r.undigested_records, 0);
	assert_true(r.blocks_in_use >= 8);

	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	fsck_print_text(f, tv->dir, &r);
	fclose(f);
	char want[PATH_MAX + 128];
	snprintf(want, sizeof(want),
	         "fsck: %s: 8 inodes, 3 directories, %llu blocks in use: clean\n", tv->dir,
	         (unsigned long long)r.blocks_in_use);
	if (!strstr(text, want))
		fail_msg("summary line missing: %s", text);
	free(text);
	f = open_memstream(&text, &len);
	fsck_print_json(f, tv->dir, &r);
	fclose(f);
	assert_non_null(strstr(text, "\"result\": \"clean\""));
	assert_non_null(strstr(text, "\"problems\": []"));
	free(text);
	fsck_report_free(&r);
	tv_destroy(tv);
}

/* Copies a volume's parts (while it is mounted: a crash) into a new
 * scratch volume with its own manifest. */
static struct testvol *copy_volume(struct testvol *tv)
{
	struct testvol *cp = tv_scratch("copy");
	assert_int_equal(mkdir(cp->dir, 0755), 0);
	struct manifest mf;
	char err[512];
	assert_int_equal(manifest_read(tv->dir, &mf, err, sizeof(err)), 0);
	const char *to[PART_COUNT] = {cp->log_part, cp->fast_part};
	for (int p = 0; p < PART_COUNT; p++) {
		int in = open(mf.path[p], O_RDONLY), out = open(to[p], O_CREAT | O_WRONLY, 0600);
		assert_true(in >= 0 && out >= 0);
		static char buf[1 << 16];
		ssize_t n;
		while ((n = read(in, buf, sizeof(buf))) > 0)
			TV_EQ(write(out, buf, (size_t)n), n);
		close(in);
		close(out);
		snprintf(mf.path[p], sizeof(mf.path[p]), "%s", to[p]);
	}
	assert_int_equal(manifest_write(cp->dir, &mf, err, sizeof(err)), 0);
	return cp;
}

/* An open, unlinked file is an orphan; records after the last digest are
 * undigested: both are normal after a crash. */
static struct testvol *crashed_copy(struct testvol *tv, int *orphan_fd)
{
	cairn_fs *fs = tv->fs;
	*orphan_fd = TV_OK(cairn_open(fs, "/orphan", O_CREAT | O_RDWR, 0644));
	TV_EQ(cairn_write(fs, *orphan_fd, "still open", 10), 10);
	TV_OK(cairn_unlink(fs, "/orphan"));
	TV_OK(cairn_digest(fs)); /* the orphan list reaches the checkpoint */
	tv_put_str(fs, "/after", "undigested");
	TV_OK(cairn_mkdir(fs, "/after.d", 0755));
	return copy_volume(tv);
}

static void test_crashed_copy_with_orphan_is_clean(void **state)
{
	struct testvol *tv = make_volume();
	int fd;
	struct testvol *cp = crashed_copy(tv, &fd);
	TV_OK(cairn_close(tv->fs, fd));
	TV_OK(tv_unmount(tv));
	expect_clean(tv);

	struct fsck_report r;
	expect_result(cp, &r, run_fsck(cp, 0, &r), FSCK_CLEAN);
	TV_EQ(r.orphans, 1);
	assert_true(r.undigested_records >= 2);
	assert_true(r.log_end_off > r.log_head_off);
	assert_non_null(find_item(&r.notes, "none", "undigested records"));
	fsck_report_free(&r);
	/* Nothing to repair: --repair changes nothing and says clean. */
	expect_result(cp, &r, run_fsck(cp, 1, &r), FSCK_CLEAN);
	TV_EQ(r.repairs.n, 0);
	fsck_report_free(&r);

	assert_non_null(tv_mount(cp, NULL)); /* recovery frees the orphan */
	verify(cp->fs, 0);
	tv_expect_str(cp->fs, "/after", "undigested");
	assert_false(tv_exists(cp->fs, "/orphan"));
	TV_OK(tv_unmount(cp));
	struct fsck_report r2;
	expect_result(cp, &r2, run_fsck(cp, 0, &r2), FSCK_CLEAN);
	TV_EQ(r2.orphans, 0);
	TV_EQ(r2.undigested_records, 0);
	fsck_report_free(&r2);
	tv_destroy(cp);
	tv_destroy(tv);
}

/* ---- damage ------------------------------------------------------------------------ */

static void test_leaked_bitmap_bit(void **state)
{
	struct testvol *tv = make_volume();
	TV_OK(tv_unmount(tv));
	struct fast f;
	fast_open(tv, &f);
	uint64_t blk = f.sb.total_blocks - 1;
	assert_false(get_bit(&f, f.sb.bbitmap_start, blk));
	change_bit(&f, f.sb.bbitmap_start, blk, 1);
	fast_close(&f);
	char text[96];
	snprintf(text, sizeof(text), "block %llu: marked used but belongs to nothing (leak)",
	         (unsigned long long)blk);
	expect_found_then_repaired(tv, "block-leak", text);
	assert_non_null(tv_mount(tv, NULL));
	verify(tv->fs, 0);
	tv_destroy(tv);
}

static void test_wrong_nlink(void **state)
{
	struct testvol *tv = make_volume();
	uint64_t ino = ino_of(tv->fs, "/a/b/small");
	TV_OK(tv_unmount(tv));
	struct fast f;
	fast_open(tv, &f);
	struct fs_inode in;
	get_inode(&f, ino, &in);
	TV_EQ(in.nlink, 1);
	in.nlink = 5;
	put_inode(&f, ino, &in);
	fast_close(&f);
	char text[96];
	snprintf(text, sizeof(text), "inode %llu: nlink 5 but 1 directory entry names it",
	         (unsigned long long)ino);
	expect_found_then_repaired(tv, "nlink", text);
	assert_non_null(tv_mount(tv, NULL));
	verify(tv->fs, 0);
	TV_EQ(tv_stat(tv->fs, "/a/b/small").st_nlink, 1);
	tv_destroy(tv);
}

/* A directory whose only node is zeroed: nothing in it can be read, so
 * repair empties it; what it named held nothing and is freed. */
static void test_zeroed_directory_node(void **state)
{
	struct testvol *tv = make_volume();
	TV_OK(cairn_mkdir(tv->fs, "/z", 0755));
	TV_OK(cairn_mkdir(tv->fs, "/z/sub", 0755));
	tv_put(tv->fs, "/z/empty", "", 0, 0644);
	uint64_t ino = ino_of(tv->fs, "/z");
	TV_OK(tv_unmount(tv));
	struct fast f;
	fast_open(tv, &f);
	struct fs_inode in;
	get_inode(&f, ino, &in);
	static const uint8_t zero[FS_BLOCK_SIZE];
	put_bytes(&f, in.tree_root * FS_BLOCK_SIZE, zero, sizeof(zero));
	fast_close(&f);
	char text[96];
	snprintf(text, sizeof(text), "inode %llu: directory tree (root block %llu) is damaged",
	         (unsigned long long)ino, (unsigned long long)in.tree_root);
	expect_found_then_repaired(tv, "tree", text);
	assert_non_null(tv_mount(tv, NULL));
	verify(tv->fs, 0);
	struct stat st = tv_stat(tv->fs, "/z");
	TV_EQ(st.st_nlink, 2);
	assert_false(tv_exists(tv->fs, "/z/empty"));
	TV_OK(cairn_rmdir(tv->fs, "/z")); /* usable again */
	tv_destroy(tv);
}

/* The same with a file that holds data: repair never destroys it, it
 * names it in /lost+found instead. */
static void test_zeroed_directory_node_keeps_data(void **state)
{
	struct testvol *tv = make_volume();
	TV_OK(cairn_mkdir(tv->fs, "/z", 0755));
	tv_put_str(tv->fs, "/z/precious", "do not free me");
	uint64_t zino = ino_of(tv->fs, "/z"), fino = ino_of(tv->fs, "/z/precious");
	TV_OK(tv_unmount(tv));
	struct fast f;
	fast_open(tv, &f);
	struct fs_inode in;
	get_inode(&f, zino, &in);
	static const uint8_t zero[FS_BLOCK_SIZE];
	put_bytes(&f, in.tree_root * FS_BLOCK_SIZE, zero, sizeof(zero));
	fast_close(&f);
	struct fsck_report r;
	expect_result(tv, &r, run_fsck(tv, 1, &r), FSCK_REPAIRED);
	char text[96];
	snprintf(text, sizeof(text), "inode %llu: unreachable from the root",
	         (unsigned long long)fino);
	expect_item(tv, &r, &r.repairs, "unreachable", text);
	expect_item(tv, &r, &r.repairs, "unreachable", "linked as /lost+found/#");
	fsck_report_free(&r);
	expect_clean(tv);
	assert_non_null(tv_mount(tv, NULL));
	verify(tv->fs, 0);
	char path[64];
	snprintf(path, sizeof(path), "/lost+found/#%llu", (unsigned long long)fino);
	tv_expect_str(tv->fs, path, "do not free me");
	TV_EQ(tv_stat(tv->fs, path).st_nlink, 1);
	TV_EQ(tv_stat(tv->fs, "/lost+found").st_mode & 07777, 0700);
	tv_destroy(tv);
}

/* Directory /s of three files, one slot of its leaf damaged (unmounted);
 * what fsck then says of it into text. */
static struct testvol *damaged_directory_leaf(char *text, size_t len)
{
	struct testvol *tv = make_volume();
	TV_OK(cairn_mkdir(tv->fs, "/s", 0755));
	tv_put_str(tv->fs, "/s/one", "1");
	tv_put_str(tv->fs, "/s/two", "2");
	tv_put_str(tv->fs, "/s/three", "3");
	uint64_t sino = ino_of(tv->fs, "/s");
	TV_OK(tv_unmount(tv));
	struct fast f;
	fast_open(tv, &f);
	struct fs_inode in;
	get_inode(&f, sino, &in);
	uint16_t bad_len = 5; /* below the smallest record: the slot is refused */
	put_bytes(&f, in.tree_root * FS_BLOCK_SIZE + 32 + 4 * 1 + 2, &bad_len, 2);
	fast_close(&f);
	snprintf(text, len, "inode %llu: directory tree (root block %llu) is damaged",
	         (unsigned long long)sino, (unsigned long long)in.tree_root);
	return tv;
}

/* A directory leaf with one bad slot: the readable names are salvaged
 * into a new tree; the name that was lost comes back in /lost+found. */
static void test_damaged_directory_leaf_salvaged(void **state)
{
	char text[96];
	struct testvol *tv = damaged_directory_leaf(text, sizeof(text));
	expect_found_then_repaired(tv, "tree", text);
	assert_non_null(tv_mount(tv, NULL));
	verify(tv->fs, 0);
	int found = 0;
	const char *names[] = {"/s/one", "/s/two", "/s/three"};
	for (int i = 0; i < 3; i++)
		found += tv_exists(tv->fs, names[i]);
	TV_EQ(found, 2);
	cairn_dir *d = TV_NN(cairn_opendir(tv->fs, "/lost+found"));
	struct cairn_dirent *de;
	int lost = 0;
	while ((de = cairn_readdir(d)))
		lost += de->d_name[0] == '#';
	TV_OK(cairn_closedir(d));
	TV_EQ(lost, 1);
	TV_EQ(tv_stat(tv->fs, "/s").st_nlink, 2);
	tv_destroy(tv);
}

/* realloc of this many bytes or more fails while it is set: the salvage's
 * first growth holds 64 names of DIR_NAME_MAX bytes (17 KiB), what else
 * fsck grows here stays smaller. */
static size_t fail_realloc_from;

void *realloc(void *p, size_t n)
{
	static void *(*next)(void *, size_t);
	if (!next)
		next = (void *(*)(void *, size_t))dlsym(RTLD_NEXT, "realloc");
	if (fail_realloc_from && n >= fail_realloc_from) {
		errno = ENOMEM;
		return NULL;
	}
	return next(p, n);
}

/* A salvage that runs out of memory rebuilds nothing: fsck says it could
 * not repair the tree, and the next run salvages every readable name. */
static void test_salvage_without_memory_changes_nothing(void **state)
{
	char text[96];
	struct testvol *tv = damaged_directory_leaf(text, sizeof(text));
	struct fsck_report r;
	fail_realloc_from = 64 * (DIR_NAME_MAX + 10);
	run_fsck(tv, 1, &r);
	fail_realloc_from = 0;
	int said = 0;
	for (size_t i = 0; i < r.notes.n; i++)
		said |=
		    strstr(r.notes.v[i].msg, "could not repair") && strstr(r.notes.v[i].msg, text);
	if (!said)
		fail_msg("no note that the tree could not be repaired");
	fsck_report_free(&r);
	expect_found_then_repaired(tv, "tree", text);
	assert_non_null(tv_mount(tv, NULL));
	int found = tv_exists(tv->fs, "/s/one") + tv_exists(tv->fs, "/s/two") +
	            tv_exists(tv->fs, "/s/three");
	TV_EQ(found, 2);
	tv_destroy(tv);
}

/* An entry whose inode number now names another directory: that
 * directory is named twice, its parent field says which name is real,
 * and the file that lost its name comes back in /lost+found. */
static void test_directory_named_twice(void **state)
{
	struct testvol *tv = make_volume();
	TV_OK(cairn_mkdir(tv->fs, "/q", 0755));
	tv_put_str(tv->fs, "/q/f", "f's data");
	uint64_t qino = ino_of(tv->fs, "/q"), bino = ino_of(tv->fs, "/a/b");
	uint64_t fino = ino_of(tv->fs, "/q/f");
	TV_OK(tv_unmount(tv));
	struct fast f;
	fast_open(tv, &f);
	struct fs_inode in;
	get_inode(&f, qino, &in);
	uint64_t rec = first_record_off(&f, in.tree_root); /* /q's only entry, "f" */
	uint8_t dt = 4;                                    /* DT_DIR */
	put_bytes(&f, rec + 8, &bino, 8);
	put_bytes(&f, rec + 16, &dt, 1);
	fast_close(&f);
	char text[128];
	snprintf(text, sizeof(text), "directory %llu is named by more than one entry",
	         (unsigned long long)bino);
	expect_found_then_repaired(tv, "dir-multiple-names", text);
	assert_non_null(tv_mount(tv, NULL));
	verify(tv->fs, 0);
	assert_false(tv_exists(tv->fs, "/q/f"));
	snprintf(text, sizeof(text), "/lost+found/#%llu", (unsigned long long)fino);
	tv_expect_str(tv->fs, text, "f's data");
	TV_EQ(tv_stat(tv->fs, "/q").st_nlink, 2);
	tv_destroy(tv);
}

/* A file of 600 extents has a two-level block map; one leaf is zeroed.
 * The readable extents are salvaged into a new map, and what the lost
 * leaf mapped reads as zeros. */
static void test_damaged_extent_leaf_salvaged(void **state)
{
	struct testvol *tv = make_volume();
	unsigned char blk[4096], got[4096];
	int fd = TV_OK(cairn_open(tv->fs, "/frag", O_CREAT | O_RDWR, 0644));
	for (int i = 0; i < 600; i++) {
		tv_fill(blk, sizeof(blk), 1000 + (uint64_t)i);
		TV_EQ(cairn_pwrite(tv->fs, fd, blk, sizeof(blk), (off_t)i * 8192), sizeof(blk));
	}
	TV_OK(cairn_close(tv->fs, fd));
	uint64_t ino = ino_of(tv->fs, "/frag");
	TV_OK(tv_unmount(tv));
	struct fast f;
	fast_open(tv, &f);
	struct fs_inode in;
	get_inode(&f, ino, &in);
	uint16_t level, count;
	get_bytes(&f, in.tree_root * FS_BLOCK_SIZE + 4, &level, 2);
	get_bytes(&f, in.tree_root * FS_BLOCK_SIZE + 6, &count, 2);
	TV_EQ(level, 1);
	assert_true(count >= 3);
	uint64_t leaf, first_lost, next_key;
	get_bytes(&f, in.tree_root * FS_BLOCK_SIZE + 32 + 16 * 1 + 8, &leaf, 8);
	get_bytes(&f, in.tree_root * FS_BLOCK_SIZE + 32 + 16 * 1, &first_lost, 8);
	get_bytes(&f, in.tree_root * FS_BLOCK_SIZE + 32 + 16 * 2, &next_key, 8);
	static const uint8_t zero[FS_BLOCK_SIZE];
	put_bytes(&f, leaf * FS_BLOCK_SIZE, zero, sizeof(zero));
	fast_close(&f);
	char text[96];
	snprintf(text, sizeof(text), "inode %llu: extent tree (root block %llu) is damaged",
	         (unsigned long long)ino, (unsigned long long)in.tree_root);
	expect_found_then_repaired(tv, "tree", text);
	assert_non_null(tv_mount(tv, NULL));
	verify(tv->fs, 0);
	fd = TV_OK(cairn_open(tv->fs, "/frag", O_RDONLY));
	for (int i = 0; i < 600; i++) {
		uint64_t lblk = (uint64_t)i * 2;
		int lost = lblk >= first_lost && lblk < next_key;
		if (lost)
			memset(blk, 0, sizeof(blk));
		else
			tv_fill(blk, sizeof(blk), 1000 + (uint64_t)i);
		TV_EQ(cairn_pread(tv->fs, fd, got, sizeof(got), (off_t)i * 8192), sizeof(got));
		if (memcmp(blk, got, sizeof(got)))
			fail_msg("block %d (lost: %d) reads wrong", i, lost);
	}
	TV_OK(cairn_close(tv->fs, fd));
	tv_destroy(tv);
}

/* A block map of unwritten extents whose blocks hold junk, with a leaf
 * zeroed: the extents salvaged stay unwritten, so the file reads as zeros
 * everywhere (where the lost leaf mapped blocks too). */
static void test_damaged_unwritten_leaf_salvaged(void **state)
{
	struct testvol *tv = make_volume();
	int fd = TV_OK(cairn_open(tv->fs, "/frag", O_CREAT | O_RDWR, 0644));
	for (int i = 0; i < 600; i++)
		TV_OK(cairn_fallocate(tv->fs, fd, 1 /* KEEP_SIZE */, (off_t)i * 8192, 4096));
	TV_OK(cairn_ftruncate(tv->fs, fd, 600 * 8192));
	TV_OK(cairn_close(tv->fs, fd));
	TV_OK(cairn_digest(tv->fs));
	TV_EQ(tv_soil_unwritten(tv->fs, "/frag"), 600);
	uint64_t ino = ino_of(tv->fs, "/frag");
	TV_OK(tv_unmount(tv));
	struct fast f;
	fast_open(tv, &f);
	struct fs_inode in;
	get_inode(&f, ino, &in);
	uint16_t level;
	get_bytes(&f, in.tree_root * FS_BLOCK_SIZE + 4, &level, 2);
	TV_EQ(level, 1);
	uint64_t leaf;
	get_bytes(&f, in.tree_root * FS_BLOCK_SIZE + 32 + 16 * 1 + 8, &leaf, 8);
	static const uint8_t zero[FS_BLOCK_SIZE];
	put_bytes(&f, leaf * FS_BLOCK_SIZE, zero, sizeof(zero));
	fast_close(&f);
	char text[96];
	snprintf(text, sizeof(text), "inode %llu: extent tree (root block %llu) is damaged",
	         (unsigned long long)ino, (unsigned long long)in.tree_root);
	expect_found_then_repaired(tv, "tree", text);
	assert_non_null(tv_mount(tv, NULL));
	verify(tv->fs, 0);
	assert_true(tv_stat(tv->fs, "/frag").st_blocks >= 300 * 8); /* most came back */
	tv_expect(tv->fs, "/frag", NULL, 600 * 8192);
	tv_destroy(tv);
}

/* An entry whose key left its name's bucket cannot be looked up; repair
 * inserts it again under a key of the right bucket. */
static void test_entry_key_outside_bucket(void **state)
{
	struct testvol *tv = make_volume();
	TV_OK(cairn_mkdir(tv->fs, "/r", 0755));
	tv_put_str(tv->fs, "/r/x", "x");
	tv_put_str(tv->fs, "/r/y", "y");
	tv_put_str(tv->fs, "/r/z", "z");
	uint64_t rino = ino_of(tv->fs, "/r");
	TV_OK(tv_unmount(tv));
	struct fast f;
	fast_open(tv, &f);
	struct fs_inode in;
	get_inode(&f, rino, &in);
	uint16_t count, off;
	get_bytes(&f, in.tree_root * FS_BLOCK_SIZE + 6, &count, 2);
	get_bytes(&f, in.tree_root * FS_BLOCK_SIZE + 32 + 4 * (count - 1), &off, 2);
	uint64_t key; /* the highest key: moving it up one bucket keeps the order */
	get_bytes(&f, in.tree_root * FS_BLOCK_SIZE + off, &key, 8);
	key += 0x10000;
	put_bytes(&f, in.tree_root * FS_BLOCK_SIZE + off, &key, 8);
	fast_close(&f);
	char text[96];
	snprintf(text, sizeof(text), "has key %llu, outside its name's hash bucket",
	         (unsigned long long)key);
	expect_found_then_repaired(tv, "dirent-key", text);
	assert_non_null(tv_mount(tv, NULL));
	verify(tv->fs, 0);
	tv_expect_str(tv->fs, "/r/x", "x");
	tv_expect_str(tv->fs, "/r/y", "y");
	tv_expect_str(tv->fs, "/r/z", "z");
	tv_destroy(tv);
}

static void test_extent_outside_tier(void **state)
{
	struct testvol *tv = make_volume();
	uint64_t ino = ino_of(tv->fs, "/a/data");
	TV_OK(tv_unmount(tv));
	struct fast f;
	fast_open(tv, &f);
	uint64_t ext[3];
	uint64_t off = first_extent(&f, ino, ext);
	TV_EQ(ext[0], 0);
	ext[1] = f.sb.total_blocks + 10;
	put_extent(&f, off, ext);
	fast_close(&f);
	char text[160];
	snprintf(text, sizeof(text),
	         "inode %llu: extent at logical block 0 maps blocks %llu..%llu, "
	         "outside the data area",
	         (unsigned long long)ino, (unsigned long long)ext[1],
	         (unsigned long long)(ext[1] + ext[2] - 1));
	expect_found_then_repaired(tv, "extent-outside", text);
	assert_non_null(tv_mount(tv, NULL));
	verify(tv->fs, ext[2]); /* those blocks are gone: they read as zeros */
	tv_destroy(tv);
}

/* /pre: 8 blocks preallocated, the middle one written (a tree of three
 * extents: unwritten, written, unwritten), and 4 more set aside past the
 * end; /pre1: one unwritten extent, inline; /pre2: empty, with blocks
 * set aside wholly past its end (no warning: that is what KEEP_SIZE
 * does). */
static void preallocate(cairn_fs *fs)
{
	int fd = TV_OK(cairn_open(fs, "/pre", O_CREAT | O_RDWR, 0644));
	TV_OK(cairn_fallocate(fs, fd, 0, 0, 8 * 4096));
	TV_EQ(cairn_pwrite(fs, fd, "mid", 3, 4 * 4096), 3);
	TV_OK(cairn_fallocate(fs, fd, 1 /* KEEP_SIZE */, 8 * 4096, 4 * 4096));
	TV_OK(cairn_close(fs, fd));
	fd = TV_OK(cairn_open(fs, "/pre1", O_CREAT | O_RDWR, 0644));
	TV_OK(cairn_fallocate(fs, fd, 0, 0, 3 * 4096));
	TV_OK(cairn_close(fs, fd));
	fd = TV_OK(cairn_open(fs, "/pre2", O_CREAT | O_RDWR, 0644));
	TV_OK(cairn_fallocate(fs, fd, 1 /* KEEP_SIZE */, 4 * 4096, 2 * 4096));
	TV_OK(cairn_close(fs, fd));
	TV_OK(cairn_digest(fs));
}

static void verify_preallocated(cairn_fs *fs)
{
	static unsigned char exp[8 * 4096];
	memset(exp, 0, sizeof(exp));
	memcpy(exp + 4 * 4096, "mid", 3);
	tv_expect(fs, "/pre", exp, sizeof(exp));
	tv_expect(fs, "/pre1", NULL, 3 * 4096);
	assert_true(tv_stat(fs, "/pre1").st_blocks >= 3 * 8);
}

static void test_preallocated_is_clean(void **state)
{
	struct testvol *tv = make_volume();
	preallocate(tv->fs);
	assert_true(tv_stat(tv->fs, "/pre").st_blocks >= 12 * 8);
	TV_OK(tv_unmount(tv));
	struct fsck_report r;
	expect_result(tv, &r, run_fsck(tv, 0, &r), FSCK_CLEAN);
	if (r.errors || r.warnings) {
		print_report(tv->dir, &r);
		fail_msg("a volume with preallocated files is not clean");
	}
	fsck_report_free(&r);
	assert_non_null(tv_mount(tv, NULL));
	verify_preallocated(tv->fs);
	tv_destroy(tv);
}

/* The state byte of an extent record (the top byte of its length word)
 * damaged, and an unwritten inline extent in a symlink: found, and the
 * extents removed (the first read as zeros either way). */
static void test_bad_extent_state(void **state)
{
	struct testvol *tv = make_volume();
	preallocate(tv->fs);
	TV_OK(cairn_symlink(tv->fs, "/a/data", "/sym2"));
	uint64_t ino = ino_of(tv->fs, "/pre"), sino = ino_of(tv->fs, "/sym2");
	TV_OK(tv_unmount(tv));
	struct fast f;
	fast_open(tv, &f);
	uint64_t ext[3];
	uint64_t off = first_extent(&f, ino, ext);
	assert_false(off & INLINE_AT);
	TV_EQ(ext[2] >> 56, 0xa5);
	ext[2] ^= 1ull << 56; /* one bit of the pattern */
	put_extent(&f, off, ext);
	fast_close(&f);
	char text[160];
	snprintf(text, sizeof(text),
	         "inode %llu: extent at logical block 0 is invalid (block %llu, length 4, an "
	         "unknown state)",
	         (unsigned long long)ino, (unsigned long long)ext[1]);
	expect_found_then_repaired(tv, "extent-bad", text);
	fast_open(tv, &f);
	struct fs_inode in;
	get_inode(&f, sino, &in);
	assert_true(in.flags & FS_INODE_INLINE_EXTENT);
	in.flags |= FS_INODE_INLINE_UNWRITTEN;
	put_inode(&f, sino, &in);
	fast_close(&f);
	snprintf(text, sizeof(text),
	         "inode %llu: extent at logical block 0 is invalid (block %llu, "
	         "length 1, unwritten outside a regular file)",
	         (unsigned long long)sino, (unsigned long long)in.rdev);
	expect_found_then_repaired(tv, "extent-bad", text);
	assert_non_null(tv_mount(tv, NULL));
	verify(tv->fs, 0);
	verify_preallocated(tv->fs);
	tv_destroy(tv);
}

static void test_used_block_marked_free(void **state)
{
	struct testvol *tv = make_volume();
	uint64_t ino = ino_of(tv->fs, "/a/data");
	TV_OK(tv_unmount(tv));
	struct fast f;
	fast_open(tv, &f);
	uint64_t ext[3];
	first_extent(&f, ino, ext);
	assert_true(get_bit(&f, f.sb.bbitmap_start, ext[1] + 1));
	change_bit(&f, f.sb.bbitmap_start, ext[1] + 1, 0);
	fast_close(&f);
	char text[96];
	snprintf(text, sizeof(text), "block %llu: in use by a tree but marked free",
	         (unsigned long long)ext[1] + 1);
	expect_found_then_repaired(tv, "block-free-but-claimed", text);
	assert_non_null(tv_mount(tv, NULL));
	verify(tv->fs, 0);
	tv_destroy(tv);
}

static void test_inode_free_in_bitmap(void **state)
{
	struct testvol *tv = make_volume();
	uint64_t ino = ino_of(tv->fs, "/a/empty");
	TV_OK(tv_unmount(tv));
	struct fast f;
	fast_open(tv, &f);
	change_bit(&f, f.sb.ibitmap_start, ino, 0);
	fast_close(&f);
	char text[96];
	snprintf(text, sizeof(text),
	         "inode %llu: in use (mode 0100644) but free in the inode bitmap",
	         (unsigned long long)ino);
	expect_found_then_repaired(tv, "inode-bitmap-free", text);
	assert_non_null(tv_mount(tv, NULL));
	verify(tv->fs, 0);
	assert_true(tv_exists(tv->fs, "/a/empty"));
	tv_destroy(tv);
}

static void test_damaged_checkpoint_slot(void **state)
{
	struct testvol *tv = make_volume();
	TV_OK(tv_unmount(tv));
	struct fast f;
	fast_open(tv, &f);
	struct fs_checkpoint ck[2];
	get_bytes(&f, FS_BLOCK_SIZE, &ck[0], sizeof(ck[0]));
	get_bytes(&f, 2 * FS_BLOCK_SIZE, &ck[1], sizeof(ck[1]));
	int old = ck[0].seq < ck[1].seq ? 0 : 1; /* the slot not in use */
	ck[old].free_blocks ^= 1;
	put_bytes(&f, (uint64_t)(1 + old) * FS_BLOCK_SIZE, &ck[old], sizeof(ck[old]));
	fast_close(&f);
	char text[PATH_MAX + 96];
	snprintf(text, sizeof(text),
	         "fast part %s: offset %d: checkpoint slot %c: checksum mismatch", tv->fast_part,
	         (1 + old) * 4096, 'A' + old);
	expect_found_then_repaired(tv, "checkpoint-slot", text);
	assert_non_null(tv_mount(tv, NULL));
	verify(tv->fs, 0);
	tv_destroy(tv);
}

/* Two files mapping the same blocks: found with both owners; repair has
 * no safe fix (it would have to copy data), so it leaves it. */
static void test_blocks_claimed_twice(void **state)
{
	struct testvol *tv = make_volume();
	static unsigned char buf[DATA_LEN];
	tv_fill(buf, sizeof(buf), 7);
	tv_put(tv->fs, "/twin", buf, sizeof(buf), 0644);
	uint64_t a = ino_of(tv->fs, "/a/data"), b = ino_of(tv->fs, "/twin");
	TV_OK(tv_unmount(tv));
	struct fast f;
	fast_open(tv, &f);
	uint64_t ea[3], eb[3];
	first_extent(&f, a, ea);
	uint64_t off = first_extent(&f, b, eb);
	TV_EQ(eb[2], ea[2]);
	eb[1] = ea[1];
	put_extent(&f, off, eb);
	fast_close(&f);
	struct fsck_report r;
	expect_result(tv, &r, run_fsck(tv, 1, &r), FSCK_PROBLEMS);
	char text[128];
	if (ea[2] == 1)
		snprintf(text, sizeof(text), "block %llu: claimed by inodes %llu and %llu",
		         (unsigned long long)ea[1], (unsigned long long)(a < b ? a : b),
		         (unsigned long long)(a < b ? b : a));
	else
		snprintf(text, sizeof(text),
		         "blocks %llu-%llu (%llu blocks): claimed by inodes %llu and %llu",
		         (unsigned long long)ea[1], (unsigned long long)(ea[1] + ea[2] - 1),
		         (unsigned long long)ea[2], (unsigned long long)(a < b ? a : b),
		         (unsigned long long)(a < b ? b : a));
	expect_item(tv, &r, &r.found, "block-duplicate", text);
	expect_item(tv, &r, &r.remaining, "block-duplicate", text);
	/* The twin's own blocks were leaked, and those are reclaimed. */
	expect_item(tv, &r, &r.found, "block-leak", "to nothing (leak)");
	assert_null(find_item(&r.remaining, "block-leak", ""));
	fsck_report_free(&r);
	tv_destroy(tv);
}

static void test_refused_volume(void **state)
{
	struct testvol *tv = make_volume();
	TV_OK(tv_unmount(tv));
	struct fast f;
	fast_open(tv, &f);
	uint64_t junk = 0x1234;
	put_bytes(&f, 0, &junk, sizeof(junk));
	put_bytes(&f, FS_BACKUP_BLOCK(tv->mkfs.fast_size) * FS_BLOCK_SIZE, &junk, sizeof(junk));
	fast_close(&f);
	struct fsck_report r;
	expect_result(tv, &r, run_fsck(tv, 1, &r), FSCK_REFUSED);
	assert_non_null(
	    strstr(r.refused, "both superblock copies are damaged: offset 0: bad magic"));
	fsck_report_free(&r);

	char notvol[PATH_MAX + 8];
	snprintf(notvol, sizeof(notvol), "%s", tv->root);
	struct fsck_opts o = {0};
	TV_EQ(fsck_run(notvol, &o, &r), FSCK_REFUSED);
	assert_non_null(strstr(r.refused, "not a cairn volume"));
	fsck_report_free(&r);
	tv_destroy(tv);
}

/* ---- superblock copies ----------------------------------------------------------- */

static void flip_part_byte(const char *path, uint64_t off)
{
	int fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	unsigned char c;
	TV_EQ(pread(fd, &c, 1, (off_t)off), 1);
	c ^= 0x01; /* one bit */
	TV_EQ(pwrite(fd, &c, 1, (off_t)off), 1);
	close(fd);
}

/* One bit in one copy of a superblock: the volume mounts (saying which
 * copy it did without), fsck reports the copy, --repair rewrites it, and
 * the volume is clean again.  Before the backup copy existed, a bit in the
 * zero padding made the volume unmountable for good. */
static void one_copy_damaged(const char *part_name, uint64_t off, const char *code,
                             const char *text)
{
	struct testvol *tv = make_volume();
	TV_OK(tv_unmount(tv));
	const char *part = !strcmp(part_name, "log") ? tv->log_part : tv->fast_part;
	flip_part_byte(part, off);
	assert_non_null(tv_mount(tv, NULL));
	if (!strstr(cairn_last_error(), text))
		fail_msg("the mount said \"%s\", not \"%s\"", cairn_last_error(), text);
	verify(tv->fs, 0);
	TV_OK(tv_unmount(tv));
	expect_found_then_repaired(tv, code, text);
	assert_non_null(tv_mount(tv, NULL));
	assert_true(!strstr(cairn_last_error(), "damaged"));
	TV_OK(tv_unmount(tv));
	tv_destroy(tv);
}

static void test_log_superblock_copy(void **state)
{
	uint64_t back = LOG_BACKUP_OFF(small_opts.log_size);
	one_copy_damaged("log", 200, "log-superblock-copy", "offset 0");
	one_copy_damaged("log", 20, "log-superblock-copy", "offset 0"); /* the UUID */
	char text[64];
	snprintf(text, sizeof(text), "offset %llu", (unsigned long long)back);
	one_copy_damaged("log", back + 200, "log-superblock-copy", text);
}

static void test_fast_superblock_copy(void **state)
{
	uint64_t back = FS_BACKUP_BLOCK(small_opts.fast_size) * FS_BLOCK_SIZE;
	one_copy_damaged("fast", 2000, "fast-superblock-copy", "offset 0");
	one_copy_damaged("fast", 40, "fast-superblock-copy", "offset 0"); /* inode count */
	char text[64];
	snprintf(text, sizeof(text), "offset %llu", (unsigned long long)back);
	one_copy_damaged("fast", back + 2000, "fast-superblock-copy", text);
}

/* Both copies of the log superblock: the mount is refused, fsck reports
 * it and cannot repair it. */
static void test_log_superblock_both_copies(void **state)
{
	struct testvol *tv = make_volume();
	TV_OK(tv_unmount(tv));
	flip_part_byte(tv->log_part, 200);
	flip_part_byte(tv->log_part, LOG_BACKUP_OFF(small_opts.log_size) + 200);
	assert_null(cairn_mount(tv->dir, NULL));
	assert_non_null(strstr(cairn_last_error(), "both superblock copies are damaged"));
	struct fsck_report r;
	expect_result(tv, &r, run_fsck(tv, 1, &r), FSCK_PROBLEMS);
	expect_item(tv, &r, &r.found, "log-refused", "both superblock copies are damaged");
	fsck_report_free(&r);
	tv_destroy(tv);
}

/* ---- records lost past a damaged log record ---------------------------------------- */

/* A volume whose log holds 60 acknowledged, undigested creates, as a
 * crash leaves it: a copy of its parts taken while mounted. */
static struct testvol *crashed_with_creates(void)
{
	/* A journal large enough that no checkpoint is due meanwhile. */
	static const struct cairn_mkfs_opts opts = {
	    .log_size = 4 * TV_MiB, .fast_size = 64 * TV_MiB, .media = CAIRN_MEDIA_EMUL};
	struct testvol *tv = tv_create(&opts);
	assert_non_null(tv);
	struct cairn_mount_opts mo = {.no_digest_thread = 1, .digest_threshold = 90};
	assert_non_null(tv_mount(tv, &mo));
	for (int i = 0; i < 60; i++) {
		char path[32];
		snprintf(path, sizeof(path), "/f%d", i);
		tv_put_str(tv->fs, path, "x");
	}
	struct testvol *cp = copy_volume(tv);
	TV_OK(tv_unmount(tv));
	tv_destroy(tv);
	return cp;
}

/* The offsets of the records in [head, end) of a log part. */
static int log_records(const char *path, uint64_t head, uint64_t end, uint64_t *offs, int max)
{
	int fd = open(path, O_RDONLY), n = 0;
	assert_true(fd >= 0);
	for (uint64_t off = head; off < end && n < max;) {
		struct log_rec_hdr h;
		TV_EQ(pread(fd, &h, sizeof(h), (off_t)off), sizeof(h));
		TV_EQ(h.magic, LOG_REC_MAGIC);
		offs[n++] = off;
		off += h.len;
	}
	close(fd);
	return n;
}

/* One byte flipped a tenth of the way into the live log: the records
 * after it were acknowledged, so the mount must not drop them silently:
 * it refuses read-write naming the offset and the count, mounts read-only
 * with the prefix (saying so), fsck reports it, and --repair drops them
 * explicitly, after which the volume mounts and is clean. */
static void test_log_records_lost(void **state)
{
	struct testvol *cp = crashed_with_creates();
	struct fsck_report r;
	expect_result(cp, &r, run_fsck(cp, 0, &r), FSCK_CLEAN);
	uint64_t head = r.log_head_off, end = r.log_end_off;
	fsck_report_free(&r);
	static uint64_t offs[512];
	int n = log_records(cp->log_part, head, end, offs, 512);
	if (n < 60)
		fail_msg("%d records in the log", n);
	uint64_t flip = head + (end - head) / 10;
	int bad = 0;
	while (bad + 1 < n && offs[bad + 1] <= flip)
		bad++;
	flip_part_byte(cp->log_part, flip);
	char want[128];
	snprintf(want, sizeof(want), "offset %llu (sequence %d) is damaged, and %d valid records",
	         (unsigned long long)offs[bad], bad + 1, n - bad - 1);

	expect_result(cp, &r, run_fsck(cp, 0, &r), FSCK_PROBLEMS);
	expect_item(cp, &r, &r.found, "log-records-lost", want);
	fsck_report_free(&r);

	errno = 0;
	assert_null(cairn_mount(cp->dir, NULL));
	TV_EQ(errno, EUCLEAN);
	if (!strstr(cairn_last_error(), want) || !strstr(cairn_last_error(), "not mounted"))
		fail_msg("the mount said \"%s\"", cairn_last_error());

	struct cairn_mount_opts ro = {.read_only = 1};
	assert_non_null(tv_mount(cp, &ro));
	if (!strstr(cairn_last_error(), want) || !strstr(cairn_last_error(), "read-only"))
		fail_msg("the read-only mount said \"%s\"", cairn_last_error());
	assert_true(tv_exists(cp->fs, "/f0"));
	assert_false(tv_exists(cp->fs, "/f59"));
	TV_OK(tv_unmount(cp));

	expect_result(cp, &r, run_fsck(cp, 1, &r), FSCK_REPAIRED);
	expect_item(cp, &r, &r.repairs, "log-records-lost", "dropped the damaged record");
	fsck_report_free(&r);
	expect_clean(cp);
	assert_non_null(tv_mount(cp, NULL));
	assert_true(tv_exists(cp->fs, "/f0"));
	assert_false(tv_exists(cp->fs, "/f59"));
	TV_OK(tv_unmount(cp));
	expect_clean(cp);
	tv_destroy(cp);
}

/* The last record torn, as a crash during its append leaves it: nothing
 * valid lies past it, so fsck and the mount stay silent. */
static void test_log_torn_tail_is_clean(void **state)
{
	struct testvol *cp = crashed_with_creates();
	struct fsck_report r;
	expect_result(cp, &r, run_fsck(cp, 0, &r), FSCK_CLEAN);
	uint64_t head = r.log_head_off, end = r.log_end_off, records = r.undigested_records;
	fsck_report_free(&r);
	static uint64_t offs[512];
	int n = log_records(cp->log_part, head, end, offs, 512);
	flip_part_byte(cp->log_part, offs[n - 1] + 5);
	expect_result(cp, &r, run_fsck(cp, 0, &r), FSCK_CLEAN);
	TV_EQ(r.undigested_records, records - 1);
	fsck_report_free(&r);
	assert_non_null(tv_mount(cp, NULL));
	TV_EQ(cairn_last_error()[0], 0);
	assert_true(tv_exists(cp->fs, "/f58"));
	TV_OK(tv_unmount(cp));
	expect_clean(cp);
	tv_destroy(cp);
}

/* Damage in a crashed copy: repair mounts it first (recovery digests the
 * log and frees the orphan), then repairs the shared area. */
static void test_repair_after_crash(void **state)
{
	struct testvol *tv = make_volume();
	uint64_t ino = ino_of(tv->fs, "/a/b/small");
	int fd;
	struct testvol *cp = crashed_copy(tv, &fd);
	TV_OK(cairn_close(tv->fs, fd));
	TV_OK(tv_unmount(tv));
	struct fast f;
	fast_open(cp, &f);
	struct fs_inode in;
	get_inode(&f, ino, &in);
	in.nlink = 3;
	put_inode(&f, ino, &in);
	fast_close(&f);

	struct fsck_report r;
	expect_result(cp, &r, run_fsck(cp, 1, &r), FSCK_REPAIRED);
	expect_item(cp, &r, &r.found, "nlink", "nlink 3 but 1 directory entry names it");
	expect_item(cp, &r, &r.notes, "none", "mounted and unmounted the volume");
	TV_EQ(r.undigested_records, 0);
	TV_EQ(r.orphans, 0);
	fsck_report_free(&r);
	expect_clean(cp);
	assert_non_null(tv_mount(cp, NULL));
	verify(cp->fs, 0);
	tv_expect_str(cp->fs, "/after", "undigested");
	tv_destroy(cp);
	tv_destroy(tv);
}

/* A crashed copy whose checkpoint names a linked file as the orphan
 * list's head: recovery would free it.  Repair cuts the list before the
 * recovery mount, so the file survives. */
static void test_orphan_list_names_linked_file(void **state)
{
	struct testvol *tv = make_volume();
	uint64_t ino = ino_of(tv->fs, "/a/b/small");
	int fd;
	struct testvol *cp = crashed_copy(tv, &fd);
	TV_OK(cairn_close(tv->fs, fd));
	TV_OK(tv_unmount(tv));
	struct fast f;
	fast_open(cp, &f);
	struct fs_checkpoint ck[2];
	get_bytes(&f, FS_BLOCK_SIZE, &ck[0], sizeof(ck[0]));
	get_bytes(&f, 2 * FS_BLOCK_SIZE, &ck[1], sizeof(ck[1]));
	int cur = ck[0].seq > ck[1].seq ? 0 : 1;
	assert_true(ck[cur].orphan_head != 0);
	ck[cur].orphan_head = ino;
	ck[cur].checksum = XXH3_64bits(&ck[cur], sizeof(ck[cur]) - 8);
	put_bytes(&f, (uint64_t)(1 + cur) * FS_BLOCK_SIZE, &ck[cur], sizeof(ck[cur]));
	fast_close(&f);
	struct fsck_report r;
	expect_result(cp, &r, run_fsck(cp, 1, &r), FSCK_REPAIRED);
	char text[128];
	snprintf(text, sizeof(text),
	         "orphan list: the checkpoint's head names inode %llu, which still "
	         "has 1 link",
	         (unsigned long long)ino);
	expect_item(cp, &r, &r.found, "orphan-list", text);
	expect_item(cp, &r, &r.notes, "none", "mounted and unmounted the volume");
	fsck_report_free(&r);
	expect_clean(cp);
	assert_non_null(tv_mount(cp, NULL));
	verify(cp->fs, 0);
	tv_expect_str(cp->fs, "/after", "undigested");
	tv_destroy(cp);
	tv_destroy(tv);
}

/* ---- capacity tiers ------------------------------------------------------------------ */

#define TIER_FILES 6
#define TIER_FILE_SIZE TV_MiB

static uint64_t tier_ino[TIER_FILES];

static void tier_file_path(char *p, size_t len, int k)
{
	snprintf(p, len, "/t%d", k);
}

/* An 8 MiB fast tier, an 8 MiB "ssd" and a 16 MiB "hdd" tier; six 1 MiB
 * files, digested and migrated with low watermarks, so that the older
 * ones lie on the capacity tiers.  Unmounted on return. */
static struct testvol *tiered_volume(void)
{
	struct testvol *tv = tv_scratch("fsck-tiers");
	char ssd[PATH_MAX], hdd[PATH_MAX];
	snprintf(ssd, sizeof(ssd), "%s/ssd.tier", tv->root);
	snprintf(hdd, sizeof(hdd), "%s/hdd.tier", tv->root);
	struct cairn_mkfs_opts o = small_opts;
	o.ntiers = 2;
	o.tiers[0] = (struct cairn_tier_opts){"ssd", ssd, 8 * TV_MiB, 0};
	o.tiers[1] = (struct cairn_tier_opts){"hdd", hdd, 16 * TV_MiB, 0};
	if (tv_mkfs(tv, &o))
		fail_msg("mkfs with tiers: %s", cairn_last_error());
	struct cairn_mount_opts mo = {
	    .no_digest_thread = 1, .high_watermark = 30, .low_watermark = 10};
	cairn_fs *fs = tv_mount(tv, &mo);
	assert_non_null(fs);
	unsigned char *buf = malloc(TIER_FILE_SIZE);
	for (int k = 0; k < TIER_FILES; k++) {
		char p[16];
		tier_file_path(p, sizeof(p), k);
		tv_fill(buf, TIER_FILE_SIZE, 500 + (uint64_t)k);
		tv_put(fs, p, buf, TIER_FILE_SIZE, 0644);
		tier_ino[k] = ino_of(fs, p);
	}
	free(buf);
	TV_OK(cairn_digest(fs));
	TV_OK(cairn_migrate(fs));
	TV_OK(tv_unmount(tv));
	return tv;
}

/* Mounts the volume and reads every file back; the first zero_blocks[k]
 * blocks of file k (none if zero_blocks is NULL) must read as zeros. */
static void verify_tiered(struct testvol *tv, const uint64_t *zero_blocks)
{
	assert_non_null(tv_mount(tv, NULL));
	unsigned char *buf = malloc(TIER_FILE_SIZE);
	for (int k = 0; k < TIER_FILES; k++) {
		char p[16];
		tier_file_path(p, sizeof(p), k);
		tv_fill(buf, TIER_FILE_SIZE, 500 + (uint64_t)k);
		if (zero_blocks)
			memset(buf, 0, zero_blocks[k] * FS_BLOCK_SIZE);
		tv_expect(tv->fs, p, buf, TIER_FILE_SIZE);
	}
	free(buf);
	TV_OK(tv_unmount(tv));
}

/* The index of the n-th file (from 0) whose first extent lies on a
 * capacity tier; its extent in ext and the extent's offset in *off. */
static int capacity_file(struct fast *f, int n, uint64_t ext[3], uint64_t *off)
{
	for (int k = 0; k < TIER_FILES; k++) {
		uint64_t o = first_extent(f, tier_ino[k], ext);
		if (FS_PBLK_TIER(ext[1]) != 0 && n-- == 0) {
			if (off)
				*off = o;
			return k;
		}
	}
	fail_msg("too few files with data on a capacity tier");
	return -1;
}

static const char *tier_name(struct fast *f, uint64_t pblk)
{
	return f->sb.tiers[FS_PBLK_TIER(pblk) - 1].name;
}

static uint64_t tier_bitmap(struct fast *f, uint64_t pblk)
{
	return f->sb.tiers[FS_PBLK_TIER(pblk) - 1].bitmap_start;
}

static void test_tiered_volume_is_clean(void **state)
{
	struct testvol *tv = tiered_volume();
	struct fsck_report r;
	expect_result(tv, &r, run_fsck(tv, 0, &r), FSCK_CLEAN);
	TV_EQ(r.files, TIER_FILES);
	TV_EQ(r.tier_count, 3);
	assert_string_equal(r.tiers[0].name, "fast");
	assert_string_equal(r.tiers[1].name, "ssd");
	assert_string_equal(r.tiers[2].name, "hdd");
	assert_true(r.tiers[1].blocks_in_use + r.tiers[2].blocks_in_use > 0);
	TV_EQ(r.tiers[0].blocks_in_use + r.tiers[1].blocks_in_use + r.tiers[2].blocks_in_use,
	      r.blocks_in_use);
	TV_EQ(r.tiers[1].data_blocks, 8 * TV_MiB / FS_BLOCK_SIZE - 1); /* block 0: the header */
	expect_item(tv, &r, &r.notes, "none", "tier ssd part ");
	expect_item(tv, &r, &r.notes, "none", "capacity tier 2 of 2, header valid, 4096 blocks");

	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	fsck_print_text(f, tv->dir, &r);
	fclose(f);
	char want[64];
	snprintf(want, sizeof(want), "tier hdd: %llu of 4095 data blocks in use\n",
	         (unsigned long long)r.tiers[2].blocks_in_use);
	if (!strstr(text, want))
		fail_msg("per-tier line missing: %s", text);
	free(text);
	f = open_memstream(&text, &len);
	fsck_print_json(f, tv->dir, &r);
	fclose(f);
	assert_non_null(strstr(text, "\"tiers\": [{\"name\": \"fast\", \"data_blocks\": "));
	assert_non_null(strstr(text, "{\"name\": \"ssd\", \"data_blocks\": 2047, "));
	free(text);
	fsck_report_free(&r);
	struct fast fa;
	fast_open(tv, &fa);
	uint64_t ext[3];
	capacity_file(&fa, 1, ext, NULL); /* the damage tests need two such files */
	fast_close(&fa);
	verify_tiered(tv, NULL);
	tv_destroy(tv);
}

static void test_tier_block_marked_free(void **state)
{
	struct testvol *tv = tiered_volume();
	struct fast f;
	fast_open(tv, &f);
	uint64_t ext[3];
	capacity_file(&f, 0, ext, NULL);
	uint64_t blk = FS_PBLK_BLK(ext[1]) + ext[2] - 1; /* the extent's last block */
	assert_true(get_bit(&f, tier_bitmap(&f, ext[1]), blk));
	change_bit(&f, tier_bitmap(&f, ext[1]), blk, 0);
	char text[128];
	snprintf(text, sizeof(text), "tier %s block %llu: in use by a tree but marked free",
	         tier_name(&f, ext[1]), (unsigned long long)blk);
	fast_close(&f);
	expect_found_then_repaired(tv, "block-free-but-claimed", text);
	fast_open(tv, &f);
	assert_true(get_bit(&f, tier_bitmap(&f, ext[1]), blk));
	fast_close(&f);
	verify_tiered(tv, NULL);
	tv_destroy(tv);
}

static void test_tier_leaked_bits(void **state)
{
	struct testvol *tv = tiered_volume();
	struct fast f;
	fast_open(tv, &f);
	uint64_t hdd_end = f.sb.tiers[1].total_blocks; /* hdd is tier 2 */
	for (uint64_t b = hdd_end - 3; b < hdd_end; b++) {
		assert_false(get_bit(&f, f.sb.tiers[1].bitmap_start, b));
		change_bit(&f, f.sb.tiers[1].bitmap_start, b, 1);
	}
	fast_close(&f);
	char text[128];
	snprintf(text, sizeof(text),
	         "tier hdd blocks %llu-%llu (3 blocks): marked used but belong to nothing (leak)",
	         (unsigned long long)(hdd_end - 3), (unsigned long long)(hdd_end - 1));
	expect_found_then_repaired(tv, "block-leak", text);
	fast_open(tv, &f);
	assert_false(get_bit(&f, f.sb.tiers[1].bitmap_start, hdd_end - 1));
	fast_close(&f);
	verify_tiered(tv, NULL);
	tv_destroy(tv);
}

/* Two files mapping the same capacity-tier blocks: both owners named, the
 * twin's own blocks reclaimed as leaks, the sharing left for a person. */
static void test_tier_blocks_claimed_twice(void **state)
{
	struct testvol *tv = tiered_volume();
	struct fast f;
	fast_open(tv, &f);
	uint64_t ea[3], eb[3], off_a, off_b;
	int ka = capacity_file(&f, 0, ea, &off_a), kb = capacity_file(&f, 1, eb, &off_b);
	if (eb[2] > ea[2]) { /* b's extent must fit inside a's */
		uint64_t t[3];
		memcpy(t, ea, sizeof(t));
		memcpy(ea, eb, sizeof(t));
		memcpy(eb, t, sizeof(t));
		int k = ka;
		ka = kb;
		kb = k;
		off_b = off_a;
	}
	eb[1] = ea[1];
	put_extent(&f, off_b, eb);
	uint64_t a = tier_ino[ka], b = tier_ino[kb], blk = FS_PBLK_BLK(ea[1]);
	char text[160], where[96];
	if (eb[2] == 1)
		snprintf(where, sizeof(where), "block %llu", (unsigned long long)blk);
	else
		snprintf(where, sizeof(where), "blocks %llu-%llu (%llu blocks)",
		         (unsigned long long)blk, (unsigned long long)(blk + eb[2] - 1),
		         (unsigned long long)eb[2]);
	snprintf(text, sizeof(text), "tier %s %s: claimed by inodes %llu and %llu",
	         tier_name(&f, ea[1]), where, (unsigned long long)(a < b ? a : b),
	         (unsigned long long)(a < b ? b : a));
	fast_close(&f);
	struct fsck_report r;
	expect_result(tv, &r, run_fsck(tv, 1, &r), FSCK_PROBLEMS);
	expect_item(tv, &r, &r.found, "block-duplicate", text);
	expect_item(tv, &r, &r.remaining, "block-duplicate", text);
	expect_item(tv, &r, &r.found, "block-leak", "to nothing (leak)");
	assert_null(find_item(&r.remaining, "block-leak", ""));
	fsck_report_free(&r);
	tv_destroy(tv);
}

/* One extent runs past its tier's end, another names a tier the volume
 * does not have: both are removed, and what they mapped reads as zeros. */
static void test_tier_extent_outside(void **state)
{
	struct testvol *tv = tiered_volume();
	struct fast f;
	fast_open(tv, &f);
	uint64_t ea[3], eb[3], off_a, off_b;
	int ka = capacity_file(&f, 0, ea, &off_a), kb = capacity_file(&f, 1, eb, &off_b);
	unsigned t = FS_PBLK_TIER(ea[1]);
	uint64_t end = f.sb.tiers[t - 1].total_blocks;
	ea[1] = FS_PBLK(t, end - 1); /* its last block lies past the end if len > 1 */
	if (ea[2] == 1)
		ea[1] = FS_PBLK(t, end);
	put_extent(&f, off_a, ea);
	eb[1] = FS_PBLK(5, 100);
	put_extent(&f, off_b, eb);
	char text_a[200], text_b[200];
	snprintf(
	    text_a, sizeof(text_a),
	    "inode %llu: extent at logical block 0 maps tier %s blocks %llu..%llu, outside its "
	    "data area [1, %llu)",
	    (unsigned long long)tier_ino[ka], tier_name(&f, ea[1]),
	    (unsigned long long)FS_PBLK_BLK(ea[1]),
	    (unsigned long long)(FS_PBLK_BLK(ea[1]) + ea[2] - 1), (unsigned long long)end);
	snprintf(text_b, sizeof(text_b),
	         "inode %llu: extent at logical block 0 maps blocks 100..%llu of tier 5, which the "
	         "volume does not have (it has 2 capacity tiers)",
	         (unsigned long long)tier_ino[kb], (unsigned long long)(100 + eb[2] - 1));
	fast_close(&f);
	struct fsck_report r;
	expect_result(tv, &r, run_fsck(tv, 0, &r), FSCK_PROBLEMS);
	expect_item(tv, &r, &r.found, "extent-outside", text_a);
	expect_item(tv, &r, &r.found, "extent-outside", text_b);
	fsck_report_free(&r);
	expect_result(tv, &r, run_fsck(tv, 1, &r), FSCK_REPAIRED);
	TV_EQ(r.errors_left, 0);
	fsck_report_free(&r);
	expect_clean(tv);
	uint64_t zero[TIER_FILES] = {0};
	zero[ka] = ea[2];
	zero[kb] = eb[2];
	verify_tiered(tv, zero);
	tv_destroy(tv);
}

/* A capacity tier whose header is damaged cannot be checked: the refusal
 * names the tier, as a mount's does. */
static void test_tier_header_refused(void **state)
{
	struct testvol *tv = tiered_volume();
	char hdd[PATH_MAX];
	snprintf(hdd, sizeof(hdd), "%s/hdd.tier", tv->root);
	int fd = open(hdd, O_RDWR);
	assert_true(fd >= 0);
	uint64_t magic, junk = 0x1234;
	TV_EQ(pread(fd, &magic, 8, 0), 8);
	TV_EQ(magic, FS_TIER_MAGIC);
	TV_EQ(pwrite(fd, &junk, 8, 0), 8);
	struct fsck_report r;
	expect_result(tv, &r, run_fsck(tv, 1, &r), FSCK_REFUSED);
	assert_non_null(strstr(r.refused, "tier hdd part "));
	assert_non_null(strstr(r.refused, "bad magic number"));
	fsck_report_free(&r);
	TV_EQ(pwrite(fd, &magic, 8, 0), 8);
	close(fd);
	expect_clean(tv);
	tv_destroy(tv);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fresh_volume_is_clean),
	    cmocka_unit_test(test_populated_volume_is_clean),
	    cmocka_unit_test(test_crashed_copy_with_orphan_is_clean),
	    cmocka_unit_test(test_leaked_bitmap_bit),
	    cmocka_unit_test(test_wrong_nlink),
	    cmocka_unit_test(test_zeroed_directory_node),
	    cmocka_unit_test(test_zeroed_directory_node_keeps_data),
	    cmocka_unit_test(test_damaged_directory_leaf_salvaged),
	    cmocka_unit_test(test_salvage_without_memory_changes_nothing),
	    cmocka_unit_test(test_directory_named_twice),
	    cmocka_unit_test(test_damaged_extent_leaf_salvaged),
	    cmocka_unit_test(test_damaged_unwritten_leaf_salvaged),
	    cmocka_unit_test(test_entry_key_outside_bucket),
	    cmocka_unit_test(test_extent_outside_tier),
	    cmocka_unit_test(test_preallocated_is_clean),
	    cmocka_unit_test(test_bad_extent_state),
	    cmocka_unit_test(test_used_block_marked_free),
	    cmocka_unit_test(test_inode_free_in_bitmap),
	    cmocka_unit_test(test_damaged_checkpoint_slot),
	    cmocka_unit_test(test_blocks_claimed_twice),
	    cmocka_unit_test(test_refused_volume),
	    cmocka_unit_test(test_log_superblock_copy),
	    cmocka_unit_test(test_fast_superblock_copy),
	    cmocka_unit_test(test_log_superblock_both_copies),
	    cmocka_unit_test(test_log_records_lost),
	    cmocka_unit_test(test_log_torn_tail_is_clean),
	    cmocka_unit_test(test_repair_after_crash),
	    cmocka_unit_test(test_orphan_list_names_linked_file),
	    cmocka_unit_test(test_tiered_volume_is_clean),
	    cmocka_unit_test(test_tier_block_marked_free),
	    cmocka_unit_test(test_tier_leaked_bits),
	    cmocka_unit_test(test_tier_blocks_claimed_twice),
	    cmocka_unit_test(test_tier_extent_outside),
	    cmocka_unit_test(test_tier_header_refused),
	};
	return cmocka_run_group_tests_name("fsck", tests, NULL, NULL);
}
