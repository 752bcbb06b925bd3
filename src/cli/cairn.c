/*
 * cairn.c - the cairn command: make, inspect and try out volumes.
 *
 * Owns: argument parsing and human/JSON output.
 * May call: the public API (include/cairn.h), the FUSE front end
 * (src/fuse/cairn_fuse.h) and the control plane (src/server/server.h) only.
 *
 *   cairn mkfs VOLUME [--log-size SIZE] [--fast-size SIZE] [--inodes N]
 *                     [--media pmem|file|emul] [--log PATH] [--fast PATH]
 *                     [--tier NAME=PATH[:SIZE[:UNIT]]]... [--force]
 *   cairn stat VOLUME|MOUNTPOINT [--json|--prometheus] [--watch [S]]  (stat.c)
 *   cairn demo VOLUME
 *   cairn mount VOLUME MOUNTPOINT [--foreground] [--batch MS] [-o OPTS]
 *   cairn umount MOUNTPOINT [--lazy]
 *   cairn fsck VOLUME [--repair]
 *   cairn scrub VOLUME|MOUNTPOINT           (scrub.c)
 *   cairn serve VOLUME [--batch MS]         (serve.c)
 *   cairn tune VOLUME|MOUNTPOINT [OPTIONS]  (tune.c)
 *   mount.cairn VOLUME MOUNTPOINT [-o OPTS] (mount_helper.c: the same
 *                                            program, named so by a link)
 *
 * Errors go to stderr as "cairn: CMD: VOLUME: reason"; the exit code is 0 on
 * success, 1 on failure, 2 on a usage error.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cairn.h"
#include "fsck/fsck.h"
#include "cli/cli.h"
#include "fuse/cairn_fuse.h"

const char *prog_cmd = "";

int usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "cairn: %s: ", prog_cmd);
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\nTry 'cairn %s --help'.\n", prog_cmd);
	return 2;
}

/* After getopt's own message about a bad option. */
static int option_error(void)
{
	fprintf(stderr, "Try 'cairn %s --help'.\n", prog_cmd);
	return 2;
}

int api_error(const char *what)
{
	int e = errno;
	const char *why = cairn_last_error()[0] ? cairn_last_error() : strerror(e);
	fprintf(stderr, "cairn: %s: %s: %s\n", prog_cmd, what, why);
	return 1;
}

/* "64M", "1G", "4096" -> bytes; 0 on a malformed size. */
uint64_t cli_parse_size(const char *s)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s)
		return 0;
	int shift = 0;
	switch (*end) {
	case 'k':
	case 'K':
		shift = 10;
		end++;
		break;
	case 'm':
	case 'M':
		shift = 20;
		end++;
		break;
	case 'g':
	case 'G':
		shift = 30;
		end++;
		break;
	case 't':
	case 'T':
		shift = 40;
		end++;
		break;
	}
	if (*end == 'i' || *end == 'B')
		end += (*end == 'i' && end[1] == 'B') ? 2 : 1;
	if (*end || (shift && v > (UINT64_MAX >> shift)))
		return 0;
	return (uint64_t)v << shift;
}

static int parse_media(const char *s, enum cairn_media *m)
{
	if (!strcmp(s, "pmem"))
		*m = CAIRN_MEDIA_PMEM;
	else if (!strcmp(s, "file"))
		*m = CAIRN_MEDIA_FILE;
	else if (!strcmp(s, "emul"))
		*m = CAIRN_MEDIA_EMUL;
	else
		return -1;
	return 0;
}

/* ---- mkfs ---------------------------------------------------------------- */

