/*
 * test_mkfs_safety.c - cairn_mkfs never destroys what is already there.
 *
 * Each test guards against a way mkfs once lost data:
 *   - a part's file that already held data (another volume's part, even a
 *     mounted one; a leftover VOLUME/log.part) was overwritten;
 *   - a symbolic link planted at a part's name (or at the temporary
 *     manifest's) was followed, overwriting the file it pointed to;
 *   - a reused part file kept its old, world-readable mode;
 *   - one file named as two parts (log and fast, two tiers, a tier and the
 *     volume's own files) was accepted and the volume was unusable;
 *   - two mkfs of one directory at once: one "succeeded" while the other's
 *     cleanup deleted its parts;
 *   - an unknown media kind was silently taken as "file";
 *   - a child that a mounting program forked (and that did not exec) kept
 *     the volume's locks, so the volume stayed "in use" after the program
 *     unmounted it, for as long as the child lived.
 * Scratch directories are in /dev/shm (CAIRN_TEST_DIR elsewhere).
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "cairn.h"
#include "fsck/fsck.h"
#include "testvol.h"
#include "volume/target.h"

#define OLD_DATA "precious data that mkfs must not touch\n"

/* A scratch directory with the volume directory root/vol not yet made. */
static struct testvol *scratch(void)
{
	umask(022);
	return tv_scratch("mkfs");
}

static char *path_in(const struct testvol *tv, const char *name)
{
	static char bufs[8][PATH_MAX];
	static int next;
	char *b = bufs[next++ % 8];
	snprintf(b, PATH_MAX, "%s/%s", tv->root, name);
	return b;
}

static void small_opts(struct cairn_mkfs_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->log_size = 8 * TV_MiB;
	o->fast_size = 32 * TV_MiB;
	o->media = CAIRN_MEDIA_EMUL;
}

static void write_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

static void assert_file_holds(const char *path, const char *text)
{
	char buf[256] = "";
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	assert_true(n >= 0);
	buf[n] = 0;
	assert_string_equal(buf, text);
}

static void assert_mode(const char *path, mode_t mode)
{
	struct stat st;
	assert_int_equal(lstat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, mode);
}

static int exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

/* cairn_mkfs fails with errno e, and its message holds `words`. */
static void mkfs_refused(const char *dir, const struct cairn_mkfs_opts *o, int e, const char *words)
{
	errno = 0;
	assert_int_equal(cairn_mkfs(dir, o), -1);
	if (errno != e)
		fail_msg("expected %s, got %s (%s)", strerror(e), strerror(errno),
		         cairn_last_error());
	if (words && !strstr(cairn_last_error(), words))
		fail_msg("message \"%s\" does not say \"%s\"", cairn_last_error(), words);
}

/* A file of data given as the fast part is left alone; forced, it is
 * taken, and its mode becomes 0600. */
static void test_existing_file_needs_force(void **state)
{
	(void)state;
	struct testvol *tv = scratch();
	struct cairn_mkfs_opts o;
	small_opts(&o);
	o.fast_path = path_in(tv, "old");
	o.log_path = path_in(tv, "log");
	write_file(o.fast_path, OLD_DATA, 0644);
	mkfs_refused(tv->dir, &o, EEXIST, "not empty");
	assert_file_holds(o.fast_path, OLD_DATA);
	/* What the failed mkfs made itself is gone again, the rest is not. */
	assert_false(exists(o.log_path));
	assert_false(exists(tv->dir));
	o.force = 1;
	assert_int_equal(cairn_mkfs(tv->dir, &o), 0);
	assert_mode(o.fast_path, 0600);
	assert_mode(o.log_path, 0600);
	assert_non_null(tv_mount(tv, NULL));
	assert_int_equal(tv_unmount(tv), 0);
	tv_destroy(tv);
}

