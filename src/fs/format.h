/*
 * format.h - the on-media structures of the shared area (the fast tier).
 *
 * Owns: the byte layout of the fast tier; docs/FORMAT.md describes it in
 * prose and must change with this file.  All integers are little-endian
 * (cairn runs on little-endian machines only; mkfs and mount check).
 *
 * Layout, in 4096-byte blocks:
 *   0                 superblock (struct fs_super)
 *   1, 2              checkpoint slots A and B (struct fs_checkpoint)
 *   journal_start     redo journal: header block, descriptor blocks, images
 *   ibitmap_start     inode allocation bitmap (bit i = inode i in use)
 *   itable_start      inode table (struct fs_inode, 32 per block)
 *   bbitmap_start     block allocation bitmap of the whole tier
 *   tiers[k].bitmap_start   block allocation bitmap of capacity tier k+1
 *   sums_start        data checksums of the fast tier, one
 *                     uint32_t per block of the tier
 *   tiers[k].sums_start     data checksums of capacity tier k+1
 *   data_start ...    extent-tree nodes, directory-tree nodes, file data
 *   total_blocks      the last block of the part: a copy of the superblock
 *                     (FS_BACKUP_BLOCK), outside the tier's blocks
 *
 * Capacity tiers (parts of their own, numbered 1..tier_count fastest
 * first) hold file data only: block 0 is a struct fs_tier_header, blocks
 * 1.. are data.  All metadata, their bitmaps included, stays on the fast
 * tier, so one journal makes every checkpoint atomic across all tiers.
 * An extent's physical block carries its tier in the top 16 bits
 * (FS_PBLK_*): tier 0 is the fast tier.
 */
#ifndef CAIRN_FS_FORMAT_H
#define CAIRN_FS_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#define FS_BLOCK_SIZE 4096u
#define FS_BLOCK_SHIFT 12

#define FS_SUPER_MAGIC 0x5346534e52494143ull /* "CAIRNSFS" */
#define FS_CKPT_MAGIC 0x54504b434e524143ull  /* "CARNCKPT" */
#define FS_JOURNAL_MAGIC 0x4c4e524a4e524143ull /* "CARNJRNL" */
#define FS_FORMAT_VERSION 3u /* 2: backup superblock; 3: data checksums */
#define FS_TIER_MAGIC 0x524549544e524143ull /* "CARNTIER" */

/* The backup superblock: the last whole block of a fast part of `size`
 * bytes.  It depends on the size alone, so it is found when block 0 is
 * damaged; the tier's blocks (total_blocks) end before it. */
#define FS_BACKUP_BLOCK(size) ((uint64_t)(size) / FS_BLOCK_SIZE - 1)

/* Physical block numbers: tier in bits 48..63, block within it below. */
#define FS_MAX_TIERS 6u /* capacity tiers, numbered 1..FS_MAX_TIERS */
#define FS_PBLK_SHIFT 48
#define FS_PBLK_MASK ((1ull << FS_PBLK_SHIFT) - 1)
#define FS_PBLK(tier, blk) (((uint64_t)(tier) << FS_PBLK_SHIFT) | (blk))
#define FS_PBLK_TIER(p) ((unsigned)((p) >> FS_PBLK_SHIFT))
#define FS_PBLK_BLK(p) ((p) & FS_PBLK_MASK)

#define FS_ROOT_INO 1u  /* the root directory */
#define FS_INODE_SIZE 128u
#define FS_INODES_PER_BLOCK (FS_BLOCK_SIZE / FS_INODE_SIZE)

/* One capacity tier as the superblock describes it (64 bytes). */
struct fs_tier_desc {
	char name[16];          /* "ssd", "hdd", ...: NUL-padded */
	uint64_t total_blocks;  /* size of the tier part in blocks, header included */
	uint64_t bitmap_start;  /* its allocation bitmap, on the fast tier */
	uint64_t bitmap_blocks;
	uint32_t unit_blocks;   /* allocation alignment on the medium, in blocks */
	uint32_t flags;         /* FS_TIER_ADDED, FS_TIER_RETIRED */
	uint64_t sums_start;    /* its data checksums, on the fast tier */
	uint64_t sums_blocks;
};

/* A tier added to a running volume (cairn tier add): its bitmap and its
 * checksum table were allocated in the fast tier's data area, where the
 * descriptor says, instead of the places mkfs lays out. */
#define FS_TIER_ADDED 1u
/* A tier removed (cairn tier remove) after its data moved to the others:
 * nothing refers to it, its part is no longer the volume's, and its number
 * is never used again (extents name tiers by number).  A retired tier
 * mkfs laid out keeps its fields, which the layout of the others follows
 * from; an added one's are zero (its blocks were freed). */
