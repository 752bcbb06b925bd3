/*
 * stat.c - `cairn stat VOLUME|MOUNTPOINT [--json | --prometheus]
 * [--watch [SECONDS] [--count N]]`: the use of the log and the tiers, and
 * the volume's counters, for people (lines), programs (one JSON object)
 * and Prometheus (its text exposition format, for node_exporter's textfile
 * collector).  --watch shows them again every SECONDS (default 2): on a
 * terminal in place, as watch(1) does; elsewhere one output after another.
 *
 * Owns: the output formats.  May call: include/cairn.h, the FUSE front
 * end's cairn_fuse_info (a mount of an older daemon), libc.
 */
#include <errno.h>
#include <limits.h>
#include <getopt.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cairn.h"
#include "cli/cli.h"
#include "fuse/cairn_fuse.h"

static const char stat_help[] =
    "Usage: cairn stat VOLUME|MOUNTPOINT [--json | --prometheus] [--watch [SECONDS]]\n"
    "Show the use of the log and the tiers, and the volume's counters.  A served\n"
    "volume (mounted, or 'cairn serve') is asked through its daemon; another is\n"
    "read without being changed.\n\n"
    "  --json              one JSON object\n"
    "  --prometheus        Prometheus' text format (for node_exporter's textfile\n"
    "                      collector: write it to a .prom file)\n"
    "  --watch [SECONDS]   show it again every SECONDS (default 2) until\n"
    "                      interrupted; on a terminal in place\n"
    "  --count N           with --watch: stop after N times\n";

enum stat_format { STAT_HUMAN, STAT_JSON, STAT_PROMETHEUS };

/* ---- reading ------------------------------------------------------------ */

/* The volume's state into *in, and into *draining the tiers being
 * emptied (cairn_tier_draining): 0, or 1 after saying why not. */
static int read_info(const char *vol, struct cairn_info *in, uint32_t *draining)
{
	*draining = 0;
	/* A served volume (mounted or `cairn serve`): ask its daemon, as a
	 * client, which any user it admits may be.  Only a served volume has
	 * a tier draining: the mark lasts while its removal runs. */
	cairn_fs *served = cairn_attach(vol);
	int rc = served ? cairn_info(served, in) : -ENOENT;
	if (served && !rc)
		rc = cairn_tier_draining(served, draining);
	if (served) {
		cairn_unmount(served);
		if (rc)
			return api_error(vol);
	}
	/* Else a mounted volume of an older daemon: ask it through its mount.
	 * Otherwise read the volume itself, read-only: recovery happens in
	 * memory and the volume is not touched. */
	if (rc)
		rc = cairn_fuse_info(vol, in);
	/* The daemon answers through a trusted.* attribute, which the kernel
	 * hides (ENODATA) from all but root. */
	if (rc == -EPERM || rc == -EACCES || (rc == -ENODATA && geteuid() != 0)) {
		fprintf(stderr,
		        "cairn: stat: %s: %s (a mount's state is read through the %s attribute, "
		        "which only root may read)\n",
		        vol, strerror(EACCES), CFUSE_INFO_XATTR);
		return 1;
	}
	if (rc != 0) {
		struct cairn_mount_opts mo = {.read_only = 1, .no_digest_thread = 1};
		cairn_fs *fs = cairn_mount(vol, &mo);
		if (!fs)
			return api_error(vol);
		cairn_info(fs, in);
		cairn_unmount(fs);
	}
	return 0;
}

/* MiB/s of migration over the time its batches took. */
static double migrate_rate(const struct cairn_info *in)
{
	uint64_t blocks = 0;
	for (unsigned t = 0; t < in->tier_count; t++)
		blocks += in->tiers[t].out;
	return in->migrate_ns ? blocks * in->block_size / 1048576.0 / (in->migrate_ns / 1e9) : 0;
}

/* A capacity tier removed from the volume: it keeps its number, and has
 * no blocks (a tier in use has at least one). */
static int tier_removed(const struct cairn_info *in, unsigned t)
{
	return t > 0 && in->tiers[t].blocks == 0;
}

