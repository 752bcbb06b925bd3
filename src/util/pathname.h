/*
 * pathname.h - taking a path apart one component at a time, and putting
 * a symlink's target in front of what is left, the way both path walks do
 * it (the volume's own, src/libfs/path.c, and the one that checks a
 * client's permissions, src/server/access.c).
 */
#ifndef CAIRN_UTIL_PATHNAME_H
#define CAIRN_UTIL_PATHNAME_H

#include <errno.h>
#include <stddef.h>
#include <string.h>

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

/* Puts a symlink's target (tlen bytes, not empty) and a slash in front of
 * what is left of the path, buf[*pos, *end), in a buffer of size bytes;
 * the walk goes on from the buffer's start.  0, or -ENAMETOOLONG. */
static inline int path_splice(char *buf, size_t size, size_t *pos, size_t *end,
                              const char *target, size_t tlen)
{
	size_t rest = *end - *pos;
	if (tlen + 1 + rest >= size)
		return -ENAMETOOLONG;
	memmove(buf + tlen + 1, buf + *pos, rest);
	memcpy(buf, target, tlen);
	buf[tlen] = '/';
	*pos = 0;
	*end = tlen + 1 + rest;
	return 0;
}

#endif