#define FS_TIER_RETIRED 2u
#define FS_TIER_FLAGS (FS_TIER_ADDED | FS_TIER_RETIRED)

/* Block 0, and a copy in the last block.  Written by mkfs, and again
 * through the journal, in the checkpoint that commits the change, when a
 * capacity tier is added or retired, or a tier grows. */
struct fs_super {
	uint64_t magic;         /* FS_SUPER_MAGIC */
	uint32_t version;       /* FS_FORMAT_VERSION */
	uint32_t block_size;    /* FS_BLOCK_SIZE */
	uint8_t uuid[16];       /* the volume's UUID, same in every part */
	uint64_t total_blocks;  /* blocks of the tier: the part's, less the backup */
	uint64_t inode_count;   /* inodes in the table, including 0 (unused) */
	uint64_t journal_start, journal_blocks;
	uint64_t ibitmap_start, ibitmap_blocks;
	uint64_t itable_start, itable_blocks;
	uint64_t bbitmap_start, bbitmap_blocks;
	uint64_t data_start;
	uint64_t created_ns;    /* mkfs time */
	uint32_t tier_count;    /* capacity tiers, 0..FS_MAX_TIERS */
	uint32_t reserved0;
	struct fs_tier_desc tiers[FS_MAX_TIERS]; /* tiers[k] is tier k + 1 */
	uint64_t sums_start, sums_blocks; /* the fast tier's data checksums */
	/* Blocks mkfs laid capacity tier k + 1's regions out for, when they
	 * were moved (the tier grew, FS_TIER_ADDED): the layout of the others
	 * still follows from them.  0 otherwise. */
	uint64_t laid_blocks[FS_MAX_TIERS];
	/* The fast tier's total_blocks when mkfs laid it out, once it grew
	 * (cairn tier grow): the layout follows from it, and the block bitmap
	 * and checksum table moved into the data area (bbitmap_start,
	 * sums_start say where).  0 while it has its first size. */
	uint64_t fast_laid_blocks;
	uint8_t reserved[3496];
	uint64_t checksum;      /* XXH3-64 of the bytes before this field */
};

/* Block 0 of a capacity tier part.  Written once by mkfs. */
struct fs_tier_header {
	uint64_t magic;         /* FS_TIER_MAGIC */
	uint32_t version;       /* FS_FORMAT_VERSION */
	uint32_t block_size;    /* FS_BLOCK_SIZE */
	uint8_t uuid[16];       /* the volume's UUID */
	uint32_t tier;          /* 1..tier_count */
	uint32_t unit_blocks;   /* as in the superblock */
	uint64_t total_blocks;  /* as in the superblock */
	char name[16];          /* as in the superblock */
	uint64_t created_ns;
	uint8_t reserved[4016];
	uint64_t checksum;      /* XXH3-64 of the bytes before this field */
};

/*
 * Blocks 1 and 2 hold one each, at offset 0.  The valid slot with the higher seq is current.  A
 * checkpoint writes the slot that is not current, so a torn slot write
 * leaves the other intact.
 */
struct fs_checkpoint {
	uint64_t magic;         /* FS_CKPT_MAGIC */
	uint64_t seq;           /* checkpoint number, 1 at mkfs */
	uint64_t log_head_off;  /* byte offset in the log of the first undigested record */
	uint64_t log_head_seq;  /* its sequence number */
	uint64_t orphan_head;   /* first inode of the orphan list (unlinked, open) */
	uint64_t free_blocks;   /* informational: free blocks at checkpoint */
	uint64_t free_inodes;   /* informational: free inodes at checkpoint */
	uint64_t ops_digested;  /* records digested over the volume's life */
	uint64_t directories;   /* directories in use, the root included */
	uint8_t reserved[48];
	uint64_t checksum;      /* XXH3-64 of the bytes before this field */
};

/*
 * Journal header: first block of the journal region.  A checkpoint writes
 * nblocks block images after ceil(nblocks / 512) descriptor blocks (arrays of
 * uint64_t home block numbers), fences, then writes this header, fences,
 * writes the images home, fences, writes the new checkpoint slot.  Recovery
 * replays a valid header whose ckpt.seq is newer than the current slot.
 */
struct fs_journal_header {
	uint64_t magic;         /* FS_JOURNAL_MAGIC */
	uint64_t nblocks;       /* block images that follow the descriptors */
	uint64_t body_checksum; /* XXH3-64 of descriptors and images */
	uint64_t reserved0;
	struct fs_checkpoint ckpt; /* the checkpoint this journal commits */
	uint8_t reserved[3928];
	uint64_t checksum;      /* XXH3-64 of the bytes before this field */
};