static const char mkfs_help[] =
    "Usage: cairn mkfs VOLUME [OPTIONS]\n"
    "Create a cairn volume in the directory VOLUME (created if missing).\n\n"
    "  --log-size SIZE     operation log size (default 256M); K, M, G, T suffixes\n"
    "  --fast-size SIZE    fast tier size (default 1G)\n"
    "  --inodes N          number of inodes (default: one per 4 KiB of fast tier)\n"
    "  --media KIND        pmem (DAX), file (ordinary disk, default) or emul\n"
    "                      (persistent memory emulated in DRAM under /dev/shm:\n"
    "                      survives a process crash, not a power loss)\n"
    "  --log PATH          put the log part at PATH (another medium)\n"
    "  --fast PATH         put the fast tier part at PATH\n"
    "  --tier NAME=PATH[:SIZE[:UNIT]]\n"
    "                      add a capacity tier below the fast tier (repeat for\n"
    "                      more, fastest first), on a file (created if missing,\n"
    "                      SIZE required) or a block device (SIZE defaults to\n"
    "                      the device's); UNIT is the allocation unit (default\n"
    "                      1M for a tier named hdd, else 4K).  Cold data moves\n"
    "                      down to it; e.g. --tier ssd=/mnt/ssd/t:64G\n"
    "  --force             replace a volume already in VOLUME, and overwrite part\n"
    "                      files that are not empty and devices that hold data\n\n"
    "mkfs creates part files 0600 and never follows a symbolic link to one; it\n"
    "refuses, even with --force, a part of a mounted volume and a file named as\n"
    "two parts.\n";

/* NAME=PATH[:SIZE[:UNIT]] into t (pointing into arg, which is modified);
 * NULL, or what is wrong with it. */
const char *cli_parse_tier(char *arg, struct cairn_tier_opts *t)
{
	char *eq = strchr(arg, '=');
	if (!eq || eq == arg || !eq[1])
		return "expected NAME=PATH[:SIZE[:UNIT]]";
	*eq = 0;
	t->name = arg;
	t->path = eq + 1;
	char *colon = strchr(eq + 1, ':');
	if (!colon)
		return NULL;
	*colon = 0;
	char *unit = strchr(colon + 1, ':');
	if (unit)
		*unit++ = 0;
	if (!(t->size = cli_parse_size(colon + 1)))
		return "invalid size (a number of bytes above 0, with K, M, G or T; leave it "
		       "out to take the size of an existing file or device)";
	if (unit && !(t->unit = cli_parse_size(unit)))
		return "invalid unit (a number of bytes, a multiple of 4K)";
	return NULL;
}

static int cmd_mkfs(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"log-size", required_argument, 0, 'l'}, {"fast-size", required_argument, 0, 'f'},
	    {"inodes", required_argument, 0, 'i'},   {"media", required_argument, 0, 'm'},
	    {"log", required_argument, 0, 'L'},      {"fast", required_argument, 0, 'F'},
	    {"tier", required_argument, 0, 'T'},     {"force", no_argument, 0, 'x'},
	    {"help", no_argument, 0, 'h'},           {0, 0, 0, 0},
	};
	struct cairn_mkfs_opts o = {0};
	char shown[1024];
	const char *bad;
	int c;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'l':
			if (!(o.log_size = cli_parse_size(optarg)))
				return usage_error("invalid size '%s'", optarg);
			break;
		case 'f':
			if (!(o.fast_size = cli_parse_size(optarg)))
				return usage_error("invalid size '%s'", optarg);
			break;
		case 'i':
			if (!(o.inodes = cli_parse_size(optarg)))
				return usage_error("invalid inode count '%s'", optarg);
			break;
		case 'm':
			if (parse_media(optarg, &o.media))
				return usage_error("unknown media '%s' (pmem, file or emul)",
				                   optarg);
			break;
		case 'L':
			o.log_path = optarg;
			break;
		case 'F':
			o.fast_path = optarg;
			break;
		case 'T':
			if (o.ntiers == CAIRN_MAX_TIERS)
				return usage_error("at most %s capacity tiers", "6");
			/* cli_parse_tier cuts optarg up: messages show a copy. */
			snprintf(shown, sizeof(shown), "tier '%s': ", optarg);
			if ((bad = cli_parse_tier(optarg, &o.tiers[o.ntiers++])))
				return usage_error(
				    "%s", strncat(shown, bad, sizeof(shown) - 1 - strlen(shown)));
			break;
		case 'x':
			o.force = 1;
			break;
		case 'h':
			fputs(mkfs_help, stdout);
			return 0;
		default:
			return option_error();
		}
	}
	if (optind != argc - 1)
		return usage_error("%s", "expected one VOLUME directory");
	const char *vol = argv[optind];
	cli_progress_start();
	int failed = cairn_mkfs(vol, &o);
	cli_progress_end();
	if (failed)
		return api_error(vol);
	printf("cairn: created volume %s\n", vol);
	return 0;
}

