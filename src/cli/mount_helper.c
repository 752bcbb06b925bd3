/*
 * mount_helper.c - mount.cairn, the helper mount(8) runs for
 * `mount -t cairn VOLUME MOUNTPOINT -o OPTS` and for an /etc/fstab line of
 * type cairn (and so systemd's mount units made from fstab at boot):
 *
 *   mount.cairn VOLUME MOUNTPOINT [-sfnv] [-N NAMESPACE] [-o OPTS] [-t TYPE]
 *
 * It is the cairn command under another name (a link): it sorts the -o
 * options and runs `cairn mount` with them.
 *
 * Owns: the meaning of each mount option.  May call: cmd_mount (cairn.c),
 * libc.
 *
 * The options, as fuse's own helper treats them:
 *   - mount(8)'s and systemd's, never the file system's, are dropped:
 *     defaults, auto, noauto, user, nouser, users, owner, group, _netdev,
 *     nofail, comment=..., x-... (mount already keeps x-... to itself);
 *     nofail also means what mount(8) says of it: a VOLUME that does not
 *     exist is no error (`mount -a` and boot go on without it);
 *   - cairn's own become options of `cairn mount`: batch=MS,
 *     high_watermark=N, low_watermark=N, no_promote (the same spelt with
 *     '-' are taken too);
 *   - every other one goes to FUSE as given (ro, rw, nosuid, nodev,
 *     noexec, noatime, allow_other, default_permissions, ...), and an
 *     unknown one fails the mount, with FUSE's message, unless -s
 *     (sloppy) was given, which drops the options FUSE does not know.
 *
 * Exit status as mount(8) documents for helpers: 0 mounted, 1 a usage or
 * permission error, 32 the mount failed.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

#define MOUNT_EX_USAGE 1
#define MOUNT_EX_FAIL 32

static const char helper_help[] =
    "Usage: mount.cairn VOLUME MOUNTPOINT [-sfnv] [-N NAMESPACE] [-o OPTIONS]\n"
    "The helper of 'mount -t cairn' and of /etc/fstab lines of type cairn: mounts\n"
    "the cairn volume VOLUME at MOUNTPOINT as 'cairn mount' does.\n\n"
    "  -o OPTIONS  batch=MS, high_watermark=N, low_watermark=N, no_promote (see\n"
    "              cairn(1)); FUSE's options (ro, nosuid, allow_other, ...);\n"
    "              mount's and systemd's (_netdev, nofail, x-systemd.*, noauto,\n"
    "              ...) are left to them\n"
    "  -s          sloppy: drop the options FUSE does not know\n"
    "  -f          fake: check the arguments, mount nothing\n"
    "  -n          ignored (cairn writes no /etc/mtab)\n"
    "  -v          say the 'cairn mount' command it runs\n"
    "  -N NS       mount in another mount namespace (a PID or a path)\n";

/* Options of mount(8) and systemd that are not the file system's. */
static int is_mount_option(const char *o)
{
	static const char *const words[] = {"defaults", "auto",  "noauto", "user",    "nouser",
	                                    "users",    "owner", "group",  "_netdev", "nofail"};
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (!strcmp(o, words[i]))
			return 1;
	return !strncmp(o, "x-", 2) || !strncmp(o, "comment=", 8);
}

/* The options FUSE knows (libfuse's mount options and the kernel's
 * flags it passes on), for -s. */
static int fuse_knows(const char *o)
{
	static const char *const words[] = {"rw",
	                                    "ro",
	                                    "suid",
	                                    "nosuid",
	                                    "dev",
	                                    "nodev",
	                                    "exec",
	                                    "noexec",
	                                    "async",
	                                    "sync",
	                                    "atime",
	                                    "noatime",
	                                    "diratime",
	                                    "nodiratime",
	                                    "relatime",
	                                    "norelatime",
	                                    "strictatime",
	                                    "dirsync",
	                                    "lazytime",
	                                    "nolazytime",
	                                    "allow_other",
	                                    "allow_root",
	                                    "default_permissions",
	                                    "auto_unmount",
	                                    "debug"};
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (!strcmp(o, words[i]))
			return 1;
	return !strncmp(o, "max_read=", 9) || !strncmp(o, "blksize=", 8);
}

/* name=value with '-' and '_' alike in name: value, or NULL. */
static const char *value_of(const char *o, const char *name)
{
	size_t n = strlen(name);
	for (size_t i = 0; i < n; i++) {
		char a = o[i] == '-' ? '_' : o[i];
		if (a != name[i])
			return NULL;
	}
	return o[n] == '=' ? o + n + 1 : NULL;
}

struct helper_args {
	char *argv[16];
	int argc;
	char fuse_opts[4096];
	int sloppy;
	int nofail; /* seen among the options */
};

static int add_arg(struct helper_args *h, char *a)
{
	if (h->argc >= (int)(sizeof(h->argv) / sizeof(h->argv[0])) - 1)
		return -1;
	h->argv[h->argc++] = a;
	h->argv[h->argc] = NULL;
	return 0;
}

static int add_fuse_opt(struct helper_args *h, const char *o)
{
	size_t n = strlen(h->fuse_opts);
	int w = snprintf(h->fuse_opts + n, sizeof(h->fuse_opts) - n, "%s%s", n ? "," : "", o);
	return w < 0 || (size_t)w >= sizeof(h->fuse_opts) - n ? -1 : 0;
}