/* ---- lines for people --------------------------------------------------- */

static void print_tiers(const struct cairn_info *in, uint32_t draining)
{
	double mib = 1024.0 * 1024.0;
	printf("tiers         %-6s %11s %11s %6s %9s %11s %11s %11s\n", "name", "size MiB",
	       "used MiB", "use", "extents", "in-down MiB", "in-up MiB", "out MiB");
	for (unsigned t = 0; t < in->tier_count; t++) {
		const struct cairn_tier_info *ti = &in->tiers[t];
		uint64_t used = ti->blocks - ti->free_blocks;
		if (tier_removed(in, t)) {
			printf("              %-6s removed (cairn tier remove)\n", ti->name);
			continue;
		}
		printf("              %-6s %11.1f %11.1f %5.1f%% %9llu %11.1f %11.1f %11.1f%s\n",
		       ti->name, ti->blocks * in->block_size / mib, used * in->block_size / mib,
		       ti->blocks ? 100.0 * used / ti->blocks : 0.0,
		       (unsigned long long)ti->extents, ti->in_down * in->block_size / mib,
		       ti->in_up * in->block_size / mib, ti->out * in->block_size / mib,
		       draining >> t & 1 ? "  draining" : "");
	}
	printf("migration     watermarks %d%%/%d%% (high/low), promotion %s; %llu batches, "
	       "%.1f MiB/s while moving\n",
	       in->high_watermark, in->low_watermark, in->promotion ? "on" : "off",
	       (unsigned long long)in->migrations, migrate_rate(in));
}

static void print_human(const char *vol, const struct cairn_info *in, uint32_t draining)
{
	double mib = 1024.0 * 1024.0;
	uint64_t used = in->fast_blocks - in->fast_free_blocks;
	printf("volume        %s\n", vol);
	printf("media         %s%s\n", in->media,
	       strcmp(in->media, "emul") ? "" : " (DRAM emulating pmem: not power-safe)");
	if (in->batch_ms)
		printf("mode          batch (durable within %d ms)\n", in->batch_ms);
	else
		printf("mode          sync\n");
	printf("log           %.1f MiB used of %.1f MiB (%llu undigested records)\n",
	       in->log_used / mib, in->log_capacity / mib,
	       (unsigned long long)in->undigested_records);
	printf("fast tier     %.1f MiB used of %.1f MiB (%.1f%%)\n", used * in->block_size / mib,
	       in->fast_blocks * in->block_size / mib,
	       in->fast_blocks ? 100.0 * used / in->fast_blocks : 0.0);
	printf("inodes        %llu used of %llu (%llu directories)\n",
	       (unsigned long long)(in->inodes - in->free_inodes), (unsigned long long)in->inodes,
	       (unsigned long long)in->directories);
	printf("digest lag    %llu records, %.1f MiB in the log\n",
	       (unsigned long long)in->undigested_records, in->log_used / mib);
	printf("operations    %llu digested over the volume's life\n",
	       (unsigned long long)in->ops_digested);
	printf("clients       %llu with logs of their own; %llu local writes applied since mount\n",
	       (unsigned long long)in->client_logs, (unsigned long long)in->client_records);
	if (in->tier_count > 1)
		print_tiers(in, draining);
}

/* ---- JSON ---------------------------------------------------------------- */

/* s as the inside of a JSON string. */
static void json_string(const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
}

static void print_json_tiers(const struct cairn_info *in, uint32_t draining)
{
	printf(", \"high_watermark\": %d, \"low_watermark\": %d, \"promotion\": %s, "
	       "\"migrations\": %llu, \"migrate_mib_per_s\": %.1f, \"tiers\": [",
	       in->high_watermark, in->low_watermark, in->promotion ? "true" : "false",
	       (unsigned long long)in->migrations, migrate_rate(in));
	for (unsigned t = 0; t < in->tier_count; t++) {
		const struct cairn_tier_info *ti = &in->tiers[t];
		printf("%s{\"name\": \"", t ? ", " : "");
		json_string(ti->name);
		printf("\", \"removed\": %s, \"draining\": %s, \"blocks\": %llu, "
		       "\"free_blocks\": %llu, \"extents\": %llu, \"in_down_blocks\": %llu, "
		       "\"in_up_blocks\": %llu, "
		       "\"out_blocks\": %llu}",
		       tier_removed(in, t) ? "true" : "false", draining >> t & 1 ? "true" : "false",
		       (unsigned long long)ti->blocks, (unsigned long long)ti->free_blocks,
		       (unsigned long long)ti->extents, (unsigned long long)ti->in_down,
		       (unsigned long long)ti->in_up, (unsigned long long)ti->out);
	}
	printf("]");
}