/* ---- demo ---------------------------------------------------------------- */

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Times n durable 4 KiB appends; returns the median in microseconds. */
static double append_median(cairn_fs *fs, int fd, int n)
{
	static char block[4096];
	memset(block, 'c', sizeof(block));
	double *lat = malloc(sizeof(double) * n);
	if (!lat)
		return -1;
	for (int i = 0; i < n; i++) {
		double t0 = now_us();
		if (cairn_write(fs, fd, block, sizeof(block)) != (ssize_t)sizeof(block)) {
			free(lat);
			return -1;
		}
		lat[i] = now_us() - t0;
	}
	qsort(lat, n, sizeof(double), cmp_double);
	double m = lat[n / 2];
	free(lat);
	return m;
}

static int demo_steps(cairn_fs *fs)
{
	cairn_mkdir(fs, "/demo", 0755); /* may exist from an earlier run */
	int fd = cairn_open(fs, "/demo/hello.txt", O_CREAT | O_TRUNC | O_WRONLY, 0644);
	const char msg[] = "durable the moment write() returned: no fsync needed\n";
	if (fd < 0 || cairn_write(fs, fd, msg, sizeof(msg) - 1) < 0 || cairn_close(fs, fd))
		return -1;
	printf("  wrote /demo/hello.txt (%zu bytes)\n", sizeof(msg) - 1);
	if (cairn_rename(fs, "/demo/hello.txt", "/demo/greeting.txt", 0))
		return -1;
	printf("  renamed it to /demo/greeting.txt, atomically\n");
	char buf[128] = {0};
	fd = cairn_open(fs, "/demo/greeting.txt", O_RDONLY);
	if (fd < 0 || cairn_read(fs, fd, buf, sizeof(buf) - 1) < 0 || cairn_close(fs, fd))
		return -1;
	printf("  read back: %s", buf);
	fd = cairn_open(fs, "/demo/appends.log", O_CREAT | O_TRUNC | O_WRONLY | O_APPEND, 0644);
	if (fd < 0)
		return -1;
	double med = append_median(fs, fd, 2000);
	cairn_close(fs, fd);
	if (med < 0)
		return -1;
	printf("  2000 durable 4 KiB appends: median %.2f us each\n", med);
	return 0;
}

static int cmd_demo(int argc, char **argv)
{
	if (argc != 2 || !strcmp(argv[1], "--help")) {
		puts("Usage: cairn demo VOLUME\nMount VOLUME through the native API and show what "
		     "cairn does.");
		return argc == 2 ? 0 : 2;
	}
	const char *vol = argv[1];
	/* A volume its daemon serves is used as a client of the daemon. */
	cairn_fs *fs = cairn_attach(vol);
	int attached = fs != NULL;
	if (!fs)
		fs = cairn_mount(vol, NULL);
	if (!fs)
		return api_error(vol);
	if (attached)
		printf("cairn: attached to the daemon serving %s (writes go into this process's "
		       "own log, other calls are requests to the daemon)\n",
		       vol);
	else
		printf("cairn: mounted %s (recovery done: the log was replayed and digested)\n",
		       vol);
	int rc = demo_steps(fs);
	if (rc)
		api_error("demo");
	struct cairn_info in;
	cairn_info(fs, &in);
	printf("  log: %llu undigested records; %llu checkpoints so far\n",
	       (unsigned long long)in.undigested_records, (unsigned long long)in.checkpoints);
	if (cairn_unmount(fs))
		return api_error(vol);
	printf("cairn: %s %s\n", attached ? "detached from" : "unmounted", vol);
	return rc ? 1 : 0;
}

