/* ntbw.c: non-temporal copies of 4 KiB (libpmem) into a file of /tmp/r (a tmpfs
 * of 2 MiB pages), 3 laps of 512 MiB, a fence every EVERY records, or, with
 * TEMPORAL=1, memcpy and a flush of each line.
 * Build: cc -O2 -o ntbw ntbw.c -lpmem -lpthread
 * Usage: ntbw THREADS [EVERY] [TEMPORAL] */
#define _GNU_SOURCE
#include <libpmem.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>
static size_t SZ = 512ull << 20; static int every = 1; static int temporal = 0;
static double now(void){struct timespec t; clock_gettime(CLOCK_MONOTONIC,&t); return t.tv_sec+t.tv_nsec/1e9;}
static void *run(void *arg){
  char path[64]; sprintf(path, "/tmp/r/nt%ld", (long)arg);
  int fd = open(path, O_RDWR|O_CREAT|O_TRUNC, 0600); ftruncate(fd, SZ);
  char *m = mmap(NULL, SZ, PROT_READ|PROT_WRITE, MAP_SHARED, fd, 0); memset(m, 0, SZ);
  char src[4096]; memset(src, 'a', sizeof src);
  double t0 = now(); size_t n = 0;
  for (int lap = 0; lap < 3; lap++)
    for (size_t off = 0; off + 4096 <= SZ; off += 4096) {
      if (temporal) { memcpy(m + off, src, 4096); pmem_flush(m + off, 4096); }
      else pmem_memcpy_nodrain(m + off, src, 4096);
      if (++n % every == 0) pmem_drain();
    }
  double t = now() - t0;
  printf("thread %ld: %.0f records/s, %.2f GB/s, %.0f ns per 4K\n", (long)arg, n / t, n * 4096 / t / 1e9, t / n * 1e9);
  unlink(path); return NULL;
}
int main(int argc, char **argv){
  int th = argc > 1 ? atoi(argv[1]) : 1; every = argc > 2 ? atoi(argv[2]) : 1; temporal = argc > 3 ? atoi(argv[3]) : 0;
  pthread_t t[8]; for (long i = 0; i < th; i++) pthread_create(&t[i], 0, run, (void*)i);
  for (int i = 0; i < th; i++) pthread_join(t[i], 0);
}
