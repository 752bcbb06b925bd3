/*
 * test_proc_crash.c - the process-crash test: kill -9 at random moments
 * under load, recover, and compare with the acknowledged operations.
 *
 * The parent makes an emul volume.  Each round it starts a child (this
 * program re-executed with --crash-child, so that it inherits no engine
 * state) that mounts the volume and runs a deterministic pseudo-random
 * sequence of operations (create, pwrite, append, truncate, rename, unlink,
 * mkdir, rmdir, link, symlink, chmod, fallocate: mode 0 or KEEP_SIZE);
 * after each call returns, the child
 * writes the operation's index and result to a pipe.  After a random delay
 * (1-50 ms after the child mounted; in one round of eight, 1-10 ms after it
 * started, so that some kills land in recovery) the parent sends SIGKILL,
 * reads the last acknowledged index A, mounts the volume (recovery), dumps
 * it and requires it to equal the state after A or A+1 operations.  The
 * oracle is independent of cairn: a model directory on the host (in the
 * scratch directory, tmpfs by default) to which the parent applies the same
 * operations through the kernel (generated from the seed and the index
 * alone, never from outcomes), dumped in the same canonical form (without
 * times, which differ between runs).  So the test proves not only that a
 * crash keeps a prefix of the operations, but that each operation did what
 * Linux does: the results the child acknowledged (return values and
 * errnos) must equal the model's too.  Each round continues from the
 * recovered volume.
 *
 * With CAIRN_PROC_CRASH_TIERED=1 the volumes get two capacity tiers under
 * a 4 MiB fast tier and the child mounts with watermarks of 10%/2%, so
 * that its digest thread migrates all the time: kills land inside
 * migration batches too.
 *
 * With CAIRN_PROC_CRASH_DAEMON=1 the child is a daemon (the volume
 * mounted, its control socket served) and forks a client that attaches
 * and runs the operations through cairn_attach: a round kills the daemon
 * and the client at once, mid-call (the client stops at the first EIO,
 * unacknowledged), or, one round in two once the client runs, the client
 * alone, after which the daemon unmounts cleanly.  Every call a client was
 * told succeeded must survive either way, with Linux's errno for each.
 *
 * Environment: CAIRN_PROC_CRASH_ROUNDS (default 30), CAIRN_PROC_CRASH_SEED
 * (default 1), CAIRN_PROC_CRASH_TIERED (default 0), CAIRN_PROC_CRASH_DAEMON
 * (default 0).
 */
#include "server/server.h"
#include "testvol.h"

#include <fcntl.h>
#include <inttypes.h>
#include <linux/openat2.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_OPS_PER_ROUND 100000 /* more than a fast engine does in 50 ms */
#define MAX_WRITE (64 * 1024)
#define MAX_APPEND (16 * 1024)
#define MAX_OFFSET (128 * 1024)
#define MAX_TRUNC (192 * 1024)

/* ---- the operations ------------------------------------------------------ */

enum op_kind {
	OP_CREATE,
	OP_WRITE,
	OP_APPEND,
	OP_TRUNCATE,
	OP_RENAME,
	OP_UNLINK,
	OP_MKDIR,
	OP_RMDIR,
	OP_LINK,
	OP_SYMLINK,
	OP_CHMOD,
	OP_FALLOC,
};

static const char *const op_names[] = {"create", "pwrite",  "append", "truncate",
                                       "rename", "unlink",  "mkdir",  "rmdir",
                                       "link",   "symlink", "chmod",  "fallocate"};

/* Cumulative weights out of 100. */
static const struct {
	enum op_kind kind;
	int upto;
} op_weights[] = {
    {OP_CREATE, 14}, {OP_WRITE, 36},   {OP_APPEND, 46}, {OP_TRUNCATE, 54},
    {OP_RENAME, 64}, {OP_UNLINK, 73},  {OP_MKDIR, 84},  {OP_RMDIR, 89},
    {OP_LINK, 92},   {OP_SYMLINK, 95}, {OP_CHMOD, 97},  {OP_FALLOC, 100},
};

struct op {
	enum op_kind kind;
	char path[32], path2[32];
	int flags;
	mode_t mode;
	uint32_t len;
	uint64_t off;
	uint64_t data_seed;
};

struct result {
	int64_t ret;
	int32_t err;
};

/* Paths of depth 1..3 over four names: few enough that operations collide
 * (so renames replace, rmdirs find non-empty dirs, ...), and small files so
 * that the fast tier can never fill (ENOSPC would not be deterministic). */
static int gen_path(uint64_t *rs, char *out, size_t len, int max_depth)
{
	static const char *names[] = {"a", "b", "c", "d"};
	uint64_t r = tv_splitmix(rs) % 10;
	int depth = r < 4 ? 1 : r < 8 ? 2 : 3;
	if (depth > max_depth)
		depth = max_depth;
	size_t n = 0;
	out[0] = '\0';
	for (int i = 0; i < depth; i++)
		n += (size_t)snprintf(out + n, len - n, "/%s", names[tv_splitmix(rs) % 4]);
	return depth;
}

