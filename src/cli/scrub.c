/*
 * scrub.c - `cairn scrub VOLUME|MOUNTPOINT`: every data block of the
 * volume read and verified against its checksum, with progress on a
 * terminal and a list of the damaged files at the end.
 *
 * Owns: the scrub command's output and exit codes.
 * May call: the public API and the FUSE front end's scrub channel.
 *
 * A mounted volume is scrubbed by its daemon (online: the mount goes on
 * serving), asked through the mount; a volume that is not mounted is
 * mounted here for the scrub, which recovers its log first as any mount
 * does.  Exit codes: 0 every block verified, 1 damage found, 2 usage
 * error, 3 the scrub could not run or was cancelled.
 */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cairn.h"
#include "cli/cli.h"
#include "fuse/cairn_fuse.h"

enum { SCRUB_CLEAN = 0, SCRUB_DAMAGE = 1, SCRUB_FAILED = 3 };

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static void show_progress(const struct cairn_scrub *s)
{
	uint64_t total = s->bytes_total ? s->bytes_total : 1;
	uint64_t done = s->bytes_done < total ? s->bytes_done : total;
	fprintf(stderr, "\rcairn: scrub: %3llu%% (%llu of %llu files, %llu MiB)  ",
	        (unsigned long long)(done * 100 / total), (unsigned long long)s->files_done,
	        (unsigned long long)s->files_total, (unsigned long long)(s->bytes_done >> 20));
}

/* ---- the names of damaged files ------------------------------------------ */

/* Paths are found by walking the tree once, for the inodes listed. */
static const struct cairn_scrub *want;
static char found[CAIRN_SCRUB_LIST][PATH_MAX];

static void note_path(uint64_t ino, const char *path)
{
	for (unsigned k = 0; k < want->listed; k++)
		if (want->damaged[k].ino == ino && !found[k][0])
			snprintf(found[k], sizeof(found[k]), "%s", path);
}

static int mount_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)type;
	(void)ftw;
	note_path(st->st_ino, path);
	return 0;
}