/* An empty file is not data: it is taken without force, made 0600. */
static void test_empty_file_is_taken_private(void **state)
{
	(void)state;
	struct testvol *tv = scratch();
	struct cairn_mkfs_opts o;
	small_opts(&o);
	o.log_path = path_in(tv, "log");
	o.fast_path = path_in(tv, "fast");
	write_file(o.log_path, "", 0666);
	assert_int_equal(cairn_mkfs(tv->dir, &o), 0);
	assert_mode(o.log_path, 0600);
	tv_destroy(tv);
}

/* A leftover VOLUME/log.part (the default place on the file medium). */
static void test_leftover_default_part(void **state)
{
	(void)state;
	struct testvol *tv = scratch();
	struct cairn_mkfs_opts o;
	small_opts(&o);
	o.media = CAIRN_MEDIA_FILE;
	assert_int_equal(mkdir(tv->dir, 0755), 0);
	char log[PATH_MAX];
	snprintf(log, sizeof(log), "%s/log.part", tv->dir);
	write_file(log, OLD_DATA, 0644);
	mkfs_refused(tv->dir, &o, EEXIST, "log.part");
	assert_file_holds(log, OLD_DATA);
	char fast[PATH_MAX];
	snprintf(fast, sizeof(fast), "%s/fast.part", tv->dir);
	assert_false(exists(fast));
	assert_true(exists(tv->dir)); /* not made by mkfs: stays */
	tv_destroy(tv);
}

/* Symbolic links at a part's name, forced or not, and at the temporary
 * manifest's name, are never followed. */
static void test_symlinks_never_followed(void **state)
{
	(void)state;
	struct testvol *tv = scratch();
	struct cairn_mkfs_opts o;
	small_opts(&o);
	o.media = CAIRN_MEDIA_FILE;
	char *victim = path_in(tv, "victim"), *empty = path_in(tv, "empty");
	write_file(victim, OLD_DATA, 0644);
	write_file(empty, "", 0644);
	assert_int_equal(mkdir(tv->dir, 0755), 0);
	char link[PATH_MAX];
	snprintf(link, sizeof(link), "%s/log.part", tv->dir);
	assert_int_equal(symlink(victim, link), 0);
	mkfs_refused(tv->dir, &o, ELOOP, "symbolic link");
	o.force = 1;
	mkfs_refused(tv->dir, &o, ELOOP, "symbolic link");
	assert_file_holds(victim, OLD_DATA);
	/* A link to an empty file is refused too: it is the link that counts. */
	unlink(link);
	assert_int_equal(symlink(empty, link), 0);
	mkfs_refused(tv->dir, &o, ELOOP, "symbolic link");
	unlink(link);
	/* The temporary manifest: a planted link is removed, not written through. */
	char tmp[PATH_MAX];
	snprintf(tmp, sizeof(tmp), "%s/cairn.volume.tmp", tv->dir);
	assert_int_equal(symlink(victim, tmp), 0);
	o.force = 0;
	assert_int_equal(cairn_mkfs(tv->dir, &o), 0);
	assert_file_holds(victim, OLD_DATA);
	assert_false(exists(tmp));
	char manifest[PATH_MAX];
	snprintf(manifest, sizeof(manifest), "%s/cairn.volume", tv->dir);
	assert_mode(manifest, 0600);
	assert_non_null(tv_mount(tv, NULL));
	assert_int_equal(tv_unmount(tv), 0);
	tv_destroy(tv);
}

/* A part of a mounted volume, forced or not, and its directory's files
 * (the manifest too), are refused; the mounted volume goes on working. */
