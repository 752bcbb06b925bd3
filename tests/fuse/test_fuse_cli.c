/*
 * test_fuse_cli.c - what the cairn command says and refuses, run as a user
 * would run it (CAIRN_BIN, set by CMake), with its messages checked.
 *
 * Each test guards against a failure once seen:
 *   - messages: `--tier ssd=/p:0` blamed the tier's name, `--fast-size 1K`
 *     printed "cairn: mkfs: V: cairn: ...", `--inodes 99999999999999` was
 *     echoed as 100000000000000, a missing option argument was printed
 *     without the "cairn:" prefix;
 *   - mkfs overwrote another volume's part and an existing volume;
 *   - `cairn mount V FILE` exited 0 and every access then failed;
 *   - `-o fsname=x,subtype=y` made `cairn umount` answer "not a cairn mount";
 *   - `cairn stat MOUNTPOINT` by a user other than root said "not a cairn
 *     volume" instead of a permission error.
 * The mount tests skip unless root with /dev/fuse; the scratch directory is
 * in /dev/shm and removed at the end, with any mount a failure left.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "fusetest.h"

#ifndef CAIRN_BIN
#error "CAIRN_BIN must name the cairn command"
#endif

#define NOBODY 65534

static struct {
	char root[128], vol[160], mnt[160], file[160];
	char out[8192]; /* what the last run printed, stdout and stderr */
} g;

static char *at(const char *name)
{
	static char bufs[4][256];
	static int next;
	char *b = bufs[next++ % 4];
	snprintf(b, 256, "%s/%s", g.root, name);
	return b;
}

/* Runs CAIRN_BIN with the arguments (NULL-terminated) as user uid (0 =
 * as we are), its output into g.out; returns its exit status, or -1. */
static int run_as(uid_t uid, const char *arg, ...)
{
	char *argv[16] = {"cairn"};
	va_list ap;
	va_start(ap, arg);
	for (int i = 1; arg && i < 15; i++, arg = va_arg(ap, const char *))
		argv[i] = (char *)arg;
	va_end(ap);
	char path[200];
	snprintf(path, sizeof(path), "%s/out", g.root);
	pid_t pid = fork();
	if (pid == 0) {
		int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0666);
		dup2(fd, 1);
		dup2(fd, 2);
		if (uid &&
		    (setgroups(0, NULL) || setresgid(uid, uid, uid) || setresuid(uid, uid, uid)))
			_exit(126);
		execv(CAIRN_BIN, argv);
		_exit(127);
	}
	int st;
	if (pid < 0 || waitpid(pid, &st, 0) < 0)
		return -1;
	int fd = open(path, O_RDONLY);
	ssize_t n = fd >= 0 ? read(fd, g.out, sizeof(g.out) - 1) : -1;
	g.out[n > 0 ? n : 0] = 0;
	if (fd >= 0)
		close(fd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

#define RUN(...) run_as(0, __VA_ARGS__, (char *)NULL)

static void says(const char *words)
{
	if (!strstr(g.out, words))
		fail_msg("output \"%s\" does not say \"%s\"", g.out, words);
}

static void does_not_say(const char *words)
{
	if (strstr(g.out, words))
		fail_msg("output \"%s\" says \"%s\"", g.out, words);
}

static int occurrences(const char *s, const char *words)
{
	int n = 0;
	for (const char *p = s; (p = strstr(p, words)); p += strlen(words))
		n++;
	return n;
}

static int mount_usable(void)
{
	return geteuid() == 0 && access("/dev/fuse", R_OK | W_OK) == 0;
}

static void rm_tree(const char *path)
{
	pid_t pid = fork();
	if (pid == 0) {
		execlp("rm", "rm", "-rf", "--", path, (char *)NULL);
		_exit(127);
	}
	if (pid > 0)
		waitpid(pid, NULL, 0);
}

static int group_setup(void **state)
{
	(void)state;
	snprintf(g.root, sizeof(g.root), "/dev/shm/cairn-cli.XXXXXX");
	/* 0755: the other user of the stat test must reach the mount point. */
	if (!mkdtemp(g.root) || chmod(g.root, 0755))
		return -1;
	snprintf(g.vol, sizeof(g.vol), "%s/vol", g.root);
	snprintf(g.mnt, sizeof(g.mnt), "%s/mnt", g.root);
	snprintf(g.file, sizeof(g.file), "%s/file", g.root);
	if (mkdir(g.mnt, 0755) || close(open(g.file, O_CREAT | O_WRONLY, 0644)))
		return -1;
	return RUN("mkfs", g.vol, "--media", "emul", "--log-size", "8M", "--fast-size", "32M") == 0
	           ? 0
	           : -1;
}

static int group_teardown(void **state)
{
	(void)state;
	/* Whatever failed, leave no mount behind (the daemons then exit). */
	if (is_mounted_at(g.mnt))
		umount2(g.mnt, MNT_DETACH);
	if (is_mounted_at(g.file))
		umount2(g.file, MNT_DETACH);
	char manifest[200];
	snprintf(manifest, sizeof(manifest), "%s/cairn.volume", g.vol);
	/* The emul parts live in /dev/shm, outside root: by their names. */
	FILE *f = fopen(manifest, "r");
	char line[512], part[400];
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "part %*s %*s %399s", part) == 1)
			unlink(part);
	if (f)
		fclose(f);
	if (!getenv("CAIRN_TEST_KEEP"))
		rm_tree(g.root);
	return 0;
}

