/*
 * shim_prog.c - an ordinary program that test_shim.c runs under
 * `cairn run` (libcairn-preload.so).  It knows nothing of cairn: it makes
 * plain libc calls and checks what POSIX promises of them, printing what
 * went wrong and exiting 1.  Its one nod to the shim is /proc/self/io,
 * whose count of write system calls shows whether its writes went to
 * the kernel.
 *
 *   shim_prog files DIR native|kernel
 *                          writes, positions, dup, O_APPEND, fork, mmap,
 *                          ftruncate (shorter over cached pages, longer,
 *                          positions kept), a reader in another process, record
 *                          locks, threads, exec with and without the shim,
 *                          a second process taking a file over after the
 *                          first closed it, the kernel's own users of a
 *                          descriptor's position (vfork and exec,
 *                          posix_spawn's dup2, fdopen, dprintf, lockf,
 *                          F_SETLK from SEEK_CUR, splice, a
 *                          descriptor sent to another process, sendfile,
 *                          copy_file_range),
 *                          system(), and a signal handler that writes,
 *                          reads, dups and closes while the thread it
 *                          interrupts writes natively; a program that
 *                          closes every descriptor it does not keep
 *                          (closefrom, close_range, dup2 over them); the
 *                          writes made natively or by the kernel; libpmem
 *                          not loaded before the first native write;
 *                          stdio streams fopen makes for writing (their
 *                          buffers written natively; fileno, ftell,
 *                          fseek, "a" and "x" and "e", wide output,
 *                          freopen, a forked child's writes, a read of
 *                          a write-only stream)
 *   shim_prog ack FILE N   N records of 512 bytes, each acknowledged on
 *                          stdout (4 bytes: its number) once written
 *   shim_prog ackf FILE N  the same through a stdio stream, each record
 *                          acknowledged once fflush returned
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <wchar.h>

extern char **environ;

static const char *where = "";
static int expect_native; /* the writes must make no write system call */

static volatile pid_t stopped_daemon; /* daemon_stopped's, while stopped */

static void fail(const char *fmt, ...)
{
	if (stopped_daemon)
		kill(stopped_daemon, SIGCONT); /* the test goes on without this program */
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "shim_prog: %s: ", where);
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, " (errno %s)\n", strerror(errno));
	va_end(ap);
	exit(1);
}

#define MUST(cond)                                                                                 \
	do {                                                                                       \
		if (!(cond))                                                                       \
			fail("line %d: %s", __LINE__, #cond);                                      \
	} while (0)

/* Write system calls this process has made (/proc/self/io, syscw). */
static long write_syscalls(void)
{
	FILE *f = fopen("/proc/self/io", "r");
	char line[128];
	long n = -1;
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "syscw: %ld", &n) == 1)
			break;
	if (f)
		fclose(f);
	return n;
}

/* The file's whole content must be model[0..len). */
static void same_as(const char *path, const uint8_t *model, size_t len)
{
	int fd = open(path, O_RDONLY);
	MUST(fd >= 0);
	uint8_t *got = malloc(len + 1);
	ssize_t n = pread(fd, got, len + 1, 0);
	if (n != (ssize_t)len)
		fail("%s holds %zd bytes, not %zu", path, n, len);
	for (size_t i = 0; i < len; i++)
		if (got[i] != model[i])
			fail("%s: byte %zu is %d, not %d", path, i, got[i], model[i]);
	free(got);
	close(fd);
}

static void fill(uint8_t *p, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seed * 31 + i * 7 + (i >> 9));
}

#define MODEL (1 << 20)
static uint8_t model[MODEL];

/* Writes of every kind into one file, natively (no write system call),
 * and read back through the kernel. */
static void writes(const char *dir)
{
	where = "writes";
	char path[4096];
	snprintf(path, sizeof(path), "%s/writes", dir);
	int fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0644);
	MUST(fd >= 0);
	long before = write_syscalls();
	for (int i = 0; i < 64; i++) {
		fill(model + i * 4096, 4096, (unsigned)i);
		MUST(write(fd, model + i * 4096, 4096) == 4096);
	}
	fill(model + 1000, 3000, 99);
	MUST(pwrite(fd, model + 1000, 3000, 1000) == 3000);
	fill(model + 70000, 500, 98);
	fill(model + 70500, 700, 97);
	struct iovec iov[2] = {{model + 70000, 500}, {model + 70500, 700}};
	MUST(pwritev(fd, iov, 2, 70000) == 1200);
	MUST(lseek(fd, 64 * 4096, SEEK_SET) == 64 * 4096);
	fill(model + 64 * 4096, 1500, 96);
	fill(model + 64 * 4096 + 1500, 2500, 95);
	struct iovec v2[2] = {{model + 64 * 4096, 1500}, {model + 64 * 4096 + 1500, 2500}};
	MUST(writev(fd, v2, 2) == 4000);
	size_t len = 64 * 4096 + 4000;
	MUST(lseek(fd, 0, SEEK_CUR) == (off_t)len);
	struct stat st;
	MUST(fstat(fd, &st) == 0 && st.st_size == (off_t)len);
	/* A read through the same descriptor, at its position. */
	uint8_t b[100];
	MUST(lseek(fd, 500, SEEK_SET) == 500);
	MUST(read(fd, b, 100) == 100 && !memcmp(b, model + 500, 100));

	/* The kernel keeps pages of the file for this descriptor: a native
	 * write over them, and an append past the end, are read back
	 * through it all the same. */
	MUST(pread(fd, b, 100, 600) == 100 && !memcmp(b, model + 600, 100));
	fill(model + 600, 100, 90);
	MUST(pwrite(fd, model + 600, 100, 600) == 100);
	MUST(pread(fd, b, 100, 600) == 100 && !memcmp(b, model + 600, 100));
	int ap = open(path, O_WRONLY | O_APPEND);
	MUST(ap >= 0);
	MUST(pread(fd, b, 50, (off_t)len - 50) == 50);
	fill(model + len, 100, 89);
	MUST(write(ap, model + len, 100) == 100);
	len += 100;
	MUST(pread(fd, b, 100, (off_t)len - 100) == 100 && !memcmp(b, model + len - 100, 100));
	MUST(close(ap) == 0);

	long after = write_syscalls();
	if (expect_native && after - before > 2)
		fail("%ld write system calls for 69 writes: not the native path", after - before);
	if (!expect_native && after - before < 69)
		fail("%ld write system calls for 69 writes: not the kernel's", after - before);
	/* A write through the kernel (stdio's own, which the shim does not
	 * see) leaves its page in the kernel's cache; a native write over it
	 * must not be hidden by it. */
	FILE *sf = fopen(path, "r+");
	MUST(sf && fseek(sf, 8192, SEEK_SET) == 0);
	fill(model + 8192, 4096, 86); /* native, first: the kernel holds no page after it */
	MUST(pwrite(fd, model + 8192, 4096, 8192) == 4096);
	fill(model + 8192, 4096, 88);
	MUST(fwrite(model + 8192, 1, 4096, sf) == 4096 && fflush(sf) == 0);
	MUST(pread(fd, b, 100, 8192) == 100 && !memcmp(b, model + 8192, 100));
	before = write_syscalls();
	fill(model + 8192, 4096, 87);
	MUST(pwrite(fd, model + 8192, 4096, 8192) == 4096);
	if (expect_native && write_syscalls() != before)
		fail("a pwrite after stdio's write was not native");
	MUST(pread(fd, b, 100, 8192) == 100 && !memcmp(b, model + 8192, 100));
	MUST(fclose(sf) == 0);
	/* Another process's open (this one's is through the kernel too) takes
	 * the file away from the shim: what it reads is all there. */
	same_as(path, model, len);
	MUST(lseek(fd, (off_t)len, SEEK_SET) == (off_t)len);

	/* dup shares the position. */
	int fd2 = dup(fd);
	MUST(fd2 >= 0);
	MUST(lseek(fd2, 0, SEEK_END) == (off_t)len);
	fill(model + len, 100, 94);
	MUST(write(fd2, model + len, 100) == 100);
	len += 100;
	MUST(lseek(fd, 0, SEEK_CUR) == (off_t)len);
	MUST(close(fd2) == 0);
	fill(model + len, 100, 93);
	MUST(write(fd, model + len, 100) == 100);
	len += 100;
	same_as(path, model, len);

	/* A shorter file, then a write past its end: a hole of zeros. */
	MUST(ftruncate(fd, 5000) == 0);
	len = 5000;
	MUST(fstat(fd, &st) == 0 && st.st_size == 5000);
	fill(model + 8000, 100, 92);
	memset(model + 5000, 0, 3000);
	MUST(pwrite(fd, model + 8000, 100, 8000) == 100);
	len = 8100;
	same_as(path, model, len);
	MUST(close(fd) == 0);
}