static void volume_walk(cairn_fs *fs, char *path, size_t len, int depth)
{
	cairn_dir *d = cairn_opendir(fs, len ? path : "/");
	if (!d || depth > 256) {
		if (d)
			cairn_closedir(d);
		return;
	}
	struct cairn_dirent *e;
	while ((e = cairn_readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		int n = snprintf(path + len, PATH_MAX - len, "/%s", e->d_name);
		if (n < 0 || (size_t)n >= PATH_MAX - len)
			continue;
		note_path(e->d_ino, path);
		if (e->d_type == DT_DIR)
			volume_walk(fs, path, len + (size_t)n, depth + 1);
		path[len] = 0;
	}
	cairn_closedir(d);
}

static int report(const char *what, const struct cairn_scrub *s, const char *mp, cairn_fs *fs)
{
	if (isatty(STDERR_FILENO))
		fputc('\n', stderr);
	printf("%s: %llu files, %llu MiB of data verified: ", what,
	       (unsigned long long)s->files_done, (unsigned long long)(s->bytes_done >> 20));
	if (!s->damaged_blocks) {
		printf("no damage\n");
		return SCRUB_CLEAN;
	}
	printf("%llu damaged blocks\n", (unsigned long long)s->damaged_blocks);
	want = s;
	memset(found, 0, sizeof(found));
	if (mp) {
		nftw(mp, mount_entry, 32, FTW_PHYS | FTW_MOUNT);
	} else {
		char path[PATH_MAX] = "";
		volume_walk(fs, path, 0, 0);
	}
	for (unsigned k = 0; k < s->listed; k++) {
		const struct cairn_scrub_damage *d = &s->damaged[k];
		printf("  %s: offset %llu (inode %llu, tier %s block %llu)\n",
		       found[k][0] ? found[k] : "(no name: an open unlinked file)",
		       (unsigned long long)d->offset, (unsigned long long)d->ino, d->tier,
		       (unsigned long long)d->block);
	}
	if (s->damaged_blocks > s->listed)
		printf("  ... and %llu more (each is reported as an event)\n",
		       (unsigned long long)(s->damaged_blocks - s->listed));
	printf("Those bytes are lost: restore the files from a backup (writing the blocks whole "
	       "makes them good again).\n");
	return SCRUB_DAMAGE;
}

/* ---- online: the daemon scrubs --------------------------------------------- */

static int scrub_mounted(const char *path)
{
	struct cfuse_scrub_status st;
	char mp[PATH_MAX];
	int tty = isatty(STDERR_FILENO), cancelled = 0;
	for (;;) {
		sleep_ms(200);
		if (interrupted && !cancelled) {
			cairn_fuse_scrub(path, "cancel", &st, mp, sizeof(mp));
			cancelled = 1;
		}
		int rc = cairn_fuse_scrub(path, NULL, &st, mp, sizeof(mp));
		if (rc) {
			fprintf(stderr, "cairn: scrub: %s: the mount stopped answering: %s\n", path,
			        strerror(-rc));
			return SCRUB_FAILED;
		}
		if (st.state != CFUSE_SCRUB_RUNNING)
			break;
		if (tty)
			show_progress(&st.s);
	}
	if (st.state == CFUSE_SCRUB_FAILED) {
		fprintf(stderr, "\ncairn: scrub: %s: %s\n", path,
		        st.error == ECANCELED ? "cancelled" : strerror(st.error));
		return SCRUB_FAILED;
	}
	return report(mp, &st.s, mp, NULL);
}

/* ---- offline: a mount of our own ------------------------------------------ */

struct offline {
	cairn_fs *fs;
	struct cairn_scrub s;
	int rc, err, done;
};

static void *offline_thread(void *arg)
{
	struct offline *o = arg;
	o->rc = cairn_scrub(o->fs, &o->s);
	o->err = o->rc ? errno : 0;
	__atomic_store_n(&o->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static int scrub_volume(const char *vol)
{
	struct cairn_mount_opts mo = {.no_digest_thread = 1};
	static struct offline o;
	o.fs = cairn_mount(vol, &mo);
	if (!o.fs) {
		api_error(vol);
		return SCRUB_FAILED;
	}
	pthread_t t;
	if (pthread_create(&t, NULL, offline_thread, &o)) {
		cairn_unmount(o.fs);
		return SCRUB_FAILED;
	}
	int tty = isatty(STDERR_FILENO);
	while (!__atomic_load_n(&o.done, __ATOMIC_ACQUIRE)) {
		sleep_ms(200);
		if (interrupted)
			__atomic_store_n(&o.s.cancel, 1, __ATOMIC_RELAXED);
		if (tty)
			show_progress(&o.s);
	}
	pthread_join(t, NULL);
	int rc;
	if (o.rc) {
		fprintf(stderr, "\ncairn: scrub: %s: %s\n", vol,
		        o.err == ECANCELED ? "cancelled" : strerror(o.err));
		rc = SCRUB_FAILED;
	} else {
		rc = report(vol, &o.s, NULL, o.fs);
	}
	if (cairn_unmount(o.fs)) {
		api_error(vol);
		rc = SCRUB_FAILED;
	}
	return rc;
}

int cmd_scrub(int argc, char **argv)
{
	const char *path = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help")) {
			puts("Usage: cairn scrub VOLUME|MOUNTPOINT\n"
			     "Read every data block of every file, on every tier, and verify it "
			     "against its checksum.\nA mounted volume is scrubbed online by its "
			     "daemon (root only); another is mounted for the scrub.\n"
			     "Exit: 0 no damage, 1 damage found (the files are listed), 2 usage "
			     "error, 3 the scrub could not run or was interrupted.");
			return 0;
		} else if (!path) {
			path = argv[i];
		} else {
			return usage_error("unexpected argument '%s'", argv[i]);
		}
	}
	if (!path)
		return usage_error("%s", "expected a VOLUME or a MOUNTPOINT");
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	struct cfuse_scrub_status st;
	char mp[PATH_MAX];
	int rc = cairn_fuse_scrub(path, "start", &st, mp, sizeof(mp));
	if (rc == 0)
		return scrub_mounted(path);
	if (rc == -EPERM || rc == -EACCES || (rc == -ENODATA && geteuid() != 0)) {
		fprintf(stderr,
		        "cairn: scrub: %s: %s (a mount is scrubbed through the %s attribute, "
		        "which only root may set)\n",
		        path, strerror(EACCES), CFUSE_SCRUB_XATTR);
		return SCRUB_FAILED;
	}
	if (rc == -EBUSY) {
		fprintf(stderr, "cairn: scrub: %s: a scrub of this mount is already running\n",
		        path);
		return SCRUB_FAILED;
	}
	if (rc != -ENOENT) {
		fprintf(stderr, "cairn: scrub: %s: %s\n", path, strerror(-rc));
		return SCRUB_FAILED;
	}
	return scrub_volume(path);
}