static void gen_op(uint64_t seed, uint64_t idx, struct op *op)
{
	uint64_t rs = seed * 0x9e3779b97f4a7c15ull ^ (idx + 1) * 0xd1b54a32d192ed87ull;
	memset(op, 0, sizeof(*op));
	int w = (int)(tv_splitmix(&rs) % 100);
	for (size_t i = 0; i < sizeof(op_weights) / sizeof(op_weights[0]); i++) {
		if (w < op_weights[i].upto) {
			op->kind = op_weights[i].kind;
			break;
		}
	}
	int depth = gen_path(&rs, op->path, sizeof(op->path), 3);
	/* A rename never moves an entry deeper, so that the tree cannot grow
	 * without bound through subtrees pushed out of reach of the
	 * operations (only depths 1-3 are ever named). */
	gen_path(&rs, op->path2, sizeof(op->path2), op->kind == OP_RENAME ? depth : 3);
	op->data_seed = tv_splitmix(&rs);
	uint64_t r = tv_splitmix(&rs);
	switch (op->kind) {
	case OP_CREATE: {
		static const mode_t modes[] = {0644, 0600, 0755};
		op->flags =
		    O_CREAT | O_WRONLY | (r % 4 == 0 ? O_EXCL : 0) | (r % 4 == 1 ? O_TRUNC : 0);
		op->mode = modes[(r >> 8) % 3];
		break;
	}
	case OP_WRITE:
		op->len = 1 + (uint32_t)(tv_splitmix(&rs) % MAX_WRITE);
		op->off = tv_splitmix(&rs) % MAX_OFFSET;
		if (r % 2)
			op->off &= ~(uint64_t)4095;
		break;
	case OP_APPEND:
		op->len = 1 + (uint32_t)(tv_splitmix(&rs) % MAX_APPEND);
		break;
	case OP_TRUNCATE:
		op->off = r % 3 == 0 ? 0 : tv_splitmix(&rs) % MAX_TRUNC;
		break;
	case OP_FALLOC:
		op->flags = r % 2 ? 1 /* FALLOC_FL_KEEP_SIZE */ : 0;
		op->len = 1 + (uint32_t)(tv_splitmix(&rs) % MAX_WRITE);
		op->off = tv_splitmix(&rs) % MAX_OFFSET;
		break;
	case OP_RENAME:
		op->flags = r % 5 == 0 ? (int)CAIRN_RENAME_NOREPLACE : 0;
		break;
	case OP_SYMLINK:
		/* Absolute, or relative to the link's directory. */
		if (r % 2) {
			static const char *rel[] = {"a", "b", "../c", "d/a", "..", "."};
			snprintf(op->path2, sizeof(op->path2), "%s", rel[(r >> 8) % 6]);
		}
		break;
	case OP_CHMOD: {
		static const mode_t modes[] = {0700, 0755, 0750, 0777, 0711, 01755};
		op->mode = modes[(r >> 8) % 6];
		break;
	}
	default:
		break;
	}
}

static void describe_op(uint64_t idx, const struct op *op, char *buf, size_t len)
{
	switch (op->kind) {
	case OP_CREATE:
		snprintf(buf, len, "#%" PRIu64 " create %s%s%s mode %04o", idx, op->path,
		         op->flags & O_EXCL ? " O_EXCL" : "", op->flags & O_TRUNC ? " O_TRUNC" : "",
		         op->mode);
		break;
	case OP_WRITE:
		snprintf(buf, len, "#%" PRIu64 " pwrite %s %u bytes at %" PRIu64, idx, op->path,
		         op->len, op->off);
		break;
	case OP_APPEND:
		snprintf(buf, len, "#%" PRIu64 " append %s %u bytes", idx, op->path, op->len);
		break;
	case OP_TRUNCATE:
		snprintf(buf, len, "#%" PRIu64 " truncate %s to %" PRIu64, idx, op->path, op->off);
		break;
	case OP_FALLOC:
		snprintf(buf, len, "#%" PRIu64 " fallocate %s%s %u bytes at %" PRIu64, idx,
		         op->path, op->flags ? " KEEP_SIZE" : "", op->len, op->off);
		break;
	case OP_RENAME:
		snprintf(buf, len, "#%" PRIu64 " rename %s -> %s%s", idx, op->path, op->path2,
		         op->flags ? " NOREPLACE" : "");
		break;
	case OP_LINK:
		snprintf(buf, len, "#%" PRIu64 " link %s -> %s", idx, op->path, op->path2);
		break;
	case OP_SYMLINK:
		snprintf(buf, len, "#%" PRIu64 " symlink %s -> \"%s\"", idx, op->path, op->path2);
		break;
	case OP_CHMOD:
		snprintf(buf, len, "#%" PRIu64 " chmod %s %04o", idx, op->path, op->mode);
		break;
	default:
		snprintf(buf, len, "#%" PRIu64 " %s %s", idx, op_names[op->kind], op->path);
		break;
	}
}