static void test_part_of_mounted_volume(void **state)
{
	(void)state;
	struct testvol *v1 = tv_create(NULL);
	assert_non_null(v1);
	assert_non_null(tv_mount(v1, NULL));
	assert_int_equal(cairn_mkdir(v1->fs, "/kept", 0755), 0);
	struct testvol *tv = scratch();
	struct cairn_mkfs_opts o;
	small_opts(&o);
	o.log_path = path_in(tv, "log");
	o.fast_path = v1->fast_part; /* outside v1's directory: its part lock */
	o.force = 1;
	mkfs_refused(tv->dir, &o, EBUSY, "mounted");
	o.fast_path = path_in(tv, "fast");
	o.ntiers = 1;
	char manifest[PATH_MAX];
	snprintf(manifest, sizeof(manifest), "%s/cairn.volume", v1->dir);
	o.tiers[0] = (struct cairn_tier_opts){.name = "ssd", .path = manifest, .size = TV_MiB};
	mkfs_refused(tv->dir, &o, EBUSY, "mounted");
	assert_false(exists(o.log_path));
	/* The volume itself, forced, while mounted. */
	struct cairn_mkfs_opts again = v1->mkfs;
	again.force = 1;
	mkfs_refused(v1->dir, &again, EBUSY, "in use");
	struct stat st;
	assert_int_equal(cairn_stat(v1->fs, "/kept", &st), 0);
	assert_int_equal(tv_unmount(v1), 0);
	assert_non_null(tv_mount(v1, NULL));
	assert_int_equal(cairn_stat(v1->fs, "/kept", &st), 0);
	assert_int_equal(tv_unmount(v1), 0);
	/* Unmounted: an existing volume is replaced only when forced. */
	again.force = 0;
	mkfs_refused(v1->dir, &again, EEXIST, "already exists");
	again.force = 1;
	assert_int_equal(cairn_mkfs(v1->dir, &again), 0);
	assert_non_null(tv_mount(v1, NULL));
	errno = 0;
	assert_int_equal(cairn_stat(v1->fs, "/kept", &st), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(tv_unmount(v1), 0);
	tv_destroy(v1);
	tv_destroy(tv);
}

/* One file as two parts, by any name, forced or not. */
static void test_one_file_two_parts(void **state)
{
	(void)state;
	struct testvol *tv = scratch();
	struct cairn_mkfs_opts o;
	small_opts(&o);
	char *x = path_in(tv, "x"), *y = path_in(tv, "y");
	for (int force = 0; force < 2; force++) {
		small_opts(&o);
		o.force = force;
		o.log_path = x;
		o.fast_path = x;
		mkfs_refused(tv->dir, &o, EINVAL, "two parts");
		o.fast_path = y;
		o.ntiers = 1;
		o.tiers[0] = (struct cairn_tier_opts){.name = "ssd", .path = y, .size = TV_MiB};
		mkfs_refused(tv->dir, &o, EINVAL, "two parts");
		o.ntiers = 2;
		char via_dot[PATH_MAX];
		snprintf(via_dot, sizeof(via_dot), "%s/./x", tv->root);
		o.tiers[0] =
		    (struct cairn_tier_opts){.name = "ssd", .path = via_dot, .size = TV_MiB};
		o.tiers[1] = (struct cairn_tier_opts){.name = "hdd", .path = x, .size = TV_MiB};
		mkfs_refused(tv->dir, &o, EINVAL, "two parts");
		assert_false(exists(x));
		assert_false(exists(y));
		assert_false(exists(tv->dir));
	}
	tv_destroy(tv);
}

/* A tier at one of the names the volume directory keeps for itself. */
static void test_reserved_names(void **state)
{
	(void)state;
	struct testvol *tv = scratch();
	static const char *names[] = {"cairn.volume", "cairn.volume.tmp", "log.part", "fast.part"};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		struct cairn_mkfs_opts o;
		small_opts(&o); /* emul: log and fast are in /dev/shm, or here */
		char p[PATH_MAX];
		snprintf(p, sizeof(p), "%s/%s", tv->dir, names[i]);
		o.ntiers = 1;
		o.tiers[0] = (struct cairn_tier_opts){.name = "ssd", .path = p, .size = TV_MiB};
		mkfs_refused(tv->dir, &o, EINVAL, NULL);
		assert_false(exists(tv->dir));
	}
	struct cairn_mkfs_opts o;
	small_opts(&o);
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/fast.part", tv->dir);
	o.log_path = p; /* the log in the fast part's place */
	mkfs_refused(tv->dir, &o, EINVAL, NULL);
	tv_destroy(tv);
}