static void appends(const char *dir)
{
	where = "appends";
	char path[4096];
	snprintf(path, sizeof(path), "%s/appends", dir);
	int fd = open(path, O_CREAT | O_WRONLY | O_APPEND | O_TRUNC, 0644);
	MUST(fd >= 0);
	for (int i = 0; i < 10; i++) {
		fill(model + i * 100, 100, (unsigned)i + 10);
		MUST(write(fd, model + i * 100, 100) == 100);
	}
	/* Linux appends a pwrite on an O_APPEND descriptor, and leaves the
	 * position where the last write() put it. */
	fill(model + 1000, 100, 20);
	MUST(pwrite(fd, model + 1000, 100, 0) == 100);
	MUST(lseek(fd, 0, SEEK_CUR) == 1000);
	same_as(path, model, 1100);
	MUST(close(fd) == 0);

	/* Read and append: after a write the position is the end. */
	fd = open(path, O_RDWR | O_APPEND);
	MUST(fd >= 0);
	fill(model + 1100, 50, 21);
	MUST(write(fd, model + 1100, 50) == 50);
	uint8_t b[64];
	MUST(read(fd, b, sizeof(b)) == 0);
	MUST(pread(fd, b, 50, 1100) == 50 && !memcmp(b, model + 1100, 50));
	MUST(close(fd) == 0);
	same_as(path, model, 1150);

	/* O_APPEND belongs to the open file, not to one descriptor: taken
	 * off through one copy, a write through the other goes at its
	 * position. */
	fd = open(path, O_WRONLY | O_APPEND);
	MUST(fd >= 0);
	int fd2 = dup(fd);
	MUST(fd2 >= 0);
	fill(model + 1150, 50, 22);
	MUST(write(fd2, model + 1150, 50) == 50);
	MUST(fcntl(fd, F_SETFL, 0) == 0);
	MUST(lseek(fd2, 100, SEEK_SET) == 100);
	fill(model + 100, 30, 23);
	MUST(write(fd2, model + 100, 30) == 30);
	MUST(lseek(fd, 0, SEEK_CUR) == 130);
	MUST(close(fd) == 0 && close(fd2) == 0);
	same_as(path, model, 1200);

	/* Turned on by F_SETFL after native writes made the file longer
	 * than the kernel last heard: the append goes at the end, and the
	 * position after it is the end. */
	fd = open(path, O_RDWR | O_TRUNC);
	MUST(fd >= 0);
	fill(model, 10, 24);
	MUST(write(fd, model, 10) == 10);
	int fl = fcntl(fd, F_GETFL);
	MUST(fl >= 0 && fcntl(fd, F_SETFL, fl | O_APPEND) == 0);
	fill(model + 10, 20, 25);
	MUST(write(fd, model + 10, 20) == 20);
	MUST(lseek(fd, 0, SEEK_CUR) == 30);
	MUST(fcntl(fd, F_SETFL, fl) == 0);
	fill(model + 30, 5, 26);
	MUST(write(fd, model + 30, 5) == 5);
	MUST(close(fd) == 0);
	same_as(path, model, 35);

	/* pwritev2's flags: RWF_DSYNC at the position goes on from the last
	 * write(); RWF_APPEND on a descriptor without O_APPEND appends at the
	 * end native writes made, and leaves the position alone. */
	fd = open(path, O_WRONLY | O_TRUNC);
	MUST(fd >= 0);
	fill(model, 40, 27);
	MUST(write(fd, model, 10) == 10);
	struct iovec v = {model + 10, 10};
	MUST(pwritev2(fd, &v, 1, -1, RWF_DSYNC) == 10);
	MUST(write(fd, model + 20, 10) == 10);
	v.iov_base = model + 30;
	MUST(pwritev2(fd, &v, 1, 0, RWF_APPEND) == 10);
	MUST(lseek(fd, 0, SEEK_CUR) == 30);
	MUST(close(fd) == 0);
	same_as(path, model, 40);

	/* A position too far for the shim to hold stays the kernel's: a write
	 * there fails as the kernel's does, and lands nowhere else (held,
	 * 2^62 + 5 read as 5). */
	fd = open(path, O_WRONLY);
	MUST(fd >= 0);
	MUST(lseek(fd, ((off_t)1 << 62) + 5, SEEK_SET) == ((off_t)1 << 62) + 5);
	errno = 0;
	ssize_t far = write(fd, "far", 3);
	MUST(far == 3 || errno == EFBIG); /* tmpfs takes it; cairn's files end at 2^52 */
	if (far == 3)
		MUST(ftruncate(fd, 40) == 0);
	MUST(close(fd) == 0);
	same_as(path, model, 40);
}

/* A new file DIR/name opened with flags, holding model[0..len) filled
 * with seed, written through the descriptor returned; its path in path. */
static int new_file(const char *dir, const char *name, int flags, char *path, unsigned seed,
                    size_t len)
{
	snprintf(path, 4096, "%s/%s", dir, name);
	int fd = open(path, O_CREAT | O_TRUNC | flags, 0644);
	MUST(fd >= 0);
	fill(model, len, seed);
	MUST(write(fd, model, len) == (ssize_t)len);
	return fd;
}

/* A call made a request while the daemon was stopped. */
static void stuck(int sig)
{
	(void)sig;
	kill(stopped_daemon, SIGCONT);
	static const char msg[] = "shim_prog: a call that must be native waited for the daemon\n";
	if (write(2, msg, sizeof(msg) - 1) < 0)
		_exit(3);
	_exit(3);
}

/* With the daemon's pid in CAIRN_TEST_DAEMON_PID (test_shim sets it) and
 * native calls expected: stops it (a call that still returns made no
 * request to it; one that does would hang until SIGALRM ends the
 * program), or lets it go on. */
static void daemon_stopped(int stop)
{
	const char *pid = getenv("CAIRN_TEST_DAEMON_PID");
	if (!pid || !expect_native)
		return;
	pid_t d = (pid_t)atoi(pid);
	stopped_daemon = stop ? d : 0;
	signal(SIGALRM, stop ? stuck : SIG_DFL);
	MUST(kill(d, stop ? SIGSTOP : SIGCONT) == 0);
	alarm(stop ? 10 : 0);
}

/* ftruncate of a file written natively: shorter, cutting a page the
 * kernel holds, then longer (zeros, not the page's old bytes); the
 * positions stay where they were, on an O_APPEND descriptor too. */