static struct result res_of(int64_t r)
{
	struct result res = {.ret = r, .err = r < 0 ? errno : 0};
	return res;
}

/* Exactly one mutating call per operation (open without O_CREAT/O_TRUNC and
 * close change nothing), so that a crash leaves it done or not done. */
static struct result apply_op(cairn_fs *fs, const struct op *op, unsigned char *buf)
{
	errno = 0;
	switch (op->kind) {
	case OP_CREATE: {
		int fd = cairn_open(fs, op->path, op->flags, op->mode);
		if (fd < 0)
			return res_of(-1);
		cairn_close(fs, fd);
		return res_of(0);
	}
	case OP_WRITE:
	case OP_APPEND: {
		int fd =
		    cairn_open(fs, op->path, O_WRONLY | (op->kind == OP_APPEND ? O_APPEND : 0));
		if (fd < 0)
			return res_of(-1);
		tv_fill(buf, op->len, op->data_seed);
		errno = 0;
		ssize_t n = op->kind == OP_APPEND
		                ? cairn_write(fs, fd, buf, op->len)
		                : cairn_pwrite(fs, fd, buf, op->len, (off_t)op->off);
		struct result r = n < 0 ? (struct result){.ret = -2, .err = errno}
		                        : (struct result){.ret = n, .err = 0};
		cairn_close(fs, fd);
		return r;
	}
	case OP_TRUNCATE:
		return res_of(cairn_truncate(fs, op->path, (off_t)op->off));
	case OP_FALLOC: {
		int fd = cairn_open(fs, op->path, O_WRONLY);
		if (fd < 0)
			return res_of(-1);
		struct result r =
		    res_of(cairn_fallocate(fs, fd, op->flags, (off_t)op->off, (off_t)op->len));
		cairn_close(fs, fd);
		return r;
	}
	case OP_RENAME:
		return res_of(cairn_rename(fs, op->path, op->path2, (unsigned)op->flags));
	case OP_UNLINK:
		return res_of(cairn_unlink(fs, op->path));
	case OP_MKDIR:
		return res_of(cairn_mkdir(fs, op->path, 0755));
	case OP_RMDIR:
		return res_of(cairn_rmdir(fs, op->path));
	case OP_LINK:
		return res_of(cairn_link(fs, op->path, op->path2));
	case OP_SYMLINK:
		return res_of(cairn_symlink(fs, op->path2, op->path));
	case OP_CHMOD:
		return res_of(cairn_chmod(fs, op->path, op->mode));
	}
	return res_of(0);
}

/* ---- the model ---------------------------------------------------------
 *
 * The same operations on a directory of the host that stands for "/".
 * Every path is resolved by the kernel inside that directory (openat2 with
 * RESOLVE_IN_ROOT, so that absolute symlink targets and ".." stay inside,
 * as they do on the volume): the parent directory of the last component for
 * the calls that act on a name (mkdirat, unlinkat, renameat2, linkat,
 * symlinkat), the whole path for those that follow it (open, truncate,
 * chmod).  The kernel, not cairn, then decides what each operation does.
 */
struct model {
	char dir[PATH_MAX];
	int root;
};

static int model_open(const struct model *m, const char *path, int flags, mode_t mode)
{
	struct open_how how = {.flags = (uint64_t)flags,
	                       .mode = mode,
	                       .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS};
	/* EAGAIN: a rename anywhere on the machine raced the walk (openat2(2)
	 * says to try again); never an answer of the model's own. */
	int fd;
	do
		fd = (int)syscall(SYS_openat2, m->root, path, &how, sizeof(how));
	while (fd < 0 && errno == EAGAIN);
	return fd;
}

/* The parent directory of path's last component (an O_PATH descriptor),
 * and that component; -1 with errno as the operation would fail. */
static int model_parent(const struct model *m, const char *path, const char **name)
{
	const char *slash = strrchr(path, '/');
	char dir[64];
	snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	*name = slash + 1;
	return model_open(m, dir[0] ? dir : "/", O_PATH | O_DIRECTORY, 0);
}

/* link resolves its source whole before it looks at the new name: the
 * source, not followed, linked through its descriptor. */
static struct result model_link(const struct model *m, const struct op *op)
{
	int fd = model_open(m, op->path, O_PATH | O_NOFOLLOW, 0);
	if (fd < 0)
		return res_of(-1);
	const char *name;
	int r = -1, d = model_parent(m, op->path2, &name);
	if (d >= 0) {
		char proc[64];
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
		r = linkat(AT_FDCWD, proc, d, name, AT_SYMLINK_FOLLOW);
	}
	int e = errno;
	close(fd);
	if (d >= 0)
		close(d);
	errno = e;
	return res_of(r);
}

