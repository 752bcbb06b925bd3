/*
 * volume.c - the manifest and the parts of a volume.
 *
 * Owns: reading and writing cairn.volume; opening the parts; the table of
 * open volumes and locks that a child of fork marks and closes.
 * May call: the media layer, libc.
 */
#include "volume/volume.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

static const char *part_names[PART_COUNT] = {"log", "fast"};

const char *volume_part_name(const struct manifest *mf, int p)
{
	return p < PART_COUNT ? part_names[p] : mf->tier_name[p - PART_COUNT];
}

static const char *media_name(enum media_kind k)
{
	switch (k) {
	case MEDIA_PMEM:
		return "pmem";
	case MEDIA_FILE:
		return "file";
	case MEDIA_EMUL:
		return "emul";
	}
	return "?";
}

static int media_parse(const char *s, enum media_kind *k)
{
	if (!strcmp(s, "pmem"))
		*k = MEDIA_PMEM;
	else if (!strcmp(s, "file"))
		*k = MEDIA_FILE;
	else if (!strcmp(s, "emul"))
		*k = MEDIA_EMUL;
	else
		return -1;
	return 0;
}

/* The option lines: only what `cairn tune` stored, so that a volume never
 * tuned keeps the manifest every cairn reads. */
static void write_tuning(FILE *f, const struct manifest_tuning *t)
{
	if (t->high_watermark)
		fprintf(f, "option high_watermark %d\n", t->high_watermark);
	if (t->low_watermark)
		fprintf(f, "option low_watermark %d\n", t->low_watermark);
	if (t->promotion != TUNE_UNSET)
		fprintf(f, "option promotion %s\n", t->promotion == TUNE_ON ? "on" : "off");
}

int manifest_write(const char *dir, const struct manifest *mf, char *err, size_t errlen)
{
	char tmp[VOLUME_PATH_MAX + 32], final[VOLUME_PATH_MAX + 32];
	snprintf(tmp, sizeof(tmp), "%s/%s.tmp", dir, VOLUME_MANIFEST);
	snprintf(final, sizeof(final), "%s/%s", dir, VOLUME_MANIFEST);
	/* The caller holds the volume lock, so a temporary file left here is a
	 * crashed writer's.  A new one is created, never opened through a
	 * planted symbolic link. */
	unlink(tmp);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
	if (!f) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		snprintf(err, errlen, "%s: %s", tmp, strerror(e));
		return -e;
	}
	fprintf(f, "# cairn volume manifest: do not edit while mounted\n");
	fprintf(f, "format %u\nuuid ", mf->format);
	for (int i = 0; i < 16; i++)
		fprintf(f, "%02x", mf->uuid[i]);
	fprintf(f, "\nmedia %s\n", media_name(mf->media));
	for (int p = 0; p < PART_COUNT; p++)
		fprintf(f, "part %s %llu %s\n", part_names[p], (unsigned long long)mf->size[p],
		        mf->path[p]);
	for (unsigned k = 0; k < mf->ntiers; k++)
		if (mf->tier_retired[k])
			fprintf(f, "retired %s\n", mf->tier_name[k]);
		else
			fprintf(f, "tier %s %llu %u %s\n", mf->tier_name[k],
			        (unsigned long long)mf->size[PART_TIER1 + k], mf->tier_unit[k],
			        mf->path[PART_TIER1 + k]);
	write_tuning(f, &mf->tuning);
	int rc = fflush(f) ? -errno : 0;
	if (!rc && fsync(fileno(f)))
		rc = -errno;
	if (fclose(f) && !rc)
		rc = -errno;
	if (!rc && rename(tmp, final))
		rc = -errno;
	if (!rc) {
		/* The rename is durable only once the directory is. */
		int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd < 0 || fsync(dfd))
			rc = -errno;
		if (dfd >= 0)
			close(dfd);
	}
	if (rc) {
		unlink(tmp);
		snprintf(err, errlen, "%s: %s", final, strerror(-rc));
	}
	return rc;
}

static int parse_uuid(const char *s, uint8_t uuid[16])
{
	if (strlen(s) != 32)
		return -1;
	for (int i = 0; i < 16; i++) {
		unsigned v;
		if (sscanf(s + 2 * i, "%2x", &v) != 1)
			return -1;
		uuid[i] = (uint8_t)v;
	}
	return 0;
}

