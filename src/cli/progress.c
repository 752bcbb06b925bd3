/*
 * progress.c - progress of a long command on a terminal: one line on
 * stderr, redrawn in place at most ten times a second, the way fsck and
 * scrub draw theirs; nothing at all when stderr is not a terminal.
 *
 * Owns: the line.  May call: include/cairn.h (its progress handler), libc.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cairn.h"
#include "cli/cli.h"

static struct {
	double last; /* when the line was last drawn, seconds */
	int drawn;   /* something is on the line */
	int pct;     /* the percentage drawn */
	char what[96];
} line;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void draw(const char *what, uint64_t done, uint64_t total)
{
	int pct = total ? (int)(done * 100 / total) : 100;
	double t = now_s();
	/* A new phase and the end of one are always drawn; in between, a
	 * new percentage at most every 0.1 s. */
	int same = line.drawn && !strcmp(line.what, what);
	if (same && done < total && (pct == line.pct || t - line.last < 0.1))
		return;
	/* Back to the start of the line, and clear what a longer one left. */
	fprintf(stderr, "\rcairn: %s: %s %3d%%\033[K", prog_cmd, what, pct);
	fflush(stderr);
	snprintf(line.what, sizeof(line.what), "%s", what);
	line.pct = pct;
	line.last = t;
	line.drawn = 1;
}

void cli_progress_start(void)
{
	memset(&line, 0, sizeof(line));
	if (isatty(STDERR_FILENO))
		cairn_set_progress_handler(draw);
}

void cli_progress_end(void)
{
	cairn_set_progress_handler(NULL);
	if (line.drawn)
		fputc('\n', stderr);
	line.drawn = 0;
}

void cli_progress_note(const char *what, uint64_t done, uint64_t total)
{
	if (isatty(STDERR_FILENO))
		draw(what, done, total);
}