/* A call on a name: at(parent fd, name) of one or two paths (rename
 * resolves both parents before it looks at either name). */
static struct result model_at(const struct model *m, const struct op *op)
{
	const char *n1, *n2 = NULL;
	int e = 0, d2 = -1, d1 = model_parent(m, op->path, &n1);
	if (d1 < 0)
		return res_of(-1);
	if (op->kind == OP_RENAME) {
		d2 = model_parent(m, op->path2, &n2);
		if (d2 < 0) {
			e = errno;
			close(d1);
			errno = e;
			return res_of(-1);
		}
	}
	int r = -1;
	switch (op->kind) {
	case OP_RENAME:
		r = renameat2(d1, n1, d2, n2, (unsigned)op->flags);
		break;
	case OP_UNLINK:
		r = unlinkat(d1, n1, 0);
		break;
	case OP_MKDIR:
		r = mkdirat(d1, n1, 0755);
		break;
	case OP_RMDIR:
		r = unlinkat(d1, n1, AT_REMOVEDIR);
		break;
	case OP_SYMLINK:
		r = symlinkat(op->path2, d1, n1);
		break;
	default:
		errno = EINVAL;
		break;
	}
	e = errno;
	close(d1);
	if (d2 >= 0)
		close(d2);
	errno = e;
	return res_of(r);
}

/* A call that follows the path: on the file it names, through its
 * descriptor. */
static struct result model_follow(const struct model *m, const struct op *op)
{
	int fd = model_open(m, op->path, O_PATH, 0);
	if (fd < 0)
		return res_of(-1);
	char proc[64];
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	int r = op->kind == OP_CHMOD ? chmod(proc, op->mode) : truncate(proc, (off_t)op->off);
	int e = errno;
	close(fd);
	errno = e;
	return res_of(r);
}

/* As apply_op, on the model: the same results for the same outcomes. */
static struct result model_apply_op(const struct model *m, const struct op *op, unsigned char *buf)
{
	errno = 0;
	switch (op->kind) {
	case OP_CREATE: {
		int fd = model_open(m, op->path, op->flags, op->mode);
		if (fd < 0)
			return res_of(-1);
		close(fd);
		return res_of(0);
	}
	case OP_WRITE:
	case OP_APPEND: {
		int fd =
		    model_open(m, op->path, O_WRONLY | (op->kind == OP_APPEND ? O_APPEND : 0), 0);
		if (fd < 0)
			return res_of(-1);
		tv_fill(buf, op->len, op->data_seed);
		errno = 0;
		ssize_t n = op->kind == OP_APPEND ? write(fd, buf, op->len)
		                                  : pwrite(fd, buf, op->len, (off_t)op->off);
		struct result r = n < 0 ? (struct result){.ret = -2, .err = errno}
		                        : (struct result){.ret = n, .err = 0};
		close(fd);
		return r;
	}
	case OP_FALLOC: {
		int fd = model_open(m, op->path, O_WRONLY, 0);
		if (fd < 0)
			return res_of(-1);
		struct result r =
		    res_of(fallocate(fd, (int)op->flags, (off_t)op->off, (off_t)op->len));
		close(fd);
		return r;
	}
	case OP_TRUNCATE:
	case OP_CHMOD:
		return model_follow(m, op);
	case OP_LINK:
		return model_link(m, op);
	default:
		return model_at(m, op);
	}
}

/* ---- the child ----------------------------------------------------------- */

#define REC_MOUNTED UINT64_MAX

struct ack {
	uint64_t idx; /* operation index, or REC_MOUNTED */
	int64_t ret;
	int32_t err;
	int32_t pad;
};

static void write_ack(int fd, const struct ack *a)
{
	/* Records are far below PIPE_BUF: each write is atomic. */
	while (write(fd, a, sizeof(*a)) < 0 && errno == EINTR)
		;
}

/* CAIRN_PROC_CRASH_DAEMON: the operations are a client's (cairn_attach)
 * of a daemon (cairn_mount + the control socket) in another process; a
 * round kills both at once (the daemon dies mid-call) or, one round in
 * two, the client alone, after which the daemon stops cleanly. */
static bool daemon_mode(void)
{
	const char *t = getenv("CAIRN_PROC_CRASH_DAEMON");
	return t && *t && strcmp(t, "0") != 0;
}

/* Applies operations start.. and acknowledges each on pfd.  Through a
 * client's handle, EIO means the daemon is gone: no acknowledgement. */
