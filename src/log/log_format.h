/*
 * log_format.h - on-media layout of the log part.  docs/FORMAT.md
 * describes it in prose.
 *
 *   block 0        struct log_super (written once by mkfs)
 *   blocks 1, 2    struct log_epoch slots A and B (the valid one with the
 *                  higher epoch is current; a mount writes the other)
 *   block 3 ...    the record ring, up to the last block
 *   last block     a second copy of struct log_super (LOG_BACKUP_OFF)
 *
 * A record is a 64-byte header followed by its payload, padded to a
 * multiple of 64 bytes (one cache line), so payloads start line-aligned.
 * A record never wraps: when it does not fit before the end of the ring, a
 * PAD record fills the rest and the record starts at the ring's beginning.
 */
#ifndef CAIRN_LOG_FORMAT_H
#define CAIRN_LOG_FORMAT_H

#include <stdint.h>

#define LOG_SUPER_MAGIC 0x474f4c4e52494143ull /* "CAIRNLOG" */
#define LOG_EPOCH_MAGIC 0x4843504e52494143ull /* "CAIRNPCH" */
#define LOG_REC_MAGIC 0x4345524eu             /* "NREC" */
#define LOG_FORMAT_VERSION 2u                 /* 2: backup superblock, durable lag */
#define LOG_BLOCK 4096u
#define LOG_RING_START (3 * LOG_BLOCK)
#define LOG_ALIGN 64u
#define LOG_REC_ARGS 3

/* The backup superblock: the last whole block of a part of `size` bytes.
 * It depends on the size alone, so it is found when block 0 is damaged. */
#define LOG_BACKUP_OFF(size) ((uint64_t)(size) / LOG_BLOCK * LOG_BLOCK - LOG_BLOCK)

struct log_super {
	uint64_t magic;      /* LOG_SUPER_MAGIC */
	uint32_t version;    /* LOG_FORMAT_VERSION */
	uint32_t block_size; /* 4096 */
	uint8_t uuid[16];    /* the volume's UUID */
	uint64_t size;       /* bytes of the whole part */
	uint8_t reserved[4048];
	uint64_t checksum; /* XXH3-64 of the bytes before this field */
};

struct log_epoch {
	uint64_t magic; /* LOG_EPOCH_MAGIC */
	uint64_t epoch; /* bumped by every mount that may write */
	uint8_t reserved[40];
	uint64_t checksum; /* XXH3-64 of the bytes before this field */
};

/* Record types the log itself interprets; libfs types start at 16. */
#define LOG_REC_PAD 1

struct log_rec_hdr {
	uint32_t magic;              /* LOG_REC_MAGIC */
	uint16_t type;               /* LOG_REC_PAD or an operation (libfs/oprec.h) */
	uint16_t lag;                /* every record up to seq - lag was durable when
	                                this one was appended; 0 = no such claim */
	uint32_t len;                /* bytes of header + payload + padding */
	uint32_t payload_len;        /* bytes of payload */
	uint64_t seq;                /* 1, 2, 3, ... over the volume's life */
	uint64_t epoch;              /* the mount epoch it was written in */
	uint64_t args[LOG_REC_ARGS]; /* operation arguments, meaning by type */
	uint64_t checksum;           /* XXH3-64 of the payload, seeded with the hash
	                                of the header bytes before this field, itself
	                                seeded with the hash of the volume UUID */
};

_Static_assert(sizeof(struct log_super) == LOG_BLOCK, "log_super is one block");
_Static_assert(sizeof(struct log_epoch) == 64, "log_epoch is one line");
_Static_assert(sizeof(struct log_rec_hdr) == 64, "record header is one line");

#endif
