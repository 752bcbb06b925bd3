/*
 * target.c - the files mkfs makes into the parts of a new volume: create
 * them safely, or refuse to overwrite what is there (see target.h).
 *
 * Owns: the checks on a part's file before mkfs formats it.
 * May call: the volume lock (volume.h), libc.
 */
#include "volume/target.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/fs.h>

/* How much of a device is read to decide whether it holds data: the
 * labels and superblocks of file systems, partition tables and cairn's own
 * parts all start within it. */
#define PROBE_BYTES (1u << 20)

static const char *const reserved_names[] = {VOLUME_MANIFEST, VOLUME_MANIFEST ".tmp", "log.part",
                                             "fast.part"};

int target_is_reserved(const char *path, const char *voldir, const char *own)
{
	char copy[VOLUME_PATH_MAX], parent[PATH_MAX];
	snprintf(copy, sizeof(copy), "%s", path);
	const char *base = strrchr(copy, '/') ? strrchr(copy, '/') + 1 : copy;
	int reserved = 0;
	for (size_t i = 0; i < sizeof(reserved_names) / sizeof(reserved_names[0]); i++)
		reserved |= !strcmp(base, reserved_names[i]) && !(own && !strcmp(base, own));
	/* dirname() may modify copy: base was only needed above. */
	return reserved && realpath(dirname(copy), parent) && !strcmp(parent, voldir);
}

/* The name the media layer opens: the open file itself, by /proc. */
static void set_media_path(struct part_target *t)
{
	snprintf(t->media_path, sizeof(t->media_path), "/proc/self/fd/%d", t->fd);
	if (access(t->media_path, F_OK))
		snprintf(t->media_path, sizeof(t->media_path), "%s", "");
}

static int refuse(char *err, size_t el, const struct part_target *t, int rc, const char *why)
{
	snprintf(err, el, "%s %s: %s", t->what, t->path, why);
	return rc;
}

/* Whether the directory holding t->path is another volume's that is
 * mounted (its manifest or default parts are named as this target). */
static int in_mounted_volume_dir(const struct part_target *t, const char *voldir)
{
	char copy[VOLUME_PATH_MAX], parent[PATH_MAX], manifest[PATH_MAX + 32];
	snprintf(copy, sizeof(copy), "%s", t->path);
	if (!realpath(dirname(copy), parent) || !strcmp(parent, voldir))
		return 0; /* our own directory: the caller holds its lock */
	snprintf(manifest, sizeof(manifest), "%s/%s", parent, VOLUME_MANIFEST);
	if (access(manifest, F_OK))
		return 0;
	char ignored[256];
	int fd = volume_lock_dir(parent, 1, ignored, sizeof(ignored));
	if (fd >= 0)
		volume_unlock(fd);
	return fd == -EBUSY;
}

/* Whether the first MiB of the device holds anything but zeros. */
static int device_holds_data(int fd)
{
	static char buf[PROBE_BYTES];
	ssize_t n = pread(fd, buf, sizeof(buf), 0);
	for (ssize_t i = 0; i < n; i++)
		if (buf[i])
			return 1;
	return 0;
}

/* A forced regular file starts over: empty, private, the caller's. */
static int take_over_file(struct part_target *t, char *err, size_t el)
{
	if (ftruncate(t->fd, 0) || fchmod(t->fd, 0600))
		return refuse(err, el, t, -errno, strerror(errno));
	if (geteuid() == 0 && fchown(t->fd, 0, getegid()))
		return refuse(err, el, t, -errno, strerror(errno));
	return 0;
}

/* Checks an existing file or device opened as t->fd with status st. */
static int check_existing(struct part_target *t, const struct stat *st, const char *voldir,
                          int force, char *err, size_t el)
{
	t->device = S_ISBLK(st->st_mode) || S_ISCHR(st->st_mode);
	if (!t->device && !S_ISREG(st->st_mode))
		return refuse(err, el, t, -EINVAL, "not a regular file or a device");
	/* A mounted volume holds a lock on each of its parts. */
	if (flock(t->fd, LOCK_EX | LOCK_NB) || in_mounted_volume_dir(t, voldir))
		return refuse(err, el, t, -EBUSY,
		              "in use by a mounted cairn volume (unmount it first)");
	if (t->device) {
		if (S_ISBLK(st->st_mode) && ioctl(t->fd, BLKGETSIZE64, &t->size))
			t->size = 0;
		if (!force && device_holds_data(t->fd))
			return refuse(err, el, t, -EEXIST,
			              "the device holds data (a file system, a partition table "
			              "or a cairn part?); --force overwrites it");
		return 0;
	}
	t->size = (uint64_t)st->st_size;
	if (st->st_size == 0) {
		t->was_empty = 1;
		return fchmod(t->fd, 0600) ? refuse(err, el, t, -errno, strerror(errno)) : 0;
	}
	if (!force)
		return refuse(err, el, t, -EEXIST,
		              "exists and is not empty (a part of another volume?); --force "
		              "overwrites it");
	return take_over_file(t, err, el);
}

/* Opens what is at t->path: never through a symbolic link, and a block
 * device exclusively (EBUSY while a file system on it is mounted). */
static int open_existing(struct part_target *t, char *err, size_t el)
{
	t->fd = volume_open_lockable(t->path, O_RDWR | O_EXCL | O_NOFOLLOW | O_NONBLOCK, 0);
	if (t->fd >= 0)
		return 0;
	int e = errno;
	if (e == ELOOP)
		return refuse(err, el, t, -ELOOP,
		              "a symbolic link (cairn does not follow one to a part: give the "
		              "path it points to)");
	if (e == EBUSY)
		return refuse(err, el, t, -EBUSY, "the device is in use (mounted?)");
	return refuse(err, el, t, -e, strerror(e));
}

/* Creates t->path, which must not exist; 0600 whatever the umask. */
static int create_new(struct part_target *t, char *err, size_t el)
{
	if (fchmod(t->fd, 0600) || flock(t->fd, LOCK_EX | LOCK_NB))
		return refuse(err, el, t, -errno, strerror(errno));
	return 0;
}

int target_open(struct part_target *t, char *err, size_t el)
{
	t->fd = volume_open_lockable(t->path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW, 0600);
	t->created = t->fd >= 0;
	if (t->fd < 0 && errno != EEXIST)
		return refuse(err, el, t, -errno, strerror(errno));
	int rc = t->created ? 0 : open_existing(t, err, el);
	if (!rc && fstat(t->fd, &t->st))
		rc = refuse(err, el, t, -errno, strerror(errno));
	if (!rc)
		set_media_path(t);
	return rc;
}

int target_check(struct part_target *t, const char *voldir, int force, char *err, size_t el)
{
	return t->created ? create_new(t, err, el)
	                  : check_existing(t, &t->st, voldir, force, err, el);
}

void target_close(struct part_target *t, int failed)
{
	if (t->fd < 0)
		return;
	struct stat st;
	/* Only the file mkfs made, and only if its name still names it. */
	if (failed && t->created && !lstat(t->path, &st) && st.st_dev == t->st.st_dev &&
	    st.st_ino == t->st.st_ino)
		unlink(t->path);
	else if (failed && t->was_empty && ftruncate(t->fd, 0) == 0)
		fsync(t->fd); /* as it was: empty */
	volume_unlock(t->fd);
	t->fd = -1;
}

int target_same(const struct part_target *a, const struct part_target *b)
{
	return a->fd >= 0 && b->fd >= 0 && a->st.st_dev == b->st.st_dev &&
	       a->st.st_ino == b->st.st_ino;
}
