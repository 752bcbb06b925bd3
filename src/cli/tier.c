/*
 * tier.c - `cairn tier add VOLUME|MOUNTPOINT NAME=PATH[:SIZE[:UNIT]]` and
 * `cairn tier remove VOLUME|MOUNTPOINT NAME`: a capacity tier added to a
 * volume, or emptied and removed, while the volume runs.
 *
 * Owns: nothing.  May call: include/cairn.h, the progress line.
 *
 * A served volume is changed through its daemon (root only); another is
 * mounted for the change.  Removal moves the tier's data away in steps,
 * drawing its progress between them; an interrupt (^C, SIGTERM) stops it
 * after the step under way and gives the tier back its place: every step
 * is committed, so nothing is lost either way, and running the command
 * again goes on from there.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cairn.h"
#include "cli/cli.h"

#define STEP_BYTES (256ull << 20) /* moved per request: the progress's grain */

static const char tier_help[] =
    "Usage: cairn tier add VOLUME|MOUNTPOINT NAME=PATH[:SIZE[:UNIT]] [--force]\n"
    "       cairn tier remove VOLUME|MOUNTPOINT NAME\n"
    "       cairn tier grow VOLUME|MOUNTPOINT NAME SIZE\n"
    "Change the tiers of a volume while it runs.  A served volume\n"
    "(mounted, or 'cairn serve') changes at once (root only); another is mounted\n"
    "for the change.\n\n"
    "add     PATH (a file, made if missing, of SIZE bytes, or a block device)\n"
    "        becomes the slowest tier; UNIT is its allocation unit (4K, or 1M for a\n"
    "        tier named hdd).  An existing file that is not empty, or a device\n"
    "        holding data, is refused unless --force.\n"
    "remove  moves the tier's data to the other tiers (slower ones first, the fast\n"
    "        tier last), showing its progress, then removes the tier; the file or\n"
    "        device is left as it is.  ^C stops the move and keeps the tier, with\n"
    "        nothing lost; running it again goes on.\n"
    "grow    the tier takes SIZE bytes of its file (made that large) or device\n"
    "        (which must be; 0: all of it).  NAME fast grows the fast tier: more\n"
    "        blocks for data and trees, the same inodes.\n\n"
    "  --force  add: take a file or device that holds data (it is overwritten)\n";

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

/* The served volume's daemon, or a mount of the volume for the change. */
static cairn_fs *open_volume(const char *vol)
{
	cairn_fs *fs = cairn_attach(vol);
	if (!fs) {
		struct cairn_mount_opts mo = {0};
		fs = cairn_mount(vol, &mo);
	}
	return fs;
}

static int close_volume(cairn_fs *fs, const char *vol, int rc)
{
	if (cairn_unmount(fs) && !rc)
		rc = api_error(vol);
	return rc;
}

/* Explains an errno the daemon gave without a sentence of its own. */
static int tier_error(const char *vol)
{
	if (errno == EPERM && !cairn_last_error()[0]) {
		fprintf(stderr, "cairn: tier: %s: %s (the daemon lets root alone change tiers)\n",
		        vol, strerror(errno));
		return 1;
	}
	return api_error(vol);
}

static int tier_add(const char *vol, char *spec, int force)
{
	struct cairn_tier_opts t = {0};
	char shown[1024];
	snprintf(shown, sizeof(shown), "tier '%s': ", spec);
	const char *bad = cli_parse_tier(spec, &t);
	if (bad)
		return usage_error("%s", strncat(shown, bad, sizeof(shown) - 1 - strlen(shown)));
	cairn_fs *fs = open_volume(vol);
	if (!fs)
		return api_error(vol);
	int rc = cairn_tier_add(fs, &t, force) ? tier_error(vol) : 0;
	if (!rc)
		printf("tier %s added to %s\n", t.name, vol);
	return close_volume(fs, vol, rc);
}

/* The bytes tier `name` holds now, from cairn_info; 0 if none such. */
static uint64_t bytes_on(cairn_fs *fs, const char *name)
{
	struct cairn_info in;
	if (cairn_info(fs, &in))
		return 0;
	for (unsigned t = 1; t < in.tier_count; t++)
		if (!strcmp(in.tiers[t].name, name) && in.tiers[t].blocks)
			return (in.tiers[t].blocks - in.tiers[t].free_blocks) * 4096;
	return 0;
}

/* Moves the tier's data away step by step; 0 when none is left, 3 when
 * interrupted, 1 on an error (said). */
static int evacuate(cairn_fs *fs, const char *vol, const char *name)
{
	uint64_t total = bytes_on(fs, name), left = total;
	char what[64];
	snprintf(what, sizeof(what), "moving tier %s's data", name);
	while (!stop) {
		if (cairn_tier_evacuate(fs, name, STEP_BYTES, &left)) {
			cli_progress_end();
			return tier_error(vol);
		}
		if (left > total)
			total = left; /* written to meanwhile */
		cli_progress_note(what, total - left, total);
		if (left == 0)
			return 0;
	}
	cli_progress_end();
	fprintf(stderr,
	        "cairn: tier: %s: cancelled: tier %s keeps its place and its %llu MiB "
	        "(%llu MiB moved); run the command again to go on\n",
	        vol, name, (unsigned long long)(left >> 20),
	        (unsigned long long)((total - left) >> 20));
	return 3;
}

static int tier_remove(const char *vol, const char *name)
{
	cairn_fs *fs = open_volume(vol);
	if (!fs)
		return api_error(vol);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	cli_progress_start();
	int rc = evacuate(fs, vol, name);
	cli_progress_end();
	if (rc)
		cairn_tier_keep(fs, name);
	else if (cairn_tier_remove(fs, name))
		rc = tier_error(vol);
	else
		printf("tier %s removed from %s; its file or device is left as it was\n", name,
		       vol);
	return close_volume(fs, vol, rc);
}

static int tier_grow(const char *vol, const char *name, const char *size_arg)
{
	uint64_t size = strcmp(size_arg, "0") ? cli_parse_size(size_arg) : 0;
	if (!size && strcmp(size_arg, "0"))
		return usage_error("invalid size '%s'", size_arg);
	cairn_fs *fs = open_volume(vol);
	if (!fs)
		return api_error(vol);
	int rc = cairn_tier_grow(fs, name, size) ? tier_error(vol) : 0;
	if (!rc)
		printf("tier %s of %s grown\n", name, vol);
	return close_volume(fs, vol, rc);
}

int cmd_tier(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"force", no_argument, 0, 'f'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
	int force = 0, c;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		if (c == 'h') {
			fputs(tier_help, stdout);
			return 0;
		}
		if (c != 'f') {
			fprintf(stderr, "Try 'cairn tier --help'.\n");
			return 2;
		}
		force = 1;
	}
	const char *verb = optind < argc ? argv[optind] : "";
	if (argc - optind != (strcmp(verb, "grow") ? 3 : 4))
		return usage_error("%s", "expected add VOLUME NAME=PATH[:SIZE[:UNIT]], remove "
		                         "VOLUME NAME or grow VOLUME NAME SIZE");
	const char *vol = argv[optind + 1];
	if (!strcmp(verb, "grow"))
		return force ? usage_error("%s", "--force is for add")
		             : tier_grow(vol, argv[optind + 2], argv[optind + 3]);
	if (!strcmp(verb, "add"))
		return tier_add(vol, argv[optind + 2], force);
	if (!strcmp(verb, "remove")) {
		if (force)
			return usage_error("%s", "--force is for add");
		return tier_remove(vol, argv[optind + 2]);
	}
	return usage_error("unknown tier command '%s' (add or remove)", verb);
}