static void test_bad_names_and_media(void **state)
{
	(void)state;
	struct testvol *tv = scratch();
	static const char *names[] = {"fast", "log"};
	for (int i = 0; i < 2; i++) {
		struct cairn_mkfs_opts o;
		small_opts(&o);
		o.ntiers = 1;
		o.tiers[0] = (struct cairn_tier_opts){
		    .name = names[i], .path = path_in(tv, "t"), .size = TV_MiB};
		mkfs_refused(tv->dir, &o, EINVAL, names[i]);
	}
	struct cairn_mkfs_opts o;
	small_opts(&o);
	o.media = (enum cairn_media)77;
	mkfs_refused(tv->dir, &o, EINVAL, "media");
	assert_false(exists(tv->dir));
	small_opts(&o);
	o.fast_size = 1024;
	mkfs_refused(tv->dir, &o, EINVAL, "1024 bytes");
	assert_true(strncmp(cairn_last_error(), "cairn: ", 7) != 0);
	small_opts(&o);
	o.inodes = 99999999999999ull;
	mkfs_refused(tv->dir, &o, EINVAL, "99999999999999 inodes");
	o.inodes = UINT64_MAX; /* would wrap in the layout's rounding */
	mkfs_refused(tv->dir, &o, EINVAL, "inodes");
	/* A mount given an unknown media kind is refused as well. */
	small_opts(&o);
	TV_OK(cairn_mkfs(tv->dir, &o));
	struct cairn_mount_opts mo = {.media = (enum cairn_media)77};
	errno = 0;
	assert_null(cairn_mount(tv->dir, &mo));
	assert_int_equal(errno, EINVAL);
	assert_non_null(strstr(cairn_last_error(), "media"));
	tv_destroy(tv);
}

/* While another process holds the volume directory's lock (a mount, or a
 * mkfs in progress), mkfs fails with EBUSY and touches nothing. */
static void test_mkfs_waits_for_no_one(void **state)
{
	(void)state;
	struct testvol *tv = scratch();
	struct cairn_mkfs_opts o;
	small_opts(&o);
	o.media = CAIRN_MEDIA_FILE;
	assert_int_equal(mkdir(tv->dir, 0755), 0);
	char log[PATH_MAX];
	snprintf(log, sizeof(log), "%s/log.part", tv->dir);
	write_file(log, "", 0600); /* the other mkfs's part, not yet written */
	int fd = open(tv->dir, O_RDONLY | O_DIRECTORY);
	assert_true(fd >= 0);
	assert_int_equal(flock(fd, LOCK_EX), 0);
	pid_t pid = fork();
	if (pid == 0)
		_exit(cairn_mkfs(tv->dir, &o) == -1 && errno == EBUSY ? 0 : 1);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	close(fd);
	assert_true(exists(log));
	char fast[PATH_MAX];
	snprintf(fast, sizeof(fast), "%s/fast.part", tv->dir);
	assert_false(exists(fast));
	tv_destroy(tv);
}

/* Two processes make one volume at once: one succeeds, the other fails
 * cleanly, and the volume made is whole. */
static void test_concurrent_mkfs(void **state)
{
	(void)state;
	for (int round = 0; round < 20; round++) {
		struct testvol *tv = scratch();
		struct cairn_mkfs_opts o;
		small_opts(&o);
		o.media = CAIRN_MEDIA_FILE; /* parts in the volume directory */
		o.log_size = 1 * TV_MiB;
		o.fast_size = 4 * TV_MiB;
		pid_t pid[2];
		for (int i = 0; i < 2; i++) {
			pid[i] = fork();
			assert_true(pid[i] >= 0);
			if (pid[i] == 0)
				_exit(cairn_mkfs(tv->dir, &o) == 0 ? 0 : 1);
		}
		int ok = 0;
		for (int i = 0; i < 2; i++) {
			int st;
			assert_int_equal(waitpid(pid[i], &st, 0), pid[i]);
			assert_true(WIFEXITED(st));
			ok += WEXITSTATUS(st) == 0;
		}
		assert_int_equal(ok, 1);
		assert_non_null(tv_mount(tv, NULL));
		assert_int_equal(cairn_mkdir(tv->fs, "/d", 0755), 0);
		assert_int_equal(tv_unmount(tv), 0);
		tv_destroy(tv);
	}
}