static void print_json(const char *vol, const struct cairn_info *in, uint32_t draining)
{
	printf("{\"volume\": \"");
	json_string(vol);
	printf("\", \"media\": \"%s\", \"mode\": \"%s\", "
	       "\"block_size\": %llu, \"log_capacity\": %llu, \"log_used\": %llu, "
	       "\"undigested_records\": %llu, \"fast_blocks\": %llu, \"fast_free_blocks\": %llu, "
	       "\"inodes\": %llu, \"free_inodes\": %llu, \"directories\": %llu, "
	       "\"checkpoints\": %llu, \"ops_logged\": %llu, \"ops_digested\": %llu",
	       in->media, in->batch_ms ? "batch" : "sync", (unsigned long long)in->block_size,
	       (unsigned long long)in->log_capacity, (unsigned long long)in->log_used,
	       (unsigned long long)in->undigested_records, (unsigned long long)in->fast_blocks,
	       (unsigned long long)in->fast_free_blocks, (unsigned long long)in->inodes,
	       (unsigned long long)in->free_inodes, (unsigned long long)in->directories,
	       (unsigned long long)in->checkpoints, (unsigned long long)in->ops_logged,
	       (unsigned long long)in->ops_digested);
	printf(", \"client_logs\": %llu, \"client_records\": %llu",
	       (unsigned long long)in->client_logs, (unsigned long long)in->client_records);
	print_json_tiers(in, draining);
	printf("}\n");
}

/* ---- Prometheus ---------------------------------------------------------- */

/*
 * The text exposition format: for each metric a HELP and a TYPE line, then
 * one sample per line, labelled with the volume (and the tier).  Counters
 * end in _total; those counted "since mount" start again at 0 when the
 * volume is mounted again, which Prometheus' rate() takes as a reset.
 */
struct prom {
	const char *vol;
};

/* A label's value: backslash, double quote and newline escaped. */
static void prom_label_value(const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			printf("\\%c", *s);
		else if (*s == '\n')
			printf("\\n");
		else
			putchar(*s);
	}
}