static void run_ops(cairn_fs *fs, uint64_t seed, uint64_t start, uint64_t count, int pfd)
{
	struct ack a = {.idx = REC_MOUNTED};
	write_ack(pfd, &a);
	unsigned char *buf = malloc(MAX_WRITE);
	for (uint64_t i = start; i < start + count; i++) {
		struct op op;
		gen_op(seed, i, &op);
		struct result r = apply_op(fs, &op, buf);
		if (daemon_mode() && r.err == EIO)
			_exit(0);
		a = (struct ack){.idx = i, .ret = r.ret, .err = r.err};
		write_ack(pfd, &a);
	}
}

/* The daemon: serves the volume on its socket while a forked client runs
 * the operations.  SIGUSR1 from the parent: kill the client, then stop
 * serving and unmount cleanly (exit 0). */
static int serve_and_run(cairn_fs *fs, const char *dir, uint64_t seed, uint64_t start,
                         uint64_t count, int pfd)
{
	sigset_t usr1;
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &usr1, NULL);
	struct ctl_server *srv = NULL;
	if (ctl_server_start(fs, dir, 0, NULL, NULL, &srv))
		_exit(2);
	pid_t client = fork();
	if (client == 0) {
		cairn_fs *h = NULL;
		for (int i = 0; i < 1000 && !h; i++)
			if (!(h = cairn_attach(dir)))
				usleep(10000);
		if (!h)
			_exit(2);
		run_ops(h, seed, start, count, pfd);
		for (;;)
			pause();
	}
	close(pfd); /* the parent's EOF comes when the client is gone */
	int sig;
	while (sigwait(&usr1, &sig))
		;
	kill(client, SIGKILL);
	waitpid(client, NULL, 0);
	ctl_server_stop(srv);
	_exit(cairn_unmount(fs) ? 5 : 0);
}

/* A daemon's client is its fork, not ours: killed with it, it is
 * reparented to this process (a subreaper, see test_proc_crash) and waited
 * for here.  Until its last descriptor closes it holds the volume's lock,
 * which it inherited, and its pipe may close before that lock does: a
 * mount right after the daemon was reaped would find the volume in use. */
static void reap_orphans(void)
{
	while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
		;
}

/* argv: --crash-child DIR SEED START COUNT THRESHOLD PIPEFD */
static bool tiered(void)
{
	const char *t = getenv("CAIRN_PROC_CRASH_TIERED");
	return t && *t && strcmp(t, "0") != 0;
}

static int child_main(int argc, char **argv)
{
	if (argc != 8)
		return 3;
	const char *dir = argv[2];
	uint64_t seed = strtoull(argv[3], NULL, 10);
	uint64_t start = strtoull(argv[4], NULL, 10);
	uint64_t count = strtoull(argv[5], NULL, 10);
	int threshold = atoi(argv[6]);
	int pfd = atoi(argv[7]);
	struct cairn_mount_opts mo = {.digest_threshold = threshold};
	if (tiered()) {
		mo.high_watermark = 10;
		mo.low_watermark = 2;
	}
	errno = 0;
	cairn_fs *fs = cairn_mount(dir, &mo);
	if (!fs) {
		fprintf(stderr, "crash child: mount %s failed: %s: %s\n", dir, tv_errname(errno),
		        cairn_last_error());
		_exit(2);
	}
	if (daemon_mode())
		return serve_and_run(fs, dir, seed, start, count, pfd);
	run_ops(fs, seed, start, count, pfd);
	/* Everything done: wait for the kill, never unmount cleanly. */
	for (;;)
		pause();
}

/* ---- the parent ---------------------------------------------------------- */

/* The model and the history applied to it. */
struct reference {
	struct model m;
	/* The owner of "/" as mkfs made it, and as the model's root has it
	 * (without privilege it cannot take the volume's). */
	char vol_owner[64], model_owner[64];
	uint64_t applied;       /* operations applied so far */
	struct result *results; /* result of each applied operation */
	size_t cap;
	unsigned char *buf;
};

static void ref_apply(struct reference *ref, uint64_t seed)
{
	struct op op;
	gen_op(seed, ref->applied, &op);
	if (ref->applied == ref->cap) {
		ref->cap = ref->cap ? ref->cap * 2 : 4096;
		ref->results = realloc(ref->results, ref->cap * sizeof(*ref->results));
	}
	ref->results[ref->applied] = model_apply_op(&ref->m, &op, ref->buf);
	ref->applied++;
}

