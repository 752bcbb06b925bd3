/*
 * spin.h - the pause a thread makes between two tries for something
 * another thread holds for well under a microsecond (a lock, a record's
 * fill), before it would sleep.
 */
#ifndef CAIRN_UTIL_SPIN_H
#define CAIRN_UTIL_SPIN_H

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

#endif
