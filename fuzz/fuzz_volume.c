/*
 * fuzz_volume.c - libFuzzer target: mount a damaged volume and use it.
 *
 * Once per process a small seed volume is made in /dev/shm (emul media,
 * 128 KiB log, 8 MiB fast tier: the smallest whose 128-block journal lets a
 * dozen operations stay undigested), populated through the API with files,
 * directories, symlinks, hard links, a fragmented file (multi-level extent
 * tree) and a large directory (multi-level directory tree), digested, then
 * given more operations that stay UNDIGESTED in the log; the part files are
 * copied while the volume is still mounted (a crash copy), so mounting the
 * copy replays the log.  The pristine images are kept in memory.
 *
 * Each input is a list of mutations applied to copies of those images,
 * aimed at the structures that mount and use parse: log superblock, epoch
 * slots and records; fast superblock, checkpoint slots, journal, bitmaps,
 * inode table, tree nodes; and the manifest text.  Checksums can be
 * recomputed after the mutations (per family, chosen by the input) so the
 * damage reaches the parsers behind them.  The images are written, mounted
 * (read-only on some inputs), the whole tree is walked (bounded: a cyclic
 * directory must not hang the walk), a few mutations are made (errors
 * ignored), and the volume is unmounted.  Any crash, sanitizer report,
 * hang or leak is a bug; errors (EUCLEAN, EIO, ENOENT, ...) are fine.
 *
 * Input layout (everything optional; missing bytes read as zero):
 *   byte 0   flags: 1 read_only, 2 media override "file" (else emul),
 *            4 keep the manifest's media (no override), 8 skip the
 *            API mutations after mount, 16 second walk after them
 *   byte 1   reseal mask: 1 log superblock (copied to its backup) + epoch
 *            slots, 2 log records, 4 fast superblock (copied to its
 *            backup) + checkpoint slots, 8 journal (header,
 *            embedded checkpoint, body)
 *   then     mutations: [region|op<<4] [off0 off1 off2] [arg] [data...]
 *            (see apply_mutation for the regions and ops)
 *
 * Environment: CAIRN_FUZZ_VERBOSE=1 prints the seed, each mutation and the
 * mount error; CAIRN_FUZZ_DUMP=dir saves the pristine images there;
 * CAIRN_FUZZ_MEDIA=file|emul mounts every input with that medium (e.g. to
 * look past a known bug of the direct-mapped read path).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "cairn.h"
#include "fs/format.h"
#include "log/log_format.h"
#include "util/checksum.h"

/* Tree node magics (private to fs/dir.c and fs/extent.c). */
#define FZ_DIR_NODE_MAGIC 0x52494443u
#define FZ_EXTENT_NODE_MAGIC 0x4e545843u

#define FZ_LOG_SIZE (128u * 1024)
#define FZ_FAST_SIZE (8u * 1024 * 1024)
#define FZ_MANIFEST_MAX 1024

/* Bounds of the walk. */
#define WALK_MAX_DEPTH 12
#define WALK_MAX_ENTRIES 2000
#define WALK_MAX_DIRENTS 1000 /* per directory */
#define WALK_MAX_FILE_BYTES (128u << 10) /* then probes spread over the size */
#define WALK_MAX_TOTAL_BYTES (1u << 20)
#define WALK_FULL_DIRENTS 24 /* entries per directory all looked at; then 1 in 8 */
#define MAX_LIST 512

enum part { P_LOG = 0, P_FAST = 1 };

static struct {
	char base[256];      /* /dev/shm/cairn-fuzz-PID */
	char run_dir[300];   /* the volume mounted per input */
	char run_part[2][320];
	char missing[320];   /* a part path that never exists */
	uint8_t *pristine[2];
	uint8_t *work[2];
	size_t size[2];
	char manifest[FZ_MANIFEST_MAX + 1];
	size_t manifest_len;
	uint8_t uuid_text[33];
	/* Pristine layout, to aim mutations. */
	struct fs_super sb;
	uint64_t log_head_off;
	uint64_t rec_off[MAX_LIST], rec_len[MAX_LIST];
	size_t nrec;
	uint64_t tree_blk[MAX_LIST];
	size_t ntree;
	uint64_t used_ino[MAX_LIST];
	size_t nused;
	bool verbose;
	enum cairn_media media; /* CAIRN_FUZZ_MEDIA: every mount uses it */
} G;

/* ---- helpers -------------------------------------------------------------- */

static void die(const char *what)
{
	fprintf(stderr, "fuzz_volume: setup: %s: %s (%s)\n", what, strerror(errno),
		cairn_last_error());
	abort();
}

static uint64_t ld64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

static void st64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

static int read_file(const char *path, uint8_t *buf, size_t len)
{
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	size_t at = 0;
	while (at < len) {
		ssize_t n = pread(fd, buf + at, len - at, (off_t)at);
		if (n <= 0) {
			close(fd);
			return -1;
		}
		at += (size_t)n;
	}
	close(fd);
	return 0;
}

static int write_file(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT, 0600);
	if (fd < 0)
		return -1;
	size_t at = 0;
	while (at < len) {
		ssize_t n = pwrite(fd, (const uint8_t *)buf + at, len - at, (off_t)at);
		if (n <= 0) {
			close(fd);
			return -1;
		}
		at += (size_t)n;
	}
	int rc = ftruncate(fd, (off_t)len);
	close(fd);
	return rc;
}