/* ---- mount and umount ------------------------------------------------------ */

static const char mount_help[] =
    "Usage: cairn mount VOLUME MOUNTPOINT [OPTIONS]\n"
    "Serve the volume VOLUME at the directory MOUNTPOINT through FUSE, so that\n"
    "every program can use it.  Runs as a daemon until 'cairn umount MOUNTPOINT'.\n\n"
    "  -f, --foreground    stay in the foreground (Ctrl-C unmounts)\n"
    "  --batch MS          batch mode: changes become durable on fsync or within\n"
    "                      MS milliseconds (default: sync mode, every change is\n"
    "                      durable when its call returns)\n"
    "  -o OPTS             more FUSE mount options, comma-separated (e.g. ro,\n"
    "                      debug); may be repeated\n"
    "  --high-watermark N  tiers: when a tier is more than N% full (default 80),\n"
    "                      its coldest data moves to the tier below ...\n"
    "  --low-watermark N   ... until it is at most N% full (default 60)\n"
    "  --no-promote        never move data read often back to the fast tier\n";

/* A percentage 1..100 for a watermark option; 0 when malformed. */
static int parse_percent(const char *s)
{
	char *end;
	long v = strtol(s, &end, 10);
	return (*end || end == s || v < 1 || v > 100) ? 0 : (int)v;
}

/* Joins repeated -o options with commas; NULL on no memory. */
static char *add_options(char *all, const char *more)
{
	size_t n = all ? strlen(all) : 0;
	char *r = realloc(all, n + strlen(more) + 2);
	if (!r) {
		free(all);
		return NULL;
	}
	if (n)
		r[n++] = ',';
	strcpy(r + n, more);
	return r;
}

/* The -o option naming the mount that cairn sets itself, or NULL.  The
 * mount's source "cairn:VOLUME" and type "fuse.cairn" are how `cairn
 * umount` and `cairn stat` know a cairn mount and its volume, so a user's
 * fsname= or subtype= (libfuse takes the last one given) is refused.
 * Options are split as libfuse splits them: at commas not escaped by a
 * backslash. */
static const char *naming_option(const char *options)
{
	static const char *const names[] = {"fsname=", "subtype="};
	for (const char *opt = options; opt && *opt;) {
		for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
			if (!strncmp(opt, names[i], strlen(names[i])))
				return names[i];
		while (*opt && *opt != ',')
			opt += (opt[0] == '\\' && opt[1]) ? 2 : 1;
		opt += *opt == ',';
	}
	return NULL;
}

/* The mount point must be a directory: the kernel would mount the volume
 * over a file too, and every access would then fail. */
static int check_mountpoint(const char *mp)
{
	struct stat st;
	if (stat(mp, &st)) {
		fprintf(stderr, "cairn: mount: %s: %s\n", mp, strerror(errno));
		return 1;
	}
	if (!S_ISDIR(st.st_mode)) {
		fprintf(stderr, "cairn: mount: %s: %s\n", mp, strerror(ENOTDIR));
		return 1;
	}
	return 0;
}

