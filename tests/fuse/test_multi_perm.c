/*
 * test_multi_perm.c - the volume daemon checks each attached process's
 * rights as POSIX says, with the credentials the kernel vouches for.
 *
 *   1. a daemon run by root; a process that dropped to uid/gid 65534 with
 *      supplementary group 4242 attaches and meets, through the daemon,
 *      the checks the kernel would make: search permission on paths, write
 *      permission on directories, the sticky bit, read and write
 *      permission to open and truncate, ownership for chmod and explicit
 *      times, root for chown and trusted.* attributes, group permission
 *      through a supplementary group, setgid directories, set-ID bits
 *      cleared by its writes and chowns; what it creates is its own.  It cannot read the volume's
 * parts directly either;
 *   2. a daemon run by uid 65534 admits that uid and root, and refuses
 *      every other user (EACCES).
 * Afterwards the daemon exits 0 on SIGTERM and fsck finds the volume
 * clean.  Skipped unless root with /dev/fuse.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "multitest.h"

#define NOBODY 65534
#define GROUP 4242 /* the child's supplementary group */
#define NOTGROUP 4243

static struct multi_scratch g;

static int group_setup(void **state)
{
	return multi_setup(&g, "mperm");
}

static int group_teardown(void **state)
{
	return multi_teardown(&g);
}

/* Becomes uid/gid `uid` with the given supplementary groups. */
static void become(uid_t uid, const gid_t *groups, int ngroups)
{
	if (setgroups((size_t)ngroups, groups) || setgid(uid) || setuid(uid))
		C_FAIL("cannot become uid %d: %s", (int)uid, strerror(errno));
	C_TRUE(getuid() == uid && geteuid() == uid);
}

static void make_file(cairn_fs *fs, const char *path, mode_t mode, const char *text)
{
	int fd = cairn_open(fs, path, O_CREAT | O_EXCL | O_WRONLY, mode);
	CHECK(fd);
	assert_int_equal(cairn_write(fs, fd, text, strlen(text)), (ssize_t)strlen(text));
	CHECK(cairn_close(fs, fd));
	CHECK(cairn_chmod(fs, path, mode)); /* exact, umask or not */
}

/* The tree the other user meets, made by root through the daemon. */
static void make_tree(cairn_fs *fs)
{
	make_file(fs, "/secret", 0600, "secret");
	make_file(fs, "/ro", 0644, "readable");
	make_file(fs, "/rw", 0666, "writable");
	make_file(fs, "/open-suid", 06777, "set-ID");
	make_file(fs, "/open-sgid-noexec", 02666, "locking");
	make_file(fs, "/open-later", 0666, "set-ID later");
	CHECK(cairn_setxattr(fs, "/ro", "user.note", "root's", 6, 0));
	CHECK(cairn_setxattr(fs, "/secret", "user.note", "hidden", 6, 0));
	CHECK(cairn_mkdir(fs, "/rootdir", 0755));
	make_file(fs, "/rootdir/f", 0644, "in rootdir");
	CHECK(cairn_mkdir(fs, "/open", 0777));
	CHECK(cairn_chmod(fs, "/open", 0777));
	make_file(fs, "/open/rootfile", 0666, "root's, in open");
	CHECK(cairn_mkdir(fs, "/sticky", 0777));
	CHECK(cairn_chmod(fs, "/sticky", 01777));
	make_file(fs, "/sticky/rootfile", 0666, "root's, in sticky");
	CHECK(cairn_mkdir(fs, "/private", 0700));
	make_file(fs, "/private/f", 0644, "private");
	CHECK(cairn_mkdir(fs, "/xonly", 0711));
	make_file(fs, "/xonly/f", 0644, "search only");
	make_file(fs, "/grp", 0640, "group");
	CHECK(cairn_chown(fs, "/grp", 0, GROUP));
	make_file(fs, "/grp-no", 0640, "other group");
	CHECK(cairn_chown(fs, "/grp-no", 0, NOTGROUP));
	make_file(fs, "/grp-w", 0660, "group writable");
	CHECK(cairn_chown(fs, "/grp-w", 0, GROUP));
	make_file(fs, "/suid-ro", 04755, "set-ID, readable");
	CHECK(cairn_mkdir(fs, "/sgid-other", 0777));
	CHECK(cairn_chown(fs, "/sgid-other", 0, NOTGROUP));
	CHECK(cairn_chmod(fs, "/sgid-other", 02777));
	CHECK(cairn_mkdir(fs, "/sgid", 0777));
	CHECK(cairn_chown(fs, "/sgid", 0, GROUP));
	CHECK(cairn_chmod(fs, "/sgid", 02777));
	struct stat st;
	CHECK(cairn_stat(fs, "/sticky", &st));
	assert_int_equal(st.st_mode & 07777, 01777);
	CHECK(cairn_stat(fs, "/sgid", &st));
	assert_int_equal(st.st_mode & 07777, 02777);
}