static void rm_tree(const char *path)
{
	DIR *d = opendir(path);
	if (d) {
		struct dirent *e;
		while ((e = readdir(d))) {
			if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
				continue;
			char sub[1024];
			snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
			struct stat st;
			if (!lstat(sub, &st) && S_ISDIR(st.st_mode))
				rm_tree(sub);
			else
				unlink(sub);
		}
		closedir(d);
	}
	rmdir(path);
}

static pid_t owner_pid;

static void cleanup(void)
{
	if (getpid() == owner_pid && G.base[0])
		rm_tree(G.base);
}

/* ---- the seed volume ------------------------------------------------------ */

static void put(cairn_fs *fs, const char *path, size_t len, off_t off, unsigned seed)
{
	uint8_t *buf = malloc(len ? len : 1);
	if (!buf)
		die("malloc");
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(i * 31 + seed);
	int fd = cairn_open(fs, path, O_CREAT | O_WRONLY, 0644);
	if (fd < 0 || cairn_pwrite(fs, fd, buf, len, off) != (ssize_t)len || cairn_close(fs, fd))
		die(path);
	free(buf);
}

#define OK(expr)                     \
	do {                         \
		if ((expr) != 0)     \
			die(#expr);  \
	} while (0)

static void populate_digested(cairn_fs *fs)
{
	OK(cairn_mkdir(fs, "/d1", 0755));
	OK(cairn_mkdir(fs, "/d1/d2", 0750));
	OK(cairn_mkdir(fs, "/d1/d2/d3", 0700));
	OK(cairn_mkdir(fs, "/many", 0755));
	put(fs, "/f_small", 100, 0, 1);
	put(fs, "/d1/f_big", 13000, 0, 2);
	put(fs, "/d1/d2/sparse", 300, 0, 3);
	put(fs, "/d1/d2/sparse", 300, 40000, 4);
	OK(cairn_symlink(fs, "../f_small", "/d1/ln"));
	OK(cairn_symlink(fs, "/d1/d2", "/abs"));
	OK(cairn_symlink(fs, "nowhere", "/dang"));
	OK(cairn_link(fs, "/f_small", "/d1/d2/hl"));
	/* Enough names for a directory tree of more than one level. */
	for (int i = 0; i < 150; i++) {
		char p[128];
		snprintf(p, sizeof(p), "/many/entry-with-a-rather-long-name-%03d", i);
		if (i % 3 == 0) {
			OK(cairn_mkdir(fs, p, 0755));
		} else {
			int fd = cairn_open(fs, p, O_CREAT | O_WRONLY, 0644);
			if (fd < 0 || cairn_close(fs, fd))
				die(p);
		}
	}
	/* Enough extents for an extent tree of more than one level. */
	int fd = cairn_open(fs, "/frag", O_CREAT | O_WRONLY, 0644);
	if (fd < 0)
		die("/frag");
	for (int i = 0; i < 160; i++) {
		char b[64];
		memset(b, 'a' + i % 26, sizeof(b));
		if (cairn_pwrite(fs, fd, b, sizeof(b), (off_t)i * 8192) != (ssize_t)sizeof(b))
			die("pwrite /frag");
	}
	OK(cairn_close(fs, fd));
	OK(cairn_chmod(fs, "/d1/f_big", 0600));
	struct timespec ts[2] = {{1000, 5}, {2000, 7}};
	OK(cairn_utimens(fs, "/d1/d2/sparse", ts));
	OK(cairn_digest(fs));
}

/*
 * Operations left undigested in the log, one or more of every record type,
 * touching few files: a small journal (64 blocks on a 2 MiB tier) makes the
 * writer digest early when many files have undigested data.  Returns an fd
 * kept open across the crash copy (an orphan).
 */
static int populate_undigested(cairn_fs *fs)
{
	OK(cairn_digest(fs));
	OK(cairn_mkdir(fs, "/new", 0755));
	OK(cairn_symlink(fs, "../f_small", "/new/s"));
	OK(cairn_link(fs, "/f_small", "/new/hl"));
	OK(cairn_rename(fs, "/d1/f_big", "/new/big", 0));
	OK(cairn_rename(fs, "/many/entry-with-a-rather-long-name-003", "/d1/moved", 0));
	OK(cairn_unlink(fs, "/many/entry-with-a-rather-long-name-005"));
	OK(cairn_rmdir(fs, "/d1/d2/d3"));
	OK(cairn_chmod(fs, "/new", 0700));
	OK(cairn_truncate(fs, "/d1/d2/sparse", 1000));
	put(fs, "/f_small", 20, 50, 6);
	int fd = cairn_open(fs, "/new/orphan", O_CREAT | O_RDWR, 0644);
	if (fd < 0 || cairn_write(fs, fd, "orphan data", 11) != 11)
		die("/new/orphan");
	OK(cairn_unlink(fs, "/new/orphan"));
	OK(cairn_sync(fs));
	return fd;
}

/* Aims the mutations: records from the log head, tree nodes, used inodes. */
static void scan_pristine(void)
{
	const uint8_t *f = G.pristine[P_FAST], *l = G.pristine[P_LOG];
	memcpy(&G.sb, f, sizeof(G.sb));
	struct fs_checkpoint a, b;
	memcpy(&a, f + FS_BLOCK_SIZE, sizeof(a));
	memcpy(&b, f + 2 * FS_BLOCK_SIZE, sizeof(b));
	bool oka = a.magic == FS_CKPT_MAGIC, okb = b.magic == FS_CKPT_MAGIC;
	G.log_head_off = (okb && (!oka || b.seq > a.seq)) ? b.log_head_off : a.log_head_off;
	uint64_t off = G.log_head_off;
	while (G.nrec < MAX_LIST && off + 64 <= G.size[P_LOG]) {
		struct log_rec_hdr h;
		memcpy(&h, l + off, sizeof(h));
		if (h.magic != LOG_REC_MAGIC || h.len < 64 || h.len % 64 || h.len > G.size[P_LOG] - off)
			break;
		G.rec_off[G.nrec] = off;
		G.rec_len[G.nrec++] = h.len;
		off += h.len;
		if (h.type == LOG_REC_PAD || off + 64 > G.size[P_LOG])
			off = LOG_RING_START;
		if (off == G.log_head_off)
			break;
	}
	for (uint64_t blk = G.sb.data_start; blk < G.sb.total_blocks && G.ntree < MAX_LIST; blk++) {
		uint32_t m;
		memcpy(&m, f + blk * FS_BLOCK_SIZE, 4);
		if (m == FZ_DIR_NODE_MAGIC || m == FZ_EXTENT_NODE_MAGIC)
			G.tree_blk[G.ntree++] = blk;
	}
	for (uint64_t ino = 1; ino < G.sb.inode_count && G.nused < MAX_LIST; ino++) {
		const uint8_t *i = f + G.sb.itable_start * FS_BLOCK_SIZE + ino * FS_INODE_SIZE;
		uint32_t mode;
		memcpy(&mode, i, 4);
		if (mode)
			G.used_ino[G.nused++] = ino;
	}
	if (G.verbose)
		fprintf(stderr,
			"fuzz_volume: seed: log head %llu, %zu records, %zu tree nodes, %zu inodes\n",
			(unsigned long long)G.log_head_off, G.nrec, G.ntree, G.nused);
}

static void make_manifest(void)
{
	G.manifest_len = (size_t)snprintf(G.manifest, sizeof(G.manifest),
					  "# cairn volume manifest: do not edit while mounted\n"
					  "format 1\nuuid %s\nmedia emul\n"
					  "part log %u %s\npart fast %u %s\n",
					  (const char *)G.uuid_text, FZ_LOG_SIZE, G.run_part[P_LOG],
					  FZ_FAST_SIZE, G.run_part[P_FAST]);
}

static void read_uuid(const char *seed_dir)
{
	char path[512], line[4300];
	snprintf(path, sizeof(path), "%s/cairn.volume", seed_dir);
	FILE *f = fopen(path, "r");
	if (!f)
		die(path);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "uuid %32s", (char *)G.uuid_text) == 1)
			break;
	fclose(f);
	if (strlen((const char *)G.uuid_text) != 32)
		die("uuid in the seed manifest");
}

