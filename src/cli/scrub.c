/*
 * scrub.c - `cairn scrub VOLUME|MOUNTPOINT`: every data block of the
 * volume read and verified against its checksum, with progress on a
 * terminal and a list of the damaged files at the end.
 *
 * Owns: the scrub command's output and exit codes.
 * May call: the public API.
 *
 * A volume that a daemon serves (mounted, or `cairn serve`) is scrubbed by
 * the daemon, online, asked as a client (cairn_attach; root only); a
 * volume no daemon serves is mounted here for the scrub, which recovers
 * its log first as any mount does.  Exit codes: 0 every block verified, 1 damage found, 2 usage
 * error, 3 the scrub could not run or was cancelled.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cairn.h"
#include "cli/cli.h"

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

/* prefix: the mount point when the volume was named by it, so that the
 * damaged files are named as the user sees them. */
static int report(const char *what, const struct cairn_scrub *s, const char *prefix, cairn_fs *fs)
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
	char path[PATH_MAX] = "";
	volume_walk(fs, path, 0, 0);
	for (unsigned k = 0; k < s->listed; k++) {
		const struct cairn_scrub_damage *d = &s->damaged[k];
		printf("  %s%s: offset %llu (inode %llu, tier %s block %llu)\n",
		       found[k][0] ? prefix : "",
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

/* Runs the scrub of fs (a volume mounted here, or a handle on the daemon
 * that serves it, which then scrubs while it goes on serving) on a thread,
 * drawing its progress meanwhile. */
static int scrub_fs(const char *what, const char *prefix, cairn_fs *fs)
{
	static struct offline o;
	memset(&o, 0, sizeof(o));
	o.fs = fs;
	pthread_t t;
	if (pthread_create(&t, NULL, offline_thread, &o))
		return SCRUB_FAILED;
	int tty = isatty(STDERR_FILENO);
	while (!__atomic_load_n(&o.done, __ATOMIC_ACQUIRE)) {
		sleep_ms(200);
		if (interrupted)
			__atomic_store_n(&o.s.cancel, 1, __ATOMIC_RELAXED);
		if (tty)
			show_progress(&o.s);
	}
	pthread_join(t, NULL);
	if (!o.rc)
		return report(what, &o.s, prefix, o.fs);
	if (o.err == EPERM)
		fprintf(stderr,
		        "\ncairn: scrub: %s: %s (only root may scrub a volume its daemon "
		        "serves)\n",
		        what, strerror(EPERM));
	else if (o.err == EBUSY)
		fprintf(stderr, "\ncairn: scrub: %s: a scrub of this volume is already running\n",
		        what);
	else
		fprintf(stderr, "\ncairn: scrub: %s: %s\n", what,
		        o.err == ECANCELED ? "cancelled" : strerror(o.err));
	return SCRUB_FAILED;
}

/* A volume no daemon serves: mounted here for the scrub. */
static int scrub_volume(const char *vol)
{
	struct cairn_mount_opts mo = {.no_digest_thread = 1};
	cairn_fs *fs = cairn_mount(vol, &mo);
	if (!fs) {
		api_error(vol);
		return SCRUB_FAILED;
	}
	int rc = scrub_fs(vol, "", fs);
	if (cairn_unmount(fs)) {
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
	/* A volume its daemon serves (a mount's or `cairn serve`): the daemon
	 * scrubs it online. */
	cairn_fs *served = cairn_attach(path);
	if (served) {
		/* Named by its mount point (not the volume, which holds the
		 * manifest): the files are named under it. */
		char manifest[PATH_MAX], mp[PATH_MAX] = "";
		snprintf(manifest, sizeof(manifest), "%s/cairn.volume", path);
		if (access(manifest, F_OK) && !realpath(path, mp))
			mp[0] = 0;
		int rc = scrub_fs(path, mp, served);
		cairn_unmount(served);
		return rc;
	}
	if (errno != ENOENT) {
		api_error(path);
		return SCRUB_FAILED;
	}
	return scrub_volume(path);
}