static void prom_head(const char *name, const char *type, const char *help)
{
	printf("# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One sample of name for the volume, with tier="tier" when tier is set. */
static void prom_sample(const struct prom *p, const char *name, const char *tier, double v)
{
	printf("%s{volume=\"", name);
	prom_label_value(p->vol);
	if (tier) {
		printf("\",tier=\"");
		prom_label_value(tier);
	}
	printf("\"} %.17g\n", v);
}

static void prom_metric(const struct prom *p, const char *name, const char *type, const char *help,
                        double v)
{
	prom_head(name, type, help);
	prom_sample(p, name, NULL, v);
}

/* A metric with one sample per tier: field is the offset of a uint64_t
 * in struct cairn_tier_info, scaled by scale. */
static void prom_tier_metric(const struct prom *p, const struct cairn_info *in, const char *name,
                             const char *type, const char *help, size_t field, double scale)
{
	prom_head(name, type, help);
	for (unsigned t = 0; t < in->tier_count; t++) {
		uint64_t v;
		if (tier_removed(in, t))
			continue; /* its series end with it */
		memcpy(&v, (const char *)&in->tiers[t] + field, sizeof(v));
		prom_sample(p, name, in->tiers[t].name, (double)v * scale);
	}
}

static void print_prometheus(const char *named, const struct cairn_info *in, uint32_t draining)
{
	/* One series per volume, however it was named (relative, by its
	 * mount point through a link ...): the real path of what was named. */
	char real[PATH_MAX];
	const char *vol = realpath(named, real) ? real : named;
	struct prom p = {vol};
	double bs = (double)in->block_size;
	prom_head("cairn_volume_info", "gauge",
	          "Constant 1, labelled with the volume's media and mode.");
	printf("cairn_volume_info{volume=\"");
	prom_label_value(vol);
	printf("\",media=\"%s\",mode=\"%s\"} 1\n", in->media, in->batch_ms ? "batch" : "sync");
	prom_metric(&p, "cairn_log_size_bytes", "gauge", "Bytes of the operation log's ring.",
	            (double)in->log_capacity);
	prom_metric(&p, "cairn_log_used_bytes", "gauge", "Bytes of undigested records in the log.",
	            (double)in->log_used);
	prom_metric(&p, "cairn_log_undigested_records", "gauge",
	            "Records in the log not yet digested into the shared area.",
	            (double)in->undigested_records);
	prom_metric(&p, "cairn_reserved_bytes", "gauge",
	            "Bytes of the fast tier promised to undigested writes.",
	            (double)in->reserved_blocks * bs);
	prom_metric(&p, "cairn_inodes", "gauge", "Inodes of the volume.", (double)in->inodes);
	prom_metric(&p, "cairn_inodes_free", "gauge", "Inodes free.", (double)in->free_inodes);
	prom_metric(&p, "cairn_directories", "gauge", "Directories in use, the root included.",
	            (double)in->directories);
	prom_metric(&p, "cairn_checkpoints_total", "counter", "Digests completed since mount.",
	            (double)in->checkpoints);
	prom_metric(&p, "cairn_ops_logged_total", "counter", "Records appended since mount.",
	            (double)in->ops_logged);
	prom_metric(&p, "cairn_ops_digested_total", "counter",
	            "Records digested over the volume's life.", (double)in->ops_digested);
	prom_metric(&p, "cairn_log_waits_total", "counter",
	            "Times a writer waited for the digest to free log space, since mount.",
	            (double)in->log_waits);
	prom_metric(&p, "cairn_data_errors_total", "counter",
	            "Data blocks found damaged (checksum mismatch) since mount.",
	            (double)in->data_errors);
	prom_metric(&p, "cairn_client_logs", "gauge",
	            "Client processes attached with logs of their own.", (double)in->client_logs);
	prom_metric(&p, "cairn_client_records_total", "counter",
	            "Records of client logs applied since mount.", (double)in->client_records);
	prom_metric(&p, "cairn_migrations_total", "counter",
	            "Migration batches between tiers committed since mount.",
	            (double)in->migrations);
	prom_metric(&p, "cairn_migration_seconds_total", "counter",
	            "Time the migration batches took since mount.", in->migrate_ns / 1e9);
	prom_tier_metric(&p, in, "cairn_tier_size_bytes", "gauge",
	                 "Bytes of the tier for data (and, on the fast tier, trees).",
	                 offsetof(struct cairn_tier_info, blocks), bs);
	prom_tier_metric(&p, in, "cairn_tier_free_bytes", "gauge", "Bytes of the tier free.",
	                 offsetof(struct cairn_tier_info, free_blocks), bs);
	prom_tier_metric(&p, in, "cairn_tier_extents", "gauge",
	                 "File extents with data on the tier.",
	                 offsetof(struct cairn_tier_info, extents), 1);
	prom_tier_metric(&p, in, "cairn_tier_migrated_in_from_above_bytes_total", "counter",
	                 "Bytes migrated into the tier from a faster one since mount.",
	                 offsetof(struct cairn_tier_info, in_down), bs);
	prom_tier_metric(&p, in, "cairn_tier_migrated_in_from_below_bytes_total", "counter",
	                 "Bytes promoted into the tier from a slower one since mount.",
	                 offsetof(struct cairn_tier_info, in_up), bs);
	prom_tier_metric(&p, in, "cairn_tier_migrated_out_bytes_total", "counter",
	                 "Bytes migrated out of the tier since mount.",
	                 offsetof(struct cairn_tier_info, out), bs);
	prom_head("cairn_tier_draining", "gauge",
	          "1 while the tier is being emptied for removal (cairn tier remove).");
	for (unsigned t = 0; t < in->tier_count; t++)
		if (!tier_removed(in, t))
			prom_sample(&p, "cairn_tier_draining", in->tiers[t].name,
			            draining >> t & 1);
}

/* ---- the command --------------------------------------------------------- */

static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig)
{
	(void)sig;
	interrupted = 1;
}

static int show_once(const char *vol, enum stat_format f)
{
	struct cairn_info in;
	uint32_t draining;
	int rc = read_info(vol, &in, &draining);
	if (rc)
		return rc;
	if (f == STAT_JSON)
		print_json(vol, &in, draining);
	else if (f == STAT_PROMETHEUS)
		print_prometheus(vol, &in, draining);
	else
		print_human(vol, &in, draining);
	fflush(stdout);
	return 0;
}

/* Sleeps s seconds, or less if interrupted. */
static void pause_for(double s)
{
	struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
	while (!interrupted && nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static int watch(const char *vol, enum stat_format f, double every, long count)
{
	int tty = isatty(STDOUT_FILENO);
	struct sigaction sa = {.sa_handler = on_interrupt};
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	int rc = 0;
	for (long n = 0; !interrupted && (count <= 0 || n < count); n++) {
		if (n)
			pause_for(every);
		if (interrupted)
			break;
		if (tty) {
			char when[32];
			time_t now = time(NULL);
			strftime(when, sizeof(when), "%F %T", localtime(&now));
			/* Home and clear, as watch(1) redraws. */
			printf("\033[H\033[2JEvery %gs: cairn stat %s    %s\n\n", every, vol, when);
		} else if (n && f == STAT_HUMAN) {
			putchar('\n');
		}
		if ((rc = show_once(vol, f)))
			break;
	}
	return rc;
}

int cmd_stat(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"json", no_argument, 0, 'j'},        {"prometheus", no_argument, 0, 'p'},
	    {"watch", optional_argument, 0, 'w'}, {"count", required_argument, 0, 'c'},
	    {"help", no_argument, 0, 'h'},        {0, 0, 0, 0}};
	enum stat_format f = STAT_HUMAN;
	int c, watching = 0;
	double every = 2;
	long count = 0;
	char *end;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'j':
		case 'p':
			if (f != STAT_HUMAN)
				return usage_error("%s",
				                   "--json and --prometheus: one or the other");
			f = c == 'j' ? STAT_JSON : STAT_PROMETHEUS;
			break;
		case 'w':
			watching = 1;
			/* "--watch 5" as well as "--watch=5": a number after it is
			 * its value, anything else the VOLUME. */
			if (!optarg && optind < argc && argv[optind][0] != '-' &&
			    strtod(argv[optind], &end) > 0 && !*end)
				optarg = argv[optind++];
			if (optarg) {
				every = strtod(optarg, &end);
				if (*end || end == optarg || !(every >= 0.1 && every <= 86400))
					return usage_error(
					    "invalid interval '%s' (seconds, 0.1 or more)", optarg);
			}
			break;
		case 'c':
			count = strtol(optarg, &end, 10);
			if (*end || end == optarg || count <= 0)
				return usage_error("invalid count '%s'", optarg);
			break;
		case 'h':
			fputs(stat_help, stdout);
			return 0;
		default:
			fprintf(stderr, "Try 'cairn stat --help'.\n");
			return 2;
		}
	}
	if (optind != argc - 1)
		return usage_error("%s",
		                   optind < argc ? "expected one VOLUME" : "expected a VOLUME");
	if (count && !watching)
		return usage_error("%s", "--count goes with --watch");
	/* A textfile collector reads one exposition, whole: a file of many
	 * would repeat each metric's family. */
	if (watching && f == STAT_PROMETHEUS)
		return usage_error("%s", "--watch and --prometheus: write the file again from a "
		                         "timer instead (one exposition per file)");
	const char *vol = argv[optind];
	return watching ? watch(vol, f, every, count) : show_once(vol, f);
}