#define FS_JOURNAL_DESC_PER_BLOCK (FS_BLOCK_SIZE / 8)

/*
 * Data checksums: entry b of a tier's table is the low 32 bits of the
 * XXH3-64 of the 4096 bytes of its block b, seeded with the block's
 * tier-tagged pblk (sums_of in fs/sums.h), so a block written to the
 * wrong place does not verify either.  Entries are written in place, not through the journal,
 * whenever the digest or a migration writes the block: a crash between
 * the block and its entry is repaired by the log replay, which writes
 * both again (see docs/FORMAT.md, "Data checksums").  An entry is
 * meaningful only for a block that a written extent maps.
 */
#define FS_SUMS_PER_BLOCK (FS_BLOCK_SIZE / 4)

/* Inode flags. */
#define FS_INODE_ORPHAN 1u /* on the orphan list */
/* A regular file or symlink whose block map is one extent, held in the
 * inode itself instead of an extent tree (tree_root = 0): physical block
 * in `rdev`, logical block and length in inline_lblk / inline_len.  Small
 * files then take no tree node on the fast tier. */
#define FS_INODE_INLINE_EXTENT 2u
/* The inline extent is unwritten (see FS_EXTENT_UNWRITTEN): bits 8..15 of
 * flags hold this pattern, or 0 for a written extent.  A pattern rather
 * than one bit, so that a flipped bit makes the inode invalid instead of
 * silently turning data into zeros (inodes carry no checksum). */
#define FS_INODE_INLINE_UNWRITTEN 0xa500u
#define FS_INODE_INLINE_STATE 0xff00u /* the bits that hold it */

/*
 * Extent records ({u64 lblk, u64 pblk, u64 len}, docs/FORMAT.md) keep the
 * extent's state in the top byte of len: 0 = written, 0xa5 = unwritten.
 * An unwritten extent holds blocks set aside by fallocate whose contents
 * are not the file's: it reads as zeros until data is written into it.
 * As for the inode's flag, one flipped bit never turns one valid state
 * into the other (tree nodes carry no checksum).  Unwritten extents are
 * at most FS_EXTENT_UNWRITTEN_MAX blocks long (128 MiB), which bounds the
 * zeros the digest writes when it cannot split one.
 */
#define FS_EXTENT_UNWRITTEN (0xa5ull << 56)
#define FS_EXTENT_STATE (0xffull << 56)
#define FS_EXTENT_UNWRITTEN_MAX 32768u

/* One inode, 128 bytes; inode i lives in itable block i / 32, slot i % 32. */
struct fs_inode {
	uint32_t mode;          /* S_IFMT type and permission bits; 0 = free */
	uint32_t nlink;
	uint32_t uid, gid;
	uint64_t size;          /* bytes */
	uint64_t blocks;        /* data + tree blocks allocated, in 4 KiB units */
	int64_t atime_ns, mtime_ns, ctime_ns; /* ns since the epoch */
	uint64_t tree_root;     /* block of the extent or directory tree root, 0 = empty */
	uint64_t parent;        /* directories: inode of "..", others 0 */
	uint64_t orphan_next;   /* next inode on the orphan list, 0 = end */
	uint64_t rdev;          /* device nodes: device number; files: inline extent's block */
	uint32_t generation;    /* bumped each time the inode number is reused */
	uint32_t flags;         /* FS_INODE_* */
	uint64_t entries;       /* directories: number of entries (without . and ..) */
	uint64_t xattr_root;    /* block of the extended-attribute tree root, 0 = none */
	uint64_t orphan_prev;   /* previous inode on the orphan list, 0 = the head */
	uint32_t inline_lblk;   /* FS_INODE_INLINE_EXTENT: the extent's first logical block */
	uint32_t inline_len;    /* ... and its length in blocks */
};

_Static_assert(sizeof(struct fs_tier_desc) == 64, "fs_tier_desc is 64 bytes");
_Static_assert(sizeof(struct fs_super) == FS_BLOCK_SIZE, "fs_super is one block");
_Static_assert(offsetof(struct fs_super, sums_start) == 520, "fs_super layout");
_Static_assert(offsetof(struct fs_super, fast_laid_blocks) == 584, "fs_super layout");
_Static_assert(sizeof(struct fs_tier_header) == FS_BLOCK_SIZE, "fs_tier_header is one block");
_Static_assert(sizeof(struct fs_checkpoint) == 128, "fs_checkpoint is 128 bytes");
_Static_assert(sizeof(struct fs_journal_header) == FS_BLOCK_SIZE, "journal header is one block");
_Static_assert(sizeof(struct fs_inode) == FS_INODE_SIZE, "fs_inode is 128 bytes");

#endif
