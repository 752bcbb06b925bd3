/*
 * notify_listen.c - plays systemd's side of sd_notify for the tests:
 *
 *   notify_listen SOCKET SECONDS
 *
 * binds a datagram socket at the path SOCKET (what a service finds in
 * NOTIFY_SOCKET) and prints every message it receives, each assignment on
 * a line of its own, until one says STOPPING=1 or SECONDS pass.  Exit 0
 * after STOPPING=1, 1 on a time-out, 2 on an error.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: notify_listen SOCKET SECONDS\n");
		return 2;
	}
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", argv[1]);
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	unlink(argv[1]);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a))) {
		perror("notify_listen");
		return 2;
	}
	time_t end = time(NULL) + atoi(argv[2]);
	char buf[4096];
	while (time(NULL) < end) {
		struct pollfd p = {fd, POLLIN, 0};
		if (poll(&p, 1, 100) <= 0)
			continue;
		ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
		if (n <= 0)
			continue;
		buf[n] = '\0';
		printf("%s%s", buf, buf[n - 1] == '\n' ? "" : "\n");
		fflush(stdout);
		if (strstr(buf, "STOPPING=1"))
			return 0;
	}
	return 1;
}