/* The status of a child that tries to mount tv: 0 mounted, 1 EBUSY, 2
 * anything else. */
static int mount_in_child(struct testvol *tv)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		cairn_fs *fs = cairn_mount(tv->dir, NULL);
		if (fs)
			_exit(cairn_unmount(fs) == 0 ? 0 : 2);
		_exit(errno == EBUSY ? 1 : 2);
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	return WEXITSTATUS(st);
}

/* Whether someone holds a flock on path (a new open file description's
 * lock conflicts with any other, in this process too). */
static int flocked(const char *path)
{
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	int held = flock(fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK;
	close(fd);
	return held;
}

/* The write end of the pipe that keeps fork_waiting's child alive. */
static int waiting_gate = -1;

/* Forks a child that does nothing until end_waiting, and returns once its
 * fork handlers have run (the parent's fork returns before they do). */
static pid_t fork_waiting(void)
{
	int gate[2], ready[2];
	assert_int_equal(pipe(gate), 0);
	assert_int_equal(pipe(ready), 0);
	pid_t child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		char c = 1;
		close(gate[1]);
		(void)!write(ready[1], &c, 1);
		(void)!read(gate[0], &c, 1);
		_exit(0);
	}
	close(gate[0]);
	close(ready[1]);
	char c;
	assert_int_equal(read(ready[0], &c, 1), 1);
	close(ready[0]);
	waiting_gate = gate[1];
	return child;
}

static void end_waiting(pid_t child)
{
	close(waiting_gate);
	waiting_gate = -1;
	int st;
	assert_int_equal(waitpid(child, &st, 0), child);
}

/* A child forked by a program that has the volume mounted keeps none of
 * its locks: the volume (whose parts lie outside its directory, each
 * locked) is free once the program unmounts it, while the child lives;
 * and the child's going leaves the program's own locks standing. */
static void test_forked_child_keeps_no_lock(void **state)
{
	(void)state;
	struct testvol *tv = tv_create(NULL);
	assert_non_null(tv);
	assert_non_null(tv_mount(tv, NULL));
	pid_t child = fork_waiting();
	assert_int_equal(mount_in_child(tv), 1); /* still the program's */
	assert_true(flocked(tv->dir));
	assert_true(flocked(tv->fast_part));
	assert_int_equal(tv_unmount(tv), 0);
	assert_int_equal(mount_in_child(tv), 0);
	assert_non_null(tv_mount(tv, NULL)); /* and the program's again */
	assert_int_equal(mount_in_child(tv), 1);
	end_waiting(child);
	assert_int_equal(mount_in_child(tv), 1);
	assert_true(flocked(tv->dir));
	assert_true(flocked(tv->log_part));
	assert_int_equal(tv_unmount(tv), 0);
	tv_destroy(tv);
}

/* A child forked while mkfs (or an online tier add) holds the locks of
 * the directory it makes and of a file it formats keeps neither once
 * they are let go. */
static void test_forked_child_keeps_no_mkfs_lock(void **state)
{
	(void)state;
	struct testvol *tv = tv_create(NULL);
	assert_non_null(tv);
	char dir[PATH_MAX], part[PATH_MAX + 16], err[512];
	snprintf(dir, sizeof(dir), "%s/newvol", tv->root);
	snprintf(part, sizeof(part), "%s/new.part", tv->root);
	assert_int_equal(mkdir(dir, 0700), 0);
	int lock = volume_lock_dir(dir, 1, err, sizeof(err));
	assert_true(lock >= 0);
	struct part_target t = {.path = part, .what = "tier new", .fd = -1};
	assert_int_equal(target_open(&t, err, sizeof(err)), 0);
	assert_int_equal(target_check(&t, dir, 0, err, sizeof(err)), 0);
	pid_t child = fork_waiting();
	assert_true(flocked(dir));
	assert_true(flocked(part));
	target_close(&t, 0);
	volume_unlock(lock);
	assert_false(flocked(dir));
	assert_false(flocked(part));
	end_waiting(child);
	unlink(part);
	rmdir(dir);
	tv_destroy(tv);
}