/* "tier NAME SIZE UNIT PATH": the next capacity tier. */
static const char *parse_tier(const char *line, struct manifest *mf)
{
	char name[64], path[VOLUME_PATH_MAX];
	unsigned long long size;
	unsigned unit;
	if (mf->ntiers >= VOLUME_MAX_TIERS)
		return "too many tier lines";
	if (sscanf(line, "%*s %63s %llu %u %4095[^\n]", name, &size, &unit, path) != 4 ||
	    strlen(name) > VOLUME_TIER_NAME_MAX || unit == 0)
		return "bad tier line (expected: tier NAME SIZE UNIT PATH)";
	unsigned k = mf->ntiers++;
	snprintf(mf->tier_name[k], sizeof(mf->tier_name[k]), "%s", name);
	mf->tier_unit[k] = unit;
	mf->size[PART_TIER1 + k] = size;
	snprintf(mf->path[PART_TIER1 + k], VOLUME_PATH_MAX, "%s", path);
	return NULL;
}

/* "retired NAME": a capacity tier removed; it keeps its number. */
static const char *parse_retired(const char *line, struct manifest *mf)
{
	char name[64];
	if (mf->ntiers >= VOLUME_MAX_TIERS)
		return "too many tier lines";
	if (sscanf(line, "%*s %63s", name) != 1 || strlen(name) > VOLUME_TIER_NAME_MAX)
		return "bad retired line (expected: retired NAME)";
	unsigned k = mf->ntiers++;
	snprintf(mf->tier_name[k], sizeof(mf->tier_name[k]), "%s", name);
	mf->tier_retired[k] = 1;
	return NULL;
}

/* "option NAME VALUE": a stored default of `cairn tune`. */
static const char *parse_option(const char *line, struct manifest *mf)
{
	char name[32], value[16];
	if (sscanf(line, "%*s %31s %15s", name, value) != 2)
		return "bad option line (expected: option NAME VALUE)";
	struct manifest_tuning *t = &mf->tuning;
	if (!strcmp(name, "promotion")) {
		if (strcmp(value, "on") && strcmp(value, "off"))
			return "bad option promotion (expected on or off)";
		t->promotion = value[1] == 'n' ? TUNE_ON : TUNE_OFF;
		return NULL;
	}
	int *field = !strcmp(name, "high_watermark")  ? &t->high_watermark
	             : !strcmp(name, "low_watermark") ? &t->low_watermark
	                                              : NULL;
	if (!field)
		return "unknown option (expected high_watermark, low_watermark or promotion)";
	char *end;
	long pct = strtol(value, &end, 10);
	if (end == value || *end || pct < 1 || pct > 100)
		return "bad watermark option (expected a percentage, 1-100)";
	*field = (int)pct;
	return NULL;
}

/* Parses one manifest line into mf; returns a description of what is wrong
 * or NULL. */
static const char *parse_line(char *line, struct manifest *mf, unsigned *seen)
{
	char key[32], a[VOLUME_PATH_MAX], b[64], c[VOLUME_PATH_MAX];
	if (line[0] == '#' || line[0] == '\n' || line[0] == 0)
		return NULL;
	if (sscanf(line, "%31s", key) != 1)
		return NULL;
	if (!strcmp(key, "format")) {
		if (sscanf(line, "%*s %u", &mf->format) != 1)
			return "bad format line";
		*seen |= 1;
	} else if (!strcmp(key, "uuid")) {
		if (sscanf(line, "%*s %63s", b) != 1 || parse_uuid(b, mf->uuid))
			return "bad uuid line";
		*seen |= 2;
	} else if (!strcmp(key, "media")) {
		if (sscanf(line, "%*s %63s", b) != 1 || media_parse(b, &mf->media))
			return "unknown media (expected pmem, file or emul)";
		*seen |= 4;
	} else if (!strcmp(key, "part")) {
		unsigned long long size;
		if (sscanf(line, "%*s %63s %llu %4095[^\n]", b, &size, c) != 3)
			return "bad part line";
		(void)a;
		for (int p = 0; p < PART_COUNT; p++) {
			if (!strcmp(b, part_names[p])) {
				mf->size[p] = size;
				snprintf(mf->path[p], VOLUME_PATH_MAX, "%s", c);
				*seen |= 8u << p;
				return NULL;
			}
		}
		return "unknown part";
	} else if (!strcmp(key, "tier")) {
		return parse_tier(line, mf);
	} else if (!strcmp(key, "retired")) {
		return parse_retired(line, mf);
	} else if (!strcmp(key, "option")) {
		return parse_option(line, mf);
	} else {
		return "unknown key";
	}
	return NULL;
}