/* ---- messages ------------------------------------------------------------ */

static void test_bad_tier_size_is_named(void **state)
{
	(void)state;
	assert_int_equal(RUN("mkfs", at("v"), "--tier", "ssd=/p:0"), 2);
	says("invalid size");
	says("ssd=/p:0");
	does_not_say("invalid tier 'ssd'");
}

static void test_one_prefix_per_message(void **state)
{
	(void)state;
	assert_int_equal(RUN("mkfs", at("v"), "--fast-size", "1K", "--media", "emul"), 1);
	assert_int_equal(occurrences(g.out, "cairn:"), 1);
	says("1024 bytes");
	assert_int_equal(RUN("mkfs", at("v"), "--log-size"), 2);
	assert_true(strncmp(g.out, "cairn: mkfs: ", 13) == 0);
	says("--log-size");
	says("Try 'cairn mkfs --help'");
	assert_int_equal(RUN("mount", "--no-such-option"), 2);
	assert_true(strncmp(g.out, "cairn: mount: ", 14) == 0);
}

static void test_inode_count_echoed_as_given(void **state)
{
	(void)state;
	assert_int_equal(RUN("mkfs", at("v"), "--inodes", "99999999999999", "--fast-size", "32M",
	                     "--media", "emul"),
	                 1);
	says("99999999999999 inodes");
	does_not_say("100000000000000");
}

/* ---- mkfs keeps what is there ---------------------------------------------- */