/* A child of fork that calls into its parent's mount anyway gets EIO
 * from every call and writes nothing: the parent's log, which the child
 * shares, would otherwise take two writers.  The parent's mount works
 * on, and the volume holds exactly what the parent wrote. */
static void test_forked_child_cannot_use_mount(void **state)
{
	(void)state;
	struct testvol *tv = tv_create(NULL);
	assert_non_null(tv);
	cairn_fs *fs = tv_mount(tv, NULL);
	assert_non_null(fs);
	int fd = cairn_open(fs, "/f", O_CREAT | O_RDWR, 0644);
	assert_true(fd >= 0);
	assert_int_equal(cairn_pwrite(fs, fd, "parent", 6, 0), 6);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		alarm(20); /* a call that waits for the parent's threads hangs */
		int bad = 0;
		struct stat st;
		char buf[8];
#define EIO_FROM(call) (errno = 0, bad |= ((call) != -1 || errno != EIO))
		EIO_FROM(cairn_pwrite(fs, fd, "child!", 6, 0));
		EIO_FROM(cairn_open(fs, "/g", O_CREAT | O_RDWR, 0644));
		EIO_FROM(cairn_mkdir(fs, "/d", 0755));
		EIO_FROM(cairn_stat(fs, "/f", &st));
		EIO_FROM(cairn_pread(fs, fd, buf, 6, 0));
		EIO_FROM(cairn_fsync(fs, fd));
		EIO_FROM(cairn_sync(fs));
		EIO_FROM(cairn_close(fs, fd));
		EIO_FROM(cairn_unmount(fs));
#undef EIO_FROM
		errno = 0;
		bad |= cairn_opendir(fs, "/") != NULL || errno != EIO;
		_exit(bad);
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	assert_int_equal(cairn_pwrite(fs, fd, "again", 5, 6), 5);
	assert_int_equal(cairn_close(fs, fd), 0);
	assert_int_equal(tv_unmount(tv), 0);

	struct fsck_opts o = {.repair = 0};
	struct fsck_report r;
	assert_int_equal(fsck_run(tv->dir, &o, &r), FSCK_CLEAN);
	fsck_report_free(&r);
	fs = tv_mount(tv, NULL);
	assert_non_null(fs);
	char buf[16] = "";
	fd = cairn_open(fs, "/f", O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(cairn_pread(fs, fd, buf, sizeof(buf) - 1, 0), 11);
	assert_string_equal(buf, "parentagain");
	assert_int_equal(cairn_close(fs, fd), 0);
	struct stat sb;
	assert_int_equal(cairn_stat(fs, "/g", &sb), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(cairn_stat(fs, "/d", &sb), -1);
	assert_int_equal(tv_unmount(tv), 0);
	tv_destroy(tv);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_existing_file_needs_force),
	    cmocka_unit_test(test_empty_file_is_taken_private),
	    cmocka_unit_test(test_leftover_default_part),
	    cmocka_unit_test(test_symlinks_never_followed),
	    cmocka_unit_test(test_part_of_mounted_volume),
	    cmocka_unit_test(test_one_file_two_parts),
	    cmocka_unit_test(test_reserved_names),
	    cmocka_unit_test(test_bad_names_and_media),
	    cmocka_unit_test(test_mkfs_waits_for_no_one),
	    cmocka_unit_test(test_concurrent_mkfs),
	    cmocka_unit_test(test_forked_child_keeps_no_lock),
	    cmocka_unit_test(test_forked_child_keeps_no_mkfs_lock),
	    cmocka_unit_test(test_forked_child_cannot_use_mount),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