static void setup(void)
{
	owner_pid = getpid();
	G.verbose = getenv("CAIRN_FUZZ_VERBOSE") != NULL;
	const char *media = getenv("CAIRN_FUZZ_MEDIA");
	if (media && !strcmp(media, "file"))
		G.media = CAIRN_MEDIA_FILE;
	else if (media && !strcmp(media, "emul"))
		G.media = CAIRN_MEDIA_EMUL;
	snprintf(G.base, sizeof(G.base), "/dev/shm/cairn-fuzz-%d", (int)getpid());
	rm_tree(G.base);
	if (mkdir(G.base, 0700))
		die(G.base);
	atexit(cleanup);
	char seed_dir[300], seed_part[2][320];
	snprintf(seed_dir, sizeof(seed_dir), "%s/seed", G.base);
	snprintf(seed_part[P_LOG], sizeof(seed_part[0]), "%s/seed-log", G.base);
	snprintf(seed_part[P_FAST], sizeof(seed_part[0]), "%s/seed-fast", G.base);
	snprintf(G.run_dir, sizeof(G.run_dir), "%s/run", G.base);
	snprintf(G.run_part[P_LOG], sizeof(G.run_part[0]), "%s/log", G.run_dir);
	snprintf(G.run_part[P_FAST], sizeof(G.run_part[0]), "%s/fast", G.run_dir);
	snprintf(G.missing, sizeof(G.missing), "%s/missing", G.run_dir);
	if (mkdir(G.run_dir, 0700))
		die(G.run_dir);
	G.size[P_LOG] = FZ_LOG_SIZE;
	G.size[P_FAST] = FZ_FAST_SIZE;

	struct cairn_mkfs_opts mo = {
		.log_size = FZ_LOG_SIZE,
		.fast_size = FZ_FAST_SIZE,
		.media = CAIRN_MEDIA_EMUL,
		.log_path = seed_part[P_LOG],
		.fast_path = seed_part[P_FAST],
	};
	if (cairn_mkfs(seed_dir, &mo))
		die("cairn_mkfs");
	struct cairn_mount_opts opts = {.no_digest_thread = 1, .digest_threshold = 95};
	cairn_fs *fs = cairn_mount(seed_dir, &opts);
	if (!fs)
		die("cairn_mount (seed)");
	populate_digested(fs);
	int orphan = populate_undigested(fs);
	/* The crash copy: the parts as they are while mounted. */
	for (int p = 0; p < 2; p++) {
		G.pristine[p] = malloc(G.size[p]);
		G.work[p] = malloc(G.size[p]);
		if (!G.pristine[p] || !G.work[p] || read_file(seed_part[p], G.pristine[p], G.size[p]))
			die(seed_part[p]);
	}
	cairn_close(fs, orphan);
	if (cairn_unmount(fs))
		die("cairn_unmount (seed)");
	read_uuid(seed_dir);
	rm_tree(seed_dir);
	unlink(seed_part[P_LOG]);
	unlink(seed_part[P_FAST]);
	make_manifest();
	scan_pristine();
	/* CAIRN_FUZZ_DUMP=dir: the pristine images, for looking at a seed. */
	const char *dump = getenv("CAIRN_FUZZ_DUMP");
	if (dump) {
		char p[4200];
		snprintf(p, sizeof(p), "%s/log", dump);
		write_file(p, G.pristine[P_LOG], G.size[P_LOG]);
		snprintf(p, sizeof(p), "%s/fast", dump);
		write_file(p, G.pristine[P_FAST], G.size[P_FAST]);
	}
}