static void truncates(const char *dir)
{
	where = "truncates";
	char path[4096];
	int fd = new_file(dir, "truncated", O_RDWR, path, 60, 3 * 4096);
	uint8_t b[4096];
	MUST(pread(fd, b, 4096, 4096) == 4096 && !memcmp(b, model + 4096, 4096));
	daemon_stopped(1);
	MUST(ftruncate(fd, 5000) == 0);
	daemon_stopped(0);
	struct stat st;
	MUST(fstat(fd, &st) == 0 && st.st_size == 5000);
	MUST(pread(fd, b, 100, 4950) == 50 && !memcmp(b, model + 4950, 50));
	daemon_stopped(1);
	MUST(ftruncate(fd, 9000) == 0);
	daemon_stopped(0);
	memset(model + 5000, 0, 4000);
	MUST(pread(fd, b, 4096, 4096) == 4096 && !memcmp(b, model + 4096, 4096));
	MUST(lseek(fd, 0, SEEK_CUR) == 3 * 4096);
	fill(model + 3 * 4096, 100, 61);
	memset(model + 9000, 0, 3 * 4096 - 9000);
	MUST(write(fd, model + 3 * 4096, 100) == 100);
	same_as(path, model, 3 * 4096 + 100);

	int ap = open(path, O_WRONLY | O_APPEND);
	MUST(ap >= 0);
	fill(model + 3 * 4096 + 100, 900, 62);
	MUST(write(ap, model + 3 * 4096 + 100, 900) == 900);
	MUST(ftruncate(ap, 500) == 0);
	MUST(lseek(ap, 0, SEEK_CUR) == 3 * 4096 + 1000);
	fill(model + 500, 200, 63);
	MUST(write(ap, model + 500, 200) == 200);
	MUST(lseek(ap, 0, SEEK_CUR) == 700);
	same_as(path, model, 700);
	MUST(close(ap) == 0 && close(fd) == 0);
}

/* Another process opens the file while this one writes it: its open
 * takes the grant away, and what both see stays right. */