/* One option of -o into h; -1 if the list is too long. */
static int sort_option(struct helper_args *h, char *o)
{
	static const struct {
		const char *name, *flag;
	} valued[] = {{"batch", "--batch"},
	              {"high_watermark", "--high-watermark"},
	              {"low_watermark", "--low-watermark"}};
	if (!strcmp(o, "nofail"))
		h->nofail = 1;
	if (!*o || is_mount_option(o))
		return 0;
	if (!strcmp(o, "no_promote") || !strcmp(o, "no-promote"))
		return add_arg(h, "--no-promote");
	for (size_t i = 0; i < sizeof(valued) / sizeof(valued[0]); i++) {
		const char *v = value_of(o, valued[i].name);
		if (v)
			return add_arg(h, (char *)valued[i].flag) || add_arg(h, (char *)v) ? -1 : 0;
	}
	if (h->sloppy && !fuse_knows(o))
		return 0;
	return add_fuse_opt(h, o);
}

static int sort_options(struct helper_args *h, char *list)
{
	for (char *save = NULL, *o = strtok_r(list, ",", &save); o; o = strtok_r(NULL, ",", &save))
		if (sort_option(h, o))
			return -1;
	return 0;
}

/* setns into the mount namespace NS: a PID's, or the one a path names. */
static int enter_namespace(const char *ns)
{
	char path[64];
	char *end;
	long pid = strtol(ns, &end, 10);
	if (!*end && end != ns) {
		snprintf(path, sizeof(path), "/proc/%ld/ns/mnt", pid);
		ns = path;
	}
	int fd = open(ns, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || setns(fd, CLONE_NEWNS)) {
		perror("mount.cairn: -N");
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

/* The helper's command line, as mount(8) gives it. */
struct helper_line {
	const char *pos[2]; /* VOLUME, MOUNTPOINT */
	int npos;
	char opts[4096]; /* every -o, joined by commas */
	const char *ns;
	int fake, verbose, sloppy;
};

/* 0, or MOUNT_EX_USAGE after saying why. */
static int parse_line(int argc, char **argv, struct helper_line *l)
{
	int c;
	/* mount(8) puts VOLUME and MOUNTPOINT first: "-" hands them over as
	 * they come (as 1), whatever POSIXLY_CORRECT says, and the options
	 * after them are still read. */
	while ((c = getopt(argc, argv, "-sfnvN:o:t:")) != -1) {
		switch (c) {
		case 1:
			if (l->npos < 2)
				l->pos[l->npos] = optarg;
			l->npos++;
			break;
		case 's':
			l->sloppy = 1;
			break;
		case 'f':
			l->fake = 1;
			break;
		case 'v':
			l->verbose = 1;
			break;
		case 'N':
			l->ns = optarg;
			break;
		case 'o': /* each -o adds to the list */
			if (strlen(l->opts) + strlen(optarg) + 2 > sizeof(l->opts)) {
				fprintf(stderr, "mount.cairn: too many options\n");
				return MOUNT_EX_USAGE;
			}
			if (l->opts[0])
				strcat(l->opts, ",");
			strcat(l->opts, optarg);
			break;
		case 'n':
		case 't':
			break;
		default:
			fputs(helper_help, stderr);
			return MOUNT_EX_USAGE;
		}
	}
	if (l->npos != 2) {
		fprintf(stderr, "mount.cairn: expected a VOLUME and a MOUNTPOINT\n%s", helper_help);
		return MOUNT_EX_USAGE;
	}
	return 0;
}

/* The `cairn mount` command line into h; 0, or MOUNT_EX_USAGE. */
static int build_command(struct helper_line *l, struct helper_args *h, char *list)
{
	h->sloppy = l->sloppy;
	add_arg(h, "cairn mount");
	int bad = sort_options(h, list);
	if (!bad && h->fuse_opts[0])
		bad = add_arg(h, "-o") || add_arg(h, h->fuse_opts);
	if (!bad)
		bad = add_arg(h, (char *)l->pos[0]) || add_arg(h, (char *)l->pos[1]);
	if (bad) {
		fprintf(stderr, "mount.cairn: too many options\n");
		return MOUNT_EX_USAGE;
	}
	if (l->verbose || l->fake) {
		fputs("mount.cairn: cairn mount", stderr);
		for (int i = 1; i < h->argc; i++)
			fprintf(stderr, " %s", h->argv[i]);
		fputc('\n', stderr);
	}
	return 0;
}

int cmd_mount_helper(int argc, char **argv)
{
	if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		fputs(helper_help, stdout);
		return 0;
	}
	struct helper_line l = {.npos = 0};
	struct helper_args h = {.argc = 0};
	int rc = parse_line(argc, argv, &l);
	if (rc)
		return rc;
	char list[sizeof(l.opts)];
	memcpy(list, l.opts, sizeof(list));
	if ((rc = build_command(&l, &h, list)) || l.fake)
		return rc;
	if (l.ns && enter_namespace(l.ns))
		return MOUNT_EX_FAIL;
	if (h.nofail && access(l.pos[0], F_OK) && errno == ENOENT) {
		if (l.verbose)
			fprintf(stderr, "mount.cairn: %s does not exist: nofail, not mounted\n",
			        l.pos[0]);
		return 0;
	}
	prog_cmd = "mount";
	optind = 0; /* 0: glibc's getopt starts afresh, "-" mode forgotten */
	rc = cmd_mount(h.argc, h.argv);
	return rc == 0 ? 0 : rc == 2 ? MOUNT_EX_USAGE : MOUNT_EX_FAIL;
}