int manifest_read(const char *dir, struct manifest *mf, char *err, size_t errlen)
{
	char path[VOLUME_PATH_MAX + 32];
	snprintf(path, sizeof(path), "%s/%s", dir, VOLUME_MANIFEST);
	FILE *f = fopen(path, "r");
	if (!f) {
		int e = errno;
		if (e == ENOENT)
			snprintf(err, errlen, "%s: not a cairn volume (no %s)", dir,
			         VOLUME_MANIFEST);
		else
			snprintf(err, errlen, "%s: %s", path, strerror(e));
		return -e;
	}
	memset(mf, 0, sizeof(*mf));
	char line[VOLUME_PATH_MAX + 128];
	unsigned seen = 0, lineno = 0;
	const char *bad = NULL;
	while (!bad && fgets(line, sizeof(line), f)) {
		lineno++;
		bad = parse_line(line, mf, &seen);
	}
	fclose(f);
	if (bad) {
		snprintf(err, errlen, "%s: line %u: %s", path, lineno, bad);
		return -EUCLEAN;
	}
	if (seen != 0x1f) {
		snprintf(err, errlen,
		         "%s: incomplete manifest (needs format, uuid, media, part log, part fast)",
		         path);
		return -EUCLEAN;
	}
	if (mf->format != 1) {
		snprintf(err, errlen, "%s: unsupported manifest format %u (this cairn reads 1)",
		         path, mf->format);
		return -EUCLEAN;
	}
	return 0;
}

/* volume_lock_dir, with the descriptor not noted (the caller notes it). */
static int lock_dir(const char *dir, int exclusive, char *err, size_t errlen)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		snprintf(err, errlen, "%s: %s", dir, strerror(e));
		return -e;
	}
	if (flock(fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) == 0)
		return fd;
	int e = errno;
	snprintf(err, errlen, "%s: %s", dir,
	         e == EWOULDBLOCK ? "the volume is in use by another process (mounted?)"
	                          : strerror(e));
	close(fd);
	return e == EWOULDBLOCK ? -EBUSY : -e;
}

/* ---- locks a child of fork must not keep --------------------------------
 *
 * A flock belongs to the open file description, which fork shares with the
 * child.  A child that outlives its parent (a server's worker, a program
 * that forks and never execs) would keep the volume "in use" for good,
 * although it cannot use the volume: the mount's threads do not run in it.
 * So the child closes its copies of every open volume's lock descriptors.
 * Closing a copy leaves the parent's locks standing (flock's LOCK_UN on a
 * copy would release them).  Descriptors close on exec anyway. */

#define OPEN_VOLUMES_MAX 64
static pthread_mutex_t open_volumes_lock = PTHREAD_MUTEX_INITIALIZER;
static struct volume *open_volumes[OPEN_VOLUMES_MAX];
static pthread_once_t fork_handlers_once = PTHREAD_ONCE_INIT;
/* The descriptors of locks held outside an open volume: mkfs's lock of
 * the directory it makes, and each file it (or an online tier add)
 * formats, from its open to its close; each plus 1, 0 for none. */
#define LOOSE_LOCKS_MAX 64
static int loose_locks[LOOSE_LOCKS_MAX];

static void before_fork(void)
{
	pthread_mutex_lock(&open_volumes_lock);
}

static void after_fork_in_parent(void)
{
	pthread_mutex_unlock(&open_volumes_lock);
}

/* In the child, where only this thread runs: close and forget. */
static void after_fork_in_child(void)
{
	for (int i = 0; i < OPEN_VOLUMES_MAX; i++) {
		struct volume *v = open_volumes[i];
		open_volumes[i] = NULL;
		for (int p = 0; v && p < VOLUME_MAX_PARTS; p++) {
			if (v->part_lock[p] >= 0)
				close(v->part_lock[p]);
			v->part_lock[p] = -1;
		}
		if (v && v->lock_fd >= 0)
			close(v->lock_fd);
		if (v) {
			v->lock_fd = -1;
			v->inherited = 1;
		}
	}
	for (int i = 0; i < LOOSE_LOCKS_MAX; i++) {
		if (loose_locks[i])
			close(loose_locks[i] - 1);
		loose_locks[i] = 0;
	}
	pthread_mutex_unlock(&open_volumes_lock);
}