int cmd_mount(int argc, char **argv)
{
	static const struct option longopts[] = {{"foreground", no_argument, 0, 'f'},
	                                         {"batch", required_argument, 0, 'b'},
	                                         {"high-watermark", required_argument, 0, 'H'},
	                                         {"low-watermark", required_argument, 0, 'W'},
	                                         {"no-promote", no_argument, 0, 'P'},
	                                         {"help", no_argument, 0, 'h'},
	                                         {0, 0, 0, 0}};
	struct cairn_fuse_opts o = {0};
	char *options = NULL, *end;
	int c, rc = 2;
	while ((c = getopt_long(argc, argv, "fo:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'f':
			o.foreground = 1;
			break;
		case 'b':
			o.batch_ms = (int)strtol(optarg, &end, 10);
			if (*end || end == optarg || o.batch_ms <= 0 || o.batch_ms > 3600000) {
				usage_error("invalid batch interval '%s' (milliseconds)", optarg);
				goto out;
			}
			break;
		case 'H':
		case 'W':
			if (!(*(c == 'H' ? &o.high_watermark : &o.low_watermark) =
			          parse_percent(optarg))) {
				usage_error("invalid watermark '%s' (a percentage, 1-100)", optarg);
				goto out;
			}
			break;
		case 'P':
			o.no_promotion = 1;
			break;
		case 'o':
			if (!(options = add_options(options, optarg))) {
				fprintf(stderr, "cairn: mount: out of memory\n");
				return 1;
			}
			break;
		case 'h':
			fputs(mount_help, stdout);
			rc = 0;
			goto out;
		default:
			option_error();
			goto out;
		}
	}
	if (optind != argc - 2) {
		usage_error("%s", "expected a VOLUME and a MOUNTPOINT");
		goto out;
	}
	const char *naming = naming_option(options);
	if (naming) {
		usage_error("-o %s: cairn names its mounts itself (fsname=cairn:VOLUME, "
		            "subtype=cairn): that is how umount and stat find them",
		            naming);
		goto out;
	}
	if ((rc = check_mountpoint(argv[optind + 1])))
		goto out;
	o.options = options;
	rc = cairn_fuse_main(argv[optind], argv[optind + 1], &o);
out:
	free(options);
	return rc;
}

static const char umount_help[] =
    "Usage: cairn umount MOUNTPOINT [--lazy]\n"
    "Unmount a volume mounted with 'cairn mount', and wait until its daemon has\n"
    "unmounted the volume (it may then be mounted again at once).\n\n"
    "  -l, --lazy          detach the mount point now, even if files are open in\n"
    "                      it; the daemon exits when the last one is closed\n";

static int cmd_umount(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"lazy", no_argument, 0, 'l'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
	int c, lazy = 0;
	while ((c = getopt_long(argc, argv, "lh", longopts, NULL)) != -1) {
		switch (c) {
		case 'l':
			lazy = 1;
			break;
		case 'h':
			fputs(umount_help, stdout);
			return 0;
		default:
			return option_error();
		}
	}
	if (optind != argc - 1)
		return usage_error("%s", "expected one MOUNTPOINT");
	return cairn_fuse_umount(argv[optind], lazy);
}

/* ---- fsck ---------------------------------------------------------------- */

static const char fsck_help[] =
    "Usage: cairn fsck VOLUME [--repair] [--json]\n"
    "Check every structure of an unmounted volume and report each problem with\n"
    "its location.\n\n"
    "  --repair            fix what is safe, through the journal (a volume whose\n"
    "                      log holds undigested records is first mounted and\n"
    "                      unmounted, which recovers and digests them)\n"
    "  --json              print one JSON object instead of lines\n\n"
    "Exit status: 0 clean, 1 problems found (and left), 2 usage error,\n"
    "3 repaired (was damaged, now clean), 4 cannot check (volume refused).\n";

static int cmd_fsck(int argc, char **argv)
{
	static const struct option longopts[] = {{"repair", no_argument, 0, 'r'},
	                                         {"json", no_argument, 0, 'j'},
	                                         {"help", no_argument, 0, 'h'},
	                                         {0, 0, 0, 0}};
	struct fsck_opts o = {0};
	int c, json = 0;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'r':
			o.repair = 1;
			break;
		case 'j':
			json = 1;
			break;
		case 'h':
			fputs(fsck_help, stdout);
			return 0;
		default:
			option_error();
			return FSCK_USAGE;
		}
	}
	if (optind != argc - 1)
		return usage_error("%s", "expected one VOLUME directory");
	const char *vol = argv[optind];
	/* The bar redraws one line in place: only on a terminal. */
	o.progress = isatty(STDERR_FILENO);
	struct fsck_report r;
	int rc = fsck_run(vol, &o, &r);
	if (json)
		fsck_print_json(stdout, vol, &r);
	else
		fsck_print_text(rc == FSCK_REFUSED ? stderr : stdout, vol, &r);
	fsck_report_free(&r);
	return rc;
}