/* What uid 65534 (groups 65534 and 4242) may and may not do. */
static void other_user(const char *vol)
{
	gid_t groups[] = {GROUP};
	become(NOBODY, groups, 1);
	watchdog(20, "the other user's calls");

	/* The volume's parts are 0600: only the daemon reads them. */
	char part[PATH_MAX];
	snprintf(part, sizeof(part), "%s/fast.part", vol);
	C_ERR(open(part, O_RDONLY), EACCES);
	snprintf(part, sizeof(part), "%s/log.part", vol);
	C_ERR(open(part, O_RDWR), EACCES);

	cairn_fs *fs = cairn_attach(vol);
	if (!fs)
		C_FAIL("cairn_attach: %s", strerror(errno));
	struct stat st;
	char buf[256];
	int fd;

	/* Reading needs r, writing w, truncating w. */
	C_ERR(cairn_open(fs, "/secret", O_RDONLY), EACCES);
	C_ERR(cairn_getxattr(fs, "/secret", "user.note", buf, sizeof(buf)), EACCES);
	C_OK(cairn_stat(fs, "/secret", &st)); /* stat needs no right on the file */
	C_TRUE(st.st_uid == 0 && (st.st_mode & 07777) == 0600);
	C_OK(fd = cairn_open(fs, "/ro", O_RDONLY));
	C_TRUE(cairn_read(fs, fd, buf, sizeof(buf)) == 8 && !memcmp(buf, "readable", 8));
	C_ERR(cairn_write(fs, fd, "x", 1), EBADF);
	C_OK(cairn_close(fs, fd));
	C_ERR(cairn_open(fs, "/ro", O_WRONLY), EACCES);
	C_ERR(cairn_open(fs, "/ro", O_RDWR), EACCES);
	C_ERR(cairn_open(fs, "/ro", O_RDWR | O_TRUNC), EACCES);
	C_ERR(cairn_open(fs, "/ro", O_WRONLY | O_APPEND), EACCES);
	C_ERR(cairn_truncate(fs, "/ro", 0), EACCES);
	C_OK(cairn_stat(fs, "/ro", &st));
	C_TRUE(st.st_size == 8); /* nothing truncated it */
	C_TRUE(cairn_getxattr(fs, "/ro", "user.note", buf, sizeof(buf)) == 6);
	C_ERR(cairn_setxattr(fs, "/ro", "user.mine", "x", 1, 0), EACCES);
	C_ERR(cairn_removexattr(fs, "/ro", "user.note"), EACCES);
	/* A 0666 file: writable by all, yet only its owner changes its mode
	 * or sets explicit times; anyone who may write sets them to now. */
	C_OK(fd = cairn_open(fs, "/rw", O_WRONLY | O_TRUNC));
	C_TRUE(cairn_write(fs, fd, "mine now", 8) == 8);
	C_OK(cairn_close(fs, fd));
	C_OK(cairn_utimens(fs, "/rw", NULL));
	struct timespec ts[2] = {{1000000000, 0}, {1000000000, 0}};
	C_ERR(cairn_utimens(fs, "/rw", ts), EPERM);
	C_ERR(cairn_chmod(fs, "/rw", 0777), EPERM);
	C_ERR(cairn_chmod(fs, "/ro", 0666), EPERM);
	C_ERR(cairn_chown(fs, "/ro", NOBODY, NOBODY), EPERM);
	C_ERR(cairn_chown(fs, "/rw", (uid_t)-1, GROUP), EPERM); /* not its owner */
	C_ERR(cairn_utimens(fs, "/ro", NULL), EACCES);          /* neither owner nor writer */

	/* Changing names needs w and x on the directory. */
	C_ERR(cairn_open(fs, "/new", O_CREAT | O_WRONLY, 0644), EACCES);
	C_ERR(cairn_open(fs, "/rootdir/new", O_CREAT | O_WRONLY, 0644), EACCES);
	C_ERR(cairn_mkdir(fs, "/rootdir/d", 0755), EACCES);
	C_ERR(cairn_symlink(fs, "x", "/rootdir/l"), EACCES);
	C_ERR(cairn_unlink(fs, "/rootdir/f"), EACCES);
	C_ERR(cairn_rmdir(fs, "/rootdir"), EACCES);
	C_ERR(cairn_rename(fs, "/ro", "/open/ro", 0), EACCES); /* from / */
	C_ERR(cairn_link(fs, "/rw", "/rootdir/ln"), EACCES);
	C_OK(cairn_stat(fs, "/rootdir/f", &st));

	/* Search permission on every directory of a path. */
	C_ERR(cairn_stat(fs, "/private/f", &st), EACCES);
	C_ERR(cairn_open(fs, "/private/f", O_RDONLY), EACCES);
	C_ERR(cairn_open(fs, "/private/new", O_CREAT | O_WRONLY, 0644), EACCES);
	errno = 0;
	C_TRUE(!cairn_opendir(fs, "/private") && errno == EACCES);
	C_OK(cairn_stat(fs, "/xonly/f", &st)); /* x without r: reach, not list */
	errno = 0;
	C_TRUE(!cairn_opendir(fs, "/xonly") && errno == EACCES);

	/* In a 0777 directory it creates, and what it creates is its own. */
	C_OK(fd = cairn_open(fs, "/open/mine", O_CREAT | O_EXCL | O_RDWR, 0640));
	C_TRUE(cairn_write(fs, fd, "nobody's", 8) == 8);
	C_OK(cairn_fstat(fs, fd, &st));
	C_TRUE(st.st_uid == NOBODY && st.st_gid == NOBODY);
	C_TRUE((st.st_mode & 07777) == 0640);
	C_OK(cairn_close(fs, fd));
	C_OK(cairn_mkdir(fs, "/open/mydir", 0750));
	C_OK(cairn_stat(fs, "/open/mydir", &st));
	C_TRUE(st.st_uid == NOBODY && st.st_gid == NOBODY);
	C_OK(cairn_chmod(fs, "/open/mine", 0600));
	C_OK(cairn_utimens(fs, "/open/mine", ts));
	C_OK(cairn_stat(fs, "/open/mine", &st));
	C_TRUE((st.st_mode & 07777) == 0600 && st.st_mtim.tv_sec == 1000000000);
	/* Its owner may give it to one of its groups, not to another, and
	 * never give it away. */
	C_OK(cairn_chown(fs, "/open/mine", (uid_t)-1, GROUP));
	C_ERR(cairn_chown(fs, "/open/mine", (uid_t)-1, NOTGROUP), EPERM);
	C_ERR(cairn_chown(fs, "/open/mine", 0, (gid_t)-1), EPERM);
	C_OK(cairn_stat(fs, "/open/mine", &st));
	C_TRUE(st.st_uid == NOBODY && st.st_gid == GROUP);
	C_OK(cairn_setxattr(fs, "/open/mine", "user.mine", "yes", 3, 0));
	C_ERR(cairn_setxattr(fs, "/open/mine", "trusted.x", "no", 2, 0), EPERM);
	/* A scrub reads every block of the volume: root's alone. */
	struct cairn_scrub sc;
	memset(&sc, 0, sizeof(sc));
	C_ERR(cairn_scrub(fs, &sc), EPERM);
	/* Without the sticky bit, anyone who may write the directory removes
	 * and renames names in it, root's too. */
	C_OK(cairn_rename(fs, "/open/rootfile", "/open/renamed", 0));
	C_OK(cairn_unlink(fs, "/open/renamed"));

	/* The sticky bit: root's file stays, its own goes. */
	C_ERR(cairn_unlink(fs, "/sticky/rootfile"), EPERM);
	C_ERR(cairn_rename(fs, "/sticky/rootfile", "/sticky/moved", 0), EPERM);
	C_ERR(cairn_rename(fs, "/sticky/rootfile", "/open/moved", 0), EPERM);
	C_OK(fd = cairn_open(fs, "/sticky/mine", O_CREAT | O_WRONLY, 0644));
	C_OK(cairn_close(fs, fd));
	C_ERR(cairn_rename(fs, "/sticky/mine", "/sticky/rootfile", 0), EPERM); /* replaces root's */
	C_OK(cairn_rename(fs, "/sticky/mine", "/sticky/mine2", 0));
	C_OK(cairn_unlink(fs, "/sticky/mine2"));
	C_OK(cairn_stat(fs, "/sticky/rootfile", &st));

	/* A write by anyone but root clears set-user-ID, and set-group-ID
	 * when the group may execute (else it marks mandatory locking). */
	C_OK(fd = cairn_open(fs, "/open-suid", O_WRONLY));
	C_TRUE(cairn_write(fs, fd, "w", 1) == 1);
	C_OK(cairn_close(fs, fd));
	C_OK(cairn_stat(fs, "/open-suid", &st));
	C_TRUE((st.st_mode & 07777) == 0777);
	C_OK(fd = cairn_open(fs, "/open-sgid-noexec", O_WRONLY));
	C_TRUE(cairn_pwrite(fs, fd, "w", 1, 0) == 1);
	C_OK(cairn_close(fs, fd));
	C_OK(cairn_stat(fs, "/open-sgid-noexec", &st));
	C_TRUE((st.st_mode & 07777) == 02666);
	/* Its owner giving a file to another group clears set-user-ID. */
	C_OK(fd = cairn_open(fs, "/open/mine-suid", O_CREAT | O_WRONLY, 0755));
	C_OK(cairn_close(fs, fd));
	C_OK(cairn_chmod(fs, "/open/mine-suid", 04755));
	C_OK(cairn_stat(fs, "/open/mine-suid", &st));
	C_TRUE((st.st_mode & 07777) == 04755);
	C_OK(cairn_chown(fs, "/open/mine-suid", (uid_t)-1, GROUP));
	C_OK(cairn_stat(fs, "/open/mine-suid", &st));
	C_TRUE((st.st_mode & 07777) == 0755);
	/* Set-user-ID given to a file open for writing: the next write
	 * clears it (a client's own log does not take that write). */
	C_OK(fd = cairn_open(fs, "/open/mine-w", O_CREAT | O_WRONLY, 0755));
	C_TRUE(cairn_write(fs, fd, "a", 1) == 1);
	C_OK(cairn_chmod(fs, "/open/mine-w", 04755));
	C_TRUE(cairn_write(fs, fd, "b", 1) == 1);
	C_OK(cairn_close(fs, fd));
	C_OK(cairn_stat(fs, "/open/mine-w", &st));
	C_TRUE((st.st_mode & 07777) == 0755 && st.st_size == 2);

	/* Group permission through a supplementary group. */
	C_OK(fd = cairn_open(fs, "/grp", O_RDONLY));
	C_TRUE(cairn_read(fs, fd, buf, sizeof(buf)) == 5);
	C_OK(cairn_close(fs, fd));
	C_ERR(cairn_open(fs, "/grp", O_WRONLY), EACCES);
	C_ERR(cairn_open(fs, "/grp-no", O_RDONLY), EACCES);
	C_OK(fd = cairn_open(fs, "/grp-w", O_WRONLY));
	C_OK(cairn_close(fs, fd));

	/* A setgid directory gives its group to what is made in it, and its
	 * setgid bit to directories. */
	C_OK(fd = cairn_open(fs, "/sgid/f", O_CREAT | O_WRONLY, 0644));
	C_OK(cairn_close(fs, fd));
	C_OK(cairn_stat(fs, "/sgid/f", &st));
	C_TRUE(st.st_uid == NOBODY && st.st_gid == GROUP);
	C_OK(cairn_mkdir(fs, "/sgid/d", 0755));
	C_OK(cairn_stat(fs, "/sgid/d", &st));
	C_TRUE(st.st_gid == GROUP && (st.st_mode & S_ISGID));

	/* Set-ID bits go only with a change the descriptor may make: a
	 * read-only descriptor's ftruncate fails and leaves them. */
	C_OK(fd = cairn_open(fs, "/suid-ro", O_RDONLY));
	C_TRUE(cairn_ftruncate(fs, fd, 0) == -1);
	C_TRUE(cairn_write(fs, fd, "w", 1) == -1);
	C_OK(cairn_close(fs, fd));
	C_OK(cairn_stat(fs, "/suid-ro", &st));
	C_TRUE((st.st_mode & 07777) == 04755 && st.st_size == 16);
	/* Access mode 3 asks for read and write permission, as Linux. */
	C_ERR(cairn_open(fs, "/secret", 3), EACCES);
	C_ERR(cairn_open(fs, "/ro", 3), EACCES);
	/* No set-group-ID file in a group the caller is not in. */
	C_OK(fd = cairn_open(fs, "/sgid-other/x", O_CREAT | O_WRONLY, 02755));
	C_OK(cairn_close(fs, fd));
	C_OK(cairn_stat(fs, "/sgid-other/x", &st));
	C_TRUE(st.st_gid == NOTGROUP && (st.st_mode & 07777) == 0755);
	/* A directory handle keeps its directory: removed, its number is
	 * not given to the next directory, whose names it never lists. */
	C_OK(cairn_mkdir(fs, "/open/dh", 0755));
	cairn_dir *dh = cairn_opendir(fs, "/open/dh");
	C_TRUE(dh != NULL);
	C_OK(cairn_rmdir(fs, "/open/dh"));
	C_OK(cairn_mkdir(fs, "/open/dh2", 0755));
	C_OK(fd = cairn_open(fs, "/open/dh2/inside", O_CREAT | O_WRONLY, 0644));
	C_OK(cairn_close(fs, fd));
	for (struct cairn_dirent *e; (e = cairn_readdir(dh));)
		C_TRUE(strcmp(e->d_name, "inside") != 0);
	C_OK(cairn_closedir(dh));
	/* Names as Linux takes them: a file named with a trailing slash, an
	 * empty buffer for readlink, times both left alone, ACLs. */
	C_OK(fd = cairn_open(fs, "/open/nf", O_CREAT | O_WRONLY, 0644));
	C_OK(cairn_close(fs, fd));
	C_ERR(cairn_rename(fs, "/open/nf", "/open/nf2/", 0), ENOTDIR);
	C_ERR(cairn_link(fs, "/open/nf", "/open/nf3/"), ENOTDIR);
	C_OK(cairn_symlink(fs, "/open/nf", "/open/lnk"));
	C_ERR(cairn_readlink(fs, "/open/lnk", buf, 0), EINVAL);
	struct timespec omit[2] = {{0, UTIME_OMIT}, {0, UTIME_OMIT}};
	C_OK(cairn_utimens(fs, "/ro", omit));
	C_ERR(cairn_setxattr(fs, "/open/nf", "system.posix_acl_access", "x", 1, 0), EOPNOTSUPP);

	/* Asking for another's descriptors gets nothing: numbers are per
	 * handle (root's handle has some open now). */
	for (int n = 0; n < 16; n++)
		C_ERR(cairn_fstat(fs, n, &st), EBADF);
	C_OK(cairn_unmount(fs));
	_exit(0);
}