/* ---- mutations ------------------------------------------------------------ */

struct input {
	const uint8_t *p;
	size_t n, at;
};

static uint8_t in_u8(struct input *in)
{
	return in->at < in->n ? in->p[in->at++] : 0;
}

static bool in_more(const struct input *in)
{
	return in->at < in->n;
}

/*
 * Maps (region, raw 24-bit offset) to a part and a byte offset in it.
 * Returns false when the region is empty in this seed.
 */
static bool locate(unsigned region, uint32_t raw, int *part, uint64_t *off)
{
	const struct fs_super *sb = &G.sb;
	const uint64_t B = FS_BLOCK_SIZE;
	uint32_t x;
	switch (region) {
	case 0: /* log superblock: fields, then the checksum (bit 23: the backup) */
		*part = P_LOG;
		x = raw % 56;
		*off = x < 48 ? x : LOG_BLOCK - 8 + (x - 48);
		if (raw & 0x800000)
			*off += LOG_BACKUP_OFF(G.size[P_LOG]);
		return true;
	case 1: /* log epoch slots A and B */
		*part = P_LOG;
		x = raw % 128;
		*off = x < 64 ? LOG_BLOCK + x : 2 * LOG_BLOCK + (x - 64);
		return true;
	case 2: /* log record headers and the start of their payloads */
		if (!G.nrec)
			return false;
		*part = P_LOG;
		*off = G.rec_off[(raw >> 8) % G.nrec] + (raw & 0x7f);
		return true;
	case 3: /* a whole log record */
		if (!G.nrec)
			return false;
		*part = P_LOG;
		x = (raw >> 12) % (uint32_t)G.nrec;
		*off = G.rec_off[x] + (raw & 0xfff) % G.rec_len[x];
		return true;
	case 4: /* fast superblock: fields, then the checksum (bit 23: the backup) */
		*part = P_FAST;
		x = raw % 136;
		*off = x < 128 ? x : B - 8 + (x - 128);
		if (raw & 0x800000)
			*off += FS_BACKUP_BLOCK(G.size[P_FAST]) * B;
		return true;
	case 5: /* checkpoint slots A and B */
		*part = P_FAST;
		x = raw % 256;
		*off = x < 128 ? B + x : 2 * B + (x - 128);
		return true;
	case 6: /* journal header, descriptor block, first image */
		*part = P_FAST;
		x = raw % (160 + 2 * B);
		*off = sb->journal_start * B + (x < 160 ? x : B + (x - 160));
		return true;
	case 7: /* inode bitmap */
		*part = P_FAST;
		*off = sb->ibitmap_start * B + raw % (sb->ibitmap_blocks * B);
		return true;
	case 8: /* inode table, mostly inodes in use */
		*part = P_FAST;
		if ((raw & 0x800000) && G.nused)
			x = (uint32_t)G.used_ino[(raw >> 7) % G.nused];
		else
			x = (uint32_t)((raw >> 7) % sb->inode_count);
		*off = sb->itable_start * B + x * FS_INODE_SIZE + (raw & 0x7f);
		return true;
	case 9: /* block bitmap */
		*part = P_FAST;
		*off = sb->bbitmap_start * B + raw % (sb->bbitmap_blocks * B);
		return true;
	case 10: /* tree nodes: mostly headers and the first slots */
	case 11:
		if (!G.ntree)
			return false;
		*part = P_FAST;
		x = (raw >> 12) % (uint32_t)G.ntree;
		*off = G.tree_blk[x] * B + ((raw & 0x800000) ? (raw & 0x7f) : (raw & 0xfff));
		return true;
	case 12: /* the data region */
		*part = P_FAST;
		*off = sb->data_start * B + raw % ((sb->total_blocks - sb->data_start) * B);
		return true;
	case 13: /* anywhere in the fast tier */
		*part = P_FAST;
		*off = raw % G.size[P_FAST];
		return true;
	case 14: /* anywhere in the log */
		*part = P_LOG;
		*off = raw % G.size[P_LOG];
		return true;
	}
	return false;
}