static void install_fork_handlers(void)
{
	pthread_atfork(before_fork, after_fork_in_parent, after_fork_in_child);
}

/* Notes fd as a loose lock, with open_volumes_lock held.  Beyond
 * LOOSE_LOCKS_MAX at once, a child keeps the rest. */
static void note_loose(int fd)
{
	for (int i = 0; fd >= 0 && i < LOOSE_LOCKS_MAX; i++) {
		if (!loose_locks[i]) {
			loose_locks[i] = fd + 1;
			return;
		}
	}
}

/* Forgets fd as a loose lock, with open_volumes_lock held. */
static void forget_loose(int fd)
{
	for (int i = 0; fd >= 0 && i < LOOSE_LOCKS_MAX; i++)
		if (loose_locks[i] == fd + 1)
			loose_locks[i] = 0;
}

int volume_lock_dir(const char *dir, int exclusive, char *err, size_t errlen)
{
	pthread_once(&fork_handlers_once, install_fork_handlers);
	pthread_mutex_lock(&open_volumes_lock);
	int fd = lock_dir(dir, exclusive, err, errlen);
	note_loose(fd);
	pthread_mutex_unlock(&open_volumes_lock);
	return fd;
}

int volume_open_lockable(const char *path, int flags, mode_t mode)
{
	pthread_once(&fork_handlers_once, install_fork_handlers);
	pthread_mutex_lock(&open_volumes_lock); /* no fork in between */
	int fd = open(path, flags | O_CLOEXEC, mode);
	note_loose(fd);
	pthread_mutex_unlock(&open_volumes_lock);
	return fd;
}

void volume_unlock(int fd)
{
	pthread_mutex_lock(&open_volumes_lock);
	forget_loose(fd);
	if (fd >= 0)
		close(fd);
	pthread_mutex_unlock(&open_volumes_lock);
}

/* Takes v's directory lock and notes v as holding locks (volume_close
 * forgets it), with no fork in between.  Beyond OPEN_VOLUMES_MAX volumes
 * open at once in one process, the rest are not noted, and a child keeps
 * their locks. */
static int lock_volume_dir(struct volume *v, int exclusive, char *err, size_t errlen)
{
	pthread_once(&fork_handlers_once, install_fork_handlers);
	pthread_mutex_lock(&open_volumes_lock);
	v->lock_fd = lock_dir(v->dir, exclusive, err, errlen);
	for (int i = 0; v->lock_fd >= 0 && i < OPEN_VOLUMES_MAX; i++) {
		if (!open_volumes[i]) {
			open_volumes[i] = v;
			break;
		}
	}
	pthread_mutex_unlock(&open_volumes_lock);
	return v->lock_fd < 0 ? v->lock_fd : 0;
}

/* Locks part p's file as the directory is locked, so that mkfs (which
 * locks every file it formats) never takes a part of a mounted volume
 * kept outside its directory.  A file system without flock is no reason
 * to refuse a mount: the directory lock still keeps two mounts apart. */