/* The set-user-ID bit given after the other user opened the file is
 * cleared by its next write all the same: what counts is the mode when
 * it writes. */
static void setid_after_open(cairn_fs *fs)
{
	int opened[2], go[2];
	CHECK(pipe(opened));
	CHECK(pipe(go));
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		become(NOBODY, NULL, 0);
		watchdog(20, "the writer of /open-later");
		cairn_fs *mine = cairn_attach(g.vol);
		if (!mine)
			C_FAIL("cairn_attach: %s", strerror(errno));
		int fd;
		C_OK(fd = cairn_open(mine, "/open-later", O_WRONLY));
		C_TRUE(write(opened[1], "o", 1) == 1);
		char c;
		C_TRUE(read(go[0], &c, 1) == 1);
		C_TRUE(cairn_pwrite(mine, fd, "w", 1, 0) == 1);
		C_OK(cairn_close(mine, fd));
		C_OK(cairn_unmount(mine));
		_exit(0);
	}
	char c;
	assert_int_equal(read(opened[0], &c, 1), 1);
	CHECK(cairn_chmod(fs, "/open-later", 04666));
	assert_int_equal(write(go[1], "g", 1), 1);
	child_ok(pid, 20000, "the writer of /open-later");
	struct stat st;
	CHECK(cairn_stat(fs, "/open-later", &st));
	if ((st.st_mode & 07777) != 0666)
		fail_msg("/open-later is %o after another user's write: set-user-ID kept",
		         (unsigned)(st.st_mode & 07777));
	close(opened[0]);
	close(opened[1]);
	close(go[0]);
	close(go[1]);
}