static uint64_t interesting(unsigned k)
{
	const struct fs_super *sb = &G.sb;
	static const uint64_t fixed[] = {
		0, 1, 2, 3, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xffff, 0x7fffffff,
		0x80000000u, 0xffffffffu, UINT64_MAX, INT64_MAX, (uint64_t)INT64_MAX + 1,
		63, 64, 65, 4095, 4096, 4097, LOG_RING_START, LOG_RING_START + 64,
		FZ_LOG_SIZE, FZ_LOG_SIZE - 64, FZ_FAST_SIZE, S_IFDIR | 0755, S_IFREG | 0644,
		S_IFLNK | 0777, S_IFIFO | 0644, S_IFCHR | 0644, 0xfff0,
	};
	const size_t nfixed = sizeof(fixed) / sizeof(fixed[0]);
	if (k < nfixed)
		return fixed[k];
	k -= (unsigned)nfixed;
	switch (k % 12) {
	case 0:
		return sb->data_start;
	case 1:
		return sb->total_blocks - 1;
	case 2:
		return sb->total_blocks;
	case 3:
		return sb->inode_count - 1;
	case 4:
		return sb->inode_count;
	case 5:
		return sb->itable_start;
	case 6:
		return sb->journal_start;
	case 7:
		return FS_ROOT_INO;
	case 8:
		return G.ntree ? G.tree_blk[(k / 12) % G.ntree] : 0;
	case 9:
		return G.nused ? G.used_ino[(k / 12) % G.nused] : 0;
	case 10:
		return G.nrec ? G.rec_off[(k / 12) % G.nrec] : 0;
	default:
		return G.log_head_off;
	}
}

static void apply_mutation(struct input *in, uint8_t *manifest, size_t *mlen)
{
	uint8_t sel = in_u8(in);
	unsigned region = sel & 15, op = sel >> 4;
	uint32_t raw = in_u8(in) | (uint32_t)in_u8(in) << 8 | (uint32_t)in_u8(in) << 16;
	uint8_t arg = in_u8(in);

	if (region == 15) { /* the manifest text: overwrite, insert, delete */
		if (G.verbose)
			fprintf(stderr, "fuzz_volume: mutation: manifest op %u at %u\n", op, raw);
		size_t at = *mlen ? raw % (*mlen + 1) : 0;
		size_t n = (arg & 31) + 1;
		if (op < 6) {
			for (size_t i = 0; i < n && in_more(in); i++) {
				uint8_t c = in_u8(in);
				if (at + i < FZ_MANIFEST_MAX) {
					manifest[at + i] = c;
					if (at + i >= *mlen)
						*mlen = at + i + 1;
				}
			}
		} else if (op < 11) {
			if (n > FZ_MANIFEST_MAX - *mlen)
				n = FZ_MANIFEST_MAX - *mlen;
			memmove(manifest + at + n, manifest + at, *mlen - at);
			for (size_t i = 0; i < n; i++)
				manifest[at + i] = in_u8(in);
			*mlen += n;
		} else {
			if (n > *mlen - at)
				n = *mlen - at;
			memmove(manifest + at, manifest + at + n, *mlen - at - n);
			*mlen -= n;
		}
		return;
	}

	int part;
	uint64_t off;
	if (!locate(region, raw, &part, &off))
		return;
	uint8_t *img = G.work[part];
	size_t size = G.size[part];
	if (off >= size)
		return;
	if (G.verbose)
		fprintf(stderr, "fuzz_volume: mutation: region %u op %u arg %u: %s part offset %llu\n",
			region, op, arg, part == P_LOG ? "log" : "fast", (unsigned long long)off);
	size_t room = size - off;
	switch (op) {
	case 0: case 1: case 2: case 3: case 4: case 5: { /* overwrite */
		size_t n = (arg & 15) + 1;
		for (size_t i = 0; i < n && i < room && in_more(in); i++)
			img[off + i] = in_u8(in);
		break;
	}
	case 6: case 7: { /* an interesting value, 1 2 4 or 8 bytes */
		size_t w = (size_t)1 << (arg & 3);
		uint64_t v = interesting((unsigned)(arg >> 2) | (unsigned)(op & 1) << 6);
		if (w <= room)
			memcpy(img + off, &v, w);
		break;
	}
	case 8: { /* add a small signed delta to a u8/u16/u32/u64 */
		size_t w = (size_t)1 << (arg & 3);
		int64_t d = (int8_t)in_u8(in);
		if (w <= room) {
			uint64_t v = 0;
			memcpy(&v, img + off, w);
			v += (uint64_t)d;
			memcpy(img + off, &v, w);
		}
		break;
	}
	case 9: /* flip one bit */
		img[off] ^= (uint8_t)(1u << (arg & 7));
		break;
	case 10: { /* zero a range */
		size_t n = ((size_t)arg + 1) * 8;
		memset(img + off, 0, n < room ? n : room);
		break;
	}
	case 11: { /* copy bytes from elsewhere in the same region (dup nodes, records) */
		uint32_t raw2 = in_u8(in) | (uint32_t)in_u8(in) << 8 | (uint32_t)in_u8(in) << 16;
		int part2;
		uint64_t off2;
		size_t n = arg & 0x80 ? FS_BLOCK_SIZE : ((size_t)arg + 1) * 8;
		if (!locate(region, raw2, &part2, &off2) || part2 != part || off2 >= size)
			break;
		if (arg & 0x80) { /* whole blocks */
			off &= ~(uint64_t)(FS_BLOCK_SIZE - 1);
			off2 &= ~(uint64_t)(FS_BLOCK_SIZE - 1);
			room = size - off;
		}
		if (n > room)
			n = room;
		if (n > size - off2)
			n = size - off2;
		memmove(img + off, img + off2, n);
		break;
	}
	default: { /* a u64 pointer-ish value: a tree block, an inode, a log offset */
		uint64_t v = interesting(34 + arg);
		if (room >= 8)
			st64(img + off, v);
		break;
	}
	}
}

