/*
 * mountinfo.h - one line of /proc/self/mountinfo taken apart, for the two
 * places that look for cairn mounts there without a stat of the mount
 * point (which would wait for its daemon): the preload shim finding the
 * mounts it serves (src/shim/shim_files.c) and the mount's keeper finding
 * its connection's number (src/fuse/fuse_keeper.c).
 */
#ifndef CAIRN_UTIL_MOUNTINFO_H
#define CAIRN_UTIL_MOUNTINFO_H

#include <stdio.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <sys/types.h>

/* The kernel's escapes in a mount table's field (\040 for a space, and
 * so on), undone in place. */
static inline void mountinfo_unescape(char *s)
{
	char *out = s;
	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*out++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 3;
		} else {
			*out++ = *s;
		}
	}
	*out = '\0';
}

/* line (one line of /proc/self/mountinfo, its newline gone; taken apart
 * in place): if it is a cairn mount (type fuse.cairn), its mount point,
 * unescaped, in *dir and its device number in *dev, and 1; else 0.  The
 * fields: id, parent, major:minor, root, mount point, options, optional
 * fields up to "-", type, source, super options. */
static inline int mountinfo_cairn_line(char *line, char **dir, dev_t *dev)
{
	unsigned major, minor;
	char *save = NULL, *f[6];
	for (int i = 0; i < 6; i++)
		if (!(f[i] = strtok_r(i ? NULL : line, " ", &save)))
			return 0;
	char *sep;
	while ((sep = strtok_r(NULL, " ", &save)) && strcmp(sep, "-"))
		; /* the optional fields */
	char *type = sep ? strtok_r(NULL, " ", &save) : NULL;
	if (!type || strcmp(type, "fuse.cairn") || sscanf(f[2], "%u:%u", &major, &minor) != 2)
		return 0;
	mountinfo_unescape(f[4]);
	*dir = f[4];
	*dev = makedev(major, minor);
	return 1;
}

#endif
