/*
 * pagestore.c - what one store to a 4 KiB page of a mapped file costs, the
 * question behind bench/ram.sh.
 *
 *   bench_pagestore DIR [MIB]
 *
 * Maps a file of MIB MiB (default 256) in DIR with MAP_SHARED |
 * MAP_POPULATE, as the emul backend maps a part, and times 4 KiB copies
 * into it, each followed by a flush and a fence (pmem_flush, pmem_drain)
 * as a log record is written, in four passes over the same pages:
 *
 *   cold      the first copy into each page after MAP_POPULATE
 *   again     the same pages once more
 *   after-map the same pages after another file of 64 MiB was mapped and
 *             each of its pages written once (what a process does when
 *             its heap grows or another part is opened)
 *   again     once more
 *
 * Prints "pass=NAME ns_per_4k=..." per pass.  Reports, never fails.
 */
#include <fcntl.h>
#include <libpmem.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static char *map_new(const char *dir, const char *name, size_t size)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || posix_fallocate(fd, 0, (off_t)size) != 0) {
		perror(path);
		exit(1);
	}
	char *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
	close(fd);
	unlink(path);
	if (p == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	return p;
}

static void pass(const char *name, char *base, size_t size, const char *src)
{
	size_t n = size / 4096;
	double t0 = now_ns();
	for (size_t i = 0; i < n; i++) {
		memcpy(base + i * 4096, src, 4096);
		pmem_flush(base + i * 4096, 4096);
		pmem_drain();
	}
	printf("pass=%s ns_per_4k=%.0f\n", name, (now_ns() - t0) / (double)n);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: bench_pagestore DIR [MIB]\n");
		return 2;
	}
	size_t size = (size_t)(argc > 2 ? atol(argv[2]) : 256) << 20;
	static char src[4096];
	memset(src, 'a', sizeof(src));
	char *base = map_new(argv[1], "pagestore-a", size);
	pass("cold", base, size, src);
	pass("again", base, size, src);
	size_t other_size = 64u << 20;
	char *other = map_new(argv[1], "pagestore-b", other_size);
	for (size_t off = 0; off < other_size; off += 4096)
		other[off] = 1;
	pass("after-map", base, size, src);
	pass("again", base, size, src);
	munmap(other, other_size);
	munmap(base, size);
	return 0;
}