/* The model's dump; its first line ("/") shows the volume's root owner. */
static char *ref_dump(const struct reference *ref)
{
	char *d = tv_dump_dir(ref->m.dir, 0);
	char *at = strstr(d, ref->model_owner), *nl = strchr(d, '\n');
	if (strcmp(ref->vol_owner, ref->model_owner) == 0 || !at || (nl && at > nl))
		return d;
	size_t head = (size_t)(at - d), tail = strlen(at + strlen(ref->model_owner));
	char *out = malloc(head + strlen(ref->vol_owner) + tail + 1);
	memcpy(out, d, head);
	strcpy(out + head, ref->vol_owner);
	strcat(out, at + strlen(ref->model_owner));
	free(d);
	return out;
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct round_out {
	uint64_t acked;   /* operations acknowledged this round */
	struct ack *acks; /* their records */
	bool mounted;     /* the child reported its mount */
	int status;       /* waitpid status */
};

/* Reads records from fd until deadline_ms (or, if until_mounted, until the
 * mount record arrives); returns false on EOF. */
static bool pump(int fd, struct round_out *out, size_t *cap, unsigned char *part, size_t *plen,
                 int64_t deadline_ms, bool until_mounted)
{
	for (;;) {
		if (until_mounted && out->mounted)
			return true;
		int64_t left = deadline_ms - mono_ms();
		if (deadline_ms >= 0 && left <= 0)
			return true;
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int r = poll(&p, 1, deadline_ms >= 0 ? (int)left : -1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			continue;
		unsigned char tmp[64 * sizeof(struct ack)];
		ssize_t n = read(fd, tmp, sizeof(tmp));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		for (ssize_t i = 0; i < n; i++) {
			part[(*plen)++] = tmp[i];
			if (*plen == sizeof(struct ack)) {
				struct ack a;
				memcpy(&a, part, sizeof(a));
				*plen = 0;
				if (a.idx == REC_MOUNTED) {
					out->mounted = true;
					continue;
				}
				if (out->acked == *cap) {
					*cap = *cap ? *cap * 2 : 1024;
					out->acks = realloc(out->acks, *cap * sizeof(*out->acks));
				}
				out->acks[out->acked++] = a;
			}
		}
	}
}

static void run_round(const char *dir, uint64_t seed, uint64_t start, int threshold, bool early,
                      unsigned delay_ms, struct round_out *out)
{
	int p[2];
	assert_int_equal(pipe(p), 0);
	char a_seed[32], a_start[32], a_count[32], a_thr[16], a_fd[16];
	snprintf(a_seed, sizeof(a_seed), "%" PRIu64, seed);
	snprintf(a_start, sizeof(a_start), "%" PRIu64, start);
	snprintf(a_count, sizeof(a_count), "%d", MAX_OPS_PER_ROUND);
	snprintf(a_thr, sizeof(a_thr), "%d", threshold);
	snprintf(a_fd, sizeof(a_fd), "%d", p[1]);
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		setpgid(0, 0); /* a daemon and its client die together */
		execl("/proc/self/exe", "test_proc_crash", "--crash-child", dir, a_seed, a_start,
		      a_count, a_thr, a_fd, (char *)NULL);
		_exit(4);
	}
	close(p[1]);
	setpgid(pid, pid); /* as the child does: whichever runs first */
	memset(out, 0, sizeof(*out));
	size_t cap = 0, plen = 0;
	unsigned char part[sizeof(struct ack)];
	bool alive = true;
	if (!early) {
		/* Wait (up to 60 s) for the child to have mounted. */
		alive = pump(p[0], out, &cap, part, &plen, mono_ms() + 60000, true);
		if (alive && !out->mounted) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			fail_msg("crash child did not mount within 60 s");
		}
	}
	if (alive)
		alive = pump(p[0], out, &cap, part, &plen, mono_ms() + delay_ms, false);
	/* The client alone, one round in two once it runs: the daemon kills
	 * it and stops cleanly. */
	bool client_only = daemon_mode() && out->mounted && (start + delay_ms) % 2;
	if (client_only)
		kill(pid, SIGUSR1);
	else
		kill(-pid, SIGKILL);
	/* Drain what the child wrote before it died. */
	pump(p[0], out, &cap, part, &plen, -1, false);
	close(p[0]);
	while (waitpid(pid, &out->status, 0) < 0 && errno == EINTR)
		;
	reap_orphans();
	if (client_only) {
		if (!WIFEXITED(out->status) || WEXITSTATUS(out->status) != 0)
			fail_msg("the daemon did not stop cleanly after its client was killed "
			         "(status 0x%x)",
			         out->status);
		return;
	}
	if (!WIFSIGNALED(out->status) || WTERMSIG(out->status) != SIGKILL) {
		if (WIFEXITED(out->status))
			fail_msg("crash child exited by itself with status %d (2: mount failed, 4: "
			         "exec failed)",
			         WEXITSTATUS(out->status));
		fail_msg("crash child died of signal %d, not of our SIGKILL",
		         WIFSIGNALED(out->status) ? WTERMSIG(out->status) : -1);
	}
}

static uint64_t env_u64(const char *name, uint64_t dflt)
{
	const char *v = getenv(name);
	if (!v || !*v)
		return dflt;
	return strtoull(v, NULL, 0);
}

