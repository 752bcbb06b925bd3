/*
 * wakeup.c - the least a request to another process costs on this machine:
 * two processes pass one byte back and forth through two pipes, each
 * blocking in read() until the other writes, pinned to one core and then
 * to two.  A round trip is two wake-ups and two context switches, which is
 * what a FUSE request pays at the least (the caller sleeps in the kernel
 * until the daemon answers) before either side does any work.
 *
 * Why the benches print it: on a virtual machine a context switch and a
 * wake-up of a halted virtual core cost what the hypervisor makes them
 * cost, and every call of a program that reaches the cairn daemon pays
 * them (docs/PERFORMANCE.md, "What a request to the daemon costs").
 *
 * Prints the median round trip of RUNS runs of ROUND_TRIPS each, for
 * "one core" (both on core 0) and "two cores" (cores 0 and 1).
 *
 * Usage: bench_wakeup [ROUND_TRIPS] [RUNS]   (defaults 20000, 5)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_us(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static int pin(int cpu)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* One run: the mean round trip in microseconds, or -1. */
static double run(int cpu_a, int cpu_b, long trips)
{
	int there[2], back[2];
	if (pipe(there) || pipe(back))
		return -1;
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	char byte = 0;
	if (pid == 0) {
		if (pin(cpu_b))
			_exit(1);
		for (long i = 0; i < trips; i++)
			if (read(there[0], &byte, 1) != 1 || write(back[1], &byte, 1) != 1)
				_exit(1);
		_exit(0);
	}
	double mean = -1;
	if (pin(cpu_a) == 0) {
		double t0 = now_us();
		long i = 0;
		while (i < trips && write(there[1], &byte, 1) == 1 && read(back[0], &byte, 1) == 1)
			i++;
		if (i == trips)
			mean = (now_us() - t0) / (double)trips;
	}
	close(there[0]), close(there[1]), close(back[0]), close(back[1]);
	int status;
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status))
		mean = -1;
	return mean;
}

static double median(int cpu_a, int cpu_b, long trips, int runs)
{
	double *t = calloc((size_t)runs, sizeof(*t));
	if (!t)
		return -1;
	for (int r = 0; r < runs; r++)
		if ((t[r] = run(cpu_a, cpu_b, trips)) < 0) {
			free(t);
			return -1;
		}
	qsort(t, (size_t)runs, sizeof(*t), cmp_double);
	double m = t[runs / 2];
	free(t);
	return m;
}

int main(int argc, char **argv)
{
	long trips = argc > 1 ? atol(argv[1]) : 20000;
	int runs = argc > 2 ? atoi(argv[2]) : 5;
	if (trips < 1 || runs < 1) {
		fprintf(stderr, "usage: bench_wakeup [ROUND_TRIPS] [RUNS]\n");
		return 2;
	}
	double one = median(0, 0, trips, runs);
	double two = sysconf(_SC_NPROCESSORS_ONLN) > 1 ? median(0, 1, trips, runs) : -1;
	if (one < 0) {
		perror("bench_wakeup");
		return 1;
	}
	printf("wakeup round trip through pipes: one core %.2f us", one);
	if (two >= 0)
		printf(", two cores %.2f us", two);
	printf(" (median of %d runs of %ld)\n", runs, trips);
	return 0;
}
