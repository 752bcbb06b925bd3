/*
 * run.c - `cairn run [--mount MOUNTPOINT] -- PROGRAM ARGS...`: runs an
 * unmodified program with libcairn-preload.so, so that its writes to files
 * on cairn mounts take the native path (src/shim/shim.h).
 *
 * Owns: nothing.  May call: libc.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <mntent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

static const char run_help[] =
    "Usage: cairn run [--mount MOUNTPOINT] -- PROGRAM [ARGS...]\n"
    "Run PROGRAM with libcairn-preload.so: its writes to files on cairn mounts\n"
    "go into a log of its own, durable on return, with no round trip through\n"
    "the kernel; every other call goes to the kernel unchanged.  Where no\n"
    "daemon serves a mount, the program runs as without the shim.\n\n"
    "  --mount MOUNTPOINT  take the native path on this cairn mount only\n\n"
    "The shim is looked for in $CAIRN_PRELOAD, beside the cairn command, in\n"
    "../lib/cairn and ../lib from its folder, and in the folder it was installed\n"
    "to (LIBDIR/cairn).\n";

/* Whether path names a cairn mount point. */
static int is_cairn_mount(const char *path)
{
	FILE *t = setmntent("/proc/self/mounts", "re");
	struct mntent m;
	char buf[4096];
	int found = 0;
	while (t && !found && getmntent_r(t, &m, buf, sizeof(buf)))
		found = !strcmp(m.mnt_type, "fuse.cairn") && !strcmp(m.mnt_dir, path);
	if (t)
		endmntent(t);
	return found;
}

/* The shim's path into out; 0, or -1 if it is nowhere to be found. */
static int find_shim(char *out, size_t len)
{
	const char *env = getenv("CAIRN_PRELOAD");
	if (env && *env) {
		snprintf(out, len, "%s", env);
		return access(out, R_OK);
	}
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return -1;
	exe[n] = '\0';
	char *slash = strrchr(exe, '/');
	if (slash)
		*slash = '\0';
	static const char *const where[] = {"", "/../lib/cairn", "/../lib"};
	for (size_t i = 0; i < sizeof(where) / sizeof(where[0]); i++) {
		char path[PATH_MAX + 32];
		snprintf(path, sizeof(path), "%s%s/libcairn-preload.so", exe, where[i]);
		/* Named without "..": LD_PRELOAD is shown to the program. */
		if (access(path, R_OK) == 0 && len >= PATH_MAX && realpath(path, out))
			return 0;
	}
#ifdef CAIRN_PRELOAD_DIR
	/* Installed: the library folder may be a multiarch one
	 * (/usr/lib/x86_64-linux-gnu/cairn), not ../lib beside bin. */
	snprintf(out, len, "%s/libcairn-preload.so", CAIRN_PRELOAD_DIR);
	if (access(out, R_OK) == 0)
		return 0;
#endif
	return -1;
}

int cmd_run(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"mount", required_argument, 0, 'm'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
	const char *mount = NULL;
	int c;
	/* "+": options end at the program's name. */
	while ((c = getopt_long(argc, argv, "+m:h", longopts, NULL)) != -1) {
		if (c == 'h') {
			fputs(run_help, stdout);
			return 0;
		}
		if (c != 'm')
			return usage_error("%s", "unknown option");
		mount = optarg;
	}
	if (optind >= argc)
		return usage_error("%s", "expected a PROGRAM to run");
	char real[PATH_MAX];
	if (mount && (!realpath(mount, real) || !is_cairn_mount(real))) {
		fprintf(stderr, "cairn: run: %s: not a cairn mount point\n", mount);
		return 2;
	}
	char shim[PATH_MAX + 32];
	if (find_shim(shim, sizeof(shim))) {
		fprintf(stderr, "cairn: run: libcairn-preload.so not found (set CAIRN_PRELOAD)\n");
		return 1;
	}
	const char *old = getenv("LD_PRELOAD");
	char *preload = NULL;
	if (asprintf(&preload, "%s%s%s", shim, old && *old ? " " : "", old ? old : "") < 0 ||
	    setenv("LD_PRELOAD", preload, 1) || (mount && setenv("CAIRN_SHIM_MOUNT", real, 1))) {
		perror("cairn: run");
		return 1;
	}
	free(preload);
	execvp(argv[optind], argv + optind);
	int e = errno;
	fprintf(stderr, "cairn: run: %s: %s\n", argv[optind], strerror(e));
	return e == ENOENT ? 127 : 126;
}
