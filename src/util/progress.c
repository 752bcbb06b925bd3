/*
 * progress.c - the process-wide progress handler (see progress.h).
 */
#include "util/progress.h"

static progress_fn handler;

void progress_set_handler(progress_fn fn)
{
	__atomic_store_n(&handler, fn, __ATOMIC_RELEASE);
}

void progress_note(const char *what, uint64_t done, uint64_t total)
{
	progress_fn fn = __atomic_load_n(&handler, __ATOMIC_ACQUIRE);
	if (fn)
		fn(what, done, total);
}
