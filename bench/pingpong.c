/*
 * pingpong.c - how long one cache line takes to go from one core to
 * another and back on this machine: two threads take turns storing to one
 * line, each waiting to see the other's store.  It prints the median round
 * trip of a few runs.
 *
 * Why the benches print it: every writer of a volume touches some lines
 * that the others also write (the volume lock, the log's tail and its fill
 * marks), so threads' throughput depends on this price, and on a virtual
 * machine it depends on where the hypervisor places the virtual cores,
 * which a run cannot see otherwise (docs/PERFORMANCE.md).
 *
 * Usage: bench_pingpong [ROUND_TRIPS]   (default 500000)
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static _Atomic long turn __attribute__((aligned(64)));
static long trips;

/* Stores turn + 1 whenever turn has this side's parity. */
static void play(long first)
{
	for (long i = first; i < 2 * trips; i += 2) {
		while (atomic_load_explicit(&turn, memory_order_acquire) != i)
			;
		atomic_store_explicit(&turn, i + 1, memory_order_release);
	}
}

static void *other(void *arg)
{
	(void)arg;
	play(1);
	return NULL;
}

static double round_trip_ns(void)
{
	pthread_t t;
	struct timespec a, b;
	atomic_store(&turn, 0);
	if (pthread_create(&t, NULL, other, NULL))
		return -1;
	clock_gettime(CLOCK_MONOTONIC, &a);
	play(0);
	pthread_join(t, NULL);
	clock_gettime(CLOCK_MONOTONIC, &b);
	return ((double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec)) /
	       (double)trips;
}

static int cmp(const void *x, const void *y)
{
	double a = *(const double *)x, b = *(const double *)y;
	return (a > b) - (a < b);
}

int main(int argc, char **argv)
{
	trips = argc > 1 ? atol(argv[1]) : 500000;
	if (trips <= 0)
		return 2;
	double v[5];
	for (int k = 0; k < 5; k++)
		v[k] = round_trip_ns();
	qsort(v, 5, sizeof(v[0]), cmp);
	printf("cache line round trip between two cores: %.0f ns (median of 5; %.0f-%.0f)\n", v[2],
	       v[0], v[4]);
	return 0;
}