/* ---- resealing checksums -------------------------------------------------- */

static void seal(uint8_t *p, size_t size)
{
	st64(p + size - 8, checksum_struct(p, size));
}

/* A resealed superblock is copied to the backup as well, so that what the
 * mutations did reaches the parser instead of the backup taking over. */
static void reseal_log_meta(uint8_t *l)
{
	seal(l, LOG_BLOCK);
	memcpy(l + LOG_BACKUP_OFF(G.size[P_LOG]), l, LOG_BLOCK);
	seal(l + LOG_BLOCK, sizeof(struct log_epoch));
	seal(l + 2 * LOG_BLOCK, sizeof(struct log_epoch));
}

static void reseal_fast_meta(uint8_t *f)
{
	seal(f, FS_BLOCK_SIZE);
	memcpy(f + FS_BACKUP_BLOCK(G.size[P_FAST]) * FS_BLOCK_SIZE, f, FS_BLOCK_SIZE);
	seal(f + FS_BLOCK_SIZE, sizeof(struct fs_checkpoint));
	seal(f + 2 * FS_BLOCK_SIZE, sizeof(struct fs_checkpoint));
}

static void reseal_journal(uint8_t *f)
{
	const size_t size = G.size[P_FAST];
	const uint64_t B = FS_BLOCK_SIZE;
	uint64_t js = ld64(f + offsetof(struct fs_super, journal_start));
	uint64_t jb = ld64(f + offsetof(struct fs_super, journal_blocks));
	if (js == 0 || jb == 0 || js >= size / B || jb > size / B - js)
		return;
	uint8_t *h = f + js * B;
	seal(h + offsetof(struct fs_journal_header, ckpt), sizeof(struct fs_checkpoint));
	uint64_t n = ld64(h + offsetof(struct fs_journal_header, nblocks));
	uint64_t cap = (jb - 1) * FS_JOURNAL_DESC_PER_BLOCK / (FS_JOURNAL_DESC_PER_BLOCK + 1);
	uint64_t nd = (n + FS_JOURNAL_DESC_PER_BLOCK - 1) / FS_JOURNAL_DESC_PER_BLOCK;
	if (n <= cap && js + 1 + nd + n <= size / B) {
		XXH3_state_t st;
		XXH3_64bits_reset(&st);
		XXH3_64bits_update(&st, h + B, nd * B);
		XXH3_64bits_update(&st, h + B + nd * B, n * B);
		st64(h + offsetof(struct fs_journal_header, body_checksum), XXH3_64bits_digest(&st));
	}
	seal(h, sizeof(struct fs_journal_header));
}

/* Reseals the records from the current checkpoint's log head, walking the
 * ring as recovery does (but not stopping at a bad seq or epoch). */
static void reseal_records(uint8_t *l, const uint8_t *f)
{
	const uint64_t ring_end = LOG_BACKUP_OFF(G.size[P_LOG]);
	struct fs_checkpoint a, b;
	memcpy(&a, f + FS_BLOCK_SIZE, sizeof(a));
	memcpy(&b, f + 2 * FS_BLOCK_SIZE, sizeof(b));
	bool oka = a.magic == FS_CKPT_MAGIC, okb = b.magic == FS_CKPT_MAGIC;
	uint64_t head = (okb && (!oka || b.seq > a.seq)) ? b.log_head_off : a.log_head_off;
	if (head < LOG_RING_START || head >= ring_end || head % LOG_ALIGN)
		return;
	uint64_t off = head;
	for (int i = 0; i < 4096 && off + sizeof(struct log_rec_hdr) <= ring_end; i++) {
		struct log_rec_hdr h;
		memcpy(&h, l + off, sizeof(h));
		if (h.magic != LOG_REC_MAGIC || h.len < sizeof(h) || h.len % LOG_ALIGN ||
		    h.len > ring_end - off || h.payload_len > h.len - sizeof(h))
			break;
		uint64_t seed = checksum64(&h, offsetof(struct log_rec_hdr, checksum));
		h.checksum = checksum64_seeded(l + off + sizeof(h), h.payload_len, seed);
		memcpy(l + off, &h, sizeof(h));
		off += h.len;
		if (h.type == LOG_REC_PAD || off + sizeof(h) > ring_end)
			off = LOG_RING_START;
		if (off == head)
			break;
	}
}

/* ---- the manifest ---------------------------------------------------------- */

/*
 * The mutated manifest must never name a file outside the run directory:
 * every line that the engine's parser would take as a part line has its
 * path replaced by one of ours unless it already is one.  The parse is the
 * engine's own (same sscanf formats, same line splitting: the text is short
 * enough that fgets never splits a line, and a NUL ends what it sees).
 */