static void reader_elsewhere(const char *dir)
{
	where = "reader elsewhere";
	char path[4096];
	int fd = new_file(dir, "shared", O_WRONLY, path, 30, 8192);
	pid_t p = fork();
	MUST(p >= 0);
	if (p == 0) {
		same_as(path, model, 8192);
		_exit(0);
	}
	int st;
	MUST(waitpid(p, &st, 0) == p && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	fill(model + 8192, 4096, 31);
	MUST(write(fd, model + 8192, 4096) == 4096);
	same_as(path, model, 12288);
	MUST(close(fd) == 0);
}

/* A child writes through the descriptor it inherited (the kernel's):
 * the position is shared, the data is where both expect. */
static void forked_writer(const char *dir)
{
	where = "forked writer";
	char path[4096];
	int fd = new_file(dir, "forked", O_RDWR, path, 40, 4096);
	fill(model + 4096, 4096, 41);
	pid_t p = fork();
	MUST(p >= 0);
	if (p == 0) {
		if (write(fd, model + 4096, 4096) != 4096)
			_exit(1);
		/* And a file of its own, as a client of its own. */
		char mine[4200];
		snprintf(mine, sizeof(mine), "%s/child", dir);
		int c = open(mine, O_CREAT | O_WRONLY | O_TRUNC, 0644);
		_exit(c >= 0 && write(c, model, 4096) == 4096 && close(c) == 0 ? 0 : 2);
	}
	int st;
	MUST(waitpid(p, &st, 0) == p && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	MUST(lseek(fd, 0, SEEK_CUR) == 8192);
	/* The child shares the file: the parent's writes of it are the
	 * kernel's from the fork on. */
	fill(model + 8192, 4096, 42);
	long before = write_syscalls();
	MUST(write(fd, model + 8192, 4096) == 4096);
	if (write_syscalls() == before)
		fail("a write after fork() of a file the child shares was not the kernel's");
	same_as(path, model, 12288);
	MUST(close(fd) == 0);
	snprintf(path, sizeof(path), "%s/child", dir);
	same_as(path, model, 4096);
}

/* A shared writable mapping of a file the shim writes. */
static void mapped(const char *dir)
{
	where = "mapped";
	char path[4096];
	int fd = new_file(dir, "mapped", O_RDWR, path, 50, 8192);
	uint8_t *p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	MUST(p != MAP_FAILED);
	MUST(!memcmp(p, model, 8192));
	MUST(lseek(fd, 0, SEEK_CUR) == 8192);
	memset(p + 100, 'm', 100);
	memset(model + 100, 'm', 100);
	MUST(msync(p, 8192, MS_SYNC) == 0);
	fill(model + 8192, 4096, 51);
	MUST(write(fd, model + 8192, 4096) == 4096);
	same_as(path, model, 12288);
	MUST(munmap(p, 8192) == 0);
	MUST(close(fd) == 0);
}

/* Whether another process sees a write lock on byte 0 of path. */
static int locked_elsewhere(const char *path)
{
	pid_t p = fork();
	if (p == 0) {
		int fd = open(path, O_RDONLY);
		struct flock l = {
		    .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
		_exit(fd >= 0 && fcntl(fd, F_GETLK, &l) == 0 && l.l_type != F_UNLCK ? 0 : 1);
	}
	int st;
	return p > 0 && waitpid(p, &st, 0) == p && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* Record locks survive what the shim does behind the program's back:
 * taking a file over at its open, and mapping it. */
static void locks(const char *dir)
{
	where = "locks";
	char path[4096];
	snprintf(path, sizeof(path), "%s/locked", dir);
	int rd = open(path, O_CREAT | O_RDONLY, 0644);
	MUST(rd >= 0);
	struct flock l = {.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
	MUST(fcntl(rd, F_SETLK, &l) == 0);
	int fd = open(path, O_RDWR);
	MUST(fd >= 0);
	l.l_type = F_WRLCK;
	MUST(fcntl(fd, F_SETLK, &l) == 0);
	fill(model, 8192, 60);
	MUST(write(fd, model, 8192) == 8192);
	MUST(locked_elsewhere(path));
	uint8_t *p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	MUST(p != MAP_FAILED);
	MUST(!memcmp(p, model, 8192));
	if (!locked_elsewhere(path))
		fail("mapping the file dropped the lock on it");
	/* What the mapping stores, read() sees, and the other way round. */
	p[5] = 'x';
	model[5] = 'x';
	uint8_t b[8];
	MUST(pread(fd, b, 8, 0) == 8 && !memcmp(b, model, 8));
	MUST(pwrite(fd, "yy", 2, 10) == 2);
	MUST(p[10] == 'y' && p[11] == 'y');
	memcpy(model + 10, "yy", 2);
	MUST(munmap(p, 8192) == 0);
	MUST(close(fd) == 0);
	MUST(!locked_elsewhere(path)); /* closing a descriptor drops them all */
	MUST(close(rd) == 0);
	same_as(path, model, 8192);
}

/* Threads of one process write files of their own at once. */
struct writer {
	char path[4200];
	int ok, err, at; /* what failed: errno, and the write's number */
};

static void *thread_writes(void *arg)
{
	struct writer *w = arg;
	int fd = open(w->path, O_CREAT | O_WRONLY | O_TRUNC, 0644);
	uint8_t buf[1000];
	w->ok = fd >= 0;
	w->err = errno;
	w->at = -1;
	for (int i = 0; i < 2000 && w->ok; i++) {
		memset(buf, (int)(i & 0xff), sizeof(buf));
		w->ok = write(fd, buf, sizeof(buf)) == (ssize_t)sizeof(buf);
		w->err = errno;
		w->at = i;
	}
	w->ok = w->ok && close(fd) == 0;
	return NULL;
}

static void threads(const char *dir)
{
	where = "threads";
	struct writer w[4];
	pthread_t t[4];
	for (int i = 0; i < 4; i++) {
		snprintf(w[i].path, sizeof(w[i].path), "%s/thread%d", dir, i);
		MUST(pthread_create(&t[i], NULL, thread_writes, &w[i]) == 0);
	}
	for (int i = 0; i < 4; i++) {
		MUST(pthread_join(t[i], NULL) == 0);
		errno = w[i].err;
		if (!w[i].ok)
			fail("thread %d failed at write %d", i, w[i].at);
	}
	static uint8_t want[2000 * 1000];
	for (int i = 0; i < 2000; i++)
		memset(want + i * 1000, i & 0xff, 1000);
	for (int i = 0; i < 4; i++)
		same_as(w[i].path, want, sizeof(want));
}

/* A descriptor the shim writes natively, inherited by an exec'ed program
 * with the shim and by one without it: both write through it, at the
 * position they share. */
static void exec_inherits(const char *dir, const char *self)
{
	where = "exec";
	char path[4096];
	int fd = new_file(dir, "inherited", O_WRONLY, path, 70, 4096);
	for (int shim = 1; shim >= 0; shim--) {
		pid_t p = fork();
		MUST(p >= 0);
		if (p == 0) {
			char fdarg[16];
			snprintf(fdarg, sizeof(fdarg), "%d", fd);
			if (!shim)
				unsetenv("LD_PRELOAD");
			execl(self, self, "write-fd", fdarg, shim ? "with" : "without",
			      (char *)NULL);
			_exit(127);
		}
		int st;
		MUST(waitpid(p, &st, 0) == p && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	memcpy(model + 4096, "with", 4);
	memcpy(model + 4100, "without", 7);
	MUST(lseek(fd, 0, SEEK_CUR) == 4107);
	MUST(close(fd) == 0);
	same_as(path, model, 4107);
}

/* What the kernel's own code does at a descriptor's position - another
 * program after vfork and exec, or after posix_spawn's dup2 of a
 * descriptor closed on exec; stdio after fdopen; dprintf; lockf; a
 * process the descriptor is sent to; sendfile and copy_file_range -
 * happens where the program's writes left it.  Each file has 4096 bytes
 * written by write() first. */
static void position_users(const char *dir, const char *self)
{
	where = "position users";
	char path[4096], fdarg[16];
	int fd = new_file(dir, "pos-vfork", O_WRONLY, path, 60, 4096);
	snprintf(fdarg, sizeof(fdarg), "%d", fd);
	pid_t p = vfork();
	MUST(p >= 0);
	if (p == 0) {
		execl(self, self, "write-fd", fdarg, "vfork", (char *)NULL);
		_exit(127);
	}
	int st;
	MUST(waitpid(p, &st, 0) == p && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	memcpy(model + 4096, "vfork", 5);
	same_as(path, model, 4101);
	/* The parent's next write goes after the child's. */
	MUST(write(fd, "parent", 6) == 6);
	memcpy(model + 4101, "parent", 6);
	same_as(path, model, 4107);
	MUST(close(fd) == 0);

	/* A vfork child that moves the file to its standard output and
	 * closes the rest, as a shell's redirection and Python's subprocess
	 * do, changes nothing of the parent's descriptors: its fd 1 stays
	 * what it was, and the file goes on at the end of the child's
	 * write. */
	fd = new_file(dir, "pos-vfork-dup", O_WRONLY, path, 59, 4096);
	struct stat out_before, out_after;
	MUST(fstat(1, &out_before) == 0);
	p = vfork();
	MUST(p >= 0);
	if (p == 0) {
		if (dup2(fd, 1) != 1 || close_range(3, ~0u, 0) != 0)
			_exit(126);
		execl(self, self, "write-fd", "1", "child", (char *)NULL);
		_exit(127);
	}
	MUST(waitpid(p, &st, 0) == p && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	MUST(fstat(1, &out_after) == 0);
	MUST(out_after.st_dev == out_before.st_dev && out_after.st_ino == out_before.st_ino);
	MUST(write(fd, "parent", 6) == 6);
	memcpy(model + 4096, "childparent", 11);
	same_as(path, model, 4107);
	MUST(close(fd) == 0);

	fd = new_file(dir, "pos-spawn", O_WRONLY | O_CLOEXEC, path, 61, 4096);
	posix_spawn_file_actions_t fa;
	MUST(posix_spawn_file_actions_init(&fa) == 0);
	MUST(posix_spawn_file_actions_adddup2(&fa, fd, 1) == 0);
	char *argv[] = {(char *)self, "write-fd", "1", "spawned", NULL};
	MUST(posix_spawn(&p, self, &fa, NULL, argv, environ) == 0);
	MUST(waitpid(p, &st, 0) == p && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	posix_spawn_file_actions_destroy(&fa);
	memcpy(model + 4096, "spawned", 7);
	same_as(path, model, 4103);
	MUST(close(fd) == 0);

	fd = new_file(dir, "pos-fdopen", O_WRONLY, path, 62, 4096);
	FILE *fp = fdopen(dup(fd), "w");
	MUST(fp && fputs("stdio", fp) >= 0 && fclose(fp) == 0);
	memcpy(model + 4096, "stdio", 5);
	same_as(path, model, 4101);
	MUST(close(fd) == 0);
	fd = new_file(dir, "pos-dprintf", O_WRONLY, path, 68, 4096);
	MUST(dprintf(fd, "dprintf") == 7);
	memcpy(model + 4096, "dprintf", 7);
	same_as(path, model, 4103);
	MUST(close(fd) == 0);

	fd = new_file(dir, "pos-lockf", O_RDWR, path, 63, 4096);
	MUST(lockf(fd, F_LOCK, 10) == 0);
	p = fork();
	MUST(p >= 0);
	if (p == 0) {
		struct flock at = {
		    .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 4096, .l_len = 10};
		struct flock before = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_len = 4096};
		_exit(fcntl(fd, F_GETLK, &at) == 0 && at.l_type != F_UNLCK &&
		              fcntl(fd, F_GETLK, &before) == 0 && before.l_type == F_UNLCK
		          ? 0
		          : 1);
	}
	MUST(waitpid(p, &st, 0) == p && WIFEXITED(st));
	if (WEXITSTATUS(st) != 0)
		fail("lockf did not lock from the position write() left");
	MUST(close(fd) == 0);
	fd = new_file(dir, "pos-setlk", O_RDWR, path, 70, 4096);
	struct flock cur = {.l_type = F_WRLCK, .l_whence = SEEK_CUR, .l_start = 0, .l_len = 10};
	MUST(fcntl(fd, F_SETLK, &cur) == 0);
	p = fork();
	MUST(p >= 0);
	if (p == 0) {
		struct flock at = {
		    .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 4096, .l_len = 10};
		_exit(fcntl(fd, F_GETLK, &at) == 0 && at.l_type != F_UNLCK ? 0 : 1);
	}
	MUST(waitpid(p, &st, 0) == p && WIFEXITED(st));
	if (WEXITSTATUS(st) != 0)
		fail("F_SETLK with SEEK_CUR did not lock from the position write() left");
	MUST(close(fd) == 0);

	/* A descriptor sent to a child forked before the file was opened. */
	int sp[2];
	MUST(socketpair(AF_UNIX, SOCK_STREAM, 0, sp) == 0);
	p = fork();
	MUST(p >= 0);
	if (p == 0) {
		char c;
		union {
			struct cmsghdr h;
			char buf[CMSG_SPACE(sizeof(int))];
		} u;
		struct iovec v = {&c, 1};
		struct msghdr m = {.msg_iov = &v,
		                   .msg_iovlen = 1,
		                   .msg_control = u.buf,
		                   .msg_controllen = sizeof(u.buf)};
		if (recvmsg(sp[1], &m, 0) != 1 || !CMSG_FIRSTHDR(&m))
			_exit(1);
		int got;
		memcpy(&got, CMSG_DATA(CMSG_FIRSTHDR(&m)), sizeof(got));
		_exit(write(got, "sent", 4) == 4 ? 0 : 2);
	}
	fd = new_file(dir, "pos-sent", O_WRONLY, path, 64, 4096);
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	memset(&u, 0, sizeof(u));
	struct iovec v = {"x", 1};
	struct msghdr m = {
	    .msg_iov = &v, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf)};
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(fd));
	MUST(sendmsg(sp[0], &m, 0) == 1);
	MUST(waitpid(p, &st, 0) == p && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	memcpy(model + 4096, "sent", 4);
	same_as(path, model, 4100);
	MUST(close(fd) == 0 && close(sp[0]) == 0 && close(sp[1]) == 0);

	/* read() moves the position a write() then starts from. */
	fd = new_file(dir, "pos-read", O_RDWR, path, 69, 4096);
	MUST(lseek(fd, 0, SEEK_SET) == 0);
	uint8_t r[100];
	MUST(read(fd, r, 100) == 100 && !memcmp(r, model, 100));
	MUST(write(fd, "read", 4) == 4);
	memcpy(model + 100, "read", 4);
	same_as(path, model, 4096);
	MUST(close(fd) == 0);

	/* sendfile reads at the position write() left, and moves it. */
	char path2[4096];
	fd = new_file(dir, "pos-sendfile", O_RDWR, path, 65, 4096);
	fill(model + 4096, 4096, 66);
	MUST(pwrite(fd, model + 4096, 4096, 4096) == 4096);
	int pp[2];
	MUST(pipe(pp) == 0);
	MUST(sendfile(pp[1], fd, NULL, 100) == 100);
	uint8_t b[150];
	MUST(read(pp[0], b, 100) == 100 && !memcmp(b, model + 4096, 100));
	memcpy(model + 4196, "after", 5);
	MUST(write(fd, "after", 5) == 5);
	same_as(path, model, 8192);
	/* splice likewise, from where that write() left the position. */
	MUST(splice(fd, NULL, pp[1], NULL, 50, 0) == 50);
	MUST(read(pp[0], b + 100, 50) == 50 && !memcmp(b + 100, model + 4201, 50));
	MUST(close(pp[0]) == 0 && close(pp[1]) == 0);
	/* copy_file_range writes at the position of a file write() wrote. */
	int to = new_file(dir, "pos-copied", O_WRONLY, path2, 67, 4096);
	loff_t from = 4096;
	MUST(copy_file_range(fd, &from, to, NULL, 100, 0) == 100);
	memcpy(model + 4096, b, 100);
	same_as(path2, model, 4196);
	MUST(close(fd) == 0 && close(to) == 0);
	/* Within one file the shim wrote, the kernel copies what the native
	 * writes put there (it copied nothing: it did not know the size). */
	fd = new_file(dir, "pos-copied-within", O_RDWR, path, 68, 100);
	loff_t at = 0, to_at = 100;
	MUST(copy_file_range(fd, &at, fd, &to_at, 50, 0) == 50);
	memcpy(model + 100, model, 50);
	same_as(path, model, 150);
	MUST(close(fd) == 0);
}

/* A stream of path with mode; fails the test if none. */
static FILE *stream(const char *path, const char *mode)
{
	FILE *f = fopen(path, mode);
	if (!f)
		fail("fopen %s \"%s\"", path, mode);
	return f;
}

/* Streams fopen makes for writing: what stdio promises of them, with their
 * buffers written natively under the shim (no write system call). */
static void streams(const char *dir)
{
	where = "streams";
	char path[4096], path2[4096];
	snprintf(path, sizeof(path), "%s/stream", dir);
	snprintf(path2, sizeof(path2), "%s/stream-2", dir);
	fill(model, 256 << 10, 90);
	long before = write_syscalls();
	FILE *f = stream(path, "w");
	for (size_t off = 0; off < (256u << 10); off += 1000) {
		size_t n = (256u << 10) - off < 1000 ? (256u << 10) - off : 1000;
		MUST(fwrite(model + off, 1, n, f) == n);
	}
	MUST(fflush(f) == 0);
	if (expect_native && write_syscalls() != before)
		fail("a stream's buffers were written by the kernel");
	same_as(path, model, 256 << 10);
	/* fileno is the stream's descriptor, and works as one. */
	struct stat st;
	MUST(fstat(fileno(f), &st) == 0 && st.st_size == 256 << 10);
	MUST(fsync(fileno(f)) == 0);
	MUST(ftell(f) == 256 << 10);
	MUST(fseek(f, 10, SEEK_SET) == 0);
	MUST(fprintf(f, "%s", "overwritten") == 11);
	MUST(ftell(f) == 21);
	memcpy(model + 10, "overwritten", 11);
	MUST(fclose(f) == 0);
	same_as(path, model, 256 << 10);

	/* "a": the stream starts at the end, and writes go to the end even
	 * after another descriptor of the file wrote there. */
	f = stream(path, "a");
	MUST(ftell(f) == 256 << 10);
	int other = open(path, O_WRONLY | O_APPEND);
	MUST(other >= 0 && write(other, "other", 5) == 5 && close(other) == 0);
	memcpy(model + (256 << 10), "otherstream", 11);
	MUST(fputs("stream", f) >= 0);
	/* ftell with the bytes still in the buffer counts them from the
	 * end, wherever fseek put the stream. */
	MUST(fseek(f, 0, SEEK_SET) == 0);
	MUST(fputs("abc", f) >= 0);
	MUST(ftell(f) == (256 << 10) + 14);
	memcpy(model + (256 << 10) + 11, "abc", 3);
	MUST(fclose(f) == 0);
	same_as(path, model, (256 << 10) + 14);

	/* "x" and "e" as open's O_EXCL and O_CLOEXEC. */
	errno = 0;
	MUST(fopen(path, "wx") == NULL && errno == EEXIST);
	f = stream(path2, "we");
	MUST((fcntl(fileno(f), F_GETFD) & FD_CLOEXEC) != 0);

	/* Wide output, in the locale's characters. */
	MUST(setlocale(LC_CTYPE, "C.UTF-8") != NULL);
	MUST(fwide(f, 0) == 0);
	MUST(fwide(f, 1) > 0);
	MUST(fwprintf(f, L"%ls %d\n", L"\u00e9t\u00e9", 42) == 7);
	MUST(fputws(L"\u00fc", f) >= 0 && fputwc(L'!', f) == L'!');
	MUST(fclose(f) == 0);
	same_as(path2, (const uint8_t *)"\xc3\xa9t\xc3\xa9 42\n\xc3\xbc!", 12);
	setlocale(LC_CTYPE, "C");

	/* freopen: the stream, at the same descriptor number, now writes
	 * the other file. */
	f = stream(path2, "w");
	int number = fileno(f);
	MUST(fputs("first", f) >= 0);
	MUST(freopen(path, "a", f) == f);
	MUST(fileno(f) == number);
	MUST(fputs("again", f) >= 0);
	MUST(ftell(f) == (256 << 10) + 19);
	MUST(fclose(f) == 0);
	same_as(path2, (const uint8_t *)"first", 5);
	/* And back: a stream reopened "r+" from "a" writes at its position. */
	f = stream(path2, "a");
	MUST(freopen(path2, "r+", f) == f);
	MUST(fputs("FI", f) >= 0);
	MUST(ftell(f) == 2);
	MUST(fclose(f) == 0);
	same_as(path2, (const uint8_t *)"FIrst", 5);
	memcpy(model + (256 << 10) + 14, "again", 5);
	same_as(path, model, (256 << 10) + 19);

	/* A read of a write-only stream fails as the descriptor's would. */
	f = stream(path2, "w");
	char c;
	errno = 0;
	MUST(fread(&c, 1, 1, f) == 0 && ferror(f) && errno == EBADF);
	MUST(fclose(f) == 0);

	/* A forked child writes through the stream it inherited; its
	 * parent's writes follow. */
	f = stream(path2, "w");
	MUST(fputs("parent-", f) >= 0 && fflush(f) == 0);
	pid_t p = fork();
	MUST(p >= 0);
	if (p == 0) {
		int ok = fputs("child-", f) >= 0 && fflush(f) == 0;
		_exit(ok ? 0 : 1);
	}
	int wst;
	MUST(waitpid(p, &wst, 0) == p && WIFEXITED(wst) && WEXITSTATUS(wst) == 0);
	MUST(fputs("parent", f) >= 0 && fclose(f) == 0);
	same_as(path2, (const uint8_t *)"parent-child-parent", 19);
}

/* One process writes a file natively and closes it; another (this
 * program again, with the shim) opens it for writing: the first one's
 * grant went with its close, so the second writes natively too. */
static void reopened(const char *dir, const char *self)
{
	where = "reopened";
	char path[4096];
	int fd = new_file(dir, "reopened", O_WRONLY, path, 85, 3000);
	MUST(close(fd) == 0);
	pid_t p = fork();
	MUST(p >= 0);
	if (p == 0) {
		execl(self, self, "append-native", path, expect_native ? "native" : "kernel",
		      (char *)NULL);
		_exit(127);
	}
	int st;
	MUST(waitpid(p, &st, 0) == p);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail("the second writer failed (status %d)", st);
	memcpy(model + 3000, "second", 6);
	same_as(path, model, 3006);
}

/* The second writer of reopened(): an append, made natively if asked. */
static int append_native(const char *path, int native)
{
	where = "append-native";
	expect_native = native;
	int fd = open(path, O_WRONLY | O_APPEND);
	MUST(fd >= 0);
	long before = write_syscalls();
	MUST(write(fd, "second", 6) == 6);
	if (expect_native && write_syscalls() != before)
		fail("a file another process had written natively and closed was not "
		     "taken over");
	MUST(close(fd) == 0);
	return 0;
}

/* RLIMIT_FSIZE, set after the file was opened and written natively: a
 * write across the limit is cut short there, one past it fails with
 * EFBIG (SIGXFSZ ignored), and so does a truncate past it.  In a child,
 * whose limit goes with it. */
static void size_limited(const char *dir)
{
	where = "size limited";
	char path[4096];
	snprintf(path, sizeof(path), "%s/size-limited", dir);
	fill(model, 16000, 88);
	pid_t p = fork();
	MUST(p >= 0);
	if (p == 0) {
		int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0644);
		MUST(fd >= 0 && write(fd, model, 8000) == 8000);
		signal(SIGXFSZ, SIG_IGN);
		struct rlimit rl = {10240, 10240};
		MUST(setrlimit(RLIMIT_FSIZE, &rl) == 0);
		MUST(write(fd, model + 8000, 8000) == 2240);
		errno = 0;
		MUST(write(fd, model, 10) == -1 && errno == EFBIG);
		errno = 0;
		MUST(ftruncate(fd, 20000) == -1 && errno == EFBIG);
		MUST(lseek(fd, 0, SEEK_CUR) == 10240);
		MUST(close(fd) == 0);
		_exit(0);
	}
	int st;
	MUST(waitpid(p, &st, 0) == p);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail("the limited writer failed (status %d)", st);
	same_as(path, model, 10240);
}

/* system() starts a program with the descriptors that do not close on
 * exec: those go back to the kernel; one that closes on exec stays the
 * shim's. */
static void spawned(const char *dir)
{
	where = "spawned";
	char path[4096], path2[4096];
	int shared = new_file(dir, "spawn-shared", O_WRONLY, path, 80, 4096);
	int own = new_file(dir, "spawn-own", O_WRONLY | O_CLOEXEC, path2, 81, 4096);
	MUST(system("true") == 0);
	long before = write_syscalls();
	MUST(write(own, model, 100) == 100);
	if (expect_native && write_syscalls() != before)
		fail("a close-on-exec file was given back to the kernel at system()");
	before = write_syscalls();
	MUST(write(shared, model, 100) == 100);
	if (write_syscalls() == before)
		fail("a file system()'s program shares was still written natively");
	MUST(close(shared) == 0 && close(own) == 0);
}

/* A timer's handler, 4,000 times a second, on the thread that writes
 * file A natively: it appends its numbered record to file B, reads A,
 * makes and closes a copy of A's descriptor, asks A's position, and
 * closes the copy of it the thread keeps making.  The
 * thread it interrupts may be anywhere in the shim, holding its locks:
 * nothing may hang, and every write of either must be in its file. */
#define SIG_REC 64
#define SIG_WRITES 2000
#define SIG_HANDLED 1000
#define SIG_WRITE 100
static int sig_a = -1, sig_b = -1;
static volatile int sig_spare = -1; /* a copy of A's descriptor the handler closes */
static volatile sig_atomic_t sig_count, sig_failed;

static void sig_handler(int sig)
{
	(void)sig;
	int saved = errno;
	uint8_t rec[SIG_REC], got[16];
	int n = sig_count;
	memset(rec, 'h', sizeof(rec));
	memcpy(rec, &n, sizeof(n));
	if (write(sig_b, rec, sizeof(rec)) != (ssize_t)sizeof(rec))
		sig_failed = 1;
	if (pread(sig_a, got, sizeof(got), 0) < 0 || lseek(sig_a, 0, SEEK_CUR) < 0)
		sig_failed = 2;
	int d = dup(sig_a);
	if (d < 0 || close(d) != 0)
		sig_failed = 3;
	if (sig_spare >= 0 && close(sig_spare) != 0)
		sig_failed = 4;
	sig_spare = -1;
	sig_count = n + 1;
	errno = saved;
}

static void *sig_watchdog(void *arg)
{
	(void)arg;
	sleep(30);
	fprintf(stderr, "shim_prog: signals: hung (%d signals handled)\n", (int)sig_count);
	_exit(3);
}

static void signals(const char *dir)
{
	where = "signals";
	char a[4096], b[4096];
	sigset_t alrm;
	sigemptyset(&alrm);
	sigaddset(&alrm, SIGALRM);
	pthread_t dog;
	MUST(pthread_sigmask(SIG_BLOCK, &alrm, NULL) == 0);
	MUST(pthread_create(&dog, NULL, sig_watchdog, NULL) == 0);
	MUST(pthread_sigmask(SIG_UNBLOCK, &alrm, NULL) == 0);
	sig_a = new_file(dir, "signal-a", O_RDWR, a, 90, 0);
	snprintf(b, sizeof(b), "%s/signal-b", dir);
	sig_b = open(b, O_CREAT | O_WRONLY | O_APPEND | O_TRUNC, 0644);
	MUST(sig_b >= 0);
	struct sigaction sa = {.sa_handler = sig_handler, .sa_flags = SA_RESTART};
	MUST(sigaction(SIGALRM, &sa, NULL) == 0);
	struct itimerval every = {{0, 250}, {0, 250}}, off = {{0, 0}, {0, 0}};
	MUST(setitimer(ITIMER_REAL, &every, NULL) == 0);
	uint8_t rec[SIG_WRITE];
	time_t deadline = time(NULL) + 20;
	long before = write_syscalls();
	int writes = 0;
	for (int i = 0; i < SIG_WRITES || sig_count < SIG_HANDLED; i++) {
		fill(rec, sizeof(rec), (unsigned)i);
		struct iovec v[2] = {{rec, 30}, {rec + 30, SIG_WRITE - 30}};
		if (sig_spare < 0)
			sig_spare = dup(sig_a);
		ssize_t w = i % 3 ? write(sig_a, rec, sizeof(rec)) : writev(sig_a, v, 2);
		MUST(w == (ssize_t)sizeof(rec));
		writes++;
		if (i % 1024 == 0 && time(NULL) > deadline)
			fail("only %d signals were handled in 20 s", (int)sig_count);
	}
	MUST(setitimer(ITIMER_REAL, &off, NULL) == 0);
	/* The thread's writes stayed native: a handler's close of a copy
	 * of A's descriptor gives back that copy, not A.  The handler's own
	 * writes go to the kernel when they interrupt the shim. */
	long calls = write_syscalls() - before;
	if (expect_native && calls > sig_count + 16)
		fail("%ld write system calls for %d writes and %d handlers: the thread's writes "
		     "went to the kernel",
		     calls, writes, (int)sig_count);
	if (sig_failed)
		fail("a call in the signal handler failed (step %d)", (int)sig_failed);
	off_t len = lseek(sig_a, 0, SEEK_CUR);
	MUST(len > 0 && len % SIG_WRITE == 0);
	uint8_t *want = malloc((size_t)len);
	MUST(want != NULL);
	for (off_t i = 0; i < len / SIG_WRITE; i++)
		fill(want + i * SIG_WRITE, SIG_WRITE, (unsigned)i);
	same_as(a, want, (size_t)len);
	free(want);
	int handled = sig_count;
	uint8_t *recs = malloc((size_t)handled * SIG_REC);
	MUST(recs != NULL);
	for (int i = 0; i < handled; i++) {
		memset(recs + i * SIG_REC, 'h', SIG_REC);
		memcpy(recs + i * SIG_REC, &i, sizeof(i));
	}
	same_as(b, recs, (size_t)handled * SIG_REC);
	free(recs);
	MUST(close(sig_a) == 0 && close(sig_b) == 0);
	pthread_cancel(dog);
	pthread_join(dog, NULL);
}

/* A handler that writes through the descriptor its thread writes
 * natively, at the position they share (its write goes to the kernel):
 * every record of both is in the file once.  The thread also asks the
 * position and reads, so that its writes learn the position from the
 * kernel too.  Before, a handler's record written between the thread's
 * look at the position and its store was covered by the thread's next
 * write (about 8,000 of 112,000). */
#define SAME_REC 32
#define SAME_HANDLED 2000
#define SAME_STRIDE 4096
static int same_fd = -1;
static volatile sig_atomic_t same_count, same_failed;

static void same_fd_handler(int sig)
{
	(void)sig;
	int saved = errno;
	uint8_t rec[SAME_REC];
	int n = same_count;
	memset(rec, 'h', sizeof(rec));
	memcpy(rec + 1, &n, sizeof(n));
	if (write(same_fd, rec, sizeof(rec)) != SAME_REC)
		same_failed = 1;
	same_count = n + 1;
	errno = saved;
}

/* Each record of tag (its first byte) and number in the file's
 * records once, as many as `count`. */
static void each_once(const uint8_t *recs, size_t n, uint8_t tag, int count)
{
	uint8_t *seen = calloc((size_t)count + 1, 1);
	MUST(seen != NULL);
	for (size_t i = 0; i < n; i++) {
		const uint8_t *r = recs + i * SAME_REC;
		int k;
		memcpy(&k, r + 1, sizeof(k));
		if (r[0] != tag)
			continue;
		if (k < 0 || k >= count || seen[k]++)
			fail("record %c%d at %zu: not one of those written, or twice", tag, k,
			     i * SAME_REC);
	}
	for (int k = 0; k < count; k++)
		if (!seen[k])
			fail("record %c%d of %d is not in the file", tag, k, count);
	free(seen);
}

static void signals_one_fd(const char *dir)
{
	where = "signals, one descriptor";
	char path[4096];
	snprintf(path, sizeof(path), "%s/signal-same", dir);
	same_fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0644);
	MUST(same_fd >= 0);
	struct sigaction sa = {.sa_handler = same_fd_handler, .sa_flags = SA_RESTART};
	MUST(sigaction(SIGALRM, &sa, NULL) == 0);
	struct itimerval every = {{0, 100}, {0, 100}}, off = {{0, 0}, {0, 0}};
	MUST(setitimer(ITIMER_REAL, &every, NULL) == 0);
	int writes = 0;
	time_t deadline = time(NULL) + 20;
	for (int i = 0; i < 20000 || same_count < SAME_HANDLED; i++) {
		uint8_t rec[SAME_REC];
		memset(rec, 'm', sizeof(rec));
		memcpy(rec + 1, &i, sizeof(i));
		MUST(write(same_fd, rec, sizeof(rec)) == SAME_REC);
		writes++;
		if (i % 64 == 0)
			MUST(lseek(same_fd, 0, SEEK_CUR) >= 0);
		/* A fresh stretch of the file now and then, past everything
		 * written: a handler's record right after the lseek goes there,
		 * before the thread's. */
		if (i % 16 == 8) {
			off_t here = lseek(same_fd, 0, SEEK_CUR);
			MUST(here >= 0);
			MUST(lseek(same_fd, (here / SAME_STRIDE + 1) * SAME_STRIDE, SEEK_SET) >= 0);
		}
		if (i % 50 == 0)
			MUST(read(same_fd, rec, 1) >= 0);
		if (i % 1024 == 0 && time(NULL) > deadline)
			fail("only %d signals were handled in 20 s", (int)same_count);
	}
	MUST(setitimer(ITIMER_REAL, &off, NULL) == 0);
	int handled = same_count;
	if (same_failed)
		fail("a write in the signal handler failed");
	struct stat st;
	MUST(fstat(same_fd, &st) == 0 && st.st_size % SAME_REC == 0);
	size_t n = (size_t)st.st_size / SAME_REC, held = 0;
	uint8_t *recs = malloc((size_t)st.st_size);
	MUST(recs != NULL && pread(same_fd, recs, (size_t)st.st_size, 0) == st.st_size);
	for (size_t k = 0; k < n; k++)
		held += recs[k * SAME_REC] != 0; /* the stretches' gaps read as zeros */
	if (held != (size_t)writes + (size_t)handled)
		fail("%s holds %zu records, not %d (%d writes, %d by the handler)", path, held,
		     writes + handled, writes, handled);
	each_once(recs, n, 'm', writes);
	each_once(recs, n, 'h', handled);
	free(recs);
	MUST(close(same_fd) == 0);
}

/* A thread writes records while the main thread forks (the child exits
 * at once), calls dprintf with nothing to print, or turns O_APPEND on:
 * each gives the file back to the kernel mid-stream.  Every record is in
 * the file once, and after an append the position is the end.  Before,
 * the thread's native writes between the settling and the giving back
 * were covered by its next write, the kernel's (a fork lost 575-1,046
 * records of 20,000 in 4 runs of 6), and after F_SETFL the kernel's
 * appends went on from an old end. */
#define GB_RECS 20000
static int gb_fd = -1;

static void *gb_writer(void *arg)
{
	(void)arg;
	uint8_t rec[SAME_REC];
	for (int i = 0; i < GB_RECS; i++) {
		memset(rec, 'g', sizeof(rec));
		memcpy(rec + 1, &i, sizeof(i));
		MUST(write(gb_fd, rec, sizeof(rec)) == SAME_REC);
	}
	return NULL;
}

static void give_backs(const char *dir)
{
	where = "give-backs mid-stream";
	char path[4096];
	snprintf(path, sizeof(path), "%s/give-backs", dir);
	for (int k = 0; k < 12; k++) { /* each 4 times: the race is not won every time */
		int how = k % 3;
		gb_fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0644);
		MUST(gb_fd >= 0);
		pthread_t w;
		MUST(pthread_create(&w, NULL, gb_writer, NULL) == 0);
		usleep(2000);
		if (how == 0) {
			pid_t p = fork();
			MUST(p >= 0);
			if (p == 0)
				_exit(0);
			MUST(waitpid(p, NULL, 0) == p);
		} else if (how == 1) {
			MUST(dprintf(gb_fd, "%s", "") == 0);
		} else {
			MUST(fcntl(gb_fd, F_SETFL, O_APPEND) == 0);
		}
		MUST(pthread_join(w, NULL) == 0);
		size_t n = GB_RECS;
		if (how == 2) {
			uint8_t rec[SAME_REC];
			int last = GB_RECS;
			memset(rec, 'g', sizeof(rec));
			memcpy(rec + 1, &last, sizeof(last));
			MUST(write(gb_fd, rec, sizeof(rec)) == SAME_REC);
			n++;
			if (lseek(gb_fd, 0, SEEK_CUR) != (off_t)(n * SAME_REC))
				fail("after an append the position is %lld, not the end, %zu",
				     (long long)lseek(gb_fd, 0, SEEK_CUR), n * SAME_REC);
		}
		struct stat st;
		MUST(fstat(gb_fd, &st) == 0);
		if (st.st_size != (off_t)(n * SAME_REC))
			fail("%s holds %lld bytes, not %zu (give-back %d)", path,
			     (long long)st.st_size, n * SAME_REC, how);
		uint8_t *recs = malloc(n * SAME_REC);
		MUST(recs != NULL);
		MUST(pread(gb_fd, recs, n * SAME_REC, 0) == (ssize_t)(n * SAME_REC));
		each_once(recs, n, 'g', (int)n);
		free(recs);
		MUST(close(gb_fd) == 0);
	}
}

/* Every descriptor from 3 on that /proc/self/fd shows (the listing's own
 * among them) made a copy of stderr and closed: dup2 onto numbers the
 * program never opened, then close. */
static void dup2_over_all(void)
{
	int fds[256], n = 0;
	DIR *d = opendir("/proc/self/fd");
	MUST(d != NULL);
	struct dirent *e;
	while ((e = readdir(d)) && n < 256)
		if (e->d_name[0] != '.' && atoi(e->d_name) >= 3)
			fds[n++] = atoi(e->d_name);
	closedir(d);
	for (int i = 0; i < n; i++) {
		MUST(dup2(2, fds[i]) == fds[i]);
		MUST(close(fds[i]) == 0);
	}
}

/* A program that closes every descriptor it does not keep, as one that
 * starts a daemon does: closefrom, close_range, or dup2 over and close of
 * every number open, with a file open for writing each time.  What was
 * written is all there, and the files made after are still written
 * natively (the shim's own descriptors stayed), round after round, the
 * files removed so that their inode numbers come back. */
static void closes_all(const char *dir)
{
	where = "closes-all";
	char path[4096];
	for (int round = 0; round < 60; round++) {
		size_t len = 3000 + (size_t)round * 7;
		long before = write_syscalls();
		int fd = new_file(dir, "closed", O_RDWR, path, (unsigned)round, len);
		fill(model + len, 1000, (unsigned)round + 1000);
		MUST(pwrite(fd, model + len, 1000, (off_t)len) == 1000);
		len += 1000;
		long after = write_syscalls();
		if (expect_native && after - before > 1)
			fail("round %d: %ld write system calls for 2 writes: not the native path",
			     round, after - before);
		if (round % 3 == 0) {
			closefrom(3);
		} else if (round % 3 == 1) {
			MUST(close_range(3, ~0U, 0) == 0);
		} else {
			dup2_over_all();
		}
		errno = 0;
		MUST(fcntl(fd, F_GETFD) < 0 && errno == EBADF); /* closed with the rest */
		/* The lowest number is free again: none of the shim's is there. */
		int low = open("/dev/null", O_RDONLY);
		MUST(low == 3);
		MUST(close(low) == 0);
		same_as(path, model, len);
		MUST(unlink(path) == 0);
	}
}

static int ack(const char *path, int n)
{
	where = "ack";
	int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0644);
	MUST(fd >= 0);
	uint8_t rec[512];
	for (int i = 0; i < n; i++) {
		fill(rec, sizeof(rec), (unsigned)i);
		MUST(pwrite(fd, rec, sizeof(rec), (off_t)i * 512) == 512);
		MUST(write(1, &i, sizeof(i)) == sizeof(i));
	}
	return 0;
}

/* ack through a stream: each record acknowledged once fflush returned. */
static int ackf(const char *path, int n)
{
	where = "ackf";
	FILE *f = stream(path, "w");
	uint8_t rec[512];
	for (int i = 0; i < n; i++) {
		fill(rec, sizeof(rec), (unsigned)i);
		MUST(fwrite(rec, 1, sizeof(rec), f) == sizeof(rec) && fflush(f) == 0);
		MUST(write(1, &i, sizeof(i)) == sizeof(i));
	}
	return fclose(f) == 0 ? 0 : 1;
}

/* Whether libpmem is mapped into this process.  The shim loads it only
 * when it attaches to a volume, at the first file opened for writing on a
 * cairn mount: every other program it is preloaded into starts without
 * it, about 6 ms sooner. */
static int libpmem_loaded(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	MUST(f);
	char line[4096];
	int found = 0;
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, "/libpmem.so") != NULL;
	fclose(f);
	return found;
}

int main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "files")) {
		expect_native = !strcmp(argv[3], "native");
		where = "start";
		if (libpmem_loaded())
			fail("libpmem is loaded before anything was written on a cairn mount");
		writes(argv[2]);
		where = "after writes";
		if (!expect_native && libpmem_loaded())
			fail("libpmem is loaded, but no write was native");
		appends(argv[2]);
		truncates(argv[2]);
		reader_elsewhere(argv[2]);
		forked_writer(argv[2]);
		mapped(argv[2]);
		locks(argv[2]);
		threads(argv[2]);
		exec_inherits(argv[2], argv[0]);
		position_users(argv[2], argv[0]);
		reopened(argv[2], argv[0]);
		spawned(argv[2]);
		size_limited(argv[2]);
		streams(argv[2]);
		give_backs(argv[2]);
		signals(argv[2]);
		signals_one_fd(argv[2]);
		closes_all(argv[2]); /* last: it closes every descriptor */
		return 0;
	}
	if (argc == 3 && !strcmp(argv[1], "signals")) {
		signals(argv[2]);
		return 0;
	}
	if (argc == 4 && !strcmp(argv[1], "write-fd")) {
		size_t n = strlen(argv[3]);
		return write(atoi(argv[2]), argv[3], n) == (ssize_t)n ? 0 : 1;
	}
	if (argc == 4 && !strcmp(argv[1], "append-native"))
		return append_native(argv[2], !strcmp(argv[3], "native"));
	if (argc == 4 && !strcmp(argv[1], "ack"))
		return ack(argv[2], atoi(argv[3]));
	if (argc == 4 && !strcmp(argv[1], "ackf"))
		return ackf(argv[2], atoi(argv[3]));
	fprintf(stderr, "usage: shim_prog files DIR native|kernel | ack|ackf FILE N\n");
	return 2;
}
