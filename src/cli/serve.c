/*
 * serve.c - `cairn serve VOLUME`: the volume's daemon without a FUSE
 * mount, serving client processes (cairn_attach) on VOLUME/cairn.sock
 * until SIGTERM, SIGINT or SIGHUP, in the foreground (a service manager's
 * way: it supervises the process and collects its output).
 *
 * Owns: nothing.  May call: include/cairn.h, src/server/server.h.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "cairn.h"
#include "cli/cli.h"
#include "server/server.h"

static const char serve_help[] =
    "Usage: cairn serve VOLUME [--batch MS]\n"
    "Serve the volume to client processes (cairn_attach) on VOLUME/cairn.sock,\n"
    "without a FUSE mount, until SIGTERM, SIGINT or SIGHUP; stays in the\n"
    "foreground.  Run by root, it admits every user (each checked by POSIX\n"
    "permissions); otherwise only its own user and root.\n\n"
    "  --batch MS          batch mode: changes become durable on fsync or within\n"
    "                      MS milliseconds (default: sync mode)\n";

static void say(const char *msg)
{
	fprintf(stderr, "cairn: serve: %s\n", msg);
}

static int serve_until_signal(const char *vol, int batch_ms)
{
	/* Blocked before any thread starts, so that every thread inherits
	 * the mask and sigwait below is the one that takes them. */
	sigset_t stop;
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &stop, NULL);
	struct cairn_mount_opts mo = {.batch_ms = batch_ms};
	cairn_fs *fs = cairn_mount(vol, &mo);
	if (!fs)
		return api_error(vol);
	cairn_set_event_handler(say);
	struct ctl_server *srv = NULL;
	int rc = ctl_server_start(fs, vol, geteuid() == 0, say, NULL, &srv);
	if (rc) {
		fprintf(stderr, "cairn: serve: %s: cannot listen on its socket: %s\n", vol,
		        strerror(-rc));
		cairn_unmount(fs);
		return 1;
	}
	sd_notify(0, "READY=1");
	int sig;
	while (sigwait(&stop, &sig))
		;
	sd_notify(0, "STOPPING=1");
	ctl_server_stop(srv);
	if (cairn_unmount(fs))
		return api_error(vol);
	return 0;
}

int cmd_serve(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"batch", required_argument, 0, 'b'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
	int batch_ms = 0, c;
	char *end;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'b':
			batch_ms = (int)strtol(optarg, &end, 10);
			if (*end || end == optarg || batch_ms <= 0 || batch_ms > 3600000)
				return usage_error("invalid batch interval '%s' (milliseconds)",
				                   optarg);
			break;
		case 'h':
			fputs(serve_help, stdout);
			return 0;
		default:
			fprintf(stderr, "Try 'cairn serve --help'.\n");
			return 2;
		}
	}
	if (optind != argc - 1)
		return usage_error("%s", "expected a VOLUME");
	char vol[4096];
	if (!realpath(argv[optind], vol)) {
		fprintf(stderr, "cairn: serve: %s: %s\n", argv[optind], strerror(errno));
		return 1;
	}
	return serve_until_signal(vol, batch_ms);
}
