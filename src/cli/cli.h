/*
 * cli.h - what the files of the cairn command share.
 *
 * Owns: nothing.  The commands live in cairn.c, but for stat (stat.c), scrub
 * (scrub.c), serve (serve.c), run (run.c), tune (tune.c), tier (tier.c) and mount.cairn
 * (mount_helper.c); progress.c draws the progress of long ones.
 */
#ifndef CAIRN_CLI_H
#define CAIRN_CLI_H

#include <stdint.h>

extern const char *prog_cmd; /* the command being run: "mkfs", ... */

/* "cairn: CMD: <fmt with arg>" and a hint; returns 2, the usage exit code. */
int usage_error(const char *fmt, const char *arg);
/* "cairn: CMD: WHAT: <the API's last error>"; returns 1. */
int api_error(const char *what);

int cmd_stat(int argc, char **argv);
int cmd_mount(int argc, char **argv);
int cmd_mount_helper(int argc, char **argv);
int cmd_scrub(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_tune(int argc, char **argv);
int cmd_tier(int argc, char **argv);

/* "NAME=PATH[:SIZE[:UNIT]]" (cut up in place) into t; what is wrong, or
 * NULL. */
struct cairn_tier_opts;
const char *cli_parse_tier(char *arg, struct cairn_tier_opts *t);
/* "64M", "1G", "4096" -> bytes; 0 on a malformed size. */
uint64_t cli_parse_size(const char *s);

/* Progress of the library's long operations (cairn_set_progress_handler)
 * drawn on stderr while between the two calls, if it is a terminal. */
void cli_progress_start(void);
void cli_progress_end(void);
/* Draws one step of a command's own long operation, as the handler does. */
void cli_progress_note(const char *what, uint64_t done, uint64_t total);

#endif