static void test_other_user(void **state)
{
	watchdog(60, "test_other_user");
	cairn_fs *fs;
	serve_and_attach(g.vol, &g.daemon, &fs);
	make_tree(fs);
	/* Root's own descriptors, open while the other user looks for them. */
	int fds[4];
	for (int i = 0; i < 4; i++)
		CHECK(fds[i] = cairn_open(fs, "/secret", O_RDONLY));
	/* The directory that holds the volume is 0755 and its parts are
	 * 0600, as mkfs makes them. */
	struct stat st;
	CHECK(stat(g.vol, &st));
	CHECK(chmod(g.vol, 0755));
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		other_user(g.vol);
	child_ok(pid, 30000, "the other user");
	setid_after_open(fs);

	/* Root sees what it did, and reads past every mode. */
	CHECK(cairn_stat(fs, "/open/mine", &st));
	assert_int_equal(st.st_uid, NOBODY);
	assert_int_equal(st.st_gid, GROUP);
	CHECK(cairn_stat(fs, "/sticky/rootfile", &st));
	CHECK_ERRNO(cairn_stat(fs, "/open/rootfile", &st), ENOENT);
	int fd = cairn_open(fs, "/private/f", O_RDONLY);
	CHECK(fd);
	CHECK(cairn_close(fs, fd));
	char buf[16];
	fd = cairn_open(fs, "/rw", O_RDONLY);
	CHECK(fd);
	assert_int_equal(cairn_read(fs, fd, buf, sizeof(buf)), 8);
	assert_memory_equal(buf, "mine now", 8);
	CHECK(cairn_close(fs, fd));
	CHECK(cairn_stat(fs, "/ro", &st));
	assert_int_equal(st.st_size, 8);
	assert_int_equal(st.st_mode & 07777, 0644);
	for (int i = 0; i < 4; i++)
		CHECK(cairn_close(fs, fds[i]));
	CHECK(cairn_unmount(fs));
	daemon_stop(&g.daemon);
	alarm(0);
	assert_int_equal(run_cairn("fsck", g.vol, NULL), 0);
}

