/*
 * tune.c - `cairn tune VOLUME|MOUNTPOINT [OPTIONS]`: change the options of
 * a volume that may change while it runs (cairn_tune), or show them.
 *
 * Owns: nothing.  May call: include/cairn.h.
 *
 * A served volume (mounted, or `cairn serve`) is changed through its
 * daemon, at once; another is mounted for the change, which then waits in
 * its manifest for the next mount.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn.h"
#include "cli/cli.h"

static const char tune_help[] =
    "Usage: cairn tune VOLUME|MOUNTPOINT [OPTIONS]\n"
    "Change the options of a volume that may change while it runs; without\n"
    "options, show them.  A served volume (mounted, or 'cairn serve') changes at\n"
    "once (root only); another is mounted for the change.  The watermarks and\n"
    "promotion are stored in the volume as the defaults of its later mounts (the\n"
    "options a mount is given still win for it).\n\n"
    "  --high-watermark N  tiers: a tier fuller than N% moves its coldest data down\n"
    "  --low-watermark N   ... until it is at most N% full\n"
    "  --promote           move data read often back to the fast tier\n"
    "  --no-promote        never do\n"
    "  --batch MS          the interval of a volume mounted in batch mode (for\n"
    "                      this mount only: the mode is chosen at mount)\n";

static void show(const struct cairn_info *in)
{
	printf("watermarks    %d%% high, %d%% low\n", in->high_watermark, in->low_watermark);
	printf("promotion     %s\n", in->promotion ? "on" : "off");
	if (in->batch_ms)
		printf("mode          batch, durable within %d ms\n", in->batch_ms);
	else
		printf("mode          sync, durable when each call returns\n");
}

/* A whole number in [lo, hi] into *out; 0 when malformed or out of range. */
static int parse_int(const char *s, int lo, int hi, int *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || *end || end == s || v < lo || v > hi)
		return 0;
	*out = (int)v;
	return 1;
}

static int parse_tune_args(int argc, char **argv, struct cairn_tuning *t, int *any)
{
	static const struct option longopts[] = {{"high-watermark", required_argument, 0, 'H'},
	                                         {"low-watermark", required_argument, 0, 'W'},
	                                         {"promote", no_argument, 0, 'p'},
	                                         {"no-promote", no_argument, 0, 'P'},
	                                         {"batch", required_argument, 0, 'b'},
	                                         {"help", no_argument, 0, 'h'},
	                                         {0, 0, 0, 0}};
	int c;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		*any = 1;
		switch (c) {
		case 'H':
		case 'W':
			if (!parse_int(optarg, 1, 100,
			               c == 'H' ? &t->high_watermark : &t->low_watermark))
				return usage_error("invalid watermark '%s' (a percentage, 1-100)",
				                   optarg);
			break;
		case 'p':
		case 'P':
			if (t->promotion)
				return usage_error("%s",
				                   "--promote and --no-promote: one or the other");
			t->promotion = c == 'p' ? 1 : -1;
			break;
		case 'b':
			if (!parse_int(optarg, 1, 3600000, &t->batch_ms))
				return usage_error("invalid batch interval '%s' (milliseconds)",
				                   optarg);
			break;
		case 'h':
			fputs(tune_help, stdout);
			return -1;
		default:
			fprintf(stderr, "Try 'cairn tune --help'.\n");
			return 2;
		}
	}
	if (optind != argc - 1)
		return usage_error("%s", "expected one VOLUME or MOUNTPOINT");
	return 0;
}

/* The watermarks the tune would leave, checked here: through a daemon
 * the refusal would come back as EINVAL alone, without its reason. */
static int pair_fits(cairn_fs *fs, const struct cairn_tuning *t, const char *vol)
{
	struct cairn_info in;
	if (!(t->high_watermark || t->low_watermark) || cairn_info(fs, &in))
		return 1; /* nothing to check, or cairn_tune will say */
	int high = t->high_watermark ? t->high_watermark : in.high_watermark;
	int low = t->low_watermark ? t->low_watermark : in.low_watermark;
	if (low < high)
		return 1;
	fprintf(stderr,
	        "cairn: tune: %s: watermarks low %d%%, high %d%%: the low one must be below the "
	        "high one\n",
	        vol, low, high);
	return 0;
}

int cmd_tune(int argc, char **argv)
{
	struct cairn_tuning t = {0};
	int any = 0;
	int rc = parse_tune_args(argc, argv, &t, &any);
	if (rc)
		return rc < 0 ? 0 : rc;
	const char *vol = argv[optind];
	cairn_fs *fs = cairn_attach(vol);
	int served = fs != NULL;
	if (!fs) {
		struct cairn_mount_opts mo = {.read_only = !any};
		fs = cairn_mount(vol, &mo);
	}
	if (!fs)
		return api_error(vol);
	if (any && !pair_fits(fs, &t, vol)) {
		cairn_unmount(fs);
		return 1;
	}
	if (any && cairn_tune(fs, &t)) {
		int e = errno;
		if (e == EINVAL && t.batch_ms && !served)
			fprintf(stderr,
			        "cairn: tune: %s: --batch: the volume is not mounted, and its "
			        "mode is chosen at mount\n",
			        vol);
		else if (e == EPERM)
			fprintf(stderr, "cairn: tune: %s: %s (the daemon lets root alone tune)\n",
			        vol, strerror(e));
		else
			api_error(vol);
		cairn_unmount(fs);
		return 1;
	}
	struct cairn_info in;
	rc = cairn_info(fs, &in) ? api_error(vol) : 0;
	if (!rc)
		show(&in);
	if (cairn_unmount(fs) && !rc)
		rc = api_error(vol);
	return rc;
}
