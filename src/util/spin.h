/*
 * spin.h - the pause a thread makes between two tries for something
 * another thread holds for well under a microsecond (a lock, a record's
 * fill), before it would sleep.
 */
#ifndef CAIRN_UTIL_SPIN_H
#define CAIRN_UTIL_SPIN_H

#include <pthread.h>

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

/*
 * A mutex that threads of one process take in turn for well under a
 * microsecond on every write (the log's reservation, the fd table): one
 * that finds it held spins a little before it sleeps.  A futex sleep and
 * wake-up cost several microseconds on a virtual machine, where writers
 * on two cores slept on every other write.
 */
static inline void mutex_init_brief(pthread_mutex_t *m)
{
	pthread_mutexattr_t a;
	pthread_mutexattr_init(&a);
#ifdef PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP
	pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ADAPTIVE_NP);
#endif
	pthread_mutex_init(m, &a);
	pthread_mutexattr_destroy(&a);
}

#endif