/* ---- main ---------------------------------------------------------------- */

static const char main_help[] =
    "Usage: cairn COMMAND [ARGS]\n"
    "cairn is a crash-consistent file system in user space: every change is\n"
    "durable when the call returns.\n\n"
    "Commands:\n"
    "  mkfs VOLUME [OPTIONS]   create a volume\n"
    "  stat VOLUME|MOUNTPOINT [--json|--prometheus] [--watch [S]]\n"
    "                          show the use of the log and the tiers\n"
    "  demo VOLUME             write, rename and read files; time durable appends\n"
    "  mount VOLUME MOUNTPOINT serve a volume through FUSE to every program\n"
    "  umount MOUNTPOINT       unmount it\n"
    "  fsck VOLUME [--repair]  check (and repair) an unmounted volume\n"
    "  scrub VOLUME|MOUNTPOINT verify every data block against its checksum\n"
    "  serve VOLUME            serve the volume to client processes, no mount\n"
    "  tune VOLUME|MOUNTPOINT [OPTIONS]\n"
    "                          change the watermarks, promotion, batch interval\n"
    "  tier add VOLUME|MOUNTPOINT NAME=PATH[:SIZE[:UNIT]]\n"
    "  tier remove VOLUME|MOUNTPOINT NAME\n"
    "  tier grow VOLUME|MOUNTPOINT NAME SIZE\n"
    "                          add a capacity tier, empty and remove one, grow one\n"
    "                          (the fast tier too)\n"
    "  run [--mount MP] -- PROGRAM [ARGS]\n"
    "                          run a program on the native path (preload shim)\n\n"
    "Run 'cairn COMMAND --help' for the options of a command.\n";

int main(int argc, char **argv)
{
	const char *name = strrchr(argv[0], '/');
	if (!strcmp(name ? name + 1 : argv[0], "mount.cairn"))
		return cmd_mount_helper(argc, argv);
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		fputs(main_help, stdout);
		return argc < 2 ? 2 : 0;
	}
	prog_cmd = argv[1];
	/* getopt names argv[0] in its messages ("option '--log-size' requires
	 * an argument"): the command's, as "cairn: mkfs", like ours. */
	static char shown[64];
	snprintf(shown, sizeof(shown), "cairn: %s", prog_cmd);
	argv[1] = shown;
	if (!strcmp(prog_cmd, "mkfs"))
		return cmd_mkfs(argc - 1, argv + 1);
	if (!strcmp(prog_cmd, "stat"))
		return cmd_stat(argc - 1, argv + 1);
	if (!strcmp(prog_cmd, "demo"))
		return cmd_demo(argc - 1, argv + 1);
	if (!strcmp(prog_cmd, "mount"))
		return cmd_mount(argc - 1, argv + 1);
	if (!strcmp(prog_cmd, "umount"))
		return cmd_umount(argc - 1, argv + 1);
	if (!strcmp(prog_cmd, "fsck"))
		return cmd_fsck(argc - 1, argv + 1);
	if (!strcmp(prog_cmd, "scrub"))
		return cmd_scrub(argc - 1, argv + 1);
	if (!strcmp(prog_cmd, "serve"))
		return cmd_serve(argc - 1, argv + 1);
	if (!strcmp(prog_cmd, "run"))
		return cmd_run(argc - 1, argv + 1);
	if (!strcmp(prog_cmd, "tune"))
		return cmd_tune(argc - 1, argv + 1);
	if (!strcmp(prog_cmd, "tier"))
		return cmd_tier(argc - 1, argv + 1);
	if (!strcmp(prog_cmd, "keeper")) /* started by a mount's daemon only */
		return cairn_fuse_keeper_main(argc - 1, argv + 1);
	fprintf(stderr, "cairn: unknown command '%s'\nTry 'cairn --help'.\n", prog_cmd);
	return 2;
}