static void test_mkfs_keeps_existing(void **state)
{
	(void)state;
	assert_int_equal(RUN("mkfs", g.vol, "--media", "emul"), 1);
	says("already exists");
	/* Another volume's part, given as this one's. */
	char part[400] = "";
	char manifest[200], line[512];
	snprintf(manifest, sizeof(manifest), "%s/cairn.volume", g.vol);
	FILE *f = fopen(manifest, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		sscanf(line, "part fast %*s %399s", part);
	fclose(f);
	assert_true(part[0]);
	assert_int_equal(RUN("mkfs", at("v2"), "--fast", part, "--log", at("log2"), "--media",
	                     "emul", "--log-size", "8M", "--fast-size", "32M"),
	                 1);
	says("not empty");
	says("--force");
	assert_int_equal(access(at("log2"), F_OK), -1);
	/* The volume is untouched: fsck finds it clean. */
	assert_int_equal(RUN("fsck", g.vol), 0);
	/* Forced, an ordinary file of data is taken. */
	int fd = open(at("data"), O_CREAT | O_WRONLY, 0644);
	assert_int_equal(write(fd, "data", 4), 4);
	close(fd);
	assert_int_equal(RUN("mkfs", at("v3"), "--log", at("data"), "--fast", at("fast3"),
	                     "--log-size", "8M", "--fast-size", "32M", "--force"),
	                 0);
	struct stat st;
	assert_int_equal(stat(at("data"), &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
}

/* ---- mount, umount, stat ---------------------------------------------------- */

static void test_mount_on_a_file_refused(void **state)
{
	(void)state;
	if (!mount_usable())
		skip();
	assert_int_not_equal(RUN("mount", g.vol, g.file), 0);
	says("Not a directory");
	assert_false(is_mounted_at(g.file));
}

static void test_naming_options_keep_umount_working(void **state)
{
	(void)state;
	if (!mount_usable())
		skip();
	assert_int_not_equal(RUN("mount", g.vol, g.mnt, "-o", "fsname=x,subtype=y"), 0);
	says("fsname=");
	assert_false(is_mounted_at(g.mnt));
	assert_int_not_equal(RUN("mount", g.vol, g.mnt, "-o", "noatime", "-o", "subtype=y"), 0);
	assert_false(is_mounted_at(g.mnt));
	/* Other options pass, and umount finds the mount. */
	assert_int_equal(RUN("mount", g.vol, g.mnt, "-o", "noatime"), 0);
	assert_true(is_mounted_at(g.mnt));
	assert_int_equal(RUN("umount", g.mnt), 0);
	assert_false(is_mounted_at(g.mnt));
}

/* Another user is answered by the daemon, as a client, when the volume
 * directory lets it reach the socket (a daemon run by root admits every
 * user); when it does not, the answer is a permission error, never "not a
 * cairn volume". */
static void test_stat_of_a_mount_by_another_user(void **state)
{
	(void)state;
	if (!mount_usable())
		skip();
	assert_int_equal(RUN("mount", g.vol, g.mnt), 0);
	assert_int_equal(RUN("stat", g.mnt), 0);
	says("inodes");
	/* The answers are all taken before umount, which the assertions may
	 * skip. */
	char out[4][sizeof(g.out)];
	int rc[4];
	for (int i = 0; i < 4; i++) {
		assert_int_equal(chmod(g.vol, i < 2 ? 0755 : 0700), 0);
		rc[i] = run_as(NOBODY, "stat", i % 2 ? g.vol : g.mnt, (char *)NULL);
		memcpy(out[i], g.out, sizeof(g.out));
	}
	assert_int_equal(chmod(g.vol, 0755), 0);
	assert_int_equal(RUN("umount", g.mnt), 0);
	for (int i = 0; i < 4; i++) {
		int ok = i < 2 ? rc[i] == 0 && strstr(out[i], "inodes")
		               : rc[i] == 1 && strstr(out[i], "Permission denied") &&
		                     !strstr(out[i], "not a cairn volume");
		if (!ok)
			fail_msg("cairn stat %s as another user, volume directory %s: exit %d, "
			         "\"%s\"",
			         i % 2 ? "VOLUME" : "MOUNTPOINT", i < 2 ? "0755" : "0700", rc[i],
			         out[i]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_bad_tier_size_is_named),
	    cmocka_unit_test(test_one_prefix_per_message),
	    cmocka_unit_test(test_inode_count_echoed_as_given),
	    cmocka_unit_test(test_mkfs_keeps_existing),
	    cmocka_unit_test(test_mount_on_a_file_refused),
	    cmocka_unit_test(test_naming_options_keep_umount_working),
	    cmocka_unit_test(test_stat_of_a_mount_by_another_user),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