static size_t sanitize_manifest(const uint8_t *in, size_t len, char *out, size_t cap)
{
	const char *allowed[3] = {G.run_part[P_LOG], G.run_part[P_FAST], G.missing};
	size_t o = 0, i = 0;
	while (i < len) {
		size_t e = i;
		while (e < len && in[e] != '\n')
			e++;
		size_t ll = e - i + (e < len); /* with its newline */
		char line[FZ_MANIFEST_MAX + 2];
		memcpy(line, in + i, ll);
		line[ll] = 0;
		char key[32], b[64], c[4096];
		unsigned long long size;
		bool keep = true;
		if (line[0] != '#' && sscanf(line, "%31s", key) == 1 && !strcmp(key, "part") &&
		    sscanf(line, "%*s %63s %llu %4095[^\n]", b, &size, c) == 3) {
			keep = false;
			for (int k = 0; k < 3; k++)
				if (!strcmp(c, allowed[k]))
					keep = true;
			if (!keep) {
				/* Never a truncated path: stop before a line that does not fit. */
				int n = snprintf(out + o, cap - o, "part %s %llu %s\n", b, size,
						 allowed[(unsigned char)c[0] % 3]);
				if (n < 0 || (size_t)n >= cap - o)
					break;
				o += (size_t)n;
			}
		}
		if (keep) {
			if (ll >= cap - o)
				break;
			memcpy(out + o, in + i, ll);
			o += ll;
		}
		i += ll;
	}
	return o;
}

/* ---- using the mounted volume --------------------------------------------- */

struct walk {
	cairn_fs *fs;
	unsigned entries;
	size_t bytes;
	char files[4][1024];
	int nfiles;
	char dirs[4][1024];
	int ndirs;
	uint8_t *buf;
};

#define WALK_BUF (64 * 1024)

static void read_file_api(struct walk *w, const char *path)
{
	int fd = cairn_open(w->fs, path, O_RDONLY);
	if (fd < 0)
		return;
	struct stat st;
	cairn_fstat(w->fs, fd, &st);
	size_t got = 0;
	while (got < WALK_MAX_FILE_BYTES && w->bytes < WALK_MAX_TOTAL_BYTES) {
		ssize_t n = cairn_read(w->fs, fd, w->buf, WALK_BUF);
		if (n <= 0)
			break;
		got += (size_t)n;
		w->bytes += (size_t)n;
	}
	/* Probes over the whole size (deep extent-tree lookups), the end,
	 * wherever the inode says it is, and far beyond. */
	if (st.st_size > 0) {
		for (int i = 1; i <= 16; i++)
			cairn_pread(w->fs, fd, w->buf, 512, (off_t)((uint64_t)st.st_size / 16 * i - 1));
		cairn_pread(w->fs, fd, w->buf, 4096, st.st_size - 1);
	}
	cairn_pread(w->fs, fd, w->buf, 4096, (off_t)1 << 40);
	cairn_lseek(w->fs, fd, 0, SEEK_END);
	cairn_close(w->fs, fd);
}

static void walk_dir(struct walk *w, const char *path, int depth)
{
	if (depth > WALK_MAX_DEPTH || w->entries >= WALK_MAX_ENTRIES)
		return;
	cairn_dir *d = cairn_opendir(w->fs, path);
	if (!d)
		return;
	/* Names first, then recurse: never two directories open per level. */
	char(*names)[256] = NULL;
	unsigned n = 0, cap = 0;
	struct cairn_dirent *e;
	while (n < WALK_MAX_DIRENTS && (e = cairn_readdir(d))) {
		if (n == cap) {
			cap = cap ? 2 * cap : 32;
			void *nn = realloc(names, (size_t)cap * 256);
			if (!nn)
				break;
			names = nn;
		}
		memcpy(names[n], e->d_name, 255);
		names[n][255] = 0;
		n++;
	}
	cairn_closedir(d);
	for (unsigned i = 0; i < n && w->entries < WALK_MAX_ENTRIES; i++) {
		if (!strcmp(names[i], ".") || !strcmp(names[i], ".."))
			continue;
		if (i >= WALK_FULL_DIRENTS && i % 8 && i != n - 1)
			continue;
		w->entries++;
		char sub[1024];
		int len = snprintf(sub, sizeof(sub), "%s/%s", strcmp(path, "/") ? path : "", names[i]);
		if (len < 0 || (size_t)len >= sizeof(sub))
			continue;
		struct stat st;
		if (cairn_lstat(w->fs, sub, &st))
			continue;
		if (S_ISDIR(st.st_mode)) {
			if (w->ndirs < 4)
				snprintf(w->dirs[w->ndirs++], sizeof(w->dirs[0]), "%s", sub);
			walk_dir(w, sub, depth + 1);
		} else if (S_ISREG(st.st_mode)) {
			if (w->nfiles < 4)
				snprintf(w->files[w->nfiles++], sizeof(w->files[0]), "%s", sub);
			read_file_api(w, sub);
		} else if (S_ISLNK(st.st_mode)) {
			char t[4096];
			cairn_readlink(w->fs, sub, t, sizeof(t));
			cairn_stat(w->fs, sub, &st); /* follows: loops, dangling */
		}
	}
	free(names);
}

