/*
 * progress.h - how far a long operation is (mkfs zeroing a large part;
 * more to come): the operation notes its progress here, and the handler a
 * program set (cairn_set_progress_handler) hears it; none is set by
 * default, so a library user sees nothing.
 *
 * Owns: the process-wide handler.  May call: nothing.
 */
#ifndef CAIRN_UTIL_PROGRESS_H
#define CAIRN_UTIL_PROGRESS_H

#include <stdint.h>

typedef void (*progress_fn)(const char *what, uint64_t done, uint64_t total);

void progress_set_handler(progress_fn fn);
/* Tells the handler, if any, that `what` has done `done` of `total`. */
void progress_note(const char *what, uint64_t done, uint64_t total);

#endif
