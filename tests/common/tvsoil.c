/*
 * tvsoil.c - see tvsoil.h.  Reaches into the engine (the extent map and
 * the data blocks of the shared area) under the volume's lock.
 */
/* The engine's internals first: cmocka (in testvol.h) defines fail(). */
#include "fs/extent.h"
#include "libfs/fs_internal.h"

#include "testvol.h"
#include "tvsoil.h"

struct soil {
	struct cairn_fs *fs;
	uint64_t blocks;
	int rc;
};

static int soil_extent(void *arg, const struct extent *e)
{
	static unsigned char junk[FS_BLOCK_SIZE];
	memset(junk, 0xee, sizeof(junk));
	struct soil *s = arg;
	for (uint64_t b = 0; e->unwritten && b < e->len && !s->rc; b++, s->blocks++)
		s->rc = shared_data_write(&s->fs->sh, e->pblk + b, junk, 1);
	return s->rc;
}

uint64_t tv_soil_unwritten(cairn_fs *fs, const char *path)
{
	struct stat st = tv_stat(fs, path);
	struct soil s = {fs, 0, 0};
	struct iref r;
	pthread_rwlock_wrlock(&fs->lock);
	int rc = inode_get(&fs->sh, st.st_ino, &r);
	if (!rc) {
		rc = extent_walk(&fs->sh.fx, r.i, 0, soil_extent, &s);
		inode_put(&fs->sh, &r);
	}
	pthread_rwlock_unlock(&fs->lock);
	if (rc)
		fail_msg("tv_soil_unwritten(%s): %s", path, tv_errname(-rc));
	return s.blocks;
}