static void walk_all(struct walk *w)
{
	struct stat st;
	struct statvfs sv;
	cairn_lstat(w->fs, "/", &st);
	cairn_statvfs(w->fs, "/", &sv);
	walk_dir(w, "/", 0);
}

static void use_volume(cairn_fs *fs, struct walk *w, bool read_only)
{
	static uint8_t data[9000];
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 7);
	int fd = cairn_open(fs, "/fz_new", O_CREAT | O_RDWR, 0644);
	if (fd >= 0) {
		cairn_write(fs, fd, data, sizeof(data));
		cairn_pwrite(fs, fd, data, 100, 40000);
		cairn_ftruncate(fs, fd, 5000);
		cairn_fsync(fs, fd);
		cairn_close(fs, fd);
	}
	cairn_mkdir(fs, "/fz_dir", 0755);
	cairn_rename(fs, "/fz_new", "/fz_dir/x", 0);
	cairn_link(fs, "/fz_dir/x", "/fz_dir/y");
	cairn_symlink(fs, "x", "/fz_dir/s");
	for (int i = 0; i < w->nfiles; i++) {
		fd = cairn_open(fs, w->files[i], O_RDWR);
		if (fd >= 0) {
			struct stat st;
			if (!cairn_fstat(fs, fd, &st)) {
				cairn_pwrite(fs, fd, data, 300, 10);
				cairn_ftruncate(fs, fd, st.st_size / 2);
			}
			cairn_close(fs, fd);
		}
		if (i == 0)
			cairn_unlink(fs, w->files[i]);
		else if (i == 1)
			cairn_rename(fs, w->files[i], "/fz_dir/y", 0);
		else
			cairn_chmod(fs, w->files[i], 0600);
	}
	for (int i = 0; i < w->ndirs; i++) {
		char into[1100];
		snprintf(into, sizeof(into), "%s/fz_cycle", w->dirs[i]);
		cairn_rename(fs, w->dirs[i], into, 0); /* into itself: EINVAL */
		cairn_mkdir(fs, into, 0755);
		if (i == 0) {
			cairn_rename(fs, w->dirs[i], "/fz_moved", 0);
			cairn_rmdir(fs, "/fz_moved");
		} else {
			cairn_rmdir(fs, w->dirs[i]);
		}
	}
	struct timespec ts[2] = {{1, 2}, {3, 4}};
	cairn_utimens(fs, "/fz_dir/x", ts);
	cairn_unlink(fs, "/fz_dir/x");
	if (!read_only)
		cairn_digest(fs);
	cairn_sync(fs);
}

/* ---- the target ------------------------------------------------------------ */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	setup();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in = {data, size, 0};
	uint8_t flags = in_u8(&in), reseal = in_u8(&in);
	for (int p = 0; p < 2; p++)
		memcpy(G.work[p], G.pristine[p], G.size[p]);
	static uint8_t mtext[FZ_MANIFEST_MAX];
	size_t mlen = G.manifest_len;
	memcpy(mtext, G.manifest, mlen);
	for (int i = 0; i < 256 && in_more(&in); i++)
		apply_mutation(&in, mtext, &mlen);
	if (reseal & 1)
		reseal_log_meta(G.work[P_LOG]);
	if (reseal & 4)
		reseal_fast_meta(G.work[P_FAST]);
	if (reseal & 8)
		reseal_journal(G.work[P_FAST]);
	if (reseal & 2)
		reseal_records(G.work[P_LOG], G.work[P_FAST]);

	static char manifest[64 * 1024];
	char mpath[400];
	size_t n = sanitize_manifest(mtext, mlen, manifest, sizeof(manifest));
	snprintf(mpath, sizeof(mpath), "%s/cairn.volume", G.run_dir);
	if (write_file(mpath, manifest, n) || write_file(G.run_part[P_LOG], G.work[P_LOG], G.size[P_LOG]) ||
	    write_file(G.run_part[P_FAST], G.work[P_FAST], G.size[P_FAST]))
		die("writing the images");

	struct cairn_mount_opts opts = {
		.no_digest_thread = 1,
		.digest_threshold = 95,
		.read_only = flags & 1,
		.media = (flags & 4) ? CAIRN_MEDIA_DEFAULT
				     : (flags & 2) ? CAIRN_MEDIA_FILE : CAIRN_MEDIA_EMUL,
	};
	if (G.media)
		opts.media = G.media;
	cairn_fs *fs = cairn_mount(G.run_dir, &opts);
	if (!fs) {
		if (G.verbose)
			fprintf(stderr, "fuzz_volume: mount: %s: %s\n", strerror(errno),
				cairn_last_error());
		return 0;
	}
	struct walk w = {.fs = fs, .buf = malloc(WALK_BUF)};
	if (w.buf) {
		walk_all(&w);
		if (!(flags & 8))
			use_volume(fs, &w, flags & 1);
		if (flags & 16) {
			struct walk w2 = {.fs = fs, .buf = w.buf};
			walk_all(&w2);
		}
	}
	free(w.buf);
	int rc = cairn_unmount(fs);
	if (G.verbose)
		fprintf(stderr, "fuzz_volume: mounted, %u entries, %zu bytes read, unmount %d\n",
			w.entries, w.bytes, rc);
	return 0;
}
