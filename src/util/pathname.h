/*
 * pathname.h - taking a path apart one component at a time, the way both
 * path walks do it (the volume's own, src/libfs/path.c, and the one that
 * checks a client's permissions, src/server/access.c).
 */
#ifndef CAIRN_UTIL_PATHNAME_H
#define CAIRN_UTIL_PATHNAME_H

#include <stddef.h>

/* The next component of buf[*pos, end), past any slashes: its start in
 * *name and its length (0 at the end); *pos moves past it, and *more says
 * whether another component follows. */
static inline size_t path_next_component(const char *buf, size_t *pos, size_t end,
                                         const char **name, int *more)
{
	size_t p = *pos;
	while (p < end && buf[p] == '/')
		p++;
	size_t start = p;
	while (p < end && buf[p] != '/')
		p++;
	*name = buf + start;
	*pos = p;
	while (p < end && buf[p] == '/')
		p++;
	*more = p < end;
	return *pos - start;
}

#endif
