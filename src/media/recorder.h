/*
 * recorder.h - records the stores, flushes and fences of a workload so that
 * a checker can rebuild every state the media could be in after a crash.
 *
 * Owns: the event trace and the shadow images built from it.
 * May call: nothing but libc.  The media layer calls in; tests read out.
 *
 * Semantics (persistent memory, per part, at 64-byte cache-line grain):
 * a line written and then flushed becomes durable at the next fence of its
 * part by the thread that flushed it (recorder_fence_own: a processor's
 * fence waits for its own flushes only), or at the next fence of any thread
 * (recorder_fence: a file's fdatasync); a line written but not yet durable
 * may or may not reach the media at a crash, each line independently
 * (eviction can persist unflushed lines).
 */
#ifndef CAIRN_RECORDER_H
#define CAIRN_RECORDER_H

#include <stddef.h>
#include <stdint.h>

/* A volume's parts (at most VOLUME_MAX_PARTS, 8) and the files of a few
 * client logs after them (src/libfs/clients.h, clog_recorder_part). */
#define RECORDER_MAX_PARTS 16
#define RECORDER_LINE 64

struct recorder;

/* A recorder for parts whose initial images are given (copied). */
struct recorder *recorder_new(void);
void recorder_free(struct recorder *r);

/* Declares part p with its contents at the start of recording.  A part
 * may also be declared while recording, when its file is made: image is
 * then its contents at that moment (NULL: zeros), and the file exists
 * from that position of the trace on (recorder_part_span). */
int recorder_add_part(struct recorder *r, int part, const void *image, uint64_t size);
/* The file of part p was removed: it exists no more from this position
 * on, and no event may name the part after it. */
void recorder_part_gone(struct recorder *r, int part);
/* Part p's size and the positions between which its file exists: from
 * *born (0 for a part declared before recording) up to *gone (UINT64_MAX
 * while it is not removed).  A crash point at position pos has the file
 * iff born <= pos < gone.  0, or -ENOENT for a part never declared. */
int recorder_part_span(struct recorder *r, int part, uint64_t *size, uint64_t *born,
                       uint64_t *gone);

/* Called by the media layer. */
void recorder_write(struct recorder *r, int part, uint64_t off, const void *data, size_t len);
void recorder_flush(struct recorder *r, int part, uint64_t off, size_t len);
void recorder_fence(struct recorder *r, int part);     /* every thread's flushes */
void recorder_fence_own(struct recorder *r, int part); /* the calling thread's */
/* A write of len zero bytes, stored without copying zeros into the trace. */
void recorder_zero(struct recorder *r, int part, uint64_t off, size_t len);

/* Number of events recorded so far: a position in the trace. */
uint64_t recorder_position(const struct recorder *r);

/* Pauses/resumes recording (e.g. while the checker reads back). */
void recorder_pause(struct recorder *r, int paused);

/*
 * Crash states.  A crash point is a fence event: the state "just before
 * fence k completes".  For each crash point the checker asks for images:
 * variant 0 persists every pending line, variant 1 none, and variants >= 2
 * a pseudo-random subset chosen from the variant number.
 */
uint64_t recorder_fence_count(const struct recorder *r);
/* Events applied to the shadow images so far, by every crash-state query:
 * the work the queries cost (tests bound it). */
uint64_t recorder_events_applied(const struct recorder *r);
/* Position (event index, as recorder_position() would have returned just
 * before it) of fence k.  k == recorder_fence_count() is also a crash point,
 * "the end of the trace"; its position is the end.  Larger k: UINT64_MAX. */
uint64_t recorder_fence_position(const struct recorder *r, uint64_t k);
/* Number of lines that are uncertain at crash point k (0 = only one state). */
uint64_t recorder_pending_lines(struct recorder *r, uint64_t k);
/* Writes the image of part p at crash point k, variant v, into out
 * (size of the part).  Returns 0 or -errno. */
int recorder_crash_image(struct recorder *r, uint64_t k, unsigned v, int part, void *out);
/* The image at the end of the trace with everything persisted. */
int recorder_final_image(struct recorder *r, int part, void *out);
/* Like recorder_crash_image but torn at 8-byte grain (persistent memory's
 * failure atomicity): each 8-byte word of an uncertain line is taken or not
 * independently.  Variant 0 and 1 give the same images as the untorn ones. */
int recorder_crash_image_torn(struct recorder *r, uint64_t k, unsigned v, int part, void *out);
/* Like recorder_crash_image, but the uncertain lines that lie inside
 * [lo, hi) of the part are all persisted and the others none: a targeted
 * variant ("the journal reached the media, the data did not") that random
 * subsets find only rarely. */
int recorder_crash_image_range(struct recorder *r, uint64_t k, int part, uint64_t lo, uint64_t hi,
                               void *out);

/* Test hook: fn(arg, part) runs after every recorded fence, on the thread
 * that fenced and outside the recorder's lock (so it may make the workload
 * do more, which is recorded).  NULL removes it. */
void recorder_set_fence_hook(struct recorder *r, void (*fn)(void *arg, int part), void *arg);

/* Sticky error of the recording (-ENOMEM, -EINVAL for an event outside a
 * declared part), 0 if the trace is complete. */
int recorder_error(const struct recorder *r);

#endif