/* The volume of the test. */
static struct testvol *make_volume(const char *tag)
{
	struct cairn_mkfs_opts o;
	tv_default_mkfs_opts(&o);
	o.log_size = 2 * TV_MiB; /* small: digest runs (and is killed) often */
	o.fast_size = 128 * TV_MiB;
	struct testvol *tv = tv_scratch(tag);
	char ssd[PATH_MAX], hdd[PATH_MAX];
	if (tiered()) {
		o.fast_size = 4 * TV_MiB;
		snprintf(ssd, sizeof(ssd), "%s/ssd.tier", tv->root);
		snprintf(hdd, sizeof(hdd), "%s/hdd.tier", tv->root);
		o.ntiers = 2;
		o.tiers[0] = (struct cairn_tier_opts){"ssd", ssd, 16 * TV_MiB, 0};
		o.tiers[1] = (struct cairn_tier_opts){"hdd", hdd, 256 * TV_MiB, 0};
	}
	umask(0);
	if (tv_mkfs(tv, &o))
		fail_msg("%s: mkfs failed: %s", tag, cairn_last_error());
	return tv;
}

static void test_proc_crash(void **state)
{
	(void)state;
	const uint64_t rounds = env_u64("CAIRN_PROC_CRASH_ROUNDS", 30);
	const uint64_t seed = env_u64("CAIRN_PROC_CRASH_SEED", 1);
	print_message("proc-crash: seed %" PRIu64 ", %" PRIu64 " rounds\n", seed, rounds);
	assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1), 0); /* reap_orphans */

	struct testvol *vol = make_volume("proc-crash");
	/* The model starts as the new volume: an empty root of the same mode
	 * and owner. */
	struct reference ref = {.buf = malloc(MAX_WRITE)};
	snprintf(ref.m.dir, sizeof(ref.m.dir), "%s/model", vol->root);
	assert_non_null(tv_mount(vol, NULL));
	struct stat rst = tv_lstat(vol->fs, "/");
	TV_OK(tv_unmount(vol));
	if (mkdir(ref.m.dir, 0700) != 0 ||
	    (chown(ref.m.dir, rst.st_uid, rst.st_gid) != 0 && errno != EPERM) ||
	    chmod(ref.m.dir, rst.st_mode & 07777) != 0)
		fail_msg("model directory %s: %s", ref.m.dir, strerror(errno));
	struct stat mst;
	TV_OK(stat(ref.m.dir, &mst));
	snprintf(ref.vol_owner, sizeof(ref.vol_owner), " uid=%lu gid=%lu ",
	         (unsigned long)rst.st_uid, (unsigned long)rst.st_gid);
	snprintf(ref.model_owner, sizeof(ref.model_owner), " uid=%lu gid=%lu ",
	         (unsigned long)mst.st_uid, (unsigned long)mst.st_gid);
	ref.m.root = open(ref.m.dir, O_PATH | O_DIRECTORY);
	assert_true(ref.m.root >= 0);
	int probe = model_open(&ref.m, "/", O_PATH | O_DIRECTORY, 0);
	if (probe < 0)
		fail_msg("the model needs openat2 with RESOLVE_IN_ROOT (Linux 5.6): %s",
		         strerror(errno));
	close(probe);
	char *empty = ref_dump(&ref);
	assert_non_null(tv_mount(vol, NULL));
	char *fresh = tv_dump(vol->fs, 0);
	TV_OK(tv_unmount(vol));
	tv_assert_dump_eq(fresh, empty, "the new volume vs the empty model");
	free(empty);
	free(fresh);

	uint64_t rs = seed ^ 0x5eed;
	uint64_t agreed = 0; /* operations in the crashed volume's history */
	uint64_t total_acked = 0, states_compared = 0, at_a = 0, at_a1 = 0, early_kills = 0;
	uint64_t extents_below = 0; /* on capacity tiers, summed over the recoveries */
	static const int thresholds[] = {0, 5, 50, 95};
	/* The tiered variant must meet migrated data: on a loaded machine the
	 * first rounds may end before any migration, so it runs more rounds
	 * (up to four times as many) until one has. */
	uint64_t max_rounds = tiered() ? rounds * 4 : rounds;
	for (uint64_t round = 0; round < rounds || (round < max_rounds && extents_below == 0);
	     round++) {
		bool early = tv_splitmix(&rs) % 8 == 0;
		unsigned delay = early ? 1 + (unsigned)(tv_splitmix(&rs) % 10)
		                       : 1 + (unsigned)(tv_splitmix(&rs) % 50);
		int threshold = thresholds[tv_splitmix(&rs) % 4];
		struct round_out out;
		run_round(vol->dir, seed, agreed, threshold, early, delay, &out);
		early_kills += early;
		total_acked += out.acked;
		for (uint64_t k = 0; k < out.acked; k++)
			if (out.acks[k].idx != agreed + k)
				fail_msg("round %" PRIu64 ": acknowledgement %" PRIu64
				         " is for operation %" PRIu64 ", expected %" PRIu64,
				         round, k, out.acks[k].idx, agreed + k);

		/* The model, up to A (= agreed + acked operations). */
		uint64_t a = agreed + out.acked;
		while (ref.applied < a)
			ref_apply(&ref, seed);
		for (uint64_t k = 0; k < out.acked; k++) {
			uint64_t i = agreed + k;
			const struct result *r = &ref.results[i];
			if (out.acks[k].ret != r->ret || out.acks[k].err != r->err) {
				struct op op;
				char d[160];
				gen_op(seed, i, &op);
				describe_op(i, &op, d, sizeof(d));
				fail_msg("round %" PRIu64 ": %s returned %" PRId64
				         " (%s) in the crashed "
				         "volume but %" PRId64 " (%s) in the model",
				         round, d, out.acks[k].ret,
				         out.acks[k].err ? tv_errname(out.acks[k].err) : "ok",
				         r->ret, r->err ? tv_errname(r->err) : "ok");
			}
		}

		/* Recovery. */
		if (!tv_mount(vol, NULL))
			fail_msg("round %" PRIu64 ": the volume does not mount after the kill (%s)",
			         round, cairn_last_error());
		char *got = tv_dump(vol->fs, 0);
		struct cairn_info in;
		TV_OK(cairn_info(vol->fs, &in));
		for (unsigned t = 1; t < in.tier_count; t++)
			extents_below += in.tiers[t].extents;
		if (tv_unmount(vol) != 0)
			fail_msg("round %" PRIu64 ": unmount after recovery failed", round);

		char *want = ref_dump(&ref);
		states_compared++;
		if (strcmp(want, got) == 0) {
			agreed = a;
			at_a++;
		} else {
			/* Not at A: it must be at A+1 (the operation in flight). */
			ref_apply(&ref, seed);
			char *want1 = ref_dump(&ref);
			states_compared++;
			if (strcmp(want1, got) != 0) {
				struct op op;
				char d[160];
				gen_op(seed, a, &op);
				describe_op(a, &op, d, sizeof(d));
				print_error("round %" PRIu64 ": %" PRIu64
				            " operations acknowledged; "
				            "in flight: %s\n",
				            round, a, d);
				tv_dump_compare(want, got, "state after A operations vs recovered");
				tv_dump_compare(want1, got,
				                "state after A+1 operations vs recovered");
				fail_msg("round %" PRIu64 " (seed %" PRIu64
				         "): the recovered volume is "
				         "neither the state after %" PRIu64 " nor after %" PRIu64
				         " operations",
				         round, seed, a, a + 1);
			}
			agreed = a + 1;
			at_a1++;
			free(want1);
		}
		/* The model now holds exactly the agreed history (when the
		 * state matched at A, the model did not apply A+1). */
		assert_true(ref.applied == agreed);
		free(want);
		free(got);
		free(out.acks);
	}

	if (tiered()) {
		print_message("proc-crash: %" PRIu64
		              " extents on capacity tiers over the recoveries\n",
		              extents_below);
		assert_true(extents_below > 0); /* the kills did meet migrated data */
	}

	/* A last clean mount agrees with the model too. */
	assert_non_null(tv_mount(vol, NULL));
	char *got = tv_dump(vol->fs, 0);
	char *want = ref_dump(&ref);
	tv_assert_dump_eq(want, got, "final clean mount");
	uint64_t entries = 0, bytes = 0;
	for (const char *l = want; *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : l + strlen(l)) {
		entries++;
		const char *sz = strstr(l, " size=");
		const char *nl = strchr(l, '\n');
		if (sz && (!nl || sz < nl) && l[strcspn(l, " ") + 1] == '-')
			bytes += strtoull(sz + 6, NULL, 10);
	}
	free(got);
	free(want);
	print_message("proc-crash: seed %" PRIu64 ": %" PRIu64 " rounds (%" PRIu64
	              " killed during mount/recovery), %" PRIu64
	              " operations acknowledged, %" PRIu64 " in the history, %" PRIu64
	              " states compared: %" PRIu64 " rounds recovered "
	              "to A, %" PRIu64 " to A+1; final tree %" PRIu64 " entries, %" PRIu64
	              " bytes of file data\n",
	              seed, rounds, early_kills, total_acked, agreed, states_compared, at_a, at_a1,
	              entries, bytes);
	close(ref.m.root);
	tv_destroy(vol);
	free(ref.results);
	free(ref.buf);
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--crash-child") == 0)
		return child_main(argc, argv);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_proc_crash),
	};
	return cmocka_run_group_tests_name("proc_crash", tests, NULL, NULL);
}