static int lock_part(struct volume *v, int p, int exclusive, char *err, size_t errlen)
{
	pthread_mutex_lock(&open_volumes_lock); /* no fork in between */
	v->part_lock[p] = open(v->mf.path[p], O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	int taken = v->part_lock[p] < 0 ||
	            flock(v->part_lock[p], (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) == 0 ||
	            errno != EWOULDBLOCK;
	pthread_mutex_unlock(&open_volumes_lock);
	if (taken)
		return 0;
	snprintf(err, errlen,
	         "%s%s part %s: in use by another process (another volume "
	         "mounted on it, or mkfs?)",
	         p >= PART_TIER1 ? "tier " : "", volume_part_name(&v->mf, p), v->mf.path[p]);
	return -EBUSY;
}

/* The media layer's messages start with "cairn: ", as if they were the
 * command's own; inside another sentence that prefix would repeat. */
static const char *media_message(const char *m)
{
	return strncmp(m, "cairn: ", 7) ? m : m + 7;
}

int volume_open(struct volume *v, const char *dir, enum media_kind media, int exclusive, char *err,
                size_t errlen)
{
	memset(v, 0, sizeof(*v));
	v->lock_fd = -1;
	for (int p = 0; p < VOLUME_MAX_PARTS; p++)
		v->part_lock[p] = -1;
	if (!realpath(dir, v->dir)) {
		int e = errno;
		snprintf(err, errlen, "%s: %s", dir, strerror(e));
		return -e;
	}
	int rc = manifest_read(v->dir, &v->mf, err, errlen);
	if (!rc) {
		rc = lock_volume_dir(v, exclusive, err, errlen);
	}
	if (rc)
		return rc;
	enum media_kind kind = media ? media : v->mf.media;
	for (int p = 0; p < manifest_parts(&v->mf); p++) {
		char merr[512];
		/* A capacity tier is sized 0 here (take what is there): the fs
		 * layer refuses one smaller than its superblock says, by name. */
		int tier = p >= PART_TIER1;
		if (manifest_part_retired(&v->mf, p))
			continue;
		rc = lock_part(v, p, exclusive, err, errlen);
		if (rc) {
			volume_close(v);
			return rc;
		}
		/* The fast part's file may be longer than the manifest says (a
		 * grow cut short before the manifest's step); it may grow. */
		int flags = p == PART_FAST ? MEDIA_PREFIX | MEDIA_GROWABLE : 0;
		rc = media_open(&v->part[p], tier ? MEDIA_FILE : kind, v->mf.path[p],
		                tier ? 0 : v->mf.size[p], flags, merr, sizeof(merr));
		if (rc) {
			snprintf(err, errlen, "%s%s part: %s", tier ? "tier " : "",
			         volume_part_name(&v->mf, p), media_message(merr));
			volume_close(v);
			return rc;
		}
	}
	return 0;
}

void volume_close(struct volume *v)
{
	/* A volume never opened (all zeros) holds no descriptors, not fd 0. */
	int opened = v->dir[0] != 0;
	for (int p = 0; p < VOLUME_MAX_PARTS; p++) {
		if (v->part[p])
			media_close(v->part[p]);
		v->part[p] = NULL;
	}
	if (!opened)
		return;
	/* The locks last, when the parts are closed and others may enter; and
	 * under the fork handlers' lock, so that no child copies a lock in
	 * between its leaving the table and its closing. */
	pthread_mutex_lock(&open_volumes_lock);
	for (int i = 0; i < OPEN_VOLUMES_MAX; i++)
		if (open_volumes[i] == v)
			open_volumes[i] = NULL;
	for (int p = 0; p < VOLUME_MAX_PARTS; p++) {
		if (v->part_lock[p] >= 0)
			close(v->part_lock[p]);
		v->part_lock[p] = -1;
	}
	if (v->lock_fd >= 0)
		close(v->lock_fd);
	v->lock_fd = -1;
	pthread_mutex_unlock(&open_volumes_lock);
}

void volume_adopt_part_lock(struct volume *v, int p, int fd)
{
	pthread_mutex_lock(&open_volumes_lock);
	forget_loose(fd);
	v->part_lock[p] = fd;
	pthread_mutex_unlock(&open_volumes_lock);
}

void volume_release_part_lock(struct volume *v, int p)
{
	pthread_mutex_lock(&open_volumes_lock);
	if (v->part_lock[p] >= 0)
		close(v->part_lock[p]);
	v->part_lock[p] = -1;
	pthread_mutex_unlock(&open_volumes_lock);
}

int volume_failure(struct volume *v, char *buf, size_t len)
{
	uint64_t latest = 0;
	int part = -1;
	char what[192];
	for (int p = 0; p < manifest_parts(&v->mf); p++) {
		char m[sizeof(what)];
		uint64_t no = v->part[p] ? media_failure(v->part[p], m, sizeof(m)) : 0;
		if (no > latest) {
			latest = no;
			part = p;
			memcpy(what, m, sizeof(what));
		}
	}
	if (part < 0)
		return 0;
	snprintf(buf, len, "%s%s part %s: %s", part >= PART_TIER1 ? "tier " : "",
	         volume_part_name(&v->mf, part), v->mf.path[part], what);
	return 1;
}