/* A child that becomes uid and attaches: exits 0 when the result is
 * expect (0: attached; else that errno). */
static pid_t try_attach_as(uid_t uid, int expect)
{
	pid_t pid = fork();
	if (pid == 0) {
		watchdog(10, "cairn_attach as another user");
		if (uid)
			become(uid, NULL, 0);
		errno = 0;
		cairn_fs *fs = cairn_attach(g.vol);
		int e = fs ? 0 : errno;
		if (e != expect)
			C_FAIL("cairn_attach as uid %d: got %s, expected %s", (int)uid,
			       fs ? "a handle" : strerror(e),
			       expect ? strerror(expect) : "a handle");
		if (fs) {
			struct stat st;
			C_OK(cairn_stat(fs, "/", &st));
			C_OK(cairn_unmount(fs));
		}
		_exit(0);
	}
	return pid;
}

static void test_daemon_user(void **state)
{
	watchdog(60, "test_daemon_user");
	char cmd[PATH_MAX + 64];
	snprintf(cmd, sizeof(cmd), "chown -R %d:%d '%s'", NOBODY, NOBODY, g.vol);
	assert_int_equal(system(cmd), 0);
	kill_reap(&g.daemon); /* left by a failed test: it would answer */
	g.daemon = spawn_cairn(NOBODY, "serve", g.vol, NULL);
	assert_true(g.daemon > 0);
	cairn_fs *fs = attach_wait(g.vol, &g.daemon); /* root: admitted */
	struct stat st;
	CHECK(cairn_stat(fs, "/ro", &st));
	child_ok(try_attach_as(NOBODY, 0), 15000, "the daemon's own user");
	child_ok(try_attach_as(NOBODY - 1, EACCES), 15000, "another user");
	/* The daemon refuses them itself, whatever the socket's mode lets
	 * through. */
	char sock[PATH_MAX];
	snprintf(sock, sizeof(sock), "%s/cairn.sock", g.vol);
	CHECK(chmod(sock, 0666));
	child_ok(try_attach_as(NOBODY - 1, EACCES), 15000, "another user, through a 0666 socket");
	child_ok(try_attach_as(1000, EACCES), 15000, "a third user, through a 0666 socket");
	child_ok(try_attach_as(NOBODY, 0), 15000, "the daemon's own user, again");
	CHECK(cairn_stat(fs, "/ro", &st)); /* refusing them harmed nothing */
	CHECK(cairn_unmount(fs));
	daemon_stop(&g.daemon);
	alarm(0);
	assert_int_equal(run_cairn("fsck", g.vol, NULL), 0);
}

int main(int argc, char **argv)
{
	fuse_tests_require(argv[0]);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_other_user),
	    cmocka_unit_test(test_daemon_user),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
