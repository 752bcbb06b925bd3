/*
 * outside.c - a program built outside the tree against an installed
 * cairn, with nothing but `pkg-config --cflags --libs cairn` (install.sh
 * builds it so, shared and static): makes a volume in DIR, writes a file,
 * unmounts, mounts again and reads it back.
 */
#include <cairn.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: outside DIR\n");
		return 2;
	}
	struct cairn_mkfs_opts mo = {
	    .log_size = 8 << 20, .fast_size = 32 << 20, .media = CAIRN_MEDIA_FILE};
	struct cairn_mount_opts o = {0};
	const char msg[] = "built outside the tree";
	char back[sizeof(msg)] = "";
	cairn_fs *fs = cairn_mkfs(argv[1], &mo) ? NULL : cairn_mount(argv[1], &o);
	int fd = fs ? cairn_open(fs, "/hello", O_CREAT | O_WRONLY, 0644) : -1;
	if (fd < 0 || cairn_write(fs, fd, msg, sizeof(msg)) != (ssize_t)sizeof(msg) ||
	    cairn_close(fs, fd) || cairn_unmount(fs)) {
		fprintf(stderr, "outside: %s\n", cairn_last_error());
		return 1;
	}
	fs = cairn_mount(argv[1], &o);
	fd = fs ? cairn_open(fs, "/hello", O_RDONLY) : -1;
	if (fd < 0 || cairn_read(fs, fd, back, sizeof(back)) != (ssize_t)sizeof(msg) ||
	    cairn_close(fs, fd) || cairn_unmount(fs) || memcmp(msg, back, sizeof(msg))) {
		fprintf(stderr, "outside: read back '%s': %s\n", back, cairn_last_error());
		return 1;
	}
	printf("outside: ok\n");
	return 0;
}
