#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
int main(int argc, char **argv)
{
	int mode = atoi(argv[1]) ? RTLD_LAZY : RTLD_NOW;
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	void *h = dlopen("libpmem.so.1", mode | RTLD_LOCAL);
	clock_gettime(CLOCK_MONOTONIC, &b);
	if (!h) return 1;
	void *f = dlsym(h, "pmem_flush");
	printf("%.3f\n", ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / 1e6);
	return f == NULL;
}
